"""The BomControle sync against its emulator, through the queue (issue 4 acceptance)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from infra.emulators.bomcontrole import BomControleState, create_app
from shared.secrets import env_var, secret_name
from tests.provider_support import (
    FLAKY_KNOBS,
    LIVE_JOBS,
    RunJob,
    cancel_midway,
    checksum,
    direct_sync_takes_the_slot,
    provider_fixtures,
    stored_text,
)
from tests.support import TenantFixture, call, rows

pytestmark = pytest.mark.db
KEY = "acme-bomcontrole-key-9d1e"
ENTRIES = 3000
CLIENTS = ENTRIES // 4
ID = "IdMovimentacaoFinanceiraParcela"

emulator, state, tenant, run_job = provider_fixtures(
    BomControleState, create_app, seed=31, token=KEY, count=ENTRIES,
    provider="bomcontrole", secret="api_key",
)  # fmt: skip


def local_to_utc(stamp: str) -> str:
    """The emulator's Brasília wall clock as the UTC instant the database stores."""
    moment = datetime.fromisoformat(stamp).replace(tzinfo=UTC) + timedelta(hours=3)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]


def emulator_view(state: BomControleState) -> list[tuple[Any, ...]]:
    return [
        (i[ID], str(Decimal(str(i["Valor"])).quantize(Decimal("0.01"))), i["Debito"],
         i["IdCliente"], i["DataVencimento"][:10], local_to_utc(i["DataUltimaAlteracao"]))
        for i in state.items(KEY)
    ]  # fmt: skip


def db_view(database_url: str) -> list[tuple[Any, ...]]:
    found = rows(
        database_url,
        "SELECT external_id, valor::text AS valor, debito, id_cliente,"
        " data_vencimento::text AS venc,"
        " to_char(remote_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') AS upd"
        " FROM bomcontrole_financial_entries",
    )
    return [
        (r["external_id"], r["valor"], r["debito"], r["id_cliente"], r["venc"], r["upd"])
        for r in found
    ]


def test_full_then_incremental_sync(
    database_url: str, state: BomControleState, run_job: RunJob
) -> None:
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    result = job["result"]
    assert (result["records"], result["pages"], result["clients"]) == (ENTRIES, 30, CLIENTS)
    assert result["window"]["from"] == "2000-01-01 00:00:00"
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))
    clients = rows(database_url, "SELECT count(*) AS n FROM bomcontrole_clients")
    assert clients == [{"n": CLIENTS}]

    stamp = "SELECT external_id, updated_at FROM bomcontrole_financial_entries ORDER BY 1"
    before = rows(database_url, stamp)
    second = run_job()
    assert second["status"] == "success", second["error_message"]
    assert second["result"]["records"] == 0  # incremental: nothing changed since the last run
    assert second["result"]["window"]["from"] > "2020-01-01"
    assert rows(database_url, stamp) == before

    target = state.items(KEY)[777]
    changed = state.mutate_item(KEY, target[ID], Valor=4321.5)
    new = state.add_item(KEY)
    third = run_job()
    assert third["status"] == "success", third["error_message"]
    assert (third["result"]["records"], third["result"]["changed"]) == (2, 2)
    valor = rows(
        database_url,
        "SELECT valor FROM bomcontrole_financial_entries WHERE external_id = %s",
        changed[ID],
    )
    assert valor == [{"valor": Decimal("4321.50")}]
    assert rows(
        database_url, "SELECT 1 AS one FROM bomcontrole_financial_entries WHERE external_id = %s",
        new[ID],
    ) == [{"one": 1}]  # fmt: skip
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))


def test_full_payload_reads_everything_again(
    database_url: str, state: BomControleState, run_job: RunJob
) -> None:
    assert run_job()["status"] == "success"
    again = run_job({"full": True})
    assert again["status"] == "success"
    assert again["result"]["records"] == ENTRIES and again["result"]["changed"] == 0
    assert again["result"]["window"]["from"] == "2000-01-01 00:00:00"


def test_client_changes_propagate(
    database_url: str, state: BomControleState, run_job: RunJob
) -> None:
    assert run_job()["status"] == "success"
    client = state.clients(KEY)[5]
    state.mutate_client(KEY, client["Id"], Bloqueado=not client["Bloqueado"])
    assert run_job()["status"] == "success"
    got = rows(
        database_url,
        "SELECT bloqueado FROM bomcontrole_clients WHERE external_id = %s",
        str(client["Id"]),
    )
    assert got == [{"bloqueado": not client["Bloqueado"]}]


def test_a_client_listed_twice_is_stored_once(
    database_url: str, state: BomControleState, run_job: RunJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cliente/Pesquisar has no paging nor order: a client listed twice (the API's fuzzy
    search repeats one) is one row, and the sync does not fail on it."""
    listed = state.clients(KEY)
    twice = [*listed[:10], {**listed[3], "Bloqueado": not listed[3]["Bloqueado"]}, *listed[10:]]
    monkeypatch.setattr(state, "clients", lambda token: twice)
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    assert job["result"]["clients"] == CLIENTS
    count = "SELECT count(*) AS n FROM bomcontrole_clients"
    assert rows(database_url, count) == [{"n": CLIENTS}]


def test_faults_still_end_in_success_with_no_duplicates(
    database_url: str, state: BomControleState, run_job: RunJob, configure: Any
) -> None:
    configure(PROVIDER_TIMEOUT_S="0.5")
    state.knobs.update(FLAKY_KNOBS)
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))
    count = "SELECT count(*) AS n FROM bomcontrole_financial_entries"
    assert rows(database_url, count) == [{"n": ENTRIES}]
    assert state.stats()["faults"].get("429")


def test_persistent_faults_end_in_error_after_max_attempts(
    database_url: str, state: BomControleState, run_job: RunJob, configure: Any
) -> None:
    configure(PROVIDER_RETRY_ATTEMPTS="2")
    state.knobs.update({"rate_429": 1.0})
    job = run_job()
    assert (job["status"], job["attempts"]) == ("error", 3)
    assert job["error_message"] == "BomControle kept answering HTTP 429."
    assert rows(database_url, LIVE_JOBS) == [{"n": 0}]


def test_rejected_key_is_not_retried_and_never_leaks(
    database_url: str, run_job: RunJob, configure: Any, capsys: pytest.CaptureFixture[str],
    logs: Callable[[], str],
) -> None:  # fmt: skip
    configure(**{env_var(secret_name("acme", "bomcontrole", "api_key")): "bad-bc-key-0042"})
    job = run_job()
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert job["error_message"] == "BomControle rejected the credentials (HTTP 403)."
    assert "job failed" in logs()  # the failure was logged, without the key
    assert "bad-bc-key-0042" not in stored_text(database_url) + capsys.readouterr().out + logs()


def test_missing_key_is_a_clear_error(
    database_url: str, run_job: RunJob, monkeypatch: pytest.MonkeyPatch, configure: Any
) -> None:
    monkeypatch.delenv(env_var(secret_name("acme", "bomcontrole", "api_key")))
    configure()
    job = run_job()
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert job["error_message"] == "No bomcontrole api_key is configured for this tenant."


def test_a_refused_request_says_what_the_api_named(
    run_job: RunJob, state: BomControleState
) -> None:
    state.knobs.update({"max_page_size": 50})  # our pages of 100 are refused
    job = run_job()
    assert (job["status"], job["attempts"]) == ("error", 1)
    assert "paginacao.itensPorPagina: Numero máximo permitido é de 50 itens" in job["error_message"]


def test_a_page_size_set_above_the_apis_maximum_is_asked_at_the_maximum(
    database_url: str, state: BomControleState, run_job: RunJob, configure: Any
) -> None:
    """The API refuses pages of more than 100 items: a larger BOMCONTROLE_PAGE_SIZE is asked
    as 100, and the sync still reads every entry (it does not fail on every run)."""
    configure(BOMCONTROLE_PAGE_SIZE="500")
    job = run_job()
    assert job["status"] == "success", job["error_message"]
    assert (job["result"]["records"], job["result"]["pages"]) == (ENTRIES, 30)
    assert checksum(db_view(database_url)) == checksum(emulator_view(state))


def test_cancel_during_a_long_sync_stops_between_pages(
    database_url: str, tenant: TenantFixture, state: BomControleState, configure: Any
) -> None:
    count = "SELECT count(*) AS n FROM bomcontrole_financial_entries"
    cancel_midway(
        database_url, tenant, state, configure, provider="bomcontrole", count_sql=count,
        total=ENTRIES,
    )  # fmt: skip
    expected = {e[0]: e for e in emulator_view(state)}
    assert all(expected[r[0]] == r for r in db_view(database_url))


def test_sync_bomcontrole_over_http_takes_the_same_slot(
    database_url: str, tenant: TenantFixture
) -> None:
    body = {"tenant_id": str(tenant.id)}
    response = call("sync-bomcontrole", body, token=tenant.admin_token)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["records"] == ENTRIES
    direct_sync_takes_the_slot(tenant, "sync-bomcontrole", "bomcontrole")


def test_a_client_stored_with_an_empty_field_is_updated(
    database_url: str, state: BomControleState, run_job: RunJob
) -> None:
    """A stored client with a field empty (NULL) is still compared field by field: its
    changes are written."""
    assert run_job()["status"] == "success"
    client = state.clients(KEY)[7]
    rows(database_url, "UPDATE bomcontrole_clients SET nome_fantasia = NULL"
         " WHERE external_id = %s RETURNING 1", str(client["Id"]))  # fmt: skip
    state.mutate_client(KEY, client["Id"], Bloqueado=not client["Bloqueado"])
    assert run_job()["status"] == "success"
    got = rows(
        database_url,
        "SELECT nome_fantasia IS NOT NULL AS named, bloqueado FROM bomcontrole_clients"
        " WHERE external_id = %s",
        str(client["Id"]),
    )
    assert got == [{"named": True, "bloqueado": not client["Bloqueado"]}]
