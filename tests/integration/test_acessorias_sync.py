"""The Acessórias sync against the emulator as the real API behaves (PROVIDERS.md)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.acessorias import COMPANIES_PER_PAGE, AcessoriasState, create_app
from shared.dispatch import RecordingDispatcher, get_dispatcher
from shared.providers.acessorias import parse_date
from shared.secrets import env_var, secret_name
from tests.support import TenantFixture, call, drain, rows, seed_tenant, service_token

pytestmark = pytest.mark.db
TOKEN = "acme-acessorias-token-123"


@pytest.fixture
def emulator() -> Iterator[ServerHandle]:
    state = AcessoriasState(seed=7)
    state.seed_token(TOKEN, 95)
    handle = start_in_thread(create_app(state))
    yield handle
    handle.stop()


@pytest.fixture
def state(emulator: ServerHandle) -> AcessoriasState:
    assert isinstance(emulator.state, AcessoriasState)
    return emulator.state


@pytest.fixture
def tenant(database_url: str, emulator: ServerHandle, configure) -> TenantFixture:  # type: ignore[no-untyped-def]
    configure(**{env_var(secret_name("acme", "acessorias", "token")): TOKEN})
    return seed_tenant(database_url, "acme", providers={"acessorias": {"base_url": emulator.url}})


def checksum(items: list[tuple[str, ...]]) -> str:
    return hashlib.sha256(repr(sorted(items)).encode()).hexdigest()


def emulator_view(state: AcessoriasState) -> list[tuple[str, ...]]:
    return [
        (c["ID"], c["Identificador"], c["Razao"], str(Decimal(c["Honorario"])),
         str(parse_date(c["ClienteDesde"])), str(len(c["ContatosNaEmpresa"])))
        for c in state.companies(TOKEN)
    ]  # fmt: skip


def db_view(database_url: str) -> list[tuple[str, ...]]:
    return [
        (r["external_id"], r["cnpj"], r["razao"], str(r["honorario"]), str(r["cliente_desde"]),
         str(r["n"]))
        for r in rows(
            database_url,
            "SELECT *, jsonb_array_length(contacts) AS n FROM acessorias_companies",
        )
    ]  # fmt: skip


def run(tenant: TenantFixture, recorder: RecordingDispatcher) -> dict:  # type: ignore[type-arg]
    response = call(
        "run-integration",
        {"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
        token=tenant.admin_token,
    )
    assert response.status_code == 202, response.get_json()
    drain(recorder)
    job_id = response.get_json()["job_id"]
    return rows(tenant_db(), "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]


_db: list[str] = []


def tenant_db() -> str:
    return _db[-1]


@pytest.fixture(autouse=True)
def _remember_db(database_url: str) -> None:
    _db.append(database_url)


def test_full_sync_equals_emulator_then_resync_changes_nothing(
    database_url: str, tenant: TenantFixture, state: AcessoriasState, recorder: RecordingDispatcher
) -> None:
    state.knobs.update({"repeat_rate": 0.5})
    job = run(tenant, recorder)
    assert job["status"] == "success", job["error_message"]
    assert job["result"]["records"] == 95 and job["result"]["pages"] == 5
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))
    contacts = rows(
        database_url, "SELECT contacts FROM acessorias_companies WHERE contacts <> '[]' LIMIT 1"
    )
    assert set(contacts[0]["contacts"][0]) == {"name", "email", "phone"}

    before = rows(
        database_url, "SELECT external_id, updated_at FROM acessorias_companies ORDER BY 1"
    )
    assert run(tenant, recorder)["status"] == "success"
    after = rows(
        database_url, "SELECT external_id, updated_at FROM acessorias_companies ORDER BY 1"
    )
    assert before == after  # an unchanged re-sync writes nothing

    changed = state.mutate_company(TOKEN)
    assert run(tenant, recorder)["status"] == "success"
    row = rows(
        database_url, "SELECT razao FROM acessorias_companies WHERE external_id = %s", changed["ID"]
    )
    assert row == [{"razao": changed["Razao"]}]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))


def test_survives_429s_5xx_and_timeouts(
    database_url: str,
    tenant: TenantFixture,
    state: AcessoriasState,
    recorder: RecordingDispatcher,
    configure,  # type: ignore[no-untyped-def]
) -> None:
    configure(PROVIDER_RETRY_ATTEMPTS="8", PROVIDER_TIMEOUT_S="0.5")
    state.knobs.update({"rate_429": 0.2, "error_rate": 0.2, "timeout_rate": 0.05, "hang_s": 1.0})
    recorder = __import__("shared.dispatch", fromlist=["get_dispatcher"]).get_dispatcher()
    job = run(tenant, recorder)
    assert job["status"] == "success", job["error_message"]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))
    assert state.stats()["faults"]  # faults really happened


def test_an_account_past_the_rate_limit_waits_instead_of_being_refused(
    database_url: str,
    tenant: TenantFixture,
    state: AcessoriasState,
    recorder: RecordingDispatcher,
    configure,  # type: ignore[no-untyped-def]
) -> None:
    """100 requests per token per window (a minute; 3 s here): an account of 110 pages
    waits for the window instead of meeting a 429 that names no wait."""
    state.knobs.update({"rate_window_s": 3.0})
    configure(ACESSORIAS_RATE_WINDOW_S="3")
    state.seed_token(TOKEN, 110 * 20)  # 110 pages of 20
    job = run(tenant, get_dispatcher())  # the one the new settings made
    assert job["status"] == "success" and job["attempts"] == 1, job["error_message"]
    assert job["result"]["pages"] == 110
    assert "429" not in state.stats()["by_status"]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))


def test_false_empty_page_is_rechecked_before_it_is_believed(
    database_url: str,
    tenant: TenantFixture,
    state: AcessoriasState,
    configure,  # type: ignore[no-untyped-def]
) -> None:
    configure(ACESSORIAS_EMPTY_RECHECK_S="0.08", ACESSORIAS_EMPTY_RECHECKS="3")
    state.knobs.update({"false_empty_rate": 0.6, "false_empty_quiet_ms": 60})
    recorder = __import__("shared.dispatch", fromlist=["get_dispatcher"]).get_dispatcher()
    job = run(tenant, recorder)
    assert job["status"] == "success"
    assert job["result"]["records"] == 95
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))


def test_business_error_fails_without_retry(
    database_url: str, tenant: TenantFixture, state: AcessoriasState, recorder: RecordingDispatcher
) -> None:
    state.knobs.update({"business_error": "Token sem permissão para esta empresa"})
    job = run(tenant, recorder)
    assert job["status"] == "error" and job["attempts"] == 1
    assert "the token was refused or lacks access" in job["error_message"]
    assert TOKEN not in job["error_message"]


def test_business_error_text_is_scrubbed_of_personal_data_everywhere(
    database_url: str,
    tenant: TenantFixture,
    state: AcessoriasState,
    recorder: RecordingDispatcher,
    logs: Callable[[], str],
) -> None:
    words = (
        f"Token {TOKEN}: contato ana.silva@cliente.com.br (CPF 123.456.789-09), Maria Sigilosa,"
        " Rua das Flores 123, empresa 12.345.678/0001-90, sem permissão"
    )
    state.knobs.update({"business_error": words})  # quoting the token it refused, too
    job = run(tenant, recorder)
    assert job["status"] == "error" and job["attempts"] == 1
    assert job["error_message"] == (
        "Acessórias refused the request: the token was refused or lacks access (its own"
        " message is not kept: it may quote customer data)."
    )
    direct = call("sync-acessorias", {"tenant_slug": "acme"}, token=tenant.admin_token)
    assert direct.status_code == 502
    assert direct.get_json()["error"]["message"] == job["error_message"]
    everything = (
        direct.get_data(as_text=True)
        + str(rows(database_url, "SELECT * FROM integration_jobs"))
        + str(rows(database_url, "SELECT * FROM integration_logs"))
        + str(rows(database_url, "SELECT * FROM tenant_integrations"))
        + logs()
    )
    for pii in (
        TOKEN,
        "ana.silva",
        "cliente.com.br",
        "123.456.789-09",
        "Maria",
        "Flores",
        "0001-90",
    ):
        assert pii not in everything


def test_fees_the_column_cannot_hold_are_stored_as_null_and_the_rest_is_kept(
    database_url: str, tenant: TenantFixture, state: AcessoriasState, recorder: RecordingDispatcher
) -> None:
    odd = ["1e20", "Infinity", "NaN", "99999999999999.99", "-Infinity"]
    odd_ids = {state.add_company(TOKEN, Honorario=fee)["ID"] for fee in odd}
    job = run(tenant, recorder)
    assert job["status"] == "success" and job["attempts"] == 1, job["error_message"]
    assert job["result"]["records"] == 100
    fees = {
        r["external_id"]: r["honorario"]
        for r in rows(database_url, "SELECT external_id, honorario FROM acessorias_companies")
    }
    assert {i for i, fee in fees.items() if fee is None} == odd_ids
    expected = {
        c["ID"]: Decimal(c["Honorario"]) for c in state.companies(TOKEN) if c["ID"] not in odd_ids
    }
    assert {i: fee for i, fee in fees.items() if i not in odd_ids} == expected


def test_a_company_with_a_nul_a_huge_id_or_a_tiny_fee_does_not_fail_the_sync(
    database_url: str, tenant: TenantFixture, state: AcessoriasState, recorder: RecordingDispatcher
) -> None:
    """One record the database cannot hold as sent must not fail its page (and every page
    after it): the text is cleaned, an unusable id drops that record, the fee is rounded."""
    first, second = state.companies(TOKEN)[:2]
    state.mutate_company(TOKEN, first["ID"], Razao="ACME\u0000 LTDA")
    state.mutate_company(TOKEN, second["ID"], Honorario="1e-99999999")
    huge = state.add_company(TOKEN)
    state.set_dataset(
        TOKEN,
        [{**c, "ID": "9" * 4000} if c["ID"] == huge["ID"] else c for c in state.companies(TOKEN)],
    )
    job = run(tenant, recorder)
    assert job["status"] == "success" and job["attempts"] == 1, job["error_message"]
    stored = {
        r["external_id"]: r
        for r in rows(
            database_url, "SELECT external_id, razao, honorario FROM acessorias_companies"
        )
    }
    assert len(stored) == len(state.companies(TOKEN)) - 1  # all but the unusable id
    assert stored[first["ID"]]["razao"] == "ACME LTDA"
    assert stored[second["ID"]]["honorario"] == Decimal("0.00")


def test_a_listing_longer_than_max_pages_fails_and_says_so(
    tenant: TenantFixture, configure: Any
) -> None:
    """Not a success with the later pages left out."""
    configure(ACESSORIAS_MAX_PAGES="2")
    job = run(tenant, get_dispatcher())  # the dispatcher of the new settings
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert "longer than 2 pages" in job["error_message"]


def test_a_base_url_that_is_not_the_api_fails_instead_of_syncing_nothing(
    database_url: str, emulator: ServerHandle, configure: Any
) -> None:
    """The emulator answers an unknown path with its framework's 404 page, as a router
    would: the job fails once, saying where to look, and no success is recorded."""
    configure(**{env_var(secret_name("acme", "acessorias", "token")): TOKEN})
    tenant = seed_tenant(
        database_url, "acme", providers={"acessorias": {"base_url": emulator.url + "/v1"}}
    )
    job = run(tenant, get_dispatcher())
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert "base_url" in job["error_message"]
    last = rows(database_url, "SELECT last_status FROM tenant_integrations")
    assert last == [{"last_status": "error"}]


def test_bad_token_is_not_retried_and_never_leaks(
    database_url: str,
    emulator: ServerHandle,
    configure,
    recorder: RecordingDispatcher,  # type: ignore[no-untyped-def]
    logs: Callable[[], str],
) -> None:
    configure(**{env_var(secret_name("acme", "acessorias", "token")): "wrong-token-xyz"})
    tenant = seed_tenant(database_url, "acme", providers={"acessorias": {"base_url": emulator.url}})
    recorder = __import__("shared.dispatch", fromlist=["get_dispatcher"]).get_dispatcher()
    job = run(tenant, recorder)
    assert job["status"] == "error" and job["attempts"] == 1
    assert job["error_message"] == "Acessórias rejected the credentials (HTTP 401)."
    everything = (
        str(rows(database_url, "SELECT * FROM integration_jobs"))
        + str(rows(database_url, "SELECT * FROM integration_logs"))
        + logs()
    )
    assert "wrong-token-xyz" not in everything


def test_cancel_during_sync_stops_between_pages(
    database_url: str, tenant: TenantFixture, state: AcessoriasState, recorder: RecordingDispatcher
) -> None:
    state.knobs.update({"latency_ms": 150})
    job_id = call(
        "run-integration",
        {"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
        token=tenant.admin_token,
    ).get_json()["job_id"]
    recorder.take()
    worker = threading.Thread(
        target=call, args=("process-integration-job", {"job_id": job_id}),
        kwargs={"token": service_token()},
    )  # fmt: skip
    worker.start()
    for _ in range(100):
        if rows(database_url, "SELECT count(*) AS n FROM acessorias_companies")[0]["n"] >= 20:
            break
        threading.Event().wait(0.05)
    response = call("cancel-integration-job", {"job_id": job_id}, token=tenant.admin_token)
    assert response.status_code == 200
    worker.join(30)
    job = rows(database_url, "SELECT * FROM integration_jobs WHERE id = %s", job_id)[0]
    assert job["status"] == "canceled"
    written = rows(database_url, "SELECT count(*) AS n FROM acessorias_companies")[0]["n"]
    assert 20 <= written < 95 and written % 20 == 0  # whole pages only: coherent


def test_sync_acessorias_over_http_takes_the_same_slot(
    database_url: str, tenant: TenantFixture, state: AcessoriasState, recorder: RecordingDispatcher
) -> None:
    response = call("sync-acessorias", {"tenant_slug": "acme"}, token=tenant.admin_token)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["records"] == 95 and body["pages"] == 5
    history = rows(database_url, "SELECT status, provider_slug FROM integration_jobs")
    assert history == [{"status": "success", "provider_slug": "acessorias"}]
    # With a live job in the slot, a direct sync answers 409 with that job's id.
    live = call(
        "run-integration",
        {"tenant_id": str(tenant.id), "provider_slug": "acessorias"},
        token=tenant.admin_token,
    ).get_json()["job_id"]
    busy = call("sync-acessorias", {"tenant_slug": "acme"}, token=service_token())
    assert busy.status_code == 409
    assert busy.get_json()["error"]["details"]["job_id"] == live
    # The service may run that queued job itself by id.
    by_id = call("sync-acessorias", {"tenant_slug": "acme", "job_id": live}, token=service_token())
    assert by_id.status_code == 200 and by_id.get_json()["job_id"] == live
    # A member may not run it.
    member = call("sync-acessorias", {"tenant_slug": "acme"}, token=tenant.member_token)
    assert member.status_code == 403


@pytest.mark.parametrize("junk", [[None], ["oops"], [[1, 2]]])
def test_a_page_of_junk_is_not_the_end_of_the_listing(
    database_url: str, state: AcessoriasState, configure: Any, junk: list[Any]
) -> None:
    """Page 2 lists entries, none of them a company: the sync must not report success with
    pages 2.. (75 of 95 companies) left out."""
    from flask import jsonify, request

    app = create_app(state)

    @app.before_request
    def malformed() -> Any:
        if request.path == "/companies/ListAll" and request.args.get("Pagina") == "2":
            return jsonify(junk)
        return None

    with start_in_thread(app) as emulator:
        configure(**{env_var(secret_name("acme", "acessorias", "token")): TOKEN})
        tenant = seed_tenant(
            database_url, "acme", providers={"acessorias": {"base_url": emulator.url}}
        )
        job = run(tenant, get_dispatcher())
    stored = rows(database_url, "SELECT count(*) AS n FROM acessorias_companies")[0]["n"]
    assert job["status"] == "error", (job["result"], stored)
    assert job["error_message"] == "Acessórias answered a page with no company on it."


def test_a_sync_right_after_another_of_the_same_token_still_waits_for_the_window(
    database_url: str,
    tenant: TenantFixture,
    state: AcessoriasState,
    configure,  # type: ignore[no-untyped-def]
) -> None:
    """The limit is per token over a sliding window, not per sync: a sync that starts while
    the previous one's requests are still in the server's window (a retry of an attempt
    that failed, the next click, another tenant on the same account) must count them too,
    or its first burst meets the 429 that names no wait."""
    state.knobs.update({"rate_limit_per_min": 10, "rate_window_s": 3.0})
    configure(
        ACESSORIAS_RATE_LIMIT="10", ACESSORIAS_RATE_WINDOW_S="3", ACESSORIAS_EMPTY_RECHECKS="0"
    )
    state.seed_token(TOKEN, 8 * 20)  # 8 pages + the empty one: 9 requests of 10
    first = run(tenant, get_dispatcher())
    assert first["status"] == "success", first["error_message"]
    second = run(tenant, get_dispatcher())
    assert second["status"] == "success" and second["attempts"] == 1, second["error_message"]
    assert "429" not in state.stats()["by_status"]


def test_syncs_of_one_token_at_once_share_its_window_without_a_429(
    database_url: str,
    tenant: TenantFixture,
    emulator: ServerHandle,
    state: AcessoriasState,
    configure,  # type: ignore[no-untyped-def]
) -> None:
    """Tenants on one Acessórias account sync at once in one process (gunicorn's threads):
    the process's one pacer of the token must let one request into each slot of the
    window, not one per waiting sync (each saw the same oldest request leave)."""
    slugs = ["acme", "beta", "gamma", "delta"]
    state.knobs.update({"rate_limit_per_min": 10, "rate_window_s": 2.0})
    configure(
        ACESSORIAS_RATE_LIMIT="10", ACESSORIAS_RATE_WINDOW_S="2", ACESSORIAS_EMPTY_RECHECKS="0",
        **{env_var(secret_name(slug, "acessorias", "token")): TOKEN for slug in slugs[1:]},
    )  # fmt: skip
    for slug in slugs[1:]:
        seed_tenant(database_url, slug, providers={"acessorias": {"base_url": emulator.url}})
    state.seed_token(TOKEN, 6 * 20)  # 7 requests a sync, 28 in all: the syncs must wait
    barrier = threading.Barrier(len(slugs))
    answers: list[Any] = []

    def sync(slug: str) -> None:
        barrier.wait()
        answers.append(call("sync-acessorias", {"tenant_slug": slug}, token=service_token()))

    threads = [threading.Thread(target=sync, args=(slug,)) for slug in slugs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [a.status_code for a in answers] == [200] * len(slugs), [a.get_json() for a in answers]
    assert "429" not in state.stats()["by_status"], state.stats()["by_status"]


def test_the_pacer_counts_every_try_the_server_counts(
    database_url: str,
    tenant: TenantFixture,
    state: AcessoriasState,
    configure,  # type: ignore[no-untyped-def]
) -> None:
    """The server's limit counts every request it lets through, one that then fails with a
    5xx too: a page tried three times is three requests of the window, and a pacer that
    counted it once let the sync run into the 429 that names no wait."""
    state.knobs.update({"rate_limit_per_min": 10, "rate_window_s": 2.0, "error_rate": 0.3})
    configure(
        ACESSORIAS_RATE_LIMIT="10", ACESSORIAS_RATE_WINDOW_S="2", ACESSORIAS_EMPTY_RECHECKS="0",
        PROVIDER_RETRY_ATTEMPTS="8",
    )  # fmt: skip
    state.seed_token(TOKEN, 12 * 20)  # 13 pages, and the 5xx tries besides
    job = run(tenant, get_dispatcher())
    assert job["status"] == "success" and job["attempts"] == 1, job["error_message"]
    stats = state.stats()
    assert sum(stats["faults"].values()) >= 3, stats  # pages really were tried again
    assert "429" not in stats["by_status"], stats["by_status"]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))


def test_a_listing_of_exactly_max_pages_is_read_whole(
    database_url: str, tenant: TenantFixture, state: AcessoriasState, configure: Any
) -> None:
    """The limit is the pages a listing may have: one of exactly that many succeeds, and
    one page more fails."""
    pages = -(-len(state.companies(TOKEN)) // COMPANIES_PER_PAGE)
    configure(ACESSORIAS_MAX_PAGES=str(pages))
    job = run(tenant, get_dispatcher())
    assert job["status"] == "success", job["error_message"]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))
    configure(ACESSORIAS_MAX_PAGES=str(pages - 1))
    job = run(tenant, get_dispatcher())
    assert job["status"] == "error" and f"longer than {pages - 1} pages" in job["error_message"]


def test_a_direct_sync_by_id_runs_only_a_job_of_its_own_provider(
    database_url: str, emulator: ServerHandle, configure: Any, recorder: RecordingDispatcher
) -> None:
    configure(**{env_var(secret_name("acme", "acessorias", "token")): TOKEN})
    tenant = seed_tenant(
        database_url, "acme", providers={"acessorias": {"base_url": emulator.url}, "onecode": {}}
    )
    other = call(
        "run-integration",
        {"tenant_id": str(tenant.id), "provider_slug": "onecode"},
        token=tenant.admin_token,
    ).get_json()["job_id"]
    recorder.take()
    wrong = call("sync-acessorias", {"tenant_slug": "acme", "job_id": other}, token=service_token())
    assert wrong.status_code == 404, wrong.get_json()
    assert rows(database_url, "SELECT status, attempts FROM integration_jobs") == [
        {"status": "pending", "attempts": 0}
    ]
    assert rows(database_url, "SELECT count(*) AS n FROM acessorias_companies") == [{"n": 0}]


def _sync_with_a_hook(
    database_url: str, state: AcessoriasState, configure: Any, hook: Callable[[int], Any]
) -> dict[str, Any]:
    """A sync whose every ask for a companies page runs `hook(page)` first (an answer it
    returns is the emulator's); the job as it ended. The tests count the asks: an answer
    the hook makes slower than the tests' 2 s timeout (a write on a slow machine) must not
    be asked again."""
    from flask import request

    app = create_app(state)

    @app.before_request
    def hooked() -> Any:
        if request.path == "/companies/ListAll":
            return hook(int(request.args.get("Pagina", "1")))
        return None

    with start_in_thread(app) as emulator:
        configure(
            PROVIDER_TIMEOUT_S="60", **{env_var(secret_name("acme", "acessorias", "token")): TOKEN}
        )
        tenant = seed_tenant(
            database_url, "acme", providers={"acessorias": {"base_url": emulator.url}}
        )
        return run(tenant, get_dispatcher())  # type: ignore[arg-type]


def test_an_empty_page_is_asked_again_exactly_the_rechecks_configured(
    database_url: str, state: AcessoriasState, configure: Any
) -> None:
    configure(ACESSORIAS_EMPTY_RECHECKS="2", ACESSORIAS_EMPTY_RECHECK_S="0.01")
    end = -(-len(state.companies(TOKEN)) // COMPANIES_PER_PAGE) + 1  # the empty page
    asked: list[int] = []
    job = _sync_with_a_hook(database_url, state, configure, asked.append)
    assert job["status"] == "success", job["error_message"]
    assert asked.count(end) == 1 + 2


def test_a_cancel_asked_while_an_empty_page_is_rechecked_is_noticed(
    database_url: str, state: AcessoriasState, configure: Any
) -> None:
    """The slow re-checks beat too: a cancel asked meanwhile ends the job canceled, not in
    success after the last re-check."""
    configure(ACESSORIAS_EMPTY_RECHECKS="2", ACESSORIAS_EMPTY_RECHECK_S="0.01")
    end = -(-len(state.companies(TOKEN)) // COMPANIES_PER_PAGE) + 1
    asked: list[int] = []

    def cancel_at_the_end(page: int) -> None:
        asked.append(page)
        if page == end:
            rows(
                database_url,
                "UPDATE integration_jobs SET cancel_requested = true"
                " WHERE status = 'running' RETURNING id",
            )

    job = _sync_with_a_hook(database_url, state, configure, cancel_at_the_end)
    assert job["status"] == "canceled"
    assert asked.count(end) == 1  # the first re-check's heartbeat saw it


def test_a_gateways_json_404_on_page_1_is_a_wrong_base_url_not_an_empty_account(
    database_url: str, state: AcessoriasState, configure: Any
) -> None:
    """A gateway answers an unknown path in JSON of its own: on page 1 that must fail the
    job (check base_url), not sync nothing and call it a success."""
    from flask import jsonify

    configure(ACESSORIAS_EMPTY_RECHECK_S="0.01")
    job = _sync_with_a_hook(
        database_url, state, configure, lambda page: (jsonify({"message": "no route"}), 404)
    )
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert "base_url" in job["error_message"]
