"""The reverse webhook (sync-from-gestao-scouter) takes the tenant's secret whole: one
character off, longer or shorter is refused, and nothing is upserted."""

from __future__ import annotations

import pytest

from tests.integration.gestao_support import WEBHOOK_SECRET, seed_leads
from tests.integration.test_gestao_reverse import send
from tests.support import TenantFixture, rows

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = pytest.mark.db


def flip(char: str) -> str:
    """Another character of the same kind, so only the value differs."""
    return chr(ord(char) ^ 1)


NEAR_MISSES = {
    "changed": {
        "last character": WEBHOOK_SECRET[:-1] + flip(WEBHOOK_SECRET[-1]),
        "first character": flip(WEBHOOK_SECRET[0]) + WEBHOOK_SECRET[1:],
    },
    "longer": {"one character appended": WEBHOOK_SECRET + "x", "doubled": WEBHOOK_SECRET * 2},
    "shorter": {
        "last character cut": WEBHOOK_SECRET[:-1],
        "first half": WEBHOOK_SECRET[: len(WEBHOOK_SECRET) // 2],
        "one character": WEBHOOK_SECRET[:1],
    },
}
LEADS = "SELECT id, name, updated_at, sync_source FROM leads ORDER BY id"


@pytest.mark.parametrize("kind", list(NEAR_MISSES))
def test_a_secret_one_character_off_longer_or_shorter_gets_401_and_changes_nothing(
    database_url: str, tenant: TenantFixture, kind: str
) -> None:
    seed_leads(database_url, tenant.id, 2)
    before = rows(database_url, LEADS)
    edit = {"id": 1, "name": "Editada", "updated_at": "2099-01-01T00:00:00+00:00"}
    new = {"id": 9001, "name": "Nova", "updated_at": "2099-01-01T00:00:00+00:00"}
    for label, secret in NEAR_MISSES[kind].items():
        assert secret != WEBHOOK_SECRET
        for lead in (edit, new):
            response = send({"lead": lead, "source": "gestao_scouter"}, secret=secret)
            assert response.status_code == 401, (label, response.get_json())
            assert response.get_json()["error"]["code"] == "unauthorized"
    assert rows(database_url, LEADS) == before

    # The secret itself is accepted: the requests above were refused for the secret alone.
    for lead in (edit, new):
        ok = send({"lead": lead, "source": "gestao_scouter"}, secret=WEBHOOK_SECRET)
        assert ok.get_json() == {"action": "upserted"}
    names = {r["id"]: r["name"] for r in rows(database_url, LEADS)}
    assert (names[1], names[9001]) == ("Editada", "Nova")
