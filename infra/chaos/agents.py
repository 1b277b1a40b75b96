"""What runs beside a scenario: the sweep (Cloud Scheduler), the killer, the monitor.

Each is a daemon thread doing one thing every few seconds until stopped; each counts what
it did, so the figures can say it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from shared.auth import mint_token


class Periodic:
    """Call `step` every `every_s` seconds (±`jitter`) on a thread of its own until stopped."""

    def __init__(
        self,
        every_s: float,
        step: Callable[[], None],
        *,
        jitter: float = 0.0,
        first_s: float | None = None,
    ) -> None:
        self.every_s = every_s
        self._step = step
        self._jitter = jitter
        self._first_s = first_s  # the first wait, when not one like the others
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._rng = random.Random(11)

    def __enter__(self) -> Periodic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        if self._first_s is not None:
            if self._stop.wait(self._first_s):
                return
            self._step()
        while not self._stop.wait(self.every_s * (1 + self._jitter * (2 * self._rng.random() - 1))):
            self._step()


class Sweeper:
    """Cloud Scheduler locally: POST {} to the worker's process-integration-job, every few
    seconds, without waiting for the previous sweep (a slow sweep does not delay the next)."""

    def __init__(self, worker: str, every_s: float) -> None:
        self._url = f"{worker}/process-integration-job"
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="sweep")
        self._periodic = Periodic(every_s, self._fire)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __enter__(self) -> Sweeper:
        self._periodic.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._periodic.__exit__()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _fire(self) -> None:
        self._pool.submit(self._sweep)

    def _sweep(self) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {mint_token(service=True)}"}
        try:
            with httpx.Client(trust_env=False, timeout=180) as http:
                answer = http.post(self._url, json={}, headers=headers)
        except httpx.HTTPError:
            self._count("sweeps_failed")
            return None
        self._count("sweeps_ok" if answer.status_code == 200 else f"sweeps_{answer.status_code}")
        if answer.status_code != 200:
            return None
        body: dict[str, Any] = answer.json()
        self._count(rescued=int(body.get("rescued", 0)))
        return body

    def _count(self, *names: str, **amounts: int) -> None:
        with self._lock:
            self.counts.update(names)
            self.counts.update(amounts)


class Killer:
    """SIGKILL the worker every `every_s` seconds (±50%) and start it again; the first kill
    comes after a third of that, so even a run that ends early (few jobs, a fast machine)
    has its worker killed while it works."""

    def __init__(self, kill: Callable[[], None], every_s: float) -> None:
        self.kills = 0
        self._kill = kill
        self._periodic = Periodic(every_s, self._step, jitter=0.5, first_s=every_s / 3)

    def __enter__(self) -> Killer:
        if self._periodic.every_s > 0:
            self._periodic.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._periodic.every_s > 0:
            self._periodic.__exit__()

    def _step(self) -> None:
        self._kill()
        self.kills += 1
