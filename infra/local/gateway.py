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
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from infra.local.chunked import body_input

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


# Requests too malformed to reach a function (the server refuses the request line or the
# headers): the status http.server chose when it is a 4xx, else 400, and our envelope.
_REFUSALS = {
    414: ("uri_too_long", "The request line is too long."),
    431: ("headers_too_large", "The request headers are too large."),
}
_MALFORMED = ("bad_request", "The request is malformed.")


def refusal(code: int) -> tuple[int, bytes]:
    """The status and envelope answering a request the server could not parse."""
    status = code if 400 <= code < 500 else 400
    error_code, message = _REFUSALS.get(status, _MALFORMED)
    body = {"error": {"code": error_code, "message": message}}
    return status, json.dumps(body).encode()


class _Handler(WSGIRequestHandler):
    """Access lines without query strings (signed webhook URLs must not reach a log), and
    the error envelope, not http.server's HTML page, for requests it cannot parse."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A request line that did not parse leaves no command nor path.
        path = (getattr(self, "path", None) or "-").split("?", 1)[0]
        self.log("info", '"%s %s" %s', self.command or "-", path, code)

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        transfer_encoding = environ.get("HTTP_TRANSFER_ENCODING")
        if transfer_encoding is not None:  # werkzeug's own decoder is lenient: ours is strict
            environ["wsgi.input"] = body_input(transfer_encoding, self.rfile)
            environ["wsgi.input_terminated"] = True
        return environ

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        status, body = refusal(code)
        if self.request_version == "HTTP/0.9":  # the request line did not parse: answer 1.0
            self.request_version = "HTTP/1.0"
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make(host: str = "127.0.0.1", port: int = 8080) -> BaseWSGIServer:
    """The gateway's threaded server (SSE streams and workers run side by side), not started."""
    return make_server(host, port, build(), threaded=True, request_handler=_Handler)


def serve(host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted."""
    make(host, port).serve_forever()
