"""Schedule arithmetic, as pure functions: occurrences of a cron expression in a zone, the
spread offset, and what the missed-run policy makes of the occurrences that are due.

Occurrences are computed in the schedule's own zone with cronsim, which treats DST as
Debian's cron does: a daily 02:30 that falls in a spring-forward gap runs at 03:00, and in
the repeated hour of a fall-back it runs once — asked from within that hour too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MAX_SPREAD_S = 300  # at most five minutes late, and never past half the schedule's period


class Missed(StrEnum):
    """What to do with occurrences that passed while nothing ran (an outage, a pause)."""

    SKIP = "skip"  # none of them: wait for the next on-time occurrence
    ONCE = "once"  # one run for all of them (the latest)
    ALL = "all"  # each of them, one after another (capped)


def parse_cron(expression: str) -> str:
    """The expression, normalised, if it is a valid five-field cron; else ValueError."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("expected five fields: minute hour day-of-month month day-of-week")
    normal = " ".join(fields)
    try:
        runs = CronSim(normal, datetime(2000, 1, 1, tzinfo=UTC))
        next(runs), next(runs)  # the spread and the first run need two occurrences
    except (CronSimError, ValueError) as exc:
        raise ValueError(f"not a valid cron expression: {exc}") from None
    except StopIteration:  # `0 0 LW * */7`: the last weekday of a month that is a Sunday
        raise ValueError("not a valid cron expression: it never runs") from None
    return normal


# Files of the zone database that are not a place's zone: the host's own zone (a schedule
# must not depend on the machine it runs on), the rules template, "no zone", and the
# posix/ and right/ copies (the latter with leap seconds, which Python's clock lacks).
_NOT_ZONES = ("localtime", "posixrules", "Factory", "posix/", "right/")


def parse_zone(name: str) -> ZoneInfo:
    """A zone of the zone database by name (any file of it, as a stored schedule may hold
    one saved before `place_zone` refused it); else ValueError."""
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("not an IANA time zone (e.g. America/Sao_Paulo)") from None


def place_zone(name: str) -> ZoneInfo:
    """A place's IANA zone, as a new schedule must name: not the host's own zone nor the
    database's other files; else ValueError."""
    if name.startswith(_NOT_ZONES):
        raise ValueError("not an IANA time zone (e.g. America/Sao_Paulo)")
    return parse_zone(name)


# cronsim starts from a wall-clock time and ignores which pass of a repeated hour it is in:
# started inside a fall-back's second pass it would answer an occurrence already passed
# (forward) or miss one (backward). Near a change of offset it starts this far away, on the
# side its walk comes from, and the moments on the wrong side of `after` are dropped.
_NEAR_A_CHANGE = timedelta(hours=3)
_A_SECOND = timedelta(seconds=1)


def occurrences(
    cron: str, zone: str, after: datetime, *, reverse: bool = False
) -> Iterator[datetime]:
    """Occurrences strictly after `after` (or, reversed, strictly before it), in UTC."""
    tz = parse_zone(zone)
    start = after
    if _offset_changes(tz, after - _NEAR_A_CHANGE, after + _NEAR_A_CHANGE):
        start = after + _NEAR_A_CHANGE if reverse else after - _NEAR_A_CHANGE
    for local in CronSim(cron, start.astimezone(tz), reverse=reverse):
        moment = local.astimezone(UTC)
        if not ((moment < after) if reverse else (moment > after)):
            continue
        # Walking back into a repeated span, cronsim may answer its second pass (Lord Howe's
        # half-hour fall-back: 01:30 at +10:30), which the forward walk, running the
        # repeated time once, never does: only what the forward walk yields is an occurrence.
        if (
            reverse
            and _offset_changes(tz, moment - _NEAR_A_CHANGE, moment + _NEAR_A_CHANGE)
            and next(occurrences(cron, zone, moment - _A_SECOND)) != moment
        ):
            continue
        yield moment


def _offset_changes(tz: ZoneInfo, since: datetime, until: datetime) -> bool:
    """Whether the zone's UTC offset differs anywhere from `since` to `until` (a change
    and its reversal both within the span are not told apart: none is that close)."""
    return since.astimezone(tz).utcoffset() != until.astimezone(tz).utcoffset()


def next_runs(cron: str, zone: str, after: datetime, count: int) -> list[datetime]:
    """The next `count` occurrences after `after` (UTC)."""
    found: list[datetime] = []
    for moment in occurrences(cron, zone, after):
        found.append(moment)
        if len(found) == count:
            break
    return found


def at_or_before(cron: str, zone: str, at: datetime) -> Iterator[datetime]:
    """Occurrences at or before `at` (UTC), newest first."""
    for moment in occurrences(cron, zone, at + timedelta(seconds=1), reverse=True):
        if moment <= at:  # not one within the second after `at`
            yield moment


def previous_runs(cron: str, zone: str, at: datetime, count: int) -> list[datetime]:
    """The `count` latest occurrences at or before `at` (UTC), newest first."""
    return list(islice(at_or_before(cron, zone, at), count))


def first_run(cron: str, zone: str, now: datetime, offset_s: int) -> datetime:
    """Where a new or changed schedule starts: its first occurrence not yet due at `now`
    (an occurrence passed less than `offset_s` ago is still ahead of its due time)."""
    [first] = next_runs(cron, zone, now - timedelta(seconds=offset_s), 1)
    return first


def spread_offset(identity: str, cron: str, zone: str, now: datetime) -> int:
    """A stable offset in seconds for one integration: from a hash of its identity, below
    MAX_SPREAD_S and below half the gap between two occurrences."""
    first, second = next_runs(cron, zone, now, 2)
    room = min(MAX_SPREAD_S, int((second - first).total_seconds() // 2))
    if room <= 0:
        return 0
    digest = hashlib.sha256(identity.encode()).digest()
    return int.from_bytes(digest[:8], "big") % room


@dataclass(frozen=True)
class Plan:
    """What one sweep does with a schedule: the occurrence to run (if any), how many due
    occurrences it passes over (recorded as missed), and where the schedule goes next."""

    run: datetime | None
    missed: int
    next_run_at: datetime
    at_least: bool = False  # `missed` counts MAX_COUNTED of a longer backlog: at least so many


MAX_COUNTED = 1000  # a longer backlog is reported as "at least" this many missed


def plan(
    *,
    cron: str,
    zone: str,
    next_run_at: datetime,
    offset_s: int,
    now: datetime,
    policy: Missed,
    grace_s: float,
    max_catch_up: int,
) -> Plan:
    """The due occurrences (from `next_run_at`, due at occurrence + offset) under the policy.

    An occurrence is on time while `now` is within `grace_s` of its due time; older ones
    were missed. `skip` runs only an on-time one; `once` runs the latest for all of them;
    `all` runs the earliest of the latest `max_catch_up` and leaves the schedule on the next
    one (still due, so the following sweeps run them one after another). Walks backwards
    from now, so a month-long outage of a minutely schedule costs no more than an hour's.
    """
    edge = now - timedelta(seconds=offset_s)  # occurrences at or before this are due
    if next_run_at > edge:
        return Plan(None, 0, next_run_at)
    following = next(occurrences(cron, zone, next_run_at))
    if following > edge:  # the usual sweep: exactly one occurrence is due
        on_time = (edge - next_run_at).total_seconds() <= grace_s
        run = next_run_at if on_time or policy is not Missed.SKIP else None
        return Plan(run, 0 if run else 1, following)
    following = next(occurrences(cron, zone, edge))
    kept: list[datetime] = []  # the latest due occurrences, newest first
    for moment in at_or_before(cron, zone, edge):
        if moment < next_run_at or len(kept) == max_catch_up:
            break
        kept.append(moment)
    before = _count_between(cron, zone, next_run_at, kept[-1]) if kept else 0
    if not kept:  # next_run_at is not an occurrence of the cron (it was changed): move on
        return Plan(None, 0, following)
    at_least = before >= MAX_COUNTED
    if policy is Missed.ALL:
        ascending = kept[::-1]
        after = ascending[1] if len(ascending) > 1 else following
        return Plan(ascending[0], before, after, at_least)
    if policy is Missed.ONCE:
        return Plan(kept[0], before + len(kept) - 1, following, at_least)
    on_time = (now - kept[0] - timedelta(seconds=offset_s)).total_seconds() <= grace_s
    run = kept[0] if on_time else None
    return Plan(run, before + len(kept) - (1 if on_time else 0), following, at_least)


def _count_between(cron: str, zone: str, first: datetime, last: datetime) -> int:
    """Occurrences in [first, last) (at most MAX_COUNTED)."""
    if first >= last:
        return 0
    count = 1
    for moment in occurrences(cron, zone, first):
        if moment >= last or count >= MAX_COUNTED:
            break
        count += 1
    return count
