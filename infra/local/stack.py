"""`make run`: the whole local stack in one process tree.

Embedded PostgreSQL (or DATABASE_URL), migrations, demo data, the provider emulators, the
Cloud Tasks emulator (from its own venv), the gateway serving every function and the
minute sweep. Ctrl-C stops everything; the data under .data/ stays for the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra import migrate
from infra.local import demo, pg

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".data"
TASKS_BIN = ROOT / ".venv-tasks" / "bin" / "gcloud-tasks-emulator"


@dataclass(frozen=True)
class Ports:
    gateway: int = int(os.environ.get("GATEWAY_PORT", "8080"))
    tasks: int = int(os.environ.get("TASKS_EMULATOR_PORT", "9022"))
    acessorias: int = int(os.environ.get("ACESSORIAS_PORT", "8101"))
    onecode: int = int(os.environ.get("ONECODE_PORT", "8102"))
    bomcontrole: int = int(os.environ.get("BOMCONTROLE_PORT", "8103"))
    runninghub: int = int(os.environ.get("RUNNINGHUB_PORT", "8104"))
    gestao_scouter: int = int(os.environ.get("GESTAO_SCOUTER_PORT", "8105"))


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
    # The remote Gestão Scouter: database gestao_scouter beside DATABASE_URL; its trigger
    # calls our webhook for tenant acme.
    "gestao-scouter": lambda c: [
        "-m", "infra.emulators.postgrest", "--port", str(c.ports.gestao_scouter),
        "--database-url", pg.with_dbname(c.database_url, "gestao_scouter"),
        *[a for t in demo.TENANTS for a in
          ("--api-key", f"{demo.demo_secret(t, 'gestao-scouter', 'service_key')}=service_role")],
        "--webhook-url",
        f"{c.url(c.ports.gateway)}/functions/v1/sync-from-gestao-scouter?tenant={demo.TENANTS[0].slug}",
        "--webhook-secret", demo.demo_secret(demo.TENANTS[0], "gestao-scouter", "webhook_secret"),
    ],
}  # fmt: skip


def jwt_secret() -> str:
    """JWT_SECRET from the environment, else one generated once and kept in .data/."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    path = DATA / "jwt_secret"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def database() -> tuple[str, object | None]:
    """DATABASE_URL, or the embedded server under .data/pg (kept between runs)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    server = pg.start_embedded(DATA / "pg", cleanup="stop")
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
        # RunningHub: the emulator accepts the same key; webhooks are signed with the secret.
        "RUNNINGHUB_BASE_URL": ctx.url(ctx.ports.runninghub),
        "RUNNINGHUB_API_KEY": os.environ.get("RUNNINGHUB_API_KEY", "demo-runninghub-api-key"),
        "RUNNINGHUB_WEBHOOK_SECRET": os.environ.get(
            "RUNNINGHUB_WEBHOOK_SECRET", hashlib.sha256(f"rh:{secret}".encode()).hexdigest()
        ),
        **demo.secret_env(),
    }


LOCAL_ENV = DATA / "local.env"


def write_local_env(values: dict[str, str]) -> None:
    """Settings of the running stack, for the ops CLI (`python -m infra.ops`) to pick up."""
    LOCAL_ENV.write_text("".join(f"{k}={v}\n" for k, v in sorted(values.items())))
    LOCAL_ENV.chmod(0o600)


def load_local_env() -> None:
    """Adopt the local stack's settings where the environment says nothing (CLI only)."""
    if not LOCAL_ENV.exists():
        return
    for line in LOCAL_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key not in os.environ:
            os.environ[key] = value


def start(argv: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = open(DATA / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    """Wait until something answers at url (any status)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up; see .data/*.log")


def sweep_forever(ctx: StackContext, token: Callable[[], str], stop: threading.Event) -> None:
    """Cloud Scheduler's job, locally: POST {} to the worker every minute."""
    url = f"{ctx.url(ctx.ports.gateway)}/functions/v1/process-integration-job"
    while not stop.wait(60):
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url, json={}, headers={"Authorization": f"Bearer {token()}"}, timeout=300)


def main() -> None:
    DATA.mkdir(exist_ok=True)
    secret = jwt_secret()
    database_url, _server = database()
    ports = Ports()
    ctx = StackContext(ports, database_url)
    print("migrating:", migrate.migrate(database_url) or "up to date")
    demo.seed(
        database_url,
        {p.slug: getattr(ports, p.slug.replace("-", "_"), p.port) for p in demo.PROVIDERS},
    )
    env = function_env(ctx, secret)
    write_local_env({k: v for k, v in env.items() if os.environ.get(k) != v})
    os.environ.update({"JWT_SECRET": secret, "DATABASE_URL": database_url})
    from shared.auth import mint_token  # noqa: PLC0415 - after the environment is set
    from shared.settings import reload_settings  # noqa: PLC0415

    reload_settings()
    procs: list[subprocess.Popen[bytes]] = []
    queue = "projects/syncq-local/locations/us-central1/queues/syncq"
    stop = threading.Event()
    trap_stop_signals()
    try:
        procs.append(
            start(
                [str(TASKS_BIN), "start", "-p", str(ports.tasks), "-q", "-d", queue, "-r", "20"],
                {**os.environ},
                "tasks-emulator",
            )
        )
        for name, build in EMULATORS.items():
            procs.append(start([sys.executable, *build(ctx)], env, f"emulator-{name}"))
        gateway = f"from infra.local.gateway import serve; serve('{ctx.host}', {ports.gateway})"
        procs.append(start([sys.executable, "-c", gateway], env, "gateway"))
        wait_http(f"{ctx.url(ports.gateway)}/functions/v1/")
        threading.Thread(
            target=sweep_forever, args=(ctx, lambda: mint_token(service=True), stop), daemon=True
        ).start()
        _banner(ctx, mint_token)
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        print("a process of the stack exited; see .data/*.log", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping…")
    finally:
        stop.set()
        shutdown(procs)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _stop_once(signum: int, frame: object) -> None:
    # Ignore the next ones first: `make` forwards a group's SIGTERM, so a second one
    # arrives while we are stopping, and must not interrupt the shutdown.
    _ignore_stop_signals()
    raise KeyboardInterrupt


def trap_stop_signals() -> None:
    """The first Ctrl-C or SIGTERM raises KeyboardInterrupt; later ones are ignored."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop_once)


def shutdown(procs: list[subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    """Terminate every child, wait for each, and kill those still running after grace_s.

    Idempotent under signals: SIGINT/SIGTERM are ignored from here on, so a repeated
    Ctrl-C or a forwarded SIGTERM cannot leave a child behind.
    """
    _ignore_stop_signals()
    for p in procs:
        p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _banner(ctx: StackContext, mint: Callable[..., str]) -> None:
    tenant = demo.TENANTS[0]
    admin = mint(user_id=tenant.admin, ttl_s=7 * 24 * 3600)
    base = f"{ctx.url(ctx.ports.gateway)}/functions/v1"
    print(
        f"""
syncq local stack is up.
  gateway            {base}/<function>
  cloud tasks        {ctx.host}:{ctx.ports.tasks} (emulator)
  emulators          {", ".join(f"{n}" for n in EMULATORS)}; logs in .data/*.log
  database           {ctx.database_url}

Demo admin of tenant '{tenant.slug}' ({tenant.id}), token valid 7 days:
  export TOKEN={admin}

Run an integration:
  curl -s -X POST {base}/run-integration -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' \\
       -d '{{"tenant_id": "{tenant.id}", "provider_slug": "acessorias"}}'

Watch it:
  curl -s "{base}/list-integration-jobs?tenant_id={tenant.id}" -H "Authorization: Bearer $TOKEN"
  curl -N "{base}/integration-job-events?tenant_id={tenant.id}" -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything; data stays in .data/.
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
