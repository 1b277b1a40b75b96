"""One local HTTP gateway serving every function at /functions/v1/<name>.

Each function is loaded through functions-framework's own `create_app`, the same loading
path Cloud Functions uses, and mounted under its deployed name. Beside them, the whole
OpenAPI document (every function's declared contract) at /functions/v1/openapi.json and
an API reference page rendering it at /functions/v1/docs (Redoc, vendored in static/).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import functions_framework
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from shared.contract import CALLER_TEXT, Caller, Function
from shared.openapi import document

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/functions/v1"


def function_names(functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """Every deployable function (a folder with a main.py)."""
    return sorted(p.parent.name for p in functions_dir.glob("*/main.py"))


def load_function(source: Path) -> Flask:
    """The app of the function in `source` (a main.py), loaded the way Cloud Functions does."""
    # functions-framework leaves create_app unannotated; it returns the function's Flask app.
    app: Flask = functions_framework.create_app(  # type: ignore[no-untyped-call]
        target="main", source=str(source)
    )
    return app


def load_contract(source: Path) -> Function:
    """The contract (`API`) a function's main.py declares, read from its own import."""
    spec = importlib.util.spec_from_file_location(f"syncq_api_{source.parent.name}", source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    api = getattr(module, "API", None)
    if not isinstance(api, Function):
        raise TypeError(f"{source} declares no API = Function(...)")
    return api


_PUBLIC = {"security": [], "x-callers": [str(Caller.PUBLIC)]}
_WHO = f"**Who may call:** {CALLER_TEXT[Caller.PUBLIC]}."
GATEWAY_PATHS: dict[str, Any] = {
    "/openapi.json": {"get": {
        **_PUBLIC, "operationId": "openapi", "tags": ["gateway"], "summary": "This document",
        "description": f"Every function's contract in one OpenAPI document.\n\n{_WHO}",
        "responses": {"200": {"description": "The OpenAPI document.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }},
    "/docs": {"get": {
        **_PUBLIC, "operationId": "docs", "tags": ["gateway"], "summary": "API reference",
        "description": f"This document rendered by Redoc (served locally).\n\n{_WHO}",
        "responses": {"200": {"description": "An HTML page.",
                              "content": {"text/html": {"schema": {"type": "string"}}}}},
    }},
}  # fmt: skip


def contract_document(functions_dir: Path = FUNCTIONS_DIR) -> dict[str, Any]:
    """The whole OpenAPI document: every function's contract, and the gateway's two pages."""
    functions = [
        load_contract(functions_dir / n / "main.py") for n in function_names(functions_dir)
    ]
    doc = document(functions, server=PREFIX)
    doc["paths"].update(GATEWAY_PATHS)
    doc["tags"].append({"name": "gateway", "description": "The local gateway's own pages."})
    return doc


# The page may load only what the gateway serves (Redoc would fetch its logo from a CDN).
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def reference_apps(doc: dict[str, Any]) -> dict[str, Flask]:
    """`openapi.json` (the document) and `docs` (Redoc over it, plus its script)."""
    body = json.dumps(doc, ensure_ascii=False)
    page = (STATIC_DIR / "docs.html").read_text(encoding="utf-8").replace("{prefix}", PREFIX)
    script = (STATIC_DIR / "redoc" / "redoc.standalone.js").read_bytes()
    spec, docs = Flask("openapi"), Flask("docs")

    @spec.get("/")
    def _document() -> Response:
        return Response(body, mimetype="application/json")

    @docs.get("/")
    def _page() -> Response:
        return Response(page, mimetype="text/html", headers={"Content-Security-Policy": _CSP})

    @docs.get("/redoc.standalone.js")
    def _script() -> Response:
        return Response(script, mimetype="text/javascript")

    return {f"{PREFIX}/openapi.json": spec, f"{PREFIX}/docs": docs}


def _not_found(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    body = {"error": {"code": "not_found", "message": "No such function."}}
    response = Response(json.dumps(body), status=404, mimetype="application/json")
    return response(environ, start_response)


class _RootPath:
    """`/functions/v1/<name>` reaches the function as `/` (not as a redirect to `/<name>/`)."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return self._app(environ, start_response)


def build(functions_dir: Path = FUNCTIONS_DIR) -> DispatcherMiddleware:
    """The gateway WSGI app."""
    mounts: dict[str, WSGIApplication] = {
        f"{PREFIX}/{name}": _RootPath(load_function(functions_dir / name / "main.py"))
        for name in function_names(functions_dir)
    }
    for path, app in reference_apps(contract_document(functions_dir)).items():
        mounts[path] = _RootPath(app)
    return DispatcherMiddleware(_not_found, mounts)


class _AccessLog(WSGIRequestHandler):
    """Access lines without query strings: signed webhook URLs must not reach a log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s', self.command, path, code)


def serve(host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted (threaded: SSE streams and workers run side by side)."""
    server = make_server(host, port, build(), threaded=True, request_handler=_AccessLog)
    server.serve_forever()
