"""When each attempt really ran, and whether two ran at once.

The database records an attempt from its claim to its release or rescue; what a worker
really did is in its log: `sync started` (with the job's labels) up to the line that ends
the attempt, or up to the moment the process was killed. A worker that lost its lease but
kept running (a zombie) shows up here and nowhere else, so overlaps are counted on both.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

LABELS = "logging.googleapis.com/labels"
START = "sync started"
ENDS = frozenset({
    "job succeeded",
    "job failed",
    "job canceled",
    "attempt failed, retry scheduled",
    "lease lost; leaving the job to whoever holds it now",
    "finish ignored: lease no longer held",
})  # fmt: skip
LEASE_LOST = frozenset({
    "lease lost; leaving the job to whoever holds it now",
    "finish ignored: lease no longer held",
})  # fmt: skip
RESCUED = "rescued stale jobs"


@dataclass(frozen=True)
class Attempt:
    """One attempt of a job of a (tenant, provider) pair, from `started` to `ended`."""

    job_id: str
    pair: tuple[str, str]
    started: float
    ended: float
    how: str = ""  # the line that ended it, "killed", or "unfinished"


@dataclass(frozen=True)
class Overlaps:
    other_job: int  # attempts that began while an attempt of another job of the pair ran
    same_job: int  # attempts that began while another attempt of the same job ran


def _entries(
    lines: Iterable[str],
) -> Iterable[tuple[float, str, dict[str, str], dict[str, object]]]:
    for line in lines:
        if not line.startswith("{"):
            continue  # the gateway's access log
        try:
            entry = json.loads(line)
            at = datetime.fromisoformat(entry["time"]).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        yield at, str(entry.get("message", "")), entry.get(LABELS) or {}, entry


def attempts(lines: Iterable[str], killed_at: float | None) -> list[Attempt]:
    """The attempts of one worker process's log. One still open at the end ran until the
    process was killed (`killed_at`), else until the job's last line in this log."""
    found: list[Attempt] = []
    running: dict[str, list[tuple[float, tuple[str, str]]]] = defaultdict(list)
    last_seen: dict[str, float] = {}
    for at, message, labels, _ in _entries(lines):
        job, provider = labels.get("job_id"), labels.get("provider")
        if not job or not provider:
            continue  # not an integration job's line (an export's, a sweep's)
        last_seen[job] = at
        if message == START:
            running[job].append((at, (labels.get("tenant_id", ""), provider)))
        elif message in ENDS and running[job]:
            started, pair = running[job].pop()
            found.append(Attempt(job, pair, started, at, message))
    for job, still in running.items():
        for started, pair in still:
            ended, how = (killed_at, "killed") if killed_at else (last_seen[job], "unfinished")
            found.append(Attempt(job, pair, started, max(ended, started), how))
    return found


def rescues(lines: Iterable[str]) -> Counter[str]:
    """Jobs the sweep (or a wake-up) rescued, by kind, as the worker logged them."""
    counts: Counter[str] = Counter()
    for _, message, _, entry in _entries(lines):
        if message == RESCUED:
            counts[str(entry.get("kind", ""))] += int(str(entry.get("count", 0)))
    return counts


def overlaps(found: Iterable[Attempt]) -> Overlaps:
    """Attempts that began while another attempt of their pair was still running."""
    by_pair: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
    for attempt in found:
        by_pair[attempt.pair].append(attempt)
    other = same = 0
    for group in by_pair.values():
        active: list[Attempt] = []
        for attempt in sorted(group, key=lambda a: a.started):
            active = [a for a in active if a.ended > attempt.started]
            other += any(a.job_id != attempt.job_id for a in active)
            same += any(a.job_id == attempt.job_id for a in active)
            active.append(attempt)
    return Overlaps(other, same)
