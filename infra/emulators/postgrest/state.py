"""State of the PostgREST emulator: knobs, keys, webhook target, counters, DB runtime."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from infra.emulators import _common
from infra.emulators.postgrest import auth, bootstrap
from infra.emulators.postgrest._sqlfile import query
from infra.emulators.postgrest.listener import Listener
from infra.emulators.postgrest.schema_cache import SchemaCache, load_schema_cache

DEFAULT_PROJECT_REF = "gestaoscouterlocal"


@dataclass
class Knobs(_common.Knobs):
    """Common fault knobs plus row rejects and lost answers after a commit."""

    # Batches holding one of these ids (compared as text) fail as a whole, like a bad row.
    reject_ids: frozenset[str] = field(default_factory=frozenset)
    reject_status: int = 400  # 400 -> not-null violation body, 409 -> unique violation body
    # Probability that a successful write is committed but answered with a 5xx.
    post_commit_error_rate: float = 0.0
    # A proxy's request-body limit in front of PostgREST (0: none): larger bodies get 413.
    max_body_bytes: int = 0

    def update(self, changes: Mapping[str, Any]) -> None:
        """Like Knobs.update, accepting reject_ids as a list or a comma-separated string."""
        changes = dict(changes)
        ids = changes.pop("reject_ids", None)
        status = changes.get("reject_status")
        if status is not None and int(status) not in (400, 409):
            raise ValueError("knob reject_status must be 400 or 409")
        parsed = None if ids is None else parse_ids(ids)
        super().update(changes)
        if parsed is not None:
            self.reject_ids = parsed

    def as_dict(self) -> dict[str, Any]:
        """The knobs as a JSON-ready dict."""
        out = super().as_dict()
        out["reject_ids"] = sorted(self.reject_ids)
        return out


def parse_ids(raw: Any) -> frozenset[str]:
    """reject_ids from a list, a set or a comma-separated string."""
    if isinstance(raw, str):
        items: Iterable[Any] = (part for part in raw.split(",") if part.strip())
    elif isinstance(raw, list | tuple | set | frozenset):
        items = raw
    else:
        raise ValueError(f"bad value for knob reject_ids: {raw!r}")
    return frozenset(str(item).strip() for item in items)


@dataclass
class WebhookConfig:
    """Where the reverse-sync trigger's requests go (None: dropped, like no trigger)."""

    url: str | None = None
    secret: str | None = None
    timeout_s: float = 5.0


class PostgrestState(_common.EmulatorState):
    """The emulated remote project. `open()` connects; `close()` releases everything."""

    knobs_cls = Knobs
    knobs: Knobs

    def __init__(
        self,
        database_url: str,
        jwt_secret: str,
        *,
        project_ref: str = DEFAULT_PROJECT_REF,
        webhook: WebhookConfig | None = None,
        opaque_keys: Mapping[str, str] | None = None,
        pool_size: int = 8,
        apply_schema: bool = True,
        seed: int = 0,
        knobs: Knobs | None = None,
    ) -> None:
        super().__init__(seed=seed, knobs=knobs)
        self.database_url = database_url
        self.jwt_secret = jwt_secret
        self.project_ref = project_ref
        self.webhook = webhook or WebhookConfig()
        self.opaque_keys = dict(opaque_keys or {})
        bad = {role for role in self.opaque_keys.values() if role not in auth.KEY_ROLES}
        if bad:
            raise ValueError(f"opaque keys must map to {auth.KEY_ROLES}, not {sorted(bad)}")
        self.pool_size = pool_size
        self.apply_schema = apply_schema
        self.counts: Counter[str] = Counter()
        self.cache: SchemaCache | None = None
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] | None = None
        self._listener: Any = None
        self._open_lock = threading.Lock()

    # -- keys -------------------------------------------------------------------------
    @property
    def anon_key(self) -> str:
        """The project's legacy anon key (an HS256 JWT)."""
        return auth.make_key(self.jwt_secret, "anon", self.project_ref)

    @property
    def service_key(self) -> str:
        """The project's legacy service_role key (an HS256 JWT)."""
        return auth.make_key(self.jwt_secret, "service_role", self.project_ref)

    # -- lifecycle ----------------------------------------------------------------------
    def open(self) -> None:
        """Create the database, roles and schema if missing; load the cache; start threads."""
        with self._open_lock:
            if self.pool is not None:
                return
            bootstrap.ensure_remote_database(self.database_url, apply_schema=self.apply_schema)
            self.pool = ConnectionPool(
                self.database_url,
                min_size=1,
                max_size=self.pool_size,
                # UTF-8 on the wire, as PostgREST: request bodies go to Postgres as sent.
                kwargs={"row_factory": dict_row, "client_encoding": "UTF8"},
                open=True,
                check=ConnectionPool.check_connection,
                name="postgrest-emulator",
            )
            self.reload_schema()
            self._listener = Listener(self)
            self._listener.start()

    def close(self) -> None:
        """Stop the listener threads and close the pool."""
        self.stop()
        with self._open_lock:
            if self._listener is not None:
                self._listener.stop()
                self._listener = None
            if self.pool is not None:
                self.pool.close()
                self.pool = None

    def __enter__(self) -> PostgrestState:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema cache ---------------------------------------------------------------------
    def reload_schema(self) -> SchemaCache:
        """Reload the schema cache from the database (what NOTIFY pgrst triggers)."""
        with self.connection() as conn:
            cache = load_schema_cache(conn)
        with self.lock:
            self.cache = cache
            self.counts["schema_reloads"] += 1
        return cache

    def schema(self) -> SchemaCache:
        """The current schema cache (possibly stale: that is the point)."""
        cache = self.cache
        if cache is None:
            raise RuntimeError("emulator state is not open")
        return cache

    def connection(self) -> Any:
        """A pooled connection (context manager)."""
        if self.pool is None:
            raise RuntimeError("emulator state is not open")
        return self.pool.connection()

    # -- counters ---------------------------------------------------------------------------
    def count(self, name: str, amount: int = 1) -> None:
        """Add to one of the emulator's own counters."""
        with self.lock:
            self.counts[name] += amount

    def counters(self) -> dict[str, Any]:
        """Request stats plus the emulator's counters and the remote row count."""
        out = self.stats()
        with self.lock:
            out["counts"] = dict(self.counts)
        with self.connection() as conn:
            row = conn.execute(query("count_rows")).fetchone()
        out["leads"] = int(row["n"]) if row else 0
        return out

    def _reset_extra(self) -> None:
        self.counts.clear()

    # -- admin data hooks ---------------------------------------------------------------------
    def seed_token(self, token: str, count: int) -> None:
        """`/__admin/seed`: insert `count` remote-only leads (token = id prefix, digits)."""
        bootstrap.seed_remote_leads(self, token, count)

    def dump(self, token: str) -> Any:
        """`/__admin/data?token=leads`: every remote lead, ordered by id."""
        if token != "leads":
            return None
        with self.connection() as conn:
            row = conn.execute(query("dump_leads")).fetchone()
        return row["rows"] if row else []

    def loop_guard(self) -> bool:
        """Whether the remote trigger skips rows written by TabuladorMax (the seed's guard)."""
        with self.connection() as conn:
            row = conn.execute(query("get_loop_guard")).fetchone()
        return bool(row["loop_guard"]) if row else True

    def set_loop_guard(self, on: bool) -> None:
        """Switch the trigger's loop guard (off: every write is sent, like a bad remote)."""
        with self.connection() as conn:
            conn.execute(query("loop_guard_on" if on else "loop_guard_off"))

    def deliver_webhooks(self) -> int:
        """Send every queued reverse-sync webhook now; how many were taken."""
        if self._listener is None:
            raise RuntimeError("emulator state is not open")
        total = 0
        while (taken := self._listener.deliver_batch()) > 0:
            total += taken
        return total
