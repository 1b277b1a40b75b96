"""The delivery proxy: Cloud Tasks' delivery side, between the emulator and the worker.

Every Cloud Task the functions create targets this proxy (their FUNCTIONS_BASE_URL). The
emulator hands it each task as an HTTP request and gets 202 at once; the proxy then

* loses `drop` of them (never delivered: a lost wake-up),
* delivers `duplicate` of them twice, at the same moment (a duplicated wake-up),
* delivers the rest once, with `concurrency` deliveries in flight, retrying a delivery
  that failed (connection refused or reset while the worker is down or killed, 5xx, 429)
  with exponential backoff, up to `attempts` tries.

The last two are what production Cloud Tasks does and the emulator does not (it sends one
task at a time and waits for each answer; it retries at once, without backoff), so the
worker sees the concurrency and the redeliveries it would see in production. Redeliveries
of a request the worker died in are more duplicates, beyond the injected ones.
"""

from __future__ import annotations

import json
import queue
import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

FORWARDED_HEADERS = ("Authorization", "Content-Type")
WORKER = "process-integration-job"


class _Redeliver(Exception):
    """The delivery did not land (the worker was down, died, or answered 5xx/429)."""


class _Stopped(Exception):
    """The proxy is stopping: deliveries still waiting are abandoned."""


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log."""


class DeliveryProxy:
    """Accepts the emulator's deliveries and forwards them to `target` (see module doc)."""

    def __init__(
        self,
        target: str,
        *,
        concurrency: int = 10,
        attempts: int = 8,
        backoff_s: tuple[float, float] = (0.2, 3.0),
        seed: int = 0,
    ) -> None:
        self.target = target.rstrip("/")
        self.drop = 0.0
        self.duplicate = 0.0
        self._concurrency = concurrency
        self._attempts = attempts
        self._backoff = backoff_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._work: queue.Queue[Delivery | None] = queue.Queue()
        self._busy = 0
        self._http = httpx.Client(
            trust_env=False,
            timeout=httpx.Timeout(180.0, connect=2.0),
            limits=httpx.Limits(max_connections=concurrency + 2),
        )
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Serve on loopback; the base URL the functions send their tasks to."""
        self._server = make_server(
            "127.0.0.1", port, self._app, threaded=True, request_handler=_Quiet
        )
        self._server.block_on_close = False  # type: ignore[attr-defined]
        self._spawn(self._server.serve_forever, "proxy-http")
        for n in range(self._concurrency):
            self._threads.append(self._spawn(self._forward_loop, f"proxy-deliver-{n}"))
        return f"http://127.0.0.1:{self._server.server_port}/functions/v1"

    def stop(self) -> None:
        """Stop accepting; deliveries still in flight are abandoned (daemon threads)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for _ in self._threads:
            self._work.put(None)
        self._http.close()

    @staticmethod
    def _spawn(target: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def set_faults(self, *, drop: float, duplicate: float) -> None:
        with self._lock:
            self.drop, self.duplicate = drop, duplicate

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def idle(self) -> bool:
        """Nothing waiting and nothing in flight."""
        with self._lock:
            return self._work.empty() and self._busy == 0

    def _count(self, *names: str) -> None:
        with self._lock:
            self._counts.update(names)

    # -- accepting ---------------------------------------------------------------------------
    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
        path = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        self._accept(Delivery(path, request.get_data(), headers))
        start_response("202 Accepted", [("Content-Type", "application/json")])
        return [b'{"accepted": true}']

    def _accept(self, delivery: Delivery) -> None:
        with self._lock:
            self._counts["accepted"] += 1
            draw = self._rng.random()
            if draw < self.drop:
                self._counts["dropped"] += 1
                return
            copies = 2 if draw < self.drop + self.duplicate else 1
            if copies == 2:
                self._counts["duplicated"] += 1
        for _ in range(copies):
            self._work.put(delivery)

    # -- delivering --------------------------------------------------------------------------
    def _forward_loop(self) -> None:
        while (delivery := self._work.get()) is not None:
            with self._lock:
                self._busy += 1
            try:
                self._forward(delivery)
            finally:
                with self._lock:
                    self._busy -= 1

    def _forward(self, delivery: Delivery) -> None:
        low, high = self._backoff
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=low, max=high),
            retry=retry_if_exception_type(_Redeliver),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self._count("redelivered")
                    answer = self._post(delivery)
        except _Redeliver:
            self._count("gave_up")
            return
        except _Stopped:
            return
        self._count("delivered")
        if delivery.path.startswith(f"/functions/v1/{WORKER}") and _claimed_nothing(answer):
            self._count("empty")

    def _post(self, delivery: Delivery) -> httpx.Response:
        if self._stopping.is_set():
            raise _Stopped
        try:
            answer = self._http.post(
                self.target + delivery.path, content=delivery.body, headers=delivery.headers
            )
        except httpx.HTTPError as exc:
            self._count("failed_connection")
            raise _Redeliver from exc
        except RuntimeError as exc:  # the client was closed under us: we are stopping
            raise _Stopped from exc
        if answer.status_code >= 500:
            self._count(f"answer_{answer.status_code}")
            raise _Redeliver
        if answer.status_code == 429:
            self._count("answer_429")
            raise _Redeliver
        if answer.status_code >= 400:
            self._count(f"answer_{answer.status_code}")  # not retried: Cloud Tasks would
        return answer


def _claimed_nothing(answer: httpx.Response) -> bool:
    """A worker wake-up that found nothing to run (a duplicate, or work already taken)."""
    try:
        body = answer.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("processed") == []
