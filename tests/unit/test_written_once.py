"""No class is written twice in shared/: one name, one definition."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _body(node: ast.ClassDef) -> str:
    """The class's bases and statements, its docstring left out."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return ast.dump(ast.Module(body=[*node.bases, *body], type_ignores=[]))  # type: ignore[list-item]


def test_no_class_is_written_twice_in_shared() -> None:
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(SHARED.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where = f"{path.relative_to(SHARED.parent)}:{node.lineno}"
                seen[(node.name, _body(node))].append(where)
    twice = {name: places for (name, _), places in seen.items() if len(places) > 1}
    assert twice == {}
