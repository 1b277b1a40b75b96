"""The figures a chaos run reports: a value, and the goal it must meet (if any)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One line of the table. `target` is the value it must have (None: a total, no goal)."""

    scenario: str
    name: str
    value: int | float
    target: int | None = None

    @property
    def missed(self) -> bool:
        """Whether the figure has a goal and misses it."""
        return self.target is not None and self.value != self.target

    @property
    def goal(self) -> str:
        return "" if self.target is None else f"= {self.target:,}"

    def shown(self) -> str:
        if isinstance(self.value, float):
            return f"{self.value:,.1f}"
        return f"{self.value:,}"


def zero(scenario: str, name: str, value: int) -> Figure:
    """A figure whose goal is 0 (a lost job, a double refund, ...)."""
    return Figure(scenario, name, value, 0)


def total(scenario: str, name: str, value: float) -> Figure:
    """A figure without a goal: what happened (successes, kills, rescues, ...)."""
    return Figure(scenario, name, value)


def render(figures: Sequence[Figure]) -> str:
    """One plain-text table: scenario, figure, value, goal, and MISSED where a goal is."""
    headers = ("scenario", "figure", "value", "goal", "")
    rows = [(f.scenario, f.name, f.shown(), f.goal, "MISSED" if f.missed else "") for f in figures]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Iterable[str]) -> str:
        parts = [
            c.rjust(w) if i == 2 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths[:4])
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def missed(figures: Iterable[Figure]) -> list[Figure]:
    """The figures that miss their goal."""
    return [f for f in figures if f.missed]
