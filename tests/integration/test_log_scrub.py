"""Stack traces in the JSON logs keep their frames but not the data errors quote."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pydantic
import pytest

from shared import log

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
