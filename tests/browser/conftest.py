"""The dashboard in a real headless browser against the real local stack.

Once per module: `python -m infra.local.stack` (what `make run` starts: gateway, Cloud Tasks
emulator, every provider emulator, the demo tenants) on ports from the OS, in its own
database and data folder, with a TCP proxy in front of the gateway that a test can cut
(the browser talks to the proxy). Debian's Chromium driven by Playwright for Python; the
browser is never downloaded by Playwright (`make browser` installs Debian's package, and
`chromium_path` does the same when it is missing and we may).

Each test ends with a screenshot of its page in tests/output/browser/<test>.png.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg.rows import dict_row

from infra.local import pg, stack
from infra.local.demo import TENANTS
from infra.local.stack import Ports
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.conftest import wait_until
from tests.ports import stack_port_env

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "tests" / "output" / "browser"
ACME, GLOBEX = TENANTS
# Fast retries and short re-checks: a forced failure ends in seconds, not minutes.
STACK_SETTINGS = {
    "BACKOFF_BASE_S": "0.2",
    "BACKOFF_CAP_S": "0.5",
    "PROVIDER_RETRY_ATTEMPTS": "1",
    "PROVIDER_RETRY_BASE_S": "0.01",
    "PROVIDER_RETRY_CAP_S": "0.05",
    "ACESSORIAS_EMPTY_RECHECK_S": "0.01",
    "GESTAO_SCOUTER_BATCH_SIZE": "50",
    "GESTAO_SCOUTER_MAX_BATCH_SIZE": "50",  # batches of 50 stay 50: the export is watchable
    "LISTING_FETCH_AHEAD": "1",  # pages one after another: the progress bar moves visibly
}


def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing (as root); else a skip."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("Chromium is missing: run `make browser` (apt-get install chromium)")
    for argv in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "chromium"]):
        subprocess.run(argv, check=True, capture_output=True, timeout=900)  # noqa: S603
    return CHROMIUM


class Proxy:
    """A TCP proxy to the gateway whose open connections a test can cut at once."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        """Reset every open connection (the browser sees the stream drop); how many."""
        with self._lock:
            victims, self._open = self._open, set()
        for s in victims:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        return len(victims)

    def stop(self) -> None:
        self._stopped = True
        self._server.close()
        self.cut()


@dataclass
class LiveStack:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    database_url: str
    proxy: Proxy

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}/functions/v1"

    @property
    def base(self) -> str:
        """The functions as the browser reaches them (through the proxy)."""
        return f"http://127.0.0.1:{self.proxy.port}/functions/v1"

    @property
    def dashboard(self) -> str:
        return f"{self.base}/integrations-dashboard/"

    def emulator(self, name: str) -> str:
        return f"http://127.0.0.1:{self.env[Ports.variable(name.replace('-', '_'))]}"

    def knobs(self, name: str, **knobs: Any) -> None:
        httpx.post(
            f"{self.emulator(name)}/__admin/knobs", json=knobs, timeout=10
        ).raise_for_status()

    def reset(self, name: str) -> None:
        httpx.post(f"{self.emulator(name)}/__admin/reset", timeout=10).raise_for_status()

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            return conn.execute(sql, params or None).fetchall()

    def execute(self, sql: str, *params: Any) -> None:
        """Run a statement (positional parameters, or one dict of named ones)."""
        named = len(params) == 1 and isinstance(params[0], dict)
        with psycopg.connect(self.database_url) as conn:
            conn.execute(sql, params[0] if named else (params or None))

    def sweep(self) -> dict[str, Any]:
        """One minute-sweep now, as Cloud Scheduler would call it."""
        answer = httpx.post(
            f"{self.gateway}/process-integration-job", json={},
            headers={"Authorization": f"Bearer {service()}"}, timeout=120,
        )  # fmt: skip
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result


def service() -> str:
    """A service-role token for the stack (signed with the secret the stack was given)."""
    now = int(time.time())
    claims = {"iat": now, "exp": now + 600, "iss": "supabase", "role": "service_role"}
    return jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")


def _clean_env(**extra: str) -> dict[str, str]:
    ours = stack.stack_settings(os.environ)
    keep = {k: v for k, v in os.environ.items() if k not in ours and "_PORT" not in k}
    return {**keep, **extra}


@pytest.fixture(scope="module")
def live(
    pg_server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """`make run`'s stack for this module, in a database of its own."""
    name = f"syncq_browser_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    database_url = pg.create_database(pg_server_url, name, template=template_db)
    data = tmp_path_factory.mktemp("stack")
    env = _clean_env(
        **stack_port_env(),
        DATABASE_URL=database_url, JWT_SECRET=TEST_JWT_SECRET,
        GESTAO_SCOUTER_DATABASE=f"{name}_gs", SYNCQ_DATA_DIR=str(data), **STACK_SETTINGS,
    )  # fmt: skip
    out = (data / "stack.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.local.stack"], env=env, cwd=ROOT, text=True,
        stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    proxy = Proxy(int(env["GATEWAY_PORT"]))
    try:
        wait_until(
            lambda: "stack is up" in (data / "stack.out").read_text() or proc.poll() is not None,
            120, "the local stack",
        )  # fmt: skip
        assert proc.poll() is None, (data / "stack.out").read_text()[-3000:]
        yield LiveStack(proc, env, database_url, proxy)
    finally:
        proxy.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        out.close()
        pg.drop_database(pg_server_url, f"{name}_gs")
        pg.drop_database(pg_server_url, f"{name}_gs_2")  # the second demo tenant's remote
        pg.drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(executable), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no token yet); its last screen saved when the test ends."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR",
                                  accept_downloads=True)  # fmt: skip
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            tab.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
        context.close()
    assert errors == [], errors  # no uncaught script error on any page


def sign_in(page: Any, live: LiveStack, user: str, hash_: str = "") -> None:
    """Pick a demo user on the sign-in page (the gateway's local demo tokens)."""
    page.goto(live.dashboard)
    page.get_by_role("button", name=user).click()
    page.get_by_role("button", name="Sair").wait_for()
    # The app then moves to the first tenant's page: only after that, go elsewhere.
    page.wait_for_function("() => /^#\\/(t\\/|creditos)/.test(location.hash)")
    if hash_:
        page.goto(live.dashboard + hash_)
