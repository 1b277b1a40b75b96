"""BomControle: financial installments changed since the last successful run, and clients.

The API's quirks (PROVIDERS.md): ``Authorization: ApiKey <key>``; ``Financeiro/Pesquisar``
filters by a date window on the field ``tipoData`` names (``UltimaAlteracao`` here), the
dates written ``yyyy-mm-dd hh:mi:ss`` with the space as ``%20`` — a ``+`` is rejected, and
httpx's ``params=`` writes ``+``, so the query string is built here and put in the path;
at most 100 items per page; the answer is ``{"Itens", "TotalItens"}``. ``Cliente/Pesquisar``
answers a bare array with no paging. Timestamps are Brasília local time without offset.

Incremental window: from the start of the last successful run minus an overlap (clock
skew, late commits) to now plus the overlap, in the provider's clock; the first run (or a
payload ``{"full": true}``) starts at ``bomcontrole_first_sync_from``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shared import jsonio
from shared.errors import UpstreamError
from shared.http import HttpClient
from shared.providers import paging
from shared.providers.base import SyncContext, SyncResult, http_client, raise_for_auth
from shared.providers.money import money_text
from shared.scrub import scrub_text
from shared.secrets import require_secret
from shared.settings import Settings
from shared.sqlfiles import query


class BomControleOptions(BaseModel):
    """A BomControle job's payload."""

    model_config = ConfigDict(extra="forbid")

    full: StrictBool = Field(
        False,
        description="Read every installment again, not only those changed since the "
        "last successful run.",
    )


SLUG = "bomcontrole"
NAME = "BomControle"
FINANCEIRO = "/integracao/Financeiro/Pesquisar"
CLIENTES = "/integracao/Cliente/Pesquisar"
_WIRE = "%Y-%m-%d %H:%M:%S"
_INT4 = 2**31
_INT8 = 2**63
_MAX_KEY = 200  # far beyond a GUID; keeps the key well inside an index entry
CLIENT_BATCH = 500


def provider_now(settings: Settings, now: datetime | None = None) -> datetime:
    """The provider's wall clock (naive local time) for an aware instant (default: now)."""
    instant = (now or datetime.now(UTC)).astimezone(UTC)
    return (instant + timedelta(hours=settings.providers.bomcontrole_utc_offset_hours)).replace(
        tzinfo=None
    )


def window(ctx: SyncContext, now: datetime | None = None) -> tuple[str, str]:
    """(dataInicio, dataTermino) in the provider's clock and wire format."""
    settings = ctx.settings
    overlap = timedelta(seconds=settings.providers.bomcontrole_overlap_s)
    end = (provider_now(settings, now) + overlap).strftime(_WIRE)
    last = None if ctx.payload.get("full") is True else ctx.last_success_at()
    if not isinstance(last, datetime):
        return settings.providers.bomcontrole_first_sync_from, end
    return (provider_now(settings, last) - overlap).strftime(_WIRE), end


def wire_query(params: dict[str, Any]) -> str:
    """A query string with spaces as %20 (never '+'), as the API demands."""
    return urlencode({k: str(v) for k, v in params.items()}, quote_via=quote, safe=":")


def _instant(value: Any, settings: Settings) -> str | None:
    """A provider-local timestamp as an ISO instant with the provider's offset."""
    local = jsonio.iso_moment(value)
    if local is None:
        return None
    try:
        if local.tzinfo is None:
            offset = timedelta(hours=settings.providers.bomcontrole_utc_offset_hours)
            local = local.replace(tzinfo=UTC) - offset
        return local.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        return None


def _day(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return datetime.fromisoformat(value[:10]).date().isoformat()
    except ValueError:
        return None


def _int(value: Any, limit: int = _INT8) -> int | None:
    """An integer its column holds (bigint by default, ``_INT4`` for integer), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and -limit <= value < limit:
        return value
    return None


_money = money_text


_text = jsonio.text_field


def _entry_id(value: Any) -> str | None:
    """The installment id (a GUID) as lower-case text; None when missing or unusable."""
    if isinstance(value, str) and jsonio.db_text(value) != value:
        return None  # an id with NUL or a lone surrogate: cleaning it could merge two rows
    text = _text(value)
    if text is None or len(text) > _MAX_KEY:
        return None
    return text.lower()


def map_entry(raw: Any, settings: Settings) -> dict[str, Any] | None:
    """A ``Financeiro/Pesquisar`` item as a row; None without an installment id."""
    if not isinstance(raw, dict):
        return None
    external_id = _entry_id(raw.get("IdMovimentacaoFinanceiraParcela"))
    if external_id is None:
        return None
    return {
        "external_id": external_id,
        "debito": raw.get("Debito") if isinstance(raw.get("Debito"), bool) else None,
        "data_vencimento": _day(raw.get("DataVencimento")),
        "data_competencia": _day(raw.get("DataCompetencia")),
        "data_quitacao": _day(raw.get("DataQuitacao")),
        "data_conciliacao": _day(raw.get("DataConciliacao")),
        "valor": _money(raw.get("Valor")),
        "forma_pagamento": _text(raw.get("NomeFormaPagamento")),
        "nome": _text(raw.get("Nome")),
        "numero_parcela": _int(raw.get("NumeroParcela"), _INT4),
        "id_empresa": _int(raw.get("IdEmpresa")),
        "id_cliente": _int(raw.get("IdCliente")),
        "id_fornecedor": _int(raw.get("IdFornecedor")),
        "nome_cliente_fornecedor": _text(raw.get("NomeClienteFornecedor")),
        "documento_cliente_fornecedor": _text(raw.get("DocumentoClienteFornecedor")),
        "remote_created_at": _instant(raw.get("DataCriacaoParcela"), settings),
        "remote_updated_at": _instant(raw.get("DataUltimaAlteracao"), settings),
    }


def map_client(raw: Any) -> dict[str, Any] | None:
    """A ``Cliente/Pesquisar`` entry as a row; None without an integer Id."""
    if not isinstance(raw, dict) or _int(raw.get("Id")) is None:
        return None
    return {
        "external_id": str(raw["Id"]),
        "nome": _text(raw.get("Nome") or raw.get("RazaoSocial")),
        "nome_fantasia": _text(raw.get("NomeFantasia")),
        "documento": _text(raw.get("Documento")),
        "tipo_pessoa": _text(raw.get("TipoPessoa")),
        "bloqueado": raw.get("Bloqueado") if isinstance(raw.get("Bloqueado"), bool) else None,
    }


def _body(response: httpx.Response, secrets: Iterable[str] = ()) -> Any:
    """The JSON of a 200, or the error its status means (a 4xx with what the API said was
    wrong, scrubbed of ``secrets`` and personal data)."""
    raise_for_auth(response, NAME)
    if 400 <= response.status_code < 500:
        said = _refusal(response, secrets)
        raise UpstreamError(
            f"{NAME} refused the request (HTTP {response.status_code})"
            + (f": {said}" if said else "."),
            code="provider_error",
            details={"provider": SLUG, "status": response.status_code},
            retryable=False,
        )
    if response.status_code != 200:
        raise UpstreamError(f"{NAME} answered HTTP {response.status_code}.")
    try:
        return jsonio.loads(response.content)
    except ValueError as exc:
        raise UpstreamError(f"{NAME} answered a body that is not JSON.") from exc


def _refusal(response: httpx.Response, secrets: Iterable[str]) -> str:
    """A 4xx's ``Message`` and the fields its ``ModelState`` names, with their problems."""
    try:
        body = jsonio.loads(response.content)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [body["Message"]] if isinstance(body.get("Message"), str) else []
    state = body.get("ModelState")
    for field, problems in state.items() if isinstance(state, dict) else ():
        listed = problems if isinstance(problems, list) else [problems]
        said = "; ".join(p for p in listed if isinstance(p, str))
        parts.append(f"{field}: {said}" if said else str(field))
    return scrub_text(" ".join(parts), secrets)[:300]


def parse_entries(
    response: httpx.Response, size: int, settings: Settings, secrets: Iterable[str] = ()
) -> paging.Page:
    """One ``{"Itens", "TotalItens"}`` page."""
    body = _body(response, secrets)
    items = body.get("Itens") if isinstance(body, dict) else None
    total = body.get("TotalItens") if isinstance(body, dict) else None
    if not isinstance(items, list) or _int(total) is None:
        raise UpstreamError(f"{NAME} answered an unexpected body.", details={"provider": SLUG})
    rows = [r for r in (map_entry(i, settings) for i in items) if r is not None]
    return paging.Page(rows, int(total or 0), size, listed=len(items))


class BomControleProvider:
    slug = SLUG
    display_name = NAME
    options = BomControleOptions

    def sync(self, ctx: SyncContext) -> SyncResult:
        """Installments changed in the incremental window, then every client."""
        settings = ctx.settings
        key = require_secret(ctx.tenant.slug, SLUG, "api_key")
        base = str(ctx.config.get("base_url") or settings.providers.bomcontrole_base_url)
        client = http_client(base, settings, NAME, secret=key)
        headers = {"Authorization": f"ApiKey {key}", "Accept": "application/json"}
        start, end = window(ctx)
        size = min(settings.providers.bomcontrole_page_size, 100)

        def fetch(number: int) -> paging.Page:
            params = {
                "dataInicio": start,
                "dataTermino": end,
                "tipoData": "UltimaAlteracao",
                "paginacao.itensPorPagina": size,
                "paginacao.numeroDaPagina": number,
            }
            response = client.request("GET", f"{FINANCEIRO}?{wire_query(params)}", headers=headers)
            return parse_entries(response, size, settings, client.secrets)

        def store(rows: list[dict[str, Any]]) -> int:
            return paging.upsert_json(ctx, query("bomcontrole", "upsert_entries"), rows)

        tuning = paging.Tuning.from_settings(
            settings, max_pages=settings.providers.bomcontrole_max_pages, progress_span=(0, 90)
        )
        result = paging.walk(ctx, fetch, store, tuning)
        result.extra["window"] = {"from": start, "to": end}
        result.extra["clients"] = self._clients(ctx, client, headers)
        return result

    def _clients(self, ctx: SyncContext, client: HttpClient, headers: dict[str, str]) -> int:
        """Every client (a bare array, no paging), upserted in batches."""
        ctx.progress(90)
        response = client.request("GET", CLIENTES, headers=headers)
        body = _body(response, client.secrets)
        if not isinstance(body, list):
            raise UpstreamError(f"{NAME} answered an unexpected body.", details={"provider": SLUG})
        rows = list({r["external_id"]: r for r in map(map_client, body) if r is not None}.values())
        sql = query("bomcontrole", "upsert_clients")
        for start in range(0, len(rows), CLIENT_BATCH):
            ctx.progress(90 + 9 * start // max(len(rows), 1))
            paging.upsert_json(ctx, sql, rows[start : start + CLIENT_BATCH])
        return len(rows)


PROVIDER = BomControleProvider()
