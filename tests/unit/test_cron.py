"""Schedule arithmetic (pure): occurrences in a zone, spread, missed-run plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import takewhile
from zoneinfo import ZoneInfo

import pytest

from shared.cron import (
    MAX_SPREAD_S,
    Missed,
    first_run,
    next_runs,
    occurrences,
    parse_cron,
    place_zone,
    plan,
    spread_offset,
)

HOURLY = "0 * * * *"
NOW = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)


def plan_for(policy: Missed, next_run_at: datetime, **over: object) -> object:
    args: dict[str, object] = {"cron": HOURLY, "zone": "UTC", "next_run_at": next_run_at,
                               "offset_s": 0, "now": NOW, "policy": policy, "grace_s": 300,
                               "max_catch_up": 24}  # fmt: skip
    args.update(over)
    return plan(**args)  # type: ignore[arg-type]


def test_a_three_hour_outage_under_each_policy() -> None:
    start = datetime(2026, 12, 4, 10, tzinfo=UTC)
    skip, once, every = (plan_for(p, start) for p in (Missed.SKIP, Missed.ONCE, Missed.ALL))
    assert (skip.run, skip.missed, skip.next_run_at) == (None, 3, NOW.replace(hour=13, minute=0))  # type: ignore[attr-defined]
    assert (once.run, once.missed) == (NOW.replace(minute=0), 2)  # type: ignore[attr-defined]
    assert (every.run, every.missed, every.next_run_at) == (start, 0, start + timedelta(hours=1))  # type: ignore[attr-defined]


def test_an_on_time_occurrence_runs_under_every_policy() -> None:
    due = NOW.replace(minute=28)
    for policy in Missed:
        got = plan_for(policy, due, cron="28 * * * *", now=due + timedelta(seconds=30))
        assert got.run == due and got.missed == 0  # type: ignore[attr-defined]


def test_all_keeps_only_the_latest_occurrences_of_a_long_outage() -> None:
    month_ago = NOW - timedelta(days=30)
    got = plan_for(Missed.ALL, month_ago.replace(minute=0), cron="* * * * *", max_catch_up=5)
    assert got.run == NOW - timedelta(minutes=4) and got.missed == 1000  # type: ignore[attr-defined]


def test_a_sweep_in_the_last_second_of_a_minute_runs_no_occurrence_early() -> None:
    """A backlog met at hh:mm:59.x: the next minute's occurrence is not due yet, so it is
    neither run (early) nor counted, and the latest due one is the one run."""
    start = NOW.replace(hour=10, minute=0)
    late = NOW.replace(hour=10, minute=5, second=59, microsecond=600_000)
    for policy in (Missed.SKIP, Missed.ONCE):
        got = plan_for(policy, start, cron="* * * * *", now=late)
        assert (got.run, got.missed) == (start + timedelta(minutes=5), 5)  # type: ignore[attr-defined]
        assert got.next_run_at == start + timedelta(minutes=6)  # type: ignore[attr-defined]
    every = plan_for(Missed.ALL, start, cron="* * * * *", now=late, max_catch_up=2)
    assert (every.run, every.missed) == (start + timedelta(minutes=4), 4)  # type: ignore[attr-defined]


def test_the_offset_delays_the_due_time() -> None:
    got = plan_for(
        Missed.SKIP,
        NOW.replace(hour=13, minute=0),
        now=NOW.replace(hour=13, minute=1),
        offset_s=120,
    )
    assert got.run is None and got.missed == 0  # type: ignore[attr-defined]


def test_a_schedule_saved_within_its_offset_starts_from_the_occurrence_not_yet_due() -> None:
    today = NOW.replace(hour=2, minute=0)
    saved = today + timedelta(minutes=1)
    assert first_run("0 2 * * *", "UTC", saved, offset_s=187) == today  # due 02:03:07
    assert first_run("0 2 * * *", "UTC", saved, offset_s=30) == today + timedelta(days=1)
    assert first_run("0 2 * * *", "UTC", saved, offset_s=0) == today + timedelta(days=1)


def test_spread_is_stable_and_bounded() -> None:
    offsets = {spread_offset(f"tenant-{i}:acessorias", "0 2 * * *", "UTC", NOW) for i in range(200)}
    assert len(offsets) > 100 and max(offsets) < MAX_SPREAD_S
    assert spread_offset("a:b", "0 2 * * *", "UTC", NOW) == spread_offset(
        "a:b", "0 2 * * *", "UTC", NOW
    )
    assert spread_offset("a:b", "* * * * *", "UTC", NOW) < 30  # half a minutely period


def test_a_spread_schedule_is_at_most_five_minutes_late() -> None:
    """The README's promise, whatever the constant: a daily schedule's offset stays under
    five minutes."""
    offsets = [spread_offset(f"tenant-{i}:acessorias", "0 2 * * *", "UTC", NOW) for i in range(200)]
    assert max(offsets) < 300 and max(offsets) >= 200  # spread over the five minutes


@pytest.mark.parametrize(
    "bad", ["", "* * * *", "* * * * * *", "61 * * * *", "* 25 * * *", "a b c d e", "0 0 LW * */7"]
)
def test_bad_cron_expressions(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_cron(bad)


@pytest.mark.parametrize(
    "bad",
    ["", "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "UTC\0", "localtime",
     "posixrules", "Factory", "right/America/Sao_Paulo", "posix/Factory"],
)  # fmt: skip
def test_bad_zones(bad: str) -> None:
    with pytest.raises(ValueError):
        place_zone(bad)


# A fall-back's repeated hour: cronsim reads its start as wall-clock time, whichever pass.
BERLIN, DAILY_0230 = "Europe/Berlin", "30 2 * * *"
FALL_BACK_0230 = datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first pass
IN_THE_REPEATED_HOUR = datetime(2025, 10, 26, 1, 10, tzinfo=UTC)  # 02:10 CET, the second


def test_next_runs_are_after_the_moment_in_the_repeated_hour() -> None:
    [upcoming] = next_runs(DAILY_0230, BERLIN, IN_THE_REPEATED_HOUR, 1)
    assert upcoming == datetime(2025, 10, 27, 1, 30, tzinfo=UTC)  # was 00:30, passed


def test_occurrences_before_the_moment_in_the_repeated_hour_miss_none() -> None:
    before = occurrences(DAILY_0230, BERLIN, IN_THE_REPEATED_HOUR, reverse=True)
    assert next(before) == FALL_BACK_0230  # was the day before's


def test_a_schedule_saved_in_the_repeated_hour_starts_from_an_occurrence_not_yet_due() -> None:
    assert first_run(DAILY_0230, BERLIN, IN_THE_REPEATED_HOUR, 0) > IN_THE_REPEATED_HOUR


def test_once_after_an_outage_ending_in_the_repeated_hour_runs_once() -> None:
    got = plan_for(Missed.ONCE, datetime(2025, 10, 25, 0, 30, tzinfo=UTC), cron=DAILY_0230,
                   zone=BERLIN, now=IN_THE_REPEATED_HOUR)  # fmt: skip
    assert got.run == FALL_BACK_0230 and got.missed == 1  # type: ignore[attr-defined]
    assert got.next_run_at > IN_THE_REPEATED_HOUR  # type: ignore[attr-defined]


def _changes(zone: str, year: int) -> list[datetime]:
    """The hours of `year` at which the zone's UTC offset changes."""
    tz, found = ZoneInfo(zone), []
    at = datetime(year, 1, 1, tzinfo=UTC)
    while at.year == year:
        if at.astimezone(tz).utcoffset() != (at + timedelta(hours=1)).astimezone(tz).utcoffset():
            found.append(at)
        at += timedelta(hours=1)
    return found


def _walk(cron: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    return list(takewhile(lambda moment: moment < end, occurrences(cron, zone, start)))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "America/Sao_Paulo"])
@pytest.mark.parametrize("cron", ["30 2 * * *", "30 1 * * *", "*/20 * * * *", "0 0 * * *"])
def test_occurrences_from_any_moment_agree_with_one_walk_across_dst(zone: str, cron: str) -> None:
    """From every ten minutes around each change of 2018, the next and the previous
    occurrence are those of one walk that starts two days before the change."""
    for change in _changes(zone, 2018):
        start = change - timedelta(days=2)
        walk = _walk(cron, zone, start, start + timedelta(days=4))
        assert walk == sorted(set(walk))
        at = change - timedelta(hours=6)
        while at < change + timedelta(hours=6):
            assert next(occurrences(cron, zone, at)) == next(m for m in walk if m > at), at
            assert (
                next(occurrences(cron, zone, at, reverse=True)) == [m for m in walk if m < at][-1]
            ), at
            at += timedelta(minutes=10)


LORD_HOWE, HALF_PAST = "Australia/Lord_Howe", "30 * * * *"
# 2026-04-05 02:00 +11 falls back half an hour to 01:30 +10:30 (15:00 UTC): 01:30 repeats.
FIRST_0130, SECOND_0130 = (datetime(2026, 4, 4, 14, 30, tzinfo=UTC),
                           datetime(2026, 4, 4, 15, 0, tzinfo=UTC))  # fmt: skip


def test_a_half_hour_change_walked_back_agrees_with_the_walk_forward() -> None:
    """Lord Howe's clock moves half an hour: walked back into its fall-back, the 01:30 of
    the second pass (which the forward walk, running a repeated time once, never gives)
    was an occurrence, so a catch-up ran it beside or instead of the real one."""
    for change in _changes(LORD_HOWE, 2026):
        start = change - timedelta(days=2)
        walk = _walk(HALF_PAST, LORD_HOWE, start, start + timedelta(days=4))
        at = change - timedelta(hours=6)
        while at < change + timedelta(hours=6):
            before = next(occurrences(HALF_PAST, LORD_HOWE, at, reverse=True))
            assert before == [m for m in walk if m < at][-1], at
            at += timedelta(minutes=10)


def test_skip_after_an_outage_over_a_half_hour_fall_back_runs_no_late_occurrence() -> None:
    """At 15:05 UTC the last occurrence (01:30 +11, 14:30 UTC) is 35 minutes late: `skip`
    runs none. It ran the repeated 01:30 (15:00 UTC) as an on-time occurrence."""
    got = plan_for(Missed.SKIP, FIRST_0130 - timedelta(hours=1), cron=HALF_PAST, zone=LORD_HOWE,
                   now=SECOND_0130 + timedelta(minutes=5))  # fmt: skip
    assert got.run is None and got.missed == 2  # type: ignore[attr-defined]
    once = plan_for(Missed.ONCE, FIRST_0130 - timedelta(hours=1), cron=HALF_PAST,
                    zone=LORD_HOWE, now=SECOND_0130 + timedelta(minutes=5))  # fmt: skip
    assert once.run == FIRST_0130 and once.missed == 1  # type: ignore[attr-defined]


def test_skip_judges_on_time_from_the_due_time_with_the_spread_offset() -> None:
    """An occurrence due at 13:04 (13:00 plus a 4-minute spread offset) met at 13:08 is 4
    minutes late, within the 5-minute grace: `skip` runs it, alone or after an outage (it
    was judged 8 minutes late from 13:00, and skipped: the run never happened)."""
    at = NOW.replace(hour=13, minute=0)
    now = at + timedelta(minutes=8)
    usual = plan_for(Missed.SKIP, at, now=now, offset_s=240)
    assert (usual.run, usual.missed) == (at, 0)  # type: ignore[attr-defined]
    after_outage = plan_for(Missed.SKIP, at - timedelta(hours=2), now=now, offset_s=240)
    assert (after_outage.run, after_outage.missed) == (at, 2)  # type: ignore[attr-defined]
    late = plan_for(Missed.SKIP, at, now=now + timedelta(minutes=2), offset_s=240)
    assert (late.run, late.missed) == (None, 1)  # type: ignore[attr-defined]


def test_a_single_late_occurrence_runs_under_once_and_all_and_is_missed_under_skip() -> None:
    """One occurrence due, met 30 minutes late (past the grace, before the next one):
    `once` and `all` still run it, `skip` records it missed; each moves to the next one."""
    at = NOW.replace(minute=0)
    for policy in (Missed.ONCE, Missed.ALL):
        got = plan_for(policy, at)
        assert (got.run, got.missed, got.next_run_at) == (at, 0, at + timedelta(hours=1))  # type: ignore[attr-defined]
    skipped = plan_for(Missed.SKIP, at)
    assert (skipped.run, skipped.missed, skipped.next_run_at) == (None, 1, at + timedelta(hours=1))  # type: ignore[attr-defined]
