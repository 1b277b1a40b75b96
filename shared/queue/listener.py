"""One LISTEN connection per process and channel, fanned out to the open event streams.

Each event stream used to hold a connection of its own, so a member with a hundred tabs
used up the database. Now a daemon thread owns the one connection: it LISTENs and hands
every notification's payload to each subscription's inbox; a stream keeps what is its own.

A subscription is told to *resync* (re-read what changed rather than rely on the
notifications) whenever it may have missed one: the connection dropped (what was sent
meanwhile is gone; the thread reconnects with backoff and flags every subscription that
was open once it listens again), or a stream that fell behind let too many pile up.

A connection can also go silent without dropping (a stalled proxy, a network gone dark):
it looks just like a quiet channel. So after SSE_LISTENER_PROBE_S without a notification
the thread sends one of its own through the pool; unanswered within the timeout, the
connection is dropped and replaced, as if it had failed.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout

from shared import db, log
from shared.backoff import backoff_delay
from shared.errors import ServiceUnavailable
from shared.settings import get_settings

MAX_PENDING = 1000  # notifications one inbox holds; beyond, its stream resyncs instead
POLL_S = 0.5  # how often the thread looks up from the socket to see whether to stop
PROBE_CHECKOUT_S = 2.0  # how long a probe waits for a pooled connection before giving up
APPLICATION_NAME = "syncq-listener"  # how the connection shows in pg_stat_activity
_logger = log.get_logger("queue.listener")

Connect = Callable[[], db.Conn]


@dataclass(frozen=True)
class Taken:
    """What a stream takes from its inbox: payloads in order of arrival, or a resync."""

    payloads: list[str] = field(default_factory=list)
    resync: bool = False


class Subscription:
    """One stream's inbox: the listener thread fills it, the stream empties it."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._changed = threading.Condition()
        self._payloads: list[str] = []
        self._resync = False
        self._missed = False  # the connection dropped: resync once it listens again
        self._max_pending = max_pending

    def push(self, payload: str) -> None:
        """A notification (dropped when a resync is due: the re-read will see its change)."""
        with self._changed:
            if self._resync:
                return
            if len(self._payloads) >= self._max_pending:
                self._payloads.clear()
                self._resync = True
            else:
                self._payloads.append(payload)
            self._changed.notify()

    def missed(self) -> None:
        """Notifications may be lost from now on (the connection dropped)."""
        with self._changed:
            self._missed = True

    def listening(self) -> None:
        """The channel is listened to again: resync if anything may have been missed."""
        with self._changed:
            if self._missed:
                self._missed, self._resync = False, True
                self._changed.notify()

    def take(self, timeout_s: float) -> Taken:
        """Wait up to `timeout_s` for something to arrive, then take all of it."""
        with self._changed:
            self._changed.wait_for(lambda: self._payloads or self._resync, max(timeout_s, 0.0))
            batch = Taken(self._payloads, self._resync)
            self._payloads, self._resync = [], False
            return batch


class _Stalled(Exception):
    """The LISTEN connection no longer delivers notifications (its own probe got lost)."""


class Listener:
    """A thread that LISTENs on one channel and fans each notification out."""

    def __init__(self, channel: str, connect: Connect) -> None:
        self.channel = channel
        self._connect = connect
        self._lock = threading.Lock()  # guards the subscriptions and the listening state
        self._subscriptions: set[Subscription] = set()
        self._listening = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, timeout_s: float) -> Subscription:
        """A new inbox, once the channel is listened to (503 when it cannot be in time).

        Subscribe before reading a snapshot: every change committed after this returns
        either arrives in the inbox or makes the inbox ask for a resync.
        """
        subscription = Subscription()
        with self._lock:
            self._subscriptions.add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"listen-{self.channel}", daemon=True
                )
                self._thread.start()
        if not self._listening.wait(timeout_s):
            self.unsubscribe(subscription)
            raise ServiceUnavailable("Live updates are unavailable right now; retry shortly.")
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop filling this inbox (idempotent)."""
        with self._lock:
            self._subscriptions.discard(subscription)

    def subscribers(self) -> int:
        """How many inboxes are open."""
        with self._lock:
            return len(self._subscriptions)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and close the connection (tests and shutdown)."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._set_listening(True)
                    failures = 0
                    self._pump(conn)
            except psycopg.Error:
                failures += 1
                _logger.warning("event listener lost its connection; reconnecting")
            except _Stalled:
                failures += 1
                _logger.warning("event listener's connection went silent; reconnecting")
            except Exception:
                failures += 1
                _logger.exception("event listener failed; reconnecting")
            finally:
                self._set_listening(False)
            if failures:
                self._stopping.wait(_retry_delay(failures))

    def _pump(self, conn: db.Conn) -> None:
        settings = get_settings().edge
        heard = time.monotonic()  # the last notification (any: the channel is alive)
        probe: str | None = None  # the payload of our own notification, once sent
        sent = 0.0
        while not self._stopping.is_set():
            for note in conn.notifies(timeout=POLL_S):
                heard = time.monotonic()
                if note.payload == probe:
                    probe = None
                    continue
                with self._lock:
                    subscriptions = list(self._subscriptions)
                for subscription in subscriptions:
                    subscription.push(note.payload)
            now = time.monotonic()
            if probe is None and now - heard >= settings.sse_listener_probe_s:
                probe, sent = self._probe(), time.monotonic()  # its wait starts once sent
                heard = sent if probe is None else heard  # not sent: try again later
            elif probe is not None and now - sent >= settings.sse_listener_probe_timeout_s:
                raise _Stalled(self.channel)

    def _probe(self) -> str | None:
        """Notify the channel from another connection; the payload to wait for, or None when
        no connection was free in time (a busy pool says nothing about this connection).

        Sent from a thread of its own and waited for a bounded time: a pooled connection
        the network silenced too has no client-side timeout, and the listener thread stuck
        on it stopped listening for good. A send that does not come back is a stall.
        """
        payload = json.dumps({"probe": uuid.uuid4().hex})  # no tenant: no stream keeps it
        outcome: list[Exception | bool] = []

        def send() -> None:
            try:
                with db.get_pool().connection(timeout=PROBE_CHECKOUT_S) as conn:
                    conn.execute("SELECT pg_notify(%s, %s)", [self.channel, payload])
                outcome.append(True)
            except PoolTimeout:
                outcome.append(False)
            except Exception as exc:  # raised in the listener thread, as before
                outcome.append(exc)

        sender = threading.Thread(target=send, name=f"probe-{self.channel}", daemon=True)
        sender.start()
        sender.join(PROBE_CHECKOUT_S + get_settings().edge.sse_listener_probe_timeout_s)
        if not outcome:
            raise _Stalled(self.channel)
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return payload if outcome[0] else None

    def _set_listening(self, listening: bool) -> None:
        with self._lock:
            if listening == self._listening.is_set():
                return
            if listening:
                self._listening.set()
            else:
                self._listening.clear()
            for subscription in self._subscriptions:
                if listening:
                    subscription.listening()
                else:
                    subscription.missed()


def _retry_delay(failures: int) -> float:
    settings = get_settings()
    return backoff_delay(
        failures,
        base_s=settings.edge.sse_listener_retry_base_s,
        cap_s=settings.edge.sse_listener_retry_cap_s,
        rand=random.random(),
    )


def _connect() -> db.Conn:
    return db.dedicated_connection(autocommit=True, application_name=APPLICATION_NAME)


_listeners: dict[str, Listener] = {}
_listeners_lock = threading.Lock()


def get_listener(channel: str) -> Listener:
    """The process's listener of `channel` (its thread starts with the first subscription)."""
    with _listeners_lock:
        if channel not in _listeners:
            _listeners[channel] = Listener(channel, _connect)
        return _listeners[channel]


def stop_listeners() -> None:
    """Stop every listener of the process (tests and shutdown); the next use starts anew."""
    with _listeners_lock:
        stopping = list(_listeners.values())
        _listeners.clear()
    for listener in stopping:
        listener.stop()
