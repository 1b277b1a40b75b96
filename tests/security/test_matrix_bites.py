"""The matrices bite: a deliberately unprotected function (a real functions-framework main.py
written to a temporary folder: it writes with no auth, answers with any tenant's row and logs
its request) is enumerated, has no request (so every matrix fails until one is added), and
once given one, each matrix check reports it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.checks import credential_failures, foreign_failures, log_failures
from tests.security.credentials import CREDENTIALS, Call, Keys
from tests.security.endpoints import Endpoint, endpoints
from tests.security.requests import requests_for
from tests.security.world import World

ROGUE = """
import logging

import flask
import functions_framework
import psycopg

from shared import log
from shared.settings import get_settings

ROUTES = {"/check": None, "/refund-all": None}  # only read by the routed copy


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    body = request.get_json(silent=True) or {}
    log.get_logger("rogue").info("body %s", body)  # the syncq tree (it does not propagate)
    logging.getLogger("rogue").warning("headers %s", dict(request.headers))  # any other logger
    if request.path.rstrip("/") not in ("", "/check", "/refund-all"):
        return flask.jsonify(error={"code": "not_found", "details": {"routes": ["/check", "/refund-all", "/webhook"]}}), 404
    with psycopg.connect(get_settings().db.database_url) as conn:
        row = conn.execute(
            "UPDATE tenants SET name = name || '!' WHERE id = %s RETURNING slug, name",
            [body.get("tenant_id")],
        ).fetchone()
    return flask.jsonify(tenant=list(row) if row else None)
"""


@pytest.fixture
def functions_dir(tmp_path: Path) -> Path:
    for name, source in (
        ("rogue", ROGUE.replace("ROUTES = ", "_ROUTES = ")),
        ("rogue-routed", ROGUE),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "main.py").write_text(source)
    return tmp_path


def test_a_new_function_and_its_routes_are_enumerated_and_need_requests(
    functions_dir: Path,
) -> None:
    found = [e.id for e in endpoints(functions_dir)]
    assert found == [
        "rogue",
        "rogue-routed/check",
        "rogue-routed/refund-all",
        "rogue-routed/webhook",
    ]
    for endpoint_id in found:
        with pytest.raises(LookupError, match=f"{endpoint_id}: .*add a request for it"):
            requests_for(endpoint_id)


def test_the_credentials_matrix_reports_an_unprotected_writer(
    world: World, keys: Keys, functions_dir: Path
) -> None:
    rogue = endpoints(functions_dir)[0]
    call = Call("write", body={"tenant_id": str(world.a.id)})
    failures = credential_failures(world, keys, rogue, [call])
    statuses = [f for f in failures if "answered 200, not 401/403" in f]
    writes = [f for f in failures if "changed public.tenants: 3 -> 3 rows, contents" in f]
    applicable = [n for n, present in CREDENTIALS.items() if present(world, keys, call)]
    assert len(applicable) >= 12
    assert len(statuses) == len(writes) == len(applicable), "\n".join(failures)
    assert "rogue [write] with alg_none: answered 200" in "\n".join(failures)


def test_the_tenant_matrix_reports_a_function_that_serves_any_tenant(
    world: World, functions_dir: Path
) -> None:
    rogue = Endpoint("rogue-routed", "/check", functions_dir / "rogue-routed" / "main.py")
    failures = foreign_failures(world, rogue, [Call("read B", body={"tenant_id": str(world.b.id)})])
    assert failures[0].startswith(
        "rogue-routed/check [read B]: answered 200, not one of [401, 403, 404]"
    )
    assert "the response shows B slug, B name" in failures[1]
    assert "changed public.tenants: 3 -> 3 rows, contents" in failures[2]


def test_the_log_matrix_reports_a_function_that_logs_its_request(
    world: World, functions_dir: Path
) -> None:
    rogue = endpoints(functions_dir)[0]
    failures = log_failures(world, rogue, [Call("write", body={"tenant_id": str(world.a.id)})], [])

    def reported(canary: str, message: str) -> bool:
        return any(
            f"holds the {canary}: " in f and f'"message": "{message} ' in f for f in failures
        )

    assert reported("password", "body") and reported("cpf", "body"), failures  # syncq's tree
    for canary in ("provider key", "cookie", "canary jwt", "email"):  # a plain logger
        assert reported(canary, "headers"), failures
