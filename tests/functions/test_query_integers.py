"""A query string's integer is digits, as the document's `type: integer` says: lax parsing read
" 5 " and "+5" as 5 and Python's digit grouping "5_0" as 50, answering another page or
window than asked instead of a 422."""

from __future__ import annotations

import pytest

from tests.support import bearer, function_client, seed_tenant

pytestmark = pytest.mark.db

QUERY_INTEGERS = [
    ("list-integration-jobs", "limit"),
    ("integration-alerts", "limit"),
    ("export-to-gestao-scouter-batch", "limit"),
    ("integration-metrics", "days"),
]


@pytest.mark.parametrize(("name", "field"), QUERY_INTEGERS)
def test_a_query_integer_is_digits_or_a_422(database_url: str, name: str, field: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    client = function_client(name)
    for value in ("5_0", " 5 ", "+5", "5.0", "0x5"):
        answer = client.get("/", query_string={"tenant_id": str(tenant.id), field: value},
                            headers=bearer(tenant.admin_token))  # fmt: skip
        assert answer.status_code == 422, (value, answer.get_json())
        assert answer.get_json()["error"]["code"] == "validation_error"
        assert [d["loc"] for d in answer.get_json()["error"]["details"]] == [[field]], value
    answer = client.get("/", query_string={"tenant_id": str(tenant.id), field: "5"},
                        headers=bearer(tenant.admin_token))  # fmt: skip
    assert answer.status_code == 200, answer.get_json()


def test_a_query_number_is_a_json_number_or_a_422(database_url: str) -> None:
    """The stream's `max_seconds` (`type: number`) read lax as the integers were: "0_1" as
    0.1 and " 1 " or "+1" as 1, streaming for another window than asked instead of a 422."""
    tenant = seed_tenant(database_url, "acme")
    client = function_client("integration-job-events")
    for value in ("0_1", " 0.1 ", "+0.1", ".1", "1.", "0x1"):
        answer = client.get("/", query_string={"tenant_id": str(tenant.id), "max_seconds": value},
                            headers=bearer(tenant.admin_token))  # fmt: skip
        assert answer.status_code == 422, (value, answer.status_code)
        assert answer.get_json()["error"]["code"] == "validation_error"
        assert [d["loc"] for d in answer.get_json()["error"]["details"]] == [["max_seconds"]]
    for value in ("0.1", "1e-1"):
        answer = client.get("/", query_string={"tenant_id": str(tenant.id), "max_seconds": value},
                            headers=bearer(tenant.admin_token))  # fmt: skip
        assert answer.status_code == 200, (value, answer.get_json())
        answer.close()
