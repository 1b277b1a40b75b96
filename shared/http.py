"""One HTTP client for every upstream: pooled httpx clients, explicit timeouts, tenacity retries.

    policy = RetryPolicy(attempts=4, base_s=1.0, cap_s=30.0, timeout_s=30.0)
    client = HttpClient("https://api.example.com", policy, name="Example")
    response = client.request("GET", "/things", params={"page": 1})

A try that gets HTTP 429 or 5xx, times out or cannot connect raises `UpstreamUnavailable`;
the loop waits (exponential backoff with jitter, at least the Retry-After asked for, never
above the cap) and tries again until the policy's attempts run out, then the caller gets
that error. A request that is not idempotent (a create: a POST that may have arrived) is
tried again only when repeating it cannot act twice: the connection was never made, or
the upstream refused it with 429. Every other answer is returned for the caller to read.
Other httpx failures become a non-retryable `UpstreamError`. Messages name the upstream and
the status or the error type only, never a URL, header, body or credential.

Which failures to retry and how long to wait are pure functions (`should_retry`,
`backoff_s`, `retry_after_s`); tenacity is the mechanism.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any, Protocol

import httpx
import tenacity
from httpx._decoders import SUPPORTED_DECODERS

from shared import log
from shared.backoff import backoff_delay, retrying
from shared.errors import UpstreamError, UpstreamUnavailable
from shared.scrub import scrub_text

__all__ = [
    "IDEMPOTENT_METHODS",
    "HttpClient",
    "RetryPolicy",
    "backoff_s",
    "pooled",
    "retry_after_s",
    "should_retry",
]

_logger = log.get_logger("http")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# No connection was made, so the upstream cannot have seen the request.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Our own request or configuration is wrong: trying again gives the same answer.
_OUR_FAULT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# The most of an answer's body a try reads (decoded): no page, batch answer or webhook
# reply comes near it; a remote sending more is refused, not buffered whole.
MAX_BODY_BYTES = 64 * 1024 * 1024
# The codings this httpx inflates (brotli and zstd only when their packages are installed;
# private to httpx: tests/unit/test_http_client.py pins what it holds).
_INFLATED = frozenset(SUPPORTED_DECODERS) - {"identity"}
# Headers an answer loses once its body is read and decoded here.
_BODY_FRAMING = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class Paced(Protocol):
    """A request rate to keep under (`shared.providers.pacing.Pacer`): `wait()` before a
    try, `sent()` once it is answered or failed."""

    def wait(self) -> float: ...

    def sent(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How one caller's requests are timed out and retried."""

    attempts: int  # tries in all, the first included
    base_s: float  # the first wait; each later one doubles, up to cap_s
    cap_s: float  # the longest wait between tries (a Retry-After is capped here too)
    timeout_s: float  # read, write and pool timeout of each try, and the most its body takes
    connect_s: float = 10.0  # connect timeout (never above timeout_s)

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, self.connect_s))


def backoff_s(
    policy: RetryPolicy, attempt: int, *, rand: float, retry_after: float | None = None
) -> float:
    """The wait after failed try `attempt` (1-based), `rand` in [0, 1).

    Exponential with jitter: in [e/2, e] where e = min(cap, base * 2**(attempt-1)); at
    least what the upstream asked for in Retry-After, but never above the cap.
    """
    wait = backoff_delay(attempt, base_s=policy.base_s, cap_s=policy.cap_s, rand=rand)
    if retry_after is not None:
        wait = max(wait, min(retry_after, policy.cap_s))
    return max(wait, 0.0)


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP-date); None if unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to isdigit, not to float
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; obsolete forms may parse as naive
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def should_retry(error: BaseException, *, idempotent: bool) -> bool:
    """Whether a failed try may be made again: transient, and safe to repeat."""
    return isinstance(error, UpstreamUnavailable) and (idempotent or error.repeatable)


_pool: dict[tuple[str, float, float], httpx.Client] = {}
_pool_lock = threading.Lock()


def pooled(base_url: str, policy: RetryPolicy) -> httpx.Client:
    """The process-wide httpx client for a base URL and timeouts, created on first use."""
    key = (base_url, policy.timeout_s, policy.connect_s)
    with _pool_lock:
        client = _pool.get(key)
        if client is None:
            client = _pool[key] = _new_client(base_url, policy, None)
        return client


def _new_client(
    base_url: str, policy: RetryPolicy, transport: httpx.BaseTransport | None
) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        timeout=policy.timeout,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        transport=transport,
        cookies=CookieJar(policy=_NoCookies()),  # one client serves every tenant: keep none
    )


class _NoCookies(DefaultCookiePolicy):
    """Refuses every cookie an answer sets: a session one tenant's call opened must never go
    out with the next tenant's call to the same provider."""

    def set_ok(self, cookie: Cookie, request: urllib.request.Request) -> bool:
        return False


class HttpClient:
    """Requests to one upstream, retried by its policy; errors name it as `name`.

    `details` go into every error's details (beside the status); `secrets` are scrubbed
    from messages. Without a `transport` the process-wide pooled client for the base URL is
    used; with one (tests), a client of its own, which `close()` closes.
    """

    def __init__(
        self,
        base_url: str,
        policy: RetryPolicy,
        *,
        name: str,
        details: Mapping[str, Any] | None = None,
        secrets: tuple[str, ...] = (),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.name = name
        self._details = dict(details or {})
        self.secrets = secrets  # scrubbed from its errors (and by callers quoting an answer)
        self._own = transport is not None
        self._client = (
            _new_client(base_url, policy, transport) if self._own else pooled(base_url, policy)
        )

    def close(self) -> None:
        """Close a client made for an injected transport (the pooled one lives on)."""
        if self._own:
            self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        params: Mapping[str, Any] | str | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        final: Callable[[httpx.Response], bool] | None = None,
        extensions: Mapping[str, Any] | None = None,
        pacer: Paced | None = None,
    ) -> httpx.Response:
        """The first answer that is not 429/5xx (nor one `final` says is the answer, such as
        a 5xx the same request would only meet again); `idempotent` defaults from the method.
        With a `pacer`, every try waits its turn and is counted: the upstream's rate limit
        counts the tries it failed too.

        Raises UpstreamUnavailable when tries run out (or may not be repeated), and a
        non-retryable UpstreamError when httpx cannot make the request at all.
        """
        safe = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        loop = retrying(
            lambda exc: should_retry(exc, idempotent=safe),
            attempts=self.policy.attempts,
            wait=self._wait,
            before_sleep=self._log_retry,
        )
        kwargs: dict[str, Any] = {"params": params, "headers": headers, "extensions": extensions}
        kwargs.update({"json": json} if content is None else {"content": content})
        return loop(self._paced, pacer, method, url, safe, kwargs, final)

    def _paced(self, pacer: Paced | None, *args: Any) -> httpx.Response:
        if pacer is None:
            return self._try(*args)
        pacer.wait()
        try:
            return self._try(*args)
        finally:
            pacer.sent()

    def _try(
        self,
        method: str,
        url: str,
        idempotent: bool,
        kwargs: dict[str, Any],
        final: Callable[[httpx.Response], bool] | None = None,
    ) -> httpx.Response:
        try:
            response = self._bounded(self._client.build_request(method, url, **kwargs))
        except _OUR_FAULT as exc:
            raise self._error(f"could not be asked ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:  # timeouts, refused or dropped connections
            repeatable = isinstance(exc, _NOTHING_SENT)
            raise self._unavailable(
                f"could not be reached ({type(exc).__name__})", None, repeatable=repeatable
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._error(f"could not be asked ({type(exc).__name__})") from exc
        _release(response)
        status = response.status_code
        if (status != 429 and status < 500) or (final is not None and final(response)):
            return response
        repeatable = status == 429  # refused, not acted on
        retried = (idempotent or repeatable) and self.policy.attempts > 1
        raise self._unavailable(
            f"{'kept answering' if retried else 'answered'} HTTP {status}",
            status,
            repeatable=repeatable,
            retry_after=retry_after_s(response.headers.get("Retry-After"), datetime.now(UTC)),
        )

    def _bounded(self, request: httpx.Request) -> httpx.Response:
        """The answer, its body read within `timeout_s` of its headers and `MAX_BODY_BYTES`:
        httpx's timeouts bound each read, so a remote trickling bytes held a try (the alert
        drain, the sweep) for as long as it kept sending."""
        streamed = self._client.send(request, stream=True)
        try:
            codings = streamed.headers.get("content-encoding", "").split(",")
            if sum(c.strip().lower() in _INFLATED for c in codings) > 1:
                # httpx inflates each network read whole, every layer: a few KB of gzip in
                # gzip is GBs before any limit could be checked (one layer: ~1000x a read).
                # No API answers so; a coding httpx leaves alone is no layer.
                raise self._error("answered a body in stacked encodings")
            deadline = time.monotonic() + self.policy.timeout_s
            pieces: list[bytes] = []
            size = 0
            for piece in streamed.iter_bytes():
                pieces.append(piece)
                size += len(piece)
                if size > MAX_BODY_BYTES:
                    raise self._error(f"answered a body over {MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise self._unavailable("answered too slowly", None, repeatable=False)
        finally:
            streamed.close()
            _release(streamed)  # its stream holds it, and the request's body, in a cycle
        headers = [(k, v) for k, v in streamed.headers.raw if k.lower() not in _BODY_FRAMING]
        return httpx.Response(
            streamed.status_code,
            headers=headers,
            content=b"".join(pieces),
            request=request,
            extensions=streamed.extensions,
        )

    def _unavailable(
        self, what: str, status: int | None, *, repeatable: bool, retry_after: float | None = None
    ) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            self._message(what),
            upstream_status=status,
            retry_after_s=retry_after,
            repeatable=repeatable,
            details={**self._details, "status": status},
        )

    def _error(self, what: str) -> UpstreamError:
        details = {**self._details, "status": None}
        return UpstreamError(self._message(what), details=details, retryable=False)

    def _message(self, what: str) -> str:
        return scrub_text(f"{self.name} {what}.", self.secrets)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = error.retry_after_s if isinstance(error, UpstreamUnavailable) else None
        return backoff_s(self.policy, state.attempt_number, rand=random.random(), retry_after=asked)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        status = error.upstream_status if isinstance(error, UpstreamUnavailable) else None
        wait = state.next_action.sleep if state.next_action else None
        fields = log.fields(
            upstream=self.name, attempt=state.attempt_number, status=status, wait_s=wait
        )
        _logger.warning("upstream request retry", extra=fields)


def _release(response: httpx.Response) -> None:
    """Break httpx's Response <-> stream reference cycle once the body is read.

    Otherwise the response, its request and the request body (a whole batch) live until
    the next full garbage collection, and memory grows with the size of what is sent.
    """
    response.stream = httpx.ByteStream(b"")
