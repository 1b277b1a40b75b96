"""Shared fixtures and helpers of the Gestão Scouter tests: the remote emulator, a tenant
wired to it, lead seeding, driving the export through its Cloud Tasks, and table views."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import psycopg

from infra.emulators._common import ServerHandle
from infra.emulators.postgrest import PostgrestState
from infra.local import demo
from shared import dispatch
from shared.dispatch import RecordingDispatcher
from shared.gestao.mapping import DEFAULT_MAPPING
from shared.secrets import env_var, secret_name
from tests.support import TenantFixture, call, rows, service_token

REMOTE_SECRET = "gestao-scouter-remote-jwt-secret-0123456789abcdef"
WEBHOOK_SECRET = "webhook-secret-for-acme-0123456789"
SLUG = "acme"
PROVIDER = "gestao-scouter"


class Remote:
    """The emulated remote project: state, server and a superuser connection URL."""

    def __init__(self, state: PostgrestState, handle: ServerHandle, url: str) -> None:
        self.state = state
        self.handle = handle
        self.db_url = url

    @property
    def url(self) -> str:
        return self.handle.url

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(statement, params or None)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def reset(self) -> None:
        self.sql("TRUNCATE public.leads, emulator.webhook_outbox")
        self.state.reset()
        self.state.webhook.url = self.state.webhook.secret = None
        self.state.set_loop_guard(True)


def secrets_env(service_key: str) -> dict[str, str]:
    return {
        env_var(secret_name(SLUG, PROVIDER, "service_key")): service_key,
        env_var(secret_name(SLUG, PROVIDER, "webhook_secret")): WEBHOOK_SECRET,
    }


def seed_leads(
    database_url: str, tenant_id: Any, count: int, *, first_day: str = "2024-01-01",
    spread_days: int = 60,
) -> None:  # fmt: skip
    with psycopg.connect(database_url) as conn:
        demo.seed_leads(conn, tenant_id, count, date.fromisoformat(first_day), spread_days)


def export(tenant: TenantFixture, action: str, **body: Any) -> Any:
    response = call(
        "export-to-gestao-scouter-batch",
        {"tenant_id": str(tenant.id), "action": action, **body},
        token=tenant.admin_token,
    )
    return response


def run_once(tenant_id: Any, job_id: str) -> Any:
    """One run of the export's runner, as its wake-up calls it (the service)."""
    body = {"tenant_id": str(tenant_id), "action": "run", "job_id": job_id}
    return call("export-to-gestao-scouter-batch", body, token=service_token())


def sweep() -> Any:
    return call("process-integration-job", {}, token=service_token())


def recorder() -> RecordingDispatcher:
    """The current recording dispatcher (configure() replaces it)."""
    current = dispatch.get_dispatcher()
    assert isinstance(current, RecordingDispatcher)
    return current


def drive(database_url: str, job_id: str, *, rounds: int = 400,
          swallow: type[BaseException] | None = None, stale_wait_s: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """Deliver Cloud Tasks (and run the sweep when none is left) until the job settles."""
    for _ in range(rounds):
        tasks = recorder().take()
        for task in sorted(tasks, key=lambda t: t.delay_s):
            try:
                call(task.function, task.body, token=service_token(), path=task.path or "/")
            except BaseException as exc:
                if swallow is None or not isinstance(exc, swallow):
                    raise
        job = job_row(database_url, job_id)
        if job["status"] in ("completed", "failed", "paused"):
            return job
        if not tasks:
            time.sleep(stale_wait_s)
            sweep()
    raise AssertionError("the export did not settle")


def job_row(database_url: str, job_id: str) -> dict[str, Any]:
    return rows(database_url, "SELECT * FROM gestao_scouter_export_jobs WHERE id = %s", job_id)[0]


LOCAL_VIEW = (
    "SELECT id, name, age, address, celular, telefone, email, responsavel, scouter, projeto,"
    " etapa, status, fonte, foto_url, data_nascimento, genero, latitude, longitude,"
    " valor_ficha, ficha_confirmada, criado, updated_at FROM leads ORDER BY id"
)


def local_view(database_url: str, where: str = "") -> list[tuple[Any, ...]]:
    """Local leads as the remote should hold them (default mapping)."""
    sql_text = (
        LOCAL_VIEW if not where else LOCAL_VIEW.replace(" ORDER BY", f" WHERE {where} ORDER BY")
    )
    with psycopg.connect(database_url) as conn:
        return [tuple(r) for r in conn.execute(sql_text)]  # type: ignore[arg-type]


def remote_view(remote: Remote) -> list[tuple[Any, ...]]:
    cols = ", ".join(
        DEFAULT_MAPPING[c]
        for c in LOCAL_VIEW.split("SELECT ")[1]
        .split(" FROM", maxsplit=1)[0]
        .replace(" ", "")
        .split(",")
    )
    return remote.sql(f"SELECT {cols} FROM public.leads ORDER BY id")
