"""One LISTEN connection per process, fanned out; reconnected when it drops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from shared import db
from shared.auth import Principal
from shared.errors import ServiceUnavailable
from shared.queue.events import STREAM_CAPS, JobStream
from shared.queue.listener import APPLICATION_NAME, Listener, Subscription, Taken
from tests.conftest import Configure
from tests.e2e.conftest import wait_until
from tests.pg_proxy import StallingProxy
from tests.support import call, rows, seed_tenant

CHANNEL = "syncq_test"


def listener_connections(database_url: str) -> int:
    return int(
        rows(
            database_url,
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            APPLICATION_NAME,
        )[0]["n"]
    )


def notify(database_url: str, *payloads: str, channel: str = CHANNEL) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for payload in payloads:  # one transaction each, in this order
            conn.execute("SELECT pg_notify(%s, %s)", [channel, payload])


def take_all(inbox: Subscription, count: int, timeout_s: float = 5) -> list[str]:
    got: list[str] = []
    while len(got) < count:
        batch = inbox.take(timeout_s)
        assert batch.payloads, f"only {got} arrived"
        got += batch.payloads
    return got


class Gate:
    """Connects for the listener while open; while shut, its connection cannot be made."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()

    def connect(self) -> db.Conn:
        if not self.open.wait(10):
            raise psycopg.OperationalError("the test keeps the database away")
        return db.dedicated_connection(application_name=APPLICATION_NAME)


@pytest.fixture
def gate(database_url: str) -> Iterator[tuple[Gate, Listener]]:
    gate = Gate()
    listener = Listener(CHANNEL, gate.connect)
    yield gate, listener
    gate.open.set()
    listener.stop()


def test_one_connection_serves_every_subscription(
    database_url: str, gate: tuple[Gate, Listener]
) -> None:
    _, listener = gate
    inboxes = [listener.subscribe(5) for _ in range(3)]
    notify(database_url, "one")
    notify(database_url, "elsewhere", channel="another_channel")
    notify(database_url, "two")
    assert [take_all(inbox, 2) for inbox in inboxes] == [["one", "two"]] * 3
    assert listener_connections(database_url) == 1
    listener.unsubscribe(inboxes[0])
    notify(database_url, "three")
    assert [take_all(inbox, 1) for inbox in inboxes[1:]] == [["three"]] * 2
    assert inboxes[0].take(0.2) == Taken()
    listener.stop()
    assert not [t for t in threading.enumerate() if t.name == f"listen-{CHANNEL}"]
    wait_until(lambda: listener_connections(database_url) == 0, 5, "the connection to close")


def test_a_dropped_connection_comes_back_and_every_inbox_resyncs(
    database_url: str, configure: Configure, gate: tuple[Gate, Listener]
) -> None:
    configure(SSE_LISTENER_RETRY_BASE_S="0.05", SSE_LISTENER_RETRY_CAP_S="0.1")
    doors, listener = gate
    inbox = listener.subscribe(5)
    doors.open.clear()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            [APPLICATION_NAME],
        )
    wait_until(lambda: listener_connections(database_url) == 0, 5, "the listener to drop")
    notify(database_url, "sent while nobody listened")
    assert inbox.take(0.3) == Taken()  # no resync before it listens again: it could miss more
    with pytest.raises(ServiceUnavailable):
        listener.subscribe(0.2)  # a new stream cannot start without it (503)
    assert listener.subscribers() == 1
    doors.open.set()
    assert inbox.take(5) == Taken([], resync=True)
    notify(database_url, "after")
    assert take_all(inbox, 1) == ["after"]
    assert listener_connections(database_url) == 1


def test_a_change_just_after_subscribing_is_neither_missed_nor_sent_twice(
    database_url: str, configure: Configure
) -> None:
    tenant = seed_tenant(database_url, "acme")
    job = call("run-integration", {"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
               token=tenant.admin_token).get_json()["job_id"]  # fmt: skip
    stream = JobStream.open(Principal("user", tenant.member), tenant.id)
    # Subscribed, not yet read: the snapshot will show this change, and its notification
    # waits in the inbox; the row it re-reads is the one already sent.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE integration_jobs SET progress = 10 WHERE id = %s", [job])
    text = "".join(stream.events(limit_s=1.0, ping_s=60, since=None))
    assert text.count(f"id: {job}:") == 1
    assert '"progress": 10' in text
    assert STREAM_CAPS.open_streams() == 0


def test_a_connection_gone_silent_is_replaced_and_every_inbox_resyncs(
    database_url: str, configure: Configure
) -> None:
    """A connection that stops delivering without dropping looks like a quiet channel: the
    listener kept it for good, and no stream heard another change (TCP keepalive would
    have told after two hours, and never through a stalled proxy)."""
    configure(SSE_LISTENER_PROBE_S="0.5", SSE_LISTENER_PROBE_TIMEOUT_S="0.5",
              SSE_LISTENER_RETRY_BASE_S="0.05", SSE_LISTENER_RETRY_CAP_S="0.1")  # fmt: skip
    with psycopg.connect(database_url) as conn:  # where the server really is
        proxy = StallingProxy(conn.info.host, conn.info.port)
    through_proxy = make_conninfo(database_url, host="127.0.0.1", port=proxy.port)
    listener = Listener(
        CHANNEL,
        lambda: psycopg.connect(through_proxy, autocommit=True, application_name=APPLICATION_NAME),
    )
    try:
        inbox = listener.subscribe(5)
        notify(database_url, "one")
        assert take_all(inbox, 1) == ["one"]
        proxy.silence_open_connections()
        notify(database_url, "lost on the silent connection")
        assert inbox.take(10) == Taken([], resync=True)  # a new connection listens
        notify(database_url, "after")
        assert take_all(inbox, 1) == ["after"]
    finally:
        listener.stop()
        proxy.close()


def test_a_busy_pool_does_not_make_a_healthy_listener_reconnect(
    database_url: str, configure: Configure
) -> None:
    """The probe goes through the pool: with every pooled connection taken, the pool's
    timeout dropped a healthy LISTEN connection and made every open stream resync."""
    configure(SSE_LISTENER_PROBE_S="0.5", SSE_LISTENER_PROBE_TIMEOUT_S="5",
              SSE_LISTENER_RETRY_BASE_S="0.05", SSE_LISTENER_RETRY_CAP_S="0.1",
              DB_POOL_MAX="1", DB_CONNECT_TIMEOUT_S="1")  # fmt: skip
    listener = Listener(CHANNEL, lambda: db.dedicated_connection(application_name=APPLICATION_NAME))
    try:
        inbox = listener.subscribe(5)
        notify(database_url, "one")
        assert take_all(inbox, 1) == ["one"]
        with db.transaction() as conn:  # the only pooled connection, for longer than a probe
            conn.execute("SELECT pg_sleep(3.5)")
        assert inbox.take(1) == Taken()  # nothing missed: no resync
        notify(database_url, "two")
        assert take_all(inbox, 1) == ["two"]
    finally:
        listener.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # proxy sockets
def test_a_probe_stuck_on_a_silenced_pooled_connection_does_not_stop_the_listener(
    database_url: str, configure: Configure
) -> None:
    """A network gone dark silences the pool's connections too: the probe, sent through the
    pool, hung the listener thread on one for good (no client-side timeout there)."""
    from shared.queue.listener import get_listener, stop_listeners

    with psycopg.connect(database_url) as conn:
        proxy = StallingProxy(conn.info.host, conn.info.port)
    configure(DATABASE_URL=make_conninfo(database_url, host="127.0.0.1", port=proxy.port),
              SSE_LISTENER_PROBE_S="0.5", SSE_LISTENER_PROBE_TIMEOUT_S="0.5",
              SSE_LISTENER_RETRY_BASE_S="0.05", SSE_LISTENER_RETRY_CAP_S="0.1",
              DB_POOL_MIN="1", DB_CONNECT_TIMEOUT_S="1")  # fmt: skip
    try:
        db.get_pool().wait()
        inbox = get_listener(CHANNEL).subscribe(5)
        notify(database_url, "one")
        assert take_all(inbox, 1) == ["one"]
        proxy.silence_open_connections()  # the LISTEN connection and the pool's idle one
        notify(database_url, "lost on the silent connection")
        assert inbox.take(15) == Taken([], resync=True)  # a new connection listens
        notify(database_url, "after")
        assert take_all(inbox, 1) == ["after"]
    finally:
        proxy.close()
        stop_listeners()
        db.close_pool()
