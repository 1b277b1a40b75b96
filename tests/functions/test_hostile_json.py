"""Hostile JSON on several functions: a 400 envelope that does not echo it, never a 5xx.

Each body is valid enough for Python's json module (or deep enough to break it) but not
for PostgreSQL: too deep, non-finite numbers, NUL characters, lone surrogates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from shared.providers import PROVIDERS
from tests.conftest import Configure
from tests.credits_support import IMAGE, new_job, new_user
from tests.integration.gestao_support import PROVIDER, SLUG, WEBHOOK_SECRET, secrets_env
from tests.providers_for_tests import ScriptedProvider
from tests.support import bearer, function_client, rows, seed_tenant

pytestmark = pytest.mark.db

SLOT = b"@@"  # where a function's body template takes the hostile value


@dataclass(frozen=True)
class Hostile:
    """A JSON value put in a function's body (or the whole body), and what must not leak."""

    fragment: bytes
    leaks: tuple[bytes, ...] = ()
    whole_body: bool = False


HOSTILE: dict[str, Hostile] = {
    "unclosed_arrays_50000": Hostile(b"[" * 50_000, whole_body=True),
    "nested_arrays_5000": Hostile(b"[" * 5_000 + b"]" * 5_000, whole_body=True),
    "nested_arrays_5000_inside": Hostile(b"[" * 5_000 + b"]" * 5_000),
    "nested_objects_200_inside": Hostile(b'{"a":' * 200 + b"1" + b"}" * 200),
    "nan": Hostile(b"NaN", (b"NaN", b"nan")),
    "infinity": Hostile(b"Infinity", (b"Infinity", b"inf")),
    "minus_infinity": Hostile(b"-Infinity", (b"Infinity", b"inf")),
    "overflowing_float": Hostile(b"1e400", (b"1e400", b"inf")),
    "overflowing_float_in_list": Hostile(b"[1.5, -1e999]", (b"1e999", b"inf")),
    "nul_in_string": Hostile(b'"leak-nul-value\\u0000"', (b"leak-nul-value", b"\\u0000")),
    "nul_in_key": Hostile(b'{"leak-nul-key\\u0000": 1}', (b"leak-nul-key", b"\\u0000")),
    "escaped_lone_surrogate": Hostile(b'"leak-sur-value\\ud800"', (b"leak-sur-value", b"ud800")),
    "escaped_lone_low_surrogate_in_key": Hostile(
        b'{"leak-sur-key\\udc00x": 1}', (b"leak-sur-key", b"udc00")
    ),
    # UTF-8 bytes of U+D800: json.loads decodes bytes with 'surrogatepass'.
    "raw_lone_surrogate": Hostile(
        b'"leak-raw-sur\xed\xa0\x80"', (b"leak-raw-sur", b"\xed\xa0\x80")
    ),
}


@dataclass(frozen=True)
class Target:
    """A function's route, a body template with SLOT, the credentials it needs."""

    name: str
    path: str
    template: bytes
    token: str
    benign: bytes
    benign_status: int


@pytest.fixture(autouse=True)
def _free_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider whose options take any value: the payload carries the values under test
    into the job's jsonb (the real providers take only their declared options)."""
    monkeypatch.setitem(PROVIDERS, "scripted", ScriptedProvider())


def _run_integration(database_url: str, configure: Configure) -> Target:
    tenant = seed_tenant(database_url, "acme", providers={"scripted": {}})
    body = b'{"tenant_id": "%s", "provider_slug": "scripted", "payload": {"note": @@}}'
    return Target(
        "run-integration", "/", body % str(tenant.id).encode(), tenant.admin_token, b'"hello"', 202
    )


def _runninghub_finish(database_url: str, configure: Configure) -> Target:
    user = new_user(database_url)
    job = new_job(database_url, user)
    body = b'{"table": "%s", "jobId": "%s", "status": "failed", "errorMessage": @@}'
    return Target(
        "runninghub-queue-manager",
        "/finish",
        body % (IMAGE.encode(), str(job).encode()),
        user.token,
        b'"it broke"',
        200,
    )


def _export(database_url: str, configure: Configure) -> Target:
    tenant = seed_tenant(database_url, "acme", providers={PROVIDER: {}})
    body = b'{"tenant_id": "%s", "action": "status", "job_id": @@}'
    # No export yet: the benign body gets as far as the service, which answers 404.
    return Target(
        "export-to-gestao-scouter-batch",
        "/",
        body % str(tenant.id).encode(),
        tenant.admin_token,
        b"null",
        404,
    )


def _reverse_sync(database_url: str, configure: Configure) -> Target:
    configure(**secrets_env("unused-service-key"))
    seed_tenant(database_url, SLUG, providers={PROVIDER: {}})
    body = b'{"source": "gestao_scouter", "lead": {"id": 7, "name": @@}}'
    return Target(
        "sync-from-gestao-scouter", f"/?tenant={SLUG}", body, WEBHOOK_SECRET, b'"Ana"', 200
    )


TARGETS: dict[str, Callable[[str, Configure], Target]] = {
    "run-integration": _run_integration,
    "runninghub-queue-manager/finish": _runninghub_finish,
    "export-to-gestao-scouter-batch": _export,
    "sync-from-gestao-scouter": _reverse_sync,
}


def post(target: Target, body: bytes) -> Any:
    headers = {**bearer(target.token), "Content-Type": "application/json"}
    return function_client(target.name).post(target.path, data=body, headers=headers)


def snapshot(database_url: str) -> list[Any]:
    """Every row a hostile body could have written."""
    return [
        rows(database_url, f"SELECT * FROM {table} ORDER BY 1")
        for table in ("integration_jobs", "ai_jobs", "credit_ledger", "leads")
    ]


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("function", list(TARGETS))
def test_hostile_body_is_a_400_envelope(
    function: str, case: str, database_url: str, configure: Configure
) -> None:
    target = TARGETS[function](database_url, configure)
    hostile = HOSTILE[case]
    body = (
        hostile.fragment if hostile.whole_body else target.template.replace(SLOT, hostile.fragment)
    )
    before = snapshot(database_url)

    response = post(target, body)

    assert response.status_code == 400, (function, case, response.get_data()[:300])
    error = response.get_json()["error"]
    assert error["code"] == "invalid_json"
    assert isinstance(error["message"], str) and error["message"]
    raw = response.get_data()
    for leak in hostile.leaks:
        assert leak not in raw, (function, case, leak)
    assert snapshot(database_url) == before


@pytest.mark.parametrize("function", list(TARGETS))
def test_the_same_body_with_a_benign_value_is_accepted(
    function: str, database_url: str, configure: Configure
) -> None:
    """The templates are right (auth passes, the body validates): only the value matters."""
    target = TARGETS[function](database_url, configure)
    response = post(target, target.template.replace(SLOT, target.benign))
    assert response.status_code == target.benign_status, response.get_json()


def test_benign_unicode_and_big_numbers_still_pass(database_url: str, configure: Configure) -> None:
    target = _run_integration(database_url, configure)
    value = '{"emoji": "\\ud83d\\ude00 😀", "big": 123456789012345678901234567890, "f": 1e308}'
    response = post(target, target.template.replace(SLOT, value.encode()))
    assert response.status_code == 202, response.get_json()
    payload = rows(database_url, "SELECT payload FROM integration_jobs")[0]["payload"]
    assert payload["note"]["emoji"] == "😀 😀"


@pytest.mark.parametrize(
    "query",
    [
        {"provider_slug": "acessorias\x00leak-query"},
        {"leak-query\x00": "1"},
        {"status": "pending\x00leak-query"},
    ],
)
def test_nul_in_a_query_parameter_is_a_400_envelope(
    query: dict[str, str], database_url: str
) -> None:
    tenant = seed_tenant(database_url, "acme")
    response = function_client("list-integration-jobs").get(
        "/",
        query_string={"tenant_id": str(tenant.id), **query},
        headers=bearer(tenant.member_token),
    )
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and error["message"]
    assert b"leak-query" not in response.get_data()
