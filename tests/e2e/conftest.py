"""The local stack for end-to-end tests: the gateway and gcloud-tasks-emulator as processes,
or the gateway alone, served from this process on a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.local import gateway as local_gateway
from infra.local.stack import TASKS_BIN
from infra.local.supervise import free_ports
from shared.queue.events import STREAM_CAPS
from shared.queue.listener import stop_listeners
from tests.conftest import BASE_ENV

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "projects/syncq-local/locations/us-central1/queues/syncq"


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Extra environment for the gateway's functions (a test overrides it to add settings)."""
    return {}


@pytest.fixture
def stack(database_url: str, tmp_path: Path, stack_env: dict[str, str]) -> Iterator[str]:
    """Cloud Tasks emulator + gateway subprocesses; yields the gateway's functions base URL."""
    tasks_port, gateway_port = free_ports(2)
    base = f"http://127.0.0.1:{gateway_port}/functions/v1"
    env = {
        **os.environ, **BASE_ENV,
        "DATABASE_URL": database_url,
        "DISPATCHER": "cloudtasks",
        "TASKS_EMULATOR_HOST": f"127.0.0.1:{tasks_port}",
        "FUNCTIONS_BASE_URL": base,
        "PYTHONPATH": str(ROOT),
        **stack_env,
    }  # fmt: skip
    logs = (tmp_path / "tasks.log").open("wb"), (tmp_path / "gateway.log").open("wb")
    procs = [
        subprocess.Popen(  # noqa: S603
            [str(TASKS_BIN), "start", "-p", str(tasks_port), "-q", "-d", QUEUE, "-r", "5"],
            stdout=logs[0], stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c",
             f"from infra.local.gateway import serve; serve('127.0.0.1', {gateway_port})"],
            env=env, cwd=ROOT, stdout=logs[1], stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        wait_until(lambda: listening(tasks_port) and listening(gateway_port), 30, "the stack")
        yield base
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        for f in logs:
            f.close()


@pytest.fixture
def gateway(database_url: str) -> Iterator[str]:
    """The real gateway (werkzeug, a thread per connection) in this process, on a free port;
    yields its functions base URL. Every stream must be over when the test ends."""
    server = local_gateway.make("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="gateway", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/functions/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        wait_until(lambda: STREAM_CAPS.open_streams() == 0, 10, "every stream to end")
        stop_listeners()
        assert not [t.name for t in threading.enumerate() if t.name.startswith("listen-")]
