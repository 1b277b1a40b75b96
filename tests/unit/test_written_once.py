"""One class name, one class in shared/: a name never means two things (the redesign's
`Outcome`, `Verdict` and `LeaseLost` each stood twice), and nothing is written twice."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def test_no_class_name_stands_twice_in_shared() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SHARED.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                seen[node.name].append(f"{path.relative_to(SHARED.parent)}:{node.lineno}")
    twice = {name: places for name, places in seen.items() if len(places) > 1}
    assert twice == {}
