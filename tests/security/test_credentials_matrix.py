"""Matrix 1: forged or misused credentials x every function and route -> 401/403, the error
envelope, no row changed (every table's count and checksum), no Cloud Task dispatched."""

from __future__ import annotations

import pytest

from tests.security.checks import credential_failures
from tests.security.credentials import CREDENTIALS, Keys
from tests.security.endpoints import Endpoint, endpoints
from tests.security.requests import PUBLIC, requests_for
from tests.security.world import World

ENDPOINTS = endpoints()


def test_the_matrix_has_a_dozen_credentials_and_more() -> None:
    assert len(CREDENTIALS) >= 12


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_forged_credentials_are_refused_and_change_nothing(
    world: World, keys: Keys, endpoint: Endpoint
) -> None:
    calls = requests_for(endpoint.id).calls(world)
    assert calls, f"{endpoint.id}: add at least one request for it"
    failures = credential_failures(world, keys, endpoint, calls, public=endpoint.id in PUBLIC)
    assert not failures, "\n".join(failures)
