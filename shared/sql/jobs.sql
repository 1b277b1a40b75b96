-- The job engine's statements, for any table with the lease columns (id, tenant_id, status
-- 'pending'|'running'|..., attempts, lease_token, heartbeat_at, run_after, started_at,
-- finished_at, error_message, created_at, updated_at).
--
-- {table} is the kind's table (an allow-listed identifier). A kind may add its own columns
-- and side rows to a statement through fragments named in its own .sql file:
--   {claim_set} {claim_returning} {claim_effects}
--   {heartbeat_set} {release_set} {release_returning} {release_effects}
-- (see shared/jobs/table.py), so every state change stays one statement (invariant 6).
--
-- The table keeps every finished job, so no statement may let the planner scan it whole:
-- the release names its ids (`id = ANY(...)`, the primary key at any size); the claim
-- joins its few locked `due` rows (a generic plan does that by the primary key too, where
-- an `ANY(ARRAY(SELECT ...))` form made PostgreSQL re-plan every claim).

-- name: claim
-- Oldest due first; SKIP LOCKED lets concurrent workers take different jobs.
WITH due AS (
  SELECT id FROM {table}
  WHERE status = 'pending' AND run_after <= now()
    AND (%(job_id)s::uuid IS NULL OR id = %(job_id)s::uuid)
  ORDER BY run_after, created_at
  LIMIT %(limit)s
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE {table} j
  SET status = 'running', attempts = j.attempts + 1, heartbeat_at = now(),
      lease_token = gen_random_uuid(), updated_at = now(), finished_at = NULL{claim_set}
  FROM due WHERE j.id = due.id
  RETURNING {claim_returning}
){claim_effects}
SELECT * FROM claimed

-- name: heartbeat
-- Still ours? Touches the lease; the row tells its runner what was requested meanwhile.
UPDATE {table}
SET heartbeat_at = now(), updated_at = now(){heartbeat_set}
WHERE id = %(id)s AND lease_token = %(lease)s AND status = 'running'
RETURNING *

-- name: renew
-- A job claimed in a batch, just before its turn: still ours? Touched, so the rescue does
-- not take it now that it starts (its waiting in the batch sent no heartbeat).
UPDATE {table} SET heartbeat_at = now(), updated_at = now()
WHERE id = %(id)s AND lease_token = %(lease)s AND status = 'running'
RETURNING id

-- name: lock_held
-- The running job still held under this lease, locked: its next state is decided against
-- the requests (cancel, pause) as they stand, since requests lock the row too.
SELECT * FROM {table}
WHERE id = %(id)s AND lease_token = %(lease)s AND status = 'running'
FOR UPDATE

-- name: release
-- The lease ends: a final state, or back to pending after a delay, for one job or a batch.
-- Rows whose lease no longer matches are left alone (a zombie changes nothing).
-- The arrays travel in binary (placeholders ending in b, not s): dumping a batch's arrays
-- as text cost the worker more than the rest of the call.
WITH input AS (
  SELECT * FROM unnest(%(ids)b::uuid[], %(leases)b::uuid[], %(statuses)b::text[],
                       %(errors)b::text[], %(delays)b::float8[], %(finals)b::boolean[],
                       %(extras)b::jsonb[])
         AS i(id, lease, status, error, delay_s, final, extra)
), done AS (
  UPDATE {table} j
  SET status = i.status, lease_token = NULL, error_message = i.error, updated_at = now(),
      heartbeat_at = CASE WHEN i.status = 'pending' THEN NULL ELSE j.heartbeat_at END,
      run_after = CASE WHEN i.delay_s IS NULL THEN j.run_after
                       ELSE now() + make_interval(secs => i.delay_s) END,
      finished_at = CASE WHEN i.final THEN now() END{release_set}
  FROM input i
  WHERE j.id = ANY(%(ids)b::uuid[]) AND j.id = i.id AND j.lease_token IS NOT DISTINCT FROM i.lease
    AND j.status IN ('pending', 'running')
  RETURNING {release_returning}, i.delay_s
){release_effects}
SELECT * FROM done

-- name: lock_stale
-- The rescue: running jobs whose lease expired (no heartbeat for stale_after_s), including
-- rows with no timestamps at all, locked for the sweep that hands them back.
SELECT * FROM {table}
WHERE status = 'running'
  AND (COALESCE(heartbeat_at, started_at) IS NULL
       OR COALESCE(heartbeat_at, started_at) < now() - make_interval(secs => %(stale_after_s)s))
ORDER BY COALESCE(heartbeat_at, started_at) NULLS FIRST
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: due
-- Pending jobs that should be running, oldest due first (not locked: a wake-up list).
SELECT id, tenant_id FROM {table}
WHERE status = 'pending' AND run_after <= now()
ORDER BY run_after, created_at
LIMIT %(limit)s

-- name: due_count
SELECT count(*) AS n FROM {table} WHERE status = 'pending' AND run_after <= now()

-- name: depth
-- Live work of the kind, for every tenant or one: pending + running, and how long the
-- oldest pending job already due has been due.
SELECT count(*) AS depth,
       extract(epoch FROM now() - min(run_after) FILTER (
         WHERE status = 'pending' AND run_after <= now()))::float8 AS oldest_due_age_s
FROM {table}
WHERE status IN ('pending', 'running')
  AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
