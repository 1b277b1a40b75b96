"""The OpenAPI document: every function and route in it, valid, served whole by the gateway
and in parts by each function, and answered exactly as declared."""

from __future__ import annotations

from typing import Any

import flask
import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.test import Client

from infra.local import gateway
from infra.local.gateway import FUNCTIONS_DIR, PREFIX, STATIC_DIR, function_names, load_contract
from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function
from shared.web import handle
from tests.support import function_client

CREDIT_ROUTES = {"/check", "/start", "/finish", "/cancel", "/webhook"}  # and /create, if declared


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return gateway.contract_document()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_every_function_folder_and_route_is_in_the_document(doc: dict[str, Any]) -> None:
    names = function_names()
    assert len(names) >= 14
    for name in names:
        api = load_contract(FUNCTIONS_DIR / name / "main.py")
        assert api.name == name
        for endpoint in api.endpoints:
            path = f"/{name}" + ("" if endpoint.path == "/" else endpoint.path)
            op = doc["paths"][path][endpoint.method.lower()]
            assert op["operationId"] == api.operation_id(endpoint)
            assert op["tags"] == [name]
    credits = {p.removeprefix("/runninghub-queue-manager") for p in doc["paths"]}
    assert credits >= CREDIT_ROUTES
    assert {"/openapi.json", "/docs"} <= set(doc["paths"])


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_every_operation_says_who_may_call_and_how(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerJWT"] == {**schemes["bearerJWT"], "type": "http", "scheme": "bearer"}
    for path, _, op in _operations(doc):
        callers = set(op["x-callers"])
        assert callers and callers <= {str(c) for c in Caller}, path
        assert "**Who may call:**" in op["description"], path
        if callers == {"public"}:
            assert op["security"] == [], path
        else:
            [requirement] = op["security"]
            assert set(requirement) <= set(schemes), path
    run = doc["paths"]["/run-integration"]["post"]
    assert run["x-callers"] == ["admin", "service"] and run["security"] == [{"bearerJWT": []}]
    webhook = doc["paths"]["/runninghub-queue-manager/webhook"]["post"]
    assert webhook["x-callers"] == ["webhook secret"] and webhook["security"] == [{"signedUrl": []}]
    reverse = doc["paths"]["/sync-from-gestao-scouter"]["post"]
    assert reverse["security"] == [{"webhookSecret": []}]
    assert [p["name"] for p in reverse["parameters"]] == ["tenant"]


def test_every_error_answer_is_the_envelope_with_its_codes(doc: dict[str, Any]) -> None:
    for path, _, op in _operations(doc):
        if path in ("/openapi.json", "/docs"):  # the gateway's own pages: no function
            continue
        # Any request's body is read to its end before the answer (tests/e2e: a broken one)
        assert "malformed_body" in _codes(op["responses"], 400), path
        if op["x-callers"] == ["public"]:
            continue
        assert "database_unavailable" in _codes(op["responses"], 503), path
        statuses = {int(s) for s in op["responses"]}
        assert {401, 405, 422, 500} <= statuses, path
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            ref, codes = response["content"]["application/json"]["schema"]["allOf"]
            assert ref == {"$ref": "#/components/schemas/ErrorEnvelope"}
            enum = codes["properties"]["error"]["properties"]["code"]["enum"]
            assert enum and all(f"`{c}`" in response["description"] for c in enum), path
    start = doc["paths"]["/runninghub-queue-manager/start"]["post"]["responses"]
    assert _codes(start, 402) == ["insufficient_credits"]
    assert _codes(start, 429) == ["too_many_active_jobs"]
    page = doc["paths"]["/integrations-dashboard"]["get"]["responses"]  # static files
    assert sorted(page) == ["200", "400", "404", "405", "500"]
    events = doc["paths"]["/integration-job-events"]["get"]["responses"]
    assert _codes(events, 429) == ["too_many_requests"]  # a user's or tenant's open streams
    assert _codes(start, 503) == [
        "database_unavailable",
        "runninghub_not_configured",
        "unavailable",
    ]
    assert _codes(doc["paths"]["/run-integration"]["post"]["responses"], 409) == [
        "job_already_active",
        "job_not_retryable",
    ]


def _codes(responses: dict[str, Any], status: int) -> list[str]:
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    codes: list[str] = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
    return codes


def test_requests_and_answers_come_from_the_models(doc: dict[str, Any]) -> None:
    run = doc["paths"]["/run-integration"]["post"]
    body = run["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/queue.RunIntegrationRequest"}
    assert set(run["responses"]) >= {"202"} and "200" not in run["responses"]
    listing = doc["paths"]["/list-integration-jobs"]["get"]
    assert "requestBody" not in listing
    params = {p["name"]: p for p in listing["parameters"]}
    assert set(params) == {"tenant_id", "provider_slug", "status", "trigger", "limit", "before"}
    assert params["tenant_id"]["required"] and not params["limit"]["required"]
    assert params["limit"]["schema"]["maximum"] == 200
    page = doc["paths"]["/integrations-dashboard"]["get"]["responses"]  # static files
    assert sorted(page) == ["200", "400", "404", "405", "500"]
    events = doc["paths"]["/integration-job-events"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    schemas = doc["components"]["schemas"]
    assert {"queue.JobRef", "credits.CreditJobRef", "ErrorEnvelope"} <= set(schemas)
    assert "jobId" in schemas["credits.CreditJobRef"]["properties"]  # the wire name, not job_id


def test_every_json_answer_is_a_named_model(doc: dict[str, Any]) -> None:
    """No function answers a bare object: each success names its model (or is a stream)."""
    for path, method, op in _operations(doc):
        if path in ("/openapi.json", "/docs"):
            continue  # the gateway's own: the document itself and its reference page
        for status, response in op["responses"].items():
            json = response["content"].get("application/json") if int(status) < 400 else None
            if json is not None:
                assert set(json["schema"]) == {"$ref"}, (method, path, status)


def test_the_rules_the_code_enforces_are_in_the_document(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    alerts = schemas["alerts.AlertSettingsRequest"]["properties"]
    assert {("minimum", 2), ("maximum", 1000)} <= alerts["remind_at"]["items"].items()
    assert alerts["emails"]["items"]["pattern"].startswith("^")
    metrics = doc["paths"]["/integration-metrics"]["get"]
    provider = next(p for p in metrics["parameters"] if p["name"] == "provider_slug")
    assert provider["schema"]["enum"] == ["acessorias", "bomcontrole", "onecode"]
    assert "`tenant_id`" in metrics["description"]
    create = doc["paths"]["/runninghub-queue-manager/create"]["post"]
    [key] = [p for p in create["parameters"] if p["in"] == "header"]
    assert (key["name"], key["required"]) == ("Idempotency-Key", False)
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    assert "idempotency_key_reused" in _codes(create["responses"], 422)
    assert list(metrics["responses"]["200"]["content"]) == [
        "application/json",
        "text/plain",
        "application/openmetrics-text",
    ]


def test_links_chain_run_list_cancel_and_export_start_status_pause_history(
    doc: dict[str, Any],
) -> None:
    ids = {op["operationId"] for _, _, op in _operations(doc)}

    def links(path: str, method: str = "post") -> dict[str, Any]:
        responses = doc["paths"][path][method]["responses"]
        found: dict[str, Any] = next(r["links"] for r in responses.values() if "links" in r)
        assert {link["operationId"] for link in found.values()} <= ids
        return found

    mine = links("/my-tenants", "get")  # the dashboard's first call: the user's tenants
    assert {m["operationId"] for m in mine.values()} == {
        "list-integrations",
        "run-integration",
        "export-to-gestao-scouter-batch:post",
    }
    assert mine["run"]["requestBody"] == {"tenant_id": "$response.body#/tenants/0/id"}
    run = links("/run-integration")
    assert run["history"]["parameters"] == {"tenant_id": "$request.body#/tenant_id"}
    assert run["cancel"]["requestBody"] == {"job_id": "$response.body#/job_id"}
    assert links("/list-integration-jobs", "get")["cancel_newest"]["operationId"] == (
        "cancel-integration-job"
    )
    export = links("/export-to-gestao-scouter-batch")
    assert {
        export["status"]["requestBody"]["action"],
        export["pause"]["requestBody"]["action"],
    } == {
        "status",
        "pause",
    }
    assert export["history"] == {
        "operationId": "export-to-gestao-scouter-batch:get",
        "description": "The tenant's latest exports.",
        "parameters": {"tenant_id": "$request.body#/tenant_id"},
    }


def test_the_gateway_serves_the_document_and_the_reference_page() -> None:
    client = Client(gateway.build())
    answer = client.get(f"{PREFIX}/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    validate(answer.json)
    page = client.get(f"{PREFIX}/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert f'src="{PREFIX}/docs/redoc.standalone.js"' in html and "http" not in html
    script = client.get(f"{PREFIX}/docs/redoc.standalone.js")
    assert script.status_code == 200
    assert script.get_data() == (STATIC_DIR / "redoc" / "redoc.standalone.js").read_bytes()
    for path in ("openapi.json", "docs"):  # HEAD as GET; the rest the envelope, as elsewhere
        head = client.head(f"{PREFIX}/{path}")
        assert head.status_code == 200 and head.get_data() == b""
        for method in ("POST", "PUT", "DELETE"):
            refused = client.open(f"{PREFIX}/{path}", method=method)
            assert refused.status_code == 405 and refused.mimetype == "application/json"
            assert refused.json["error"]["code"] == "method_not_allowed"  # type: ignore[index]
            assert refused.headers["Allow"] == "GET, HEAD, OPTIONS"
    missing = client.get(f"{PREFIX}/docs/nothing.js")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"  # type: ignore[index]


def test_the_gateway_pages_document_every_status_they_answer(doc: dict[str, Any]) -> None:
    """The document's own pages answer a wrong method with the 405 envelope and `Allow`
    (above): their operations list it, as every function's does."""
    client = Client(gateway.build())
    for path in ("/openapi.json", "/docs"):
        responses = doc["paths"][path]["get"]["responses"]
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            answer = client.open(f"{PREFIX}{path}", method=method)
            assert str(answer.status_code) in responses, (path, method, answer.status_code)
        assert _codes(responses, 405) == ["method_not_allowed"], path
        assert "Allow" in responses["405"]["headers"], path
        options = client.options(f"{PREFIX}{path}")  # as the gateway's index answers it
        assert options.status_code == 204 and options.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_the_vendored_viewer_is_the_pinned_redoc_with_its_licence() -> None:
    folder = STATIC_DIR / "redoc"
    assert 'const Hw="2.5.4"' in (folder / "redoc.standalone.js").read_text(encoding="utf-8")
    assert "MIT License" in (folder / "LICENSE").read_text(encoding="utf-8")
    assert (folder / "redoc.standalone.js.LICENSE.txt").exists()


@pytest.mark.parametrize("name", function_names())
def test_each_function_serves_its_own_part(name: str, doc: dict[str, Any]) -> None:
    answer = function_client(name).get("/openapi.json")
    assert answer.status_code == 200, answer.get_json()
    part = answer.get_json()
    validate(part)
    assert part["servers"] == [{"url": ".."}]  # <base>/<name>/openapi.json -> <base>/<name>
    mine = {p: ops for p, ops in doc["paths"].items() if p.split("/")[1] == name}
    assert part["paths"] == mine


@pytest.mark.parametrize("name", function_names())
def test_each_function_answers_its_documented_routes_and_no_other(
    name: str, doc: dict[str, Any]
) -> None:
    client = function_client(name)
    for path, ops in doc["paths"].items():
        if path.split("/")[1] != name:
            continue
        route = path.removeprefix(f"/{name}") or "/"
        for method, op in ops.items():  # several methods share a path (schedules, alerts)
            if "public" in op.get("x-callers", []):
                continue  # the dashboard's page: anyone may load it
            answer = client.open(route, method=method.upper())  # no credentials
            assert answer.status_code == 401, (path, method, answer.get_json())
            assert answer.get_json()["error"]["code"] == "unauthorized"
    missing = client.get("/no-such-route")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


class _Thing(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    job_id: int = Field(alias="jobId")
    note: str | None = None


class _Empty(BaseModel):
    pass


def _serve(result: Any) -> flask.Response:
    api = Function(
        "thing",
        "A test function.",
        (
            Endpoint(
                summary="Answer",
                request=_Empty,
                action=lambda _p, _r: result,
                answers={201: _Thing},
                callers=(Caller.SERVICE,),
                authenticate=lambda _r: Principal("service"),
            ),
        ),
    )
    app = flask.Flask("thing")
    with app.test_request_context("/", method="POST", json={}):
        return handle(flask.request, api)


def test_answers_are_shaped_by_the_declared_model() -> None:
    answer = _serve({"jobId": 7})
    assert answer.status_code == 201 and answer.get_json() == {"jobId": 7}  # no added keys
    assert _serve(_Thing(job_id=7, note=None)).get_json() == {"jobId": 7, "note": None}


def test_an_answer_the_contract_does_not_declare_is_a_bug() -> None:
    answer = _serve({"jobId": 7, "secret_field": "x"})
    assert answer.status_code == 500
    assert answer.get_json() == {"error": {"code": "internal_error", "message": "Internal error."}}
