"""OneCode API emulator (white-labelled WhatsApp CRM), see ../shared/PROVIDERS.md.

Run: ``python -m infra.emulators.onecode --port 8102 --seed-token tenant-a-token=500``.

The real service gives every tenant its own host (``https://api-<tenant>.onecode.chat``).
The emulator serves **all tenants on one port and tells them apart by the Bearer token**;
point each tenant's base URL at the emulator, the Host header is ignored.

* ``GET /api/contacts?page=1&pageSize=20`` -> ``{"contacts": [...], "count": <total rows>,
  "page": N, "pageSize": M, "pageCount": <rows on this page>}``, ordered by ``id``.
  ``page`` defaults to 1 and ``pageSize`` to 20. A ``pageSize`` above ``max_page_size``
  (100) is **clamped** by default and the answer reports the size used
  (``page_size_mode="reject"`` answers 400 ``{"error": "ERR_PAGE_SIZE"}`` instead).
  A page past the end answers ``contacts: []`` with the real ``count``.
  A non-integer or < 1 ``page``/``pageSize`` -> 400 ``{"error": "ERR_INVALID_PAGINATION"}``.
* ``GET /api/contacts/{id}`` -> the contact, or 404 ``{"error": "ERR_NO_CONTACT_FOUND"}``.
* Contacts: ``{id:int, name, number, email, profilePicUrl, isGroup, blocked, userId,
  queueId, tags: [{id:str, name, color}], createdAt, updatedAt}`` (ISO-8601 with ms and Z).

Errors are ``{"error": "ERR_..."}``: missing token 401 ``ERR_SESSION_EXPIRED``, unknown
token 401 ``ERR_INVALID_TOKEN``, throttled 429 ``ERR_TOO_MANY_REQUESTS`` (the real limits
are unknown: use the ``rate_429`` / ``rate_limit_per_min`` knobs), 500 ``ERR_INTERNAL``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from flask import Flask, Response, jsonify, request

from infra.emulators._common import (
    EmulatorState,
    Knobs,
    bearer_token,
    make_app,
    run_cli,
    too_many_requests,
)
from infra.emulators._datasets import Datasets
from infra.emulators._fakedata import (
    UF_DDD,
    company_name,
    email_for,
    mobile,
    person_name,
)

TAGS = (
    ("1", "VIP", "#0F0"),
    ("2", "Lead", "#2196F3"),
    ("3", "Cliente", "#4CAF50"),
    ("4", "Inadimplente", "#F44336"),
    ("5", "Suporte", "#FF9800"),
)
EPOCH = datetime(2023, 1, 1, tzinfo=UTC)


@dataclass
class OneCodeKnobs(Knobs):
    """Common knobs plus the page-size policy."""

    max_page_size: int = 100
    page_size_mode: str = "clamp"  # or "reject"


def iso(moment: datetime) -> str:
    """OneCode's timestamp format: ``2024-05-01T12:00:00.000Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def make_contact(rng: Random, contact_id: int) -> dict[str, Any]:
    """One realistic contact (a person, or now and then a WhatsApp group)."""
    uf = rng.choice(list(UF_DDD))
    is_group = rng.random() < 0.04
    name = f"Grupo {company_name(rng)[1]}" if is_group else person_name(rng)
    number = f"1203634{rng.randint(10**10, 10**11 - 1)}" if is_group else mobile(rng, uf, True)
    created = EPOCH + timedelta(minutes=rng.randint(0, 900_000), milliseconds=rng.randint(0, 999))
    updated = created + timedelta(minutes=rng.randint(0, 50_000))
    tags = rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2, 3)))
    return {
        "id": contact_id,
        "name": name,
        "number": number,
        "email": "" if is_group or rng.random() < 0.5 else email_for(name, rng),
        "profilePicUrl": "" if rng.random() < 0.3 else f"https://pps.whatsapp.net/v/{number}.jpg",
        "isGroup": is_group,
        "blocked": rng.random() < 0.02,
        "userId": rng.choice((None, 1, 2, 3)),
        "queueId": rng.choice((None, 1, 2)),
        "tags": [{"id": t[0], "name": t[1], "color": t[2]} for t in tags],
        "createdAt": iso(created),
        "updatedAt": iso(updated),
    }


class OneCodeState(EmulatorState):
    """Per-token contact lists plus knobs and counters."""

    knobs_cls = OneCodeKnobs
    knobs: OneCodeKnobs

    def __init__(self, *, seed: int = 0, knobs: Knobs | None = None) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self._contacts = Datasets(self.lock, "id")
        # Serialized rows, keyed by the row object (rows are replaced, never edited).
        self._encoded: dict[int, tuple[dict[str, Any], str]] = {}
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def seed_token(self, token: str, count: int) -> None:
        """Generate ``count`` contacts for a token."""
        rng = self.data_rng(token)
        first_id = rng.randint(1, 5000)
        self.set_contacts(token, [make_contact(rng, first_id + i) for i in range(count)])

    def set_contacts(self, token: str, contacts: list[dict[str, Any]]) -> None:
        """Add or replace a tenant's contacts (served ordered by id)."""
        self._contacts.set(token, contacts)

    def tokens(self) -> list[str]:
        """Known tenant tokens."""
        return self._contacts.tokens()

    def contacts(self, token: str) -> list[dict[str, Any]]:
        """A copy of every contact of a token."""
        return self._contacts.copy(token)

    def mutate_contact(
        self, token: str, contact_id: int | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change one contact (default: the first; default change: its name); bumps updatedAt."""
        return self._contacts.mutate(
            token,
            contact_id,
            changes,
            default=lambda row: {"name": f"{row['name']} (editado)"},
            stamp={"updatedAt": iso(self.clock())},
        )

    def add_contact(self, token: str, **overrides: Any) -> dict[str, Any]:
        """Append a new contact (next id) and return it."""

        def build(next_id: int) -> dict[str, Any]:
            contact = make_contact(Random(f"{self.seed}:{token}:{next_id}"), next_id)
            contact.update(overrides, id=next_id, createdAt=iso(self.clock()))
            contact["updatedAt"] = contact["createdAt"]
            return contact

        return self._contacts.add(token, build)

    def remove_contact(self, token: str, contact_id: int) -> None:
        """Delete one contact."""
        self._contacts.remove(token, contact_id)

    def dump(self, token: str) -> Any:
        """Every contact of a token, or None."""
        with self.lock:
            return {"contacts": self._contacts.snapshot(token)} if token in self._contacts else None

    def encoded(self, row: dict[str, Any]) -> str:
        """The row as compact JSON, serialized once (keeps big listings cheap to serve)."""
        hit = self._encoded.get(id(row))
        if hit is None or hit[0] is not row:
            hit = (row, json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            self._encoded[id(row)] = hit
        return hit[1]

    def snapshot(self, token: str) -> list[dict[str, Any]]:
        """The current list (shallow: rows are replaced on change, never edited)."""
        return self._contacts.snapshot(token)


def _error(status: int, code: str) -> Response:
    resp = jsonify({"error": code})
    resp.status_code = status
    return resp


def _error_response(status: int, message: str) -> Response:
    return _error(status, "ERR_TOO_MANY_REQUESTS" if status == 429 else "ERR_INTERNAL")


def _authorize(state: OneCodeState) -> str | Response:
    """The tenant token, or the error to answer."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return _error(401, "ERR_SESSION_EXPIRED")
    if token not in state.tokens():
        return _error(401, "ERR_INVALID_TOKEN")
    if not state.take_rate_slot(token):
        return too_many_requests(state, _error_response)
    return token


def _positive_int(name: str, default: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    return int(raw) if raw.isdigit() and int(raw) >= 1 else None


def create_app(state: OneCodeState) -> Flask:
    """The OneCode emulator as a WSGI app."""
    app = make_app("onecode", state, _error_response)

    @app.get("/api/contacts")
    def list_contacts() -> Response:
        token = _authorize(state)
        if isinstance(token, Response):
            return token
        page, size = _positive_int("page", 1), _positive_int("pageSize", 20)
        if page is None or size is None:
            return _error(400, "ERR_INVALID_PAGINATION")
        if size > state.knobs.max_page_size:
            if state.knobs.page_size_mode == "reject":
                return _error(400, "ERR_PAGE_SIZE")
            size = state.knobs.max_page_size
        rows = state.snapshot(token)
        chunk = rows[(page - 1) * size : page * size]
        contacts = ",".join(state.encoded(row) for row in chunk)
        tail = f'"count":{len(rows)},"page":{page},"pageSize":{size},"pageCount":{len(chunk)}'
        return Response(f'{{"contacts":[{contacts}],{tail}}}', mimetype="application/json")

    @app.get("/api/contacts/<contact_id>")
    def get_contact(contact_id: str) -> Response:
        token = _authorize(state)
        if isinstance(token, Response):
            return token
        wanted = int(contact_id) if contact_id.isdigit() else None
        found = next((c for c in state.snapshot(token) if c["id"] == wanted), None)
        return jsonify(found) if found else _error(404, "ERR_NO_CONTACT_FOUND")

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m infra.emulators.onecode``."""
    run_cli(create_app, argv, state_factory=OneCodeState, name="onecode", default_port=8102)


if __name__ == "__main__":
    main(sys.argv[1:])
