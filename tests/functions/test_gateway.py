"""The local gateway's own answers: the index and the health answer, database up and down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

import shared
from infra.local.gateway import INSTANCE_HEADER, Services, build, function_names
from infra.local.supervise import free_port, free_ports


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something listens on (an emulator that is up)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def gateway(up_port: int, down_port: int) -> Client:
    emulators = {"onecode": f"http://127.0.0.1:{up_port}", "cloud-tasks": f"127.0.0.1:{down_port}"}
    return Client(build(services=Services(emulators, instance="run-1")))


def test_index_and_health_with_the_database_up(database_url: str, listener: int) -> None:
    down = free_port()
    client = gateway(listener, down)
    for path in ("/functions/v1/", "/functions/v1"):
        index = client.get(path, base_url="http://gw.local:8080")
        assert index.status_code == 200 and index.headers[INSTANCE_HEADER] == "run-1"
        body: dict[str, Any] = index.json  # type: ignore[assignment]
        assert body["service"] == "syncq" and body["version"] == shared.__version__
        assert body["health"] == "http://gw.local:8080/functions/v1/healthz"
        assert body["functions"] == [
            {"name": n, "url": f"http://gw.local:8080/functions/v1/{n}"} for n in function_names()
        ]
        assert body["database"] == {"up": True}
        assert body["emulators"] == {
            "cloud-tasks": {"url": f"127.0.0.1:{down}", "up": False},
            "onecode": {"url": f"http://127.0.0.1:{listener}", "up": True},
        }
    health = client.get("/functions/v1/healthz")
    assert health.status_code == 200 and health.json == {"status": "ok"}
    assert health.headers[INSTANCE_HEADER] == "run-1"
    missing = client.get("/functions/v1/no-such-function")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"  # type: ignore[index]
    for path in ("/functions/v1/", "/functions/v1/healthz"):
        assert client.head(path).status_code == 200, path
        for method in ("POST", "DELETE", "PATCH"):
            refused = client.open(path, method=method)
            assert refused.status_code == 405, (path, method)
            assert refused.json["error"]["code"] == "method_not_allowed"  # type: ignore[index]
            assert refused.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert client.options(path).status_code == 204


def test_health_is_503_when_the_database_does_not_answer(configure: Any, listener: int) -> None:
    nothing, down = free_ports(2)
    configure(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{nothing}/nothing")
    client = gateway(listener, down)
    health = client.get("/functions/v1/healthz")
    assert health.status_code == 503
    assert health.json == {
        "error": {
            "code": "unavailable",
            "message": "The database does not answer.",
            "details": {"database": "down"},
        }
    }
    assert health.headers[INSTANCE_HEADER] == "run-1"
    assert client.get("/functions/v1/").json["database"] == {"up": False}  # type: ignore[index]


def test_health_503_says_when_to_come_back(configure: Any, listener: int) -> None:
    """The gateway's own 503 (the database away) carries Retry-After, as every transient 503
    built by error_response does (ServiceUnavailable's hint)."""
    nothing, down = free_ports(2)
    configure(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{nothing}/nothing")
    health = gateway(listener, down).get("/functions/v1/healthz")
    assert health.status_code == 503
    assert health.headers.get("Retry-After") == "5"


def test_the_index_gives_a_url_only_for_http_emulators() -> None:
    """`make run`'s index listed the SMTP sink as `http://127.0.0.1:8106`: opened in a
    browser, an SMTP server answers nothing a person can read. It is given as host:port,
    as the Cloud Tasks emulator (gRPC) is; the HTTP emulators keep their URLs."""
    from infra.local.stack import EMULATORS, Ports, StackContext, watched_addresses

    watched = watched_addresses(StackContext(Ports(), "postgresql://unused"))
    assert watched["smtp"] == "127.0.0.1:8106"
    assert watched["cloud-tasks"] == "127.0.0.1:9022"
    assert watched["onecode"] == "http://127.0.0.1:8102"
    assert watched["gestao-scouter-2"] == "http://127.0.0.1:8107"
    assert set(watched) == {"cloud-tasks", *EMULATORS}
