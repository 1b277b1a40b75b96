-- The job event stream (shared/queue/events.py).

-- name: snapshot
-- What a (re)connecting stream starts with: the tenant's live jobs, plus every job changed
-- after the last event the client saw (its Last-Event-ID), so a job that finished while
-- the client was reconnecting still reaches it. Oldest change first.
SELECT * FROM integration_jobs
WHERE tenant_id = %(tenant_id)s
  AND (status IN ('pending', 'running') OR updated_at > %(since)s::timestamptz)
ORDER BY updated_at, id
LIMIT %(limit)s

-- name: clock
-- The transaction's start: a stream re-reads from here (less a margin) when it resyncs.
SELECT now() AS now
