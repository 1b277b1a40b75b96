"""The Gestão Scouter CLI commands against a real database and the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from infra.ops.__main__ import main
from tests.integration.gestao_support import Remote, local_view, remote_view
from tests.support import TenantFixture, rows

pytest_plugins = ["tests.integration.gestao_fixtures"]
pytestmark = pytest.mark.db


def test_cli_seeds_exports_and_reports(
    database_url: str, tenant: TenantFixture, remote: Remote,
    capsys: pytest.CaptureFixture[str], configure: Any,
) -> None:  # fmt: skip
    assert main(["export", "seed-leads", "--tenant", "acme", "--count", "250"]) == 0
    assert main(["config", "check", "--tenant", "acme"]) == 0
    assert "ok   leads_writable" in capsys.readouterr().out
    assert main(["schema", "validate", "--tenant", "acme"]) == 0
    assert main(["schema", "reload", "--tenant", "acme"]) == 0
    assert main(["export", "start", "--tenant", "acme", "--from", "2024-01-01",
                 "--to", "2024-12-31", "--inline"]) == 0  # fmt: skip
    out = capsys.readouterr()
    assert '"exported_leads": 250' in out.out and "export" in out.err  # the progress bar
    assert remote_view(remote) == local_view(database_url)
    assert main(["export", "status", "--tenant", "acme"]) == 0
    assert '"status": "completed"' in capsys.readouterr().out
    assert main(["export", "pause", "--tenant", "acme"]) == 2  # nothing to pause
    assert "invalid_transition" in capsys.readouterr().err
    assert main(["export", "stuck", "--older-than", "1h"]) == 0
    assert main(["export", "prune-errors", "--days", "90"]) == 0
    assert "deleted 0 error rows" in capsys.readouterr().out
    assert rows(database_url, "SELECT count(*) AS n FROM leads")[0]["n"] == 250
    remote.state.knobs.update({"error_rate": 1.0})
    configure(GESTAO_SCOUTER_RETRIES="0", GESTAO_SCOUTER_RETRY_BASE_S="0.01")
    assert main(["config", "check", "--tenant", "acme"]) == 1
    assert "FAIL  host_reachable" in capsys.readouterr().out
