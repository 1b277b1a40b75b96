"""The dashboard in Chromium where an answer and the event stream race: a run that ends
while a page's first list loads, an export history read before the export's last change;
and the skip link, which must not leave the page it is on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import GLOBEX, LiveStack, sign_in
from tests.browser.test_dashboard import HeldAnswer, card, latest, wait_idle
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow]


def test_the_skip_link_keeps_the_page_it_is_on(page: Any, live: LiveStack) -> None:
    """A keyboard user's first Tab lands on "Pular para o conteúdo": Enter must move the
    focus to the page's content, not navigate away from the page."""
    sign_in(page, live, "acme-admin", "#/creditos")
    page.get_by_role("heading", name="Créditos").wait_for()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Pular para o conteúdo"
    page.keyboard.press("Enter")
    page.wait_for_timeout(1000)
    assert page.evaluate("location.hash") == "#/creditos"
    page.get_by_role("heading", name="Créditos").wait_for(timeout=2000)
    assert page.evaluate("document.activeElement.id") == "conteudo"


def test_a_job_that_ends_while_the_first_list_loads_is_shown_ended(
    page: Any, live: LiveStack
) -> None:
    """The page opens while a run goes on: its first list of cards is read mid-run, the
    stream (opened meanwhile) brings the run's end before that list lands. The card must
    show the end, not "Processando..." forever (the stream never sends that event again)."""
    wait_idle(live, GLOBEX, "onecode")
    live.knobs("onecode", latency_ms=300)
    try:
        sign_in(page, live, "globex-admin")
        onecode = card(page, "onecode")
        onecode.get_by_role("button", name="Executar").click()
        onecode.get_by_test_id("status").filter(has_text="Processando...").wait_for()
        with HeldAnswer(page, "**/functions/v1/list-integrations?*") as first:
            page.reload()
            stale = first.read()  # the new page's first list, read mid-run
            [read] = [i for i in stale["integrations"] if i["provider_slug"] == "onecode"]
            assert read["latest_job"]["status"] in ("pending", "running")
            page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
            wait_until(
                lambda: latest(live, GLOBEX, "onecode").get("status") == "success", 60, "end"
            )
            page.wait_for_timeout(1000)  # the end's event reaches the page
            first.release()
        # The end shows (a card stuck on "Processando..." never does); not read after a fixed
        # second, which a loaded machine's page may not have had to apply the event.
        onecode.get_by_test_id("status").filter(has_text="Concluído").wait_for(timeout=15_000)
    finally:
        live.reset("onecode")


def test_the_export_history_shows_a_finished_export_finished(page: Any, live: LiveStack) -> None:
    """The history is read again at each change of the export's state; an answer read while
    the export was queued, arriving after the one read once it completed, must not show it
    queued (with 0 exported) under a panel that says it completed."""
    live.execute("DELETE FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
    live.knobs("gestao-scouter-2", latency_ms=100)
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/sync-monitor")
        status = page.get_by_test_id("export-status")
        page.get_by_text("Nenhuma exportação ainda.").wait_for()
        with HeldAnswer(page, "**/functions/v1/export-to-gestao-scouter-batch?*") as early:
            page.get_by_role("button", name="Iniciar exportação").click()
            read = early.read()
            assert read["jobs"][0]["status"] in ("pending", "running")
            status.filter(has_text="Concluído").wait_for(timeout=90_000)
            page.wait_for_timeout(1500)  # the history read once it completed lands
            early.release()
        page.wait_for_timeout(1000)
    finally:
        live.reset("gestao-scouter-2")
    (job,) = live.rows("SELECT * FROM gestao_scouter_export_jobs WHERE tenant_id = %s", GLOBEX.id)
    assert job["status"] == "completed"
    row = page.get_by_test_id("export-history").locator(f"tr[data-export='{job['id']}']")
    total = f"{job['total_leads']:,}".replace(",", ".")
    assert "Concluído" in row.inner_text(), row.inner_text()
    assert f"{total} / {total}" in row.inner_text(), row.inner_text()


@pytest.mark.parametrize("held", ["list-integrations", "list-integration-jobs"])
def test_a_run_that_ends_while_detalhe_loads_is_shown_ended(
    page: Any, live: LiveStack, held: str
) -> None:
    """The same on Detalhe → Execuções: the header's integration and the runs, each read
    mid-run and landing after the stream brought the end, must show the end (not
    "Processando..." with "Executar Agora" disabled, nor a row still running)."""
    wait_idle(live, GLOBEX, "onecode")
    live.knobs("onecode", latency_ms=300)
    try:
        sign_in(page, live, "globex-admin", f"#/t/{GLOBEX.id}/integracoes/onecode/execucoes")
        page.get_by_role("button", name="Executar Agora").click()
        wait_until(lambda: latest(live, GLOBEX, "onecode").get("status") == "running", 30, "run")
        job_id = str(latest(live, GLOBEX, "onecode")["id"])
        with HeldAnswer(page, f"**/functions/v1/{held}?*") as first:
            page.reload()
            read = first.read()  # read mid-run
            jobs = read.get("jobs") or [i["latest_job"] for i in read["integrations"]
                                        if i["provider_slug"] == "onecode"]  # fmt: skip
            assert jobs[0]["status"] in ("pending", "running")
            page.get_by_test_id("live").filter(has_text="Ao vivo").wait_for()
            wait_until(
                lambda: latest(live, GLOBEX, "onecode").get("status") == "success", 60, "end"
            )
            page.wait_for_timeout(1000)  # the end's event reaches the page
            first.release()
        page.locator(f"tr[data-job='{job_id}']").wait_for()
        page.wait_for_timeout(1000)
        assert page.get_by_test_id("status").inner_text() == "Concluído"
        assert page.get_by_role("button", name="Executar Agora").is_enabled()
        assert page.locator(f"tr[data-job='{job_id}']").get_attribute("data-status") == "success"
    finally:
        live.reset("onecode")
