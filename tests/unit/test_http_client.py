"""The one HTTP client: which failures are retried, how long it waits, what the caller gets.

Pure decisions are checked directly; retry behaviour through `httpx.MockTransport`; timeouts,
refused connections and Retry-After against a real HTTP server on a free local port.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from infra.local.supervise import free_port
from shared.backoff import backoff_delay
from shared.errors import UpstreamError, UpstreamUnavailable
from shared.http import HttpClient, RetryPolicy, backoff_s, pooled, retry_after_s, should_retry

FAST = RetryPolicy(attempts=3, base_s=0.001, cap_s=0.01, timeout_s=5.0)
SECRET = "sk-live-0123456789abcdef"


# --- pure decisions -------------------------------------------------------------------------


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_backoff_doubles_within_jitter_bounds_up_to_the_cap(rand: float) -> None:
    policy = RetryPolicy(attempts=9, base_s=1.0, cap_s=16.0, timeout_s=1.0)
    waits = [backoff_s(policy, attempt, rand=rand) for attempt in range(1, 9)]
    for attempt, wait in enumerate(waits, start=1):
        exponential = min(16.0, 2.0 ** (attempt - 1))
        assert exponential / 2 <= wait <= exponential
    assert waits == sorted(waits) and max(waits) <= 16.0


@pytest.mark.parametrize("attempt", [0, 1, 2, 6, 40, 1100])
def test_an_http_try_waits_the_one_backoff_of_syncq(attempt: int) -> None:
    """One backoff function (issue 12): an HTTP try waits what a job's retry would. The
    client's own copy of the formula had drifted: its exponent unbounded, a client allowed
    many tries raised OverflowError past the 1025th instead of waiting the cap."""
    policy = RetryPolicy(attempts=2000, base_s=0.5, cap_s=30.0, timeout_s=1.0)
    for rand in (0.0, 0.4, 0.999):
        assert backoff_s(policy, attempt, rand=rand) == backoff_delay(
            attempt, base_s=0.5, cap_s=30.0, rand=rand
        )


def test_retry_after_is_waited_for_but_capped() -> None:
    policy = RetryPolicy(attempts=3, base_s=0.1, cap_s=30.0, timeout_s=1.0)
    assert backoff_s(policy, 1, rand=0.0, retry_after=7.0) == 7.0
    assert backoff_s(policy, 1, rand=0.0, retry_after=3600.0) == 30.0
    assert backoff_s(policy, 1, rand=0.0, retry_after=0.0) == 0.05  # the backoff still holds


def test_retry_after_header_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("120", now) == 120.0
    assert retry_after_s(" 3 ", now) == 3.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after_s("Thu, 01 May 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_s(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0.0
    for unreadable in (None, "", "soon", "-5", "1.5e3", "Thu, 99 Foo 2025", "\u00b2"):
        assert retry_after_s(unreadable, now) is None


def test_only_transient_failures_are_retried_and_creates_only_when_repeatable() -> None:
    answered_503 = UpstreamUnavailable("x", upstream_status=503, repeatable=False)
    refused_429 = UpstreamUnavailable("x", upstream_status=429, repeatable=True)
    assert should_retry(answered_503, idempotent=True)
    assert not should_retry(answered_503, idempotent=False)
    assert should_retry(refused_429, idempotent=False)
    assert not should_retry(UpstreamError("x"), idempotent=True)
    assert not should_retry(ValueError("x"), idempotent=True)


def test_pooled_clients_are_made_once_per_base_url_and_timeouts() -> None:
    base = "http://pool.invalid"
    assert pooled(base, FAST) is pooled(base, FAST)
    assert pooled(base, FAST) is not pooled(base, RetryPolicy(3, 0.001, 0.01, timeout_s=6.0))
    assert pooled(base, FAST).timeout == httpx.Timeout(5.0, connect=5.0)


# --- retry decisions through a mock transport ------------------------------------------------


@dataclass
class Scripted:
    """Answers in order (the last one repeats); every request is kept."""

    answers: list[httpx.Response | Exception]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def mock_client(script: Scripted, policy: RetryPolicy = FAST) -> HttpClient:
    transport = httpx.MockTransport(script)
    return HttpClient(
        "http://upstream.test", policy, name="Example", details={"provider": "ex"},
        secrets=(SECRET,), transport=transport,
    )  # fmt: skip


def test_503_then_200_returns_the_200() -> None:
    script = Scripted([httpx.Response(503), httpx.Response(200, json={"ok": True})])
    response = mock_client(script).request("GET", "/things")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert len(script.requests) == 2


def test_other_answers_are_returned_at_once() -> None:
    script = Scripted([httpx.Response(404, text="nope")])
    response = mock_client(script).request("GET", "/things")
    assert response.status_code == 404 and response.text == "nope"
    assert len(script.requests) == 1


def test_attempts_exhausted_raise_the_mapped_error() -> None:
    script = Scripted([httpx.Response(502), httpx.Response(500), httpx.Response(503)])
    with pytest.raises(UpstreamUnavailable) as caught:
        mock_client(script).request("GET", "/things", params={"token": SECRET})
    error = caught.value
    assert len(script.requests) == FAST.attempts
    assert error.message == "Example kept answering HTTP 503."
    assert error.retryable and error.upstream_status == 503 and error.status == 502
    assert error.details == {"provider": "ex", "status": 503}
    assert error.envelope()["error"]["code"] == "upstream_error"


def test_a_single_attempt_says_answered() -> None:
    script = Scripted([httpx.Response(500)])
    policy = RetryPolicy(attempts=1, base_s=0.001, cap_s=0.01, timeout_s=5.0)
    with pytest.raises(UpstreamUnavailable, match=r"^Example answered HTTP 500\.$"):
        mock_client(script, policy).request("GET", "/things")
    assert len(script.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_create_is_not_retried_after_a_5xx(status: int) -> None:
    script = Scripted([httpx.Response(status), httpx.Response(200)])
    with pytest.raises(UpstreamUnavailable) as caught:
        mock_client(script).request("POST", "/create", json={"a": 1}, idempotent=False)
    assert len(script.requests) == 1
    assert caught.value.message == f"Example answered HTTP {status}."
    assert caught.value.retryable and caught.value.upstream_status == status


def test_a_create_refused_with_429_is_retried() -> None:
    script = Scripted([httpx.Response(429), httpx.Response(201)])
    response = mock_client(script).request("POST", "/create", json={"a": 1}, idempotent=False)
    assert response.status_code == 201 and len(script.requests) == 2


def test_idempotence_defaults_from_the_method() -> None:
    post = Scripted([httpx.Response(503), httpx.Response(200)])
    with pytest.raises(UpstreamUnavailable):
        mock_client(post).request("POST", "/create")
    assert len(post.requests) == 1
    upsert = Scripted([httpx.Response(503), httpx.Response(200)])
    assert mock_client(upsert).request("POST", "/upsert", idempotent=True).status_code == 200
    for method in ("GET", "PUT", "DELETE"):
        script = Scripted([httpx.Response(503), httpx.Response(200)])
        assert mock_client(script).request(method, "/x").status_code == 200


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")],
)
def test_a_create_is_retried_when_nothing_was_sent(failure: Exception) -> None:
    script = Scripted([failure, httpx.Response(201)])
    response = mock_client(script).request("POST", "/create", json={}, idempotent=False)
    assert response.status_code == 201 and len(script.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.ReadError("reset")],
)
def test_a_create_is_not_retried_once_it_may_have_arrived(failure: Exception) -> None:
    script = Scripted([failure, httpx.Response(201)])
    with pytest.raises(UpstreamUnavailable) as caught:
        mock_client(script).request("POST", "/create", json={}, idempotent=False)
    assert len(script.requests) == 1
    assert caught.value.message == f"Example could not be reached ({type(failure).__name__})."
    assert caught.value.upstream_status is None and caught.value.__cause__ is failure


def test_transport_errors_are_retried_for_idempotent_calls_then_mapped() -> None:
    failure = httpx.ReadTimeout("timed out")
    script = Scripted([failure])
    with pytest.raises(UpstreamUnavailable) as caught:
        mock_client(script).request("GET", "/things")
    assert len(script.requests) == FAST.attempts
    assert caught.value.message == "Example could not be reached (ReadTimeout)."
    assert caught.value.details == {"provider": "ex", "status": None}
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize(
    "failure",
    [httpx.UnsupportedProtocol("ftp"), httpx.TooManyRedirects("loop"), httpx.DecodingError("gz")],
)
def test_other_httpx_errors_are_not_retryable(failure: Exception) -> None:
    script = Scripted([failure])
    with pytest.raises(UpstreamError) as caught:
        mock_client(script).request("GET", "/things")
    assert len(script.requests) == 1
    assert not isinstance(caught.value, UpstreamUnavailable) and not caught.value.retryable
    assert caught.value.message == f"Example could not be asked ({type(failure).__name__})."
    assert caught.value.__cause__ is failure


def test_messages_never_carry_the_url_or_a_secret() -> None:
    script = Scripted([httpx.ConnectError(f"refused http://upstream.test/?token={SECRET}")])
    client = HttpClient(
        "http://upstream.test", FAST, name=f"Example {SECRET}", secrets=(SECRET,),
        transport=httpx.MockTransport(script),
    )  # fmt: skip
    with pytest.raises(UpstreamUnavailable) as caught:
        client.request("GET", "/things", params={"token": SECRET})
    text = f"{caught.value.message} {caught.value.details}"
    assert SECRET not in text and "upstream.test" not in text and "token" not in text


# --- against a real local server ---------------------------------------------------------------


@dataclass
class Canned:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    hang_s: float = 0.0


class LocalServer:
    """A real HTTP server on a free local port answering a script (the last reply repeats)."""

    def __init__(self) -> None:
        self.replies: list[Canned] = [Canned()]
        self.seen: list[tuple[str, float]] = []  # (method, monotonic arrival)
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def next_reply(self, method: str) -> Canned:
        with self._lock:
            self.seen.append((method, time.monotonic()))
            return self.replies[min(len(self.seen), len(self.replies)) - 1]

    def stop(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                reply = server.next_reply(self.command)
                if reply.hang_s and server.release.wait(reply.hang_s):
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up waiting
                    pass

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.stop()


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting the tries that reached it (for a port nobody listens on)."""

    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.tries += 1
        return super().handle_request(request)


@pytest.fixture
def real_client() -> Iterator[Callable[..., HttpClient]]:
    made: list[HttpClient] = []

    def make(url: str, policy: RetryPolicy = FAST, transport: Any = None) -> HttpClient:
        client = HttpClient(url, policy, name="Local", transport=transport or httpx.HTTPTransport())
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_real_503_then_200(server: LocalServer, real_client: Callable[..., HttpClient]) -> None:
    server.replies = [Canned(503), Canned(200, body=b'{"n": 1}')]
    assert real_client(server.url).request("GET", "/x").json() == {"n": 1}
    assert [method for method, _ in server.seen] == ["GET", "GET"]


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_real_429_waits_for_retry_after(
    server: LocalServer, real_client: Callable[..., HttpClient], form: str
) -> None:
    if form == "seconds":
        retry_after = "1"
    else:  # an HTTP-date has whole seconds: 2 s ahead is at least 1 s ahead
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.replies = [Canned(429, headers={"Retry-After": retry_after}), Canned(200)]
    policy = RetryPolicy(attempts=2, base_s=0.001, cap_s=10.0, timeout_s=5.0)
    assert real_client(server.url, policy).request("GET", "/x").status_code == 200
    (_, first), (_, second) = server.seen
    assert 0.8 <= second - first < 10.0


def test_real_retry_after_beyond_the_cap_is_capped(
    server: LocalServer, real_client: Callable[..., HttpClient]
) -> None:
    server.replies = [Canned(429, headers={"Retry-After": "3600"}), Canned(200)]
    policy = RetryPolicy(attempts=2, base_s=0.001, cap_s=0.2, timeout_s=5.0)
    started = time.monotonic()
    assert real_client(server.url, policy).request("GET", "/x").status_code == 200
    assert time.monotonic() - started < 10.0


def test_real_read_timeout_retries_a_read_but_not_a_create(
    server: LocalServer, real_client: Callable[..., HttpClient]
) -> None:
    server.replies = [Canned(200, hang_s=5.0)]
    policy = RetryPolicy(attempts=3, base_s=0.001, cap_s=0.01, timeout_s=0.3)
    client = real_client(server.url, policy)
    with pytest.raises(UpstreamUnavailable, match=r"could not be reached \(ReadTimeout\)"):
        client.request("POST", "/create", json={"a": 1}, idempotent=False)
    assert [method for method, _ in server.seen] == ["POST"]
    with pytest.raises(UpstreamUnavailable, match=r"could not be reached \(ReadTimeout\)"):
        client.request("GET", "/read")
    assert [method for method, _ in server.seen] == ["POST", "GET", "GET", "GET"]


def test_real_5xx_is_not_retried_for_a_create(
    server: LocalServer, real_client: Callable[..., HttpClient]
) -> None:
    server.replies = [Canned(502), Canned(200)]
    with pytest.raises(UpstreamUnavailable, match=r"^Local answered HTTP 502\.$"):
        real_client(server.url).request("POST", "/create", json={}, idempotent=False)
    assert len(server.seen) == 1


def test_real_refused_connection_is_retried_even_for_a_create(
    real_client: Callable[..., HttpClient],
) -> None:
    port = free_port()  # nobody listens there
    transport = CountingTransport()
    client = real_client(f"http://127.0.0.1:{port}", FAST, transport)
    with pytest.raises(UpstreamUnavailable) as caught:
        client.request("POST", "/create", json={}, idempotent=False)
    assert transport.tries == FAST.attempts
    assert caught.value.message == "Local could not be reached (ConnectError)."
    assert caught.value.repeatable and caught.value.retryable
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_a_retry_is_logged_as_a_warning(logs: Callable[[], str]) -> None:
    answers = iter([503, 503, 200])
    client = HttpClient(
        "http://upstream.test",
        FAST,
        name="Example",
        transport=httpx.MockTransport(lambda request: httpx.Response(next(answers))),
    )
    assert client.request("GET", "/x").status_code == 200
    retries = [line for line in logs().splitlines() if "upstream request retry" in line]
    assert len(retries) == 2 and all('"severity": "WARNING"' in line for line in retries)


def test_a_cookie_one_tenants_answer_sets_never_goes_out_with_the_next_request() -> None:
    """One pooled client per provider URL serves every tenant: it must keep no session."""
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, json=[], headers={"Set-Cookie": "session=acme-session"})

    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=1.0)
    client = HttpClient(
        "http://provider.test", policy, name="P", transport=httpx.MockTransport(handler)
    )
    client.request("GET", "/companies", headers={"Authorization": "Bearer acme-token"})
    client.request("GET", "/companies", headers={"Authorization": "Bearer globex-token"})
    assert sent == [None, None]


def test_a_503_with_a_retry_after_of_a_non_ascii_digit_is_a_503() -> None:
    """Latin-1 "²" is a digit to str.isdigit: the try raised ValueError (a 500 upstream of it)."""
    answers = iter([httpx.Response(503, headers=[(b"Retry-After", b"\xb2")])])
    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=1.0)
    client = HttpClient(
        "http://provider.test", policy, name="P",
        transport=httpx.MockTransport(lambda _: next(answers)),
    )  # fmt: skip
    with pytest.raises(UpstreamUnavailable):
        client.request("GET", "/x")


class _Trickle:
    """A remote that answers 200 at once, then sends its body a little at a time, forever."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
            while not self._stop.wait(0.05):
                try:
                    conn.sendall(b"10\r\n" + b" " * 16 + b"\r\n")
                except OSError:
                    return

    def stop(self) -> None:
        self._stop.set()
        self._server.close()


def test_a_remote_trickling_its_body_is_cut_off_at_the_try_s_timeout() -> None:
    """Each read arrived within the timeout, so the try lasted as long as the remote sent."""
    trickle = _Trickle()
    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=0.5)
    client = HttpClient(trickle.url, policy, name="Remote", transport=httpx.HTTPTransport())
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            client.request("GET", "/hook")
        except UpstreamError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(10)
    hung = worker.is_alive()
    trickle.stop()
    worker.join(5)
    client.close()
    assert not hung
    assert [str(e) for e in outcome] == ["Remote answered too slowly."]
    assert isinstance(outcome[0], UpstreamUnavailable) and not outcome[0].repeatable


def test_a_body_over_the_limit_is_refused_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import http

    monkeypatch.setattr(http, "MAX_BODY_BYTES", 1000)
    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=1.0)
    big = HttpClient(
        "http://provider.test", policy, name="P",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=b"x" * 1001)),
    )  # fmt: skip
    with pytest.raises(UpstreamError, match="answered a body over 1000 bytes") as refused:
        big.request("GET", "/x")
    assert not refused.value.retryable


def test_an_answer_read_here_keeps_its_headers_and_its_decoded_body() -> None:
    body = json.dumps([{"id": i} for i in range(100)]).encode()
    zipped = gzip.compress(body)
    answer = httpx.Response(
        206, content=zipped,
        headers=[(b"Content-Encoding", b"gzip"), (b"Content-Range", b"0-99/250"),
                 (b"X-Other", "é".encode("latin-1"))],
    )  # fmt: skip
    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=1.0)
    client = HttpClient(
        "http://provider.test", policy, name="P", transport=httpx.MockTransport(lambda _: answer)
    )
    got = client.request("GET", "/x")
    assert (got.status_code, got.json()) == (206, [{"id": i} for i in range(100)])
    assert got.headers["Content-Range"] == "0-99/250" and got.headers["X-Other"] == "é"
    assert got.headers["Content-Length"] == str(len(body)) and "content-encoding" not in got.headers


def test_an_answer_dropped_frees_its_request_and_the_body_sent_without_a_collection() -> None:
    """The streamed answer read for the bounded body held the request (a whole batch sent)
    in a reference cycle until the next full garbage collection."""
    import gc
    import weakref

    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=5.0)
    client = HttpClient(
        "http://remote.test", policy, name="R",
        transport=httpx.MockTransport(lambda _: httpx.Response(201, json={"ok": 1})),
    )  # fmt: skip
    gc.collect()
    gc.disable()
    try:
        answer = client.request("POST", "/leads", content=b"x" * (1 << 20))
        sent = weakref.ref(answer.request)
        del answer
        assert sent() is None
    finally:
        gc.enable()
        client.close()


def test_a_stacked_gzip_answer_is_refused_before_it_is_inflated_whole() -> None:
    """A few KB of gzip in gzip inflated to GBs inside one read, before the 64 MiB limit was
    checked: a tenant's webhook could take the shared worker's memory (4 GB measured)."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    inner = b"".join([*(packer.compress(b"\0" * (1 << 20)) for _ in range(512)), packer.flush()])
    bomb = gzip.compress(inner)  # 512 MiB once inflated twice
    assert len(bomb) < 4096
    inflated: list[int] = []

    def answer(_: httpx.Request) -> httpx.Response:  # streamed, as from the network
        inflated.append(1)
        return httpx.Response(200, content=iter([bomb]), headers={"Content-Encoding": "gzip, gzip"})

    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=30.0)
    client = HttpClient(
        "http://hook.test", policy, name="the alert webhook", transport=httpx.MockTransport(answer)
    )
    with pytest.raises(UpstreamError, match="answered a body in stacked encodings"):
        client.request("POST", "/hook", content=b"{}")
    assert inflated == [1]


@pytest.mark.parametrize(
    "coding", ["none, gzip", "x-custom, gzip", "x-gzip, gzip", "br, gzip", "zstd, gzip"]
)
def test_a_coding_httpx_does_not_inflate_is_no_layer(coding: str) -> None:
    """Only a second layer httpx would inflate is refused (found by the diff review)."""
    body = gzip.compress(b'{"ok": true}')

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([body]), headers={"Content-Encoding": coding})

    policy = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0, timeout_s=30.0)
    client = HttpClient(
        "http://hook.test", policy, name="hook", transport=httpx.MockTransport(answer)
    )
    assert client.request("GET", "/").json() == {"ok": True}


def test_the_codings_counted_as_layers_are_what_this_httpx_inflates() -> None:
    """httpx's decoder table is private: if it moves or changes, this says so."""
    from shared import http

    assert {"gzip", "deflate"} <= http._INFLATED and "identity" not in http._INFLATED
