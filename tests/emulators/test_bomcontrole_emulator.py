"""The BomControle emulator over real HTTP: date windows, `%20`, paging limits, clients."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest

from infra.emulators._common import ServerHandle, start_in_thread
from infra.emulators.bomcontrole import DATE_FIELDS, BomControleState, create_app

ROOT = Path(__file__).resolve().parents[2]
PATH = "/integracao/Financeiro/Pesquisar"
WIDE = {"dataInicio": "2000-01-01 00:00:00", "dataTermino": "2099-12-31 23:59:59"}


@pytest.fixture
def state() -> BomControleState:
    st = BomControleState(seed=11)
    st.seed_token("key-a", 260)
    st.seed_token("key-b", 8)
    return st


@pytest.fixture
def server(state: BomControleState) -> Iterator[ServerHandle]:
    with start_in_thread(create_app(state)) as handle:
        yield handle


@pytest.fixture
def client(server: ServerHandle) -> Iterator[httpx.Client]:
    headers = {"Authorization": "ApiKey key-a"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as c:
        yield c


def query(**params: object) -> str:
    """Encode like the real clients must: a space becomes %20, never '+'."""
    return urlencode({k: str(v) for k, v in params.items()}, quote_via=quote, safe=":")


def search(client: httpx.Client, **params: object) -> httpx.Response:
    merged: dict[str, object] = {**WIDE, "tipoData": "UltimaAlteracao", **params}
    return client.get(f"{PATH}?{query(**merged)}")


def all_items(client: httpx.Client, size: int = 100, **params: object) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for number in range(1, 100):
        body = search(
            client,
            **{"paginacao.itensPorPagina": size, "paginacao.numeroDaPagina": number},
            **params,
        ).json()
        if not body["Itens"]:
            return out
        out += body["Itens"]
    raise AssertionError("no end")


def test_envelope_and_paging(client: httpx.Client, state: BomControleState) -> None:
    body = search(client).json()
    assert set(body) == {"Itens", "TotalItens"}
    assert (body["TotalItens"], len(body["Itens"])) == (260, 50)  # default page size 50
    items = all_items(client)
    key = "IdMovimentacaoFinanceiraParcela"
    assert sorted(i[key] for i in items) == sorted(i[key] for i in state.items("key-a"))
    assert len({i[key] for i in items}) == 260
    stamps = [i["DataUltimaAlteracao"] for i in items]
    assert stamps == sorted(stamps)


def test_item_shape(state: BomControleState) -> None:
    items = state.items("key-a")
    for item in items:
        assert len(item["IdMovimentacaoFinanceiraParcela"]) == 36
        assert isinstance(item["Debito"], bool) and isinstance(item["Valor"], int | float)
        assert item["DataVencimento"].endswith("T00:00:00")
        datetime.fromisoformat(item["DataUltimaAlteracao"])
    assert any(i["DataQuitacao"] is None for i in items)
    assert any("." in i["DataUltimaAlteracao"] for i in items)  # milliseconds, sometimes
    assert any(isinstance(i["Valor"], int) for i in items)


def test_plus_for_space_is_rejected(client: httpx.Client) -> None:
    raw = (
        f"{PATH}?dataInicio=2024-01-01+00:00:00"
        "&dataTermino=2024-12-31%2023:59:59&tipoData=UltimaAlteracao"
    )
    resp = client.get(raw)
    assert resp.status_code == 400
    body = resp.json()
    assert body["Message"] and "dataInicio" in body["ModelState"]
    # httpx's own params= encoding uses '+': the emulator catches that client mistake too
    assert client.get(PATH, params={**WIDE, "tipoData": "UltimaAlteracao"}).status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"dataInicio": "01/01/2024 00:00:00"},
        {"dataInicio": ""},
        {"dataTermino": "2024-13-01 00:00:00"},
        {"tipoData": "DataVencimento"},
        {"tipoData": ""},
        {"paginacao.itensPorPagina": 101},
        {"paginacao.itensPorPagina": 0},
        {"paginacao.itensPorPagina": "x"},
        {"paginacao.numeroDaPagina": 0},
    ],
)
def test_invalid_parameters_are_400(client: httpx.Client, params: dict[str, object]) -> None:
    resp = search(client, **params)
    assert resp.status_code == 400
    assert resp.json()["Message"] == "A requisição é inválida."
    assert set(resp.json()["ModelState"]) == {next(iter(params))}


def test_missing_dates_are_400(client: httpx.Client) -> None:
    assert client.get(f"{PATH}?tipoData=UltimaAlteracao").status_code == 400


@pytest.mark.parametrize("tipo", sorted(DATE_FIELDS))
def test_every_documented_tipo_data_is_accepted(client: httpx.Client, tipo: str) -> None:
    body = search(client, tipoData=tipo).json()
    field = DATE_FIELDS[tipo]
    assert body["TotalItens"] == sum(1 for i in all_items(client, tipoData=tipo) if i[field])


def test_date_window_is_inclusive_and_filters(
    client: httpx.Client, state: BomControleState
) -> None:
    state.clock = lambda: datetime(2030, 6, 1, 12, 0, 0)
    changed = state.mutate_item("key-a")
    assert changed["DataUltimaAlteracao"] == "2030-06-01T12:00:00"
    exact = {"dataInicio": "2030-06-01 12:00:00", "dataTermino": "2030-06-01 12:00:00"}
    body = search(client, **exact).json()
    assert [i["IdMovimentacaoFinanceiraParcela"] for i in body["Itens"]] == [
        changed["IdMovimentacaoFinanceiraParcela"]
    ]
    before = {"dataInicio": "2030-01-01 00:00:00", "dataTermino": "2030-06-01 11:59:59"}
    assert search(client, **before).json()["TotalItens"] == 0
    day_only = {"dataInicio": "2030-06-01", "dataTermino": "2030-06-01"}
    assert search(client, **day_only).json()["TotalItens"] == 1


def test_mutated_item_moves_into_the_incremental_window(
    client: httpx.Client, state: BomControleState
) -> None:
    state.clock = lambda: datetime(2031, 1, 1, 8, 30, 15, 250000)
    target = state.items("key-a")[17]
    changed = state.mutate_item("key-a", target["IdMovimentacaoFinanceiraParcela"], Valor=1.5)
    assert changed["DataUltimaAlteracao"] == "2031-01-01T08:30:15.250"
    window = {"dataInicio": "2031-01-01 08:00:00", "dataTermino": "2031-01-01 09:00:00"}
    items = search(client, **window).json()["Itens"]
    assert [(i["IdMovimentacaoFinanceiraParcela"], i["Valor"]) for i in items] == [
        (target["IdMovimentacaoFinanceiraParcela"], 1.5)
    ]
    added = state.add_item("key-a")
    assert search(client, **window).json()["TotalItens"] == 2
    assert added["DataCriacaoParcela"] == added["DataUltimaAlteracao"]


def test_clock_defaults_to_brasilia_time(state: BomControleState) -> None:
    local = state.clock()
    utc = datetime.now(UTC).replace(tzinfo=None)
    assert local.tzinfo is None
    assert round((local - utc).total_seconds() / 3600) == -3


def test_clients_search_is_a_bare_fuzzy_array(
    client: httpx.Client, state: BomControleState
) -> None:
    everyone = client.get("/integracao/Cliente/Pesquisar").json()
    assert isinstance(everyone, list) and len(everyone) == 65
    target = state.clients("key-a")[3]["PessoaJuridica"]
    folded = target["NomeFantasia"].upper().replace("Ç", "C").replace("Ã", "A")
    hits = client.get("/integracao/Cliente/Pesquisar", params={"pesquisa": folded}).json()
    assert any(h["Documento"] == target["Documento"] for h in hits)
    by_doc = client.get(
        "/integracao/Cliente/Pesquisar", params={"pesquisa": target["Documento"]}
    ).json()
    assert [h["Documento"] for h in by_doc] == [target["Documento"]]
    none = client.get("/integracao/Cliente/Pesquisar", params={"pesquisa": "zzzz qqqq"}).json()
    assert none == []


def test_client_obter(client: httpx.Client, state: BomControleState) -> None:
    wanted = state.clients("key-a")[0]
    assert client.get(f"/integracao/Cliente/Obter/{wanted['Id']}").json() == wanted
    missing = client.get("/integracao/Cliente/Obter/1")
    assert missing.status_code == 404 and missing.json()["Message"]
    assert client.get("/integracao/Cliente/Obter/abc").status_code == 400
    state.mutate_client("key-a", wanted["Id"], Bloqueado=True)
    assert client.get(f"/integracao/Cliente/Obter/{wanted['Id']}").json()["Bloqueado"] is True


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer key-a", 401), ("ApiKey", 401), ("ApiKey wrong", 403)],
)
def test_bad_keys(server: ServerHandle, header: str | None, status: int) -> None:
    headers = {"Authorization": header} if header else {}
    resp = httpx.get(f"{server.url}/integracao/Cliente/Pesquisar", headers=headers, timeout=5)
    assert resp.status_code == status and resp.json()["Message"]


def test_keys_are_isolated(server: ServerHandle, state: BomControleState) -> None:
    headers = {"Authorization": "ApiKey key-b"}
    body = httpx.get(
        f"{server.url}{PATH}?{query(**WIDE, tipoData='Criacao')}", headers=headers, timeout=5
    )
    assert body.json()["TotalItens"] == 8


def test_throttle_and_fault_knobs(client: httpx.Client) -> None:
    assert client.post("/__admin/knobs", json={"rate_429": 1.0}).status_code == 200
    resp = search(client)
    assert resp.status_code == 429 and resp.json()["Message"]
    client.post("/__admin/knobs", json={"rate_429": 0, "rate_limit_per_min": 2})
    assert [search(client).status_code for _ in range(3)] == [200, 200, 429]
    client.post("/__admin/knobs", json={"rate_limit_per_min": 0, "timeout_rate": 1, "hang_s": 0.5})
    with pytest.raises(httpx.ReadTimeout):
        client.get(PATH, timeout=0.2)
    client.post("/__admin/reset")
    assert search(client).status_code == 200


def test_cli_entry_point() -> None:
    cmd = [
        sys.executable, "-m", "infra.emulators.bomcontrole", "--port", "0",
        "--seed-token", "k=120", "--knob", "utc_offset_hours=-3",
    ]  # fmt: skip
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:  # noqa: S603
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
            resp = httpx.get(
                f"{url}{PATH}?{query(**WIDE, tipoData='UltimaAlteracao')}",
                headers={"Authorization": "ApiKey k"},
                timeout=5,
            )
            assert resp.json()["TotalItens"] == 120
        finally:
            proc.terminate()
            proc.wait(timeout=10)
