"""BomControle mapping, wire format and incremental window (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.errors import UpstreamError
from shared.providers.bomcontrole import map_client, map_entry, parse_entries, window, wire_query
from shared.settings import Settings
from shared.tenancy import Tenant

SETTINGS = Settings()


class Ctx:
    """The parts of a SyncContext the window needs."""

    def __init__(self, last: datetime | None, payload: Mapping[str, Any] | None = None) -> None:
        self.settings = SETTINGS
        self.payload = payload or {}
        self.tenant = Tenant(uuid.uuid4(), "acme", "Acme")
        self._last = last

    def last_success_at(self) -> datetime | None:
        return self._last


def test_wire_query_uses_percent_20_never_plus() -> None:
    text = wire_query({"dataInicio": "2024-01-01 00:00:00", "paginacao.numeroDaPagina": 2})
    assert text == "dataInicio=2024-01-01%2000:00:00&paginacao.numeroDaPagina=2"


def test_first_window_and_incremental_window_with_overlap() -> None:
    now = datetime(2025, 3, 10, 15, 0, 0, tzinfo=UTC)
    assert window(Ctx(None), now) == ("2000-01-01 00:00:00", "2025-03-10 12:15:00")
    last = datetime(2025, 3, 9, 10, 0, 0, tzinfo=UTC)
    assert window(Ctx(last), now) == ("2025-03-09 06:45:00", "2025-03-10 12:15:00")
    assert window(Ctx(last, {"full": True}), now)[0] == "2000-01-01 00:00:00"


def test_map_entry_converts_local_instants_and_dates() -> None:
    row = map_entry({
        "IdMovimentacaoFinanceiraParcela": "900B7247-DFCE-4CB1-96C5-4801B1E84ABD",
        "Debito": False, "DataVencimento": "2022-09-01T00:00:00", "DataQuitacao": None,
        "Valor": 50, "NomeFormaPagamento": "Boleto Bancário", "NumeroParcela": 1,
        "IdEmpresa": 1, "IdCliente": 20634, "IdFornecedor": None,
        "DataUltimaAlteracao": "2022-09-14T10:32:11.647", "DataCriacaoParcela": "garbage",
    }, SETTINGS)  # fmt: skip
    assert row is not None
    assert row["external_id"] == "900b7247-dfce-4cb1-96c5-4801b1e84abd"
    assert (row["data_vencimento"], row["data_quitacao"], row["valor"]) == (
        "2022-09-01",
        None,
        "50",
    )
    assert row["remote_updated_at"] == "2022-09-14T13:32:11.647000+00:00"
    assert row["remote_created_at"] is None and row["id_fornecedor"] is None


@pytest.mark.parametrize("raw", [{}, {"IdMovimentacaoFinanceiraParcela": " "}, None, []])
def test_entries_without_id_are_skipped(raw: object) -> None:
    assert map_entry(raw, SETTINGS) is None


def test_map_client() -> None:
    assert map_client({"Id": 7, "Nome": "X LTDA", "Documento": "123", "Bloqueado": False}) == {
        "external_id": "7", "nome": "X LTDA", "nome_fantasia": None, "documento": "123",
        "tipo_pessoa": None, "bloqueado": False,
    }  # fmt: skip
    assert map_client({"Id": "7"}) is None


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [(400, {"Message": "A requisição é inválida."}, False), (403, {}, False), (200, [], True),
     (200, {"Itens": [], "TotalItens": "3"}, True), (503, {}, True)],
)  # fmt: skip
def test_parse_entries_errors(status: int, body: object, retryable: bool) -> None:
    with pytest.raises(UpstreamError) as caught:
        parse_entries(httpx.Response(status, json=body), 100, SETTINGS)
    assert caught.value.retryable is retryable
