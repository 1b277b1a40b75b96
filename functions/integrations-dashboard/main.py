"""integrations-dashboard: the web app (Integrações, Detalhe, Sync Monitor, Créditos).

Static files only (HTML, CSS, ES modules and vendored libraries under app/; not static/,
whose URLs Flask itself would answer); the app calls the other functions from the browser
with the user's own JWT. Anyone may load it.
"""

from __future__ import annotations

from pathlib import Path

import flask
import functions_framework

from shared.static import serve_static

APP = Path(__file__).resolve().parent / "app"


@functions_framework.http
def main(request: flask.Request) -> flask.Response:
    return serve_static(request, APP)
