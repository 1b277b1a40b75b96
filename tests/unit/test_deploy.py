"""What the deploy commands give each function, read from the commands themselves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from infra.deploy.deploy import MANAGED, commands, main, read_env_file
from infra.deploy.functions import SPECS
from shared.settings import Settings

PROJECT, REGION = "p", "r"
BASE = f"https://{REGION}-{PROJECT}.cloudfunctions.net"


def deployed(name: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """The function's environment, its secrets and the whole deploy command."""
    command = commands(SPECS[name], Path("/bundle"), PROJECT, REGION)[0]
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for arg in command:
        if arg.startswith("--set-env-vars=^;^"):
            env.update(kv.split("=", 1) for kv in arg.removeprefix("--set-env-vars=^;^").split(";"))
        elif arg.startswith("--set-secrets="):
            pairs = arg.removeprefix("--set-secrets=").split(",")
            secrets.update(kv.split("=", 1) for kv in pairs)
    return env, secrets, command


def test_each_function_expects_its_own_url_as_the_oidc_audience() -> None:
    """Cloud Run takes a token for a private function only with the function's URL as its
    audience (the bare host was refused: no sweep, no wake-up would ever have run)."""
    for name in SPECS:
        env, _, _ = deployed(name)
        assert env["OIDC_AUDIENCE"] == f"{BASE}/{name}"
        assert env["FUNCTIONS_BASE_URL"] == BASE
    scheduler = (Path(__file__).parents[2] / "infra" / "deploy" / "scheduler.sh").read_text()
    assert '--oidc-token-audience="${BASE}/process-integration-job"' in scheduler


def _remote_request_s(retries: int) -> float:
    """The longest one request to the Gestão Scouter remote takes at the default settings:
    every try timing out, and the longest backoff between them."""
    gestao = Settings().gestao
    waits = sum(min(gestao.retry_cap_s, gestao.retry_base_s * 2**n) for n in range(retries))
    return (retries + 1) * gestao.timeout_s + waits


def test_the_remote_checks_are_never_cut_short_by_the_platform() -> None:
    """The config check's last request deletes the probe row it wrote: cut short at the
    60 s default, the row stayed in the tenant's table and the admin got a bare 504."""
    retries = Settings().gestao.retries
    worst = {
        "validate-gestao-scouter-config": 4 * _remote_request_s(0),
        "validate-gestao-scouter-schema": _remote_request_s(retries),
        "reload-gestao-scouter-schema-cache": 3 * _remote_request_s(retries),
    }
    for name, seconds in worst.items():
        assert SPECS[name].timeout_s >= seconds + 30, (name, seconds)


def test_the_worker_can_start_and_check_renders() -> None:
    """The minute sweep runs in the worker and starts queued renders and asks RunningHub
    about running ones: without the key it left them to the wait and runtime limits."""
    _, secrets, _ = deployed("process-integration-job")
    assert secrets["RUNNINGHUB_API_KEY"] == "syncq-runninghub-api-key:latest"
    assert secrets["RUNNINGHUB_WEBHOOK_SECRET"] == "syncq-runninghub-webhook-secret:latest"


def test_every_secret_a_function_reads_is_created_and_granted_by_secrets_sh() -> None:
    script = (Path(__file__).parents[2] / "infra" / "deploy" / "secrets.sh").read_text()
    for name, spec in SPECS.items():
        for secret in spec.secrets:
            assert secret in script, (name, secret)


def test_an_env_file_gives_every_function_the_deployments_own_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each deploy replaces a function's whole environment, so e-mail alerts (transport,
    SMTP host) could not be switched on for good: the worker suppressed every e-mail."""
    env_file = tmp_path / "deploy.env"
    env_file.write_text(
        "# alerts by e-mail\nALERT_EMAIL_TRANSPORT=smtp\nSMTP_HOST=smtp.example\n\nSMTP_PORT=587\n"
    )
    argv = ["process-integration-job", "--dry-run", "--project", PROJECT, "--region", REGION,
            "--out", str(tmp_path / "build"), "--env-file", str(env_file)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "ALERT_EMAIL_TRANSPORT=smtp;SMTP_HOST=smtp.example;SMTP_PORT=587" in printed
    assert read_env_file(env_file) == {
        "ALERT_EMAIL_TRANSPORT": "smtp", "SMTP_HOST": "smtp.example", "SMTP_PORT": "587",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("line", "why"),
    [("SMTP_HOST", "expected KEY=VALUE"), ("smtp_host=x", "expected KEY=VALUE"),
     ("OIDC_AUDIENCE=x", "set by deploy.py"), ("SMTP_PASSWORD=hunter2", "is a secret"),
     ("ALERT_EMAIL_FROM=a;b", "may not hold ';'"),
     # a tenant's provider credential as the local stack holds it (README, Configuration)
     ("SYNCQ_SECRET_SYNCQ_ACME_ONECODE_TOKEN=tok-123", "is a secret")],
)  # fmt: skip
def test_an_env_file_line_deploy_cannot_use_is_refused_naming_it(
    tmp_path: Path, line: str, why: str
) -> None:
    env_file = tmp_path / "deploy.env"
    env_file.write_text(f"# first\n{line}\n")
    with pytest.raises(ValueError, match=f"line 2: .*{re.escape(why)}"):
        read_env_file(env_file)


def test_each_instance_has_a_thread_for_every_request_cloud_run_sends_it() -> None:
    """functions-framework runs 4 threads per CPU unless told: the event function takes 25
    requests at once, each stream holding its thread for minutes, and with all 4 held the
    instance answered nothing at all (no stream, no 429, not even a 422)."""
    for name, spec in SPECS.items():
        env, _, command = deployed(name)
        assert int(env["THREADS"]) >= spec.concurrency, name
        assert f"--concurrency={spec.concurrency}" in command


def test_the_keys_an_env_file_may_not_set_are_those_deploy_sets() -> None:
    """MANAGED is written out beside the environment it names: one may not drift from the
    other, or an env file could override what a deploy sets (or be refused for nothing)."""
    env, _, _ = deployed("run-integration")
    assert set(env) == MANAGED


@pytest.mark.parametrize(("exists", "verb", "headers"), [
    (False, "create", "--headers=Content-Type=application/json"),
    (True, "update", "--update-headers=Content-Type=application/json"),
])  # fmt: skip
def test_the_sweep_job_is_created_then_updated_with_the_flags_each_verb_takes(
    tmp_path: Path, exists: bool, verb: str, headers: str
) -> None:
    """`gcloud scheduler jobs update http` has no --headers (only --update-headers): a
    second run of scheduler.sh, the one that applies a change, must not be refused."""
    calls = tmp_path / "calls"
    gcloud = tmp_path / "gcloud"
    gcloud.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        f'case "$3" in describe) exit {0 if exists else 1};; esac\n'
    )
    gcloud.chmod(0o755)
    script = Path(__file__).parents[2] / "infra" / "deploy" / "scheduler.sh"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "PROJECT": PROJECT, "REGION": REGION}
    subprocess.run(["/bin/bash", str(script)], env=env, check=True, timeout=30)  # noqa: S603
    last = calls.read_text().splitlines()[-1].split()
    assert last[:4] == ["scheduler", "jobs", verb, "http"]
    assert headers in last and not any(a.startswith("--headers=") for a in last if a != headers), (
        last
    )


def test_one_tenant_cannot_hold_every_thread_of_an_event_stream_instance() -> None:
    """Each stream holds a thread: with the tenant cap (50) above an instance's threads (25),
    one tenant's members held them all and another tenant's stream got no answer, not 429."""
    spec = SPECS["integration-job-events"]
    edge = Settings().edge
    assert edge.sse_max_streams_per_tenant <= spec.concurrency // 2
    assert edge.sse_max_streams_per_user < edge.sse_max_streams_per_tenant


def _secrets_sh(tmp_path: Path, *argv: str, value: str) -> tuple[int, str, list[str]]:
    """Run secrets.sh with a fake gcloud (every secret missing, every other call fine): its
    exit code, its stderr and the gcloud calls it made."""
    calls = tmp_path / "calls"
    calls.write_text("")
    gcloud = tmp_path / "gcloud"
    gcloud.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\ncase "$2" in describe) exit 1;; esac\ncat >/dev/null\n'
    )
    gcloud.chmod(0o755)
    script = Path(__file__).parents[2] / "infra" / "deploy" / "secrets.sh"
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "PROJECT": PROJECT}
    done = subprocess.run(  # noqa: S603
        ["/bin/bash", str(script), *argv], env=env, input=value, capture_output=True,
        text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode, done.stderr, calls.read_text().splitlines()


def test_a_tenant_secret_for_an_unknown_provider_is_refused_before_it_is_stored(
    tmp_path: Path,
) -> None:
    """`gestao_scouter` for `gestao-scouter`: the credential was stored (under a name no
    function reads) before the provider was refused, and the binding went to no one."""
    code, err, calls = _secrets_sh(
        tmp_path, "tenant", "acme", "gestao_scouter", "service_key", value="sk-123"
    )
    assert code == 2 and "unknown provider: gestao_scouter" in err
    assert calls == []

    code, _, calls = _secrets_sh(
        tmp_path, "tenant", "acme", "gestao-scouter", "service_key", value="sk-123"
    )
    assert code == 0
    assert calls[-1].split()[:3] == ["secrets", "add-iam-policy-binding",
                                     "syncq-acme-gestao-scouter-service_key"]  # fmt: skip
    assert f"--member=serviceAccount:syncq-export@{PROJECT}.iam.gserviceaccount.com" in calls[-1]


def test_a_gcloud_that_fails_or_is_missing_is_one_line_naming_what_was_deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed deploy said so with a Python traceback (CalledProcessError), and said
    nothing of the functions deployed before it."""
    gcloud = tmp_path / "bin" / "gcloud"
    gcloud.parent.mkdir()
    gcloud.write_text('#!/bin/sh\ncase "$*" in *my-tenants*) exit 3;; esac\nexit 0\n')
    gcloud.chmod(0o755)
    monkeypatch.setenv("PATH", f"{gcloud.parent}:/usr/bin:/bin")
    argv = ["list-integrations", "my-tenants", "--out", str(tmp_path / "out"), "--project", "p"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "gcloud failed (exit 3)" in err and "deployed before it: list-integrations." in err
    assert "Traceback" not in err
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert main(argv[1:]) == 1
    assert "gcloud is not installed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["--all", "my-tenants", "--dry-run"])
    assert usage.value.code == 2
    assert "not both" in capsys.readouterr().err
