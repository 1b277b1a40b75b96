"""Bad input on every queue function: a 4xx envelope, and nothing written."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from infra.local.gateway import contract_document
from tests.conftest import Configure
from tests.support import TenantFixture, bearer, function_client, rows, seed_tenant, service_token

pytestmark = pytest.mark.db


def _counts(database_url: str) -> tuple[int, int]:
    r = rows(
        database_url,
        "SELECT (SELECT count(*) FROM integration_jobs) AS j, (SELECT count(*) FROM integration_logs) AS l",
    )[0]
    return r["j"], r["l"]


def post_cases(t: TenantFixture) -> list[tuple[str, Any, int, str]]:
    tid = str(t.id)
    big = {"tenant_id": tid, "provider_slug": "acessorias", "payload": {"x": "a" * 300_000}}
    return [
        ("run-integration", {"tenant_id": 123, "provider_slug": "acessorias"}, 422, "validation_error"),
        ("run-integration", {"tenant_id": "not-a-uuid", "provider_slug": "acessorias"}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "nope"}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "acessorias", "extra": 1}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "acessorias", "payload": []}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "acessorias",
                             "payload": {"nested": {"api_key": "x"}}}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "acessorias",
                             "payload": {"note": ["Bearer abcdefgh12345678"]}}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "acessorias",
                             "payload": {"x": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "acessorias",
                             "payload": {"full": True}}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "bomcontrole",
                             "payload": {"full": "yes"}}, 422, "validation_error"),
        ("run-integration", {"tenant_id": tid, "provider_slug": "bomcontrole",
                             "payload": {"full": True, "since": "2020-01-01"}}, 422, "validation_error"),
        ("run-integration", b"{not json", 400, "invalid_json"),
        ("run-integration", b"[1, 2]", 400, "invalid_json"),
        ("run-integration", big, 413, "payload_too_large"),
        ("cancel-integration-job", {"job_id": "123"}, 422, "validation_error"),
        ("cancel-integration-job", {}, 422, "validation_error"),
        ("process-integration-job", {"job_id": "x"}, 422, "validation_error"),
        ("process-integration-job", {"unknown": True}, 422, "validation_error"),
        ("sync-acessorias", {"tenant_slug": "NOT A SLUG!"}, 422, "validation_error"),
        ("sync-acessorias", {"tenant_id": tid, "tenant_slug": "acme"}, 422, "validation_error"),
        ("sync-acessorias", b"\xff\xfe", 400, "invalid_json"),
    ]  # fmt: skip


def test_bad_bodies(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    for name, body, status, code in post_cases(tenant):
        token = service_token() if name == "process-integration-job" else tenant.admin_token
        client = function_client(name)
        if isinstance(body, bytes):
            response = client.post(
                "/", data=body, headers={**bearer(token), "Content-Type": "application/json"}
            )
        else:
            response = client.post("/", json=body, headers=bearer(token))
        assert response.status_code == status, (
            name,
            body if not isinstance(body, dict) else list(body),
            response.get_json(),
        )
        error = response.get_json()["error"]
        assert error["code"] == code and error["message"]
    assert _counts(database_url) == (0, 0)


def test_a_body_short_of_its_content_length_under_gunicorn_is_a_400(database_url: str) -> None:
    """gunicorn marks its input terminated (werkzeug does not limit it) and its reader just
    ends where the data does: deployed, a cut-off body was acted on (202, a job created)."""
    tenant = seed_tenant(database_url, "acme")
    body = json.dumps({"tenant_id": str(tenant.id), "provider_slug": "acessorias"}).encode()
    for missing in (50, 1):  # one byte short is as cut off as fifty
        answer = function_client("run-integration").post(
            "/",
            headers={**bearer(tenant.admin_token), "Content-Type": "application/json"},
            environ_overrides={  # what gunicorn hands over
                "wsgi.input": io.BytesIO(body),
                "wsgi.input_terminated": True,
                "CONTENT_LENGTH": str(len(body) + missing),
            },
        )
        assert answer.status_code == 400, (missing, answer.get_json())
        assert answer.get_json()["error"]["code"] == "malformed_body"
    assert rows(database_url, "SELECT id FROM integration_jobs") == []
    whole = function_client("run-integration").post(
        "/",
        headers={**bearer(tenant.admin_token), "Content-Type": "application/json"},
        environ_overrides={
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "CONTENT_LENGTH": str(len(body)),
        },
    )
    assert whole.status_code == 202, whole.get_json()


def test_validation_details_never_echo_the_input(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    secret_looking = "4111111111111111-ana@example.com"
    response = function_client("run-integration").post(
        "/", json={"tenant_id": secret_looking, "provider_slug": "acessorias"},
        headers=bearer(tenant.admin_token),
    )  # fmt: skip
    assert response.status_code == 422
    assert secret_looking not in response.get_data(as_text=True)
    assert response.get_json()["error"]["details"][0]["loc"] == ["tenant_id"]


def test_bad_queries_and_methods(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    tid = str(tenant.id)
    cases = [
        ("list-integration-jobs", {"tenant_id": tid, "limit": "abc"}, 422),
        ("list-integration-jobs", {"tenant_id": tid, "limit": "100000"}, 422),
        ("list-integration-jobs", {"tenant_id": tid, "status": "bogus"}, 422),
        ("list-integration-jobs", {"tenant_id": tid, "provider_slug": "nope"}, 422),
        ("list-integration-jobs", {"tenant_id": tid, "before": "x"}, 422),
        ("list-integration-jobs", {}, 422),
        ("integration-job-events", {"tenant_id": "x"}, 422),
        ("integration-job-events", {"tenant_id": tid, "max_seconds": "-1"}, 422),
        # A parameter given twice: which one would count is anyone's guess.
        ("list-integration-jobs", [("tenant_id", tid), ("tenant_id", str(uuid.uuid4()))], 422),
        ("integration-metrics", [("tenant_id", tid), ("days", "7"), ("days", "30")], 422),
    ]
    for name, query, status in cases:
        response = function_client(name).get(
            "/", query_string=query, headers=bearer(tenant.member_token)
        )
        assert response.status_code == status, (name, query)
        assert response.get_json()["error"]["code"] == "validation_error"
    wrong_method = function_client("run-integration").get("/", headers=bearer(tenant.admin_token))
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "method_not_allowed"
    post_to_get = function_client("list-integration-jobs").post(
        "/", json={}, headers=bearer(tenant.member_token)
    )
    assert post_to_get.status_code == 405
    text = function_client("run-integration").post(
        "/",
        data="tenant_id=1",
        headers={**bearer(tenant.admin_token), "Content-Type": "text/plain"},
    )
    assert text.status_code == 415
    body = json.dumps({"tenant_id": tid, "provider_slug": "acessorias"}).encode()
    for coding, data in (("gzip", gzip.compress(body)), ("br", body), ("x-unknown", body)):
        encoded = post_encoded(tenant, data, coding)
        assert encoded.status_code == 415, (coding, encoded.get_json())
        assert encoded.get_json()["error"]["code"] == "unsupported_media_type"
        assert "Content-Encoding" in encoded.get_json()["error"]["message"]
    assert _counts(database_url) == (0, 0)


def post_encoded(tenant: TenantFixture, data: bytes, coding: str) -> Any:
    """run-integration's answer to a JSON body sent under a Content-Encoding."""
    return function_client("run-integration").post(
        "/",
        data=data,
        headers={**bearer(tenant.admin_token), "Content-Type": "application/json",
                 "Content-Encoding": coding},
    )  # fmt: skip


def test_a_body_under_no_coding_is_read(database_url: str) -> None:
    """Content-Encoding is a list that may be empty (RFC 9110 `#content-coding`), and
    `identity` is no coding, in any case: the body is read as sent, not refused 415."""
    tenant = seed_tenant(database_url, "acme")
    body = json.dumps({"tenant_id": str(tenant.id), "provider_slug": "nope"}).encode()
    for coding in ("", " ", "identity", "IDENTITY", "Identity, identity"):
        read = post_encoded(tenant, body, coding)
        assert read.status_code == 422, (coding, read.get_json())  # the body was read
        assert read.get_json()["error"]["details"][0]["loc"] == ["provider_slug"]
    assert _counts(database_url) == (0, 0)


def test_disabled_integration_is_422(database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme", enabled=False)
    response = function_client("run-integration").post(
        "/", json={"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
        headers=bearer(tenant.admin_token),
    )  # fmt: skip
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "integration_disabled"
    assert _counts(database_url) == (0, 0)


def test_cors_preflight_and_headers(database_url: str, configure) -> None:  # type: ignore[no-untyped-def]
    tenant = seed_tenant(database_url, "acme")
    preflight = function_client("run-integration").options(
        "/", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    # An error answer carries the header too, so the browser can read the envelope.
    denied = function_client("run-integration").post(
        "/", json={}, headers={"Origin": "https://app.example"}
    )
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == "*"
    assert denied.headers["Access-Control-Expose-Headers"] == "Retry-After"
    # With an allow-list, only listed origins are echoed back.
    configure(CORS_ALLOWED_ORIGINS='["https://app.example"]', DATABASE_URL=database_url)
    listed = function_client("list-integration-jobs").get(
        "/", query_string={"tenant_id": str(tenant.id)},
        headers={**bearer(tenant.member_token), "Origin": "https://app.example"},
    )  # fmt: skip
    assert listed.status_code == 200
    assert listed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = function_client("list-integration-jobs").get(
        "/", query_string={"tenant_id": str(tenant.id)},
        headers={**bearer(tenant.member_token), "Origin": "https://evil.example"},
    )  # fmt: skip
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Expose-Headers" not in other.headers


@pytest.mark.parametrize(
    ("function", "path"),
    [("list-integration-jobs", "/"), ("list-integrations", "/"), ("integration-schedules", "/"),
     ("integration-alerts", "/"), ("integration-metrics", "/"), ("my-tenants", "/"),
     ("run-integration", "/openapi.json")],
)  # fmt: skip
def test_head_is_a_get_without_its_body(database_url: str, function: str, path: str) -> None:
    """RFC 9110: wherever GET answers, HEAD does too, with the same status and headers."""
    acme = seed_tenant(database_url, "acme")
    client = function_client(function)
    query = {} if function == "my-tenants" else {"tenant_id": str(acme.id)}
    headers = bearer(acme.member_token)
    got = client.get(path, query_string=query, headers=headers)
    head = client.head(path, query_string=query, headers=headers)
    assert got.status_code == 200 and head.status_code == 200, head.get_data(as_text=True)
    assert head.get_data() == b"" and head.mimetype == got.mimetype
    refused = client.post(path, query_string=query, json={}, headers=headers)
    if refused.status_code == 405:
        assert "HEAD" in refused.headers["Allow"].split(", ")


def test_head_of_the_event_stream_gives_its_slot_back(
    database_url: str, configure: Configure
) -> None:
    configure(SSE_MAX_STREAMS_PER_USER="2")
    acme = seed_tenant(database_url, "acme")
    client = function_client("integration-job-events")
    query, headers = {"tenant_id": str(acme.id)}, bearer(acme.member_token)
    for _ in range(5):  # more than the cap: each HEAD's stream is closed at once
        head = client.head("/", query_string=query, headers=headers)
        assert head.status_code == 200 and head.mimetype == "text/event-stream"
        assert head.get_data() == b""
        head.close()
    stream = client.get("/", query_string={**query, "max_seconds": "1"}, headers=headers)
    assert stream.status_code == 200
    stream.close()


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico", "/static/app.js"])
@pytest.mark.parametrize("name", ["run-integration", "integrations-dashboard"])
def test_paths_the_framework_answers_itself_get_the_envelope(name: str, path: str) -> None:
    """functions-framework's own /robots.txt and /favicon.ico, and Flask's /static route,
    answered an HTML page before the function ran."""
    client = function_client(name)
    found = client.get(path)
    assert (found.status_code, found.mimetype) == (404, "application/json"), found.data[:80]
    assert found.get_json()["error"]["code"] == "not_found"
    posted = client.post(path, data=b"{}", content_type="application/json")
    assert posted.mimetype == "application/json" and posted.status_code in (404, 405)
    assert "error" in posted.get_json()


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("OPTIONS", "/"), ("GET", "/nope")])
def test_settings_that_cannot_be_read_still_answer_the_envelope(
    database_url: str, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    """A setting that does not parse (here DATABASE_URL) fails every request: with the
    error envelope, as every error is, not the framework's HTML crash page."""
    from shared.settings import get_settings, reload_settings

    token = service_token()
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:s3cret%zzpw@127.0.0.1:5432/x")
    get_settings.cache_clear()
    try:
        response = function_client("list-integration-jobs").open(
            path, method=method, query_string={"tenant_id": str(uuid.uuid4())},
            headers={**bearer(token), "Origin": "http://localhost:5173",
                     "Access-Control-Request-Method": "GET"},
        )  # fmt: skip
    finally:
        monkeypatch.undo()
        reload_settings()
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "Internal error."}
    }


def test_a_value_the_document_refuses_is_refused(database_url: str) -> None:
    """A slug with spaces around it is outside the document's enum or pattern: 422, as the
    document says (a client or a fuzzer checks answers against it), and nothing written."""
    tenant = seed_tenant(database_url, "acme")
    doc = contract_document()
    body = {"tenant_id": str(tenant.id), "provider_slug": " acessorias "}
    for name, sent in (("run-integration", body), ("sync-acessorias", {"tenant_slug": " acme "})):
        schema = doc["paths"][f"/{name}"]["post"]["requestBody"]["content"]["application/json"]
        assert not _valid(doc, schema["schema"], sent), (name, sent)
        answer = function_client(name).post("/", json=sent, headers=bearer(tenant.admin_token))
        assert answer.status_code == 422, (name, answer.get_json())
    query = {"tenant_id": str(tenant.id), "provider_slug": " onecode "}
    [param] = [
        p for p in doc["paths"]["/list-integration-jobs"]["get"]["parameters"]
        if p["name"] == "provider_slug"
    ]  # fmt: skip
    assert not _valid(doc, param["schema"], query["provider_slug"])
    listed = function_client("list-integration-jobs").get(
        "/", query_string=query, headers=bearer(tenant.admin_token)
    )
    assert listed.status_code == 422, listed.get_json()
    assert _counts(database_url) == (0, 0)


def _valid(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` meets `schema`, a part of `doc` (its `$ref`s read in the document)."""
    return Draft202012Validator({**schema, "components": doc["components"]}).is_valid(value)
