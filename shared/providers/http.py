"""HTTP plumbing shared by providers: one client per base URL, retries with tenacity.

429, 5xx, timeouts and connection errors are retried with exponential backoff and jitter;
when attempts run out they become a retryable `UpstreamError`, which the queue turns
into a scheduled retry of the whole job. Messages name the provider and the status only,
never the URL's query, headers or credentials.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx
import tenacity

from shared import log
from shared.errors import UpstreamError
from shared.settings import Settings

_logger = log.get_logger("providers.http")
_clients: dict[tuple[str, float], httpx.Client] = {}
_lock = threading.Lock()


class _Transient(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def client_for(base_url: str, timeout_s: float) -> httpx.Client:
    """A pooled client per base URL, created once per process."""
    key = (base_url, timeout_s)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = httpx.Client(
                base_url=base_url,
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            )
            _clients[key] = client
        return client


def request(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    provider: str,
    settings: Settings,
    params: Mapping[str, Any] | str | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
) -> httpx.Response:
    """One logical request, retried on 429/5xx/timeouts; other statuses are returned."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(settings.provider_retry_attempts),
        wait=tenacity.wait_exponential_jitter(
            multiplier=settings.provider_retry_base_s,
            jitter=settings.provider_retry_base_s,
            max=settings.provider_retry_cap_s,
        ),
        retry=tenacity.retry_if_exception_type((_Transient, httpx.TransportError)),
        before_sleep=lambda state: _logger.info(
            "provider request retry",
            extra=log.fields(provider=provider, attempt=state.attempt_number),
        ),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                response = client.request(method, path, params=params, headers=headers, json=json)
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Transient(response.status_code)
                return response
    except _Transient as exc:
        raise UpstreamError(
            f"{provider} kept answering HTTP {exc.status}.",
            details={"provider": provider, "status": exc.status},
        ) from exc
    except httpx.TransportError as exc:
        raise UpstreamError(
            f"{provider} could not be reached ({type(exc).__name__}).",
            details={"provider": provider},
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def raise_for_auth(response: httpx.Response, provider: str) -> None:
    """401/403 mean our credentials are wrong: retrying will not help."""
    if response.status_code in (401, 403):
        raise UpstreamError(
            f"{provider} rejected the credentials (HTTP {response.status_code}).",
            code="credentials_rejected",
            details={"provider": provider, "status": response.status_code},
            retryable=False,
        )
