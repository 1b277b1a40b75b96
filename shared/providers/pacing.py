"""Keeping under a provider's published request rate, so a long sync waits instead of
being refused.

Acessórias allows 100 requests a minute per token over a sliding window and answers the
101st with a 429 that names no wait (PROVIDERS.md): retries that give up within seconds
cannot outlast a 60-second window, so a sync of more than ~100 pages failed at the same page
on every attempt. A sync of one (tenant, provider) runs in one process at a time (the
job's slot), so pacing it here keeps the token under the limit. The window is the token's,
not one sync's: a sync that starts while an earlier one's requests are still in it (the
retry of a failed attempt, the next run, another tenant on the same account) must count
them, so a process keeps one pacer per (API, token) (`shared`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable


class Pacer:
    """At most `limit` requests in any `window_s` seconds: `wait()` before each request
    sleeps until the oldest of the last `limit` leaves the window, `sent()` after it
    records it. A request is recorded when its answer is back, no earlier than the server
    counted it, so the server's window never holds more. A limit of 0 never waits.
    Every `wait()` must be followed by its `sent()` (in a `finally`): between the two the
    request holds a slot, and one never recorded would hold it for good."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.window_s = limit, window_s
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque(maxlen=max(limit, 1))
        # One pacer serves every sync of its token in the process (gunicorn's threads): a
        # request is counted from `wait()` (in flight) until `sent()` records its answer, so
        # two syncs waiting for the same slot cannot both take it.
        self._turn = threading.Condition()
        self._in_flight = 0

    def wait(self) -> float:
        """Block until one more request fits in the window; the seconds waited."""
        if self.limit <= 0:
            return 0.0
        waited = 0.0
        with self._turn:
            while True:
                now = self._clock()
                recent = [t for t in self._sent if t > now - self.window_s]
                if len(recent) + self._in_flight < self.limit:
                    self._in_flight += 1
                    return waited
                if not recent:  # every slot is a request still in flight: wait for one
                    self._turn.wait()
                    continue
                pause = recent[0] + self.window_s - now
                self._turn.release()  # others may record their answers meanwhile
                try:
                    self._sleep(pause)
                finally:
                    self._turn.acquire()
                waited += pause

    def sent(self) -> None:
        """A request was answered (or failed): it counts from now."""
        if self.limit > 0:
            with self._turn:
                self._in_flight = max(self._in_flight - 1, 0)
                self._sent.append(self._clock())  # the oldest beyond `limit` falls out
                self._turn.notify_all()


_shared: dict[tuple[str, str, int, float], Pacer] = {}
_shared_lock = threading.Lock()


def shared(api: str, credential: str, limit: int, window_s: float) -> Pacer:
    """The process's pacer of one credential at one API (the credential kept as a hash)."""
    key = (api, hashlib.sha256(credential.encode()).hexdigest(), limit, window_s)
    with _shared_lock:
        pacer = _shared.get(key)
        if pacer is None:
            pacer = _shared[key] = Pacer(limit, window_s)
        return pacer
