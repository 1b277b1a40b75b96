"""Apply the numbered SQL migrations in infra/migrations, once each, in order.

Idempotent: applied versions are recorded in `schema_migrations` with a checksum of the
file; an advisory lock keeps two runners from migrating the same database at once. The
missing migrations are applied in one transaction: a release's schema lands whole or not
at all (a later file may restore what an earlier one of the same release dropped, so no
instance may ever see the state between them). An applied migration whose file was since
renamed, renumbered, edited or removed is an error that names it: a database it was applied
to would never get the change that a new database gets (or would get it twice). A
migration waits for a table lock a short while only (`LOCK_TIMEOUT`), then the batch rolls
back and is tried again: a waiting ALTER would hold up every statement on the table behind
it, the queue's claims among them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import tenacity
from psycopg.rows import TupleRow

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x5359_4E43  # "SYNC"
# A statement waiting for a table lock queues every later one on that table behind it (the
# queue's claims, the dashboard's reads): wait this long at most, then roll back, pause and
# try the whole batch again, these many times.
LOCK_TIMEOUT = "1s"
LOCK_ATTEMPTS = 6
LOCK_PAUSE_S = 2.0


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations on disk, by version; duplicate numbers are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if not match:
            raise ValueError(f"migration file name not NNNN_name.sql: {path.name}")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations numbered {version:04d}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


class MigrationChanged(Exception):
    """An applied migration's file is not the one that was applied."""


class MigrationFailed(Exception):
    """A pending migration failed (all of this run's were rolled back); names the file."""


def checksum(migration: Migration) -> str:
    """The file's SHA-256, line endings made LF (a checkout may turn them to CRLF)."""
    return hashlib.sha256(migration.path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def _before_lf(migration: Migration) -> set[str]:
    """What a checksum of the file's raw bytes, as recorded before checksums read line
    endings as LF, may be: of an LF or of a CRLF checkout."""
    lf = migration.path.read_bytes().replace(b"\r\n", b"\n")
    return {hashlib.sha256(body).hexdigest() for body in (lf, lf.replace(b"\n", b"\r\n"))}


def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what is missing; returns the names applied now."""
    migrations = discover(directory)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(psycopg.errors.LockNotAvailable),
        stop=tenacity.stop_after_attempt(LOCK_ATTEMPTS),
        wait=tenacity.wait_fixed(LOCK_PAUSE_S),  # the queue goes on meanwhile
        reraise=True,
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            return retrying(_apply, conn, migrations)
        except psycopg.errors.LockNotAvailable as exc:
            raise MigrationFailed(
                f"a table the migrations change stayed locked by another session"
                f" ({LOCK_ATTEMPTS} tries, {LOCK_TIMEOUT} each), so nothing was applied;"
                f" run again: {exc}"
            ) from exc
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


def _apply(conn: psycopg.Connection[TupleRow], migrations: list[Migration]) -> list[str]:
    """One try: every missing migration in one transaction, or none."""
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text")
        done = {
            r[0]: (r[1], r[2])
            for r in conn.execute("SELECT version, name, checksum FROM schema_migrations")
        }
        _check_applied(conn, migrations, done)
        applied_now: list[str] = []
        for migration in migrations:
            if migration.version in done:
                continue
            try:
                conn.execute(migration.path.read_text(encoding="utf-8"))
            except psycopg.errors.LockNotAvailable:
                raise  # try again
            except psycopg.Error as exc:
                pending = len(migrations) - len(done)
                raise MigrationFailed(
                    f"{migration.path.name} failed, so none of {pending} pending"
                    f" migrations was applied: {exc}"
                ) from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                [migration.version, migration.name, checksum(migration)],
            )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
    return applied_now


def _check_applied(
    conn: psycopg.Connection[tuple[int, str, str | None]],
    migrations: list[Migration],
    done: dict[int, tuple[str, str | None]],
) -> None:
    """Applied migrations must still be the files on disk; one recorded before checksums
    were kept (or before they read line endings as LF) gets its file's checksum now.

    An applied version with no file of its number, whose name a file of another number has,
    was renumbered (it would be applied again under its new number); an applied version with
    no file is an error when a later file exists (removed). Versions past the last file are a
    newer release's, which this older one may still run beside (a rollback): removing the
    newest file looks the same, and is not caught. Names need not be unique: a new file may
    reuse an applied one's name while that one's file keeps its number (an older release
    then runs beside it too)."""
    newest = max((m.version for m in migrations), default=0)
    on_disk = {m.version for m in migrations}
    # A renumbered file is one not applied under its own number (an applied file that
    # shares the name is an old one, still where it was).
    unapplied = {m.name for m in migrations if done.get(m.version, ("",))[0] != m.name}
    for version, (name, _) in sorted(done.items()):
        # its file has another number now (not a new file reusing the name of one still there,
        # nor, in a rollback, a newer release's file reusing the name of one applied here)
        moved = version not in on_disk and name in unapplied
        if moved or (version < newest and version not in on_disk):
            raise MigrationChanged(
                f"migration {version:04d}_{name} was applied, but no file has that number:"
                " an applied migration is never renumbered or removed; add a new one."
            )
    for migration in migrations:
        if migration.version not in done:
            continue
        name, recorded = done[migration.version]
        file = f"{migration.version:04d}_{migration.name}.sql"
        if name != migration.name:
            raise MigrationChanged(
                f"migration {migration.version:04d} was applied as '{name}', but the file is "
                f"{file}: an applied migration is never renamed or edited; add a new one."
            )
        current = checksum(migration)
        if recorded is None or (recorded != current and recorded in _before_lf(migration)):
            conn.execute(
                "UPDATE schema_migrations SET checksum = %s WHERE version = %s",
                [current, migration.version],
            )
        elif recorded != current:
            raise MigrationChanged(
                f"{file} changed since it was applied: an applied migration is never edited;"
                " add a new one."
            )
