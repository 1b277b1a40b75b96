"""integrations-dashboard: the web app (Integrações, Detalhe, Sync Monitor, Créditos).

Static files only (HTML, CSS, ES modules and vendored libraries under app/; not static/,
whose URLs Flask itself would answer); the app calls the other functions from the browser
with the user's own JWT. Anyone may load it.
"""

from __future__ import annotations

from pathlib import Path

import flask
from pydantic import BaseModel

from shared.auth import Principal
from shared.contract import Caller, Endpoint, Function, Stream
from shared.errors import NotFound
from shared.openapi import DOCUMENT_PATH
from shared.static import serve_static
from shared.web import entry_point, handle, settle

APP = Path(__file__).resolve().parent / "app"


class PageQuery(BaseModel):
    """The page takes no parameters."""


def _page(_: Principal, __: PageQuery) -> flask.Response:
    return serve_static(flask.request, APP)


# Declared for the OpenAPI document; the files are served below without the JSON edge.
API = Function(
    "integrations-dashboard",
    "The web app (Integrações, Detalhe, Sync Monitor, Créditos): HTML, CSS and JS.",
    (
        Endpoint("The dashboard", PageQuery, _page,
                 {200: Stream("text/html", "The app's page; its files under the same path.")},
                 (Caller.PUBLIC,), errors=(NotFound,), method="GET"),
    ),
)  # fmt: skip


@entry_point
def main(request: flask.Request) -> flask.Response:
    if request.path.rstrip("/") == DOCUMENT_PATH:
        return handle(request, API)  # its part of the OpenAPI document
    return settle(request, serve_static(request, APP))  # a broken body is a 400 here too
