-- Scheduled syncs (shared/queue/schedules.py: the settings, the tick and its steps).

-- name: now
SELECT now() AS now

-- name: list
SELECT s.*, j.status AS last_job_status
FROM integration_schedules s
LEFT JOIN integration_jobs j ON j.id = s.last_job_id
WHERE s.tenant_id = %(tenant_id)s
ORDER BY s.provider_slug

-- name: get
SELECT s.*, j.status AS last_job_status
FROM integration_schedules s
LEFT JOIN integration_jobs j ON j.id = s.last_job_id
WHERE s.tenant_id = %(tenant_id)s AND s.provider_slug = %(provider_slug)s

-- name: upsert
-- A new or changed schedule starts from the occurrence the caller computed; one saved with
-- the same timing (cron, zone and offset, enabled before and after) keeps the occurrence it
-- was waiting for, so saving it again never drops a run that is due or about to be.
-- Enabling it again clears the reason it was paused.
INSERT INTO integration_schedules
  (tenant_id, provider_slug, cron, timezone, enabled, missed, spread, offset_s, next_run_at,
   due_at, created_by)
VALUES (%(tenant_id)s, %(provider_slug)s, %(cron)s, %(timezone)s, %(enabled)s, %(missed)s,
        %(spread)s, %(offset_s)s, %(next_run_at)s,
        %(next_run_at)s::timestamptz + make_interval(secs => %(offset_s)s), %(created_by)s)
ON CONFLICT (tenant_id, provider_slug) DO UPDATE
SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, enabled = EXCLUDED.enabled,
    missed = EXCLUDED.missed, spread = EXCLUDED.spread, offset_s = EXCLUDED.offset_s,
    (next_run_at, due_at) = (
      SELECT CASE WHEN k.same THEN integration_schedules.next_run_at ELSE EXCLUDED.next_run_at END,
             CASE WHEN k.same THEN integration_schedules.due_at ELSE EXCLUDED.due_at END
      FROM (SELECT integration_schedules.enabled AND EXCLUDED.enabled
                   AND (integration_schedules.cron, integration_schedules.timezone,
                        integration_schedules.offset_s)
                     = (EXCLUDED.cron, EXCLUDED.timezone, EXCLUDED.offset_s) AS same) AS k),
    paused_reason = CASE WHEN EXCLUDED.enabled THEN NULL
                         ELSE integration_schedules.paused_reason END,
    updated_at = now()

-- name: integration
SELECT enabled FROM tenant_integrations
WHERE tenant_id = %(tenant_id)s AND provider_slug = %(provider_slug)s

-- name: delete
DELETE FROM integration_schedules
WHERE tenant_id = %(tenant_id)s AND provider_slug = %(provider_slug)s
RETURNING provider_slug

-- name: take_due
-- Due schedules, locked for this sweep alone (a concurrent sweep skips them), with whether
-- the integration is enabled. An `all` schedule catching up waits for its previous
-- occurrence's job to end: it is not taken while that job is live (nor holds the head of
-- the queue), and is taken by the first sweep after.
SELECT s.tenant_id, s.provider_slug, s.cron, s.timezone, s.missed, s.offset_s, s.next_run_at,
       s.last_job_id, t.enabled AS integration_enabled, now() AS db_now
FROM integration_schedules s
JOIN tenant_integrations t ON t.tenant_id = s.tenant_id AND t.provider_slug = s.provider_slug
WHERE s.enabled AND s.due_at <= now()
  AND NOT (s.missed = 'all' AND EXISTS (
    SELECT 1 FROM integration_jobs j
    WHERE j.id = s.last_job_id AND j.status IN ('pending', 'running')))
ORDER BY s.due_at
LIMIT %(limit)s
FOR UPDATE OF s SKIP LOCKED

-- name: live_jobs
-- Which of these jobs are live, read by a statement of its own: take_due's snapshot is older
-- than its row locks, so it may miss a job a concurrent sweep enqueued and committed between.
SELECT id FROM integration_jobs
WHERE id = ANY(%(ids)s::uuid[]) AND status IN ('pending', 'running')

-- name: enqueue
-- One job per occurrence, its log row with it. An integration that already has a live job,
-- or an occurrence that already has its job, inserts nothing: the tick records a skip.
WITH input AS (
  SELECT * FROM unnest(%(tenants)s::uuid[], %(providers)s::text[], %(occurrences)s::timestamptz[],
                       %(offsets)s::integer[])
         AS i(tenant_id, provider_slug, occurrence, offset_s)
), job AS (
  INSERT INTO integration_jobs (tenant_id, provider_slug, trigger, scheduled_for, scheduled_due_at)
  SELECT tenant_id, provider_slug, 'schedule', occurrence,
         occurrence + make_interval(secs => offset_s)
  FROM input
  ON CONFLICT DO NOTHING
  RETURNING id, tenant_id, provider_slug, scheduled_for
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'pending', 'job created by its schedule',
         jsonb_build_object('scheduled_for', scheduled_for) FROM job
)
SELECT * FROM job

-- name: put_off
-- Schedules taken that cannot be planned (a zone gone from tzdata): tried again later, so
-- they do not hold the head of the due queue; next_run_at, the occurrence, is kept.
UPDATE integration_schedules s
SET due_at = now() + make_interval(secs => %(delay_s)s), updated_at = now()
FROM unnest(%(tenants)s::uuid[], %(providers)s::text[]) AS i(tenant_id, provider_slug)
WHERE s.tenant_id = i.tenant_id AND s.provider_slug = i.provider_slug

-- name: advance
-- Each schedule taken moves on to its next occurrence, with what became of this one; the
-- occurrences it passed over or skipped are logged (job_id NULL) for the history.
WITH input AS (
  SELECT * FROM unnest(%(tenants)s::uuid[], %(providers)s::text[], %(next_runs)s::timestamptz[],
                       %(ran)s::timestamptz[], %(outcomes)s::text[], %(jobs)s::uuid[],
                       %(missed)s::integer[], %(reasons)s::text[])
         AS i(tenant_id, provider_slug, next_run_at, ran, outcome, job_id, missed, reason)
), moved AS (
  UPDATE integration_schedules s
  SET next_run_at = i.next_run_at, due_at = i.next_run_at + make_interval(secs => s.offset_s),
      last_run_at = COALESCE(i.ran, s.last_run_at),
      last_outcome = COALESCE(i.outcome, s.last_outcome),
      last_job_id = COALESCE(i.job_id, s.last_job_id), updated_at = now()
  FROM input i
  WHERE s.tenant_id = i.tenant_id AND s.provider_slug = i.provider_slug
)
INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
SELECT NULL, tenant_id, provider_slug, 'skipped', reason,
       jsonb_strip_nulls(jsonb_build_object('scheduled_for', ran, 'missed', NULLIF(missed, 0)))
FROM input WHERE reason IS NOT NULL
