"""Stack traces in the JSON logs keep their frames but not the data errors quote."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pydantic
import pytest

from shared import log, web
from shared.errors import UpstreamError
from shared.gestao.remote import RemoteAnswer

pytestmark = pytest.mark.db
PII = ("Maria Sigilosa", "maria.sigilosa@example.com", "11912345678")


def logged_exception(logs: Callable[[], str], exc: BaseException) -> dict[str, object]:
    try:
        raise RuntimeError("while applying a lead") from exc
    except RuntimeError:
        log.get_logger("test.scrub").exception("lead failed")
    (line,) = logs().splitlines()
    entry: dict[str, object] = json.loads(line)
    return entry


def test_a_database_error_logs_its_frames_not_the_failing_row(
    database_url: str, logs: Callable[[], str]
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE t (name text, email text, phone text, n int NOT NULL)")
        with pytest.raises(psycopg.errors.NotNullViolation) as raised:
            conn.execute("INSERT INTO t VALUES (%s, %s, %s, NULL)", PII)
    assert any(p in str(raised.value) for p in PII)  # psycopg's own text quotes the row
    trace = str(logged_exception(logs, raised.value)["stack_trace"])
    assert "psycopg.errors.NotNullViolation" in trace and "RuntimeError" in trace
    assert "test_a_database_error_logs_its_frames_not_the_failing_row" in trace
    assert 'null value in column "n"' in trace
    assert not any(p in trace for p in PII)


def test_a_validation_error_logs_without_its_input(logs: Callable[[], str]) -> None:
    class Lead(pydantic.BaseModel):
        age: int

    with pytest.raises(pydantic.ValidationError) as raised:
        Lead.model_validate({"age": PII[0]})
    trace = str(logged_exception(logs, raised.value)["stack_trace"])
    assert "ValidationError" in trace and "int_parsing" in trace
    assert PII[0] not in trace


def test_a_validation_error_on_an_object_logs_without_any_of_it(logs: Callable[[], str]) -> None:
    class Lead(pydantic.BaseModel):
        age: int

    lead = {"name": PII[0], "address": "Rua das " + "Flores 123"}  # not in the frame's line
    with pytest.raises(pydantic.ValidationError) as raised:
        Lead.model_validate({"age": lead})
    trace = str(logged_exception(logs, raised.value)["stack_trace"])
    assert "int_type" in trace and "input_type=dict" in trace
    assert PII[0] not in trace and "Rua das Flores" not in trace


def test_a_5xx_answer_logs_its_reason_without_the_data_it_quotes(
    logs: Callable[[], str],
) -> None:
    """The edge logs why it answered a 5xx; an upstream's reason may quote a lead."""
    answer = web._failed(UpstreamError(f"the remote refused <{PII[1]}>, phone {PII[2]}"))
    assert answer.status_code == 502
    (line,) = logs().splitlines()
    entry = json.loads(line)
    assert (entry["message"], entry["code"]) == ("request failed", "upstream_error")
    assert entry["reason"] == "the remote refused <[redacted]>, phone [redacted]"


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="a server we start, not one we are given"
)
def test_the_embedded_server_logs_a_refused_row_without_its_values(database_url: str) -> None:
    """PostgreSQL logs a refused write with a DETAIL line holding the whole row; the server
    `make run` and the tests start logs the error and its statement, not the row."""
    with psycopg.connect(database_url) as conn:
        folder = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        conn.execute("CREATE TEMP TABLE t (name text, email text, phone text, n int NOT NULL)")
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO t VALUES (%s, %s, %s, NULL)", PII)
    # The backend writes its log line before it answers the error.
    server_log = (folder / "log").read_text(errors="replace")
    assert 'null value in column "n"' in server_log
    assert not any(p in server_log for p in PII)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("Rua das Flores 123\nApto 4 - Maria Sigilosa", "address"),  # a multi-line address
        ("Maria Sigilosa, Rua das Flores 123; " * 20, "address"),  # longer than 500 characters
        # a line of it ending in a parenthesis, or one closed within it: not where it ends
        ("Rua das Flores 123 (fundos)\nApto 4 - Maria Sigilosa", "address"),
        ("Dona (Bia) Maria Sigilosa\nRua das Flores 123", "address"),
        ("Maria Sigilosa (cliente), Rua das Flores 123; " * 12, "address"),
        # a unique index on an expression: its key holds parentheses
        ("Rua das Flores 123\nApto 4 - Maria Sigilosa", "lower(address)"),
        ("Maria Sigilosa, Rua das Flores 123; " * 20, "lower(address)"),
    ],
    ids=["multi-line", "long", "line-ends-in-parenthesis", "parenthesis-then-space",
         "long-parenthesis-then-comma", "expression-multi-line", "expression-long"],
)  # fmt: skip
def test_a_remote_unique_violation_is_stored_without_the_key_value(
    database_url: str, value: str, key: str
) -> None:
    """PostgREST answers a refused lead with PostgreSQL's DETAIL, which quotes the whole
    key (PostgreSQL cuts neither a long key nor one with a line break): what an export
    keeps of the answer (its message and body, shown in the export's errors) holds none
    of it."""
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TEMP TABLE leads (address text)")
        conn.execute(f"CREATE UNIQUE INDEX ON leads ({key})")
        conn.execute("INSERT INTO leads VALUES (%s)", [value])
        with pytest.raises(psycopg.errors.UniqueViolation) as raised:
            conn.execute("INSERT INTO leads VALUES (%s)", [value])
    diag = raised.value.diag
    assert diag.message_detail is not None and "maria sigilosa" in diag.message_detail.lower()
    body = {"code": diag.sqlstate, "details": diag.message_detail, "hint": None,
            "message": diag.message_primary}  # fmt: skip
    answer = RemoteAnswer.of(httpx.Response(409, json=body))
    kept = json.dumps([answer.safe_message(), answer.safe_body()])
    assert f"Key ({key})=(" in kept
    assert "maria sigilosa" not in kept.lower() and "rua das flores" not in kept.lower()
