"""`make chaos` itself, with tiny parameters: the real stack's processes under faults, a
killed worker, lost and doubled wake-ups; every figure with a goal must meet it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
TINY = [
    # A kill every 6 s (the default) and up to 120 s to settle: on a loaded machine (the
    # suite's other processes beside it) a worker killed every 4 s was hardly ever up.
    "--jobs", "60", "--tenants", "4", "--seconds", "90", "--settle", "120", "--kill-every", "6",
    "--stale-after", "6",
    "--leads", "2000", "--batch", "100", "--kill-batches", "4", "--export-seconds", "90",
    "--remote-latency-ms", "100",  # else 20 batches of 100 leads end before the first kill
    "--credit-jobs", "10", "--finishes", "50", "--finish-threads", "10", "--credit-users", "3",
]  # fmt: skip


def test_chaos_with_tiny_parameters_meets_every_goal(pg_server_url: str, tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    env = {**os.environ, "DATABASE_URL": pg_server_url}  # its own databases on that server
    argv = [sys.executable, "-m", "infra.chaos", *TINY, "--json", str(out), "--logs", str(tmp_path)]
    run = subprocess.run(  # noqa: S603 - our own module
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = {(f["scenario"], f["name"]): f for f in json.loads(out.read_text())}
    missed = [f for f in figures.values() if f["target"] is not None and f["value"] != f["target"]]
    assert missed == []
    assert {scenario for scenario, _ in figures} == {"queue", "export", "credits"}
    value = {key: f["value"] for key, f in figures.items()}
    # The chaos happened: the worker was killed in both scenarios, wake-ups were lost.
    assert value["queue", "jobs created (run-integration 202)"] == 60
    assert value["queue", "worker kills (SIGKILL)"] > 0
    assert value["queue", "wake-ups lost (dropped)"] > 0
    assert value["export", "runner kills (SIGKILL)"] > 0
    assert value["export", "leads on the remote"] == 2000
    assert value["credits", "refunds in the ledger"] == 10
