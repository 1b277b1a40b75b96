"""Matrix 2: tenant A's principal (A's admin, who is also an admin of a third tenant; A's
webhook secret; a URL signed for A's job) x every endpoint with tenant B's ids -> 403/404
(401 for a webhook), no B id, slug, name, job or lead value in the body, B's rows unchanged."""

from __future__ import annotations

import pytest

from tests.security.checks import foreign_failures
from tests.security.endpoints import Endpoint, endpoints
from tests.security.requests import PUBLIC, requests_for
from tests.security.world import World

ENDPOINTS = endpoints()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_tenant_a_gets_nothing_of_tenant_b(world: World, endpoint: Endpoint) -> None:
    calls = requests_for(endpoint.id).foreign(world)
    assert calls or endpoint.id in PUBLIC, f"{endpoint.id}: add a request with B's ids for it"
    failures = foreign_failures(world, endpoint, calls)
    assert not failures, "\n".join(failures)
