"""Seed 002, flow 4: two tenants × three providers submitted at once all finish by draining."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from infra.emulators import acessorias, bomcontrole, onecode
from infra.emulators._common import EmulatorState, ServerHandle, start_in_thread
from shared.dispatch import RecordingDispatcher, get_dispatcher
from shared.secrets import env_var, secret_name
from tests.support import call, rows, seed_tenant, service_token

pytestmark = pytest.mark.db
TENANTS = ("acme", "globex")
SECRET_KEY = {"acessorias": "token", "onecode": "token", "bomcontrole": "api_key"}
SIZES = {"acessorias": 60, "onecode": 450, "bomcontrole": 700}


def credential(tenant: str, provider: str) -> str:
    return f"{tenant}-{provider}-credential"


def _servers() -> dict[str, ServerHandle]:
    ace = acessorias.AcessoriasState(seed=1)
    one = onecode.OneCodeState(seed=2)
    bom = bomcontrole.BomControleState(seed=3)
    states: dict[str, EmulatorState] = {"acessorias": ace, "onecode": one, "bomcontrole": bom}
    for provider, state in states.items():
        for tenant in TENANTS:
            state.seed_token(credential(tenant, provider), SIZES[provider])
    return {
        "acessorias": start_in_thread(acessorias.create_app(ace)),
        "onecode": start_in_thread(onecode.create_app(one)),
        "bomcontrole": start_in_thread(bomcontrole.create_app(bom)),
    }


@pytest.fixture
def emulators() -> Iterator[dict[str, ServerHandle]]:
    handles = _servers()
    yield handles
    for handle in handles.values():
        handle.stop()


def test_six_jobs_submitted_at_once_drain_from_one_wake_up(
    database_url: str, emulators: dict[str, ServerHandle], configure: Any
) -> None:
    configure(**{
        env_var(secret_name(t, p, SECRET_KEY[p])): credential(t, p)
        for t in TENANTS for p in SECRET_KEY
    })  # fmt: skip
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    config = {p: {"base_url": h.url} for p, h in emulators.items()}
    tenants = [seed_tenant(database_url, slug, providers=config) for slug in TENANTS]
    answers: list[Any] = []

    def click(tenant_index: int, provider: str) -> None:
        tenant = tenants[tenant_index]
        body = {"tenant_id": str(tenant.id), "provider_slug": provider}
        answers.append(call("run-integration", body, token=tenant.admin_token))

    clicks = [
        threading.Thread(target=click, args=(i, p)) for i in range(len(TENANTS)) for p in SIZES
    ]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [202] * 6
    wake_ups = recorder.take()
    assert len(wake_ups) == 6  # one wake-up per job, nothing else

    first = call(wake_ups[0].function, wake_ups[0].body, token=service_token())
    assert first.status_code == 200
    assert len(first.get_json()["processed"]) == 6 and first.get_json()["remaining"] == 0
    jobs = rows(database_url, "SELECT provider_slug, status, result FROM integration_jobs")
    assert sorted((j["provider_slug"], j["status"]) for j in jobs) == sorted(
        (p, "success") for p in SIZES for _ in TENANTS
    )
    for job in jobs:
        assert job["result"]["records"] == SIZES[job["provider_slug"]]
    for task in wake_ups[1:]:  # the other wake-ups arrive late and find nothing to do
        late = call(task.function, task.body, token=service_token()).get_json()
        assert late["processed"] == []
    assert recorder.take() == []  # and nobody re-dispatched: the queue is idle
    integrations = rows(database_url, "SELECT last_status FROM tenant_integrations")
    assert [i["last_status"] for i in integrations] == ["success"] * 6
