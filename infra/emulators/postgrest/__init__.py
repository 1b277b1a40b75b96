"""Emulator of the remote Gestão Scouter project: the PostgREST (`/rest/v1`) subset syncq uses,
over a real Postgres database.

Run it with `python -m infra.emulators.postgrest --port 8105 --database-url URL --jwt-secret S`.
Tests build a `PostgrestState`, serve `create_app(state)` with `start_in_thread`, drive
`state.knobs` / `state.webhook` directly, and call `state.close()` at the end.
"""

from __future__ import annotations

from infra.emulators.postgrest.app import create_app
from infra.emulators.postgrest.auth import make_key
from infra.emulators.postgrest.bootstrap import ensure_remote_database, sibling_url
from infra.emulators.postgrest.state import Knobs, PostgrestState, WebhookConfig

__all__ = [
    "Knobs",
    "PostgrestState",
    "WebhookConfig",
    "create_app",
    "ensure_remote_database",
    "make_key",
    "sibling_url",
]
