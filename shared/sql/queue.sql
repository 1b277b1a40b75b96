-- Integration job queue. Every statement that changes a job's state also writes its
-- integration_logs row (and tenant_integrations.last_* on final states) in the same
-- statement, so one transaction carries the whole change (invariant 6).

-- name: insert_job
-- created_at is the insert's own time, not its transaction's start (the column's default,
-- migration 0068): a click whose request was slow before its insert must still list above a
-- job created and ended meanwhile.
WITH job AS (
  INSERT INTO integration_jobs (tenant_id, provider_slug, payload, created_by, max_attempts,
                                trigger)
  VALUES (%(tenant_id)s, %(provider_slug)s, %(payload)s, %(created_by)s, %(max_attempts)s,
          %(trigger)s)
  RETURNING *
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'pending', 'job created', '{}'::jsonb FROM job
)
SELECT * FROM job

-- name: insert_running_job
WITH job AS (
  INSERT INTO integration_jobs (tenant_id, provider_slug, payload, created_by, max_attempts,
                                trigger, status, attempts, started_at, heartbeat_at, lease_token)
  VALUES (%(tenant_id)s, %(provider_slug)s, %(payload)s, %(created_by)s, %(max_attempts)s,
          %(trigger)s, 'running', 1, clock_timestamp(), clock_timestamp(), gen_random_uuid())
  RETURNING *
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'running', 'job started directly',
         jsonb_build_object('attempt', attempts) FROM job
)
SELECT * FROM job

-- name: active_job
SELECT id, status FROM integration_jobs
WHERE tenant_id = %(tenant_id)s AND provider_slug = %(provider_slug)s
  AND status IN ('pending', 'running')

-- Fragments of the engine's statements (shared/sql/jobs.sql) for integration_jobs.

-- name: claim_set
, progress = 0, started_at = now(), execution_time_ms = NULL

-- name: claim_effects
, logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'running', 'job claimed',
         jsonb_build_object('attempt', attempts) FROM claimed
)

-- name: claim_returning
-- What the runner reads of a claimed job (shared/queue/kind.py), and no more: this is the
-- hot path, and each column returned is decoded for every job.
j.id, j.tenant_id, j.provider_slug, j.status, j.lease_token, j.attempts, j.max_attempts,
j.payload, j.cancel_requested, j.trigger

-- name: heartbeat_set
-- Within an attempt progress only goes up (a provider that walks its listing again starts
-- its count over); the claim sets 0 for each attempt.
, progress = GREATEST(progress, %(progress)s)

-- name: release_set
-- A final state stamps the progress and the attempt's time (capped at the integer column's
-- maximum, ~24.8 days: a legacy row rescued weeks after it started must not fail the
-- statement) and stores the result; a retry keeps them, and so does a pending job ended
-- (canceled) while it waits for its retry: no attempt runs, and the wait is not run time.
, progress = CASE WHEN i.status = 'success' THEN 100 ELSE j.progress END,
  execution_time_ms = CASE WHEN NOT i.final OR j.status <> 'running' THEN j.execution_time_ms
                           WHEN j.started_at IS NULL THEN NULL
                           ELSE LEAST(extract(epoch FROM now() - j.started_at) * 1000,
                                      2147483647)::integer END,
  result = CASE WHEN i.final THEN i.extra -> 'result' ELSE j.result END

-- name: release_returning
j.id, j.tenant_id, j.provider_slug, j.status, j.attempts, j.error_message,
j.execution_time_ms, j.finished_at, j.run_after

-- name: release_effects
-- On final states: tenant_integrations.last_* and its failure streak, the schedule paused
-- after too many failures in a row, and the alert (if any) in the outbox, all decided from
-- the integration as it stood before this statement (`prior`: every sub-statement sees the
-- same snapshot). An integration_logs row always (invariant 6).
, prior AS (
  SELECT d.id AS job_id, d.tenant_id, d.provider_slug, d.status, d.error_message,
         t.consecutive_failures AS failures_before, t.last_alert_at, t.failure_alerted
  FROM done d
  JOIN tenant_integrations t ON t.tenant_id = d.tenant_id AND t.provider_slug = d.provider_slug
  WHERE d.finished_at IS NOT NULL
), decided AS (
  -- Only a failure, or a first success after failures, can raise an alert or pause the
  -- schedule: the usual success (the hot path) skips the settings and the decision.
  SELECT p.*, COALESCE(x.pauses, false) AS pauses, x.event
  FROM prior p
  LEFT JOIN LATERAL (
    SELECT s.pauses, integration_alert_event(p.failures_before, p.status, p.last_alert_at,
                                             s.remind_at, s.pauses, p.failure_alerted) AS event
    FROM (
      SELECT COALESCE(a.remind_at, '{3,10}') AS remind_at,
             (p.status = 'error' AND sch.enabled IS TRUE
              AND p.failures_before + 1 >= COALESCE(a.pause_schedule_after, 5)) AS pauses
      FROM (SELECT 1) AS one
      LEFT JOIN alert_settings a ON a.tenant_id = p.tenant_id
      LEFT JOIN integration_schedules sch
             ON sch.tenant_id = p.tenant_id AND sch.provider_slug = p.provider_slug
    ) AS s
    WHERE p.status = 'error' OR (p.status = 'success' AND p.failures_before > 0)
  ) AS x ON true
), integ AS (
  UPDATE tenant_integrations t
  SET last_run = now(), last_status = d.status, last_error = d.error_message, updated_at = now(),
      consecutive_failures = CASE d.status WHEN 'error' THEN d.failures_before + 1
                                           WHEN 'success' THEN 0
                                           ELSE d.failures_before END,
      last_alert_at = CASE WHEN d.event IS NULL THEN t.last_alert_at ELSE now() END,
      failure_alerted = CASE WHEN d.status = 'success' THEN false
                             WHEN d.status = 'error' AND d.event IS NOT NULL THEN true
                             ELSE t.failure_alerted END
  FROM decided d
  WHERE t.tenant_id = d.tenant_id AND t.provider_slug = d.provider_slug
), paused AS (
  UPDATE integration_schedules s
  SET enabled = false, updated_at = now(),
      paused_reason = 'Pausado após ' || (d.failures_before + 1)
                      || ' falhas seguidas. Corrija a integração e reative o agendamento.'
  FROM decided d
  WHERE d.pauses AND s.tenant_id = d.tenant_id AND s.provider_slug = d.provider_slug
), alerted AS (
  INSERT INTO alert_outbox (tenant_id, provider_slug, event, job_id, failures, detail,
                            schedule_paused)
  SELECT tenant_id, provider_slug, event, job_id,
         CASE status WHEN 'error' THEN failures_before + 1 ELSE failures_before END,
         error_message, pauses
  FROM decided WHERE event IS NOT NULL
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, status, %(message)s,
         jsonb_strip_nulls(jsonb_build_object(
           'attempt', attempts, 'error', error_message, 'execution_time_ms', execution_time_ms,
           'delay_s', round(delay_s::numeric, 3)))
  FROM done
)

-- name: lock_job
SELECT * FROM integration_jobs WHERE id = %(id)s FOR UPDATE

-- name: request_cancel
WITH done AS (
  -- the statement's own time: a heartbeat committed while this request checked the caller
  -- is older than the cancel, and a client keeping the newest copy must keep this one
  UPDATE integration_jobs SET cancel_requested = true, updated_at = clock_timestamp()
  WHERE id = %(id)s AND status = 'running'
  RETURNING *
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'running', 'cancel requested', '{}'::jsonb FROM done
)
SELECT * FROM done

-- name: get_job
SELECT * FROM integration_jobs WHERE id = %(id)s

-- name: list_jobs
SELECT * FROM integration_jobs j
WHERE j.tenant_id = %(tenant_id)s
  AND (%(provider_slug)s::text IS NULL OR j.provider_slug = %(provider_slug)s::text)
  AND (%(status)s::text IS NULL OR j.status = %(status)s::text)
  AND (%(trigger)s::text IS NULL OR j.trigger = %(trigger)s::text)
  AND (%(before)s::uuid IS NULL OR (j.created_at, j.id) <
       (SELECT b.created_at, b.id FROM integration_jobs b
        WHERE b.id = %(before)s::uuid AND b.tenant_id = %(tenant_id)s))
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s

-- name: last_success_at
SELECT max(started_at) AS at FROM integration_jobs
WHERE tenant_id = %(tenant_id)s AND provider_slug = %(provider_slug)s AND status = 'success'

-- name: lock_schedules_of
-- The schedule rows of these jobs' integrations, in one order, before the jobs are updated
-- (the schedules tick takes a schedule row, then inserts a job that waits on a live one).
SELECT 1 FROM integration_schedules s
JOIN integration_jobs j ON j.tenant_id = s.tenant_id AND j.provider_slug = s.provider_slug
WHERE j.id = ANY(%(ids)s::uuid[])
ORDER BY s.tenant_id, s.provider_slug
FOR NO KEY UPDATE OF s
