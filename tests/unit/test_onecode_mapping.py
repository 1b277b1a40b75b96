"""OneCode mapping and host selection (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from shared.errors import UpstreamError
from shared.providers.onecode import base_url, map_contact, parse_page
from shared.settings import Settings
from shared.tenancy import Tenant

TENANT = Tenant(uuid.uuid4(), "acme", "Acme")


def test_map_contact_normalises_and_keeps_tags() -> None:
    row = map_contact({
        "id": 12, "name": " Ana ", "number": "5511999999999", "email": "", "isGroup": False,
        "blocked": True, "tags": [{"id": 1, "name": "VIP", "color": "#0F0"}, "junk"],
        "createdAt": "2024-05-01T12:00:00.000Z", "updatedAt": "not a date",
    })  # fmt: skip
    assert row == {
        "external_id": "12", "name": "Ana", "number": "5511999999999", "email": None,
        "is_group": False, "blocked": True, "tags": [{"id": "1", "name": "VIP", "color": "#0F0"}],
        "remote_created_at": datetime(2024, 5, 1, 12, tzinfo=UTC), "remote_updated_at": None,
    }  # fmt: skip


@pytest.mark.parametrize("raw", [{}, {"id": None}, {"id": True}, {"id": "x1"}, [], "x"])
def test_contacts_without_an_id_are_skipped(raw: object) -> None:
    assert map_contact(raw) is None


def test_base_url_per_tenant_host() -> None:
    settings = Settings()
    assert base_url({}, TENANT, settings) == "https://api-acme.onecode.chat"
    assert base_url({"subdomain": "Zap-1"}, TENANT, settings) == "https://api-zap-1.onecode.chat"
    assert (
        base_url({"base_url": "http://127.0.0.1:8102"}, TENANT, settings) == "http://127.0.0.1:8102"
    )
    for bad in ("evil.com/x", "acme\n"):  # `$` alone would match before a final newline
        with pytest.raises(UpstreamError) as caught:
            base_url({"subdomain": bad}, TENANT, settings)
        assert not caught.value.retryable and caught.value.error_code == "provider_config"


def test_parse_page_uses_the_size_the_server_applied() -> None:
    body = {"contacts": [{"id": 1}], "count": 230, "page": 3, "pageSize": 100, "pageCount": 1}
    page = parse_page(httpx.Response(200, json=body), asked_size=500)
    assert (page.total, page.size, [r["external_id"] for r in page.rows]) == (230, 100, ["1"])


@pytest.mark.parametrize(
    ("status", "body", "retryable", "text"),
    [
        (400, {"error": "ERR_PAGE_SIZE"}, False, "ERR_PAGE_SIZE"),
        (404, {"error": "<script>"}, False, "HTTP 404."),
        (401, {"error": "ERR_SESSION_EXPIRED"}, False, "rejected the credentials"),
        (200, {"contacts": "x"}, True, "unexpected body"),
        (200, ["x"], True, "unexpected body"),
    ],
)
def test_parse_page_errors(status: int, body: object, retryable: bool, text: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        parse_page(httpx.Response(status, json=body), asked_size=20)
    assert caught.value.retryable is retryable and text in caught.value.message
    assert "<script>" not in caught.value.message


@pytest.mark.parametrize("raw_id", ["²", "١٢", "9" * 65, -3, 1.5])
def test_ids_that_are_not_ascii_integers_are_skipped(raw_id: object) -> None:
    assert map_contact({"id": raw_id}) is None


def test_long_or_zero_padded_ids_are_canonical_text() -> None:
    assert map_contact({"id": "007"})["external_id"] == "7"  # type: ignore[index]
    assert map_contact({"id": "9" * 64})["external_id"] == "9" * 64  # type: ignore[index]


def test_text_a_column_cannot_hold_is_cleaned() -> None:
    row = map_contact({
        "id": 1, "name": "a\u0000b", "number": 5511999999999, "email": "x\ud800y",
        "tags": [{"id": "t\u0000", "name": "x\u0000", "color": "\udfff"}],
    })  # fmt: skip
    assert row is not None
    assert (row["name"], row["number"], row["email"]) == ("ab", "5511999999999", "x\ufffdy")
    assert row["tags"] == [{"id": "t", "name": "x", "color": "\ufffd"}]


@pytest.mark.parametrize(
    "name", [float("nan"), float("inf"), 1.5, True, {"a": 1}, ["a"], "\u0000 "]
)
def test_names_that_are_not_text_are_null(name: object) -> None:
    assert map_contact({"id": 1, "name": name})["name"] is None  # type: ignore[index]


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1899-12-31T23:59:59Z",
     "2201-01-01T00:00:00Z", "2024-13-01T00:00:00Z"],
)  # fmt: skip
def test_timestamps_outside_1900_to_2200_are_null(stamp: str) -> None:
    row = map_contact({"id": 1, "createdAt": stamp, "updatedAt": "2200-12-31T00:00:00Z"})
    assert row is not None and row["remote_created_at"] is None
    assert row["remote_updated_at"] == datetime(2200, 12, 31, tzinfo=UTC)


def test_a_page_with_a_huge_integer_or_lone_surrogate_still_parses() -> None:
    content = (
        b'{"contacts": [{"id": 1, "name": "\\ud800", "number": ' + b"9" * 5000 + b"},"
        b' {"id": ' + b"9" * 5000 + b'}], "count": 2, "pageSize": 100}'
    )
    page = parse_page(httpx.Response(200, content=content), asked_size=100)
    assert page.rows[0]["name"] == "\ufffd" and page.rows[0]["number"] is None
    assert [r["external_id"] for r in page.rows] == ["1"]
