"""The export's date range: bounds of the batch query, and what a request may ask for."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.gestao.batches import date_bounds
from shared.gestao.models import ExportRequest


def test_date_bounds_are_half_open_utc_days() -> None:
    assert date_bounds(date(2024, 1, 1), date(2024, 1, 31)) == (
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 1, tzinfo=UTC),
    )
    assert date_bounds(date(2024, 1, 1), None) == (datetime(2024, 1, 1, tzinfo=UTC), None)
    assert date_bounds(None, None) == (None, None)


def test_date_bounds_treat_the_last_representable_day_as_an_open_end() -> None:
    assert date_bounds(date(2024, 1, 1), date.max) == (datetime(2024, 1, 1, tzinfo=UTC), None)
    assert date_bounds(None, date.max) == (None, None)
    assert date_bounds(date.max, date.max) == (datetime(9999, 12, 31, tzinfo=UTC), None)
    assert date_bounds(None, date(9999, 12, 30)) == (None, datetime(9999, 12, 31, tzinfo=UTC))
    assert date_bounds(date.min, None) == (datetime(1, 1, 1, tzinfo=UTC), None)


def request(**dates: Any) -> ExportRequest:
    return ExportRequest.model_validate(
        {"tenant_id": str(uuid.uuid4()), "action": "start", **dates}
    )


def test_requests_take_calendar_days_up_to_9999_12_31() -> None:
    req = request(start_date="2024-01-01", end_date="9999-12-31")
    assert (req.start_date, req.end_date) == (date(2024, 1, 1), date.max)
    assert request(start_date=date(2024, 1, 1)).start_date == date(2024, 1, 1)  # the CLI
    assert request(start_date=None, end_date=None).end_date is None


@pytest.mark.parametrize(
    ("dates", "field", "message"),
    [
        ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, "end_date", "before start_date"),
        ({"end_date": "10000-01-01"}, "end_date", "YYYY-MM-DD"),
        ({"end_date": "2024-13-01"}, "end_date", "month"),
        ({"end_date": 0}, "end_date", "YYYY-MM-DD"),  # not 1970-01-01
        ({"start_date": 1704067200}, "start_date", "YYYY-MM-DD"),
        ({"start_date": "2024-01-01T00:00:00"}, "start_date", "YYYY-MM-DD"),
        ({"start_date": True}, "start_date", "YYYY-MM-DD"),
    ],
)
def test_requests_reject_nonsense_dates_at_the_field(
    dates: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        request(**dates)
    [error] = exc.value.errors()
    assert error["loc"] == (field,) and message in error["msg"]
