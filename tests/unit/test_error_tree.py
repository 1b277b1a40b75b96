"""The exception tree drawn at the top of errors.py is the tree in the module: every class,
under its parent, with its status and code."""

from __future__ import annotations

import inspect
import re

from shared import errors

_LINE = re.compile(
    r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)(?: \((?P<status>\d+) (?P<code>\w+)\))?"
)


def _drawn() -> dict[str, tuple[str | None, str | None]]:
    """name -> (parent drawn, "status code" drawn) for each node of the docstring's trees."""
    doc = errors.__doc__ or ""
    found: dict[str, tuple[str | None, str | None]] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = _LINE.match(line)
        if not match or not (match["indent"] or match["status"] or line.strip() == line):
            continue
        if match["name"] not in vars(errors):
            continue
        depth = len(match["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        status = f"{match['status']} {match['code']}" if match["status"] else None
        found[match["name"]] = (parent, status)
        stack.append((depth, match["name"]))
    return found


def test_every_error_class_is_drawn_under_its_parent_with_its_status_and_code() -> None:
    drawn = _drawn()
    classes = [
        c for c in vars(errors).values()
        if inspect.isclass(c) and issubclass(c, Exception) and c.__module__ == errors.__name__
    ]  # fmt: skip
    wrong = []
    for cls in classes:
        base = cls.__base__.__name__ if cls.__base__ is not Exception else None
        status = f"{cls.status} {cls.code}" if issubclass(cls, errors.SyncqError) else None
        if drawn.get(cls.__name__) != (base, status):
            wrong.append(f"{cls.__name__}: drawn {drawn.get(cls.__name__)}, is {(base, status)}")
    assert wrong == []
