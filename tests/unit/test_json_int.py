"""A body's integer as the document's JSON Schema means it (shared.contract.JsonInt)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.contract import JsonInt


class _Body(BaseModel):
    n: JsonInt


@pytest.mark.parametrize("value", [5, 5.0, -3])
def test_an_integer_or_a_whole_number_is_taken(value: Any) -> None:
    assert _Body.model_validate({"n": value}).n == int(value)


@pytest.mark.parametrize("value", [True, False, "5", 5.5, None, [5]])
def test_a_boolean_a_string_or_a_fraction_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        _Body.model_validate({"n": value})


def test_the_document_says_integer() -> None:
    assert _Body.model_json_schema()["properties"]["n"] == {"title": "N", "type": "integer"}
