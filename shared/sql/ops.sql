-- Operator commands (python -m infra.ops jobs ...).

-- name: list_jobs
SELECT j.id, t.slug AS tenant, j.provider_slug, j.status, j.progress, j.attempts,
       j.max_attempts, j.created_at, j.started_at, j.heartbeat_at, j.finished_at,
       j.run_after, j.error_message
FROM integration_jobs j JOIN tenants t ON t.id = j.tenant_id
WHERE (%(tenant_id)s::uuid IS NULL OR j.tenant_id = %(tenant_id)s::uuid)
  AND (%(provider_slug)s::text IS NULL OR j.provider_slug = %(provider_slug)s::text)
  AND (%(status)s::text IS NULL OR j.status = %(status)s::text)
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s

-- name: tenant_named
-- The tenant a CLI's --tenant names: its slug, or its id (a slug may look like another
-- tenant's id: the slug wins).
SELECT id FROM tenants WHERE slug = %(tenant)s::text OR id = %(id)s::uuid
ORDER BY slug = %(tenant)s::text DESC
LIMIT 1

-- name: stuck_jobs
-- Live jobs with no sign of life for longer than the threshold: running without a
-- heartbeat (or any timestamp), pending whose due time passed long ago. Locked, skipping
-- rows a worker holds right now, so the dry-run lists what the clean-up would close; the
-- clean-up ends them through the queue's own release (shared/queue/store.py): logs,
-- last_*, the failure streak and its alert, as any job that ends in error.
SELECT id, lease_token, provider_slug, status AS was,
       CASE WHEN status = 'running' THEN COALESCE(heartbeat_at, started_at, created_at)
            ELSE run_after END AS since
FROM integration_jobs
WHERE status IN ('pending', 'running')
  AND (%(provider_slug)s::text IS NULL OR provider_slug = %(provider_slug)s::text)
  AND CASE WHEN status = 'running' THEN COALESCE(heartbeat_at, started_at, created_at)
           ELSE run_after END < now() - make_interval(secs => %(older_than_s)s)
ORDER BY since
FOR UPDATE SKIP LOCKED

-- name: ghost_integrations
-- What fix_ghost_integrations would change (cleanup-stuck --dry-run).
SELECT ti.tenant_id, ti.provider_slug, ti.last_status
FROM tenant_integrations ti
WHERE ti.last_status IN ('pending', 'running')
  AND (%(provider_slug)s::text IS NULL OR ti.provider_slug = %(provider_slug)s::text)
  AND NOT EXISTS (
    SELECT 1 FROM integration_jobs a
    WHERE a.tenant_id = ti.tenant_id AND a.provider_slug = ti.provider_slug
      AND a.status IN ('pending', 'running'))

-- name: fix_ghost_integrations
-- An integration that says pending/running with no live job mirrors its latest final job
-- (only the --provider's, when one is named).
UPDATE tenant_integrations t
SET last_status = latest.status, last_error = latest.error_message,
    last_run = COALESCE(latest.finished_at, t.last_run), updated_at = now()
FROM (
  SELECT ti.tenant_id, ti.provider_slug, j.status, j.error_message, j.finished_at
  FROM tenant_integrations ti
  LEFT JOIN LATERAL (
    SELECT status, error_message, finished_at FROM integration_jobs
    WHERE tenant_id = ti.tenant_id AND provider_slug = ti.provider_slug
      AND status IN ('success', 'error', 'canceled')
    ORDER BY finished_at DESC NULLS LAST LIMIT 1
  ) j ON true
  WHERE ti.last_status IN ('pending', 'running')
    AND (%(provider_slug)s::text IS NULL OR ti.provider_slug = %(provider_slug)s::text)
    AND NOT EXISTS (
      SELECT 1 FROM integration_jobs a
      WHERE a.tenant_id = ti.tenant_id AND a.provider_slug = ti.provider_slug
        AND a.status IN ('pending', 'running'))
) latest
WHERE t.tenant_id = latest.tenant_id AND t.provider_slug = latest.provider_slug
RETURNING t.tenant_id, t.provider_slug, t.last_status
