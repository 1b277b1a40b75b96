-- Sync metrics (shared/sql/metrics.sql) read a tenant's finished jobs per provider inside a
-- time window. This index answers each such read with a few index ranges: one per
-- (tenant, provider, outcome) between the window's start and now, so the cost follows the
-- jobs in the window, never the table's history. `status` before `finished_at` also makes
-- "the last success ever" (freshness) one descent, however long a provider kept failing.
-- `execution_time_ms` rides along for the percentiles and histograms.
--
-- Only finished rows are in it (a pending or running job has finished_at NULL; the claim
-- clears it), so the queue's hot path pays one index entry per job, when it finishes.
--
-- The migration runs in a transaction, so this is a plain CREATE INDEX (it blocks writes
-- to integration_jobs while it builds: about a second per million rows here). On a large
-- production table, build it first by hand without blocking:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS integration_jobs_finished_idx ON ... (as below)
-- and this migration then finds it and does nothing.
CREATE INDEX IF NOT EXISTS integration_jobs_finished_idx
  ON integration_jobs (tenant_id, provider_slug, status, finished_at)
  INCLUDE (execution_time_ms)
  WHERE finished_at IS NOT NULL;
