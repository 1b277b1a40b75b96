"""The library's layers point one way: no import cycle in shared/, no import of a shared
module hidden inside a function, and the platform, the engine and the capabilities never
import upwards (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
ENGINE = "jobs"
# Every package of shared/ but the engine is a capability (a new one is held by the same
# rules without being listed here).
CAPABILITIES = tuple(
    sorted(p.parent.name for p in SHARED.glob("*/__init__.py") if p.parent.name != ENGINE)
)


def _crossing_allowed(own: str, dep: str) -> bool:
    """The arrows between capabilities there are: the queue runs providers; the metrics
    list the registered ones (the registry `shared.providers`, no provider's internals)."""
    if own == "queue":
        return dep.startswith("shared.providers")
    return own == "metrics" and dep == "shared.providers"


def _module(path: Path) -> str:
    parts = path.relative_to(SHARED.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> tuple[set[str], list[str]]:
    """(shared modules imported at module level, shared imports inside functions).

    `from a.b import c` depends on the module a.b.c when there is one, else on a.b.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    nested: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shared"):
            subs = {f"{node.module}.{a.name}" for a in node.names}
            names = {m if m in modules else node.module for m in subs}
        elif isinstance(node, ast.Import):
            names = {a.name for a in node.names if a.name.startswith("shared")}
        else:
            continue
        if not names:
            continue
        if node.col_offset == 0:
            top |= names
        else:
            nested.append(f"{_module(path)}: {sorted(names)[0]}")
    return top, nested


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    paths = sorted(SHARED.rglob("*.py"))
    modules = {_module(p) for p in paths}
    graph: dict[str, set[str]] = {}
    nested: list[str] = []
    for path in paths:
        top, inner = _imports(path, modules)
        graph[_module(path)] = {m for m in top if m in modules and m != _module(path)}
        nested.extend(inner)
    return graph, nested


def test_no_import_cycle_in_shared() -> None:
    graph, _ = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_shared_import_inside_a_function() -> None:
    _, nested = _graph()
    assert nested == []


def test_engine_and_capabilities_never_import_upwards() -> None:
    graph, _ = _graph()
    wrong = []
    for module, deps in graph.items():
        for dep in deps:
            if module.startswith("shared.jobs") and dep.split(".")[1] in (*CAPABILITIES, "kinds"):
                wrong.append(f"{module} -> {dep}")  # the engine imports no kind
            if module.split(".")[1] in CAPABILITIES and dep == "shared.kinds":
                wrong.append(f"{module} -> {dep}")  # only the worker function composes
    assert wrong == []


def test_capabilities_use_no_other_capability() -> None:
    """Queue, credits, gestao, alerts and metrics do not reach into each other; all use
    providers only through the queue (the queue runs them), but the metrics' list of them."""
    graph, _ = _graph()
    wrong = []
    for module, deps in graph.items():
        own = module.split(".")[1] if module.count(".") else ""
        for dep in deps:
            other = dep.split(".")[1] if dep.count(".") else ""
            crosses = own in CAPABILITIES and other in CAPABILITIES and other != own
            if crosses and not _crossing_allowed(own, dep):
                wrong.append(f"{module} -> {dep}")
    assert wrong == []


def test_the_platform_imports_nothing_above_it() -> None:
    """A module of the platform (a module directly in shared/: db, web, http, ...) imports
    only other platform modules: never the engine, a capability or the composition."""
    graph, _ = _graph()
    platform = {f"shared.{p.stem}" for p in SHARED.glob("*.py")} - {"shared.kinds"}
    wrong = [
        f"{module} -> {dep}"
        for module, deps in graph.items()
        if module in platform
        for dep in deps
        if dep not in platform
    ]
    assert wrong == []
