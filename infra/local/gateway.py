"""One local HTTP gateway serving every function at /functions/v1/<name>.

Each function is loaded through functions-framework's own `create_app`, the same loading
path Cloud Functions uses, and mounted under its deployed name. The gateway itself answers
two paths a person or a probe can use:

- `GET /functions/v1/`: the functions and their URLs, the syncq version, and whether the
  database and each emulator are up;
- `GET /functions/v1/healthz`: 200 `{"status": "ok"}` when the database answers, else 503
  with the error envelope. Both carry `X-Syncq-Instance`, so `make run` can tell its own
  gateway from any other program answering on the port;
- `GET /functions/v1/openapi.json`: the whole OpenAPI document (every function's declared
  contract), and `GET /functions/v1/docs`: a reference page rendering it (Redoc, vendored
  in static/, nothing fetched at run time);
- `GET /functions/v1/_local/demo-tokens`, only when started with `--demo-tokens` (`make run`
  does): the demo users with fresh tokens, for the dashboard's sign-in picker. It is part
  of the local gateway, never of a deployed function.

`python -m infra.local.gateway --port 8080 [--emulator NAME=URL …] [--demo-tokens]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import functions_framework
import psycopg
from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

import shared
from infra.local import demo
from infra.local.chunked import body_input
from shared.auth import mint_token
from shared.contract import CALLER_TEXT, Caller, Function, error_code
from shared.errors import MethodNotAllowed, NotFound, ServiceUnavailable, SyncqError
from shared.openapi import document, error_responses
from shared.settings import get_settings
from shared.web import allow_header, error_response, method_not_allowed

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/functions/v1"
HEALTH_PATH = "/healthz"
DEMO_TOKENS_PATH = "/_local/demo-tokens"
DEMO_TOKEN_TTL_S = 12 * 3600
INSTANCE_HEADER = "X-Syncq-Instance"
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Services:
    """What the index reports on besides the functions (the local stack fills it in)."""

    emulators: dict[str, str] = field(default_factory=dict)  # name -> URL or host:port
    instance: str = ""  # echoed in INSTANCE_HEADER
    demo_tokens: bool = False  # serve DEMO_TOKENS_PATH (the local stack only)


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
_REFUSED = error_responses([error_code(MethodNotAllowed)])  # a wrong method: 405 and Allow
GATEWAY_PATHS: dict[str, Any] = {
    "/openapi.json": {"get": {
        **_PUBLIC, "operationId": "openapi", "tags": ["gateway"], "summary": "This document",
        "description": f"Every function's contract in one OpenAPI document.\n\n{_WHO}",
        "responses": {"200": {"description": "The OpenAPI document.",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **_REFUSED},
    }},
    "/docs": {"get": {
        **_PUBLIC, "operationId": "docs", "tags": ["gateway"], "summary": "API reference",
        "description": f"This document rendered by Redoc (served locally).\n\n{_WHO}",
        "responses": {"200": {"description": "An HTML page.",
                              "content": {"text/html": {"schema": {"type": "string"}}}},
                      **_REFUSED},
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

    for app in (spec, docs):
        app.register_error_handler(HTTPException, _page_refused)
        app.before_request(_options)
    return {f"{PREFIX}/openapi.json": spec, f"{PREFIX}/docs": docs}


def _options() -> Response | None:
    """OPTIONS on a page: 204 and `Allow`, as the gateway's index and every function answer
    it (Flask's own answer is a 200 `text/html` with the methods in another order)."""
    if request.method == "OPTIONS" and request.url_rule is not None:
        return Response(status=204, headers={"Allow": allow_header({"GET"})})
    return None


def _page_refused(error: HTTPException) -> Response:
    """The error envelope, as every function answers, for a page's wrong method or path."""
    if error.code == MethodNotAllowed.status:
        return method_not_allowed({"GET"})
    return error_response(NotFound("No such page."))


def _listening(address: str) -> bool:
    """Whether something accepts connections at a URL or host:port."""
    parts = urlsplit(address if "//" in address else f"//{address}")
    if parts.hostname is None or parts.port is None:
        return False
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def database_up() -> bool:
    """Whether the database accepts a connection now (a fresh one: the pool may be busy)."""
    try:
        psycopg.connect(get_settings().db.database_url, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


class _Gateway:
    """The gateway's own answers: the index, the health answer, and 404 for the rest."""

    def __init__(self, names: list[str], services: Services) -> None:
        self._names = names
        self._services = services

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path.rstrip("/")
        ours = path in (PREFIX, PREFIX + HEALTH_PATH) or (
            path == PREFIX + DEMO_TOKENS_PATH and self._services.demo_tokens
        )
        if ours and request.method == "OPTIONS":
            response = Response(status=204, headers={"Allow": allow_header({"GET"})})
        elif ours and request.method not in ("GET", "HEAD"):
            response = method_not_allowed({"GET"})  # the envelope and Allow, as functions say
        elif path == PREFIX:
            response = self._json(self._index(request))
        elif path == PREFIX + HEALTH_PATH:
            response = self._health()
        elif path == PREFIX + DEMO_TOKENS_PATH and self._services.demo_tokens:
            response = self._json(demo_tokens())
            response.headers["Cache-Control"] = "no-store"
        else:
            response = self._error(NotFound("No such function."))
        response.headers[INSTANCE_HEADER] = self._services.instance
        return response(environ, start_response)

    def _index(self, request: Request) -> dict[str, Any]:
        base = request.host_url.rstrip("/") + PREFIX
        emulators = self._services.emulators
        return {
            "service": "syncq",
            "version": shared.__version__,
            "health": base + HEALTH_PATH,
            "functions": [{"name": n, "url": f"{base}/{n}"} for n in self._names],
            "database": {"up": database_up()},
            "emulators": {
                name: {"url": address, "up": _listening(address)}
                for name, address in sorted(emulators.items())
            },
        }

    def _health(self) -> Response:
        if database_up():
            return self._json({"status": "ok"})
        return self._error(
            ServiceUnavailable("The database does not answer.", details={"database": "down"})
        )

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _error(self, error: SyncqError) -> Response:
        return error_response(error)  # the envelope and its headers (Retry-After), as functions


def demo_tokens() -> dict[str, Any]:
    """The demo users (`make run`'s tenants) with a fresh token each."""
    users = []
    for tenant in demo.TENANTS:
        for role, user_id in (("admin", tenant.admin), ("member", tenant.member)):
            users.append(
                {
                    "name": f"{tenant.slug}-{role}",
                    "user_id": str(user_id),
                    "role": role,
                    "tenant": {"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name},
                    "token": mint_token(user_id=user_id, ttl_s=DEMO_TOKEN_TTL_S),
                    "expires_in": DEMO_TOKEN_TTL_S,
                }
            )
    return {"users": users}


class _RootPath:
    """`/functions/v1/<name>` reaches the function as `/` (not as a redirect to `/<name>/`)."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return self._app(environ, start_response)


def build(
    functions_dir: Path = FUNCTIONS_DIR, services: Services | None = None
) -> DispatcherMiddleware:
    """The gateway WSGI app."""
    names = function_names(functions_dir)
    mounts: dict[str, WSGIApplication] = {
        f"{PREFIX}/{name}": _RootPath(load_function(functions_dir / name / "main.py"))
        for name in names
    }
    for path, app in reference_apps(contract_document(functions_dir)).items():
        mounts[path] = _RootPath(app)
    return DispatcherMiddleware(_Gateway(names, services or Services()), mounts)


# Requests too malformed to reach a function (the server refuses the request line or the
# headers): the status http.server chose when it is a 4xx, else 400, and our envelope.
_REFUSALS = {
    414: ("uri_too_long", "The request line is too long."),
    431: ("headers_too_large", "The request headers are too large."),
}
_MALFORMED = ("bad_request", "The request is malformed.")
# gunicorn's limit_request_field_size, which functions-framework leaves at its default.
DEPLOYED_HEADER_LINE_BYTES = 8190


def refusal(code: int) -> tuple[int, bytes]:
    """The status and envelope answering a request the server could not parse."""
    status = code if 400 <= code < 500 else 400
    error_code, message = _REFUSALS.get(status, _MALFORMED)
    body = {"error": {"code": error_code, "message": message}}
    return status, json.dumps(body).encode()


class _LineLengths:
    """A reader passing lines through, keeping the longest one's length with its CRLF and
    whether any continued a header (obs-fold)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.longest = 0
        self.folded = False

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.raw.readline(size)
        self.folded = self.folded or line[:1] in (b" ", b"\t")  # an obs-fold continuation
        self.longest = max(self.longest, len(line.rstrip(b"\r\n")) + 2)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Handler(WSGIRequestHandler):
    """Access lines without query strings (signed webhook URLs must not reach a log), and
    the error envelope, not http.server's HTML page, for requests it cannot parse."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A request line that did not parse leaves no command nor path.
        path = (getattr(self, "path", None) or "-").split("?", 1)[0]
        self.log("info", '"%s %s" %s', self.command or "-", path, code)

    def parse_request(self) -> bool:
        """http.server's parse, then gunicorn's header limit as deployed (functions-framework
        sets no other): a header line over 8190 bytes, CRLF counted, as sent (spaces and
        all), is a 431 there, so it is here too."""
        measured = _LineLengths(self.rfile)  # the header lines, as read off the wire
        self.rfile = measured  # type: ignore[assignment]
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = measured.raw
        if measured.folded:  # gunicorn >= 23 refuses any (permit_obsolete_folding is off)
            self.send_error(400)
            return False
        if measured.longest > DEPLOYED_HEADER_LINE_BYTES:
            self.send_error(431)
            return False
        return True

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


def make(
    host: str = "127.0.0.1", port: int = 8080, services: Services | None = None
) -> BaseWSGIServer:
    """The gateway's threaded server (SSE streams and workers run side by side), not started."""
    app = build(services=services)
    return make_server(host, port, app, threaded=True, request_handler=_Handler)


def serve(host: str = "127.0.0.1", port: int = 8080, services: Services | None = None) -> None:
    """Serve until interrupted."""
    make(host, port, services).serve_forever()


def _pair(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name or not address:
        raise argparse.ArgumentTypeError(f"expected NAME=URL, not {text!r}")
    return name, address


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m infra.local.gateway`: what `make run` starts."""
    parser = argparse.ArgumentParser(prog="python -m infra.local.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--instance", default="", help="echoed in " + INSTANCE_HEADER)
    parser.add_argument(
        "--demo-tokens", action="store_true",
        help=f"serve {PREFIX}{DEMO_TOKENS_PATH}: the demo users with fresh tokens (local only)",
    )  # fmt: skip
    parser.add_argument(
        "--emulator", type=_pair, action="append", default=[], metavar="NAME=URL",
        help="an emulator the index reports on (repeatable; host:port for non-HTTP ones)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    serve(args.host, args.port, Services(dict(args.emulator), args.instance, args.demo_tokens))


if __name__ == "__main__":
    main()
