"""Mapping of Acessórias' stringly-typed records (pure)."""

from __future__ import annotations

import httpx
import pytest

from shared.errors import UpstreamError
from shared.providers.acessorias import map_company, parse_date, parse_money, parse_page


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020-01-31", "2020-01-31"),
        ("31/01/2020", "2020-01-31"),
        ("0000-00-00", None),
        ("", None),
        (None, None),
        ("31/02/2020", None),
        ("2021-03-04 10:11:12", "2021-03-04"),
    ],
)
def test_parse_date(raw: object, expected: str | None) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("759.00", "759.00"), ("1.234,56", "1234.56"), ("", None), ("abc", None), (50, "50"),
     ("999999999999.99", "999999999999.99"), ("-999999999999.99", "-999999999999.99"),
     ("1e-99999999", "0.00"), ("0,005", "0.01"), ("1E+3", "1E+3")],
)  # fmt: skip
def test_parse_money(raw: object, expected: str | None) -> None:
    assert parse_money(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["1e20", "Infinity", "-Infinity", "NaN", "sNaN", "99999999999999.99", "1.000.000.000.000,00",
     "999999999999.995", 10**12, float("inf"), float("nan"), True],
)  # fmt: skip
def test_parse_money_refuses_what_numeric_14_2_cannot_hold(raw: object) -> None:
    assert parse_money(raw) is None


def test_map_company() -> None:
    row = map_company({
        "ID": "214", "Identificador": "47.794.801/0001-30", "Razao": " X LTDA ", "Fantasia": "",
        "Status": "Ativa", "UF": "SP", "ClienteDesde": "01/02/2020", "ClienteAte": "0000-00-00",
        "Honorario": "759.00",
        "ContatosNaEmpresa": [{"Nome": "Ana", "E-mail": "a@x.com", "Celular": "11999990000"}],
    })  # fmt: skip
    assert row == {
        "external_id": "214", "cnpj": "47.794.801/0001-30", "razao": "X LTDA", "fantasia": None,
        "status": "Ativa", "uf": "SP", "cliente_desde": "2020-02-01", "cliente_ate": None,
        "honorario": "759.00",
        "contacts": [{"name": "Ana", "email": "a@x.com", "phone": "11999990000"}],
    }  # fmt: skip
    assert map_company({"Razao": "no id"}) is None


def test_map_company_keeps_only_what_postgresql_holds() -> None:
    """A NUL is cleaned out of text; an id that cleaning would change, or too long for the
    key's index, drops the record (two ids must never merge into one row)."""
    row = map_company({"ID": 214, "Razao": "A\u0000B", "ContatosNaEmpresa": [{"Nome": "C\u0000"}]})
    assert row is not None
    assert (row["external_id"], row["razao"], row["contacts"][0]["name"]) == ("214", "AB", "C")
    assert map_company({"ID": "2\u000014"}) is None
    assert map_company({"ID": "9" * 201}) is None
    assert map_company({"ID": "9" * 200}) is not None


def _response(status: int, body: object = None) -> httpx.Response:
    return httpx.Response(status, json=body) if body is not None else httpx.Response(status)


def test_parse_page_quirks() -> None:
    assert parse_page(_response(200, [{"ID": "1"}, "junk"])) == [{"ID": "1"}]
    assert parse_page(_response(204)) == []
    assert parse_page(_response(404)) == []
    assert parse_page(_response(404, [])) == []
    with pytest.raises(UpstreamError) as business:
        parse_page(_response(200, {"Erro": "Pagina inválida"}))
    assert not business.value.retryable
    assert business.value.message.startswith("Acessórias refused the request: the query was")
    # The provider's words may quote a customer's name, address or documents, which no
    # scrubbing finds: they are never kept, only what they are about.
    for words, about in (
        ("Empresa 12.345.678/0001-90 (Maria Sigilosa, Rua das Flores 123)", "a business error"),
        ("Token tok-acme-123 sem permissão para Maria Sigilosa", "the token was refused"),
    ):
        with pytest.raises(UpstreamError) as refused:
            parse_page(_response(200, {"Erro": words}))
        message = refused.value.message
        assert message.startswith(f"Acessórias refused the request: {about}")
        for quoted in ("Maria", "Flores", "0001-90", "tok-acme"):
            assert quoted not in message
    with pytest.raises(UpstreamError) as auth:
        parse_page(_response(401, {"Erro": "token"}))
    assert not auth.value.retryable
    with pytest.raises(UpstreamError):
        parse_page(_response(200, {"unexpected": True}))


def test_a_404_page_that_is_not_the_apis_is_a_configuration_error() -> None:
    """The API's "nothing" 404 is empty or JSON; a router's or proxy's page (a wrong
    base_url) must not read as an empty account, a success that synced nothing."""
    page = httpx.Response(404, text="<!doctype html><title>404 Not Found</title>")
    with pytest.raises(UpstreamError) as wrong:
        parse_page(page)
    assert (wrong.value.error_code, wrong.value.retryable) == ("provider_config", False)
    assert "base_url" in wrong.value.message
    # A gateway's own JSON for an unknown path: on page 1, where a wrong address shows, it
    # is not the API's; after page 1 any JSON 404 ends the listing.
    gateway = httpx.Response(404, json={"message": "no Route matched with those values"})
    with pytest.raises(UpstreamError):
        parse_page(gateway, first=True)
    assert parse_page(gateway) == []
    assert parse_page(_response(404, []), first=True) == []
    assert parse_page(_response(404), first=True) == []
