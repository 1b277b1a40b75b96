"""Walking a paged listing that reports its total, for providers that page by number.

Page-number paging is not a snapshot: a row that changes (or appears, or goes away) while
we read can shift the rest by one, and the row at a page boundary is then never seen. A
walk is trusted when the listing held still (the API's total never went down, and page 1
read again at the end holds the same keys) and it accounts for the total the API reported
last: distinct keys plus the rows the mapper dropped as unusable. A listing that only grew
is trusted too when every row of its new total was read: rows appended at the end (a
busy account's new contacts) shift nothing, and a row inserted before the point already
read leaves the count short. Otherwise the listing is walked again
(upserts are idempotent and unchanged rows are not rewritten); two walks that read exactly
the same keys also settle it (the provider lists some key twice). After `passes` walks
that still disagree, the sync fails retryably rather than report success with rows
silently missing. (A deletion and an insertion in the middle of the listing between two
page reads can still hide a row from that sync: page-number paging cannot show it; the
next sync reads it.) A listing longer than ``max_pages`` fails for good: a success would
leave its later rows out.

Reading and writing overlap: later pages are fetched while a batch is stored, and up to
``writers`` batches are upserted at once, each in its own transaction (so a database
round trip never leaves PostgreSQL idle while this process parses the next pages). A
batch that shares a key with one in flight (a row seen twice because the listing shifted)
waits for it, so the newer copy is written last; and every batch is sorted by key, so
concurrent upserts take their row locks in one order and cannot deadlock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, LiteralString, NamedTuple

from shared import jsonio, log
from shared.errors import UpstreamError
from shared.providers.base import SyncContext, SyncResult
from shared.settings import Settings

_logger = log.get_logger("providers.paging")


@dataclass(frozen=True)
class Page:
    """One page of a listing: mapped rows (each with an ``external_id``) and the API's view."""

    rows: list[dict[str, Any]]
    total: int  # rows in the whole listing, as the API reports it now
    size: int  # rows in a full page, as the API applied it
    listed: int = -1  # rows the API listed on this page, before mapping (-1: len(rows))

    @property
    def dropped(self) -> int:
        """Rows the API listed that the mapper could not use (no valid key, ...)."""
        return max(0, self.listed - len(self.rows)) if self.listed >= 0 else 0

    @property
    def empty(self) -> bool:
        """The API listed nothing on this page (the listing ended)."""
        return not self.rows and self.listed <= 0


class Asked(NamedTuple):
    """A page and when it was asked for and answered (time.monotonic())."""

    page: Page
    sent: float
    answered: float


FetchPage = Callable[[int], Page]
StoreRows = Callable[[list[dict[str, Any]]], int]


@dataclass(frozen=True)
class Tuning:
    """How a listing is walked."""

    max_pages: int = 10_000
    passes: int = 3  # full walks before giving up on a listing that keeps shifting
    fetch_ahead: int = 0  # later pages requested while the current one is stored
    batch_rows: int = 0  # rows buffered (whole pages) per upsert; 0 = one upsert per page
    writers: int = 1  # batches upserted at once, each in its own transaction
    heartbeat_s: float = 0.0  # at most one heartbeat per this many seconds; 0 = every page
    progress_span: tuple[int, int] = (0, 99)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Tuning:
        """The listing_* settings, with per-provider overrides."""
        values: dict[str, Any] = {
            "passes": settings.providers.listing_passes,
            "fetch_ahead": settings.providers.listing_fetch_ahead,
            "batch_rows": settings.providers.listing_batch_rows,
            "writers": settings.providers.listing_writers,
            # At most a quarter of the lease (as the export runner beats): a throttle at or
            # past STALE_AFTER_S let the sweep rescue a healthy sync, run it a second time.
            "heartbeat_s": min(
                settings.providers.listing_heartbeat_s, settings.queue.stale_after_s / 4
            ),
        }
        return cls(**{**values, **overrides})


def walk(ctx: SyncContext, fetch: FetchPage, store: StoreRows, tuning: Tuning) -> SyncResult:
    """Fetch every page in order and store its rows, heartbeating (and so noticing a
    cancel) between pages; re-walk when rows shifted. ``result.extra`` carries ``changed``
    (rows written) and ``passes``."""
    result = SyncResult(extra={"changed": 0, "passes": 0})
    seen: set[str] = set()
    previous: Walked | None = None
    for number in range(1, max(1, tuning.passes) + 1):
        result.extra["passes"] = number
        result.pages = 0  # the listing's pages: the last walk's, not every walk's sum
        reader = _Reader(fetch, tuning.fetch_ahead, tuning.max_pages)
        try:
            walked = _Pass(ctx, store, result, tuning).run(reader)
        finally:
            reader.close()
        seen |= walked.keys
        result.records = len(seen)
        if walked.truncated:
            raise UpstreamError(
                f"The provider's listing is longer than {tuning.max_pages} pages; "
                "raise the provider's *_MAX_PAGES setting to read it whole.",
                code="listing_too_long",
                details={"total": walked.total, "max_pages": tuning.max_pages},
                retryable=False,
            )
        if walked.complete or walked.same_as(previous) or walked.confirms(previous):
            return result
        _logger.warning(
            "rows shifted while paging; walking the listing again",
            extra=log.fields(missing=walked.total - walked.accounted, walk=number),
        )
        previous = walked
    raise UpstreamError(
        "The provider's listing kept changing while it was read, or ended short of the total "
        f"it reported ({walked.accounted} of {walked.total} rows); retrying later.",
        details={"seen": len(seen), "passes": tuning.passes},
    )


@dataclass
class Walked:
    """What one walk read, and whether the listing held still meanwhile."""

    keys: set[str]
    total: int = 0
    dropped: int = 0
    listed: int = 0  # entries the API listed on the pages read, repeats and drops included
    stable: bool = True  # the total never went down, and page 1 read again was the same
    grew: bool = False  # the total went up while we read
    truncated: bool = False  # max_pages were read and the listing went on

    @property
    def accounted(self) -> int:
        return len(self.keys) + self.dropped

    @property
    def complete(self) -> bool:
        # Rows the mapper dropped have no key, so one read twice (shifted by a row inserted
        # where we had read) counts twice and could stand in for the row we missed: a
        # listing that grew is trusted only when no row was dropped.
        return self.stable and self.accounted >= self.total and not (self.grew and self.dropped)

    @property
    def provisional(self) -> bool:
        """Complete but for rows dropped from a listing that grew (see `complete`)."""
        return self.stable and self.accounted >= self.total and self.grew and self.dropped > 0

    def confirms(self, other: Walked | None) -> bool:
        """A busy listing with rows the mapper drops grows during every walk: two such walks
        in a row, the second reading every key of the first, settle it (a row hidden from
        the first by a dropped row read twice is then read by the second)."""
        return (
            other is not None
            and self.provisional
            and other.provisional
            and other.keys <= self.keys
            and self.dropped == other.dropped  # a dropped row read twice is one drop more
        )

    def same_as(self, other: Walked | None) -> bool:
        """Two walks that read the same keys: the listing is not moving (a key is listed
        twice, so the distinct keys never reach the total). Only when the pages listed as
        many entries as the total: a walk cut short (an empty page in the middle, a page
        shorter than the size the API reported) read the same few keys every time, and the
        rows it never reached are missing, not listed twice."""
        return (
            other is not None
            and self.listed >= self.total
            and self.stable
            and other.stable
            and (self.keys, self.total, self.dropped) == (other.keys, other.total, other.dropped)
        )


class _Reader:
    """Pages in order; once the first page tells the size of the listing, the next
    ``ahead`` pages are already being fetched while the caller stores the current one."""

    def __init__(self, fetch: FetchPage, ahead: int, max_pages: int) -> None:
        self._fetch = fetch
        self._ahead = max(0, ahead)
        self.max_pages = max_pages
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future[Asked]] = {}
        self._last = 1

    def get(self, number: int) -> Asked:
        """Page `number` (fetched now, or collected from a fetch started earlier)."""
        future = self._pending.pop(number, None)
        asked = future.result() if future is not None else self._timed(number)
        page = asked.page
        if number == 1:
            self._last = min(self.max_pages, -(-page.total // max(page.size, 1)))
        self._top_up(number)
        return asked

    def _timed(self, number: int) -> Asked:
        sent = time.monotonic()
        page = self._fetch(number)
        return Asked(page, sent, time.monotonic())

    def first_again(self) -> Page:
        """Page 1 fetched anew (nothing fetched ahead): did the listing move under us?"""
        return self._fetch(1)

    def _top_up(self, number: int) -> None:
        if not self._ahead:
            return
        for later in range(number + 1, min(number + self._ahead, self._last) + 1):
            if later not in self._pending:
                if self._pool is None:
                    self._pool = log.LabelledPool(self._ahead, thread_name_prefix="fetch")
                self._pending[later] = self._pool.submit(self._timed, later)

    def close(self) -> None:
        """Drop fetches nobody will read."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Writer:
    """Stores batches, up to ``writers`` at once; ``changed`` adds up the rows written.

    One writer stores in the caller's thread. More submit to a thread pool and wait, oldest
    first, while that many batches are in flight or one of them shares a key with the new
    batch (batches that share keys are written in the order they were read)."""

    def __init__(self, store: StoreRows, writers: int) -> None:
        self._store, self._writers = store, max(1, writers)
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: deque[tuple[frozenset[str], Future[int]]] = deque()
        self.changed = 0

    def write(self, keys: frozenset[str], rows: list[dict[str, Any]]) -> None:
        if self._writers == 1:
            self.changed += self._store(rows)
            return
        while self._in_flight and (
            len(self._in_flight) >= self._writers
            or any(not keys.isdisjoint(other) for other, _ in self._in_flight)
        ):
            self.changed += self._in_flight.popleft()[1].result()
        if self._pool is None:
            self._pool = log.LabelledPool(self._writers, thread_name_prefix="store")
        self._in_flight.append((keys, self._pool.submit(self._store, rows)))

    def finish(self) -> None:
        """Wait for every batch in flight; raises the first write that failed."""
        while self._in_flight:
            self.changed += self._in_flight.popleft()[1].result()

    def close(self) -> None:
        """Return only once no batch is being written (also when the walk stops early:
        a cancel leaves whole, committed batches behind, never one half-way)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class _Pass:
    """One walk over the listing: heartbeat, read, buffer whole pages, upsert in batches."""

    def __init__(
        self, ctx: SyncContext, store: StoreRows, result: SyncResult, tuning: Tuning
    ) -> None:
        self.ctx, self.result, self.tuning = ctx, result, tuning
        self.writer = _Writer(store, tuning.writers)
        self.buffer: dict[str, dict[str, Any]] = {}  # by key: one row per key per statement
        self.last_beat: float | None = None

    def run(self, reader: _Reader) -> Walked:
        try:
            walked = self._read(reader)
            self.writer.finish()
        finally:
            self.writer.close()
            self.result.extra["changed"] += self.writer.changed
        return walked

    def _read(self, reader: _Reader) -> Walked:
        walked = Walked(keys=set())
        answers: list[Asked] = []
        first: list[str] = []
        expected, number = 1, 0
        for number in range(1, reader.max_pages + 1):
            self.heartbeat(min(number - 1, expected), expected)
            asked = reader.get(number)
            page = asked.page
            if number == 1:
                first = _keys(page)
            answers.append(asked)
            walked.dropped += page.dropped
            walked.listed += page.listed if page.listed >= 0 else len(page.rows)
            expected = max(1, -(-page.total // max(page.size, 1)))
            if page.rows:
                self.buffer.update((row["external_id"], row) for row in page.rows)
                walked.keys.update(row["external_id"] for row in page.rows)
                self.result.pages += 1
            if len(self.buffer) >= self.tuning.batch_rows:
                self.flush()
            if page.empty or number * page.size >= page.total:
                break
        else:
            walked.truncated = True
        self.flush()
        if answers:
            walked.total = max(answers, key=lambda a: a.answered).page.total  # the latest view
            walked.grew = len({a.page.total for a in answers}) > 1
            walked.stable = not _went_down(answers)  # else rows went away: the rest shifted
        if number > 1 and walked.stable:  # one page is a snapshot; more may have shifted
            walked.stable = _keys(reader.first_again()) == first
        return walked

    def heartbeat(self, done: int, expected: int) -> None:
        """Progress (the heartbeat; raises JobCanceled), at most every heartbeat_s."""
        now = time.monotonic()
        if self.last_beat is not None and now - self.last_beat < self.tuning.heartbeat_s:
            return
        self.last_beat = now
        low, high = self.tuning.progress_span
        self.ctx.progress(low + (high - low) * done // expected)

    def flush(self) -> None:
        if self.buffer:
            keys = sorted(self.buffer)
            self.writer.write(frozenset(keys), [self.buffer[key] for key in keys])
            self.buffer.clear()


def _went_down(answers: list[Asked]) -> bool:
    """Whether a page asked for after another was answered reports a smaller total. Pages
    fetched ahead overlap: one asked earlier may report fewer rows than a page before it in
    the listing without anything going away, so totals are compared in time, not by page."""
    by_answer = sorted(answers, key=lambda a: a.answered)
    seen, highest = 0, -1
    for later in sorted(answers, key=lambda a: a.sent):
        while seen < len(by_answer) and by_answer[seen].answered <= later.sent:
            highest = max(highest, by_answer[seen].page.total)
            seen += 1
        if later.page.total < highest:
            return True
    return False


def _keys(page: Page) -> list[str]:
    return [row["external_id"] for row in page.rows]


def upsert_json(ctx: SyncContext, sql: LiteralString, rows: list[dict[str, Any]]) -> int:
    """One statement for a whole batch (``jsonb_to_recordset``); returns rows written."""
    if not rows:
        return 0
    with ctx.transaction() as conn:
        cursor = conn.execute(sql, {"tenant_id": ctx.tenant.id, "rows": jsonio.dumps(rows)})
        return max(cursor.rowcount, 0)
