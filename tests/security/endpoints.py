"""What the security matrices walk: every `functions/*/` folder, and every route of a routed one.

A routed function is one whose contract (`API`) declares several paths, or whose module has a
`ROUTES` table (path -> handler); its routes are those plus whatever the function itself lists when asked for a route it does not
have (runninghub-queue-manager answers 404 with `details.routes`, which adds `/webhook`). A
folder that cannot be loaded is still an endpoint: calling it then fails the matrix.
"""

from __future__ import annotations

import importlib.util
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import functions_framework
from flask import Flask
from werkzeug.test import TestResponse

from shared.contract import Function

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
_NO_SUCH_ROUTE = "/__security_matrix_no_such_route__"


@dataclass(frozen=True)
class Endpoint:
    """One function, or one route of a routed function."""

    function: str
    route: str | None = None
    source: Path = field(default=FUNCTIONS, compare=False)

    @property
    def id(self) -> str:
        """How failures and test ids name it: `run-integration`, `runninghub-queue-manager/start`."""
        return self.function + (self.route or "")

    @property
    def path(self) -> str:
        return self.route or "/"


@cache
def app_for(source: Path) -> Flask:
    """The function as functions-framework loads it (once per source file)."""
    app: Flask = functions_framework.create_app(target="main", source=str(source))  # type: ignore[no-untyped-call]
    return app


def _module(source: Path) -> Any:
    """The function's module, loaded on its own (to read its route table)."""
    spec = importlib.util.spec_from_file_location(f"_matrix_{uuid.uuid4().hex}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def routes_of(source: Path) -> list[str] | None:
    """The routes of a routed function (None: not routed, one endpoint at `/`): the paths
    its contract (`API`) declares, or the keys of a `ROUTES` table."""
    module = _module(source)
    api, table = getattr(module, "API", None), getattr(module, "ROUTES", None)
    paths = {e.path for e in api.endpoints} if isinstance(api, Function) else {"/"}
    if paths != {"/"}:
        routes = paths
    elif isinstance(table, dict):
        routes = set(table)
    else:
        return None
    answer = app_for(source).test_client().post(_NO_SUCH_ROUTE, json={})
    listed = ((answer.get_json(silent=True) or {}).get("error") or {}).get("details") or {}
    routes.update(r for r in listed.get("routes", []) if isinstance(r, str))
    return sorted(routes)


@cache
def endpoints(functions_dir: Path = FUNCTIONS) -> list[Endpoint]:
    """Every function folder, and every route of the routed ones, in a stable order."""
    found: list[Endpoint] = []
    for folder in sorted(p for p in functions_dir.iterdir() if p.is_dir()):
        if folder.name.startswith((".", "_")):
            continue
        source = folder / "main.py"
        routes = routes_of(source) if source.is_file() else None
        if routes is None:
            found.append(Endpoint(folder.name, None, source))
        else:
            found.extend(Endpoint(folder.name, route, source) for route in routes)
    return found


def send(
    endpoint: Endpoint,
    method: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """One request to the endpoint; the whole body is read (event streams included)."""
    if not endpoint.source.is_file():
        raise AssertionError(f"{endpoint.id}: no main.py to load")
    client = app_for(endpoint.source).test_client(use_cookies=False)  # headers as given
    kwargs: dict[str, Any] = {"query_string": query or {}, "headers": headers or {}}
    if isinstance(body, bytes):
        kwargs.update(data=body, content_type="application/json")
    elif method != "GET":
        kwargs["json"] = body if body is not None else {}
    response = client.open(endpoint.path, method=method, **kwargs)
    response.get_data()  # drain a stream now, while the test's settings hold
    return response
