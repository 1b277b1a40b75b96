"""Seed 002, flow 4: two tenants × three providers submitted at once all finish by draining."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from infra.emulators._common import ServerHandle
from shared.dispatch import RecordingDispatcher, get_dispatcher
from tests.provider_support import (
    FLEET_SIZES,
    FLEET_TENANTS,
    fleet_secrets_env,
    fleet_servers,
)
from tests.support import call, rows, seed_tenant, service_token

pytestmark = pytest.mark.db


@pytest.fixture
def emulators() -> Iterator[dict[str, ServerHandle]]:
    with fleet_servers() as handles:
        yield handles


def test_six_jobs_submitted_at_once_drain_from_one_wake_up(
    database_url: str, emulators: dict[str, ServerHandle], configure: Any
) -> None:
    configure(**fleet_secrets_env())
    recorder = get_dispatcher()
    assert isinstance(recorder, RecordingDispatcher)
    config = {p: {"base_url": h.url} for p, h in emulators.items()}
    tenants = [seed_tenant(database_url, slug, providers=config) for slug in FLEET_TENANTS]
    answers: list[Any] = []

    def click(tenant_index: int, provider: str) -> None:
        tenant = tenants[tenant_index]
        body = {"tenant_id": str(tenant.id), "provider_slug": provider}
        answers.append(call("run-integration", body, token=tenant.admin_token))

    clicks = [
        threading.Thread(target=click, args=(i, p))
        for i in range(len(FLEET_TENANTS))
        for p in FLEET_SIZES
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
        (p, "success") for p in FLEET_SIZES for _ in FLEET_TENANTS
    )
    for job in jobs:
        assert job["result"]["records"] == FLEET_SIZES[job["provider_slug"]]
    for task in wake_ups[1:]:  # the other wake-ups arrive late and find nothing to do
        late = call(task.function, task.body, token=service_token()).get_json()
        assert late["processed"] == []
    assert recorder.take() == []  # and nobody re-dispatched: the queue is idle
    integrations = rows(database_url, "SELECT last_status FROM tenant_integrations")
    assert [i["last_status"] for i in integrations] == ["success"] * 6
