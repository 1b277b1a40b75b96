"""One local HTTP gateway serving every function at /functions/v1/<name>.

Each function is loaded through functions-framework's own `create_app`, the same loading
path Cloud Functions uses, and mounted under its deployed name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import functions_framework
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
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
