"""sync-bomcontrole: run the BomControle sync (financial entries, clients) now.

For a tenant admin or the service. Body: `{tenant_id | tenant_slug, job_id?}`. Takes the
(tenant, provider) slot through the same unique index as queued jobs (409 when busy) and
appears in the job history.
"""

from __future__ import annotations

import flask

from shared.providers import bomcontrole
from shared.queue.service import sync_function
from shared.web import entry_point, handle

API = sync_function("sync-bomcontrole", bomcontrole.SLUG, "BomControle")


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
