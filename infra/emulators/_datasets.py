"""Per-token row lists for the provider emulators (companies, contacts, items, clients...).

Each emulator keeps, per tenant token, lists of dict rows that carry an id under one key.
:class:`Datasets` holds one such kind of row for every token, guarded by the state's lock:
rows are stored as deep copies (ordered by ``int(row[key])`` when ``sort``), handed out as
deep copies, and a changed row is *replaced* by a new dict, never edited in place, so a page
being served from an earlier :meth:`Datasets.snapshot` stays intact.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

Row = dict[str, Any]


class Datasets:
    """One kind of row, per token: set, list, copy out, mutate, add and remove rows."""

    def __init__(
        self, lock: AbstractContextManager[Any], key: str, *, first_id: int = 1, sort: bool = True
    ) -> None:
        self._lock = lock
        self.key = key
        self.first_id = first_id  # the id :meth:`add` gives the first row of an empty list
        self.sort = sort
        self._rows: dict[str, list[Row]] = {}

    def set(self, token: str, rows: Iterable[Row]) -> None:
        """Add or replace a token's rows (deep-copied, ordered by id when ``sort``)."""
        stored = copy.deepcopy(list(rows))
        if self.sort:
            stored.sort(key=lambda row: int(row[self.key]))
        with self._lock:
            self._rows[token] = stored

    def tokens(self) -> list[str]:
        """Tokens that have a list (possibly empty)."""
        with self._lock:
            return list(self._rows)

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return token in self._rows

    def copy(self, token: str) -> list[Row]:
        """A deep copy of every row of a token (KeyError when the token is unknown)."""
        with self._lock:
            return copy.deepcopy(self._rows[token])

    def snapshot(self, token: str) -> list[Row]:
        """The current list, shallow: rows are replaced on change, never edited."""
        with self._lock:
            return list(self._rows[token])

    def mutate(
        self,
        token: str,
        row_id: Any | None,
        changes: Mapping[str, Any],
        *,
        default: Callable[[Row], Mapping[str, Any]] | None = None,
        stamp: Mapping[str, Any] | None = None,
    ) -> Row:
        """Replace one row (``row_id`` None: the first) by a copy with ``changes`` applied.

        Empty ``changes`` fall back to ``default(row)``; the id is kept whatever the changes
        say, then ``stamp`` (e.g. a new update time) is applied. Returns a copy of the row.
        """
        with self._lock:
            rows = self._rows[token]
            index = next(i for i, row in enumerate(rows) if row_id in (None, row[self.key]))
            updated = copy.deepcopy(rows[index])
            updated.update(changes or (default(updated) if default else {}))
            updated[self.key] = rows[index][self.key]
            updated.update(stamp or {})
            rows[index] = updated  # replace, never edit in place: pages in flight stay intact
            return copy.deepcopy(updated)

    def add(self, token: str, build: Callable[[int], Row]) -> Row:
        """Append ``build(next_id)`` (last id + 1, or ``first_id``) and return a copy of it."""
        with self._lock:
            rows = self._rows[token]
            next_id = int(rows[-1][self.key]) + 1 if rows else self.first_id
            return self.append(token, build(next_id))

    def append(self, token: str, row: Row) -> Row:
        """Append a row as is and return a copy of it."""
        with self._lock:
            self._rows[token].append(row)
            return copy.deepcopy(row)

    def remove(self, token: str, row_id: Any) -> None:
        """Delete the row(s) with that id."""
        with self._lock:
            self._rows[token] = [row for row in self._rows[token] if row[self.key] != row_id]
