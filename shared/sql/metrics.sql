-- Sync metrics (shared/metrics/). Read-only. The cost stays flat with history: every read
-- of integration_jobs is bounded by an index, never a scan of all jobs:
--   * finished jobs: integration_jobs_finished_idx (tenant_id, provider_slug, status,
--     finished_at) WHERE finished_at IS NOT NULL (migration 0050), one (tenant, provider)
--     at a time, from the window's start: the rows read are the rows in the window;
--   * the providers a tenant has jobs for: a loose index scan of (tenant_id, provider_slug),
--     one descent per provider;
--   * live jobs: the partial indexes of pending/running rows (a handful, whatever the history).
-- The window is [%(since)s, now()]; `now()` is the transaction's start, the same in every
-- statement of one report.

-- name: clock
SELECT now() AS now

-- name: tenant_providers
-- The tenant's job providers: every provider it has jobs for (loose index scan: one index
-- descent per provider), and its enabled integrations among the registered providers.
WITH RECURSIVE seen AS (
  (SELECT provider_slug FROM integration_jobs
   WHERE tenant_id = %(tenant_id)s ORDER BY provider_slug LIMIT 1)
  UNION ALL
  SELECT (SELECT j.provider_slug FROM integration_jobs j
          WHERE j.tenant_id = %(tenant_id)s AND j.provider_slug > s.provider_slug
          ORDER BY j.provider_slug LIMIT 1)
  FROM seen s WHERE s.provider_slug IS NOT NULL
)
SELECT provider_slug FROM seen WHERE provider_slug IS NOT NULL
UNION
SELECT provider_slug FROM tenant_integrations
WHERE tenant_id = %(tenant_id)s AND enabled AND provider_slug = ANY(%(registered)s::text[])
ORDER BY provider_slug

-- name: provider_stats
-- Per provider of the tenant: final runs finished in the window by outcome, percentiles of
-- their execution time (nearest rank; runs without a time are not in them), the last
-- success ever, and the live queue (pending + running; the oldest pending job already due).
SELECT p.provider_slug, w.runs, w.successes, w.errors, w.canceled, w.p50_ms, w.p95_ms,
       s.last_success_at, q.depth,
       extract(epoch FROM now() - q.oldest_due_at)::float8 AS oldest_due_age_s
FROM unnest(%(providers)s::text[]) AS p(provider_slug)
CROSS JOIN LATERAL (
  SELECT count(*) AS runs,
         count(*) FILTER (WHERE j.status = 'success') AS successes,
         count(*) FILTER (WHERE j.status = 'error') AS errors,
         count(*) FILTER (WHERE j.status = 'canceled') AS canceled,
         percentile_disc(0.5) WITHIN GROUP (ORDER BY j.execution_time_ms) AS p50_ms,
         percentile_disc(0.95) WITHIN GROUP (ORDER BY j.execution_time_ms) AS p95_ms
  FROM integration_jobs j
  WHERE j.tenant_id = %(tenant_id)s AND j.provider_slug = p.provider_slug
    AND j.status IN ('success', 'error', 'canceled')
    AND j.finished_at IS NOT NULL AND j.finished_at >= %(since)s
) w
CROSS JOIN LATERAL (
  SELECT max(j.finished_at) AS last_success_at FROM integration_jobs j
  WHERE j.tenant_id = %(tenant_id)s AND j.provider_slug = p.provider_slug
    AND j.status = 'success' AND j.finished_at IS NOT NULL
) s
CROSS JOIN LATERAL (
  SELECT count(*) AS depth,
         min(j.run_after) FILTER (WHERE j.status = 'pending' AND j.run_after <= now())
           AS oldest_due_at
  FROM integration_jobs j
  WHERE j.tenant_id = %(tenant_id)s AND j.provider_slug = p.provider_slug
    AND j.status IN ('pending', 'running')
) q
ORDER BY p.provider_slug

-- name: daily_series
-- One row per UTC day from %(first_day)s to %(last_day)s (zero-filled): the final runs of
-- these providers finished that day by outcome, and the day's p95 execution time. One
-- index scan: (tenant, each provider, each outcome) ranges from the window's start.
WITH runs AS (
  SELECT (j.finished_at AT TIME ZONE 'UTC')::date AS day, j.status, j.execution_time_ms
  FROM integration_jobs j
  WHERE j.tenant_id = %(tenant_id)s AND j.provider_slug = ANY(%(providers)s::text[])
    AND j.status IN ('success', 'error', 'canceled')
    AND j.finished_at IS NOT NULL AND j.finished_at >= %(since)s
), days AS (
  SELECT d::date AS day
  FROM generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') AS d
)
SELECT d.day, count(r.status) AS runs,
       count(*) FILTER (WHERE r.status = 'success') AS successes,
       count(*) FILTER (WHERE r.status = 'error') AS errors,
       count(*) FILTER (WHERE r.status = 'canceled') AS canceled,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY r.execution_time_ms) AS p95_ms
FROM days d LEFT JOIN runs r ON r.day = d.day
GROUP BY d.day
ORDER BY d.day

-- name: exports
-- The tenant's exports created in the window, and its live one (pending, running, paused)
-- whatever its age, newest first; with the newest and the oldest lead of each export's
-- range, [start_date 00:00 UTC, the day after end_date 00:00 UTC) as the export reads it
-- (shared/gestao/batches.date_bounds: no start = open, no end or 9999-12-31 = open), each
-- one descent of leads_criado_idx.
WITH jobs AS (
  SELECT j.id FROM gestao_scouter_export_jobs j
  WHERE j.tenant_id = %(tenant_id)s AND j.created_at >= %(since)s
  UNION
  SELECT j.id FROM gestao_scouter_export_jobs j
  WHERE j.tenant_id = %(tenant_id)s AND j.status IN ('pending', 'running', 'paused')
), ranged AS (
  SELECT j.*,
         COALESCE(j.start_date::timestamp AT TIME ZONE 'UTC', '-infinity') AS range_from,
         CASE WHEN j.end_date IS NULL OR j.end_date = DATE '9999-12-31' THEN 'infinity'
              ELSE (j.end_date + 1)::timestamp AT TIME ZONE 'UTC' END AS range_to
  FROM gestao_scouter_export_jobs j JOIN jobs USING (id)
)
SELECT r.id, r.status, r.created_at, r.started_at, r.finished_at, r.total_leads,
       r.exported_leads, r.error_leads, r.cursor_criado, r.cursor_id,
       -- Between runs (pending again at its time budget, or after a failed batch) the engine
       -- has cleared heartbeat_at; updated_at is then the end of the last run. At rest
       -- (paused, or failed) it ends when the rest began; the rests before (paused_s) did
       -- not run either (migration 0075). A resumed job keeps the heartbeat_at of the run
       -- before its rest (a release at rest leaves it), older than the rest it added up:
       -- only a running job's counts, and a resume's updated_at ends the others'.
       GREATEST(extract(epoch FROM COALESCE(r.finished_at, r.paused_at,
                                            CASE WHEN r.status = 'running'
                                                 THEN r.heartbeat_at END,
                                            r.updated_at) - r.started_at) - r.paused_s,
                0)::float8 AS run_s,
       newest.criado AS newest_criado, newest.id AS newest_id, oldest.criado AS oldest_criado
FROM ranged r
LEFT JOIN LATERAL (
  SELECT l.criado, l.id FROM leads l
  WHERE l.tenant_id = r.tenant_id AND l.criado >= r.range_from AND l.criado < r.range_to
  ORDER BY l.criado DESC, l.id DESC LIMIT 1
) newest ON true
LEFT JOIN LATERAL (
  SELECT l.criado FROM leads l
  WHERE l.tenant_id = r.tenant_id AND l.criado >= r.range_from AND l.criado < r.range_to
  ORDER BY l.criado, l.id LIMIT 1
) oldest ON true
ORDER BY r.created_at DESC, r.id

-- name: finished_by_provider
-- Final jobs finished in the window, for every tenant or one, by provider, outcome and
-- duration bucket: `bucket` counts the bounds (seconds, ascending) strictly below the run's
-- time, so a run lands in the first bucket whose `le` bound holds it (len(bounds) = +Inf;
-- NULL = no time). The (tenant, provider) pairs are finished_pairs below.
WITH RECURSIVE pairs AS ({finished_pairs}), per_pair AS (
  -- Aggregated inside the lateral, so the planner cannot turn it into one join over the
  -- whole table (at 1M jobs it chose a parallel seq scan): each pair is one index range.
  SELECT p.provider_slug, a.status, a.bucket, a.n, a.sum_s
  FROM pairs p
  CROSS JOIN LATERAL (
    SELECT r.status, r.bucket, count(*) AS n, COALESCE(sum(r.seconds), 0)::float8 AS sum_s
    FROM (
      SELECT j.status, j.execution_time_ms / 1000.0::float8 AS seconds,
             CASE WHEN j.execution_time_ms IS NOT NULL THEN
               (SELECT count(*) FROM unnest(%(bounds_s)s::float8[]) AS b
                WHERE b < j.execution_time_ms / 1000.0::float8)::int
             END AS bucket
      FROM integration_jobs j
      WHERE j.tenant_id = p.tenant_id AND j.provider_slug = p.provider_slug
        AND j.status IN ('success', 'error', 'canceled')
        AND j.finished_at IS NOT NULL AND j.finished_at >= %(since)s
    ) r
    GROUP BY r.status, r.bucket
  ) a
)
SELECT provider_slug, status, bucket, sum(n)::bigint AS n, sum(sum_s)::float8 AS sum_s
FROM per_pair
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3

-- name: finished_pairs
-- A fragment ({finished_pairs} above): the (tenant, provider) pairs with finished jobs, for
-- every tenant or one. Per tenant (every job's tenant is in `tenants`: ON DELETE CASCADE), a
-- loose index scan of its providers in integration_jobs_finished_idx, so each pair costs one
-- descent plus its rows in the window. (One descent needs `tenant_id = t AND provider_slug >
-- p`: a row comparison `(tenant_id, provider_slug) > (t, p)` beside `tenant_id = t` starts at
-- the tenant's first entry and reads its whole history on PostgreSQL 15.)
  SELECT t.id AS tenant_id, f.provider_slug
  FROM tenants t
  CROSS JOIN LATERAL (
    SELECT j.provider_slug FROM integration_jobs j
    WHERE j.tenant_id = t.id AND j.finished_at IS NOT NULL
    ORDER BY j.provider_slug LIMIT 1
  ) f
  WHERE %(tenant_id)s::uuid IS NULL OR t.id = %(tenant_id)s::uuid
  UNION ALL
  SELECT p.tenant_id, n.provider_slug FROM pairs p
  CROSS JOIN LATERAL (
    SELECT j.provider_slug FROM integration_jobs j
    WHERE j.tenant_id = p.tenant_id AND j.finished_at IS NOT NULL
      AND j.provider_slug > p.provider_slug
    ORDER BY j.provider_slug LIMIT 1
  ) n

-- name: schedule_periods
-- The tenant's enabled schedules, and those paused by failures that go on (paused_reason,
-- no success since): freshness is measured against their runs, so the pause does not make
-- a failing integration look fresh; a schedule turned off otherwise leaves the default period.
SELECT s.provider_slug, s.cron, s.timezone, s.offset_s
FROM integration_schedules s
LEFT JOIN tenant_integrations t
       ON t.tenant_id = s.tenant_id AND t.provider_slug = s.provider_slug
WHERE s.tenant_id = %(tenant_id)s
  AND (s.enabled OR (s.paused_reason IS NOT NULL AND t.consecutive_failures > 0))

-- name: alert_failures
-- Alert deliveries that failed for good in the window, by event; of one job provider when
-- given (an export's alerts then count with none of them).
SELECT event, count(*)::bigint AS n FROM alert_outbox
WHERE status = 'failed' AND finished_at >= %(since)s
  AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
  AND (%(provider_slug)s::text IS NULL OR provider_slug = %(provider_slug)s::text)
GROUP BY event ORDER BY event

-- name: schedule_skew
-- How late scheduled jobs started: started_at - their due time, for first attempts finished
-- in the window (a retry's started_at is its own start, so it would measure the backoff).
-- The due time is the occurrence (scheduled_for) plus the schedule's spread offset, as the
-- tick recorded it (scheduled_due_at): a job that started on its offset is on time.
-- Bucketed as finished_by_provider; negative skews (started early) land in the first bucket
-- and count as 0 s in the sum (a histogram's sum below zero is invalid OpenMetrics).
WITH RECURSIVE pairs AS ({finished_pairs}), per_pair AS (
  -- Aggregated inside the lateral, as in finished_by_provider: one index range per pair.
  SELECT p.provider_slug, a.bucket, a.n, a.sum_s
  FROM pairs p
  CROSS JOIN LATERAL (
    SELECT (SELECT count(*) FROM unnest(%(bounds_s)s::float8[]) AS b WHERE b < r.seconds)::int
             AS bucket,
           count(*) AS n, sum(GREATEST(r.seconds, 0))::float8 AS sum_s
    FROM (
      SELECT extract(epoch FROM j.started_at - COALESCE(
               j.scheduled_due_at,  -- enqueued before 0066: the schedule's offset now
               j.scheduled_for + make_interval(secs => COALESCE(s.offset_s, 0))))::float8
             AS seconds
      FROM integration_jobs j
      LEFT JOIN integration_schedules s
        ON j.scheduled_due_at IS NULL
       AND s.tenant_id = p.tenant_id AND s.provider_slug = p.provider_slug
      WHERE j.tenant_id = p.tenant_id AND j.provider_slug = p.provider_slug
        AND j.status IN ('success', 'error', 'canceled')
        AND j.finished_at IS NOT NULL AND j.finished_at >= %(since)s
        AND j.attempts = 1 AND j.started_at IS NOT NULL
    ) r
    WHERE r.seconds IS NOT NULL
    GROUP BY 1
  ) a
)
SELECT provider_slug, bucket, sum(n)::bigint AS n, sum(sum_s)::float8 AS sum_s
FROM per_pair
GROUP BY 1, 2
ORDER BY 1, 2
