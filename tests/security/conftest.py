"""Fixtures of the security matrices: one seeded database per module (the requests must
change nothing, and a module's tests check that), a JWKS endpoint and a hostile upstream."""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.local import pg
from shared import db
from tests.conftest import Configure
from tests.security.credentials import Keys
from tests.security.world import World, seed_world

_counter = itertools.count()


class _Server:
    """A loopback HTTP server in a thread, answering every request with `answer(handler)`."""

    def __init__(self, answer: Any) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload = answer(self, self.rfile.read(length) if length else b"")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _echo(handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes]:
    """The worst upstream: refuses everything, quoting back what it was sent (keys included)."""
    echoed = f"{handler.command} {handler.path} {dict(handler.headers)} {body[:2000]!r}"
    return 400, json.dumps({"code": 400, "msg": echoed, "message": echoed, "data": None}).encode()


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="session")
def jwks_url(keys: Keys) -> Iterator[str]:
    payload = keys.jwks()
    server = _Server(lambda handler, body: (200, payload))
    yield f"{server.url}/auth/v1/.well-known/jwks.json"
    server.close()


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    """Every provider, RunningHub and the Gestão Scouter remote: the echoing refuser."""
    server = _Server(_echo)
    yield server.url
    server.close()


@pytest.fixture(scope="module")
def seeded(pg_server_url: str, template_db: str, upstream_url: str) -> Iterator[World]:
    """One seeded database for the whole module."""
    name = f"syncq_sec_{os.getpid()}_{next(_counter)}"
    url = pg.create_database(pg_server_url, name, template=template_db)
    yield seed_world(url, upstream_url)
    db.close_pool()
    pg.drop_database(pg_server_url, name)


@pytest.fixture
def world(seeded: World, configure: Configure, jwks_url: str, upstream_url: str) -> World:
    """The module's world, with the settings pointed at it (per test: settings are undone)."""
    configure(**seeded.env(jwks_url=jwks_url, upstream_url=upstream_url))
    return seeded
