"""TASK_END webhook sender of the RunningHub emulator.

Deliveries wait in a time-ordered heap; a few worker threads send the due ones. A failed
attempt (non-2xx, connection error, or an answer slower than `webhook_timeout_s`) is put
back with a delay until `webhook_max_attempts` is reached. Retries are scheduled rather
than slept in a loop, so a slow receiver never holds up other deliveries.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from infra.emulators.runninghub.model import RunningHubKnobs, redact_url


@dataclass
class Attempt:
    """One POST of a delivery."""

    number: int
    outcome: str  # ok | http_<status> | timeout | connect_error | error
    status_code: int | None
    elapsed_ms: float


@dataclass
class Delivery:
    """One logical webhook notification (a replay is a separate delivery)."""

    delivery_id: int
    task_id: str
    url: str
    body: dict[str, Any]
    replay: int
    state: str = "pending"  # pending | delivered | failed
    attempts: list[Attempt] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Admin view; the URL query (where a secret may be) is hidden."""
        return {
            "deliveryId": self.delivery_id,
            "taskId": self.task_id,
            "url": redact_url(self.url),
            "replay": self.replay,
            "state": self.state,
            "body": self.body,
            "attempts": [a.__dict__ for a in self.attempts],
        }


class WebhookDispatcher:
    """Sends webhook deliveries from background threads, with bounded retries."""

    def __init__(self, knobs: Callable[[], RunningHubKnobs], workers: int = 4) -> None:
        self._knobs = knobs
        self._workers = workers
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count(1)
        self._records: list[Delivery] = []
        self._in_flight = 0
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._client: httpx.Client | None = None

    def start(self) -> None:
        """Start the worker threads (idempotent)."""
        with self._cond:
            if self._threads:
                return
            self._closing = False
            self._client = httpx.Client(timeout=httpx.Timeout(5.0))
            for n in range(self._workers):
                thread = threading.Thread(target=self._work, name=f"rh-webhook-{n}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def close(self) -> None:
        """Stop the workers; pending deliveries are dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=10)
        if self._client is not None:
            self._client.close()
            self._client = None

    def enqueue(self, task_id: str, url: str, body: dict[str, Any]) -> None:
        """Schedule one delivery per configured replay."""
        knobs = self._knobs()
        now = time.monotonic()
        with self._cond:
            for replay in range(max(1, knobs.webhook_replays)):
                delivery = Delivery(next(self._seq), task_id, url, body, replay)
                self._records.append(delivery)
                due = now + replay * knobs.webhook_replay_gap_s
                heapq.heappush(self._heap, (due, delivery.delivery_id, delivery))
            self._cond.notify_all()

    def deliveries(self, task_id: str | None = None) -> list[Delivery]:
        """Recorded deliveries, oldest first, optionally for one task."""
        with self._cond:
            return [d for d in self._records if task_id is None or d.task_id == task_id]

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is scheduled or in flight; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._in_flight, timeout)

    def reset(self) -> None:
        """Forget scheduled deliveries and the record (in-flight ones still finish)."""
        with self._cond:
            self._heap.clear()
            self._records.clear()
            self._cond.notify_all()

    def _next_due(self) -> Delivery | None:
        """Wait for a due delivery (called with the condition held); None when closing."""
        while not self._closing:
            if self._heap:
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    self._in_flight += 1
                    return heapq.heappop(self._heap)[2]
                self._cond.wait(wait)
            else:
                self._cond.wait()
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                delivery = self._next_due()
            if delivery is None:
                return
            attempt = self._send(delivery, len(delivery.attempts) + 1)
            knobs = self._knobs()
            with self._cond:
                delivery.attempts.append(attempt)
                if attempt.outcome == "ok":
                    delivery.state = "delivered"
                elif attempt.number >= knobs.webhook_max_attempts:
                    delivery.state = "failed"
                else:
                    due = time.monotonic() + knobs.webhook_retry_delay_s
                    heapq.heappush(self._heap, (due, delivery.delivery_id, delivery))
                self._in_flight -= 1
                self._cond.notify_all()

    def _send(self, delivery: Delivery, number: int) -> Attempt:
        client = self._client
        started = time.monotonic()
        outcome, status = "error", None
        if client is not None:
            try:
                response = client.post(
                    delivery.url, json=delivery.body, timeout=self._knobs().webhook_timeout_s
                )
                status = response.status_code
                outcome = "ok" if response.is_success else f"http_{status}"
            except httpx.TimeoutException:
                outcome = "timeout"
            except httpx.TransportError:
                outcome = "connect_error"
        elapsed = (time.monotonic() - started) * 1000
        return Attempt(number, outcome, status, round(elapsed, 1))
