"""/functions/v1/docs in a real headless browser (Debian's Chromium, driven by Playwright):
the API reference renders every function from the gateway's own files, and nothing is
fetched from anywhere else (the page's CSP refuses it). The screenshot is left in the test's output folder."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from infra.local import gateway
from infra.local.gateway import PREFIX, function_names
from tests import chromium as browser


@pytest.fixture(scope="module")
def chromium() -> str:
    problem = browser.ensure()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return str(browser.CHROMIUM)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The gateway on a loopback port of its own, for the browser."""
    server = make_server("127.0.0.1", 0, gateway.build(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_reference_page_renders_every_function(
    chromium: str, base_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    blocked: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        engine = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = engine.new_page(viewport={"width": 1440, "height": 1000})
            page.on("request", lambda r: requested.append(r.url))
            page.on(
                "requestfailed",
                lambda r: (
                    blocked.append(r.url)
                    if (r.failure or "").lower() in ("csp", "net::err_blocked_by_csp")
                    else None
                ),
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base_url}{PREFIX}/docs", wait_until="networkidle")
            page.wait_for_selector("text=syncq functions", timeout=30_000)
            menu = page.locator("[role=menu], .menu-content").first.inner_text(timeout=10_000)
            body = page.locator("body").inner_text()
            page.locator(".menu-content").get_by_text("run-integration", exact=True).click()
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "docs.png"))
            page.screenshot(path=str(tmp_path / "docs-full.png"), full_page=True)
        finally:
            engine.close()
    assert errors == []
    for name in function_names():
        assert name in menu, name
    for text in ("Queue a sync", "Start a job", "RunningHub's TASK_END", "Who may call"):
        assert text in body, text
    assert "job_already_active" in body and "text/event-stream" in body
    # Redoc asks for its logo on a CDN: the page's Content-Security-Policy refuses it.
    foreign = [u for u in requested if not u.startswith((base_url, "data:", "blob:"))]
    assert foreign == blocked
    assert (tmp_path / "docs.png").stat().st_size > 10_000
    print(f"screenshot: {tmp_path / 'docs.png'}")
