-- Credits queue manager. Jobs are addressed as (job_table, id) on `ai_jobs`, whose
-- partitions are image_jobs and video_jobs; job_table is always a bound value that the
-- code took from its allow-list.

-- name: create_image_job
-- The browser's createJob, run as the user (role `authenticated`: RLS and the column
-- grants apply), one query per allow-listed table. The BEFORE INSERT trigger sets
-- credits_cost from credit_prices and refuses a workflow without a price
-- (check_violation, constraint ai_jobs_priced_workflow).
INSERT INTO image_jobs (id, user_id, workflow_id, inputs, session_id)
VALUES (coalesce(%(id)s::uuid, gen_random_uuid()), %(user_id)s, %(workflow_id)s, %(inputs)s,
        %(session_id)s)
RETURNING *

-- name: create_video_job
-- As create_image_job.
INSERT INTO video_jobs (id, user_id, workflow_id, inputs, session_id)
VALUES (coalesce(%(id)s::uuid, gen_random_uuid()), %(user_id)s, %(workflow_id)s, %(inputs)s,
        %(session_id)s)
RETURNING *

-- name: claim_idempotency_key
-- /create's Idempotency-Key, claimed as the service before the job it names is inserted
-- (same transaction). A row back: this create makes the job. None: the key is held (a
-- concurrent create's claim is waited for first), read it with idempotency_key. A key
-- older than 24 hours is claimed anew, as if it had never been sent.
INSERT INTO credit_idempotency_keys AS k (user_id, key, request_hash, job_table, job_id)
VALUES (%(user_id)s, %(key)s, %(request_hash)s, %(job_table)s, %(id)s)
ON CONFLICT (user_id, key) DO UPDATE
SET request_hash = excluded.request_hash, job_table = excluded.job_table,
    job_id = excluded.job_id, created_at = now()
WHERE k.created_at < now() - interval '24 hours'
RETURNING *

-- name: idempotency_key
SELECT * FROM credit_idempotency_keys WHERE user_id = %(user_id)s AND key = %(key)s

-- name: lock_job
SELECT * FROM ai_jobs WHERE job_table = %(job_table)s AND id = %(id)s FOR UPDATE

-- name: get_job
SELECT * FROM ai_jobs WHERE job_table = %(job_table)s AND id = %(id)s

-- name: task_held_elsewhere
SELECT EXISTS (
  SELECT 1 FROM ai_jobs
  WHERE job_table = %(job_table)s AND external_task_id = %(task_id)s AND id <> %(id)s
) AS held

-- name: ledger_kinds
SELECT kind FROM credit_ledger WHERE job_table = %(job_table)s AND job_id = %(id)s

-- name: lock_account
-- Taken before a ledger row is written, so the rows' created_at (clock_timestamp()) follow
-- the order in which the user's balance moved (callers hold the job row: job, then account).
SELECT 1 FROM credit_accounts WHERE user_id = %(user_id)s FOR UPDATE

-- name: lock_refund_account
-- As lock_account, for the account the job's debit came from.
SELECT 1 FROM credit_accounts a
JOIN credit_ledger l ON l.user_id = a.user_id
WHERE l.job_table = %(job_table)s AND l.job_id = %(id)s AND l.kind = 'debit'
FOR UPDATE OF a

-- name: insert_debit
-- Returns a row only when the debit was inserted now (a second /start debits nothing).
INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)
VALUES (%(user_id)s, %(amount)s, 'debit', %(job_table)s, %(id)s)
ON CONFLICT (job_table, job_id, kind) DO NOTHING
RETURNING id

-- name: take_balance
UPDATE credit_accounts SET balance = balance - %(amount)s, updated_at = now()
WHERE user_id = %(user_id)s AND balance >= %(amount)s
RETURNING balance

-- name: balance
SELECT balance FROM credit_accounts WHERE user_id = %(user_id)s

-- name: refund
-- Refund the job's debit once: the balance moves only with the ledger row inserted here.
WITH debit AS (
  SELECT user_id, amount FROM credit_ledger
  WHERE job_table = %(job_table)s AND job_id = %(id)s AND kind = 'debit'
), refunded AS (
  INSERT INTO credit_ledger (user_id, amount, kind, job_table, job_id)
  SELECT user_id, amount, 'refund', %(job_table)s, %(id)s FROM debit
  ON CONFLICT (job_table, job_id, kind) DO NOTHING
  RETURNING user_id, amount
), moved AS (
  UPDATE credit_accounts a SET balance = a.balance + r.amount, updated_at = now()
  FROM refunded r WHERE a.user_id = r.user_id
  RETURNING a.user_id
)
SELECT r.amount, (SELECT count(*) FROM moved) AS moved FROM refunded r

-- name: lock_user
-- Serializes one user's /start decisions, so the per-user cap holds under concurrent calls.
SELECT pg_advisory_xact_lock(hashtext('syncq:credits-user'), hashtext(%(user_id)s::text))

-- name: user_active_jobs
SELECT count(*) AS n FROM ai_jobs
WHERE user_id = %(user_id)s AND status IN ('queued', 'starting', 'running')

-- name: price_job
-- The server's current price for the job's workflow; no row when the workflow has none.
UPDATE ai_jobs j SET credits_cost = p.credits, updated_at = now()
FROM credit_prices p
WHERE j.job_table = %(job_table)s AND j.id = %(id)s AND j.status = 'pending'
  AND p.job_table = j.job_table AND p.workflow_id = j.workflow_id
RETURNING j.*

-- name: queue_job
UPDATE ai_jobs SET status = 'queued', queued_at = now(), updated_at = now()
WHERE job_table = %(job_table)s AND id = %(id)s AND status = 'pending'
RETURNING *

-- name: lock_slots
-- Serializes every slot decision (promotion to 'starting') across processes.
SELECT pg_advisory_xact_lock(hashtext('syncq:runninghub-slots'))

-- name: counts
-- Two counts, each on its own partial index (finished jobs are never read).
SELECT (SELECT count(*) FROM ai_jobs WHERE status IN ('starting', 'running')) AS active,
       (SELECT count(*) FROM ai_jobs WHERE status = 'queued') AS queued

-- name: fair_queue
-- The queue in the order slots are given, so one user's burst never starves another:
--   1. the user holding the fewest slots first, FIFO within a user. A queued job's level
--      is what its owner would hold once it starts (slots held now + the owner's jobs
--      queued up to it), so taking jobs by level is taking, slot by slot, the oldest job
--      of whoever holds the fewest;
--   2. on a tie, the user who got a slot least recently (never: first), so users take
--      turns even when every slot frees before the next decision (held counts all 0);
--   3. then the oldest job.
-- Promotions read it under the slot lock (held counts only grow under that lock).
-- Filters: a user's jobs and/or one job (both NULL: the whole queue); limit NULL: all.
WITH queued AS (
  SELECT job_table, id, user_id, created_at FROM ai_jobs WHERE status = 'queued'
), held AS (
  SELECT user_id, count(*) AS slots FROM ai_jobs
  WHERE status IN ('starting', 'running') GROUP BY user_id
), served AS (
  SELECT u.user_id, last.started_at AS last_started
  FROM (SELECT DISTINCT user_id FROM queued) u
  LEFT JOIN LATERAL (
    SELECT j.started_at FROM ai_jobs j
    WHERE j.user_id = u.user_id AND j.started_at IS NOT NULL
    ORDER BY j.started_at DESC LIMIT 1
  ) last ON true
), ranked AS (
  SELECT q.job_table, q.id, q.user_id, q.created_at, s.last_started,
         coalesce(h.slots, 0)
           + row_number() OVER (PARTITION BY q.user_id ORDER BY q.created_at, q.id) AS level
  FROM queued q
  JOIN served s ON s.user_id = q.user_id
  LEFT JOIN held h ON h.user_id = q.user_id
), ordered AS (
  SELECT job_table, id, user_id,
         row_number() OVER (ORDER BY level, last_started NULLS FIRST, created_at, id)
           AS position
  FROM ranked
)
SELECT job_table, id, user_id, position FROM ordered
WHERE (%(user_id)s::uuid IS NULL AND %(id)s::uuid IS NULL)
   OR user_id = %(user_id)s
   OR (job_table = %(job_table)s AND id = %(id)s)
ORDER BY position
LIMIT %(limit)s

-- name: mark_starting
-- clock_timestamp(): jobs promoted in one transaction keep their order in started_at.
UPDATE ai_jobs SET status = 'starting', started_at = clock_timestamp(), updated_at = now()
WHERE job_table = %(job_table)s AND id = %(id)s AND status = 'queued'
RETURNING *

-- name: mark_running
-- A job already running this task is this write's own earlier try (its answer lost with
-- the connection): task ids are unique, so it is found again, not taken as moved.
UPDATE ai_jobs SET status = 'running', external_task_id = %(task_id)s, updated_at = now()
WHERE job_table = %(job_table)s AND id = %(id)s
  AND (status = 'starting' OR (status = 'running' AND external_task_id = %(task_id)s))
RETURNING *

-- name: requeue
-- RunningHub was full: back to the queue, keeping its place (created_at), its debit and
-- its queued_at (the wait limit counts from the first time it was queued). Only the
-- promotion that started at started_at: a try whose answer was lost with the connection,
-- tried again, must not take back a later promotion that another pump is launching.
UPDATE ai_jobs SET status = 'queued', started_at = NULL, updated_at = now()
WHERE job_table = %(job_table)s AND id = %(id)s AND status = 'starting'
  AND started_at = %(started_at)s
RETURNING *

-- name: finish_job
UPDATE ai_jobs SET
  status = %(status)s,
  error_message = %(error_message)s,
  outputs = coalesce(%(outputs)s::jsonb, outputs),
  external_task_id = coalesce(external_task_id, %(task_id)s),
  completed_at = now(),
  updated_at = now()
WHERE job_table = %(job_table)s AND id = %(id)s
  AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING *

-- name: due_for_check
-- Jobs holding a slot long enough that RunningHub should be asked how they are doing.
SELECT job_table, id, status, external_task_id, started_at,
       extract(epoch FROM now() - coalesce(started_at, updated_at)) AS age_s
FROM ai_jobs
WHERE status IN ('starting', 'running')
  AND coalesce(started_at, updated_at) < now() - make_interval(secs => %(after_s)s)
ORDER BY coalesce(started_at, updated_at)
LIMIT %(limit)s

-- name: overdue_queued
-- Jobs that waited in the queue longer than the limit, oldest first.
SELECT job_table, id FROM ai_jobs
WHERE status = 'queued'
  AND queued_at < now() - make_interval(secs => %(max_wait_s)s)
ORDER BY created_at, id
LIMIT %(limit)s

-- name: grant_credits
-- An operator top-up (not a job movement, so not a ledger row).
INSERT INTO credit_accounts (user_id, balance) VALUES (%(user_id)s, %(amount)s)
ON CONFLICT (user_id) DO UPDATE
SET balance = credit_accounts.balance + excluded.balance, updated_at = now()
RETURNING balance

-- name: user_ledger
-- Newest first along credit_ledger_user_idx (ordered by id, the planner walked the primary
-- key backwards through every user's entries to find a user with few recent ones). An
-- entry's created_at is its insert's own time, taken under the account row's lock: the
-- order the balance moved in.
SELECT kind, amount, job_table, job_id, created_at FROM credit_ledger
WHERE user_id = %(user_id)s ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- name: user_jobs
-- A user's latest jobs across both tables (run as the user: RLS shows only their own).
SELECT * FROM ai_jobs WHERE user_id = %(user_id)s
ORDER BY created_at DESC, id DESC LIMIT %(limit)s
