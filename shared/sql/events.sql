-- The job event stream (shared/queue/events.py).

-- name: snapshot
-- What a (re)connecting stream starts with: the tenant's live jobs (at most one per
-- provider, always all of them), plus the jobs changed after the last event the client saw
-- (its Last-Event-ID), so a job that finished while the client was reconnecting still
-- reaches it: the newest `limit` of them, when more changed (a client away that long
-- refetches anyway; the newest are what it shows). Oldest change first.
-- A finished job's row is not written again (finished_at = updated_at), so the jobs changed
-- since are the live ones and those finished since: two index ranges (0067), never the
-- tenant's history.
SELECT * FROM integration_jobs j
WHERE j.id IN (SELECT l.id FROM integration_jobs l
               WHERE l.tenant_id = %(tenant_id)s AND l.status IN ('pending', 'running')
               UNION ALL
               (SELECT c.id FROM integration_jobs c
                WHERE c.tenant_id = %(tenant_id)s AND c.finished_at > %(since)s::timestamptz
                ORDER BY c.finished_at DESC, c.id DESC
                LIMIT %(limit)s))
ORDER BY j.updated_at, j.id

-- name: clock
-- The transaction's start: a stream re-reads from here (less a margin) when it resyncs.
SELECT now() AS now
