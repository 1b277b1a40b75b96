"""sync-onecode-contacts: run the OneCode contacts sync now, for a tenant admin or the service.

Body: `{tenant_id | tenant_slug, job_id?}`. Takes the (tenant, provider) slot through the
same unique index as queued jobs (409 when busy) and appears in the job history.
"""

from __future__ import annotations

import flask

from shared.providers import onecode
from shared.queue.service import sync_function
from shared.web import entry_point, handle

API = sync_function("sync-onecode-contacts", onecode.SLUG, "OneCode")


@entry_point
def main(request: flask.Request) -> flask.Response:
    return handle(request, API)
