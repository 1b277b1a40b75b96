"""However malformed the request, the real gateway answers the error envelope with a 4xx.

Raw sockets: what a client library would refuse to send (broken chunked bodies, request
lines and headers http.server cannot parse) is written byte for byte.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from infra.local.gateway import function_names
from tests.support import call, rows, seed_tenant, service_token

pytestmark = [pytest.mark.db, pytest.mark.e2e]


def exchange(base: str, raw: bytes) -> tuple[int, Any]:
    """Send `raw` on a fresh connection (then end our side), and read the one answer."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname or "", url.port or 80), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # a truncated body ends here: the server sees EOF
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        assert response.getheader("Content-Type") == "application/json", body[:200]
        return response.status, json.loads(body)


def chunked_post(base: str, name: str, token: str, chunks: bytes) -> bytes:
    path = urlsplit(base).path
    return (
        f"POST {path}/{name} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunks


def assert_envelope(status: int, body: Any) -> None:
    assert 400 <= status < 500, (status, body)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body


def test_a_well_formed_chunked_body_is_read(gateway: str, database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    first, second = f'{{"tenant_id": "{tenant.id}", '.encode(), b'"provider_slug": "acessorias"}'
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(first), first, len(second), second)
    status, body = exchange(
        gateway, chunked_post(gateway, "run-integration", tenant.admin_token, chunks)
    )
    assert (status, body["status"]) == (202, "pending")
    assert rows(database_url, "SELECT id::text FROM integration_jobs") == [{"id": body["job_id"]}]


MALFORMED = "The request body is malformed or incomplete."
BROKEN_CHUNKS = {
    "size not hex": b"zz\r\n{}\r\n0\r\n\r\n",
    "negative size": b"-2\r\n{}\r\n0\r\n\r\n",
    "size far beyond the data": b"ffffffffffffffffffff\r\n{}",
    "size beyond the data": b"ff\r\n{}",
    "truncated inside a chunk": b'10\r\n{"tenant',
    "no terminating newline": b"2\r\n{}XX0\r\n\r\n",
    "no final chunk": b"2\r\n{}\r\n",
    "nothing after the headers": b"",
    "size line never ends": b"2" * 300,
}


def test_a_broken_chunked_body_is_a_400(gateway: str, database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    answers = {
        case: exchange(
            gateway, chunked_post(gateway, "run-integration", tenant.admin_token, chunks)
        )
        for case, chunks in BROKEN_CHUNKS.items()
    }
    refused = (400, {"error": {"code": "malformed_body", "message": MALFORMED}})
    assert answers == dict.fromkeys(BROKEN_CHUNKS, refused)
    assert rows(database_url, "SELECT id FROM integration_jobs") == []


def test_every_function_answers_a_broken_chunked_body_with_a_4xx(
    gateway: str, database_url: str
) -> None:
    """Whatever the function does before it reads the body (or if it never does: a GET, a
    wrong route), the broken body is answered with the envelope."""
    for name in function_names():
        for case in ("size not hex", "truncated inside a chunk", "size far beyond the data"):
            raw = chunked_post(gateway, name, service_token(), BROKEN_CHUNKS[case])
            assert_envelope(*exchange(gateway, raw))


def test_a_body_shorter_than_its_content_length_is_a_400(gateway: str, database_url: str) -> None:
    path = urlsplit(gateway).path
    raw = (
        f"POST {path}/process-integration-job HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {service_token()}\r\nContent-Type: application/json\r\n"
        'Content-Length: 100\r\n\r\n{"job_id":'
    ).encode()
    status, body = exchange(gateway, raw)
    assert (status, body["error"]["code"]) == (400, "malformed_body")


def test_a_whole_body_short_of_its_content_length_is_a_400_and_changes_nothing(
    gateway: str, database_url: str
) -> None:
    """The JSON arrives whole, then the connection ends short of the announced length: the
    server's first read answered what it had, the action ran (a job, its task sent), and
    only the read after it failed, turning the 202 into a 400 for a job that existed."""
    tenant = seed_tenant(database_url, "acme")
    body = json.dumps({"tenant_id": str(tenant.id), "provider_slug": "acessorias"})
    raw = (
        f"POST {urlsplit(gateway).path}/run-integration HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {tenant.admin_token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 50}\r\n\r\n{body}"
    ).encode()
    status, answer = exchange(gateway, raw)
    assert (status, answer["error"]["code"]) == (400, "malformed_body")
    assert rows(database_url, "SELECT id FROM integration_jobs") == []


UNPARSABLE = {
    "no method or path": (b"GARBAGE\r\n\r\n", 400),
    "bad version": (b"GET /functions/v1/run-integration HTTP/1.x\r\n\r\n", 400),
    "HTTP/2 on a 1.1 server": (b"GET /functions/v1/run-integration HTTP/2.0\r\n\r\n", 400),
    "request line too long": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    "header line too long": (
        b"GET /functions/v1/integration-job-events HTTP/1.1\r\nHost: x\r\n"
        b"Last-Event-ID: " + b"9" * 70_000 + b"\r\n\r\n",
        431,
    ),
    "a header line deployed gunicorn refuses": (
        b"GET /functions/v1/list-integrations HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + b"x" * 9000 + b"\r\n\r\n",
        431,
    ),
    "a header line of 8191 bytes, CRLF counted (gunicorn's count)": (
        b"GET /functions/v1/list-integrations HTTP/1.1\r\nHost: x\r\n"
        b"X-Long: " + b"x" * (8191 - len("X-Long: \r\n")) + b"\r\n\r\n",
        431,
    ),
    "a header line of 8191 bytes padded with spaces after its colon": (
        b"GET /functions/v1/list-integrations HTTP/1.1\r\nHost: x\r\n"
        b"X-Long:" + b" " * 20 + b"x" * (8191 - len("X-Long:\r\n") - 20) + b"\r\n\r\n",
        431,
    ),
    # a folded header (obs-fold): gunicorn refuses any, as deployed
    "a folded header of 10000 bytes in two lines": (
        b"GET /functions/v1/list-integrations HTTP/1.1\r\nHost: x\r\n"
        b"X-Fold: " + b"x" * 5000 + b"\r\n " + b"y" * 5000 + b"\r\n\r\n",
        400,
    ),
    "a short folded header": (
        b"GET /functions/v1/list-integrations HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n\tb\r\n\r\n",
        400,
    ),
    "a continuation line first": (
        b"GET /functions/v1/list-integrations HTTP/1.1\r\n X-Lead: y\r\nHost: x\r\n\r\n",
        400,
    ),
    "too many headers": (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
        431,
    ),
}


def test_a_header_line_of_8190_bytes_without_a_space_is_taken(
    gateway: str, database_url: str
) -> None:
    """gunicorn counts the line as sent: `Name:value` of 8190 bytes with its CRLF passes."""
    line = b"X-Long:" + b"x" * (8190 - len("X-Long:\r\n")) + b"\r\n"
    head = b"GET /functions/v1/list-integrations HTTP/1.1\r\nHost: x\r\n"
    status, body = exchange(gateway, head + line + b"\r\n")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_a_request_the_server_cannot_parse_gets_the_envelope(
    gateway: str, database_url: str
) -> None:
    answers = {case: exchange(gateway, raw) for case, (raw, _) in UNPARSABLE.items()}
    assert {case: status for case, (status, _) in answers.items()} == {
        case: expected for case, (_, expected) in UNPARSABLE.items()
    }
    for status, body in answers.values():
        assert_envelope(status, body)


def _events(base: str, token: str, tenant_id: str, last_event_id: str) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        return client.get(
            f"{base}/integration-job-events",
            params={"tenant_id": tenant_id, "max_seconds": "0.3"},
            headers={"Authorization": f"Bearer {token}", "Last-Event-ID": last_event_id},
        )


def _replayed(response: httpx.Response) -> list[str]:
    return [
        json.loads(line[6:])["status"]
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


JOB = "5b0c3a4e-8f0e-4c55-9a57-6d0f5f8a1e01"
LAST_EVENT_IDS = {
    # a time near year 1: the margin reaches before it, so everything is replayed
    "year 1": (f"{JOB}:0001-01-01T00:00:00+00:00", ["canceled"]),
    "year 1, east of UTC": (f"{JOB}:0001-01-01T00:00:30+14:00", ["canceled"]),
    "year 1, west of UTC": (f"{JOB}:0001-01-01T00:00:30-14:00", ["canceled"]),
    # past anything that can have changed: nothing is replayed
    "year 9999": (f"{JOB}:9999-12-31T23:59:59+00:00", []),
    "year 9999, west of UTC (year 10000 in UTC)": (f"{JOB}:9999-12-31T23:59:59-14:00", []),
    "year 9999, east of UTC": (f"{JOB}:9999-12-31T23:59:59.999999+14:00", []),
    "no zone": (f"{JOB}:2024-01-01T00:00:00", []),
    "garbage": ("garbage:garbage", []),
    "huge": (f"{JOB}:" + "9" * 8_000, []),  # near the header line limit (8190, as deployed)
    "huge year": (f"{JOB}:99999-01-01T00:00:00+00:00", []),
    "only a colon": (":", []),
}


def test_any_last_event_id_opens_the_stream(gateway: str, database_url: str) -> None:
    tenant = seed_tenant(database_url, "acme")
    job = call("run-integration", {"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
               token=tenant.admin_token).get_json()["job_id"]  # fmt: skip
    call("cancel-integration-job", {"job_id": job}, token=tenant.admin_token)  # not live now
    answers = {}
    for case, (header, _) in LAST_EVENT_IDS.items():
        response = _events(gateway, tenant.member_token, str(tenant.id), header)
        assert response.headers["Content-Type"].startswith("text/event-stream"), response.text
        answers[case] = (response.status_code, _replayed(response))
    assert answers == {case: (200, replayed) for case, (_, replayed) in LAST_EVENT_IDS.items()}
