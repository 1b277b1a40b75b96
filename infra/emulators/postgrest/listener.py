"""Background threads: LISTEN for schema reloads and deliver the reverse-sync webhook.

* `pgrst` channel: `NOTIFY pgrst, 'reload schema'` (or an empty payload) reloads the
  schema cache, as PostgREST does.
* `gs_webhook` channel: the leads trigger queued a webhook body in
  `emulator.webhook_outbox`; the delivery thread takes it (at most once, like pg_net) and
  POSTs it to the configured URL with `Authorization: Bearer <secret>`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from infra.emulators.postgrest._sqlfile import query

if TYPE_CHECKING:
    from infra.emulators.postgrest.state import PostgrestState

log = logging.getLogger(__name__)
RELOAD_PAYLOADS = frozenset({"", "reload schema"})
OUTBOX_BATCH = 100


class Listener:
    """Owns the LISTEN connection and the webhook delivery thread."""

    def __init__(self, state: PostgrestState) -> None:
        self.state = state
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._threads: list[threading.Thread] = []
        self._http = httpx.Client(timeout=httpx.Timeout(state.webhook.timeout_s))

    def start(self) -> None:
        """Connect, LISTEN, and start both threads (LISTEN is active before this returns)."""
        self._conn = self._connect()
        for target, name in ((self._listen_loop, "listen"), (self._deliver_loop, "webhook")):
            thread = threading.Thread(target=target, name=f"postgrest-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._wake.set()  # deliver whatever the outbox already holds

    def stop(self) -> None:
        """Stop both threads and close the connection and the HTTP client."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._http.close()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.state.database_url, autocommit=True, connect_timeout=10)
        conn.execute("LISTEN pgrst")
        conn.execute("LISTEN gs_webhook")
        return conn

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._conn or self._connect()
                self._conn = conn
                for note in conn.notifies(timeout=0.2):
                    self._on_notify(note.channel, note.payload)
            except psycopg.Error:
                log.warning("postgrest emulator: LISTEN connection lost; reconnecting")
                self._reset_connection()
                self._stop.wait(0.5)

    def _reset_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        # A reconnect may have missed a NOTIFY: reload to be safe (PostgREST does too).
        with contextlib.suppress(psycopg.Error):
            self.state.reload_schema()

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == "pgrst" and payload in RELOAD_PAYLOADS:
            self.state.reload_schema()
        elif channel == "gs_webhook":
            self._wake.set()

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while self.deliver_batch() == OUTBOX_BATCH and not self._stop.is_set():
                    pass
            except psycopg.Error:
                log.warning("postgrest emulator: webhook outbox unavailable")

    def deliver_batch(self) -> int:
        """Take up to OUTBOX_BATCH queued webhook bodies and send them; returns how many."""
        with self.state.connection() as conn:
            if not conn.execute(query("outbox_present")).fetchone()["present"]:
                return 0
            rows = conn.execute(query("take_outbox"), {"limit": OUTBOX_BATCH}).fetchall()
        for row in rows:
            self._send(row["payload"])
        return len(rows)

    def _send(self, payload: dict[str, Any]) -> None:
        config = self.state.webhook
        if not config.url:
            self.state.count("webhook_dropped")
            return
        headers = {"Authorization": f"Bearer {config.secret}"} if config.secret else {}
        try:
            response = self._http.post(
                config.url, json=payload, headers=headers, timeout=config.timeout_s
            )
        except httpx.HTTPError:
            self.state.count("webhook_failed")
            return
        self.state.count("webhook_sent" if response.is_success else "webhook_failed")
        self.state.count(f"webhook_status_{response.status_code}")
