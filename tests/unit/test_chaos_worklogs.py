"""The chaos run's bookkeeping: attempts read from worker logs, overlaps, the figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from infra.chaos import worklogs
from infra.chaos.figures import Figure, missed, render, total, zero
from infra.chaos.worklogs import Attempt, attempts, overlaps, rescues

T0 = 1_800_000_000.0
PAIR = ("tenant-a", "onecode")


def line(at: float, message: str, job: str | None = None, **fields: object) -> str:
    entry: dict[str, object] = {
        "severity": "INFO",
        "message": message,
        "time": datetime.fromtimestamp(T0 + at, UTC).isoformat(),
        **fields,
    }
    if job is not None:
        entry[worklogs.LABELS] = {"job_id": job, "tenant_id": PAIR[0], "provider": PAIR[1]}
    return json.dumps(entry)


def test_an_attempt_runs_from_its_start_to_the_line_that_ends_it() -> None:
    log = [
        '127.0.0.1 - - "POST /functions/v1/process-integration-job" 200',
        line(1, "sync started", "j1", attempt=1),
        line(2, "http retry", "j1"),
        line(3, "job succeeded", "j1"),
    ]
    assert attempts(log, killed_at=None) == [Attempt("j1", PAIR, T0 + 1, T0 + 3, "job succeeded")]


def test_an_attempt_still_open_ran_until_the_kill_or_its_last_line() -> None:
    log = [line(1, "sync started", "j1"), line(4, "page stored", "j1")]
    assert attempts(log, killed_at=T0 + 9)[0].ended == T0 + 9
    assert attempts(log, killed_at=T0 + 9)[0].how == "killed"
    assert attempts(log, killed_at=None)[0].ended == T0 + 4


def test_lines_of_no_integration_job_are_ignored() -> None:
    log = [line(1, "sync started"), line(2, "export released", None), "not json {"]
    assert attempts(log, None) == []


def test_overlaps_count_other_jobs_and_the_same_job_apart() -> None:
    a = Attempt("j1", PAIR, T0, T0 + 10)
    b = Attempt("j2", PAIR, T0 + 10, T0 + 20)  # starts as a ends: no overlap
    assert overlaps([a, b]) == worklogs.Overlaps(0, 0)
    c = Attempt("j3", PAIR, T0 + 15, T0 + 16)  # during b
    d = Attempt("j2", PAIR, T0 + 19, T0 + 21)  # j2 again while b runs
    e = Attempt("j9", ("tenant-b", "onecode"), T0 + 15, T0 + 16)  # another pair
    assert overlaps([a, b, c, d, e]) == worklogs.Overlaps(other_job=1, same_job=1)


def test_rescues_are_summed_by_kind() -> None:
    log = [
        line(1, "rescued stale jobs", kind="integration", count=2),
        line(2, "rescued stale jobs", kind="gestao_export", count=1),
        line(3, "rescued stale jobs", kind="integration", count=3),
    ]
    assert rescues(log) == {"integration": 5, "gestao_export": 1}


def test_only_figures_with_a_goal_can_miss_it() -> None:
    figures = [
        zero("queue", "jobs lost", 0),
        zero("queue", "overlaps", 2),
        total("queue", "success", 1990),
        Figure("credits", "refunds", 99, 100),
    ]
    assert [f.name for f in missed(figures)] == ["overlaps", "refunds"]
    table = render(figures)
    assert "1,990" in table and table.count("MISSED") == 2


def test_a_sweep_answered_other_than_200_is_counted_as_refused() -> None:
    """It fell in neither row (answered, cut) and met no goal."""
    from infra.chaos.scenario_queue import refused_sweeps

    counts = {"sweeps_ok": 5, "sweeps_failed": 2, "sweeps_500": 1, "sweeps_403": 2, "rescued": 9}
    assert refused_sweeps(counts) == 3
