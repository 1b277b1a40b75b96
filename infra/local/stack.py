"""`make run`: the whole local stack in one process tree.

Embedded PostgreSQL (or DATABASE_URL), migrations, demo data, the provider emulators, the
Cloud Tasks emulator (from its own venv), the gateway serving every function and the
minute sweep. Every port is checked before anything starts; "stack is up" is printed only
once this run's own gateway answers its health check and every emulator listens; when a
process of the stack exits, it is named with the end of its log and the rest is stopped
(exit code 1). Ctrl-C stops everything; the data under .data/ stays for the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from pydantic import ValidationError

from infra import migrate
from infra.local import demo, pg, supervise
from infra.local.gateway import HEALTH_PATH, INSTANCE_HEADER
from infra.local.supervise import Children, PortClaim, StackFailed
from shared.settings import environment_names, refused_settings, reload_settings

ROOT = Path(__file__).resolve().parents[2]
# Another folder (SYNCQ_DATA_DIR) runs a second stack beside the first one (tests do).
DATA = Path(os.environ.get("SYNCQ_DATA_DIR") or ROOT / ".data")
TASKS_BIN = ROOT / ".venv-tasks" / "bin" / "gcloud-tasks-emulator"
READY_TIMEOUT_S = 90.0
# The demo Acessórias run re-checks its last (empty) page after 0.2 s and 0.4 s, not after
# the real API's 3 s and 6 s; ACESSORIAS_EMPTY_RECHECK_S in the environment wins.
DEMO_EMPTY_RECHECK_S = "0.2"


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    tasks: int = 9022
    acessorias: int = 8101
    onecode: int = 8102
    bomcontrole: int = 8103
    runninghub: int = 8104
    gestao_scouter: int = 8105  # the first demo tenant's remote project
    gestao_scouter_2: int = 8107  # the second's: each tenant has its own, as in production
    smtp: int = 8106

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable that moves a port (`tasks` -> TASKS_EMULATOR_PORT)."""
        return "TASKS_EMULATOR_PORT" if name == "tasks" else f"{name.upper()}_PORT"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ports:
        """The defaults, moved by GATEWAY_PORT, TASKS_EMULATOR_PORT, <EMULATOR>_PORT."""
        chosen = {
            f.name: supervise.parse_port(env[cls.variable(f.name)], cls.variable(f.name))
            for f in fields(cls)
            if env.get(cls.variable(f.name))
        }
        return cls(**chosen)

    def variables(self) -> dict[str, str]:
        """Every port in the variable that moves it (for the CLI to find this stack's)."""
        return {self.variable(f.name): str(getattr(self, f.name)) for f in fields(self)}

    def of_emulators(self) -> dict[str, int]:
        """Each emulator's port by its name (`gestao-scouter-2`), as the demo data wants."""
        return {name: getattr(self, name.replace("-", "_")) for name in EMULATORS}

    def claims(self) -> list[PortClaim]:
        """Every port, who listens on it and the variable that moves it."""
        owners = {"gateway": "gateway", "tasks": "Cloud Tasks emulator", "smtp": "SMTP sink"}
        return [
            PortClaim(
                getattr(self, f.name),
                owners.get(f.name, f"{f.name.replace('_', '-')} emulator"),
                self.variable(f.name),
            )
            for f in fields(self)
        ]


@dataclass(frozen=True)
class StackContext:
    ports: Ports
    database_url: str
    host: str = "127.0.0.1"

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"


def _seed_tokens(provider: str, count: int = 120) -> list[str]:
    args: list[str] = []
    for tenant in demo.TENANTS:
        args += ["--seed-token", f"{demo.demo_secret(tenant, provider, 'token')}={count}"]
    return args


def remote_database(n: int = 1) -> str:
    """The n-th demo tenant's Gestão Scouter database, beside ours: `gestao_scouter`
    (GESTAO_SCOUTER_DATABASE) for the first, `gestao_scouter_2` for the second."""
    name = os.environ.get("GESTAO_SCOUTER_DATABASE") or "gestao_scouter"
    return name if n == 1 else f"{name}_{n}"


def _remote_project(n: int) -> Callable[[StackContext], list[str]]:
    """The n-th demo tenant's own remote project (a PostgREST emulator over its own
    database): its key only, and its trigger calls our webhook for that tenant."""
    tenant = demo.TENANTS[n - 1]

    def argv(c: StackContext) -> list[str]:
        port = c.ports.gestao_scouter if n == 1 else c.ports.gestao_scouter_2
        webhook = f"{c.url(c.ports.gateway)}/functions/v1/sync-from-gestao-scouter"
        key = demo.demo_secret(tenant, "gestao-scouter", "service_key")
        return [
            "-m", "infra.emulators.postgrest", "--port", str(port),
            "--database", remote_database(n),  # beside $DATABASE_URL: no password in argv
            "--project-ref", demo.remote_project_ref(tenant),
            "--api-key", f"{key}=service_role",
            "--webhook-url", f"{webhook}?tenant={tenant.slug}",
            "--webhook-secret", demo.demo_secret(tenant, "gestao-scouter", "webhook_secret"),
        ]  # fmt: skip

    return argv


# name -> argv builder. A new emulator is one entry here.
EMULATORS: dict[str, Callable[[StackContext], list[str]]] = {
    "acessorias": lambda c: [
        "-m", "infra.emulators.acessorias", "--port", str(c.ports.acessorias),
        *_seed_tokens("acessorias"),
    ],
    "onecode": lambda c: [
        "-m", "infra.emulators.onecode", "--port", str(c.ports.onecode),
        *_seed_tokens("onecode", 500),
    ],
    "bomcontrole": lambda c: [
        "-m", "infra.emulators.bomcontrole", "--port", str(c.ports.bomcontrole),
        *[a for t in demo.TENANTS for a in
          ("--seed-token", f"{demo.demo_secret(t, 'bomcontrole', 'api_key')}=2000")],
    ],
    # Accepts $RUNNINGHUB_API_KEY (the functions' key, same env); tasks take 8 s.
    "runninghub": lambda c: [
        "-m", "infra.emulators.runninghub", "--port", str(c.ports.runninghub),
        "--run-seconds", "8", "--public-url", c.url(c.ports.runninghub),
    ],
    # Each demo tenant's remote Gestão Scouter project: its own database and key.
    "gestao-scouter": _remote_project(1),
    "gestao-scouter-2": _remote_project(2),
    # Alert e-mails land in .data/mail/ as .eml files.
    "smtp": lambda c: [
        "-m", "infra.emulators.smtp", "--port", str(c.ports.smtp), "--out", str(DATA / "mail"),
    ],
}  # fmt: skip
TASKS_QUEUE = "projects/syncq-local/locations/us-central1/queues/syncq"


def jwt_secret() -> str:
    """JWT_SECRET from the environment, else one generated once and kept in .data/."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    path = DATA / "jwt_secret"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def database() -> tuple[str, object | None]:
    """DATABASE_URL, or the embedded server under .data/pg (kept between runs)."""
    if os.environ.get("DATABASE_URL"):  # one that does not parse was refused with the settings
        return os.environ["DATABASE_URL"], None
    try:
        supervise.rotate_log(DATA / "pg" / "log")  # pg_ctl appends to it at every start
        server = pg.start_embedded(DATA / "pg", cleanup="stop")
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:  # a full disk, a file
        # in the way, a start slower than pg_ctl's wait (TimeoutExpired)
        said = getattr(exc, "stderr", None) or getattr(exc, "output", None) or ""
        said = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
        last = supervise.quoted(said.strip().splitlines()[-5:])
        raise StackFailed(
            f"the embedded PostgreSQL could not start in {log_label(DATA / 'pg')}/"
            f" ({type(exc).__name__}: {exc}).{chr(10) + last if last else ''}"
            " Is the disk full, or something in the way? Or use DATABASE_URL."
        ) from exc
    return pg.create_database(server.get_uri(), "syncq"), server


def function_env(ctx: StackContext, secret: str) -> dict[str, str]:
    """The environment the gateway's functions run with."""
    return {
        **os.environ,
        "DATABASE_URL": ctx.database_url,
        "JWT_SECRET": secret,
        "DISPATCHER": "cloudtasks",
        "TASKS_EMULATOR_HOST": f"{ctx.host}:{ctx.ports.tasks}",
        "FUNCTIONS_BASE_URL": f"{ctx.url(ctx.ports.gateway)}/functions/v1",
        "SECRET_BACKEND": "env",
        "PYTHONPATH": str(ROOT),
        "ACESSORIAS_EMPTY_RECHECK_S": os.environ.get(
            "ACESSORIAS_EMPTY_RECHECK_S", DEMO_EMPTY_RECHECK_S
        ),
        # RunningHub: the emulator accepts the same key; webhooks are signed with the secret.
        "RUNNINGHUB_BASE_URL": ctx.url(ctx.ports.runninghub),
        "RUNNINGHUB_API_KEY": os.environ.get("RUNNINGHUB_API_KEY", "demo-runninghub-api-key"),
        "RUNNINGHUB_WEBHOOK_SECRET": os.environ.get(
            "RUNNINGHUB_WEBHOOK_SECRET", hashlib.sha256(f"rh:{secret}".encode()).hexdigest()
        ),
        # Alerts: e-mail to the local SMTP sink, webhooks signed with a key of this stack.
        "ALERT_EMAIL_TRANSPORT": os.environ.get("ALERT_EMAIL_TRANSPORT", "smtp"),
        "SMTP_HOST": ctx.host,
        "SMTP_PORT": str(ctx.ports.smtp),
        "ALERT_WEBHOOK_SECRET": os.environ.get(
            "ALERT_WEBHOOK_SECRET", hashlib.sha256(f"alerts:{secret}".encode()).hexdigest()
        ),
        "ALERT_WEBHOOK_ALLOW_HTTP": os.environ.get("ALERT_WEBHOOK_ALLOW_HTTP", "true"),
        **demo.secret_env(),
    }


def local_env_path() -> Path:
    return DATA / "local.env"


def stack_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The syncq settings in an environment (whether the stack set them or was given them)."""
    names = environment_names()
    return {k: v for k, v in env.items() if k in names or k.startswith("SYNCQ_SECRET_")}


def write_local_env(values: dict[str, str]) -> None:
    """Settings of the running stack, for the ops CLI (`python -m infra.ops`) to pick up."""
    path = local_env_path()
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(values.items())))


def load_local_env() -> None:
    """Adopt the local stack's settings where the environment says nothing (CLI only), and
    none of them when the environment names another database: they belong to that stack."""
    path = local_env_path()
    if not path.exists():
        return
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    named = os.environ.get("DATABASE_URL")
    if named and named != values.get("DATABASE_URL"):
        return
    for key, value in values.items():
        os.environ.setdefault(key, value)


def start_children(
    children: Children, ctx: StackContext, env: dict[str, str], instance: str
) -> None:
    """The Cloud Tasks emulator, the provider emulators and the gateway."""
    ports = ctx.ports
    tasks_argv = [str(TASKS_BIN), "start", "-p", str(ports.tasks), "-q", "-d", TASKS_QUEUE]
    children.start("tasks-emulator", [*tasks_argv, "-r", "20"], {**os.environ})
    for name, build in EMULATORS.items():
        children.start(f"emulator-{name}", [sys.executable, *build(ctx)], env)
    gateway = [sys.executable, "-m", "infra.local.gateway", "--host", ctx.host,
               "--port", str(ports.gateway), "--instance", instance, "--demo-tokens"]  # fmt: skip
    watched = watched_addresses(ctx)
    children.start("gateway", [*gateway, *[f"--emulator={n}={a}" for n, a in watched.items()]], env)


# Emulators that speak no HTTP: the gateway's index gives their host:port, not a URL a user
# would open in a browser (the SMTP sink answers a GET with "unrecognised" lines).
NOT_HTTP = {"smtp"}


def watched_addresses(ctx: StackContext) -> dict[str, str]:
    """What the gateway's index lists and probes: each emulator's URL (host:port for those
    that are not HTTP servers, as the Cloud Tasks emulator, a gRPC server)."""
    watched = {"cloud-tasks": f"{ctx.host}:{ctx.ports.tasks}"}
    for name in EMULATORS:
        port = getattr(ctx.ports, name.replace("-", "_"))
        watched[name] = f"{ctx.host}:{port}" if name in NOT_HTTP else ctx.url(port)
    return watched


def log_label(path: Path) -> str:
    """A log's path as the user would type it (relative to the repository when inside)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def one_stack_per_data_dir() -> IO[str]:
    """An exclusive lock on `<data>/stack.lock` (released when this process exits), or
    StackFailed naming the `make run` that holds it: two would share one database."""
    lock = (DATA / "stack.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise StackFailed(
            f"another make run (pid {holder}) is using {log_label(DATA)}/: stop it first,"
            " or give this one its own SYNCQ_DATA_DIR (and ports)."
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def check_database(server: Any) -> None:
    """StackFailed when the embedded PostgreSQL has exited (the other children are
    watched by check_children); with DATABASE_URL the server is not ours to watch."""
    pid = server.get_pid() if server is not None else None
    if pid is not None and not supervise.pid_alive(pid):
        log = DATA / "pg" / "log"
        head = f"the embedded PostgreSQL (pid {pid}) exited."
        raise StackFailed(supervise.log_report(head, log, log_label(log)))


def check_children(children: Children) -> None:
    """StackFailed naming the first child that exited, with the end of its log; and the
    stop again if one came (see supervise.STOPPING)."""
    supervise.raise_if_stopping()
    dead = children.first_dead()
    if dead is not None:
        raise StackFailed(supervise.death_report(dead, log_label(dead.log)))


def probe(base: str, instance: str) -> str | None:
    """None when this run's gateway is healthy and reports everything up; else what is not."""
    try:
        with httpx.Client(trust_env=False) as client:  # loopback: never through a proxy
            health = client.get(base + HEALTH_PATH, timeout=2.0)
            if health.headers.get(INSTANCE_HEADER) != instance:
                return f"{base}{HEALTH_PATH} answers {health.status_code}, but not from our gateway"
            if health.status_code != 200:
                return "the gateway answers, but the database does not"
            index = client.get(base + "/", timeout=10.0).json()
    except (httpx.HTTPError, ValueError):
        return "the gateway does not answer yet"
    down = [name for name, s in index.get("emulators", {}).items() if not s.get("up")]
    if not index.get("database", {}).get("up"):
        down.insert(0, "database")
    return f"not up yet: {', '.join(down)}" if down else None


def wait_ready(ctx: StackContext, children: Children, instance: str) -> None:
    """Wait until the stack is really up, failing at once when a child exits meanwhile."""
    base = f"{ctx.url(ctx.ports.gateway)}/functions/v1"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        check_children(children)
        missing = probe(base, instance)
        if missing is None:
            return
        if time.monotonic() > deadline:
            raise StackFailed(
                f"the stack did not come up within {READY_TIMEOUT_S:.0f} s ({missing});"
                f" the logs are in {log_label(DATA)}/."
            )
        time.sleep(0.25)


def sweep_forever(ctx: StackContext, token: Callable[[], str], stop: threading.Event) -> None:
    """Cloud Scheduler's job, locally: POST {} to the worker every minute."""
    url = f"{ctx.url(ctx.ports.gateway)}/functions/v1/process-integration-job"
    while not stop.wait(60):
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url, json={}, headers={"Authorization": f"Bearer {token()}"}, timeout=300)


def main() -> int:
    """Run the stack until Ctrl-C (0) or until it cannot run (1, with the reason)."""
    supervise.trap_stop_signals()  # first: a stop during start-up cleans up too
    try:
        return run()
    except StackFailed as exc:
        print(f"\nmake run: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # stopped before the stack was up
        print("\nstopping…", flush=True)
        return 0


def run() -> int:
    ports = Ports.from_env()
    # Held until this process exits; taken before the ports are checked when the folder
    # exists (a running stack is then named as such, not as "another program").
    lock = one_stack_per_data_dir() if DATA.exists() else None
    supervise.check_ports(ports.claims())  # before anything starts or takes long
    try:  # the environment's own settings (the children inherit them), before anything starts
        reload_settings()
    except ValidationError as exc:
        raise StackFailed("\n".join(refused_settings(exc))) from None
    DATA.mkdir(parents=True, exist_ok=True)
    lock = lock or one_stack_per_data_dir()
    secret = jwt_secret()
    database_url, _server = database()
    ctx = StackContext(ports, database_url)
    try:
        print("migrating:", migrate.migrate(database_url) or "up to date")
    except (migrate.MigrationChanged, migrate.MigrationFailed) as exc:
        raise StackFailed(f"the database could not be migrated: {exc}") from exc
    except psycopg.OperationalError as exc:  # not created yet, its server down, a bad login
        raise StackFailed(
            f"the database at {pg.place(database_url)} cannot be used: {pg.reason(exc)}"
            ". Create it or start its server, or leave DATABASE_URL unset for the embedded one."
        ) from exc
    demo.seed(database_url, ports.of_emulators())
    env = function_env(ctx, secret)
    write_local_env({**stack_settings(env), **ports.variables()})
    os.environ.update({"JWT_SECRET": secret, "DATABASE_URL": database_url})
    from shared.auth import mint_token  # noqa: PLC0415 - after the environment is set

    reload_settings()
    children = Children(DATA, ROOT)
    instance = secrets.token_hex(8)
    stop = threading.Event()
    try:
        start_children(children, ctx, env, instance)
        wait_ready(ctx, children, instance)
        threading.Thread(
            target=sweep_forever, args=(ctx, lambda: mint_token(service=True), stop), daemon=True
        ).start()
        _banner(ctx, mint_token)
        while True:
            check_children(children)
            check_database(_server)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    except StackFailed as exc:
        raise StackFailed(f"{exc}\nThe rest of the stack has been stopped.") from exc
    finally:
        stop.set()
        supervise.shutdown(c.proc for c in children.started)


def _banner(ctx: StackContext, mint: Callable[..., str]) -> None:
    tenant = demo.TENANTS[0]
    admin = mint(user_id=tenant.admin, ttl_s=7 * 24 * 3600)
    base = f"{ctx.url(ctx.ports.gateway)}/functions/v1"
    print(
        f"""
syncq local stack is up.
  gateway            {base}/<function>
  index, health      {base}/   {base}{HEALTH_PATH}
  cloud tasks        {ctx.host}:{ctx.ports.tasks} (emulator)
  emulators          {", ".join(f"{n}" for n in EMULATORS)}; logs in {log_label(DATA)}/*.log
  alert e-mails      {log_label(DATA)}/mail/*.eml (the SMTP sink on {ctx.host}:{ctx.ports.smtp})
  database           {pg.shown(ctx.database_url)}

Demo admin of tenant '{tenant.slug}' ({tenant.id}), token valid 7 days:
  export TOKEN={admin}

Run an integration:
  curl -s -X POST {base}/run-integration -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{{"tenant_id": "{tenant.id}", "provider_slug": "acessorias"}}'

Watch it:
  curl -s "{base}/list-integration-jobs?tenant_id={tenant.id}" -H "Authorization: Bearer $TOKEN"
  curl -N "{base}/integration-job-events?tenant_id={tenant.id}" -H "Authorization: Bearer $TOKEN"

Dashboard (pick a demo user to sign in):
  {base}/integrations-dashboard/

Ctrl-C stops everything; data stays in {log_label(DATA)}/.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
