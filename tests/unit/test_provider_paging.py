"""paging.walk: every row of a page-numbered listing, even when rows shift while it is read."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shared.errors import JobCanceled, UpstreamError
from shared.providers.paging import Page, Tuning, walk


class FakeContext:
    """Just the heartbeat of a SyncContext; cancels after `cancel_after` heartbeats."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.beats: list[int] = []
        self.cancel_after = cancel_after

    def progress(self, percent: int) -> None:
        self.beats.append(percent)
        if self.cancel_after is not None and len(self.beats) > self.cancel_after:
            raise JobCanceled()


class Listing:
    """A server-side listing paged by number; `on_fetch` may change it between pages."""

    def __init__(self, keys: list[str], size: int, on_fetch: Any = None) -> None:
        self.keys, self.size, self.on_fetch, self.calls = keys, size, on_fetch, 0

    def fetch(self, number: int) -> Page:
        self.calls += 1
        if self.on_fetch:
            self.on_fetch(self, number)
        chunk = self.keys[(number - 1) * self.size : number * self.size]
        return Page([{"external_id": k} for k in chunk], len(self.keys), self.size)


def run(listing: Listing, ctx: FakeContext | None = None, **tuning: Any) -> Any:
    stored: list[str] = []
    batches.clear()

    def store(rows: list[dict[str, Any]]) -> int:
        batches.append(len(rows))
        stored.extend(r["external_id"] for r in rows)
        return len(rows)

    result = walk(ctx or FakeContext(), listing.fetch, store, Tuning(max_pages=100, **tuning))  # type: ignore[arg-type]
    return result, stored


batches: list[int] = []


def test_a_stable_listing_is_read_once_page_by_page() -> None:
    ctx = FakeContext()
    result, stored = run(Listing([f"k{i}" for i in range(10)], 3), ctx)
    assert stored == [f"k{i}" for i in range(10)]
    assert (result.records, result.pages, result.extra["passes"]) == (10, 4, 1)
    assert ctx.beats == sorted(ctx.beats) and ctx.beats[-1] < 100


def test_a_row_moving_to_the_end_mid_read_triggers_a_second_walk() -> None:
    def move_b_after_first_page(listing: Listing, number: int) -> None:
        if listing.calls == 2:  # the row moves after page 1 was read: "D" would be skipped
            listing.keys.remove("B")
            listing.keys.append("B")

    listing = Listing(list("ABCDEFGHIJ"), 3, move_b_after_first_page)
    result, stored = run(listing)
    assert set(stored) == set("ABCDEFGHIJ")
    assert (result.records, result.extra["passes"]) == (10, 2)
    assert result.pages == 4  # the listing's pages (the last walk's), not both walks' sum


def test_a_listing_that_never_settles_fails_retryably() -> None:
    def churn(listing: Listing, number: int) -> None:
        if number == 2:
            listing.keys.append(listing.keys.pop(0))

    with pytest.raises(UpstreamError) as caught:
        run(Listing(list("ABCDEFGHIJ"), 3, churn), passes=2)
    assert caught.value.retryable


def test_duplicates_within_a_page_are_stored_once_and_empty_listing_ends() -> None:
    class Dupes(Listing):
        def fetch(self, number: int) -> Page:
            return Page([{"external_id": "x"}, {"external_id": "x"}], 1, 20)

    result, stored = run(Dupes([], 20))
    assert stored == ["x"] and result.records == 1
    result, stored = run(Listing([], 20))
    assert (stored, result.records, result.pages) == ([], 0, 0)


def test_cancel_stops_between_pages() -> None:
    listing = Listing([f"k{i}" for i in range(10)], 3)
    with pytest.raises(JobCanceled):
        run(listing, FakeContext(cancel_after=2))
    assert listing.calls == 2


@pytest.mark.parametrize("ahead", [0, 1, 3, 8])
def test_fetch_ahead_keeps_page_order_and_reads_each_page_once(ahead: int) -> None:
    listing = Listing([f"k{i:02d}" for i in range(25)], 4)
    result, stored = run(listing, fetch_ahead=ahead)
    assert stored == [f"k{i:02d}" for i in range(25)]
    assert listing.calls == 7 + 1 and result.pages == 7  # then page 1 again, to check


def test_a_deletion_at_the_front_and_an_insertion_at_the_end_are_not_missed() -> None:
    # The count stays 10 and every page is full, yet "D" slides onto page 1 after it was
    # read: only page 1 read again at the end shows that the listing moved.
    def churn_once(listing: Listing, number: int) -> None:
        if listing.calls == 2:
            listing.keys.remove("A")
            listing.keys.append("K")

    listing = Listing(list("ABCDEFGHIJ"), 3, churn_once)
    result, stored = run(listing)
    assert set(stored) == set("ABCDEFGHIJK") and result.extra["passes"] == 2


def test_a_two_page_listing_that_moved_is_walked_again_too() -> None:
    """Only a single page is a snapshot: the second of two pages may already be shifted."""

    def churn_once(listing: Listing, number: int) -> None:
        if listing.calls == 2:
            listing.keys.remove("A")
            listing.keys.append("G")

    listing = Listing(list("ABCDEF"), 3, churn_once)
    result, stored = run(listing)
    assert set(stored) == set("ABCDEFG") and result.extra["passes"] == 2


def test_a_listing_that_grows_at_the_end_while_read_needs_one_walk() -> None:
    """A busy account gains rows at the end of its listing during every walk: nothing
    shifts, every row of the new total is read, and that is a success."""

    def arrivals(listing: Listing, number: int) -> None:
        listing.keys.append(f"new{listing.calls}")

    listing = Listing(list("ABCDEFGHIJ"), 3, arrivals)
    result, stored = run(listing)
    assert set("ABCDEFGHIJ") <= set(stored) and result.extra["passes"] == 1
    assert result.records == len(set(stored))


def test_a_row_inserted_before_the_point_read_means_another_walk() -> None:
    def insert_at_the_front_once(listing: Listing, number: int) -> None:
        if listing.calls == 3:
            listing.keys.insert(0, "Z")

    result, stored = run(Listing(list("ABCDEFGHIJ"), 3, insert_at_the_front_once))
    assert set(stored) == set("ABCDEFGHIJZ") and result.extra["passes"] == 2


def test_a_total_that_goes_down_mid_walk_means_another_walk() -> None:
    def delete_read_rows(listing: Listing, number: int) -> None:
        if listing.calls == 3:  # "G" slides onto page 2, already read
            listing.keys.remove("A")
            listing.keys.remove("B")
            listing.keys.append("K")  # the count still says more than it held

    result, stored = run(Listing(list("ABCDEFGHIJ"), 3, delete_read_rows))
    assert set("CDEFGHIJK") <= set(stored) and result.extra["passes"] == 2


def test_a_listing_longer_than_max_pages_fails_for_good() -> None:
    """Walking it again reads the same first pages: that must not pass as 'the listing
    holds a key twice' and report a success with the later rows left out."""
    listing = Listing([f"k{i:02d}" for i in range(30)], 3)
    stored: list[str] = []

    def store(rows: list[dict[str, Any]]) -> int:
        stored.extend(r["external_id"] for r in rows)
        return len(rows)

    with pytest.raises(UpstreamError) as caught:
        walk(FakeContext(), listing.fetch, store, Tuning(max_pages=4))  # type: ignore[arg-type]
    assert caught.value.error_code == "listing_too_long" and not caught.value.retryable
    assert len(stored) == 12
    exact = Listing([f"k{i:02d}" for i in range(12)], 3)  # exactly max_pages pages: whole
    result = walk(FakeContext(), exact.fetch, store, Tuning(max_pages=4))  # type: ignore[arg-type]
    assert result.records == 12


class Mapped(Listing):
    """The API lists `raw` items per page; the mapper keeps only those with a usable key."""

    def __init__(self, raw: list[str | None], size: int) -> None:
        super().__init__([], size)
        self.raw = raw

    def fetch(self, number: int) -> Page:
        self.calls += 1
        chunk = self.raw[(number - 1) * self.size : number * self.size]
        rows = [{"external_id": k} for k in chunk if k is not None]
        return Page(rows, len(self.raw), self.size, listed=len(chunk))


def test_rows_the_mapper_drops_do_not_fail_the_walk_nor_end_it_early() -> None:
    raw: list[str | None] = ["a", None, "b", None, None, None, "c", "d"]  # page 2: all unusable
    listing = Mapped(raw, 2)
    result, stored = run(listing)
    assert stored == ["a", "b", "c", "d"]
    assert (result.records, result.extra["passes"], listing.calls) == (4, 1, 4 + 1)


def test_a_key_the_provider_lists_twice_settles_after_two_identical_walks() -> None:
    listing = Mapped(["a", "b", "b", "c", "d"], 2)  # five listed, four distinct, all the time
    result, stored = run(listing)
    assert set(stored) == set("abcd") and result.records == 4
    assert result.extra["passes"] == 2


def test_a_failing_page_fetched_ahead_fails_the_walk() -> None:
    class Broken(Listing):
        def fetch(self, number: int) -> Page:
            if number == 3:
                raise UpstreamError("boom")
            return super().fetch(number)

    with pytest.raises(UpstreamError):
        run(Broken([f"k{i}" for i in range(20)], 4), fetch_ahead=3)


def test_whole_pages_are_batched_and_duplicates_across_pages_merged() -> None:
    pages = [list("abcde"), list("efghi"), list("jk")]  # "e" repeats across a page boundary

    class Overlapping(Listing):
        def fetch(self, number: int) -> Page:
            keys = pages[number - 1] if number <= len(pages) else []
            return Page([{"external_id": k} for k in keys], 11, 5)

    result, stored = run(Overlapping([], 5), batch_rows=6)
    assert batches == [9, 2] and sorted(stored) == list("abcdefghijk")
    assert (result.records, result.pages) == (11, 3)


def test_heartbeats_are_throttled_but_the_first_always_happens() -> None:
    ctx = FakeContext()
    run(Listing([f"k{i}" for i in range(50)], 5), ctx, heartbeat_s=60)
    assert ctx.beats == [0]
    ctx = FakeContext()
    run(Listing([f"k{i}" for i in range(50)], 5), ctx, heartbeat_s=0)
    assert len(ctx.beats) == 10


class SlowStore:
    """A store that takes a while per batch and records how many ran at once."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = 0
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, rows: list[dict[str, Any]]) -> int:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            number = len(self.batches)
            self.batches.append([r["external_id"] for r in rows])
        try:
            time.sleep(0.02)
            if number == self.fail_on:
                raise UpstreamError("write failed")
            return len(rows)
        finally:
            with self.lock:
                self.running -= 1


def walk_with(store: SlowStore, ctx: FakeContext | None = None, **tuning: Any) -> Any:
    listing = Listing([f"k{i:03d}" for i in range(200)][::-1], 10)  # keys arrive descending
    return walk(ctx or FakeContext(), listing.fetch, store, Tuning(max_pages=100, **tuning))  # type: ignore[arg-type]


@pytest.mark.parametrize("writers", [1, 2, 3])
def test_concurrent_writers_store_every_batch_sorted_and_count_every_change(writers: int) -> None:
    store = SlowStore()
    result = walk_with(store, batch_rows=30, writers=writers)
    assert store.peak <= writers and (store.peak > 1) == (writers > 1)  # bounded, concurrent
    assert sorted(k for batch in store.batches for k in batch) == [f"k{i:03d}" for i in range(200)]
    assert all(batch == sorted(batch) for batch in store.batches)  # one lock order per batch
    assert (result.records, result.extra["changed"]) == (200, 200)


def test_a_failed_concurrent_write_fails_the_walk() -> None:
    with pytest.raises(UpstreamError, match="write failed"):
        walk_with(SlowStore(fail_on=2), batch_rows=30, writers=2)


def test_a_cancel_waits_for_the_batches_in_flight() -> None:
    store = SlowStore()
    with pytest.raises(JobCanceled):
        walk_with(store, FakeContext(cancel_after=8), batch_rows=10, writers=3)
    assert store.batches and store.running == 0  # nothing is still being written


def test_a_key_read_twice_is_written_in_read_order_even_with_writers_free() -> None:
    pages = [[("a", "1"), ("dup", "old")], [("b", "1"), ("c", "1")], [("dup", "new"), ("d", "1")]]
    final: dict[str, str] = {}

    class Shifted(Listing):
        def fetch(self, number: int) -> Page:
            rows = pages[number - 1] if number <= len(pages) else []
            return Page([{"external_id": k, "v": v} for k, v in rows], 5, 2)

    def store(rows: list[dict[str, Any]]) -> int:
        time.sleep(0.1 if any(r["v"] == "old" for r in rows) else 0.01)  # the old copy is slow
        final.update((r["external_id"], r["v"]) for r in rows)
        return len(rows)

    result = walk(FakeContext(), Shifted([], 2).fetch, store, Tuning(batch_rows=2, writers=3))  # type: ignore[arg-type]
    assert final == {"a": "1", "dup": "new", "b": "1", "c": "1", "d": "1"}
    assert result.records == 5


def test_an_insert_is_not_hidden_by_a_dropped_row_read_twice() -> None:
    """A row inserted where we had read shifts an unusable row (no key) onto the next page:
    read twice, it counted twice and stood in for the missed row in a listing that grew."""
    raw: list[str | None] = ["a", "b", "c", "d", "e", None, "f", "g", "h"]

    class Growing(Mapped):
        def fetch(self, number: int) -> Page:
            if self.calls == 2:  # pages 1 and 2 read: a row appears on page 2
                self.raw.insert(4, "NEW")
            return super().fetch(number)

    result, stored = run(Growing(raw, 3))
    assert "NEW" in stored and result.extra["passes"] == 2


def test_a_busy_listing_with_an_unusable_row_settles_in_two_walks() -> None:
    """It grows during every walk and the mapper drops a row: no single walk is trusted, but
    two that agree are (it used to fail after `passes` walks, every row stored)."""

    class Busy(Mapped):
        def fetch(self, number: int) -> Page:
            self.raw.append(f"new{self.calls}")  # an arrival at the end, every request
            return super().fetch(number)

    raw: list[str | None] = ["a", None, "b", "c", "d", "e", "f", "g", "h", "i"]
    result, stored = run(Busy(raw, 3))
    assert set("abcdefghi") <= set(stored) and result.extra["passes"] == 2


def test_an_insert_during_the_second_walk_of_a_busy_listing_is_not_hidden() -> None:
    """Two agreeing walks of a busy listing with a dropped row settle it, unless the second
    dropped one more: a keyless row read twice, standing in for a row an insert hid."""
    raw: list[str | None] = ["a", "b", "c", "d", "e", None, "f", "g", "h"]

    class BusyThenInsert(Mapped):
        firsts = 0

        def fetch(self, number: int) -> Page:
            self.raw.append(f"new{self.calls}")  # arrivals at the end, every request
            self.firsts += number == 1
            if number == 3 and self.firsts == 3:  # walk 2 has read pages 1 and 2
                self.raw.insert(4, "NEW")  # the keyless row shifts onto page 3
            return super().fetch(number)

    try:
        _, stored = run(BusyThenInsert(raw, 3))
    except UpstreamError as failed:  # the sync's retry reads it
        assert failed.retryable
    else:
        assert "NEW" in stored


def test_totals_go_down_only_between_requests_that_did_not_overlap() -> None:
    """With pages fetched ahead, a page asked for early may report fewer rows than a page
    before it answered later: a growing listing, not a deletion (it made a busy account's
    walk look unstable, now and then)."""
    from shared.providers.paging import Asked, _went_down

    def asked(total: int, sent: float, answered: float) -> Asked:
        return Asked(Page([], total, 10), sent, answered)

    overlapping = [asked(10, 0.0, 1.0), asked(11, 0.5, 3.0), asked(10, 0.6, 2.0)]
    assert not _went_down(overlapping)
    in_turn = [asked(10, 0.0, 1.0), asked(11, 1.5, 2.0), asked(10, 2.5, 3.0)]
    assert _went_down(in_turn)
    assert not _went_down([asked(10, 0.0, 1.0), asked(12, 1.5, 2.0)])


def test_an_empty_page_in_the_middle_every_time_is_not_a_settled_listing() -> None:
    """Page 2 of 4 answers empty on every walk while the total says 10 rows: two walks that
    agree have still read 3 of them. No key was listed twice, so nothing explains the rows
    missing; the sync must fail (retryably), not succeed with 7 rows never read."""

    class Holed(Listing):
        def fetch(self, number: int) -> Page:
            page = super().fetch(number)
            return Page([], page.total, page.size) if number == 2 else page

    listing = Holed([f"k{i}" for i in range(10)], 3)
    with pytest.raises(UpstreamError) as raised:
        run(listing)
    assert raised.value.retryable
