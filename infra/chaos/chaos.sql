-- The chaos run's own statements: seeding its tenants and users, and reading the figures
-- back from the rows (the database is the truth the figures are checked against).

-- name: insert_tenant
INSERT INTO tenants (id, slug, name) VALUES (%(id)s, %(slug)s, %(slug)s)

-- name: insert_member
INSERT INTO tenant_members (tenant_id, user_id, role) VALUES (%(tenant_id)s, %(user_id)s, 'admin')

-- name: insert_integration
INSERT INTO tenant_integrations (tenant_id, provider_slug, enabled, config)
VALUES (%(tenant_id)s, %(provider_slug)s, true, %(config)s)

-- name: insert_account
INSERT INTO credit_accounts (user_id, balance) VALUES (%(user_id)s, %(balance)s)

-- name: insert_price
INSERT INTO credit_prices (job_table, workflow_id, credits)
VALUES (%(job_table)s, %(workflow_id)s, %(credits)s)
ON CONFLICT (job_table, workflow_id) DO UPDATE SET credits = EXCLUDED.credits

-- name: live_pairs
SELECT tenant_id, provider_slug FROM integration_jobs WHERE status IN ('pending', 'running')

-- name: queue_health
-- What the monitor samples: every running job's silence (seconds since its heartbeat) and
-- how long the oldest due pending job has waited.
SELECT
  (SELECT COALESCE(array_agg(id), '{}') FROM integration_jobs
    WHERE status = 'running'
      AND COALESCE(heartbeat_at, started_at, created_at)
          < now() - make_interval(secs => %(stuck_after_s)s)) AS stuck,
  (SELECT COALESCE(max(extract(epoch FROM now() - COALESCE(heartbeat_at, started_at))), 0)
     FROM integration_jobs WHERE status = 'running')::float8 AS longest_silence_s,
  (SELECT COALESCE(max(extract(epoch FROM now() - run_after)), 0)
     FROM integration_jobs WHERE status = 'pending' AND run_after <= now())::float8
    AS longest_due_wait_s

-- name: job_statuses
SELECT status, count(*) AS n FROM integration_jobs GROUP BY status

-- name: jobs_known
SELECT count(*) AS n FROM integration_jobs WHERE id = ANY(%(ids)s::uuid[])

-- name: jobs_unfinished
SELECT count(*) AS n FROM integration_jobs
WHERE id = ANY(%(ids)s::uuid[]) AND status IN ('pending', 'running')

-- name: side_rows_off
-- Invariant 6 under kills: every claim wrote its log row, every final state its own, and
-- each integration's last_status is that of its last finished job.
SELECT
  (SELECT count(*) FROM integration_jobs j
    WHERE j.attempts <> (SELECT count(*) FROM integration_logs l
                          WHERE l.job_id = j.id AND l.message = 'job claimed')) AS claims,
  (SELECT count(*) FROM integration_jobs j
    WHERE j.status IN ('success', 'error', 'canceled')
      AND NOT EXISTS (SELECT 1 FROM integration_logs l
                       WHERE l.job_id = j.id AND l.status = j.status)) AS finals,
  (SELECT count(*) FROM tenant_integrations t
    WHERE t.provider_slug IN (SELECT DISTINCT provider_slug FROM integration_jobs)
      AND t.last_status IS DISTINCT FROM (
        SELECT j.status FROM integration_jobs j
        WHERE j.tenant_id = t.tenant_id AND j.provider_slug = t.provider_slug
          AND j.finished_at IS NOT NULL
        ORDER BY j.finished_at DESC LIMIT 1)) AS last_status

-- name: error_reasons
SELECT error_message AS reason, count(*) AS n FROM integration_jobs
WHERE status = 'error' GROUP BY error_message ORDER BY count(*) DESC

-- name: over_max_attempts
SELECT count(*) AS n FROM integration_jobs WHERE attempts > max_attempts

-- name: attempts_total
SELECT COALESCE(sum(attempts), 0) AS n FROM integration_jobs

-- name: log_messages
SELECT message, count(*) AS n FROM integration_logs GROUP BY message

-- name: attempt_intervals
-- Every attempt as the database recorded it: from its claim to the next row of its job
-- that left 'running' (a release, a retry, a rescue); NULL while it still runs.
SELECT c.job_id, c.tenant_id, c.provider_slug,
       extract(epoch FROM c.created_at)::float8 AS started,
       (SELECT extract(epoch FROM min(e.created_at))::float8 FROM integration_logs e
         WHERE e.job_id = c.job_id AND e.id > c.id AND e.status <> 'running') AS ended
FROM integration_logs c
WHERE c.message = 'job claimed'

-- name: export_job
SELECT status, total_leads, exported_leads, error_leads, batches, consecutive_failures,
       pause_reason, attempts
FROM gestao_scouter_export_jobs WHERE id = %(id)s

-- name: ledger_counts
SELECT count(*) FILTER (WHERE kind = 'debit') AS debits,
       count(*) FILTER (WHERE kind = 'refund') AS refunds,
       count(DISTINCT job_id) FILTER (WHERE kind = 'refund') AS refunded_jobs,
       COALESCE(sum(amount) FILTER (WHERE kind = 'debit'), 0) AS debited,
       COALESCE(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded
FROM credit_ledger WHERE user_id = ANY(%(users)s::uuid[])

-- name: balances_off
SELECT count(*) AS n FROM credit_accounts
WHERE user_id = ANY(%(users)s::uuid[]) AND balance <> %(balance)s

-- name: credit_job_statuses
SELECT status, count(*) AS n FROM ai_jobs WHERE id = ANY(%(ids)s::uuid[]) GROUP BY status

-- name: external_tasks
SELECT id, external_task_id FROM ai_jobs WHERE id = ANY(%(ids)s::uuid[])
