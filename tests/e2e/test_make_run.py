"""`make run` (python -m infra.local.stack) as a user meets it: it never says "up" when not.

Every stack here runs on ports the OS handed out, in a data folder of its own
(SYNCQ_DATA_DIR), against the test's database; the defaults (8080, 9022, 81xx) are never
touched.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import shared
from infra.local import demo, pg, stack, supervise
from infra.local.gateway import INSTANCE_HEADER, function_names
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.conftest import wait_until
from tests.ports import stack_port_env

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
ACME = "11111111-1111-4111-8111-111111111111"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any syncq setting (the tests' own included)."""
    ours = stack.stack_settings(os.environ)
    keep = {k: v for k, v in os.environ.items() if k not in ours and "_PORT" not in k}
    return {**keep, **extra}


class AnsweringServer(ThreadingHTTPServer):
    """A program on a free port answering every GET with `answer(path)`: (status, headers,
    body)."""

    def __init__(self, answer: Callable[[str], tuple[int, dict[str, str], bytes]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class NotFoundServer(AnsweringServer):
    """Another program on the port: answers every request 404, or a look-alike health answer."""

    def __init__(self, body: bytes = b"", status: int = 404) -> None:
        super().__init__(lambda _: (status, {"Content-Type": "application/json"}, body))


def run_stack(env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.local.stack"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


# -- ports ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["GATEWAY_PORT", "TASKS_EMULATOR_PORT", "ONECODE_PORT"])
def test_a_busy_port_is_named_before_anything_starts(tmp_path: Path, variable: str) -> None:
    squatter = NotFoundServer()  # what broke it: another program answering 404 on the port
    try:
        env = clean_env(**stack_port_env(), SYNCQ_DATA_DIR=str(tmp_path / "data"))
        env[variable] = str(squatter.port)
        done = run_stack(env)
    finally:
        squatter.stop()
    assert done.returncode == 1, done.stdout
    assert f"port {squatter.port}" in done.stderr and f"{variable}=" in done.stderr
    assert "already in use" in done.stderr
    assert "stack is up" not in done.stdout and "migrating" not in done.stdout
    assert not (tmp_path / "data").exists()  # nothing was started, nothing written


def test_two_parts_on_one_port_and_a_bad_port_are_named(tmp_path: Path) -> None:
    env = clean_env(**stack_port_env(), SYNCQ_DATA_DIR=str(tmp_path))
    env["BOMCONTROLE_PORT"] = env["ACESSORIAS_PORT"]
    done = run_stack(env)
    assert done.returncode == 1
    assert "given to both ACESSORIAS_PORT" in done.stderr and "BOMCONTROLE_PORT" in done.stderr
    done = run_stack({**env, "BOMCONTROLE_PORT": "70000"})
    assert done.returncode == 1
    assert "BOMCONTROLE_PORT must be a port number from 1 to 65535, not '70000'" in done.stderr


def test_an_embedded_server_that_cannot_start_is_one_message(tmp_path: Path) -> None:
    """No traceback (a full disk gave initdb's CalledProcessError): what, where, what to do."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "pg").write_text("a file where the server's folder goes")
    done = run_stack(clean_env(**stack_port_env(), SYNCQ_DATA_DIR=str(data)))
    assert done.returncode == 1, done.stdout
    assert "make run: the embedded PostgreSQL could not start in" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "stack is up" not in done.stdout


@pytest.mark.db
def test_a_database_url_that_cannot_be_used_is_one_message(
    tmp_path: Path, pg_server_url: str
) -> None:
    """Its database not created yet, or a URL that does not parse: what and where, no
    traceback, and never the password."""
    missing = pg.with_dbname(pg_server_url, "syncq_never_created")
    env = clean_env(**stack_port_env(), SYNCQ_DATA_DIR=str(tmp_path / "data"))
    done = run_stack({**env, "DATABASE_URL": missing})
    assert done.returncode == 1, done.stdout
    assert "make run: the database at" in done.stderr and "/syncq_never_created" in done.stderr
    assert 'database "syncq_never_created" does not exist' in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "stack is up" not in done.stdout
    bad = "postgresql://postgres:s3cret%zz@127.0.0.1:5432/x"
    done = run_stack({**env, "DATABASE_URL": bad})
    assert done.returncode == 1, done.stdout
    assert "DATABASE_URL: not a valid PostgreSQL connection string" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr


@pytest.mark.parametrize(
    ("body", "status"), [(b"", 404), (b'{"status": "ok"}', 200)], ids=["404", "look-alike"]
)
def test_the_probe_wants_our_own_gateway(body: bytes, status: int) -> None:
    other = NotFoundServer(body, status)
    try:
        reason = stack.probe(f"http://127.0.0.1:{other.port}/functions/v1", "our-instance")
    finally:
        other.stop()
    assert reason is not None and "not from our gateway" in reason


class OurGateway(AnsweringServer):
    """Our gateway as the probe reads it: health 200 with the run's instance, and an index."""

    def __init__(self, instance: str, index: dict[str, Any]) -> None:
        def answer(path: str) -> tuple[int, dict[str, str], bytes]:
            body = b'{"status": "ok"}' if path.endswith("/healthz") else json.dumps(index).encode()
            return 200, {"Content-Type": "application/json", INSTANCE_HEADER: instance}, body

        super().__init__(answer)


@pytest.mark.parametrize(
    ("database", "emulators", "expected"),
    [
        (True, {"onecode": True, "smtp": True}, None),
        (
            True,
            {"onecode": False, "smtp": True, "bomcontrole": False},
            "not up yet: onecode, bomcontrole",
        ),
        (False, {"onecode": True}, "not up yet: database"),
        (False, {"smtp": False}, "not up yet: database, smtp"),
    ],
    ids=["all up", "emulators down", "database down", "both down"],
)
def test_the_stack_is_up_only_once_the_database_and_every_emulator_are(
    database: bool, emulators: dict[str, bool], expected: str | None
) -> None:
    """Our gateway answering its health check is not enough: the probe reads the index and
    names the database and each emulator that is not up yet (else "stack is up" would be
    printed over an emulator that failed to listen)."""
    index = {
        "database": {"up": database},
        "emulators": {n: {"url": "127.0.0.1:1", "up": up} for n, up in emulators.items()},
    }
    ours = OurGateway("our-instance", index)
    try:
        reason = stack.probe(f"http://127.0.0.1:{ours.port}/functions/v1", "our-instance")
    finally:
        ours.stop()
    assert reason == expected


def test_the_banners_database_url_reaches_that_database(database_url: str) -> None:
    """The banner's `database` line is a URL psql and libpq take, naming the stack's own
    server: the embedded one listens on a Unix socket, whose folder was written where a host
    goes (`postgresql://postgres@/…/.data/pg:5432/syncq`), so libpq read it as a database
    name and asked the machine's default socket instead."""
    shown = pg.shown(database_url)
    assert "password" not in shown
    with psycopg.connect(database_url) as ours, psycopg.connect(shown) as banner:
        query = "SELECT current_database(), current_setting('data_directory')"
        assert banner.execute(query).fetchone() == ours.execute(query).fetchone()


def test_free_ports_are_distinct_and_below_the_outgoing_range() -> None:
    """Stacks on free ports (these tests, the chaos run) take them from below the kernel's
    range for outgoing connections, all distinct, each one bindable."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(20):
        ports = supervise.free_ports(len(fields(stack.Ports)))
        assert len(set(ports)) == len(ports)
        assert all(p in supervise.FREE_PORTS and p < low for p in ports)
        for port in ports:
            socket.create_server(("127.0.0.1", port)).close()


def test_free_ports_skip_a_port_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    busy_port, free = sorted(supervise.free_ports(2))
    with socket.create_server(("127.0.0.1", busy_port)):
        # Only two candidates: the busy one is never handed out; then none is left.
        monkeypatch.setattr(supervise, "FREE_PORTS", range(busy_port, free + 1, free - busy_port))
        assert {supervise.free_port() for _ in range(20)} == {free}
        monkeypatch.setattr(supervise, "FREE_PORTS", range(busy_port, busy_port + 1))
        with pytest.raises(supervise.StackFailed, match="no 1 free ports"):
            supervise.free_port()


def test_a_log_keeps_one_previous_run(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    for run in range(3):
        supervise.rotate_log(log)
        log.write_text(f"run {run}\n" * 1000)
    supervise.rotate_log(log)
    assert not log.exists()  # the next writer (a child, pg_ctl) starts it afresh
    assert (tmp_path / "gateway.log.1").read_text() == "run 2\n" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.log.1"]


# -- a whole stack ----------------------------------------------------------------------------


@dataclass
class Run:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    data: Path
    stdout: list[str] = field(default_factory=list)
    reader: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}/functions/v1"

    def printed(self) -> str:
        return "".join(self.stdout)

    def children(self) -> dict[str, int]:
        """The stack's processes by log name (gateway, emulator-onecode, tasks-emulator)."""
        found: dict[str, int] = {}
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        for pid in path.read_text().split():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            found[_child_name([a.decode() for a in argv])] = int(pid)
        return found


def _child_name(argv: list[str]) -> str:
    if "infra.local.gateway" in argv:
        return "gateway"
    for arg in argv:
        if arg.startswith("infra.emulators."):
            name = arg.removeprefix("infra.emulators.")
            if name == "postgrest":  # a remote project per demo tenant
                first = demo.remote_project_ref(demo.TENANTS[0]) in argv
                return "emulator-gestao-scouter" + ("" if first else "-2")
            return f"emulator-{name}"
    return "tasks-emulator"


@pytest.fixture
def launch(database_url: str, pg_server_url: str, tmp_path: Path) -> Iterator[Any]:
    """Start `python -m infra.local.stack` (JWT_SECRET from the environment, like a user)."""
    remote = f"{pg.dbname_of(database_url)}_gs"
    runs: list[Run] = []

    def start() -> Run:
        env = clean_env(
            **stack_port_env(),
            DATABASE_URL=database_url,
            JWT_SECRET=TEST_JWT_SECRET,
            GESTAO_SCOUTER_DATABASE=remote,
            SYNCQ_DATA_DIR=str(tmp_path / "data"),
        )
        with (tmp_path / "stderr").open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "infra.local.stack"], env=env, cwd=ROOT, text=True,
                stdout=subprocess.PIPE, stderr=err,
            )  # fmt: skip
        run = Run(proc, env, tmp_path / "data")
        run.reader.start()
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGINT)
            run.proc.wait(60)
        run.reader.join(10)
        assert run.proc.stdout is not None
        run.proc.stdout.close()
    for n in range(1, len(demo.TENANTS) + 1):  # each demo tenant's remote (`…_gs`, `…_gs_2`)
        pg.drop_database(pg_server_url, remote if n == 1 else f"{remote}_{n}")


def stderr_of(run: Run) -> str:
    return (run.data.parent / "stderr").read_text()


def cli(run: Run, *args: str) -> str:
    """`python -m infra.ops …` in a fresh shell: no JWT_SECRET, no DATABASE_URL, same data dir."""
    env = clean_env(SYNCQ_DATA_DIR=str(run.data))
    assert "JWT_SECRET" not in env and "DATABASE_URL" not in env
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "infra.ops", *args], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def check_index_and_health(run: Run) -> None:
    index = httpx.get(run.base + "/", timeout=10)
    assert index.status_code == 200
    body = index.json()
    assert body["service"] == "syncq" and body["version"] == shared.__version__
    assert [f["name"] for f in body["functions"]] == function_names()
    assert {"name": "run-integration", "url": f"{run.base}/run-integration"} in body["functions"]
    assert body["database"] == {"up": True}
    assert sorted(body["emulators"]) == sorted([*stack.EMULATORS, "cloud-tasks"])
    assert all(e["up"] for e in body["emulators"].values()), body["emulators"]
    onecode = f"http://127.0.0.1:{run.env['ONECODE_PORT']}"
    assert body["emulators"]["onecode"]["url"] == onecode
    listed = httpx.get(body["functions"][3]["url"], timeout=10)  # list-integration-jobs
    assert listed.status_code == 401  # a real function behind the listed URL
    health = httpx.get(body["health"], timeout=10)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert health.headers[INSTANCE_HEADER]


def check_logs(run: Run, old: bytes) -> None:
    """Each child's log holds this run only; the run before is kept once, older ones go."""
    assert (run.data / "emulator-onecode.log.1").read_bytes() == old
    assert not (run.data / "emulator-onecode.log.2").exists()
    assert len((run.data / "emulator-onecode.log").read_bytes()) < 10_000


def check_cli_tokens_and_roles(run: Run) -> tuple[str, str]:
    member, admin = (
        cli(run, "token", "--demo", "acme-member"),
        cli(run, "token", "--demo", "acme-admin"),
    )
    auth = {"Authorization": f"Bearer {member}"}
    listed = httpx.get(f"{run.base}/list-integration-jobs", params={"tenant_id": ACME},
                       headers=auth, timeout=10)  # fmt: skip
    assert listed.status_code == 200, listed.text
    click = {"tenant_id": ACME, "provider_slug": "acessorias"}
    refused = httpx.post(f"{run.base}/run-integration", json=click, headers=auth, timeout=10)
    assert refused.status_code == 403  # README: run-integration needs an admin
    return member, admin


def check_seed_demo_keeps_the_stacks_ports(run: Run) -> None:
    """`make seed-demo` in a fresh shell acts on the running stack: its integrations keep
    pointing at the emulators this stack started (not at the default ports)."""
    cli(run, "seed-demo")
    with psycopg.connect(run.env["DATABASE_URL"]) as conn:
        configs = dict(conn.execute(
            "SELECT provider_slug, config->>'base_url' FROM tenant_integrations"
            " WHERE tenant_id = %s", [ACME],
        ).fetchall())  # fmt: skip
    assert configs["onecode"] == f"http://127.0.0.1:{run.env['ONECODE_PORT']}", configs
    assert configs["acessorias"] == f"http://127.0.0.1:{run.env['ACESSORIAS_PORT']}", configs


def check_demo_run_is_quick(run: Run, admin: str) -> None:
    """The demo Acessórias run succeeds without idling 9 s re-checking its last, empty page."""
    auth = {"Authorization": f"Bearer {admin}"}
    click = {"tenant_id": ACME, "provider_slug": "acessorias"}
    started = httpx.post(f"{run.base}/run-integration", json=click, headers=auth, timeout=10)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]

    def job() -> dict[str, Any]:
        jobs = httpx.get(f"{run.base}/list-integration-jobs", params={"tenant_id": ACME},
                         headers=auth, timeout=10).json()["jobs"]  # fmt: skip
        return next(j for j in jobs if j["id"] == job_id)

    wait_until(lambda: job()["status"] in ("success", "error"), 60, "the demo job")
    done = job()
    assert done["status"] == "success", done
    # What the functions run with (the stack keeps it in local.env, as the CLI reads it):
    # re-checks after 0.2 s and 0.4 s, not the real API's 3 s and 6 s. No timing asserted.
    kept = dict(line.split("=", 1) for line in (run.data / "local.env").read_text().splitlines())
    assert kept["ACESSORIAS_EMPTY_RECHECK_S"] == stack.DEMO_EMPTY_RECHECK_S


def check_tenants_export_apart(run: Run) -> None:
    """Both demo tenants have leads with the same ids (the demo data's) and export them, each
    into its own remote project: neither sees the other's rows (a remote edit cannot reach
    the wrong tenant either)."""
    url = run.env["DATABASE_URL"]
    for t in demo.TENANTS:
        token = cli(run, "token", "--demo", f"{t.slug}-admin")
        auth = {"Authorization": f"Bearer {token}"}
        body = {"tenant_id": str(t.id), "action": "start"}
        started = httpx.post(f"{run.base}/export-to-gestao-scouter-batch", json=body,
                             headers=auth, timeout=30)  # fmt: skip
        assert started.status_code == 200, started.text
        status = {"tenant_id": str(t.id), "action": "status"}

        def done(auth: dict[str, str] = auth, status: dict[str, str] = status) -> bool:
            answer = httpx.post(f"{run.base}/export-to-gestao-scouter-batch", json=status,
                                headers=auth, timeout=30).json()  # fmt: skip
            return bool(answer["status"] == "completed")

        wait_until(done, 90, f"{t.slug}'s export")
    remote = run.env["GESTAO_SCOUTER_DATABASE"]
    for n, t in enumerate(demo.TENANTS, start=1):
        with psycopg.connect(pg.with_dbname(url, remote if n == 1 else f"{remote}_{n}")) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM public.leads ORDER BY id")]
            emails = {r[0] for r in conn.execute("SELECT DISTINCT email FROM public.leads")}
        assert ids == list(range(1, demo.DEMO_LEADS + 1)), t.slug  # the same ids in both
        with psycopg.connect(url) as conn:
            ours = {r[0] for r in conn.execute(
                "SELECT email FROM leads WHERE tenant_id = %s", [t.id])}  # fmt: skip
        assert emails == ours, t.slug  # this tenant's rows, none of the other's


def check_a_second_run_is_refused(run: Run) -> None:
    """A second `make run` on the same data folder is told who holds it (the two would
    share one database; it used to crash with a traceback when they started together)."""
    second = run_stack(run.env)
    assert second.returncode == 1, second.stdout
    assert f"another make run (pid {run.proc.pid}) is using" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and "migrating" not in second.stdout


def check_a_death_is_named(run: Run) -> None:
    """Kill an emulator of a running stack: it is named, its log shown, the rest stopped."""
    children = run.children()
    assert set(children) == {
        "tasks-emulator",
        "gateway",
        *(f"emulator-{n}" for n in stack.EMULATORS),
    }
    os.kill(children["emulator-onecode"], signal.SIGKILL)
    assert run.proc.wait(60) == 1
    err = stderr_of(run)
    assert "emulator-onecode (pid" in err and "was killed by signal 9" in err, err
    assert "  | onecode emulator listening on" in err  # the end of its log
    assert "The rest of the stack has been stopped." in err
    assert not any(Path(f"/proc/{pid}").exists() for pid in children.values())


@pytest.mark.slow
@pytest.mark.db
def test_make_run_walkthrough(launch: Any, tmp_path: Path) -> None:
    """Up means up (index, health, emulators); CLI tokens work; a dying child ends the run."""
    old = b"a line of the run before\n" * 20_000
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "emulator-onecode.log").write_bytes(old)
    (tmp_path / "data" / "emulator-onecode.log.1").write_bytes(b"the run before that\n")
    run = launch()
    wait_until(lambda: "stack is up" in run.printed() or run.proc.poll() is not None, 120,
               "the stack")  # fmt: skip
    assert "stack is up" in run.printed(), stderr_of(run)
    check_index_and_health(run)
    check_logs(run, old)
    _, admin = check_cli_tokens_and_roles(run)
    check_seed_demo_keeps_the_stacks_ports(run)
    check_demo_run_is_quick(run, admin)
    check_tenants_export_apart(run)
    check_a_second_run_is_refused(run)
    check_a_death_is_named(run)


@pytest.mark.slow
@pytest.mark.db
def test_a_child_dying_during_startup_is_named(launch: Any) -> None:
    run = launch()
    wait_until(lambda: "gateway" in run.children(), 60, "the gateway process")
    os.kill(run.children()["gateway"], signal.SIGKILL)
    children = run.children()
    assert run.proc.wait(60) == 1
    err = stderr_of(run)
    assert "gateway (pid" in err and "was killed by signal 9" in err, err
    assert "The rest of the stack has been stopped." in err
    assert "stack is up" not in run.printed()
    assert not any(Path(f"/proc/{pid}").exists() for pid in children.values())


@pytest.mark.slow
@pytest.mark.db
def test_a_stop_during_startup_and_a_killed_stack_leave_nothing_behind(launch: Any) -> None:
    """SIGTERM before the stack is up stops it cleanly (it used to die at once, skipping
    its clean-up); SIGKILL of the stack takes its children with it (they used to hold
    their ports, so the next `make run` blamed "another program")."""
    run = launch()
    wait_until(lambda: "migrating" in run.printed(), 60, "the migrations")
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(60) == 0, stderr_of(run)
    assert "stopping…" in run.printed() and "Traceback" not in stderr_of(run)
    run = launch()
    wait_until(lambda: len(run.children()) == 2 + len(stack.EMULATORS), 60, "the children")
    children = run.children()
    run.proc.kill()
    run.proc.wait(10)
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in children.values()),
        30, "the children to go",
    )  # fmt: skip


def test_a_refused_setting_is_named_before_anything_starts(tmp_path: Path) -> None:
    """A setting the code refuses (a 0 s lease) is one line naming the variable, before the
    database is migrated or seeded; it was a pydantic traceback after both."""
    env = clean_env(**stack_port_env(), SYNCQ_DATA_DIR=str(tmp_path / "data"), STALE_AFTER_S="0")
    done = run_stack(env)
    assert done.returncode == 1, done.stdout
    assert "make run: Invalid setting STALE_AFTER_S: Input should be greater than 0." in (
        done.stderr
    )
    assert "Traceback" not in done.stderr and "migrating" not in done.stdout
    assert not (tmp_path / "data").exists()  # nothing was started, nothing written
