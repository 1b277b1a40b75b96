"""The local stack's demo data (`make run`, `make seed-demo`) against a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from infra.local import demo
from infra.ops.__main__ import main
from tests.support import rows

pytestmark = pytest.mark.db


def test_each_demo_tenant_has_leads_to_export_once(database_url: str) -> None:
    """Both tenants get DEMO_LEADS leads with the same ids, created over the last days; a
    second seed (every `make run` seeds) adds none, and a tenant's own leads are kept."""
    assert main(["seed-demo"]) == 0
    demo.seed(database_url, {})
    counts = rows(
        database_url,
        "SELECT tenant_id, count(*) AS n, min(id) AS low, max(id) AS high,"
        " min(criado) AS first, max(criado) AS last FROM leads GROUP BY tenant_id",
    )
    assert {r["tenant_id"] for r in counts} == {t.id for t in demo.TENANTS}
    today = datetime.now(UTC)
    for r in counts:
        assert (r["n"], r["low"], r["high"]) == (demo.DEMO_LEADS, 1, demo.DEMO_LEADS)
        midnight = today.replace(hour=0, minute=0, second=0, microsecond=0)
        assert midnight - timedelta(days=demo.DEMO_LEAD_DAYS) < r["first"] < r["last"] == midnight
    acme = demo.TENANTS[0]
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM leads WHERE tenant_id = %s AND id > 10", [acme.id])
    demo.seed(database_url, {})
    left = rows(database_url, "SELECT count(*) AS n FROM leads WHERE tenant_id = %s", acme.id)
    assert left[0]["n"] == 10  # not topped up: the demo never touches leads that exist


def test_seed_leads_takes_only_sensible_bounds(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    demo.seed(database_url, {})
    assert main(["export", "seed-leads", "--tenant", "globex", "--count", "3",
                 "--first-day", "2024-02-01", "--days", "1"]) == 0  # fmt: skip
    assert "inserted 3 leads for globex" in capsys.readouterr().out
    added = rows(database_url, "SELECT id, criado FROM leads WHERE id > %s ORDER BY id",
                 demo.DEMO_LEADS)  # fmt: skip
    assert [r["id"] for r in added] == [demo.DEMO_LEADS + n for n in (1, 2, 3)]
    days = [r["criado"].astimezone(UTC).isoformat() for r in added]  # UTC days, as syncq's
    assert days[0] > "2024-02-01T00" and days[-1] == "2024-02-02T00:00:00+00:00", days
    for flag, bad, says in (("--count", "0", "1 to 1000000"), ("--count", "-5", "1 to 1000000"),
                            ("--days", "0", "1 to 36500"), ("--first-day", "2024-13-01", "--first-day")):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            main(["export", "seed-leads", "--tenant", "globex", flag, bad])
        assert exit_.value.code == 2 and says in capsys.readouterr().err
    for first, span in (("9999-12-01", "90"), ("9999-12-30", "1"), ("0001-01-01", "1")):
        argv = ["export", "seed-leads", "--tenant", "globex", "--first-day", first, "--days", span]
        assert main(argv) == 2, first
        assert "validation_error" in capsys.readouterr().err
    edge = ["--first-day", "9999-12-29", "--days", "1", "--count", "2"]  # the last day: 12-30
    assert main(["export", "seed-leads", "--tenant", "globex", *edge]) == 0
    total = rows(database_url, "SELECT count(*) AS n FROM leads")[0]["n"]
    assert total == 2 * demo.DEMO_LEADS + 5  # nothing written by the refused ones
