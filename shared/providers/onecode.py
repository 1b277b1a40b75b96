"""OneCode: WhatsApp CRM contacts with their tags, from the tenant's own host.

The API's quirks (PROVIDERS.md): one host per tenant (``https://api-<tenant>.onecode.chat``),
``page``/``pageSize`` paging where ``count`` is the listing's total and ``pageCount`` the
rows on this page; the server may apply a smaller page size than asked (its answer says
which), so arithmetic uses the size it reports. Errors are ``{"error": "ERR_..."}``; a 404
means the host or contact does not exist. 429/5xx/timeouts are retried by ``http``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from shared import jsonio
from shared.errors import UpstreamError
from shared.providers import paging
from shared.providers.base import (
    NoOptions,
    SyncContext,
    SyncResult,
    http_client,
    raise_for_auth,
)
from shared.secrets import require_secret
from shared.settings import Settings
from shared.sqlfiles import query
from shared.tenancy import Tenant

SLUG = "onecode"
NAME = "OneCode"
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ERROR_CODE = re.compile(r"^[A-Z0-9_]{1,64}$")
_MAX_ID_DIGITS = 64  # far beyond any real id; keeps the key well inside an index entry


def base_url(config: Mapping[str, Any], tenant: Tenant, settings: Settings) -> str:
    """The tenant's API host: config ``base_url``, else the template with its subdomain."""
    if config.get("base_url"):
        return str(config["base_url"])
    subdomain = str(config.get("subdomain") or tenant.slug).lower()
    if not _SUBDOMAIN.fullmatch(subdomain):
        raise UpstreamError(
            "The OneCode subdomain configured for this tenant is not valid.",
            code="provider_config",
            retryable=False,
        )
    return settings.providers.onecode_base_url.format(tenant=subdomain)


_timestamp = jsonio.iso_moment  # kept a datetime (the batch's JSON writer formats it)


_text = jsonio.text_field


def _contact_id(value: Any) -> str | None:
    """The contact id as canonical decimal text; None unless a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value) if isinstance(value, int) else value
    if not (text.isascii() and text.isdigit()):  # "²" is a digit but no number
        return None
    text = text.lstrip("0") or "0"  # not int(): a very long id would exceed its digit limit
    return text if len(text) <= _MAX_ID_DIGITS else None


def map_tag(raw: Any) -> dict[str, str | None] | None:
    """One tag; None for an entry that is not a tag."""
    if not isinstance(raw, dict) or raw.get("id") is None:
        return None
    tag_id = raw["id"]
    text_id = jsonio.db_text(tag_id) if isinstance(tag_id, str) else str(tag_id)
    return {"id": text_id, "name": _text(raw.get("name")), "color": _text(raw.get("color"))}


def map_contact(raw: Any) -> dict[str, Any] | None:
    """An API contact as a row of onecode_contacts; None when it has no integer id.

    This runs for every contact of every sync (50k contacts = 50k calls), so it stays
    plain: one dict, no intermediate lists.
    """
    if not isinstance(raw, dict):
        return None
    external_id = _contact_id(raw.get("id"))
    if external_id is None:
        return None
    tags = raw.get("tags")
    return {
        "external_id": external_id,
        "name": _text(raw.get("name")),
        "number": _text(raw.get("number")),
        "email": _text(raw.get("email")),
        "is_group": raw.get("isGroup") is True,
        "blocked": raw.get("blocked") is True,
        "tags": [t for t in map(map_tag, tags) if t is not None] if isinstance(tags, list) else [],
        "remote_created_at": _timestamp(raw.get("createdAt")),
        "remote_updated_at": _timestamp(raw.get("updatedAt")),
    }


def _refusal(response: httpx.Response) -> UpstreamError:
    """A 4xx other than auth: our request or configuration is wrong; retrying won't help."""
    try:
        body = jsonio.loads(response.content)
    except ValueError:
        body = None
    raw_code = body.get("error") if isinstance(body, dict) else None
    code = raw_code if isinstance(raw_code, str) and _ERROR_CODE.fullmatch(raw_code) else None
    what = f" ({code})" if code else ""
    return UpstreamError(
        f"{NAME} refused the request: HTTP {response.status_code}{what}.",
        code="provider_error",
        details={"provider": SLUG, "status": response.status_code, "error": code},
        retryable=False,
    )


def parse_page(response: httpx.Response, asked_size: int) -> paging.Page:
    """A contacts page, or the error its status and body mean."""
    raise_for_auth(response, NAME)
    if 400 <= response.status_code < 500:
        raise _refusal(response)
    try:
        body = jsonio.loads(response.content)
    except ValueError as exc:
        raise UpstreamError(f"{NAME} answered a body that is not JSON.") from exc
    contacts = body.get("contacts") if isinstance(body, dict) else None
    count = body.get("count") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(contacts, list) or not isinstance(count, int):
        raise UpstreamError(f"{NAME} answered an unexpected body.", details={"provider": SLUG})
    size = body.get("pageSize")
    rows = [r for r in map(map_contact, contacts) if r is not None]
    size = size if isinstance(size, int) and size > 0 else asked_size
    return paging.Page(rows, count, size, listed=len(contacts))


class OneCodeProvider:
    slug = SLUG
    display_name = NAME
    options = NoOptions

    def sync(self, ctx: SyncContext) -> SyncResult:
        """Every contact of the tenant, upserted a page at a time."""
        settings = ctx.settings
        token = require_secret(ctx.tenant.slug, SLUG, "token")
        client = http_client(
            base_url(ctx.config, ctx.tenant, settings), settings, NAME, secret=token
        )
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        size = settings.providers.onecode_page_size

        def fetch(number: int) -> paging.Page:
            response = client.request(
                "GET", "/api/contacts", params={"page": number, "pageSize": size}, headers=headers
            )
            return parse_page(response, size)

        def store(rows: list[dict[str, Any]]) -> int:
            return paging.upsert_json(ctx, query("onecode", "upsert_contacts"), rows)

        tuning = paging.Tuning.from_settings(
            settings, max_pages=settings.providers.onecode_max_pages
        )
        return paging.walk(ctx, fetch, store, tuning)


PROVIDER = OneCodeProvider()
