"""The dashboard as people use it: a real Chromium against the real local stack.

Every click goes from the page through the gateway to the functions, the Cloud Tasks
emulator, the provider emulators and PostgreSQL; what the page shows comes back through
the same functions and the event stream. Assertions are on the page and on the database.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from infra.local import demo
from shared.gestao.models import PauseCode
from tests.browser.conftest import ACME, GLOBEX, LiveStack, sign_in
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow]


def card(page: Any, provider: str) -> Any:
    return page.locator(f"article[data-provider='{provider}']")


def jobs_of(live: LiveStack, tenant: Any, provider: str) -> list[dict[str, Any]]:
    return live.rows(
        "SELECT * FROM integration_jobs WHERE tenant_id = %s AND provider_slug = %s"
        " ORDER BY created_at",
        tenant.id, provider,
    )  # fmt: skip


def latest(live: LiveStack, tenant: Any, provider: str) -> dict[str, Any]:
    """The newest job, or {} before the click that makes one has reached the server."""
    jobs = jobs_of(live, tenant, provider)
    return jobs[-1] if jobs else {}


def wait_idle(live: LiveStack, tenant: Any, provider: str) -> None:
    """No live job of this integration (a test starts from rest)."""
    wait_until(
        lambda: all(j["status"] not in ("pending", "running") for j in jobs_of(live, tenant, provider)),
        60, f"{provider} of {tenant.slug} at rest",
    )  # fmt: skip


def progress_values(page: Any, provider: str) -> list[int]:
    return page.evaluate(
        """p => window.__seen[p] || []""", provider
    )  # fmt: skip


def watch_progress(page: Any, provider: str) -> None:
    """Record the progress values the card's bar shows (sampled in the page every 20 ms)."""
    page.evaluate(
        """p => {
          window.__seen = window.__seen || {}; window.__seen[p] = [];
          setInterval(() => document.querySelectorAll(`article[data-provider='${p}'] progress`)
            .forEach(el => window.__seen[p].push(Number(el.value))), 20);
        }""",
        provider,
    )


class HeldAnswer:
    """The first request to `pattern` (with `marker` in its URL or body) is read from the
    server at once and answered only when the test says so: a slow answer that arrives after
    later news.
    """

    def __init__(self, page: Any, pattern: str, marker: str = "") -> None:
        self.page, self.pattern, self.marker = page, pattern, marker
        self.route: Any = None
        self.answer: Any = None

    def __enter__(self) -> HeldAnswer:
        self.page.route(self.pattern, self._hold)
        return self

    def __exit__(self, *exc: object) -> None:
        self.page.unroute(self.pattern)

    def _hold(self, route: Any) -> None:
        asked = f"{route.request.url}\n{route.request.post_data or ''}"
        if self.route is not None or self.marker not in asked:
            route.continue_()
        else:
            self.route = route  # first: a request arriving during the fetch passes on
            self.answer = route.fetch()

    def read(self, timeout_s: float = 10.0) -> Any:
        """The held answer's body, once the page has asked (Playwright's events pump only
        while the test waits in a Playwright call)."""
        deadline = time.monotonic() + timeout_s
        while self.answer is None:
            assert time.monotonic() < deadline, f"the page never asked for {self.pattern}"
            self.page.wait_for_timeout(50)
        return self.answer.json()

    def release(self, **changes: Any) -> None:
        """Answer now, as read then (`json=` answers another body with its status)."""
        self.route.fulfill(response=self.answer, **changes)


# -- Integrações ----------------------------------------------------------------------------


def test_executar_shows_processing_progress_then_concluido(page: Any, live: LiveStack) -> None:
    wait_idle(live, ACME, "onecode")
    live.knobs("onecode", latency_ms=300)  # 5 pages in turn: the bar has time to move
    try:
        sign_in(page, live, "acme-admin")
        onecode = card(page, "onecode")
        page.evaluate("window.__sameDocument = 'yes'")
        watch_progress(page, "onecode")
        onecode.get_by_role("button", name="Executar").click()
        badge = onecode.get_by_test_id("status")
        page.wait_for_function(
            "() => document.querySelector(\"article[data-provider='onecode'] [data-testid=status]\").textContent === 'Processando...'"
        )
        assert "yellow" in (badge.get_attribute("class") or "")
        assert onecode.get_by_role("button", name="Executar").is_disabled()
        badge.filter(has_text="Concluído").wait_for(timeout=60_000)
        assert "green" in (badge.get_attribute("class") or "")
    finally:
        live.reset("onecode")
    seen = progress_values(page, "onecode")
    assert any(0 < v < 100 for v in seen), seen  # the bar moved between 0 and done
    assert page.evaluate("window.__sameDocument") == "yes"  # no reload
    assert onecode.get_by_role("button", name="Executar").is_enabled()
    (job,) = [j for j in jobs_of(live, ACME, "onecode") if j["created_by"] == ACME.admin]
    assert job["status"] == "success"


def token_of(live: LiveStack, user: str) -> str:
    users = httpx.get(f"{live.gateway}/_local/demo-tokens", timeout=10).json()["users"]
    return str(next(u["token"] for u in users if u["name"] == user))


def test_a_card_reads_the_freshness_again_when_a_run_ends(page: Any, live: LiveStack) -> None:
    """The card's "Dados atualizados" follows the runs live, as its badge does: a first
    success on the open page turns "Nunca sincronizados" into "Em dia" without a reload."""
    wait_idle(live, ACME, "onecode")
    live.execute(
        "DELETE FROM integration_jobs WHERE tenant_id = %s AND provider_slug = 'onecode'",
        ACME.id,
    )
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes")
    onecode = card(page, "onecode")
    onecode.get_by_text("Nunca sincronizados").wait_for()
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    started = httpx.post(f"{live.base}/run-integration", timeout=10,
                         json={"tenant_id": str(ACME.id), "provider_slug": "onecode"},
                         headers={"Authorization": f"Bearer {token_of(live, 'acme-admin')}"})  # fmt: skip
    assert started.status_code == 202, started.text  # elsewhere: no click, no refetch after it
    wait_until(lambda: latest(live, ACME, "onecode").get("status") == "success", 60, "the run")
    onecode.get_by_test_id("status").filter(has_text="Concluído").wait_for()
    onecode.get_by_text("Em dia").wait_for(timeout=5_000)


def test_runs_ending_in_a_burst_read_the_freshness_again_once_not_once_each(
    page: Any, live: LiveStack
) -> None:
    """A busy tenant's runs end many at once (a reconnecting stream replays the last
    minute's too): the cards' freshness is read again once or twice, not once per run."""
    wait_idle(live, ACME, "onecode")
    live.execute(
        "DELETE FROM integration_jobs WHERE tenant_id = %s AND provider_slug = 'onecode'",
        ACME.id,
    )
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "integration-metrics" in r.url else None)
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes")
    onecode = card(page, "onecode")
    onecode.get_by_text("Nunca sincronizados").wait_for()
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    before = len(asked)
    try:
        live.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, progress,"
            " started_at, finished_at) SELECT %s, 'onecode', 'success', 100, now(), now()"
            " FROM generate_series(1, 30)", ACME.id,
        )  # fmt: skip
        onecode.get_by_text("Em dia").wait_for(timeout=10_000)
        page.wait_for_timeout(1_500)
        assert len(asked) - before <= 3, f"{len(asked) - before} integration-metrics requests"
    finally:
        live.execute(
            "DELETE FROM integration_jobs WHERE tenant_id = %s AND provider_slug = 'onecode'",
            ACME.id,
        )


def test_runs_ending_in_a_burst_read_the_schedules_again_once_not_once_each(
    page: Any, live: LiveStack
) -> None:
    """A burst of runs ending (a busy tenant, a reconnecting stream's replay) moves the cards'
    and the Agendamento tab's last and next runs with a few reads, not one read per run."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "integration-schedules" in r.url else None)
    made: list[dict[str, Any]] = []

    def burst() -> None:
        made.extend(live.rows(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, progress,"
            " started_at, finished_at) SELECT %s, 'bomcontrole', 'success', 100, now(), now()"
            " FROM generate_series(1, 100) RETURNING id", GLOBEX.id,
        ))  # fmt: skip

    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes")
        card(page, "bomcontrole").get_by_test_id("status").wait_for()
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        before = len(asked)
        burst()
        card(page, "bomcontrole").get_by_test_id("status").filter(has_text="Concluído").wait_for()
        page.wait_for_timeout(2_000)
        assert len(asked) - before <= 10, f"{len(asked) - before} reads on Integrações"
        page.goto(live.dashboard + f"#/t/{GLOBEX.id}/integracoes/bomcontrole/agendamento")
        page.get_by_label("Expressão cron (5 campos)").wait_for()
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        page.wait_for_timeout(500)
        before = len(asked)
        burst()
        page.wait_for_timeout(3_000)
        assert len(asked) - before <= 10, f"{len(asked) - before} reads on Agendamento"
    finally:
        live.execute("DELETE FROM integration_jobs WHERE id = ANY(%s)", [r["id"] for r in made])


def test_a_card_whose_schedule_was_not_read_does_not_say_there_is_none(
    page: Any, live: LiveStack
) -> None:
    """The schedules could not be read (503): every card said "Sem agendamento", false for
    an integration that has one. The cards say it is not known, and the next date once the
    schedules answer."""
    live.execute(
        "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone,"
        " next_run_at, due_at) VALUES (%s, 'bomcontrole', '30 12 * * *', 'UTC',"
        " '2031-05-04 12:30+00', '2031-05-04 12:30+00')", ACME.id,
    )  # fmt: skip
    busy = {"error": {"code": "database_unavailable", "message": "The database is busy."}}
    try:
        page.route("**/integration-schedules?*", lambda route: route.fulfill(status=503, json=busy))
        sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes")
        next_run = card(page, "bomcontrole").get_by_test_id("next-run")
        next_run.wait_for()
        assert next_run.inner_text() == "Agendamento não disponível no momento"
        assert page.get_by_text("Sem agendamento").count() == 0
        page.unroute("**/integration-schedules?*")
        page.reload()
        next_run.filter(has_text="04/05/2031").wait_for()
        assert next_run.inner_text().startswith("04/05/2031"), next_run.inner_text()
        assert card(page, "onecode").get_by_test_id("next-run").inner_text() == "Sem agendamento"
    finally:
        live.execute(
            "DELETE FROM integration_schedules WHERE tenant_id = %s"
            " AND provider_slug = 'bomcontrole'", ACME.id,
        )  # fmt: skip


def test_a_run_ending_is_told_to_a_screen_reader(page: Any, live: LiveStack) -> None:
    """A card's status is a live region (role=status) naming its integration: a screen reader
    hears "Acessórias: Falha" when a run fails, not only a badge turning red in silence."""
    sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes")
    acessorias = card(page, "acessorias")
    acessorias.get_by_test_id("status").wait_for()
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    made = live.rows(
        "INSERT INTO integration_jobs (tenant_id, provider_slug, status, progress, attempts,"
        " error_message, started_at, finished_at) VALUES (%s, 'acessorias', 'error', 100, 3,"
        " 'HTTP 503', now(), now()) RETURNING id", GLOBEX.id,
    )  # fmt: skip
    try:
        acessorias.get_by_test_id("status").filter(has_text="Falha").wait_for()
        told = acessorias.get_by_role("status").filter(has_text="Falha")
        assert told.count() == 1
        assert " ".join((told.text_content() or "").split()) == "Acessórias: Falha"
    finally:
        live.execute("DELETE FROM integration_jobs WHERE id = ANY(%s)", [r["id"] for r in made])


def test_double_click_makes_one_job_and_an_informative_notice(page: Any, live: LiveStack) -> None:
    wait_idle(live, ACME, "bomcontrole")
    before = len(jobs_of(live, ACME, "bomcontrole"))
    live.knobs("bomcontrole", latency_ms=1500)  # the first job is still live at the second click
    try:
        sign_in(page, live, "acme-admin")
        bomcontrole = card(page, "bomcontrole")
        button = bomcontrole.get_by_role("button", name="Executar")
        button.wait_for()
        # Both clicks in one turn of the page: Playwright's dblclick let the first answer
        # (or the stream) disable the button before its second click under load, so only one
        # request went out and the test waited for a notice nobody asked for.
        button.evaluate("b => { b.click(); b.click(); }")
        info = page.get_by_test_id("toast-info")
        info.filter(has_text="Já existe uma execução em andamento").wait_for()
        assert page.get_by_test_id("toast-error").count() == 0  # informative, never an error
        assert len(jobs_of(live, ACME, "bomcontrole")) == before + 1
        bomcontrole.get_by_test_id("status").filter(has_text="Concluído").wait_for(timeout=60_000)
    finally:
        live.reset("bomcontrole")
    assert len(jobs_of(live, ACME, "bomcontrole")) == before + 1


def test_a_failing_provider_shows_falha_and_its_error(page: Any, live: LiveStack) -> None:
    wait_idle(live, GLOBEX, "acessorias")
    live.knobs("acessorias", business_error="Token sem permissão para a empresa")
    try:
        sign_in(page, live, "globex-admin")
        acessorias = card(page, "acessorias")
        acessorias.get_by_role("button", name="Executar").click()
        badge = acessorias.get_by_test_id("status").filter(has_text="Falha")
        badge.wait_for(timeout=60_000)
        assert "red" in (badge.get_attribute("class") or "")
    finally:
        live.reset("acessorias")
    acessorias.get_by_role("button", name="Ver erro").click()
    dialog = page.get_by_role("dialog", name="Erro da última execução")
    message = dialog.get_by_test_id("error-message")
    assert "the token was refused or lacks access" in message.inner_text()
    job = jobs_of(live, GLOBEX, "acessorias")[-1]
    assert job["status"] == "error" and job["error_message"] in message.inner_text()
    page.keyboard.press("Escape")  # the dialog closes from the keyboard
    dialog.wait_for(state="hidden")
    # Run it again from Execuções (the provider answers again): a new job, a retry, that ends
    # well; the failed run stays as it was.
    page.goto(f"{live.dashboard}#/t/{GLOBEX.id}/integracoes/acessorias/execucoes")
    failed = page.locator(f"[data-testid=runs] tbody tr[data-job='{job['id']}']")
    failed.get_by_role("button", name="Tentar novamente").click()
    page.get_by_text("Nova tentativa enfileirada.").wait_for()

    def retries() -> list[str]:
        return [j["status"] for j in jobs_of(live, GLOBEX, "acessorias") if j["trigger"] == "retry"]

    wait_until(lambda: retries() == ["success"], 60, "the retry ran and succeeded")
    retried = page.locator("[data-testid=runs] tbody tr[data-job]").first
    retried.and_(page.locator("[data-status='success']")).wait_for()
    assert "Reexecução" in retried.inner_text()
    assert live.rows("SELECT status FROM integration_jobs WHERE id = %s", job["id"]) == [
        {"status": "error"}
    ]


def test_a_lost_event_stream_reconnects_and_ends_right(page: Any, live: LiveStack) -> None:
    wait_idle(live, GLOBEX, "onecode")
    live.knobs("onecode", latency_ms=400)
    streams: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: streams.append(r.headers) if "integration-job-events" in r.url else None,
    )
    try:
        sign_in(page, live, "globex-admin")
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        onecode = card(page, "onecode")
        onecode.get_by_role("button", name="Executar").click()
        onecode.get_by_test_id("status").filter(has_text="Processando...").wait_for()
        wait_until(lambda: latest(live, GLOBEX, "onecode").get("progress", 0) > 0, 30, "progress")
        assert live.proxy.cut() > 0  # the stream (and every other connection) drops mid-job
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        onecode.get_by_test_id("status").filter(has_text="Concluído").wait_for(timeout=60_000)
    finally:
        live.reset("onecode")
    assert len(streams) >= 2, streams
    assert streams[-1].get("last-event-id"), streams[-1]  # resumed where it was
    assert jobs_of(live, GLOBEX, "onecode")[-1]["status"] == "success"


def test_a_stream_refused_with_401_ends_the_session(page: Any, live: LiveStack) -> None:
    """The token expired while the stream was open: when it reconnects, the 401 signs the
    user out as any other call's does (the page sat signed in, no longer updated)."""
    sign_in(page, live, "acme-admin")
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    expired = {"error": {"code": "unauthorized", "message": "Invalid token."}}
    page.route("**/integration-job-events*", lambda route: route.fulfill(status=401, json=expired))
    assert live.proxy.cut() > 0  # the stream drops and reconnects into the 401
    page.get_by_text("Sua sessão expirou").wait_for()
    page.get_by_role("heading", name="Entrar no syncq").wait_for()
    assert page.get_by_role("button", name="Sair").count() == 0


def test_a_job_that_ends_before_the_first_stream_opens_is_shown_ended(
    page: Any, live: LiveStack
) -> None:
    """The page opens while its event stream is refused (429: the per-user cap after a few
    tabs or organization switches); the job ends meanwhile. The first stream that opens is
    a reconnection too: the page refetches and shows the end (it kept "Processando...",
    since that stream's snapshot lists only live jobs)."""
    wait_idle(live, GLOBEX, "onecode")
    live.knobs("onecode", latency_ms=300)
    refused = [0]

    def cap_reached(route: Any) -> None:
        if refused[0] < 3:
            refused[0] += 1
            route.fulfill(status=429, content_type="application/json",
                          body='{"error": {"code": "too_many_requests", "message": "cap"}}')  # fmt: skip
        else:
            route.continue_()

    try:
        sign_in(page, live, "globex-admin")
        onecode = card(page, "onecode")
        onecode.get_by_role("button", name="Executar").click()
        onecode.get_by_test_id("status").filter(has_text="Processando...").wait_for()
        page.route("**/functions/v1/integration-job-events?*", cap_reached)
        page.reload()
        onecode.get_by_test_id("status").filter(has_text="Processando...").wait_for()
        wait_until(lambda: latest(live, GLOBEX, "onecode").get("status") == "success", 30, "end")
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for(timeout=30_000)
        onecode.get_by_test_id("status").filter(has_text="Concluído").wait_for(timeout=10_000)
    finally:
        page.unroute("**/functions/v1/integration-job-events?*")
        live.reset("onecode")
    assert refused[0] == 3


@pytest.mark.parametrize("status", [429, 503])
def test_a_refused_stream_comes_back_no_sooner_than_retry_after(
    page: Any, live: LiveStack, status: int
) -> None:
    """The event stream refused with Retry-After (429: the tenant's stream cap; 503: the
    gateway or the database away; in seconds or as an HTTP date) is asked for again no
    sooner than that, and the page says meanwhile that it reconnects. Its own backoff
    (1 s, 2 s, ...) would come back into the same refusal and add to the load."""
    asked: list[float] = []  # when each stream request reached the route

    def refuse_once(route: Any) -> None:
        asked.append(time.monotonic())
        if len(asked) > 1:
            route.continue_()
            return
        later = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
        route.fulfill(status=status, content_type="application/json",
                      headers={"Retry-After": "4" if status == 429 else later},
                      body='{"error": {"code": "too_many_requests", "message": "cap"}}')  # fmt: skip

    sign_in(page, live, "acme-admin")
    status_ = page.get_by_test_id("live")
    status_.filter(has_text="Ao vivo").wait_for()
    page.route("**/functions/v1/integration-job-events?*", refuse_once)
    try:
        page.reload()  # the new page's first stream is refused, asked to wait 4 to 5 s
        status_.filter(has_text="Reconectando…").wait_for()
        page.wait_for_timeout(2_500)  # well within the wait asked for
        assert len(asked) == 1, [t - asked[0] for t in asked]
        assert status_.inner_text() == "Reconectando…"
        status_.filter(has_text="Ao vivo").wait_for(timeout=60_000)
    finally:
        page.unroute("**/functions/v1/integration-job-events?*")
    assert asked[1] - asked[0] >= 3.0, asked[1] - asked[0]


def test_a_refetch_read_before_the_end_does_not_undo_it(page: Any, live: LiveStack) -> None:
    """The page refetches its cards after a click (and after every reconnection) while the
    stream goes on: an answer read while the job ran, arriving after the job's last event,
    must not put the card back to "Processando..." (the stream never sends that event again).
    """
    wait_idle(live, GLOBEX, "onecode")
    live.knobs("onecode", latency_ms=1000)  # a run of several seconds
    try:
        sign_in(page, live, "globex-admin")
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        onecode = card(page, "onecode")
        with HeldAnswer(page, "**/functions/v1/list-integrations?*") as refetch:
            onecode.get_by_role("button", name="Executar").click()
            stale = refetch.read()  # the refetch 1.5 s after the click
            [read] = [i for i in stale["integrations"] if i["provider_slug"] == "onecode"]
            assert read["latest_job"]["status"] in ("pending", "running")  # read mid-run
            onecode.get_by_test_id("status").filter(has_text="Concluído").wait_for(timeout=60_000)
            with page.expect_request("**/functions/v1/integration-metrics?*"):
                refetch.release()  # the stale list lands; metrics are loaded next
        page.wait_for_timeout(500)
        assert onecode.get_by_test_id("status").inner_text() == "Concluído"
        assert onecode.locator("progress").count() == 0
    finally:
        live.reset("onecode")
    assert jobs_of(live, GLOBEX, "onecode")[-1]["status"] == "success"


def a_run_in_execucoes(page: Any, live: LiveStack, tenant: Any, who: str) -> tuple[str, str]:
    """Sign in on OneCode's Execuções, run it and wait for its row to show it running: the
    job's id and the row's selector."""
    sign_in(page, live, who, f"#/t/{tenant.id}/integracoes/onecode/execucoes")
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    page.get_by_role("button", name="Executar Agora").click()
    wait_until(lambda: latest(live, tenant, "onecode").get("status") == "running", 30, "run")
    job_id = str(jobs_of(live, tenant, "onecode")[-1]["id"])
    row = f"tr[data-job='{job_id}']"
    page.locator(f"{row}[data-status='running']").wait_for()
    return job_id, row


def test_execucoes_keep_a_finished_run_through_a_reconnection(page: Any, live: LiveStack) -> None:
    """Execuções refetch their page when the stream reconnects; that answer, read while the
    run was still going and arriving after its last event, must not undo it."""
    wait_idle(live, GLOBEX, "onecode")
    live.knobs("onecode", latency_ms=1000)
    try:
        job_id, row = a_run_in_execucoes(page, live, GLOBEX, "globex-admin")
        with HeldAnswer(page, "**/functions/v1/list-integration-jobs?*") as refetch:
            assert live.proxy.cut() > 0  # the stream drops; the page reconnects and refetches
            [read] = [j for j in refetch.read()["jobs"] if j["id"] == job_id]
            assert read["status"] == "running"  # read mid-run
            page.locator(f"{row}[data-status='success']").wait_for(timeout=60_000)
            refetch.release()
        page.wait_for_timeout(500)
        assert page.locator(row).get_attribute("data-status") == "success"
    finally:
        live.reset("onecode")


def test_execucoes_keep_the_rows_loaded_with_carregar_mais_through_a_reconnection(
    page: Any, live: LiveStack
) -> None:
    """The refetch after a reconnection reads as many rows as the list shows: rows loaded
    with "Carregar mais" stay (they went, the list back to its first page)."""
    for hours in range(30, 75):  # 45 old runs of GLOBEX's Acessórias
        live.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, progress,"
            " created_at, started_at, finished_at) VALUES (%s, 'acessorias', 'success', 1, 100,"
            " now() - make_interval(hours => %s), now() - make_interval(hours => %s),"
            " now() - make_interval(hours => %s))",
            GLOBEX.id, hours, hours, hours,
        )  # fmt: skip
    sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/acessorias/execucoes")
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    rows = page.get_by_test_id("runs").locator("tbody tr[data-job]")
    rows.first.wait_for()
    page.get_by_role("button", name="Carregar mais").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=runs] tbody tr[data-job]').length >= 40"
    )
    shown = rows.count()
    with page.expect_response("**/functions/v1/list-integration-jobs?*") as refetched:
        assert live.proxy.cut() > 0  # the stream drops; the page reconnects and refetches
    assert refetched.value.ok
    page.wait_for_timeout(500)
    assert rows.count() == shown
    assert page.get_by_role("button", name="Carregar mais").is_visible()


def test_execucoes_left_open_keep_the_rows_asked_for_not_every_new_run(
    page: Any, live: LiveStack
) -> None:
    """A busy integration's Execuções left open for hours: each new run goes on top, and the
    table keeps the rows asked for (older ones one "Carregar mais" away), not every run that
    happened since it opened (a page whose DOM grows without end)."""
    sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/bomcontrole/execucoes")
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    rows = page.get_by_test_id("runs").locator("tbody tr[data-job]")
    page.get_by_test_id("runs").wait_for()
    made = live.rows(
        "INSERT INTO integration_jobs (tenant_id, provider_slug, status, progress, created_at,"
        " started_at, finished_at) SELECT %s, 'bomcontrole', 'success', 100,"
        " now() + make_interval(secs => g / 1000.0), now(), now()"
        " FROM generate_series(1, 300) g RETURNING id",
        GLOBEX.id,
    )  # fmt: skip
    try:
        newest = live.rows(
            "SELECT id FROM integration_jobs WHERE tenant_id = %s AND provider_slug = 'bomcontrole'"
            " ORDER BY created_at DESC, id DESC LIMIT 40",
            GLOBEX.id,
        )  # fmt: skip
        rows.first.and_(page.locator(f"tr[data-job='{newest[0]['id']}']")).wait_for(timeout=20_000)
        page.wait_for_timeout(1_000)
        assert rows.count() == 20
        assert page.evaluate("document.getElementsByTagName('*').length") < 1_500
        page.get_by_role("button", name="Carregar mais").click()
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=runs] tbody tr[data-job]').length >= 40"
        )
        shown = [rows.nth(i).get_attribute("data-job") for i in range(rows.count())]
        assert shown == [str(r["id"]) for r in newest]  # the 40 newest, in order, no gap
    finally:
        live.execute(
            "DELETE FROM integration_jobs WHERE id = ANY(%s)", [r["id"] for r in made]
        )  # fmt: skip


def test_a_double_click_on_carregar_mais_asks_for_one_page(page: Any, live: LiveStack) -> None:
    """Two clicks on "Carregar mais" in one turn of the page asked for the same page twice
    and counted two pages asked for: left open, the table then kept 60 rows as new runs came
    on top, not the 40 it had shown."""
    old = live.rows(
        "INSERT INTO integration_jobs (tenant_id, provider_slug, status, progress, created_at,"
        " started_at, finished_at) SELECT %s, 'onecode', 'success', 100,"
        " now() - make_interval(hours => 30 + g), now(), now()"
        " FROM generate_series(1, 60) g RETURNING id",
        GLOBEX.id,
    )  # fmt: skip
    made: list[dict[str, Any]] = []
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "before=" in r.url else None)
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/onecode/execucoes")
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        rows = page.get_by_test_id("runs").locator("tbody tr[data-job]")
        rows.first.wait_for()
        page.get_by_role("button", name="Carregar mais").evaluate(
            "b => { b.click(); b.click(); }"  # both in one turn of the page
        )
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=runs] tbody tr[data-job]').length >= 40"
        )
        assert len(asked) == 1, asked
        made = live.rows(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, progress,"
            " created_at, started_at, finished_at) SELECT %s, 'onecode', 'success', 100,"
            " now() + make_interval(secs => g / 1000.0), now(), now()"
            " FROM generate_series(1, 100) g RETURNING id",
            GLOBEX.id,
        )  # fmt: skip
        newest = str(made[-1]["id"])
        rows.first.and_(page.locator(f"tr[data-job='{newest}']")).wait_for(timeout=20_000)
        page.wait_for_timeout(1_000)
        assert rows.count() == 40
    finally:
        live.execute(
            "DELETE FROM integration_jobs WHERE id = ANY(%s)", [r["id"] for r in old + made]
        )  # fmt: skip


def test_a_filter_changed_while_the_list_loads_shows_only_its_rows(
    page: Any, live: LiveStack
) -> None:
    """Execuções ask again when a filter changes; the answer to the question before it (all
    triggers), arriving after the new one, must not fill the filtered table."""
    rows = live.rows(
        "INSERT INTO integration_jobs (tenant_id, provider_slug, status, progress, trigger,"
        " created_at, finished_at) SELECT %s, 'bomcontrole', 'success', 100, t,"
        " now() - make_interval(hours => h), now() - make_interval(hours => h)"
        " FROM (VALUES ('manual', 3), ('schedule', 2)) AS v(t, h) RETURNING id, trigger",
        ACME.id,
    )  # fmt: skip
    scheduled = next(str(r["id"]) for r in rows if r["trigger"] == "schedule")
    shown = "() => [...document.querySelectorAll('[data-testid=runs] tbody tr[data-job]')]"
    try:
        sign_in(page, live, "acme-admin")
        with HeldAnswer(page, "**/functions/v1/list-integration-jobs?*", "bomcontrole") as all_:
            page.goto(f"{live.dashboard}#/t/{ACME.id}/integracoes/bomcontrole/execucoes")
            assert {j["trigger"] for j in all_.read()["jobs"]} >= {"manual", "schedule"}
            page.get_by_label("Gatilho").select_option("schedule")
            page.wait_for_function(f"() => ({shown})().length === 1")
            all_.release()  # the unfiltered answer, late
        page.wait_for_timeout(500)
        assert page.evaluate(f"() => ({shown})().map((tr) => tr.dataset.job)") == [scheduled]
    finally:
        live.execute("DELETE FROM integration_jobs WHERE id = ANY(%s)", [r["id"] for r in rows])


# Copies of one job or export as the page may hold them: (id, status, updated_at, created_at).
COPIES = {
    "running": ("a", "running", "2026-01-01T00:00:05Z", "2026-01-01T00:00:00Z"),
    "later": ("a", "running", "2026-01-01T00:00:06Z", "2026-01-01T00:00:00Z"),
    "done": ("a", "success", "2026-01-01T00:00:04Z", "2026-01-01T00:00:00Z"),
    "paused": ("a", "paused", "2026-01-01T00:00:06Z", "2026-01-01T00:00:00Z"),
    "reset": ("a", "pending", "2026-01-01T00:00:07Z", "2026-01-01T00:00:00Z"),
    "next": ("b", "pending", "2026-01-01T00:00:01Z", "2026-01-01T00:00:09Z"),
}
# rule: (held, arrived, kept); None is nothing (no copy yet, or "no export").
NEWEST_JOB = {
    "later_update": ("running", "later", "later"),
    "stale_update": ("later", "running", "later"),
    "finished_over_live": ("done", "later", "done"),
    "live_never_undoes_finished": ("later", "done", "done"),
    "newer_job": ("done", "next", "next"),
    "older_job": ("next", "done", "next"),
    "nothing_held": (None, "running", "running"),
    "nothing_arrived": ("running", None, "running"),
}
NEWEST_EXPORT = {
    "later_change": ("running", "paused", "paused"),
    "stale_change": ("paused", "running", "paused"),
    "reset_after_a_pause": ("paused", "reset", "reset"),
    "newer_export": ("reset", "next", "next"),
    "older_export": ("next", "reset", "next"),
    "none_never_replaces": ("running", None, "running"),
    "first_answer": (None, "running", "running"),
    "nothing_yet": (None, None, None),
}


@pytest.mark.parametrize(
    ("module", "pick", "rules"),
    [("./js/jobs.js", "newestJob", NEWEST_JOB),
     ("./js/pages/syncmonitor.js", "newestExport", NEWEST_EXPORT)],
    ids=["jobs.newestJob", "syncmonitor.newestExport"],
)  # fmt: skip
def test_the_newest_copy_wins_in_the_page(
    page: Any, live: LiveStack, module: str, pick: str, rules: dict[str, tuple[str | None, ...]]
) -> None:
    """Which copy of a job (a card, a run) or of an export the page keeps, run in the
    page's own module."""
    page.goto(live.dashboard)
    kept = page.evaluate(
        """async ([module, pick, copies, rules]) => {
          const choose = (await import(module))[pick];
          const copy = (name) => {
            if (name === null) return null;
            const [id, status, updated_at, created_at] = copies[name];
            return { id, status, updated_at, created_at, name };
          };
          return Object.fromEntries(Object.entries(rules).map(([rule, [held, arrived]]) =>
            [rule, choose(copy(held), copy(arrived))?.name ?? null]));
        }""",
        [module, pick, COPIES, rules],
    )
    assert kept == {rule: want for rule, (_, _, want) in rules.items()}


def test_every_pause_code_the_server_writes_is_said_in_its_own_words(
    page: Any, live: LiveStack
) -> None:
    """The page says an export's pause by its `pause_code` (run in the page's own module):
    each code the server writes has a sentence of its own (none falls back to the generic
    "a fault"), the counted ones say the count, and a code the page does not know (a newer
    server) still reads as a pause to look into."""
    page.goto(live.dashboard)
    said = page.evaluate(
        """async (codes) => {
          const { fmtPause, isAdminPause } = await import('./js/format.js');
          return { known: codes.map((c) => fmtPause(c, 4)), unknown: fmtPause('newer', 4),
                   admin: codes.filter(isAdminPause) };
        }""",
        [str(code) for code in PauseCode],
    )
    known = dict(zip([str(code) for code in PauseCode], said["known"], strict=True))
    assert len(set(known.values())) == len(known) and said["unknown"] not in known.values()
    assert said["unknown"].startswith("Pausado") and said["admin"] == ["admin"]
    assert "4 lotes seguidos" in known["failing"] and "4 vezes seguidas" in known["stalled"]


def test_a_job_waiting_too_long_says_the_queue_waits(page: Any, live: LiveStack) -> None:
    wait_idle(live, GLOBEX, "bomcontrole")
    [job] = live.rows(  # due ten minutes ago and never claimed (no wake-up reached a worker)
        "INSERT INTO integration_jobs (tenant_id, provider_slug, run_after, created_at)"
        " VALUES (%s, 'bomcontrole', now() - interval '10 minutes', now() - interval '10 minutes')"
        " RETURNING id",
        GLOBEX.id,
    )
    # Held until the page has shown it: the stack's own minute sweep (or another job's drain)
    # claims with SKIP LOCKED, so it cannot run the job before the page sees it waiting.
    try:
        with psycopg.connect(live.database_url) as holder:
            holder.execute("SELECT id FROM integration_jobs WHERE id = %s FOR UPDATE", [job["id"]])
            sign_in(page, live, "globex-admin")
            stalled = card(page, "bomcontrole").get_by_test_id("stalled")
            stalled.wait_for()
            assert stalled.inner_text() == "Fila aguardando reprocessamento"
    finally:
        live.sweep()  # the sweep picks it up, as it would within a minute
    card(page, "bomcontrole").get_by_test_id("status").filter(has_text="Concluído").wait_for(
        timeout=60_000
    )
    assert card(page, "bomcontrole").get_by_test_id("stalled").count() == 0


# -- tenants and roles ------------------------------------------------------------------------


def test_a_late_answer_never_shows_under_the_other_organization(page: Any, live: LiveStack) -> None:
    """A user of two organizations switches while a refetch of the first is on its way: when
    it lands, the page of the second shows nothing of it."""
    live.execute(
        "INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%s, %s, 'member')",
        ACME.id, GLOBEX.admin,
    )  # fmt: skip
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes")
        card(page, "onecode").wait_for()
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        with HeldAnswer(page, "**/functions/v1/list-integrations?*", str(GLOBEX.id)) as refetch:
            assert live.proxy.cut() > 0  # the stream reconnects, and the page refetches
            late = refetch.read()
            page.get_by_label("Organização").select_option(str(ACME.id))
            page.get_by_text(ACME.name, exact=True).last.wait_for()
            card(page, "acessorias").wait_for()
            for item in late["integrations"]:
                item["display_name"] = "Globex, resposta atrasada"
            refetch.release(json=late)
        page.wait_for_timeout(500)
        assert page.get_by_text("Globex, resposta atrasada").count() == 0
        assert f"#/t/{ACME.id}/" in page.evaluate("location.hash")
    finally:
        live.execute(
            "DELETE FROM tenant_members WHERE tenant_id = %s AND user_id = %s",
            ACME.id, GLOBEX.admin,
        )  # fmt: skip


def test_a_late_answer_never_shows_under_the_other_integration(page: Any, live: LiveStack) -> None:
    """From one integration's Detalhe straight to another's (the address changes, the page
    stays): the first one's refetch, landing late, shows nothing under the second."""
    base = f"#/t/{ACME.id}/integracoes"
    sign_in(page, live, "acme-member", f"{base}/onecode")
    page.get_by_role("heading", name="OneCode").wait_for()
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    with HeldAnswer(page, "**/functions/v1/list-integrations?*") as refetch:
        assert live.proxy.cut() > 0  # the stream reconnects, and the page refetches
        late = refetch.read()
        page.evaluate("hash => { location.hash = hash; }", f"{base}/acessorias")
        page.get_by_role("heading", name="Acessórias").wait_for()
        for item in late["integrations"]:
            item["display_name"] = "OneCode, resposta atrasada"
        refetch.release(json=late)
    page.wait_for_timeout(500)
    assert page.get_by_text("OneCode, resposta atrasada").count() == 0
    assert page.get_by_role("heading", name="Acessórias").count() == 1


def test_a_member_sees_only_their_tenant_and_cannot_act(page: Any, live: LiveStack) -> None:
    sign_in(page, live, "acme-member")
    options = page.get_by_label("Organização").locator("option").all_inner_texts()
    assert options == [ACME.name]
    executar = card(page, "acessorias").get_by_role("button", name="Executar")
    assert executar.is_disabled()  # members see, admins act
    before = len(jobs_of(live, ACME, "acessorias"))
    executar.evaluate("b => b.removeAttribute('disabled')")  # forced visible and enabled
    executar.click()
    refusal = page.get_by_test_id("toast-error")
    refusal.wait_for()
    assert "Permissão negada" in refusal.inner_text()
    assert len(jobs_of(live, ACME, "acessorias")) == before  # the server refused it
    # Tenant B by editing the URL: nothing of it is shown, and its reads are refused.
    page.goto(f"{live.dashboard}#/t/{GLOBEX.id}/integracoes")
    page.get_by_test_id("no-access").wait_for()
    assert page.locator("article.card").count() == 0
    assert GLOBEX.name not in page.content()
    status = page.evaluate(
        """async (t) => (await fetch(`../list-integrations?tenant_id=${t}`,
              {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('syncq.token')}})).status""",
        str(GLOBEX.id),
    )
    assert status == 403
    page.goto(f"{live.dashboard}#/t/{GLOBEX.id}/integracoes/acessorias/execucoes")
    page.get_by_test_id("no-access").wait_for()
    assert page.locator("table").count() == 0


def test_server_failures_are_told_in_portuguese(page: Any, live: LiveStack) -> None:
    """A 5xx is told in Portuguese, never as the server's English message: the remote down
    (502 upstream_error), the database busy (503 database_unavailable, what a function answers
    on a lock or statement timeout) and a proxy's own HTML page."""
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/sync-monitor")
    page.get_by_test_id("mapping").wait_for()
    told = page.get_by_test_id("toast-error")
    live.knobs("gestao-scouter", error_rate=1.0)  # the remote project answers 5xx
    try:
        with page.expect_response("**/reload-gestao-scouter-schema-cache") as answer:
            page.get_by_role("button", name="Recarregar Cache").click()
        english = answer.value.json()["error"]["message"]
        assert answer.value.status == 502 and "answering HTTP" in english
        told.wait_for()
        assert told.inner_text().startswith("Um serviço externo falhou")
        assert english not in told.inner_text()
    finally:
        live.reset("gestao-scouter")
    page.get_by_role("button", name="Fechar aviso").click()
    busy = {"error": {"code": "database_unavailable", "message": "The database is busy."}}
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    answers = {"**/run-integration": {"status": 503, "json": busy, "headers": {"Retry-After": "5"}},
               "**/integration-schedules?*": {"status": 502, "body": html,
                                            "content_type": "text/html"}}  # fmt: skip
    for pattern, fake in answers.items():
        page.route(pattern, lambda route, _, fake=fake: route.fulfill(**fake))
    page.goto(f"{live.dashboard}#/t/{ACME.id}/integracoes")
    card(page, "onecode").get_by_role("button", name="Executar").click()
    told.wait_for()
    assert told.inner_text().startswith("O banco de dados está temporariamente indisponível")
    page.get_by_role("button", name="Fechar aviso").click()
    page.goto(f"{live.dashboard}#/t/{ACME.id}/integracoes/onecode/agendamento")
    refused = page.get_by_role("alert").filter(has_text="servidor")
    refused.wait_for()
    assert refused.inner_text().startswith("O servidor não respondeu como esperado")
    assert "Bad Gateway" not in page.content()


def test_a_refused_form_names_its_field_in_portuguese(page: Any, live: LiveStack) -> None:
    """A 422 on a form names the field in Portuguese, never pydantic's English message
    ("Value error, not a valid cron expression: Bad hour" was shown as is)."""
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/bomcontrole/agendamento")
    page.get_by_label("Expressão cron (5 campos)").fill("0 25 * * *")
    with page.expect_response("**/integration-schedules") as answer:
        page.get_by_role("button", name="Salvar agendamento").click()
    english = answer.value.json()["error"]["details"][0]["message"]
    assert answer.value.status == 422 and "not a valid cron expression" in english
    told = page.get_by_role("alert").filter(has_text="Dados inválidos")
    told.wait_for()
    assert "expressão cron" in told.inner_text(), told.inner_text()
    assert english not in told.inner_text() and "Value error" not in told.inner_text()
    assert live.rows("SELECT 1 FROM integration_schedules WHERE tenant_id = %s", ACME.id) == []
    page.get_by_role("tab", name="Alertas").click()
    page.get_by_label("E-mails (um por linha)").fill("not-an-address")
    with page.expect_response("**/integration-alerts") as answer:
        page.get_by_role("button", name="Salvar alertas").click()
    assert answer.value.status == 422
    told.wait_for()
    assert "e-mails" in told.inner_text() and "expected" not in told.inner_text(), told.inner_text()


# -- Detalhe ----------------------------------------------------------------------------------


def test_execucoes_lists_runs_with_attempts_times_and_trigger_and_filters(
    page: Any, live: LiveStack
) -> None:
    for i in range(23):  # more than a page: keyset paging
        scheduled = i % 3 == 0
        live.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, progress,"
            " execution_time_ms, error_message, trigger, scheduled_for, created_at, started_at,"
            " finished_at) VALUES (%s, 'acessorias', %s, %s, 100, 1500, %s, %s,"
            " CASE WHEN %s THEN date_trunc('hour', now()) - make_interval(hours => %s) END,"
            " now() - make_interval(hours => %s), now() - make_interval(hours => %s),"
            " now() - make_interval(hours => %s))",
            ACME.id,
            "error" if i % 4 == 0 else "success",
            2 if i % 4 == 0 else 1,
            "HTTP 503 da Acessórias" if i % 4 == 0 else None,
            "schedule" if scheduled else "manual",
            scheduled,
            30 + i,
            30 + i,
            30 + i,
            30 + i,
        )
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/acessorias/execucoes")
    table = page.get_by_test_id("runs")
    rows = table.locator("tbody tr[data-job]")
    rows.first.wait_for()
    assert page.get_by_role("tab", name="Execuções").get_attribute("aria-selected") == "true"
    assert rows.count() == 20
    headers = table.locator("thead th").all_inner_texts()
    assert headers[:6] == [
        "Data",
        "Status",
        "Progresso",
        "Tempo de execução",
        "Tentativas",
        "Gatilho",
    ]
    page.get_by_role("button", name="Carregar mais").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=runs] tbody tr[data-job]').length > 20"
    )
    failed = table.locator("tbody tr[data-status='error']").first
    assert "2 de 3" in failed.inner_text() and "1,5 s" in failed.inner_text()
    page.get_by_label("Status").select_option("error")
    page.wait_for_function(
        "() => { const r = [...document.querySelectorAll('[data-testid=runs] tbody tr[data-job]')];"
        " return r.length === 6 && r.every(x => x.dataset.status === 'error'); }"
    )
    page.get_by_label("Gatilho").select_option("schedule")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=runs] tbody tr[data-job]').length === 2"
    )
    assert all("Agendamento" in t for t in rows.all_inner_texts())
    rows.first.get_by_role("button", name="Ver erro").click()
    assert "HTTP 503 da Acessórias" in page.get_by_test_id("job-error").inner_text()
    page.get_by_role("dialog").get_by_role("button", name="Fechar", exact=True).click()
    page.get_by_role("dialog").wait_for(state="hidden")
    # The tabs work from the keyboard (arrow keys move and select).
    page.get_by_role("tab", name="Execuções").focus()
    page.keyboard.press("ArrowLeft")
    page.get_by_role("tab", name="Visão Geral").wait_for()
    page.wait_for_function("() => location.hash.endsWith('/visao-geral')")


def test_visao_geral_charts_the_metrics_and_degrades_without_them(
    page: Any, live: LiveStack
) -> None:
    sign_in(page, live, "acme-member", f"#/t/{ACME.id}/integracoes/acessorias/visao-geral")
    page.get_by_test_id("metrics").wait_for()  # the real integration-metrics answers
    page.locator(".chart canvas").wait_for()
    series = [{"day": f"2026-11-{d:02d}", "runs": d % 5 + 1, "successes": d % 5, "errors": 1,
               "p95_ms": 900 + d * 10} for d in range(1, 31)]  # fmt: skip
    body = {"providers": [{"provider_slug": "acessorias", "runs": 90, "successes": 60, "errors": 30,
                           "success_rate": 0.6667, "p50_ms": 700, "p95_ms": 2400,
                           "last_success_at": "2026-11-30T12:00:00Z", "freshness": "on_time",
                           "queue": {"depth": 0, "oldest_due_age_s": None}}],
            "exports": [], "series": series}  # fmt: skip
    page.route("**/integration-metrics?*", lambda route: route.fulfill(json=body))
    page.reload()
    stats = page.get_by_test_id("metrics")
    stats.wait_for()
    text = stats.inner_text()
    assert "90" in text and "66,7%" in text and "700 ms" in text and "2,4 s" in text
    assert "Em dia" in text and "on_time" not in text  # the freshness in Portuguese
    page.locator(".chart canvas").wait_for()
    missing = {"error": {"code": "not_found", "message": "No such function."}}
    page.unroute("**/integration-metrics?*")
    page.route("**/integration-metrics?*", lambda route: route.fulfill(status=404, json=missing))
    page.reload()
    page.get_by_test_id("metrics-unavailable").wait_for()  # a deployment without it


def test_visao_geral_counts_a_run_that_ends_while_it_is_open(page: Any, live: LiveStack) -> None:
    """The numbers follow the runs live: a run started and ended on the open page is counted
    without a reload."""
    wait_idle(live, ACME, "onecode")
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/onecode/visao-geral")
    runs = page.get_by_test_id("metrics").locator(".stat .value").first
    runs.wait_for()
    before = int(runs.inner_text().replace(".", ""))
    page.get_by_role("button", name="Executar Agora").click()
    wait_until(lambda: latest(live, ACME, "onecode").get("status") == "success", 60, "the run")
    page.locator("h1").get_by_test_id("status").filter(has_text="Concluído").wait_for()
    page.wait_for_function(
        "n => document.querySelector('[data-testid=metrics] .stat .value').textContent === n",
        arg=f"{before + 1:,}".replace(",", "."), timeout=5_000,
    )  # fmt: skip


def test_the_chart_shows_utc_days_in_a_brazilian_browser(browser: Any, live: LiveStack) -> None:
    """The series' days are UTC days; shown in the browser's zone (UTC−3) each moved a day
    back, while the table beside the chart said the right day."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR",
                                  timezone_id="America/Sao_Paulo")  # fmt: skip
    page = context.new_page()
    try:
        sign_in(page, live, "acme-member", f"#/t/{ACME.id}/integracoes/acessorias/visao-geral")
        series = [{"day": "2026-11-30", "runs": 2, "successes": 1, "errors": 1, "p95_ms": 900}]
        body = {"providers": [], "exports": [], "series": series}
        page.route("**/integration-metrics?*", lambda route: route.fulfill(json=body))
        page.reload()
        page.locator(".chart canvas").wait_for()
        over = page.locator(".u-over").bounding_box()
        page.mouse.move(over["x"] + over["width"] / 2, over["y"] + over["height"] / 2)
        day = page.locator(".u-legend .u-value").first.inner_text()
        assert day.startswith("2026-11-30"), day
    finally:
        context.close()


def test_the_chart_names_its_days_day_first(page: Any, live: LiveStack) -> None:
    """The x axis said days month first, as uPlot does by default ("12/4" for 4 December,
    which a Brazilian reads as 12 April): it says them day first, "04/12"."""
    page.add_init_script(
        """window.__drawn = [];
        const fill = CanvasRenderingContext2D.prototype.fillText;
        CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
          window.__drawn.push(String(text)); return fill.call(this, text, ...rest);
        };"""
    )  # every text the chart draws on its canvas
    sign_in(page, live, "acme-member", f"#/t/{ACME.id}/integracoes/acessorias/visao-geral")
    series = [{"day": f"2026-11-{d:02d}", "runs": 2, "successes": 1, "errors": 1, "p95_ms": 900}
              for d in range(1, 31)]  # fmt: skip
    body = {"providers": [], "exports": [], "series": series}
    page.route("**/integration-metrics?*", lambda route: route.fulfill(json=body))
    page.reload()
    page.locator(".chart canvas").wait_for()
    page.wait_for_function("() => window.__drawn.includes('execuções')")  # the axes are drawn
    days = [t for t in page.evaluate("window.__drawn") if re.fullmatch(r"\d{1,2}/\d{1,2}", t)]
    assert days, page.evaluate("window.__drawn")
    assert all(t.endswith("/11") for t in days), days  # November's days, day first


def test_a_schedule_every_minute_runs_live(page: Any, live: LiveStack) -> None:
    wait_idle(live, GLOBEX, "acessorias")
    sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/acessorias/agendamento")
    page.get_by_role("button", name="A cada minuto").click()
    page.get_by_label("Fuso horário").fill("America/Sao_Paulo")
    page.get_by_role("button", name="Salvar agendamento").click()
    page.get_by_test_id("next-runs").locator("li").nth(4).wait_for()
    assert page.get_by_test_id("next-runs").locator("li").count() == 5
    (schedule,) = live.rows(
        "SELECT cron, due_at FROM integration_schedules WHERE tenant_id = %s", GLOBEX.id
    )
    assert schedule["cron"] == "* * * * *"
    page.get_by_role("link", name="← Integrações").click()
    acessorias = card(page, "acessorias")
    acessorias.get_by_test_id("next-run").wait_for()
    # Two sweeps, as Cloud Scheduler would send them a minute apart; the schedule's minute
    # is made to have come instead of waiting for it: its next occurrence becomes the latest
    # minute already due (the spread offset included) and its due time now.
    for _ in range(2):
        live.execute(
            "UPDATE integration_schedules"
            " SET next_run_at = date_trunc('minute', now() - make_interval(secs => offset_s)),"
            " due_at = now() - interval '1 second' WHERE tenant_id = %s", GLOBEX.id,
        )  # fmt: skip
        live.sweep()
        if any(j["trigger"] == "schedule" for j in jobs_of(live, GLOBEX, "acessorias")):
            break
    # Its next minute is put an hour away: the stack's own minute sweep would otherwise run
    # the next occurrence while the page is read, and the schedule's last run shown below
    # would be that one, still pending or running.
    live.execute(
        "UPDATE integration_schedules SET next_run_at = next_run_at + interval '1 hour',"
        " due_at = due_at + interval '1 hour' WHERE tenant_id = %s", GLOBEX.id,
    )  # fmt: skip
    acessorias.get_by_test_id("status").filter(
        has_text=re.compile("Processando...|Concluído")
    ).wait_for()
    acessorias.get_by_test_id("status").filter(has_text="Concluído").wait_for(timeout=60_000)
    scheduled = [j for j in jobs_of(live, GLOBEX, "acessorias") if j["trigger"] == "schedule"]
    assert len(scheduled) == 1 and scheduled[0]["status"] == "success"
    page.goto(f"{live.dashboard}#/t/{GLOBEX.id}/integracoes/acessorias/execucoes")
    page.get_by_label("Gatilho").select_option("schedule")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=runs] tbody tr[data-job]').length === 1"
    )
    page.get_by_role("tab", name="Agendamento").click()  # the last run's status, in Portuguese
    page.get_by_text("última:").filter(has_text="(Concluído)").wait_for()
    assert "(success)" not in page.get_by_role("tabpanel").inner_text()
    live.execute("DELETE FROM integration_schedules WHERE tenant_id = %s", GLOBEX.id)


def test_agendamento_tells_a_skipped_or_missed_occurrence_in_portuguese(
    page: Any, live: LiveStack
) -> None:
    """The schedule's last occurrence may have made no job: skipped (a run was live) or
    missed. Its outcome is told in Portuguese; the tab showed '(skipped)'."""
    live.execute(
        "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone,"
        " next_run_at, due_at, last_run_at, last_outcome)"
        " VALUES (%s, 'bomcontrole', '0 2 * * *', 'UTC', now() + interval '1 day',"
        " now() + interval '1 day', now() - interval '1 hour', 'skipped')", ACME.id,
    )  # fmt: skip
    try:
        sign_in(page, live, "acme-member", f"#/t/{ACME.id}/integracoes/bomcontrole/agendamento")
        told = page.get_by_text("última:")
        told.wait_for()
        assert "(skipped)" not in told.inner_text()
        assert "(Pulada: uma execução estava em andamento)" in told.inner_text()
        live.execute(
            "UPDATE integration_schedules SET last_outcome = 'missed'"
            " WHERE tenant_id = %s AND provider_slug = 'bomcontrole'", ACME.id,
        )  # fmt: skip
        page.reload()
        told.wait_for()
        assert "(Perdida)" in told.inner_text(), told.inner_text()
    finally:
        live.execute(
            "DELETE FROM integration_schedules WHERE tenant_id = %s"
            " AND provider_slug = 'bomcontrole'", ACME.id,
        )  # fmt: skip


def test_agendamento_not_read_says_so_and_offers_no_form_over_the_schedule(
    page: Any, live: LiveStack
) -> None:
    """The schedule could not be read (503): the tab said "Esta integração não tem
    agendamento" and offered "Agendar" with its defaults, whose "Salvar" replaced the real
    schedule. It says only why, and "Tentar de novo" shows the schedule once it answers."""
    live.execute(
        "INSERT INTO integration_schedules (tenant_id, provider_slug, cron, timezone,"
        " next_run_at, due_at) VALUES (%s, 'bomcontrole', '30 4 * * *', 'UTC',"
        " now() + interval '1 day', now() + interval '1 day')", ACME.id,
    )  # fmt: skip
    try:
        sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/bomcontrole")
        busy = {"error": {"code": "database_unavailable", "message": "The database is busy."}}
        page.route("**/integration-schedules?*", lambda route: route.fulfill(status=503, json=busy))
        page.get_by_role("tab", name="Agendamento").click()
        told = page.get_by_role("alert").filter(has_text="O banco de dados está temporariamente")
        told.wait_for()
        assert page.get_by_text("não tem agendamento").count() == 0
        assert page.get_by_role("button", name="Salvar agendamento").count() == 0
        page.unroute("**/integration-schedules?*")
        page.get_by_role("button", name="Tentar de novo").click()
        page.get_by_text("Agendada:").filter(has_text="30 4 * * *").wait_for()
        assert page.get_by_label("Expressão cron (5 campos)").input_value() == "30 4 * * *"
        assert page.get_by_role("alert").filter(has_text="O banco de dados").count() == 0
    finally:
        live.execute(
            "DELETE FROM integration_schedules WHERE tenant_id = %s"
            " AND provider_slug = 'bomcontrole'", ACME.id,
        )  # fmt: skip


def test_a_double_click_on_the_schedule_and_alert_forms_writes_once(
    page: Any, live: LiveStack
) -> None:
    """Two clicks in one turn of the page on "Remover" sent two removals: the refused second
    one (404) put "Não encontrado." under the form after "Agendamento removido.". On
    "Salvar agendamento" and "Salvar alertas" they saved twice and said so twice. One
    request goes, and only its outcome is told."""
    writes: list[str] = []
    page.on(
        "request",
        lambda r: writes.append(f"{r.method} {r.url}") if r.method in ("PUT", "DELETE") else None,
    )
    twice = "b => { b.click(); b.click(); }"  # both in one turn of the page
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/onecode/agendamento")
        page.get_by_role("button", name="Diariamente às 02:00").click()
        page.get_by_role("button", name="Salvar agendamento").evaluate(twice)
        page.get_by_test_id("next-runs").wait_for()
        page.get_by_role("button", name="Remover").and_(page.locator(":enabled")).wait_for()
        # Counted now: a toast lasts 7 s, which the removal below can outlast when loaded.
        assert (
            page.get_by_test_id("toast-success").filter(has_text="Agendamento salvo").count() == 1
        )
        page.get_by_role("button", name="Remover").evaluate(twice)  # confirm: accepted
        page.get_by_text("Esta integração não tem agendamento.").wait_for()
        page.get_by_role("button", name="Salvar agendamento").and_(
            page.locator(":enabled")
        ).wait_for()
        assert page.get_by_role("alert").filter(has_text="Não encontrado").count() == 0
        assert [w.split()[0] for w in writes] == ["PUT", "DELETE"], writes
        assert live.rows(
            "SELECT 1 FROM integration_schedules WHERE tenant_id = %s"
            " AND provider_slug = 'onecode'",
            GLOBEX.id,
        ) == []  # fmt: skip
        writes.clear()
        page.get_by_role("tab", name="Alertas").click()
        page.get_by_role("button", name="Salvar alertas").evaluate(twice)
        page.get_by_test_id("toast-success").filter(has_text="Alertas salvos").wait_for()
        page.get_by_role("button", name="Salvar alertas").and_(page.locator(":enabled")).wait_for()
        assert page.get_by_test_id("toast-success").filter(has_text="Alertas salvos").count() == 1
        assert len(writes) == 1, writes
    finally:
        live.execute(
            "DELETE FROM integration_schedules WHERE tenant_id = %s AND provider_slug = 'onecode'",
            GLOBEX.id,
        )  # fmt: skip


def test_alertas_tell_a_suppressed_alert_in_portuguese(page: Any, live: LiveStack) -> None:
    """An alert no channel took (no recipient for its event) ends 'suppressed': the recent
    alerts say so in Portuguese, not the raw status."""
    live.execute(
        "INSERT INTO alert_outbox (tenant_id, provider_slug, event, failures, status,"
        " finished_at) VALUES (%s, 'bomcontrole', 'failing', 1, 'suppressed', now())", ACME.id,
    )  # fmt: skip
    try:
        sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/bomcontrole/alertas")
        row = page.get_by_role("row").filter(has_text="Primeira falha")
        row.wait_for()
        assert "suppressed" not in row.inner_text()
        assert "Sem destinatário" in row.inner_text(), row.inner_text()
    finally:
        live.execute(
            "DELETE FROM alert_outbox WHERE tenant_id = %s AND status = 'suppressed'", ACME.id
        )


def test_the_agendamento_tab_follows_the_runs_of_its_integration(
    page: Any, live: LiveStack
) -> None:
    """A run of the integration ends: the tab reads its schedule again (its last run, its
    next ones), as the Integrações card does; it loaded once and went stale."""
    import httpx

    wait_idle(live, ACME, "onecode")
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/onecode/agendamento")
    page.get_by_role("heading", name="Próximas execuções").wait_for()
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "integration-schedules" in r.url else None)
    users = httpx.get(f"{live.gateway}/_local/demo-tokens", timeout=10).json()["users"]
    token = next(u["token"] for u in users if u["name"] == "acme-admin")
    started = httpx.post(f"{live.base}/run-integration", timeout=10,
                         json={"tenant_id": str(ACME.id), "provider_slug": "onecode"},
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert started.status_code == 202, started.text
    wait_idle(live, ACME, "onecode")
    wait_until(lambda: page.evaluate("1") == 1 and len(asked) > 0, 30, "the schedule read again")


# -- Sync Monitor → Gestão Scouter ---------------------------------------------------------------


def test_gestao_scouter_export_progress_pause_resume(page: Any, live: LiveStack) -> None:
    with psycopg.connect(live.database_url) as conn:
        demo.seed_leads(conn, ACME.id, 1500, date(2024, 1, 1), 30)
    live.knobs("gestao-scouter", latency_ms=120)  # 30 batches of 50: a few seconds to watch
    try:
        sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/sync-monitor")
        page.get_by_role("tab", name="Gestão Scouter").wait_for()
        page.get_by_label("Data inicial").fill("2024-01-01")
        page.get_by_label("Data final").fill("2024-12-31")
        page.get_by_role("button", name="Iniciar exportação").click()
        status = page.get_by_test_id("export-status")
        status.filter(has_text="Exportando").wait_for(timeout=30_000)
        page.wait_for_function(
            "() => /^[1-9]/.test(document.querySelector('[data-testid=exported]').textContent)"
        )
        page.get_by_role("button", name="Pausar").click()
        status.filter(has_text="Pausado").wait_for(timeout=30_000)
        paused_at = page.get_by_test_id("exported").inner_text()
        assert not paused_at.startswith("1.500")
        page.get_by_role("button", name="Retomar").click()
        status.filter(has_text="Concluído").wait_for(timeout=90_000)
    finally:
        live.reset("gestao-scouter")
    assert page.get_by_test_id("exported").inner_text() == "1.500 / 1.500"
    assert page.get_by_test_id("errors").inner_text() == "0"
    (job,) = live.rows("SELECT * FROM gestao_scouter_export_jobs WHERE tenant_id = %s", ACME.id)
    assert job["status"] == "completed" and job["exported_leads"] == 1500
    # The history lists it (the function's GET, newest first), finished.
    listed = page.get_by_test_id("export-history").locator(f"tr[data-export='{job['id']}']")
    listed.filter(has_text="Concluído").wait_for(timeout=10_000)
    assert "1.500 / 1.500" in listed.inner_text() and "01/01/2024" in listed.inner_text()
    assert page.get_by_role("heading", name="Histórico de exportações").is_visible()
    page.get_by_role("button", name="Testar Conexão").click()
    checks = page.get_by_test_id("checks").locator("li")
    checks.first.wait_for(timeout=30_000)
    assert checks.count() == 6
    assert page.locator("[data-check='leads_writable']").get_attribute("data-ok") == "true"


def test_testar_conexao_tells_each_check_in_portuguese(page: Any, live: LiveStack) -> None:
    """The connection checks read in Portuguese: the server's English detail ("The key was
    accepted.", "http://… looks right.") was shown under each Portuguese name; a failure
    keeps it, folded away as the technical detail."""
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/sync-monitor")
    page.get_by_test_id("mapping").wait_for()
    checks = page.get_by_test_id("checks")
    with page.expect_response("**/validate-gestao-scouter-config") as answer:
        page.get_by_role("button", name="Testar Conexão").click()
    checks.locator("li").nth(5).wait_for(timeout=30_000)
    english = [c["detail"] for c in answer.value.json()["checks"]]
    assert "The key was accepted." in english
    shown = checks.inner_text()
    assert [d for d in english if d in shown] == [], shown
    assert "A chave foi aceita." in shown
    live.knobs("gestao-scouter", error_rate=1.0)  # the remote project answers 5xx
    try:
        with page.expect_response("**/validate-gestao-scouter-config") as answer:
            page.get_by_role("button", name="Testar Conexão").click()
        failed = page.locator("[data-check='host_reachable'][data-ok='false']")
        failed.wait_for(timeout=30_000)
    finally:
        live.reset("gestao-scouter")
    english = [c["detail"] for c in answer.value.json()["checks"] if not c["ok"]]
    shown = checks.inner_text()
    assert english and [d for d in english if d in shown] == [], shown
    failed.get_by_text("Detalhe técnico").click()  # the server's own words, when asked
    assert english[0] in failed.inner_text()


def test_an_export_paused_by_a_fault_says_why_in_portuguese(page: Any, live: LiveStack) -> None:
    """An export the runner pauses itself (here: a column dropped from the remote table while
    the schema cache still lists it) showed the server's English reason ("Gestão Scouter
    schema does not fit (…). Validate the schema, …"), in the Sync Monitor and in the alert it
    raised (Alertas); the page says it in Portuguese and keeps the server's words folded away
    as the technical detail."""
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
    remote = psycopg.conninfo.make_conninfo(
        live.database_url, dbname=f"{live.env['GESTAO_SCOUTER_DATABASE']}_2"
    )
    sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/sync-monitor")
    page.get_by_test_id("schema-report").wait_for()  # the columns are cached by now
    with psycopg.connect(remote, autocommit=True) as conn:
        conn.execute("ALTER TABLE leads RENAME COLUMN scouter TO scouter_gone")
    try:
        page.get_by_role("button", name="Iniciar exportação").click()
        page.get_by_test_id("export-status").filter(has_text="Pausado").wait_for(timeout=30_000)
        reason = page.get_by_test_id("export-job").locator(".notice.warn")
        reason.wait_for()
    finally:
        with psycopg.connect(remote, autocommit=True) as conn:
            conn.execute("ALTER TABLE leads RENAME COLUMN scouter_gone TO scouter")
    (job,) = live.rows(
        "SELECT pause_reason, pause_code FROM gestao_scouter_export_jobs WHERE tenant_id = %s",
        GLOBEX.id,
    )
    english = job["pause_reason"]
    assert "schema does not fit" in english and job["pause_code"] == "schema"
    shown = reason.inner_text()
    assert english not in shown and "Validate" not in shown, shown
    assert "o schema do Gestão Scouter não corresponde ao mapeamento" in shown
    reason.get_by_text("Detalhe técnico").click()  # the server's own words, when asked
    assert english in reason.inner_text()
    # The alert it raised, in the Alertas tab's recent alerts, says it the same way.
    page.goto(f"{live.dashboard}#/t/{GLOBEX.id}/integracoes/onecode/alertas")
    alert = page.locator("tr", has_text="Exportação pausada").first
    alert.wait_for()
    assert english not in alert.inner_text() and "Validate" not in alert.inner_text()
    assert "o schema do Gestão Scouter não corresponde" in alert.inner_text()
    live.execute("DELETE FROM alert_outbox WHERE tenant_id = %s", GLOBEX.id)
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)


def test_an_export_retrying_a_failed_batch_is_not_said_to_have_failed(
    page: Any, live: LiveStack
) -> None:
    """A batch the remote kept refusing (5xx past the client's retries) leaves the export
    pending, due again after its backoff, with the batch's error kept on the row: the Sync
    Monitor said "A exportação falhou." in red beside "Na fila", though the export goes on by
    itself; only a failed export failed."""
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
    live.knobs("gestao-scouter-2", latency_ms=150)  # 100 batches of 50: seconds to follow
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/sync-monitor")
        page.get_by_role("button", name="Iniciar exportação").click()
        status = page.get_by_test_id("export-status")
        status.filter(has_text="Exportando").wait_for(timeout=30_000)
        live.knobs("gestao-scouter-2", error_rate=1.0)  # the start's checks passed: now 5xx
        error = page.get_by_test_id("export-error")
        error.wait_for(timeout=60_000)
    finally:
        live.reset("gestao-scouter-2")
    (job,) = live.rows(
        "SELECT status, error_message FROM gestao_scouter_export_jobs WHERE tenant_id = %s",
        GLOBEX.id,
    )
    assert job["status"] in ("pending", "running") and job["error_message"], job
    shown = error.inner_text()
    assert "A exportação falhou" not in shown, shown
    assert "tentará de novo" in shown, shown
    live.execute("DELETE FROM alert_outbox WHERE tenant_id = %s", GLOBEX.id)
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)


def test_an_export_started_while_the_page_opens_is_followed_to_its_end(
    page: Any, live: LiveStack
) -> None:
    """The Sync Monitor reads the tenant's export as it opens; that answer ("no export yet"),
    arriving after the answer to a click on Iniciar, must not put the older state back, which
    would also stop following the new export."""
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
    live.knobs("gestao-scouter-2", latency_ms=150)  # 100 batches of 50: seconds to follow
    try:
        sign_in(page, live, "globex-admin")
        status = page.get_by_test_id("export-status")
        with HeldAnswer(
            page, "**/functions/v1/export-to-gestao-scouter-batch", '"action":"status"'
        ) as opening:
            page.goto(f"{live.dashboard}#/t/{GLOBEX.id}/sync-monitor")
            assert opening.read()["error"]["code"] == "not_found"
            page.get_by_role("button", name="Iniciar exportação").click()
            status.filter(has_text="Exportando").wait_for(timeout=30_000)  # followed by then
            opening.release()  # the opening's answer, late
        page.wait_for_timeout(500)
        assert page.get_by_text("Nenhuma exportação ainda.").count() == 0
        status.filter(has_text="Concluído").wait_for(timeout=60_000)
    finally:
        live.reset("gestao-scouter-2")
    (job,) = live.rows("SELECT * FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
    assert job["status"] == "completed" and job["exported_leads"] == job["total_leads"] > 0
    total = f"{job['total_leads']:,}".replace(",", ".")
    assert page.get_by_test_id("exported").inner_text() == f"{total} / {total}"


def test_mapping_exports_to_a_file_and_imports_back(
    page: Any, live: LiveStack, tmp_path: Path
) -> None:
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/sync-monitor")
    mapping = page.get_by_test_id("mapping")
    mapping.wait_for()
    rows = mapping.locator("tbody tr")
    original = rows.count()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Exportar JSON").click()
    download = download_info.value
    assert download.suggested_filename == "mapeamento-gestao-scouter-acme.json"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    exported = json.loads(saved.read_text())["fieldMappings"]
    assert len(exported) == original and exported["celular"] == "phone"
    page.get_by_role("button", name="Remover celular").click()
    assert rows.count() == original - 1
    page.get_by_test_id("mapping-file").set_input_files(str(saved))
    page.wait_for_function(
        f"() => document.querySelectorAll('[data-testid=mapping] tbody tr').length === {original}"
    )
    assert page.get_by_label("Coluna remota de celular").input_value() == "phone"
    page.get_by_role("button", name="Validar Schema").click()
    page.get_by_test_id("schema-report").filter(has_text="Schema válido").wait_for(timeout=30_000)
    bad = tmp_path / "ruim.json"
    bad.write_text("[1, 2]")
    page.get_by_test_id("mapping-file").set_input_files(str(bad))
    page.get_by_text("Arquivo inválido").wait_for()
    assert rows.count() == original  # a bad file changes nothing


def test_a_mapping_typed_with_spaces_around_a_name_is_saved_trimmed(
    page: Any, live: LiveStack
) -> None:
    """A column name typed (or pasted) with a space around it is saved as the name: the
    server no longer trims what the document refuses, so the page does."""
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/sync-monitor")
    page.get_by_test_id("mapping").wait_for()
    try:
        page.get_by_label("Coluna remota de celular").fill(" phone ")
        first = page.get_by_label("Campo local 1", exact=True)
        first.fill(first.input_value() + " ")
        with page.expect_response("**/validate-gestao-scouter-schema") as answer:
            page.get_by_role("button", name="Salvar").click()
        assert answer.value.status == 200, answer.value.text()
        page.get_by_test_id("toast-success").filter(has_text="Mapeamento salvo").wait_for()
        stored = live.rows(
            "SELECT local_field, remote_field FROM gestao_scouter_field_mappings"
            " WHERE tenant_id = %s",
            ACME.id,
        )
        assert {r["local_field"]: r["remote_field"] for r in stored}["celular"] == "phone"
        assert all(r["local_field"] == r["local_field"].strip() for r in stored)
    finally:
        live.execute("DELETE FROM gestao_scouter_field_mappings WHERE tenant_id = %s", ACME.id)


# -- Créditos -------------------------------------------------------------------------------------


def test_credits_create_a_render_watch_it_finish_and_see_the_ledger(
    page: Any, live: LiveStack
) -> None:
    sign_in(page, live, "globex-member", "#/creditos")
    balance = page.get_by_test_id("balance")
    page.wait_for_function(
        "() => /\\d/.test(document.querySelector('[data-testid=balance]').textContent)"
    )
    before = int(balance.inner_text().replace(".", ""))
    workflow = page.get_by_label("Workflow")
    original = workflow.input_value()
    workflow.fill("not a workflow id!")  # the browser checks the pattern before sending
    assert workflow.evaluate("e => e.validity.patternMismatch") is True
    workflow.fill(original)
    page.get_by_label("Prompt").fill("uma raposa vermelha")
    page.get_by_role("button", name="Criar e iniciar").click()
    render = page.get_by_test_id("renders").locator("tbody tr[data-job]").first
    render.wait_for()
    page.wait_for_function(
        "() => ['queued', 'starting', 'running'].includes(document.querySelector('[data-testid=renders] tbody tr[data-job]').dataset.status)"
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=renders] tbody tr[data-job]').dataset.status === 'completed'",
        timeout=60_000,
    )
    assert "Concluído" in render.inner_text()
    debit = page.get_by_test_id("ledger").locator("tbody tr[data-kind='debit']")
    debit.first.wait_for()
    assert "−10" in debit.first.inner_text()
    assert int(balance.inner_text().replace(".", "")) == before - 10
    (job,) = live.rows("SELECT status FROM ai_jobs WHERE user_id = %s", GLOBEX.member)
    assert job["status"] == "completed"


def test_a_render_created_while_the_page_opens_stays_listed(page: Any, live: LiveStack) -> None:
    """Créditos read the caller's renders as the page opens; that answer (without the render
    created meanwhile), arriving after the one read after the creation, must not drop it."""
    renders = "SELECT id FROM ai_jobs WHERE user_id = %s"
    sign_in(page, live, "acme-member")
    with HeldAnswer(page, "**/functions/v1/runninghub-queue-manager/jobs") as opening:
        page.goto(f"{live.dashboard}#/creditos")
        before = {j["id"] for j in opening.read()["jobs"]}
        page.get_by_label("Prompt").fill("um farol ao entardecer")
        page.get_by_role("button", name="Criar e iniciar").click()
        wait_until(lambda: len(live.rows(renders, ACME.member)) > len(before), 30, "the render")
        [new] = [
            str(r["id"]) for r in live.rows(renders, ACME.member) if str(r["id"]) not in before
        ]
        row = page.get_by_test_id("renders").locator(f"tr[data-job='{new}']")
        row.wait_for()  # listed by the read made after the creation
        opening.release()  # the opening's answer, late
    page.wait_for_timeout(500)
    assert row.count() == 1


def test_a_failed_render_says_so_in_portuguese(page: Any, live: LiveStack) -> None:
    """A failed render showed RunningHub's English words under its badge ("The RunningHub
    task failed at node 6: …"): the badge says it failed, the words stay folded away as the
    technical detail, as the exports' do."""
    english = "The RunningHub task failed at node 6: CUDA out of memory"
    (made,) = live.rows(
        "INSERT INTO ai_jobs (job_table, user_id, workflow_id, status, error_message,"
        " completed_at) VALUES ('image_jobs', %s, '1904136902449209346', 'failed', %s, now())"
        " RETURNING id", ACME.admin, english,
    )  # fmt: skip
    try:
        sign_in(page, live, "acme-admin", "#/creditos")
        row = page.get_by_test_id("renders").locator(f"tr[data-job='{made['id']}']")
        row.wait_for()
        assert "Falhou" in row.inner_text()
        assert not row.get_by_text(english).is_visible(), row.inner_text()
        row.get_by_text("Detalhe técnico").click()
        assert row.get_by_text(english).is_visible()
    finally:
        live.execute("DELETE FROM ai_jobs WHERE id = %s", made["id"])


def test_renders_and_the_ledger_say_counts_and_amounts_the_brazilian_way(
    page: Any, live: LiveStack
) -> None:
    """A render with one file said "1 arquivo(s)", and costs and ledger amounts went
    ungrouped ("1234", "−1234") beside a balance grouped as "1.234": one file is "1 arquivo",
    and every number reads with pt-BR grouping."""
    (made,) = live.rows(
        "INSERT INTO ai_jobs (job_table, user_id, workflow_id, status, outputs, completed_at)"
        " VALUES ('image_jobs', %s, '1904136902449209346', 'completed',"
        " '[{\"fileUrl\": \"https://cdn.example/a.png\", \"fileType\": \"png\"}]', now())"
        " RETURNING id", ACME.admin,
    )  # fmt: skip
    live.execute("UPDATE ai_jobs SET credits_cost = 1234 WHERE id = %s", made["id"])
    live.execute(
        "INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)"
        " VALUES (%s, 1234, 'debit', 'image_jobs', %s)", ACME.admin, made["id"],
    )  # fmt: skip
    try:
        sign_in(page, live, "acme-admin", "#/creditos")
        row = page.get_by_test_id("renders").locator(f"tr[data-job='{made['id']}']")
        row.wait_for()
        assert "1 arquivo" in row.inner_text() and "arquivo(s)" not in row.inner_text()
        assert "1.234" in row.inner_text(), row.inner_text()
        debit = page.get_by_test_id("ledger").locator("tr").filter(has_text=str(made["id"])[:8])
        assert "−1.234" in debit.inner_text(), debit.inner_text()
    finally:
        live.execute("DELETE FROM credit_ledger WHERE job_id = %s", made["id"])
        live.execute("DELETE FROM ai_jobs WHERE id = %s", made["id"])


def test_a_double_click_on_cancelar_cancels_a_render_once_and_tells_no_error(
    page: Any, live: LiveStack
) -> None:
    """Two clicks on a render's "Cancelar" sent two cancels: the second, refused (409
    job_finished), was told as an error ("A execução já terminou.") over the first one's
    "Renderização cancelada". One request goes, and only the success is told."""
    (made,) = live.rows(
        "INSERT INTO ai_jobs (job_table, user_id, workflow_id) VALUES"
        " ('image_jobs', %s, '1904136902449209346') RETURNING id", ACME.admin,
    )  # fmt: skip
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/cancel") else None)
    try:
        sign_in(page, live, "acme-admin", "#/creditos")
        row = page.get_by_test_id("renders").locator(f"tr[data-job='{made['id']}']")
        cancel = row.get_by_role("button", name="Cancelar")
        cancel.wait_for()
        cancel.evaluate("b => { b.click(); b.click(); }")  # both in one turn of the page
        page.get_by_test_id("toast-info").filter(has_text="Renderização cancelada").wait_for()
        page.locator(f"tr[data-job='{made['id']}'][data-status='cancelled']").wait_for()
        assert page.get_by_test_id("toast-error").count() == 0
        assert len(sent) == 1, sent
        (job,) = live.rows("SELECT status FROM ai_jobs WHERE id = %s", made["id"])
        assert job["status"] == "cancelled"
    finally:
        live.execute("DELETE FROM ai_jobs WHERE id = %s", made["id"])


def test_a_double_click_on_criar_e_iniciar_makes_one_render_and_one_debit(
    page: Any, live: LiveStack
) -> None:
    """Two clicks on "Criar e iniciar" in one turn of the page both submitted the form (the
    button is disabled only when the page draws again): two renders, each started, two
    debits. One render is made, started and debited."""
    renders = "SELECT id, status FROM ai_jobs WHERE user_id = %s"
    before = {r["id"] for r in live.rows(renders, GLOBEX.admin)}
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/create") else None)
    sign_in(page, live, "globex-admin", "#/creditos")
    page.get_by_test_id("renders").locator("tbody tr").first.wait_for()
    page.get_by_role("button", name="Criar e iniciar").evaluate(
        "b => { b.click(); b.click(); }"  # both in one turn of the page
    )
    page.get_by_test_id("toast-success").wait_for()
    page.get_by_role("button", name="Criar e iniciar").and_(page.locator(":enabled")).wait_for()
    made = [r for r in live.rows(renders, GLOBEX.admin) if r["id"] not in before]
    assert len(made) == 1, made
    assert len(sent) == 1, sent
    debits = live.rows(
        "SELECT amount FROM credit_ledger WHERE job_id = ANY(%s) AND kind = 'debit'",
        [r["id"] for r in made],
    )  # fmt: skip
    assert len(debits) == 1, debits
    assert page.get_by_test_id("toast-info").filter(has_text="Renderização criada").count() == 1
    wait_until(  # leaves no render holding a slot for the next test
        lambda: live.rows("SELECT status FROM ai_jobs WHERE id = %s", made[0]["id"])[0]["status"]
        in ("completed", "failed", "cancelled"),
        60, "the render's end",
    )  # fmt: skip


def test_each_submission_of_criar_e_iniciar_sends_a_fresh_idempotency_key(
    page: Any, live: LiveStack
) -> None:
    """A create retried after a lost answer must answer the same render: the page names
    each submission with a key of its own (a UUID), never reused by the next one."""
    renders = "SELECT id FROM ai_jobs WHERE user_id = %s"
    before = {r["id"] for r in live.rows(renders, GLOBEX.admin)}

    def new_renders() -> list[Any]:
        return [r["id"] for r in live.rows(renders, GLOBEX.admin) if r["id"] not in before]

    keys: list[str | None] = []
    page.on("request", lambda r: keys.append(r.headers.get("idempotency-key"))
            if r.url.endswith("/create") and r.method == "POST" else None)  # fmt: skip
    sign_in(page, live, "globex-admin", "#/creditos")
    page.get_by_test_id("renders").locator("tbody tr").first.wait_for()
    for made in (1, 2):
        page.get_by_role("button", name="Criar e iniciar").click()
        wait_until(lambda: len(new_renders()) == made, 30, "the render")  # noqa: B023
        page.get_by_role("button", name="Criar e iniciar").and_(page.locator(":enabled")).wait_for()
    assert len(keys) == 2 and keys[0] != keys[1], keys
    assert all(k is not None and str(uuid.UUID(k)) == k for k in keys), keys
    made_ids = new_renders()
    assert len(made_ids) == 2, made_ids
    stored = live.rows(
        "SELECT job_id FROM credit_idempotency_keys WHERE user_id = %s AND key = ANY(%s)",
        GLOBEX.admin, keys,
    )  # fmt: skip
    assert sorted(r["job_id"] for r in stored) == sorted(made_ids)
    wait_until(  # leaves no render holding a slot for the next test
        lambda: all(
            live.rows("SELECT status FROM ai_jobs WHERE id = %s", i)[0]["status"]
            in ("completed", "failed", "cancelled")
            for i in made_ids
        ),
        60, "the renders' end",
    )  # fmt: skip


def test_a_phone_sized_screen_fits_and_works(browser: Any, live: LiveStack) -> None:
    from tests.browser.conftest import OUTPUT

    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True,
                                  has_touch=True, locale="pt-BR")  # fmt: skip
    phone = context.new_page()
    try:
        sign_in(phone, live, "acme-member")
        card(phone, "acessorias").wait_for()
        # A mobile browser widens its layout to what overflows: compare with the screen.
        fits = "() => document.documentElement.scrollWidth <= screen.width"
        assert phone.evaluate(fits)  # no sideways scrolling of the page itself
        assert phone.get_by_role("navigation", name="Principal").is_visible()
        phone.goto(f"{live.dashboard}#/t/{ACME.id}/integracoes/acessorias/execucoes")
        phone.get_by_test_id("runs").wait_for()
        assert phone.evaluate(fits)  # wide tables scroll inside their own box
        phone.get_by_role("button", name="Sair").click()
        sign_in(phone, live, "acme-admin")  # the admin's forms and the mapping table
        for screen, ready in (("integracoes/onecode/agendamento", "Fuso horário"),
                              ("sync-monitor", "Mapeamento de campos")):  # fmt: skip
            phone.goto(f"{live.dashboard}#/t/{ACME.id}/{screen}")
            phone.get_by_text(ready).first.wait_for()
            assert phone.evaluate(fits), screen  # forms and tables stay within the screen
        phone.goto(f"{live.dashboard}#/t/{ACME.id}/integracoes")
        card(phone, "onecode").wait_for()
        OUTPUT.mkdir(parents=True, exist_ok=True)
        phone.screenshot(
            path=str(OUTPUT / "test_a_phone_sized_screen_fits_and_works.png"), full_page=True
        )
    finally:
        context.close()


def test_cancel_a_live_run_and_every_pending_one(page: Any, live: LiveStack) -> None:
    for provider in ("onecode", "acessorias", "bomcontrole"):
        wait_idle(live, ACME, provider)
    live.knobs("onecode", latency_ms=800)  # 5 pages in turn: time to cancel it
    try:
        sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/onecode/execucoes")
        page.get_by_test_id("runs").wait_for()
        page.get_by_role("button", name="Executar Agora").click()
        first = "document.querySelector('[data-testid=runs] tbody tr[data-job]')"
        page.wait_for_function(f"() => ['pending', 'running'].includes({first}?.dataset.status)")
        page.get_by_test_id("runs").locator("tbody tr[data-job]").first.get_by_role(
            "button", name="Cancelar"
        ).click()
        page.wait_for_function(f"() => {first}.dataset.status === 'canceled'", timeout=30_000)
    finally:
        live.reset("onecode")
    assert jobs_of(live, ACME, "onecode")[-1]["status"] == "canceled"
    for provider in ("acessorias", "bomcontrole"):  # queued for later: nothing claims them now
        live.execute(
            "INSERT INTO integration_jobs (tenant_id, provider_slug, run_after)"
            " VALUES (%s, %s, now() + interval '1 hour')",
            ACME.id, provider,
        )  # fmt: skip
    page.get_by_role("button", name="Cancelar todos os pendentes").click()  # confirm: accepted
    page.get_by_test_id("toast-info").filter(
        has_text="2 execuções pendentes canceladas."
    ).wait_for()
    pending = "SELECT 1 FROM integration_jobs WHERE tenant_id = %s AND status = 'pending'"
    assert live.rows(pending, ACME.id) == []


def test_a_double_click_on_a_runs_cancelar_cancels_once_and_tells_no_error(
    page: Any, live: LiveStack
) -> None:
    """Two clicks on a run's "Cancelar" (or on "Cancelar todos os pendentes") in one turn of
    the page sent two cancels: the second, refused (409 job_finished), was told as an error
    ("A execução já terminou.", "… não puderam ser canceladas") after the first one's
    success. One cancel goes, and only the success is told."""
    for provider in ("onecode", "acessorias", "bomcontrole"):  # only this test's jobs pending
        wait_idle(live, GLOBEX, provider)
    later = (
        "INSERT INTO integration_jobs (tenant_id, provider_slug, run_after)"
        " VALUES (%s, %s, now() + interval '1 hour') RETURNING id"
    )  # queued for later: nothing claims them now
    (made,) = live.rows(later, GLOBEX.id, "acessorias")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "cancel-integration-job" in r.url else None)
    sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/acessorias/execucoes")
    row = page.locator(f"tr[data-job='{made['id']}']")
    row.get_by_role("button", name="Cancelar").evaluate("b => { b.click(); b.click(); }")
    page.get_by_test_id("toast-info").filter(has_text="Execução cancelada.").wait_for()
    page.locator(f"tr[data-job='{made['id']}'][data-status='canceled']").wait_for()
    page.wait_for_timeout(500)  # a second answer would have come by now
    assert page.get_by_test_id("toast-error").count() == 0
    assert len(sent) == 1, sent
    pending = [live.rows(later, GLOBEX.id, p)[0]["id"] for p in ("onecode", "bomcontrole")]
    sent.clear()
    page.get_by_role("button", name="Cancelar todos os pendentes").evaluate(
        "b => { b.click(); b.click(); }"  # confirm: accepted, each time asked
    )
    page.get_by_test_id("toast-info").filter(has_text="pendente").wait_for()
    page.get_by_role("button", name="Cancelar todos os pendentes").and_(
        page.locator(":enabled")
    ).wait_for()
    assert page.get_by_test_id("toast-error").count() == 0
    assert len(sent) == 2, sent
    statuses = live.rows("SELECT status FROM integration_jobs WHERE id = ANY(%s)", pending)
    assert [j["status"] for j in statuses] == ["canceled", "canceled"]


def test_the_details_of_a_run_follow_it_while_open(page: Any, live: LiveStack) -> None:
    """ "Ver detalhes" opened on a live run kept the copy it was opened on: the run ended (here
    canceled elsewhere) and the table said so, while the dialog still said "Pendente"."""
    wait_idle(live, ACME, "bomcontrole")
    [job] = live.rows(  # queued for later: nothing claims it meanwhile
        "INSERT INTO integration_jobs (tenant_id, provider_slug, run_after)"
        " VALUES (%s, 'bomcontrole', now() + interval '1 hour') RETURNING id",
        ACME.id,
    )
    try:
        sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/bomcontrole/execucoes")
        page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
        row = page.locator(f"[data-testid=runs] tr[data-job='{job['id']}']")
        row.get_by_role("button", name="Ver detalhes").click()
        dialog = page.get_by_role("dialog", name="Detalhes da execução")
        dialog.get_by_text("Pendente").wait_for()
    finally:
        canceled = httpx.post(f"{live.base}/cancel-integration-job", timeout=10,
                              json={"job_id": str(job["id"])},
                              headers={"Authorization": f"Bearer {token_of(live, 'acme-admin')}"})  # fmt: skip
    assert canceled.json()["status"] == "canceled", canceled.text
    page.locator(f"tr[data-job='{job['id']}'][data-status='canceled']").wait_for()
    dialog.get_by_text("Cancelado").wait_for(timeout=5_000)
    assert "Pendente" not in dialog.inner_text()
    assert "→ —" not in dialog.inner_text()  # its end is told


def test_execucoes_list_a_run_started_while_the_stream_is_down(page: Any, live: LiveStack) -> None:
    """A click on "Executar Agora" on Execuções with no event coming (the stream cannot connect): the
    header's refetch showed the run while the table never listed it; the short refetch after
    a submit keeps the table right too."""
    wait_idle(live, ACME, "onecode")
    page.route(lambda url: "integration-job-events" in url, lambda route: route.abort())
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/onecode/execucoes")
    page.get_by_test_id("runs").wait_for()
    page.get_by_test_id("live").filter(has_text="Reconectando").wait_for()
    before = {j["id"] for j in jobs_of(live, ACME, "onecode")}
    page.get_by_role("button", name="Executar Agora").click()
    wait_until(lambda: len(jobs_of(live, ACME, "onecode")) > len(before), 30, "the new run")
    (new,) = [j for j in jobs_of(live, ACME, "onecode") if j["id"] not in before]
    page.locator(f"[data-testid=runs] tr[data-job='{new['id']}']").wait_for(timeout=10_000)
    wait_idle(live, ACME, "onecode")


def test_a_late_cancel_answer_does_not_undo_the_canceled_run(page: Any, live: LiveStack) -> None:
    """The cancel answer (running, cancel requested) arriving after the stream said
    "canceled" put the row back to running for good: the job is final, no event follows."""
    wait_idle(live, ACME, "onecode")
    live.knobs("onecode", latency_ms=800)
    try:
        job_id, row = a_run_in_execucoes(page, live, ACME, "acme-admin")
        with HeldAnswer(page, "**/functions/v1/cancel-integration-job", job_id) as cancel:
            page.locator(row).get_by_role("button", name="Cancelar").click()
            assert cancel.read()["status"] == "running"  # requested: it stops at the next page
            page.locator(f"{row}[data-status='canceled']").wait_for(timeout=30_000)  # the stream
            cancel.release()
        page.wait_for_timeout(1_500)
        assert page.locator(row).get_attribute("data-status") == "canceled"
    finally:
        live.reset("onecode")
    assert latest(live, ACME, "onecode")["status"] == "canceled"


def test_a_late_run_answer_does_not_undo_a_finished_run_on_detalhe(
    page: Any, live: LiveStack
) -> None:
    wait_idle(live, ACME, "onecode")
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/onecode/visao-geral")
    page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
    header = page.locator("h1 [data-testid=status]")
    with HeldAnswer(page, "**/functions/v1/run-integration") as run:
        page.get_by_role("button", name="Executar Agora").click()
        run.read()
        wait_until(lambda: latest(live, ACME, "onecode").get("status") == "success", 60, "done")
        header.filter(has_text="Concluído").wait_for(timeout=30_000)
        run.release()  # the 202 lands after the stream told the end
    seen = []
    for _ in range(15):
        page.wait_for_timeout(100)
        seen.append(header.inner_text())
    assert set(seen) == {"Concluído"}


def test_sign_in_with_a_pasted_supabase_session(page: Any, live: LiveStack) -> None:
    import httpx

    users = httpx.get(f"{live.gateway}/_local/demo-tokens", timeout=10).json()["users"]
    token = next(u["token"] for u in users if u["name"] == "globex-member")
    page.goto(live.dashboard)
    field = page.get_by_label("Token de acesso (JWT) ou sessão do Supabase (JSON)")
    field.fill("não é um token")
    page.get_by_role("button", name="Entrar", exact=True).click()
    page.get_by_text("Cole um JWT").wait_for()
    field.fill(json.dumps({"access_token": token, "token_type": "bearer", "expires_in": 3600}))
    page.get_by_role("button", name="Entrar", exact=True).click()
    page.get_by_role("button", name="Sair").wait_for()
    assert page.get_by_label("Organização").locator("option").all_inner_texts() == [GLOBEX.name]
    page.get_by_role("button", name="Sair").click()
    page.get_by_role("heading", name="Entrar no syncq").wait_for()


# -- what each word on the page stands for (run in the page's own modules) ------------------


def test_each_pause_code_names_its_own_cause(page: Any, live: LiveStack) -> None:
    """Distinct sentences are not enough: two codes' sentences swapped would tell an admin to
    fix the key when the schema is wrong. Each code says its own cause."""
    page.goto(live.dashboard)
    said = page.evaluate(
        """async (codes) => {
          const { fmtPause } = await import('./js/format.js');
          return Object.fromEntries(codes.map((c) => [c, fmtPause(c, 3)]));
        }""",
        [str(code) for code in PauseCode],
    )
    causes = {
        "admin": "administrador",
        "schema": "schema do Gestão Scouter não corresponde",
        "key": "recusou a chave",
        "refused": "recusou um lote",
        "failing": "3 lotes seguidos falharam",
        "stalled": "parou sem resposta 3 vezes",
    }
    assert set(said) == set(causes)
    assert {c: causes[c] in said[c] for c in causes} == dict.fromkeys(causes, True), said


def test_durations_percentages_ages_and_days_read_the_brazilian_way(
    page: Any, live: LiveStack
) -> None:
    """The formatting the tables and charts use, at the edges people meet."""
    page.goto(live.dashboard)
    now = "2026-03-10T12:00:00Z"
    said = page.evaluate(
        """async (now) => {
          const f = await import('./js/format.js');
          const at = Date.parse(now);
          const ago = (s) => f.fmtAgo(new Date(at - s * 1000).toISOString(), at);
          return {
            durations: [999, 1000, 59_940, 60_000, 125_000].map(f.fmtDuration),
            none: [f.fmtDuration(null), f.fmtNumber(null), f.fmtPercent(undefined), f.fmtDay(null)],
            percents: [f.fmtPercent(1), f.fmtPercent(0.5), f.fmtPercent(0.25), f.fmtPercent(87.5)],
            ages: [ago(59), ago(60), ago(3599), ago(3600), ago(86_399), ago(86_400),
                   ago(172_800)],
            counts: [f.fmtCount(1, 'arquivo', 'arquivos'), f.fmtCount(0, 'arquivo', 'arquivos'),
                     f.fmtCount(1234, 'crédito', 'créditos')],
            numbers: [f.fmtNumber(1234567), f.fmtNumber(0)],
            days: [f.fmtDay('2024-01-31'), f.fmtDay('2024-02-29T23:30:00Z')],
            occurrences: ['success', 'running', 'error', 'skipped', 'missed', 'odd', null]
              .map(f.fmtLastOccurrence),
            live: [f.isLive({ status: 'pending' }), f.isLive({ status: 'running' }),
                   f.isLive({ status: 'error' }), f.isLive(null)],
          };
        }""",
        now,
    )
    assert said["durations"] == ["999 ms", "1,0 s", "59,9 s", "1 min 0 s", "2 min 5 s"]
    assert said["none"] == ["—"] * 4
    assert said["percents"] == ["100,0%", "50,0%", "25,0%", "87,5%"]
    assert said["ages"] == [
        "agora há pouco", "há 1 min", "há 59 min", "há 1 h", "há 23 h", "há 1 dia", "há 2 dias",
    ]  # fmt: skip
    assert said["counts"] == ["1 arquivo", "0 arquivos", "1.234 créditos"]
    assert said["numbers"] == ["1.234.567", "0"]
    assert said["days"] == ["31/01/2024", "29/02/2024"]  # UTC days, in any browser zone
    assert said["occurrences"] == [
        "Concluído", "Em execução", "Falha",
        "Pulada: uma execução estava em andamento", "Perdida", "odd", "—",
    ]  # fmt: skip
    assert said["live"] == [True, True, False, False]


def test_a_duration_rounded_up_reads_in_the_next_unit(page: Any, live: LiveStack) -> None:
    """A run of 119,6 s was "1 min 60 s" in Execuções and Visão Geral, one of 59,96 s
    "60,0 s" and one of 999,6 ms "1000 ms": rounded first, each reads in the next unit."""
    page.goto(live.dashboard)
    said = page.evaluate(
        """async () => {
          const f = await import('./js/format.js');
          return [999.6, 59_960, 119_600, 3_599_600, 61_400].map(f.fmtDuration);
        }"""
    )
    assert said == ["1,0 s", "1 min 0 s", "2 min 0 s", "60 min 0 s", "1 min 1 s"], said


def test_the_export_rate_counts_only_the_time_it_ran(page: Any, live: LiveStack) -> None:
    """The Sync Monitor's Taxa (rate()): leads per second of the time the export ran. A live
    export runs until now, a paused one until it paused (not until its row last changed, nor
    until now), a finished one until it finished; the rests before (paused_s) never count."""
    page.goto(live.dashboard)
    said = page.evaluate(
        """async () => {
          const { rate } = await import('./js/pages/syncmonitor.js');
          const at = (s) => new Date(Date.parse('2026-03-10T12:00:00Z') + s * 1000).toISOString();
          const now = Date.parse(at(100));
          const job = (o) => ({ started_at: at(0), paused_s: 20, updated_at: at(90), ...o });
          return {
            running: rate(job({ status: 'running', exported_leads: 800 }), now),
            pending: rate(job({ status: 'pending', exported_leads: 400, paused_at: at(30) }), now),
            paused: rate(job({ status: 'paused', exported_leads: 400, paused_at: at(60),
                               updated_at: at(95) }), now + 3_600_000),
            completed: rate(job({ status: 'completed', exported_leads: 1000, paused_s: 40,
                                  paused_at: at(50), finished_at: at(200), updated_at: at(300) }),
                            now + 3_600_000),
            failed: rate(job({ status: 'failed', exported_leads: 300, paused_s: 0,
                               finished_at: at(60) }), now),
            nothing: [rate(job({ status: 'running', exported_leads: 0 }), now),
                      rate(job({ status: 'pending', started_at: null, exported_leads: 5 }), now),
                      rate(job({ status: 'paused', exported_leads: 5, paused_at: at(10) }), now)],
          };
        }"""
    )
    assert said == {
        "running": 10,  # 800 leads in 100 s, less 20 s paused before
        "pending": 5,  # live again (resumed): until now, the old paused_at does not end it
        "paused": 10,  # 400 in the 60 s until it paused, less 20 s; not until now
        "completed": 1000 / 160,  # until it finished, less its 40 s of rests
        "failed": 5,  # until it failed
        "nothing": [None, None, None],  # no leads, not started, no time run
    }, said


def test_every_error_is_described_by_its_code_else_its_status(page: Any, live: LiveStack) -> None:
    """describe(): a known code's own sentence wins over its status; an unknown code falls back
    to the status; an unknown status says its number (a 5xx reads as the server's fault); a
    422 names its fields as the forms label them, with a key of the user's own."""
    page.goto(live.dashboard)
    said = page.evaluate(
        """async () => {
          const { ApiError, describe } = await import('./js/api.js');
          const e = (status, code, details) => describe(new ApiError(status, code, 'English.', details));
          return {
            network: e(0, 'network'),
            conflict: [e(409, 'export_already_active'), e(409, 'http_409'), e(409, 'newer_code')],
            forbidden: e(403, 'forbidden'),
            unknown: [e(418, 'http_418'), e(507, 'http_507'), e(500, 'http_500')],
            fields: e(422, 'validation_error', [
              { loc: ['field_mappings', 'nome', 0] }, { loc: ['emails', 1] }, { loc: ['emails', 2] },
              { loc: ['mystery'] }]),
            bare422: e(422, 'validation_error'),
            noFields: e(422, 'validation_error', []),
            plain: describe(new Error('boom')),
          };
        }"""
    )
    assert said["network"] == "Sem conexão com o servidor."
    assert said["conflict"] == [
        "Já existe uma exportação em andamento.",
        "A ação conflita com o estado atual: atualize a página e tente de novo.",
        "A ação conflita com o estado atual: atualize a página e tente de novo.",
    ]
    assert said["forbidden"].startswith("Permissão negada")
    assert said["unknown"] == [
        "A requisição falhou (erro 418).",
        "Erro interno no servidor: tente de novo em instantes.",
        "Erro interno no servidor: tente de novo em instantes.",
    ]
    assert said["fields"] == (
        "Dados inválidos. Confira: mapeamento de campos (nome), e-mails, mystery."
    ), said["fields"]
    assert said["bare422"] == said["noFields"] == "Dados inválidos."
    assert said["plain"] == "boom"
    assert all("English" not in str(v) for v in said.values())


# -- exports as the Sync Monitor and Alertas tell them --------------------------------------


def an_export(live: LiveStack, tenant: Any, **row: Any) -> None:
    """The tenant's only export, as given (the runner claims none of these: none is due live)."""
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", tenant.id)
    row = {"tenant_id": tenant.id, "field_mappings": "{}", "batch_size": 50, **row}
    columns = ", ".join(row)
    live.execute(
        f"INSERT INTO gestao_scouter_export_jobs ({columns}, started_at, finished_at)"
        f" VALUES ({', '.join(f'%({k})s' for k in row)}, now() - interval '1 hour', now())",
        row,
    )


def test_a_failed_or_paused_export_says_which_and_offers_retomar(
    page: Any, live: LiveStack
) -> None:
    """A failed export says it failed (in red), a paused one why it paused: an admin's pause
    with no technical detail, a fault's with its count and the server's words folded away;
    either can be resumed (Retomar) and neither paused again (Pausar). Alertas tell the same
    export alerts the same way."""
    english = "Gestão Scouter refused the batch: HTTP 400 invalid input syntax"
    an_export(live, GLOBEX, status="failed", error_message=english, total_leads=3000,
              exported_leads=1250, error_leads=2)  # fmt: skip
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/sync-monitor")
        job = page.get_by_test_id("export-job")
        job.get_by_test_id("export-status").filter(has_text="Falhou").wait_for()
        error = job.get_by_test_id("export-error")
        assert "notice error" in (error.get_attribute("class") or "")
        assert error.inner_text().startswith("A exportação falhou."), error.inner_text()
        assert "tentará de novo" not in error.inner_text()
        assert job.get_by_test_id("exported").inner_text() == "1.250 / 3.000"
        assert job.get_by_role("button", name="Retomar").is_enabled()
        assert job.get_by_role("button", name="Pausar").is_disabled()
        assert page.get_by_role("button", name="Iniciar exportação").is_enabled()

        an_export(live, GLOBEX, status="paused", pause_code="admin",
                  pause_reason="Paused by an administrator.")  # fmt: skip
        page.reload()
        reason = job.get_by_test_id("pause-reason")
        reason.wait_for()
        assert reason.inner_text().strip() == "Pausado por um administrador."
        assert reason.get_by_text("Detalhe técnico").count() == 0
        assert job.get_by_test_id("export-error").count() == 0
        assert job.get_by_role("button", name="Retomar").is_enabled()
        assert job.get_by_role("button", name="Pausar").is_disabled()

        failing = "Paused: 3 consecutive batches failed (HTTP 503)."
        an_export(live, GLOBEX, status="paused", pause_code="failing", pause_reason=failing,
                  consecutive_failures=3)  # fmt: skip
        page.reload()
        reason.filter(has_text="3 lotes seguidos falharam").wait_for()
        assert failing not in reason.inner_text()
        reason.get_by_text("Detalhe técnico").click()
        assert failing in reason.inner_text()
        assert job.get_by_role("button", name="Retomar").is_enabled()

        live.execute(
            "INSERT INTO alert_outbox (tenant_id, provider_slug, event, failures, detail,"
            " pause_code, status, finished_at, created_at) VALUES"
            " (%(t)s, 'gestao_scouter', 'export_paused', 4, %(paused)s, 'failing', 'sent', now(),"
            "  now() - interval '1 minute'),"
            " (%(t)s, 'gestao_scouter', 'export_failed', 0, %(failed)s, NULL, 'sent', now(), now())",
            {"t": GLOBEX.id, "paused": failing, "failed": english},
        )  # fmt: skip
        page.goto(f"{live.dashboard}#/t/{GLOBEX.id}/integracoes/onecode/alertas")
        paused = page.locator("tr", has_text="Exportação pausada").first
        paused.wait_for()
        assert "4 lotes seguidos falharam" in paused.inner_text(), paused.inner_text()
        assert failing not in paused.inner_text()
        failed = page.locator("tr", has_text="Exportação falhou").first
        assert "A exportação falhou." in failed.inner_text() and english not in failed.inner_text()
        failed.get_by_text("Detalhe técnico").click()
        assert english in failed.inner_text()
    finally:
        live.execute("DELETE FROM alert_outbox WHERE tenant_id = %s", GLOBEX.id)
        live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)


def test_a_paused_export_cannot_be_started_over_and_says_so(page: Any, live: LiveStack) -> None:
    """A paused export still holds the tenant's one live export (the server refuses a new one
    with 409 export_already_active): "Iniciar exportação" is disabled while it is paused, and
    the page says to resume or reset it, not that one is "em andamento"."""
    an_export(live, GLOBEX, status="paused", pause_code="admin", total_leads=3000,
              pause_reason="Paused by an administrator.", exported_leads=1250)  # fmt: skip
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/sync-monitor")
        job = page.get_by_test_id("export-job")
        job.get_by_test_id("export-status").filter(has_text="Pausado").wait_for()
        start = page.get_by_role("button", name="Iniciar exportação")
        assert start.is_disabled()
        hint = page.get_by_test_id("start-blocked")
        assert "Retome ou resete" in hint.inner_text(), hint.inner_text()
        assert page.get_by_text("Já existe uma exportação em andamento").count() == 0
        assert job.get_by_role("button", name="Retomar").is_enabled()
    finally:
        live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)


def watch_errors(page: Any) -> None:
    """Record the error notices the page shows from now (sampled in the page every 20 ms): a
    refused click's error lasts only until the next status read clears it."""
    page.evaluate(
        """() => { window.__said = []; setInterval(() => document.querySelectorAll('.notice.error')
          .forEach((n) => window.__said.push(n.textContent)), 20); }"""
    )


def test_a_double_click_on_the_export_buttons_sends_one_request(page: Any, live: LiveStack) -> None:
    """Two clicks on "Iniciar exportação" (or "Retomar") sent two requests: the second,
    refused (409), said "Já existe uma exportação em andamento" (or that the action was not
    possible) over the first one's export. One request goes, and no error is told."""
    sent: list[str] = []
    answered: list[int] = []

    def acting(r: Any) -> bool:
        return "export-to-gestao-scouter-batch" in r.url and r.method == "POST"

    page.on(
        "request", lambda r: sent.append(json.loads(r.post_data)["action"]) if acting(r) else None
    )
    page.on("requestfinished", lambda r: answered.append(1) if acting(r) else None)
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
    with psycopg.connect(live.database_url) as conn:
        demo.seed_leads(conn, GLOBEX.id, 100, date(2023, 3, 1), 2)
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/sync-monitor")
        page.get_by_text("Nenhuma exportação ainda.").wait_for()
        page.get_by_label("Data inicial").fill("2023-03-01")
        page.get_by_label("Data final").fill("2023-03-02")
        watch_errors(page)
        start = page.get_by_role("button", name="Iniciar exportação")
        start.evaluate("b => { b.click(); b.click(); }")  # both in one turn of the page
        # The toast first: it lasts 7 s, which a loaded machine's export can outrun.
        page.get_by_test_id("toast-info").filter(has_text="Exportação iniciada.").wait_for()
        status = page.get_by_test_id("export-status")
        status.filter(has_text="Concluído").wait_for(timeout=60_000)
        assert page.evaluate("window.__said") == []  # not even for a moment
        assert sent.count("start") == 1, sent
        assert len(live.rows(
            "SELECT id FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id
        )) == 1  # fmt: skip

        an_export(live, GLOBEX, status="paused", pause_code="admin", total_leads=0,
                  pause_reason="Paused by an administrator.")  # fmt: skip
        page.reload()
        status.filter(has_text="Pausado").wait_for()
        watch_errors(page)
        resume = page.get_by_role("button", name="Retomar")
        resume.evaluate("b => { b.click(); b.click(); }")
        page.get_by_test_id("toast-info").filter(has_text="Exportação retomada.").wait_for()
        wait_until(lambda: page.evaluate("1") and len(answered) == len(sent), 10, "the answers")
        page.wait_for_timeout(300)  # a refused second click's answer has been told
        assert page.evaluate("window.__said") == []  # not even for a moment
        assert sent.count("resume") == 1, sent
    finally:
        live.reset("gestao-scouter")
        live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
        live.execute("DELETE FROM leads WHERE tenant_id = %s AND criado < '2023-04-01'", GLOBEX.id)


# -- Execuções: the refetch after an action ---------------------------------------------------


def test_a_retried_run_is_shown_as_it_went_when_the_stream_is_down(
    page: Any, live: LiveStack
) -> None:
    """ "Tentar novamente" with no event coming: the row the answer added said "Pendente" for
    good unless the short refetch after the action reads the run as it went."""
    wait_idle(live, GLOBEX, "onecode")
    [failed] = live.rows(
        "INSERT INTO integration_jobs (tenant_id, provider_slug, status, attempts, error_message,"
        " started_at, finished_at, created_at) VALUES (%s, 'onecode', 'error', 3,"
        " 'HTTP 500 da OneCode', now() - interval '2 minutes', now() - interval '1 minute',"
        " now() - interval '2 minutes') RETURNING id",
        GLOBEX.id,
    )
    page.route(lambda url: "integration-job-events" in url, lambda route: route.abort())
    sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/onecode/execucoes")
    page.get_by_test_id("live").filter(has_text="Reconectando").wait_for()
    row = page.locator(f"[data-testid=runs] tr[data-job='{failed['id']}']")
    with HeldAnswer(page, "**/functions/v1/run-integration", str(failed["id"])) as run:
        row.get_by_role("button", name="Tentar novamente").click()
        new_id = run.read()["job_id"]
        wait_until(lambda: latest(live, GLOBEX, "onecode").get("status") == "success", 60, "done")
        run.release()  # the page adds the run as the answer said it: pending
    page.locator(f"tr[data-job='{new_id}'][data-status='success']").wait_for(timeout=10_000)


def test_a_call_refused_with_401_ends_the_session(page: Any, live: LiveStack) -> None:
    """Any call answered 401 (the token expired between two clicks) signs the user out with
    a word of why, as the stream's 401 does: the page must not sit signed in, refused."""
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes/onecode/visao-geral")
    expired = {"error": {"code": "unauthorized", "message": "Invalid token."}}
    page.route("**/integration-alerts?*", lambda route: route.fulfill(status=401, json=expired))
    page.get_by_role("tab", name="Alertas").click()
    page.get_by_text("Sua sessão expirou").wait_for()
    page.get_by_role("heading", name="Entrar no syncq").wait_for()
    assert page.get_by_role("button", name="Sair").count() == 0


def test_a_server_away_at_reload_keeps_the_session(page: Any, live: LiveStack) -> None:
    """A reload while the functions answer 503 (or the network is down): the page threw the
    token away and asked the user to sign in again, though only a 401 ends a session. It
    keeps it, says why, and "Tentar de novo" goes on once the server is back."""
    sign_in(page, live, "acme-admin", f"#/t/{ACME.id}/integracoes")
    card(page, "onecode").wait_for()
    token = page.evaluate("sessionStorage.getItem('syncq.token')")
    busy = {"error": {"code": "database_unavailable", "message": "The database is busy."}}
    page.route("**/my-tenants", lambda route: route.fulfill(status=503, json=busy))
    page.reload()
    page.get_by_role("alert").filter(has_text="O banco de dados está temporariamente").wait_for()
    assert token and page.evaluate("sessionStorage.getItem('syncq.token')") == token
    page.unroute("**/my-tenants")
    page.get_by_role("button", name="Tentar de novo").click()
    card(page, "onecode").wait_for()
    assert page.evaluate("location.hash") == f"#/t/{ACME.id}/integracoes"
    assert page.get_by_role("button", name="Sair").is_visible()
