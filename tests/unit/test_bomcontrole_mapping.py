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


def test_a_refusal_says_what_the_api_named_without_secrets_or_personal_data() -> None:
    body = {
        "Message": "A requisição é inválida.",
        "ModelState": {
            "paginacao.itensPorPagina": ["Numero máximo permitido é de 50 itens."],
            "filtro": ["Chave key-123 de ana@cliente.com.br inválida"],
        },
    }
    with pytest.raises(UpstreamError) as caught:
        parse_entries(httpx.Response(400, json=body), 100, SETTINGS, ("key-123",))
    message = caught.value.message
    assert message.startswith("BomControle refused the request (HTTP 400): A requisição é")
    assert "paginacao.itensPorPagina: Numero máximo permitido é de 50 itens." in message
    assert "key-123" not in message and "ana@cliente" not in message
    with pytest.raises(UpstreamError) as bare:
        parse_entries(httpx.Response(404, text="<html>"), 100, SETTINGS)
    assert bare.value.message == "BomControle refused the request (HTTP 404)."


def _entry(**fields: Any) -> dict[str, Any]:
    row = map_entry({"IdMovimentacaoFinanceiraParcela": "ABC", **fields}, SETTINGS)
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("valor", "stored"),
    [(1e20, None), (float("nan"), None), (float("inf"), None), (float("-inf"), None),
     ("NaN", None), ("sNaN", None), ("Infinity", None), ("1e999999999999999999", None),
     (10**12, None), (999999999999.995, None), ("-1000000000000", None), (10**4000, None),
     (True, None), ("abc", None), (999999999999.99, "999999999999.99"), (-12.5, "-12.5"),
     ("1e-9", "0.00"), ("1e-999999999999999999", "0.00"), ("0.005", "0.01"), (50, "50")],
)  # fmt: skip
def test_money_the_column_cannot_hold_is_null(valor: object, stored: str | None) -> None:
    assert _entry(Valor=valor)["valor"] == stored


@pytest.mark.parametrize(
    ("field", "column", "value", "stored"),
    [("NumeroParcela", "numero_parcela", 2**31, None),
     ("NumeroParcela", "numero_parcela", -(2**31) - 1, None),
     ("NumeroParcela", "numero_parcela", 2**31 - 1, 2**31 - 1),
     ("IdEmpresa", "id_empresa", 2**63, None), ("IdEmpresa", "id_empresa", 2**63 - 1, 2**63 - 1),
     ("IdCliente", "id_cliente", 2**70, None), ("IdFornecedor", "id_fornecedor", 1.0, None)],
)  # fmt: skip
def test_integers_outside_their_column_are_null(
    field: str, column: str, value: object, stored: int | None
) -> None:
    assert _entry(**{field: value})[column] == stored


@pytest.mark.parametrize(
    "stamp", ["9999-12-31T23:00:00", "9999-12-31T23:59:59.999", "0001-01-01T00:00:00",
              "0001-01-01T00:00:00+14:00", "1899-12-31T23:00:00", "2201-01-01T00:00:00"],
)  # fmt: skip
def test_instants_outside_1900_to_2200_are_null(stamp: str) -> None:
    row = _entry(DataCriacaoParcela=stamp, DataUltimaAlteracao="2200-12-31T23:00:00")
    assert row["remote_created_at"] is None
    assert row["remote_updated_at"] == "2201-01-01T02:00:00+00:00"


def test_text_a_column_cannot_hold_is_cleaned() -> None:
    row = _entry(Nome="x\u0000", NomeFormaPagamento="a\ud800", DocumentoClienteFornecedor=123)
    assert (row["nome"], row["forma_pagamento"]) == ("x", "a\ufffd")
    assert row["documento_cliente_fornecedor"] == "123"
    assert _entry(Nome=float("nan"), NomeClienteFornecedor={"a": 1})["nome"] is None
    client = map_client({"Id": 7, "Nome": "a\u0000", "Documento": "\udc00"})
    assert client is not None and (client["nome"], client["documento"]) == ("a", "\ufffd")
    assert map_client({"Id": 2**63}) is None  # beyond bigint, like id_cliente


@pytest.mark.parametrize("raw_id", ["a\u0000b", "\ud800", "x" * 201, 1.5, True])
def test_entries_with_an_unusable_id_are_skipped(raw_id: object) -> None:
    assert map_entry({"IdMovimentacaoFinanceiraParcela": raw_id}, SETTINGS) is None
