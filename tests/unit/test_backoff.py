"""The retry policy is a pure function: checked exhaustively here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.backoff import backoff_delay
from shared.jobs.policy import Decision, Verdict, decide


@pytest.mark.parametrize("rand", [0.0, 0.3, 0.999])
def test_delay_grows_and_stays_within_equal_jitter_bounds(rand: float) -> None:
    delays = [backoff_delay(a, base_s=30, cap_s=3600, rand=rand) for a in range(1, 8)]
    for attempt, delay in enumerate(delays, start=1):
        exponential = min(3600, 30 * 2 ** (attempt - 1))
        assert exponential / 2 <= delay <= exponential
    assert delays == sorted(delays)


def test_successive_delays_never_shrink_whatever_the_jitter() -> None:
    for attempt in range(1, 10):
        worst_next = backoff_delay(attempt + 1, base_s=1, cap_s=1e9, rand=0.0)
        best_this = backoff_delay(attempt, base_s=1, cap_s=1e9, rand=1.0)
        assert worst_next >= best_this


def test_cap_bounds_the_delay() -> None:
    assert backoff_delay(50, base_s=30, cap_s=600, rand=1.0) == 600
    assert backoff_delay(50, base_s=30, cap_s=600, rand=0.0) == 300


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_below_one_count_as_the_first(attempt: int) -> None:
    # Legacy rows of the old system are 'running' with attempts 0; rescuing one must work.
    first = backoff_delay(1, base_s=10, cap_s=100, rand=0.5)
    assert backoff_delay(attempt, base_s=10, cap_s=100, rand=0.5) == first == 7.5
    d = decide(attempts=attempt, max_attempts=3, retryable=True, base_s=10, cap_s=100, rand=0.5)
    assert d == Decision(Verdict.RETRY, 7.5)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "retryable", "cancel", "verdict"),
    [
        (1, 3, True, False, Verdict.RETRY),
        (2, 3, True, False, Verdict.RETRY),
        (3, 3, True, False, Verdict.GIVE_UP),
        (1, 3, False, False, Verdict.GIVE_UP),
        (1, 3, True, True, Verdict.STOP),
        (3, 3, False, True, Verdict.STOP),
    ],
)
def test_decide(
    attempts: int, max_attempts: int, retryable: bool, cancel: bool, verdict: Verdict
) -> None:
    d = decide(
        attempts=attempts, max_attempts=max_attempts, retryable=retryable,
        stop_requested=cancel, base_s=10, cap_s=100, rand=0.5,
    )  # fmt: skip
    assert d.verdict is verdict
    assert (d.delay_s > 0) == (verdict is Verdict.RETRY)


def test_syncq_has_one_tenacity_retry_loop() -> None:
    """Every retry in shared/ (an HTTP try, a database write) runs in the one loop that
    `shared.backoff` builds: tenacity's loop is made in one place, not one per caller."""
    shared = Path(__file__).resolve().parents[2] / "shared"
    made = [
        f"{path.relative_to(shared.parent)}:{node.lineno}"
        for path in sorted(shared.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in ("tenacity.Retrying", "Retrying", "tenacity.retry")
    ]
    assert [m.split(":")[0] for m in made] == ["shared/backoff.py"], made


def test_an_upstream_wait_counts_within_the_cap() -> None:
    """A Retry-After longer than the backoff is waited, but no longer than the cap: a huge
    one must not park the job for good."""
    asked = decide(
        attempts=1, max_attempts=3, retryable=True, base_s=10, cap_s=100, rand=0.5, asked_s=40
    )
    assert asked == Decision(Verdict.RETRY, 40)
    huge = decide(
        attempts=1, max_attempts=3, retryable=True, base_s=10, cap_s=100, rand=0.5, asked_s=1e9
    )
    assert huge == Decision(Verdict.RETRY, 100)
