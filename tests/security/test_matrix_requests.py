"""The matrices' own guarantees: they enumerate every function and route, know how to call
each (an unknown one fails, naming it), and each request is one its rightful caller gets
through with, so that a refusal in the matrices is the credential's doing."""

from __future__ import annotations

import time

import jwt
import pytest

from infra.local.gateway import function_names, load_contract
from tests.security.checks import control_failures
from tests.security.credentials import Keys
from tests.security.endpoints import FUNCTIONS, Endpoint, endpoints, send
from tests.security.requests import ANTICIPATED, PUBLIC, REQUESTS, requests_for
from tests.security.world import ISSUER, World

ENDPOINTS = endpoints()


def test_every_function_folder_and_route_is_enumerated() -> None:
    folders = {p.name for p in FUNCTIONS.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert {e.function for e in ENDPOINTS} == folders
    routed = {e.route for e in ENDPOINTS if e.function == "runninghub-queue-manager"}
    assert {"/check", "/start", "/finish", "/cancel", "/webhook"} <= routed


def test_every_endpoint_has_requests() -> None:
    unknown = []
    for endpoint in ENDPOINTS:
        try:
            requests_for(endpoint.id)
        except LookupError as exc:
            unknown.append(str(exc))
    assert not unknown, "\n".join(unknown)


def test_every_method_an_endpoint_declares_has_requests(world: World) -> None:
    """Several methods may share a path (integration-schedules: GET, PUT, DELETE; the export:
    POST and GET): each is a way in, so each needs its calls, its foreign calls included."""
    uncalled = []
    for name in function_names():
        for declared in load_contract(FUNCTIONS / name / "main.py").endpoints:
            endpoint_id = name + ("" if declared.path == "/" else declared.path)
            if endpoint_id in PUBLIC:
                continue
            requests = requests_for(endpoint_id)
            for kind, calls in (("calls", requests.calls), ("foreign", requests.foreign)):
                if declared.method not in {c.method for c in calls(world)}:
                    uncalled.append(f"{endpoint_id} {declared.method}: no request in {kind}")
    assert not uncalled, "\n".join(uncalled)


def test_no_request_is_for_an_endpoint_that_is_gone() -> None:
    known = {e.id for e in ENDPOINTS}
    stale = set(REQUESTS) - known - ANTICIPATED
    assert not stale, f"requests for endpoints that no longer exist: {sorted(stale)}"
    assert set(PUBLIC) <= known


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_the_rightful_caller_gets_through(world: World, endpoint: Endpoint) -> None:
    requests = requests_for(endpoint.id)
    failures = control_failures(world, endpoint, requests.calls(world) + requests.pii(world))
    assert not failures, "\n".join(failures)


def test_tokens_from_the_trusted_keys_get_through(world: World, keys: Keys) -> None:
    """The JWKS keys are trusted, so the unknown and forged key ids above are refused for
    their key, not because asymmetric tokens are off."""
    endpoint = next(e for e in ENDPOINTS if e.id == "list-integration-jobs")
    now = int(time.time())
    claims = {"sub": str(world.a.member), "role": "authenticated", "aud": "authenticated",
              "iss": ISSUER, "iat": now, "exp": now + 600}  # fmt: skip
    for kid, key, alg in (("ec1", keys.ec_key, "ES256"), ("rsa1", keys.rsa_key, "RS256")):
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})
        response = send(endpoint, "GET", query={"tenant_id": str(world.a.id)},
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert response.status_code == 200, (alg, response.get_json())
