"""CORS preflights as a browser judges them: every header supabase-js and an SSE client send."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.gateway import function_names
from tests.support import function_client

ORIGIN = "https://app.example"
# What @supabase/supabase-js puts on its requests (functions.invoke, auth, PostgREST).
SUPABASE_JS_HEADERS = (
    "authorization", "apikey", "content-type", "x-client-info", "x-supabase-api-version",
    "accept-profile", "content-profile", "prefer", "range", "x-region",
)  # fmt: skip
# A fetch-based event-stream client reconnecting (the README's advice).
EVENT_STREAM_HEADERS = ("authorization", "accept", "cache-control", "last-event-id")
PATHS = {"runninghub-queue-manager": "/start", "sync-from-gestao-scouter": "/?tenant=acme"}
GET_FUNCTIONS = {
    "list-integration-jobs",
    "integration-job-events",
    "list-integrations",
    "my-tenants",
    "integrations-dashboard",
}
SAFELISTED_METHODS = {"GET", "HEAD", "POST"}


def preflight(name: str, method: str, headers: str, origin: str = ORIGIN) -> Any:
    return function_client(name).options(
        PATHS.get(name, "/"),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def browser_allows(response: Any, method: str, headers: str, origin: str = ORIGIN) -> bool:
    """The fetch standard's CORS-preflight check (no credentials: bearer tokens only)."""
    if not 200 <= response.status_code < 300:
        return False
    if response.headers.get("Access-Control-Allow-Origin") not in ("*", origin):
        return False
    methods = {
        m.strip() for m in response.headers.get("Access-Control-Allow-Methods", "").split(",")
    }
    if method not in methods | SAFELISTED_METHODS and "*" not in methods:
        return False
    allowed = {
        h.strip().lower()
        for h in response.headers.get("Access-Control-Allow-Headers", "").split(",")
    }
    wanted = {h.strip().lower() for h in headers.split(",") if h.strip()}
    return "*" in allowed or wanted <= allowed


def test_the_event_stream_preflight_allows_last_event_id(configure: Any) -> None:
    wanted = "last-event-id, authorization"
    response = preflight("integration-job-events", "GET", wanted)
    assert response.status_code == 204
    assert browser_allows(response, "GET", wanted)
    every = ", ".join(EVENT_STREAM_HEADERS)
    assert browser_allows(preflight("integration-job-events", "GET", every), "GET", every)


def test_the_credits_create_preflight_allows_the_idempotency_key(configure: Any) -> None:
    """The dashboard's /create sends Idempotency-Key (a retried create makes one job): a
    browser refusing the preflight would never send the create at all."""
    wanted = "authorization, content-type, idempotency-key"
    response = function_client("runninghub-queue-manager").options(
        "/create",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": wanted,
        },
    )
    assert response.status_code == 204
    assert browser_allows(response, "POST", wanted)
    configure(CORS_ALLOWED_ORIGINS=f'["{ORIGIN}"]')  # an allow-list of origins too
    listed = preflight("runninghub-queue-manager", "POST", "Idempotency-Key")
    assert browser_allows(listed, "POST", "Idempotency-Key")


@pytest.mark.parametrize("name", function_names())
def test_every_function_allows_what_supabase_js_sends(configure: Any, name: str) -> None:
    method = "GET" if name in GET_FUNCTIONS else "POST"
    wanted = ", ".join(SUPABASE_JS_HEADERS)
    assert browser_allows(preflight(name, method, wanted), method, wanted)
    # The check is real: a header nobody listed is refused.
    assert not browser_allows(preflight(name, method, "x-unlisted"), method, "x-unlisted")


def test_an_origin_allow_list_still_allows_the_headers(configure: Any) -> None:
    configure(CORS_ALLOWED_ORIGINS=f'["{ORIGIN}"]')
    wanted = "Last-Event-ID, Authorization"  # browsers send them lower-cased; be lenient
    listed = preflight("integration-job-events", "GET", wanted)
    assert listed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert browser_allows(listed, "GET", wanted)
    other = "https://evil.example"
    assert not browser_allows(preflight("integration-job-events", "GET", wanted, other), "GET",
                              wanted, other)  # fmt: skip


def test_cors_answers_are_cached_per_origin(configure: Any) -> None:
    """A preflight is cached by the browser for a while (not repeated before every call),
    and an answer naming one allowed origin varies by Origin, so no cache hands it to a
    page of another origin."""
    configure(CORS_ALLOWED_ORIGINS=f'["{ORIGIN}"]')
    answer = preflight("integration-job-events", "GET", "authorization")
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert int(answer.headers["Access-Control-Max-Age"]) > 0
    assert "origin" in answer.headers.get("Vary", "").lower()
    read = function_client("list-integration-jobs").get("/", headers={"Origin": ORIGIN})
    assert read.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "origin" in read.headers.get("Vary", "").lower()
