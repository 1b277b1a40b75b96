"""Pure pieces of the edge: error envelopes, named SQL, bearer parsing, secret comparison."""

from __future__ import annotations

import re

import flask
import pytest

from shared.auth import bearer_token, secrets_equal
from shared.dispatch import task_id
from shared.errors import JobAlreadyActive, SyncqError, Unauthorized, UpstreamError
from shared.sqlfiles import queries
from shared.web import execution_id


def test_envelope_shapes() -> None:
    err = JobAlreadyActive(details={"job_id": "x"})
    assert err.status == 409
    assert err.envelope() == {
        "error": {"code": "job_already_active", "message": err.message, "details": {"job_id": "x"}}
    }
    assert SyncqError().envelope() == {
        "error": {"code": "internal_error", "message": "Internal error."}
    }
    assert UpstreamError("x", code="credentials_missing", retryable=False).envelope()["error"][
        "code"
    ] == ("credentials_missing")


def test_every_sql_file_loads_with_unique_names() -> None:
    for module in ("queue", "tenancy", "acessorias"):
        assert queries(module)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   ", "token"])
def test_bearer_token_rejects_malformed_headers(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_token() -> None:
    assert bearer_token("Bearer abc.def") == "abc.def"
    assert bearer_token("bearer  abc ") == "abc"


def test_secrets_equal() -> None:
    assert secrets_equal("s3cret", "s3cret")
    assert not secrets_equal("s3cret", "s3creT")
    assert not secrets_equal(None, "x") and not secrets_equal("", "")


def test_task_ids_are_stable_and_opaque() -> None:
    assert task_id("job:1") == task_id("job:1") != task_id("job:2")
    assert task_id("job:1").startswith("t-") and len(task_id("job:1")) == 42


@pytest.mark.parametrize(
    "given", ["Ana Maria ana@x.com", "x" * 65, "id fake log line", "../../etc", "ção"]
)
def test_an_execution_id_that_is_not_id_shaped_is_replaced(given: str) -> None:
    """The header labels every log line of the request: free text (personal data, a forged
    line) never gets there, an id-shaped value is kept as the platform sent it."""
    app = flask.Flask("edge")
    with app.test_request_context("/", headers={"Function-Execution-Id": given}):
        fresh = execution_id(flask.request)
    assert fresh != given and re.fullmatch(r"[0-9a-f]{16}", fresh)
    with app.test_request_context("/", headers={"Function-Execution-Id": "Ab9_-x"}):
        assert execution_id(flask.request) == "Ab9_-x"
