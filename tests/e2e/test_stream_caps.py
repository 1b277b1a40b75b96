"""No member can take the service down with event streams.

Each stream used to hold a LISTEN connection of its own: a member who opened a hundred
used up every PostgreSQL connection. Now one connection per process serves every stream,
and streams are capped per user and per tenant (429 beyond), through the real gateway.
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import psycopg
import pytest

from shared.queue.events import STREAM_CAPS
from shared.queue.listener import APPLICATION_NAME
from tests.conftest import Configure
from tests.e2e.conftest import wait_until
from tests.support import TenantFixture, bearer, rows, seed_tenant

pytestmark = [pytest.mark.db, pytest.mark.e2e]


@dataclass
class Opened:
    """One attempt to open a stream: a live stream (200) or a refusal (its envelope)."""

    status: int
    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    body: Any = None

    def next_job(self) -> dict[str, Any]:
        """The next job event's row (pings and other lines skipped)."""
        while line := self.response.readline():
            if line.startswith(b"data: "):
                data: dict[str, Any] = json.loads(line[6:])
                return data
        raise AssertionError("the stream ended before a job event")

    def read_to_end(self) -> bytes:
        """The rest of the stream; a stream cut short by an error gives what came."""
        try:
            return self.response.read()
        except http.client.IncompleteRead as cut:
            return cut.partial

    def close(self) -> None:
        self.response.close()  # the response owns the socket (the server says Connection: close)
        self.conn.close()


def open_stream(base: str, token: str, tenant_id: Any, max_seconds: float = 60) -> Opened:
    """GET integration-job-events on its own connection; a 200 has sent its retry hint."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=20)
    query = urlencode({"tenant_id": str(tenant_id), "max_seconds": str(max_seconds)})
    try:
        conn.request("GET", f"{url.path}/integration-job-events?{query}", headers=bearer(token))
        response = conn.getresponse()
        if response.status != 200:
            opened = Opened(response.status, conn, response, json.loads(response.read()))
            opened.close()
            return opened
        assert response.readline() == b"retry: 3000\n"
        assert response.readline() == b"\n"
    except BaseException:
        conn.close()  # (a response not yet made leaves the socket with the connection)
        raise
    return Opened(200, conn, response)


@contextmanager
def streams() -> Iterator[list[Opened]]:
    """Every stream opened in the block is closed when it ends, however it ends."""
    opened: list[Opened] = []
    try:
        yield opened
    finally:
        for o in opened:
            o.close()


def add_member(database_url: str, tenant: TenantFixture, user_id: Any) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'member')",
            [tenant.id, user_id],
        )


def refusal(scope: str, limit: int) -> dict[str, Any]:
    return {"code": "too_many_requests", "scope": scope, "limit": limit}


def summary(o: Opened) -> Any:
    if o.status == 200:
        return 200
    error = o.body["error"]
    return {"code": error["code"], **error["details"]}


def test_one_member_opening_200_streams_leaves_the_database_free(
    gateway: str, database_url: str, configure: Configure
) -> None:
    configure(SSE_PING_S="0.5")
    tenant = seed_tenant(database_url, "acme")
    [limits] = rows(
        database_url,
        "SELECT current_setting('max_connections')::int AS max,"
        " current_setting('superuser_reserved_connections')::int AS reserved,"
        " current_database() AS db",
    )
    with streams() as opened, ThreadPoolExecutor(40) as pool, httpx.Client(timeout=20) as client:

        def attempt(_: int) -> int:
            opened.append(open_stream(gateway, tenant.member_token, tenant.id))
            return opened[-1].status

        assert Counter(pool.map(attempt, range(200))) == {200: 5, 429: 195}
        assert {json.dumps(summary(o)) for o in opened if o.status == 429} == {
            json.dumps(refusal("user", 5))
        }
        assert STREAM_CAPS.open_streams() == 5

        # Meanwhile every other function answers, and each live stream sees the new job.
        headers = bearer(tenant.admin_token)
        run = client.post(f"{gateway}/run-integration", headers=headers,
                          json={"tenant_id": str(tenant.id), "provider_slug": "acessorias"})  # fmt: skip
        assert run.status_code == 202, run.text
        listed = client.get(f"{gateway}/list-integration-jobs", headers=headers,
                            params={"tenant_id": str(tenant.id)})  # fmt: skip
        assert listed.status_code == 200
        assert [j["id"] for j in listed.json()["jobs"]] == [run.json()["job_id"]]
        for live in (o for o in opened if o.status == 200):
            assert live.next_job()["id"] == run.json()["job_id"]

        activity = rows(database_url, "SELECT datname, application_name FROM pg_stat_activity")
        ours = [a for a in activity if a["datname"] == limits["db"]]
        assert [a["application_name"] for a in ours].count(APPLICATION_NAME) == 1
        # 200 streams took no more than the pool (DB_POOL_MAX), the listener and this query:
        # counted on our own database, as others may use the server (tests in the other
        # processes of `make test`, or on a shared server).
        assert len(ours) <= 20 + 2 < limits["max"] - limits["reserved"]


def test_the_tenant_cap_counts_every_member_and_the_user_cap_every_tenant(
    gateway: str, database_url: str, configure: Configure
) -> None:
    configure(SSE_MAX_STREAMS_PER_USER="3", SSE_MAX_STREAMS_PER_TENANT="4", SSE_PING_S="0.2")
    a, b = seed_tenant(database_url, "acme"), seed_tenant(database_url, "globex")
    both = TenantFixture(a.id, a.slug, a.admin, b.member)  # b's member belongs to a as well
    add_member(database_url, a, b.member)
    with streams() as opened:

        def attempt(token: str, tenant_id: Any) -> Any:
            opened.append(open_stream(gateway, token, tenant_id))
            return summary(opened[-1])

        # A user's streams count in every tenant: 2 in acme + 1 in globex, then no more.
        assert [attempt(both.member_token, t) for t in (a.id, a.id, b.id)] == [200, 200, 200]
        assert attempt(both.member_token, b.id) == refusal("user", 3)
        # acme now holds 2 of its 4; its member takes the other 2, then even its admin waits.
        assert [attempt(a.member_token, a.id) for _ in range(2)] == [200, 200]
        assert attempt(a.admin_token, a.id) == refusal("tenant", 4)
        # Another tenant is not affected.
        assert attempt(b.admin_token, b.id) == 200
        # A stream that ends (its client went away) frees its place.
        acme_stream = opened[4]
        assert acme_stream.status == 200
        acme_stream.close()
        wait_until(lambda: STREAM_CAPS.open_streams() == 5, 10, "the closed stream to end")
        assert attempt(a.admin_token, a.id) == 200


def test_a_stream_gives_its_slot_back_however_it_ends(
    gateway: str, database_url: str, configure: Configure
) -> None:
    configure(SSE_MAX_STREAMS_PER_USER="2", SSE_PING_S="0.2")
    tenant = seed_tenant(database_url, "acme")
    job = httpx.post(
        f"{gateway}/run-integration", headers=bearer(tenant.admin_token),
        json={"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
    ).json()["job_id"]  # fmt: skip

    def open_two(max_seconds: float = 60) -> list[Opened]:
        two = [open_stream(gateway, tenant.member_token, tenant.id, max_seconds) for _ in "ab"]
        opened.extend(two)
        assert [o.status for o in two] == [200, 200]
        return two

    with streams() as opened:
        # Its time is up (SSE_MAX_SECONDS or max_seconds): the place is free at once.
        for o in open_two(max_seconds=0.5):
            o.read_to_end()
        # The client goes away: the place is free by the next ping.
        for o in open_two():
            o.close()
        wait_until(lambda: STREAM_CAPS.open_streams() == 0, 10, "the streams to notice")
        # The stream fails (here: it may no longer read the jobs when one changes).
        live = open_two()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("REVOKE SELECT ON integration_jobs FROM authenticated")
            try:
                conn.execute("UPDATE integration_jobs SET progress = 1 WHERE id = %s", [job])
                for o in live:
                    assert b'"progress": 1,' not in o.read_to_end()  # cut short: no event
                wait_until(lambda: STREAM_CAPS.open_streams() == 0, 10, "the streams to fail")
            finally:
                conn.execute("GRANT SELECT ON integration_jobs TO authenticated")
        open_two()  # both places are free again
