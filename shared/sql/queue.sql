-- Integration job queue. Every statement that changes a job's state also writes its
-- integration_logs row (and tenant_integrations.last_* on final states) in the same
-- statement, so one transaction carries the whole change (invariant 6).

-- name: insert_job
WITH job AS (
  INSERT INTO integration_jobs (tenant_id, provider_slug, payload, created_by, max_attempts)
  VALUES (%(tenant_id)s, %(provider_slug)s, %(payload)s, %(created_by)s, %(max_attempts)s)
  RETURNING *
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'pending', 'job created', '{}'::jsonb FROM job
)
SELECT * FROM job

-- name: insert_running_job
WITH job AS (
  INSERT INTO integration_jobs (tenant_id, provider_slug, payload, created_by, max_attempts,
                                status, attempts, started_at, heartbeat_at, lease_token)
  VALUES (%(tenant_id)s, %(provider_slug)s, %(payload)s, %(created_by)s, %(max_attempts)s,
          'running', 1, now(), now(), gen_random_uuid())
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

-- name: claim
-- Oldest due first; SKIP LOCKED lets concurrent workers take different jobs.
WITH due AS (
  SELECT id FROM integration_jobs
  WHERE status = 'pending' AND run_after <= now()
    AND (%(job_id)s::uuid IS NULL OR id = %(job_id)s::uuid)
  ORDER BY run_after, created_at
  LIMIT %(limit)s
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE integration_jobs j
  SET status = 'running', attempts = j.attempts + 1, progress = 0, started_at = now(),
      heartbeat_at = now(), lease_token = gen_random_uuid(), updated_at = now(),
      finished_at = NULL, execution_time_ms = NULL
  FROM due WHERE j.id = due.id
  RETURNING j.id, j.tenant_id, j.provider_slug, j.lease_token, j.attempts, j.max_attempts,
            j.payload
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'running', 'job claimed',
         jsonb_build_object('attempt', attempts) FROM claimed
)
SELECT * FROM claimed

-- name: heartbeat
UPDATE integration_jobs
SET progress = %(progress)s, heartbeat_at = now(), updated_at = now()
WHERE id = %(id)s AND lease_token = %(lease)s AND status = 'running'
RETURNING cancel_requested

-- name: lock_held
-- A running job still held under this lease, locked: the next state of a failed attempt is
-- decided against its cancel flag as it stands (cancel requests lock the row too).
SELECT cancel_requested FROM integration_jobs
WHERE id = %(id)s AND lease_token = %(lease)s AND status = 'running'
FOR UPDATE

-- name: finish
-- Final states under the lease: success, error or canceled, for one job or a batch.
-- Returns the ids (and little else) of the rows that were still held: the hot path.
WITH input AS (
  SELECT * FROM unnest(%(ids)s::uuid[], %(leases)s::uuid[], %(statuses)s::text[],
                       %(results)s::jsonb[], %(errors)s::text[])
         AS i(id, lease, status, result, error)
), done AS (
  UPDATE integration_jobs j
  SET status = i.status,
      progress = CASE WHEN i.status = 'success' THEN 100 ELSE j.progress END,
      finished_at = now(), updated_at = now(),
      -- Capped at the integer column's maximum (~24.8 days): a legacy row rescued weeks
      -- after it started must not fail the whole statement with "integer out of range".
      execution_time_ms = CASE WHEN j.started_at IS NULL THEN NULL
                               ELSE LEAST(extract(epoch FROM now() - j.started_at) * 1000,
                                          2147483647)::integer END,
      result = i.result, error_message = i.error, lease_token = NULL
  FROM input i
  WHERE j.id = i.id AND j.lease_token IS NOT DISTINCT FROM i.lease
    AND j.status IN ('pending', 'running')
  RETURNING j.id, j.tenant_id, j.provider_slug, j.status, j.attempts, j.error_message,
            j.execution_time_ms
), integ AS (
  UPDATE tenant_integrations t
  SET last_run = now(), last_status = d.status, last_error = d.error_message, updated_at = now()
  FROM done d
  WHERE t.tenant_id = d.tenant_id AND t.provider_slug = d.provider_slug
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, status, %(message)s,
         jsonb_strip_nulls(jsonb_build_object('attempt', attempts, 'error', error_message,
                                              'execution_time_ms', execution_time_ms))
  FROM done
)
SELECT * FROM done

-- name: retry
-- Back to pending with a scheduled run_after (invariant 5), under the lease.
WITH input AS (
  SELECT * FROM unnest(%(ids)s::uuid[], %(leases)s::uuid[], %(errors)s::text[],
                       %(delays)s::float8[])
         AS i(id, lease, error, delay_s)
), done AS (
  UPDATE integration_jobs j
  SET status = 'pending', error_message = i.error, lease_token = NULL, heartbeat_at = NULL,
      run_after = now() + make_interval(secs => i.delay_s), updated_at = now()
  FROM input i
  WHERE j.id = i.id AND j.lease_token IS NOT DISTINCT FROM i.lease AND j.status = 'running'
  RETURNING j.*, i.delay_s
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'pending', %(message)s,
         jsonb_build_object('attempt', attempts, 'delay_s', round(delay_s::numeric, 3),
                            'error', error_message)
  FROM done
)
SELECT * FROM done

-- name: lock_stale
-- Running jobs whose lease expired, including rows with no timestamps at all.
SELECT id, lease_token, attempts, max_attempts, cancel_requested
FROM integration_jobs
WHERE status = 'running'
  AND (COALESCE(heartbeat_at, started_at) IS NULL
       OR COALESCE(heartbeat_at, started_at) < now() - make_interval(secs => %(stale_after_s)s))
ORDER BY COALESCE(heartbeat_at, started_at) NULLS FIRST
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: lock_job
SELECT * FROM integration_jobs WHERE id = %(id)s FOR UPDATE

-- name: request_cancel
WITH done AS (
  UPDATE integration_jobs SET cancel_requested = true, updated_at = now()
  WHERE id = %(id)s AND status = 'running'
  RETURNING *
), logged AS (
  INSERT INTO integration_logs (job_id, tenant_id, provider_slug, status, message, details)
  SELECT id, tenant_id, provider_slug, 'running', 'cancel requested', '{}'::jsonb FROM done
)
SELECT * FROM done

-- name: due_count
SELECT count(*) AS n FROM integration_jobs WHERE status = 'pending' AND run_after <= now()

-- name: get_job
SELECT * FROM integration_jobs WHERE id = %(id)s

-- name: list_jobs
SELECT * FROM integration_jobs j
WHERE j.tenant_id = %(tenant_id)s
  AND (%(provider_slug)s::text IS NULL OR j.provider_slug = %(provider_slug)s::text)
  AND (%(status)s::text IS NULL OR j.status = %(status)s::text)
  AND (%(before)s::uuid IS NULL OR (j.created_at, j.id) <
       (SELECT b.created_at, b.id FROM integration_jobs b
        WHERE b.id = %(before)s::uuid AND b.tenant_id = %(tenant_id)s))
ORDER BY j.created_at DESC, j.id DESC
LIMIT %(limit)s

-- name: last_success_at
SELECT max(started_at) AS at FROM integration_jobs
WHERE tenant_id = %(tenant_id)s AND provider_slug = %(provider_slug)s AND status = 'success'
