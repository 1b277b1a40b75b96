"""Deploy one function: `python -m infra.deploy.deploy <name> [--project P] [--region R]`.

Builds the function's standalone bundle (main.py + shared/ + requirements.txt) and runs
(or, with --dry-run, prints) the gcloud commands for a gen2 HTTP function with its own
timeout, memory, instance limits, runtime identity, secrets and invokers
(see infra/deploy/functions.py). `--all` deploys every function that exists.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra.deploy.bundle import FUNCTIONS_DIR, build
from infra.deploy.functions import SPECS, FunctionSpec
from shared.secrets import ENV_PREFIX


def env_name(secret: str) -> str:
    """The variable a secret is read from: syncq-smtp-password -> SMTP_PASSWORD."""
    return secret.removeprefix("syncq-").replace("-", "_").upper()


SECRET_ENV = frozenset(env_name(s) for spec in SPECS.values() for s in spec.secrets)


def commands(
    spec: FunctionSpec,
    source: Path,
    project: str,
    region: str,
    extra_env: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """The gcloud invocations that deploy `spec` from the bundle at `source`; `extra_env`
    (the deployment's own settings) joins the environment deploy.py sets."""
    sa = f"{spec.service_account}@{project}.iam.gserviceaccount.com"
    base = f"https://{region}-{project}.cloudfunctions.net"
    env = {
        "SECRET_BACKEND": "gcp",
        "GCP_PROJECT": project,
        "GCP_LOCATION": region,
        "SERVICE_AUTH": "oidc",
        "DISPATCHER": "cloudtasks",
        "TASKS_SERVICE_ACCOUNT": f"syncq-tasks@{project}.iam.gserviceaccount.com",
        "OIDC_SERVICE_ACCOUNTS": f'["syncq-tasks@{project}.iam.gserviceaccount.com",'
        f'"syncq-scheduler@{project}.iam.gserviceaccount.com"]',
        "FUNCTIONS_BASE_URL": base,
        # The function's own URL: the audience Cloud Run requires of a token for a private
        # function, and the one Cloud Tasks and Cloud Scheduler put in theirs.
        "OIDC_AUDIENCE": f"{base}/{spec.name}",
        "DB_POOL_MAX": str(spec.pool_max),
        # gunicorn's threads (functions-framework: 4 per CPU by default) must take as many
        # requests as Cloud Run sends at once: an event stream holds its thread for minutes,
        # and with every thread holding one the instance answered nothing, not even a 429.
        "THREADS": str(spec.concurrency),
    }
    env.update(extra_env or {})
    secrets = {env_name(secret): secret for secret in spec.secrets}
    deploy = [
        "gcloud", "functions", "deploy", spec.name, "--gen2", f"--project={project}",
        f"--region={region}", "--runtime=python311", f"--source={source}",
        "--entry-point=main", "--trigger-http", f"--timeout={spec.timeout_s}s",
        f"--memory={spec.memory}", f"--cpu={spec.cpu}",
        f"--concurrency={spec.concurrency}", f"--max-instances={spec.max_instances}",
        f"--min-instances={spec.min_instances}", f"--service-account={sa}",
        "--set-env-vars=^;^" + ";".join(f"{k}={v}" for k, v in env.items()),
        *(["--set-secrets=" + ",".join(f"{k}={v}:latest" for k, v in secrets.items())]
          if secrets else []),
        "--allow-unauthenticated" if spec.public else "--no-allow-unauthenticated",
    ]  # fmt: skip
    out = [deploy]
    for invoker in spec.invokers:
        out.append([
            "gcloud", "functions", "add-invoker-policy-binding", spec.name, "--gen2",
            f"--project={project}", f"--region={region}",
            f"--member=serviceAccount:{invoker}@{project}.iam.gserviceaccount.com",
        ])  # fmt: skip
    return out


MANAGED = frozenset(
    {"SECRET_BACKEND", "GCP_PROJECT", "GCP_LOCATION", "SERVICE_AUTH", "DISPATCHER",
     "TASKS_SERVICE_ACCOUNT", "OIDC_SERVICE_ACCOUNTS", "FUNCTIONS_BASE_URL", "OIDC_AUDIENCE",
     "DB_POOL_MAX", "THREADS"}
)  # fmt: skip


def is_secret(key: str) -> bool:
    """A platform secret's variable, or a tenant's provider credential as the local stack
    holds it (SYNCQ_SECRET_...): deployed as plain env, every function's configuration (and
    this command's output) would show it, and with SECRET_BACKEND=gcp nothing reads it."""
    return key in SECRET_ENV or key.startswith(ENV_PREFIX)


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines (blank lines and `#` comments skipped); ValueError naming the line
    for a malformed one, a key deploy.py sets itself, or a value with `;` (the separator
    of --set-env-vars) or a secret's name (secrets go to Secret Manager)."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
            raise ValueError(f"line {number}: expected KEY=VALUE")
        if key in MANAGED:
            raise ValueError(f"line {number}: {key} is set by deploy.py")
        if is_secret(key):
            raise ValueError(f"line {number}: {key} is a secret: use infra/deploy/secrets.sh")
        if ";" in value:
            raise ValueError(f"line {number}: a value may not hold ';'")
        env[key] = value.strip()
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.deploy", description=__doc__)
    parser.add_argument("names", nargs="*", help="function names (folders under functions/)")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--project", default="syncq-prod")
    parser.add_argument("--region", default="southamerica-east1")
    parser.add_argument("--out", type=Path, default=Path("build/bundles"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument(
        "--env-file",
        type=Path,
        help="KEY=VALUE lines every function gets besides what deploy.py sets (e.g. "
        "ALERT_EMAIL_TRANSPORT, SMTP_HOST, JWKS_URL); each deploy replaces the whole "
        "environment, so settings live here rather than in the console",
    )
    args = parser.parse_args(argv)
    try:
        extra = read_env_file(args.env_file) if args.env_file else {}
    except (OSError, ValueError) as exc:
        parser.error(f"--env-file: {exc}")
    if args.all and args.names:
        parser.error("give function names or --all, not both")
    existing = sorted(p.name for p in FUNCTIONS_DIR.iterdir() if (p / "main.py").exists())
    names = existing if args.all else args.names
    unknown = [n for n in names if n not in SPECS or n not in existing]
    if unknown or not names:
        parser.error(f"unknown or missing function(s): {unknown or 'none given'}")
    done: list[str] = []
    for name in names:
        source = build(name, args.out)
        for cmd in commands(SPECS[name], source, args.project, args.region, extra):
            print("$", shlex.join(cmd), flush=True)
            if not args.dry_run and (failed := _run(cmd)) is not None:
                print(f"{failed}; deployed before it: {', '.join(done) or 'none'}. Each deploy"
                      " is whole: run it again for the rest.", file=sys.stderr)  # fmt: skip
                return 1
        done.append(name)
    return 0


def _run(cmd: list[str]) -> str | None:
    """Run one gcloud command; what went wrong, in one line, or None."""
    try:
        subprocess.run(cmd, check=True)  # noqa: S603
    except FileNotFoundError:
        return f"{cmd[0]} is not installed (or not on PATH)"
    except subprocess.CalledProcessError as exc:
        return f"{cmd[0]} failed (exit {exc.returncode}) above"
    return None


if __name__ == "__main__":
    sys.exit(main())
