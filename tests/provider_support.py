"""Shared plumbing of the provider-sync integration tests (OneCode, BomControle).

:func:`provider_fixtures` builds the ``emulator``, ``state``, ``tenant`` and ``run_job``
fixtures of a test module; the other helpers are the steps those tests have in common.
:func:`fleet_servers` serves seed 002's flow 4: two tenants on all three providers.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask

from infra.emulators import acessorias, bomcontrole, onecode
from infra.emulators._common import EmulatorState, ServerHandle, start_in_thread
from shared.dispatch import get_dispatcher
from shared.secrets import env_var, secret_name
from tests.support import TenantFixture, call, drain, rows, seed_tenant, service_token

RunJob = Callable[..., dict[str, Any]]
# Faults a sync must ride out (with retries and a short client timeout).
FLAKY_KNOBS = {"error_rate": 0.2, "rate_429": 0.1, "timeout_rate": 0.03, "hang_s": 1}
LIVE_JOBS = "SELECT count(*) AS n FROM integration_jobs WHERE status IN ('pending', 'running')"

# Seed 002, flow 4: two tenants on all three providers, each with its own credential.
FLEET_TENANTS = ("acme", "globex")
FLEET_SECRET_KEY = {"acessorias": "token", "onecode": "token", "bomcontrole": "api_key"}
FLEET_SIZES = {"acessorias": 60, "onecode": 450, "bomcontrole": 700}


def fleet_credential(tenant: str, provider: str) -> str:
    return f"{tenant}-{provider}-credential"


def fleet_secrets_env() -> dict[str, str]:
    """Every fleet credential as the environment secret the providers read."""
    return {
        env_var(secret_name(t, p, FLEET_SECRET_KEY[p])): fleet_credential(t, p)
        for t in FLEET_TENANTS
        for p in FLEET_SECRET_KEY
    }


@contextmanager
def fleet_servers() -> Iterator[dict[str, ServerHandle]]:
    """One emulator per provider, each seeded for both tenants; stopped afterwards."""
    ace = acessorias.AcessoriasState(seed=1)
    one = onecode.OneCodeState(seed=2)
    bom = bomcontrole.BomControleState(seed=3)
    states: dict[str, EmulatorState] = {"acessorias": ace, "onecode": one, "bomcontrole": bom}
    for provider, state in states.items():
        for tenant in FLEET_TENANTS:
            state.seed_token(fleet_credential(tenant, provider), FLEET_SIZES[provider])
    handles = {
        "acessorias": start_in_thread(acessorias.create_app(ace)),
        "onecode": start_in_thread(onecode.create_app(one)),
        "bomcontrole": start_in_thread(bomcontrole.create_app(bom)),
    }
    try:
        yield handles
    finally:
        for handle in handles.values():
            handle.stop()


def provider_fixtures(
    state_cls: type[EmulatorState],
    create_app: Callable[[Any], Flask],
    *,
    seed: int,
    token: str,
    count: int,
    provider: str,
    secret: str,
) -> tuple[Any, Any, Any, Any]:
    """The fixtures ``emulator, state, tenant, run_job`` for one provider's sync tests.

    The emulator is seeded with ``count`` rows for ``token``; the tenant "acme" has the
    provider configured against it and ``token`` as its ``secret`` (e.g. "api_key").
    ``run_job(payload=None)`` clicks "Executar", drains the wake-ups and returns the job row.
    """

    @pytest.fixture(name="emulator")
    def emulator() -> Iterator[ServerHandle]:
        state = state_cls(seed=seed)
        state.seed_token(token, count)
        with start_in_thread(create_app(state)) as handle:
            yield handle

    @pytest.fixture(name="state")
    def state(emulator: ServerHandle) -> EmulatorState:
        assert isinstance(emulator.state, state_cls)
        return emulator.state

    @pytest.fixture(name="tenant")
    def tenant(database_url: str, emulator: ServerHandle, configure: Any) -> TenantFixture:
        configure(
            **{env_var(secret_name("acme", provider, secret)): token},
            PROVIDER_RETRY_ATTEMPTS="8",
        )
        config = {"base_url": emulator.url}
        return seed_tenant(database_url, "acme", providers={provider: config})

    @pytest.fixture(name="run_job")
    def run_job(database_url: str, tenant: TenantFixture) -> RunJob:
        def run(payload: dict[str, Any] | None = None) -> dict[str, Any]:
            job_id = start_job(tenant, provider, payload)
            drain(get_dispatcher())
            return job_row(database_url, job_id)

        return run

    return emulator, state, tenant, run_job


def start_job(tenant: TenantFixture, provider: str, payload: dict[str, Any] | None = None) -> str:
    """Click "Executar" as the tenant's admin; the new job's id (its wake-up is queued)."""
    body = {"tenant_id": str(tenant.id), "provider_slug": provider, "payload": payload or {}}
    response = call("run-integration", body, token=tenant.admin_token)
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["job_id"]
    return job_id


def work_in_background(tenant: TenantFixture, provider: str) -> tuple[str, threading.Thread]:
    """A job started, its wake-up taken and delivered by a worker thread (already started)."""
    job_id = start_job(tenant, provider)
    get_dispatcher().take()  # type: ignore[attr-defined]
    worker = threading.Thread(
        target=call, args=("process-integration-job", {"job_id": job_id}),
        kwargs={"token": service_token()},
    )  # fmt: skip
    worker.start()
    return job_id, worker


def job_row(database_url: str, job_id: str) -> dict[str, Any]:
    """The integration_jobs row of a job."""
    return rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]


def checksum(view: list[tuple[Any, ...]]) -> str:
    """An order-independent digest of a list of rows."""
    return hashlib.sha256(repr(sorted(view)).encode()).hexdigest()


def stored_text(database_url: str) -> str:
    """Everything the jobs and their logs stored, as text (to look for leaked secrets)."""
    stored = str(rows(database_url, "SELECT * FROM integration_jobs"))
    return stored + str(rows(database_url, "SELECT * FROM integration_logs"))


def cancel_midway(
    database_url: str,
    tenant: TenantFixture,
    state: EmulatorState,
    configure: Any,
    *,
    provider: str,
    count_sql: str,
    total: int,
) -> None:
    """Start a slow sync, cancel it once ``count_sql`` counts 500 rows, check it stopped.

    A heartbeat (and cancel check) runs before every page, and every page takes 60 ms;
    the job must end canceled with whole pages (of 100) written, fewer than ``total``.
    """
    configure(LISTING_HEARTBEAT_S="0")
    state.knobs.update({"latency_ms": 60})
    job_id, worker = work_in_background(tenant, provider)
    for _ in range(200):
        if rows(database_url, count_sql)[0]["n"] >= 500:
            break
        threading.Event().wait(0.05)
    cancel = call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token)
    assert cancel.status_code == 200
    worker.join(60)
    assert job_row(database_url, job_id)["status"] == "canceled"
    written = rows(database_url, count_sql)[0]["n"]
    assert 500 <= written < total and written % 100 == 0  # whole pages only


def direct_sync_takes_the_slot(tenant: TenantFixture, function: str, provider: str) -> str:
    """With a job live in the slot, ``function`` answers 409 naming it (and 403 to a member).

    Returns the live job's id.
    """
    body = {"tenant_id": str(tenant.id)}
    live = start_job(tenant, provider)
    busy = call(function, body, token=service_token())
    assert busy.status_code == 409
    assert busy.get_json()["error"]["details"]["job_id"] == live
    assert call(function, body, token=tenant.member_token).status_code == 403
    return live
