"""Matrix 3: canary secrets and personal data in every request (headers, query strings,
bodies, the credential itself; and in the fields each endpoint really reads), plus every
secret the functions hold (provider keys, webhook secrets, RunningHub's key; the upstream
here quotes back whatever it is sent): none of them in any log line."""

from __future__ import annotations

import pytest

from tests.security.checks import log_failures
from tests.security.endpoints import Endpoint, endpoints
from tests.security.requests import requests_for
from tests.security.world import World

ENDPOINTS = endpoints()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_no_canary_reaches_a_log_line(world: World, endpoint: Endpoint) -> None:
    requests = requests_for(endpoint.id)
    failures = log_failures(world, endpoint, requests.calls(world), requests.pii(world))
    assert not failures, "\n".join(failures)
