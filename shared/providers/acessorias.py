"""Acessórias: companies with their contacts, paged to the true end.

The API's quirks (PROVIDERS.md): `Pagina=N` from 1 with no total, an empty page is the end
— except that under load it may answer `200 []` early, so an empty page is re-checked
slowly before it is believed; business errors are `200 {"Erro": ...}`; 204/404 mean
nothing (a 404 that is neither empty nor JSON, or on page 1 not the API's JSON, is a
wrong base_url); items can repeat across pages, so rows are upserted by key. Items can
also be skipped: with no total to check against, a company removed from a page already
read while later pages are read shifts the next one back onto that page, and this sync
misses it (the next one reads it). A second walk would find it, at twice the requests
against the 100-a-minute limit: not taken.
"""

from __future__ import annotations

import re
import time
from datetime import date
from typing import Any

import httpx

from shared import jsonio
from shared.errors import UpstreamError
from shared.http import HttpClient
from shared.providers import pacing
from shared.providers.base import (
    NoOptions,
    SyncContext,
    SyncResult,
    http_client,
    progress_without_total,
    raise_for_auth,
)
from shared.providers.money import money_text
from shared.providers.pacing import Pacer
from shared.secrets import require_secret
from shared.sqlfiles import query

SLUG = "acessorias"
NAME = "Acessórias"


def parse_date(value: Any) -> str | None:
    """`dd/mm/yyyy` or `yyyy-mm-dd` to ISO; `0000-00-00`, blanks and nonsense to None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()[:10]
    try:
        if "/" in text:
            day, month, year = (int(p) for p in text.split("/"))
        else:
            year, month, day = (int(p) for p in text.split("-"))
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_money(value: Any) -> str | None:
    """`"759.00"` or `"1.234,56"` to a decimal string; anything else, or a fee the column
    cannot hold (NaN, infinities, 10^12 or more), to None (``money_text``)."""
    if isinstance(value, str) and "," in value:
        value = value.replace(".", "").replace(",", ".")
    return money_text(value)


_text = jsonio.text_field
_MAX_ID = 200  # far beyond a real id; keeps the key well inside an index entry


def _company_id(value: Any) -> str | None:
    """The company's ID; None when missing or unusable."""
    if isinstance(value, str) and jsonio.db_text(value) != value:
        return None  # an id with NUL or a lone surrogate: cleaning it could merge two rows
    text = _text(value)
    return text if text is not None and len(text) <= _MAX_ID else None


def map_contact(raw: Any) -> dict[str, str | None]:
    """One entry of ContatosNaEmpresa."""
    item = raw if isinstance(raw, dict) else {}
    return {
        "name": _text(item.get("Nome")),
        "email": _text(item.get("E-mail") or item.get("Email")),
        "phone": _text(item.get("Celular") or item.get("Telefone")),
    }


def map_company(raw: dict[str, Any]) -> dict[str, Any] | None:
    """An API company as a row of acessorias_companies; None when it has no ID."""
    external_id = _company_id(raw.get("ID"))
    if external_id is None:
        return None
    contacts = raw.get("ContatosNaEmpresa")
    return {
        "external_id": external_id,
        "cnpj": _text(raw.get("Identificador")),
        "razao": _text(raw.get("Razao")),
        "fantasia": _text(raw.get("Fantasia")),
        "status": _text(raw.get("Status")),
        "uf": _text(raw.get("UF")),
        "cliente_desde": parse_date(raw.get("ClienteDesde")),
        "cliente_ate": parse_date(raw.get("ClienteAte")),
        "honorario": parse_money(raw.get("Honorario")),
        "contacts": [map_contact(c) for c in contacts] if isinstance(contacts, list) else [],
    }


def parse_page(response: httpx.Response, *, first: bool = False) -> list[dict[str, Any]]:
    """A companies page: a list (maybe empty), or an error for `{"Erro": ...}` and the like
    (told in our words: the provider's may quote the token or a customer's data). `first`:
    page 1, where a 404 must look like the API's own to mean an empty account."""
    raise_for_auth(response, NAME)
    if response.status_code == 204 or (
        response.status_code == 404 and _api_answer(response, first=first)
    ):
        return []
    if response.status_code == 404:
        raise UpstreamError(
            f"{NAME} has no such endpoint (HTTP 404 from something else): check its base_url.",
            code="provider_config",
            details={"provider": SLUG, "status": 404},
            retryable=False,
        )
    if response.status_code != 200:
        raise UpstreamError(
            f"{NAME} answered HTTP {response.status_code}.",
            details={"provider": SLUG, "status": response.status_code},
        )
    try:
        body = jsonio.loads(response.content)
    except ValueError as exc:
        raise UpstreamError(f"{NAME} answered a body that is not JSON.") from exc
    if isinstance(body, dict) and "Erro" in body:
        raise UpstreamError(
            f"{NAME} refused the request: {_business_error(str(body['Erro']))}",
            code="provider_error",
            details={"provider": SLUG},
            retryable=False,
        )
    if not isinstance(body, list):
        raise UpstreamError(f"{NAME} answered an unexpected body.", details={"provider": SLUG})
    items = [item for item in body if isinstance(item, dict)]
    if body and not items:  # entries, none of them a company: not the end of the listing
        raise UpstreamError(
            f"{NAME} answered a page with no company on it.", details={"provider": SLUG}
        )
    return items


def _api_answer(response: httpx.Response, *, first: bool) -> bool:
    """A 404 the API means as "nothing": empty or JSON. A page of any other kind comes from
    a router or proxy in front of a wrong address, and must not read as an empty account;
    on page 1, where a wrong address shows, the JSON must be the API's shapes too (a list,
    or its `{"Erro": ...}`): gateways answer an unknown path in JSON of their own."""
    if not response.content.strip():
        return True
    try:
        body = jsonio.loads(response.content)
    except ValueError:
        return False
    return not first or isinstance(body, list) or (isinstance(body, dict) and "Erro" in body)


# A business error is in the provider's own words, which may quote a customer's name,
# address or documents: no scrubbing can find a name, so the words are never kept. What
# they are about is told in ours.
_ABOUT = (
    (re.compile(r"token|permiss|autoriz|acesso", re.I), "the token was refused or lacks access"),
    (re.compile(r"p[áa]gina|par[âa]metro|data|per[íi]odo", re.I), "the query was refused"),
)


def _business_error(words: str) -> str:
    """Our account of a business error, in our words."""
    for pattern, about in _ABOUT:
        if pattern.search(words):
            return f"{about} (its own message is not kept: it may quote customer data)."
    return "a business error (its own message is not kept: it may quote customer data)."


class AcessoriasProvider:
    slug = SLUG
    display_name = NAME
    options = NoOptions

    def sync(self, ctx: SyncContext) -> SyncResult:
        settings = ctx.settings
        token = require_secret(ctx.tenant.slug, SLUG, "token")
        base_url = str(ctx.config.get("base_url") or settings.providers.acessorias_base_url)
        client = http_client(base_url, settings, NAME, secret=token)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        pacer = pacing.shared(
            base_url,
            token,
            settings.providers.acessorias_rate_limit,
            settings.providers.acessorias_rate_window_s,
        )
        seen: set[str] = set()
        result = SyncResult()
        page = 1
        while True:  # the listing ends on an empty page
            ctx.progress(progress_without_total(result.pages))
            items = self._fetch(client, headers, page, ctx, pacer)
            if not items:
                break
            if page > settings.providers.acessorias_max_pages:
                raise UpstreamError(
                    f"{NAME}'s listing is longer than "
                    f"{settings.providers.acessorias_max_pages} pages; "
                    "raise ACESSORIAS_MAX_PAGES to read it whole.",
                    code="listing_too_long",
                    details={"provider": SLUG, "records": len(seen)},
                    retryable=False,
                )
            rows = {r["external_id"]: r for r in map(map_company, items) if r is not None}
            with ctx.transaction() as conn:
                conn.execute(
                    query("acessorias", "upsert_companies"),
                    {"tenant_id": ctx.tenant.id, "rows": jsonio.dumps(list(rows.values()))},
                )
            seen.update(rows)
            result.pages += 1
            page += 1
        result.records = len(seen)
        return result

    def _fetch(
        self,
        client: HttpClient,
        headers: dict[str, str],
        page: int,
        ctx: SyncContext,
        pacer: Pacer,
    ) -> list[dict[str, Any]]:
        """One page; an empty answer is asked again, slowly, before it is believed."""
        settings = ctx.settings
        items = self._get(client, headers, page, pacer)
        rechecks = 0
        while not items and rechecks < settings.providers.acessorias_empty_rechecks:
            rechecks += 1
            time.sleep(settings.providers.acessorias_empty_recheck_s * rechecks)
            ctx.progress(progress_without_total(page - 1))
            items = self._get(client, headers, page, pacer)
        return items

    def _get(
        self, client: HttpClient, headers: dict[str, str], page: int, pacer: Pacer
    ) -> list[dict[str, Any]]:
        response = client.request(
            "GET",
            "/companies/ListAll",
            params={"Pagina": page, "contacts": ""},
            headers=headers,
            pacer=pacer,  # every try under the token's request rate: a wait, not a 429
        )
        return parse_page(response, first=page == 1)


PROVIDER = AcessoriasProvider()
