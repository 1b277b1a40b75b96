"""Pure pieces of the event streams: the caps, an inbox, the Last-Event-ID time."""

from __future__ import annotations

import contextlib
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Principal
from shared.errors import DatabaseUnavailable, TooManyRequests
from shared.queue import events
from shared.queue.caps import StreamCaps
from shared.queue.events import EARLIEST, RESUME_MARGIN, last_event_time
from shared.queue.listener import Subscription, Taken

TENANT, OTHER = uuid.uuid4(), uuid.uuid4()


def test_caps_count_under_concurrent_opens() -> None:
    caps, barrier, won = StreamCaps(), threading.Barrier(64), []

    def open_one() -> None:
        barrier.wait()
        with contextlib.suppress(TooManyRequests):
            won.append(caps.acquire("u", TENANT, per_user=5, per_tenant=50))

    threads = [threading.Thread(target=open_one) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(won) == 5 and caps.open_streams() == 5


def test_the_user_cap_spans_tenants_and_the_tenant_cap_spans_users() -> None:
    caps = StreamCaps()
    caps.acquire("u", TENANT, per_user=2, per_tenant=3)
    caps.acquire("u", OTHER, per_user=2, per_tenant=3)
    with pytest.raises(TooManyRequests) as user:
        caps.acquire("u", OTHER, per_user=2, per_tenant=3)
    assert user.value.status == 429
    assert user.value.details == {"scope": "user", "limit": 2}
    caps.acquire("v", TENANT, per_user=2, per_tenant=3)
    caps.acquire("w", TENANT, per_user=2, per_tenant=3)
    with pytest.raises(TooManyRequests) as tenant:
        caps.acquire("x", TENANT, per_user=2, per_tenant=3)
    assert tenant.value.details == {"scope": "tenant", "limit": 3}


def test_a_slot_is_given_back_once() -> None:
    caps = StreamCaps()
    first = caps.acquire("u", TENANT, per_user=1, per_tenant=1)
    first.release()
    first.release()  # a stream ends once, but both its generator and its response close
    second = caps.acquire("u", TENANT, per_user=1, per_tenant=1)
    first.release()
    assert caps.open_streams() == 1
    with pytest.raises(TooManyRequests):
        caps.acquire("u", TENANT, per_user=1, per_tenant=1)
    second.release()
    assert caps.open_streams() == 0


def test_a_stream_that_cannot_subscribe_gives_its_slot_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream refused with a 503 (the database is away) holds no slot: once the database
    is back, the same user is not refused with a 429 by streams that never opened."""
    caps, user = StreamCaps(), Principal(kind="user", user_id=uuid.uuid4())
    monkeypatch.setattr(events, "STREAM_CAPS", caps)

    def away(_: str) -> None:
        raise DatabaseUnavailable()

    monkeypatch.setattr(events, "get_listener", away)
    for _ in range(8):  # more than the per-user cap
        with pytest.raises(DatabaseUnavailable):
            events.JobStream.open(user, TENANT)
    assert caps.open_streams() == 0


def test_an_inbox_hands_over_what_arrived_in_order() -> None:
    inbox = Subscription()
    inbox.push("a")
    inbox.push("b")
    assert inbox.take(0) == Taken(["a", "b"])
    assert inbox.take(0.01) == Taken()


def test_an_inbox_that_overflows_asks_for_a_resync() -> None:
    inbox = Subscription(max_pending=2)
    for payload in "abc":
        inbox.push(payload)
    inbox.push("d")  # the re-read will see it
    assert inbox.take(0) == Taken([], resync=True)
    inbox.push("e")
    assert inbox.take(0) == Taken(["e"])


def test_an_inbox_resyncs_only_once_the_listener_listens_again() -> None:
    inbox = Subscription()
    inbox.push("a")
    inbox.missed()
    assert inbox.take(0) == Taken(["a"])  # what came before the drop is good
    inbox.listening()
    assert inbox.take(0) == Taken([], resync=True)
    inbox.listening()  # a fresh connection, nothing missed since
    assert inbox.take(0) == Taken()


def test_take_wakes_up_on_a_push() -> None:
    inbox = Subscription()
    threading.Timer(0.05, inbox.push, ["a"]).start()
    assert inbox.take(5) == Taken(["a"])


JOB = "5b0c3a4e-8f0e-4c55-9a57-6d0f5f8a1e01"


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, None),
        ("", None),
        ("garbage", None),
        (f"{JOB}:", None),
        (f"{JOB}:2024-05-01T10:00:00", None),  # no zone: not a time we sent
        (f"{JOB}:2024-05-01T10:00:00+02:00", datetime(2024, 5, 1, 8, tzinfo=UTC) - RESUME_MARGIN),
        (f"{JOB}:0001-01-01T00:00:00+00:00", EARLIEST),
        (f"{JOB}:0001-01-01T00:00:59.999999+00:00", EARLIEST),
        (f"{JOB}:0001-01-01T10:00:00+14:00", EARLIEST),
        (f"{JOB}:0001-01-01T00:00:00-14:00", datetime(1, 1, 1, 14, tzinfo=UTC) - RESUME_MARGIN),
        (
            f"{JOB}:9999-12-31T23:59:59.999999+00:00",
            datetime.max.replace(tzinfo=UTC) - RESUME_MARGIN,
        ),
        (f"{JOB}:9999-12-31T23:59:59-14:00", None),  # year 10000 in UTC: nothing is after it
        (f"{JOB}:{'9' * 100_000}", None),
        (f"{JOB}:+99999-01-01T00:00:00+00:00", None),
    ],
)
def test_last_event_time(header: str | None, expected: datetime | None) -> None:
    got = last_event_time(header)
    assert got == expected
    if got is not None:
        assert got.utcoffset() == timedelta(0)
