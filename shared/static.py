"""Static files for a function that serves a web app (integrations-dashboard).

Only GET and HEAD of files under the function's own folder; everything else is the usual
error envelope. `/` is the app's index.html. Modules and styles get explicit types (a
browser refuses a module served as text/plain), and every answer a strict policy: the app
may load only its own files and talk only to its own origin and the configured API.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from pathlib import Path

import flask
from werkzeug.security import safe_join

from shared.errors import NotFound, SyncqError
from shared.web import allow_header, error_response, method_not_allowed, with_cors

INDEX = "index.html"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
# index.html is checked on every load (a new deploy shows at once); the rest briefly cached.
CACHE = {".html": "no-cache"}
ASSET_CACHE = "public, max-age=300"
POLICY = (
    "default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self' http: https:; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
METHODS = {"GET", "HEAD"}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def serve_static(request: flask.Request, root: Path) -> flask.Response:
    """The file a GET names under `root` (its index.html for `/`), or the error envelope."""
    try:
        if request.method == "OPTIONS":
            response = flask.Response(status=204, headers={"Allow": allow_header(METHODS)})
        elif request.method not in METHODS:
            response = method_not_allowed(METHODS)
        else:
            response = _file(root, request.path.lstrip("/") or INDEX)
    except SyncqError as error:
        response = error_response(error)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return with_cors(request, response, METHODS)


def _file(root: Path, name: str) -> flask.Response:
    joined = safe_join(str(root), name)
    path = Path(joined) if joined is not None else None
    try:  # a name the file system cannot even look up (too long, ...) names no file either
        if path is None or not path.is_file() or path.name.startswith("."):
            raise NotFound("No such file.")
        body = path.read_bytes()
    except (OSError, ValueError) as exc:
        raise NotFound("No such file.") from exc
    suffix = path.suffix.lower()
    kind = TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = flask.Response(body, status=200, content_type=kind)
    response.headers["Cache-Control"] = CACHE.get(suffix, ASSET_CACHE)
    response.headers["Content-Security-Policy"] = POLICY.format(hashes=inline_hashes(body))
    return response


def inline_hashes(html: bytes) -> str:
    """CSP sources allowing exactly the page's own inline scripts (none for other files)."""
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
