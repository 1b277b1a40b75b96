-- A tenant's newest job of each integration (list-integrations, the Integrações cards: every
-- page load and refetch) walked integration_jobs_history_idx (tenant_id, created_at DESC)
-- and filtered on the provider: for an integration that ran long ago, or never (an enabled
-- one not run yet; gestao-scouter, which has no jobs), that read the tenant's whole history
-- (~0.2 s at 200k jobs, on every load). With the provider in the index it is one descent;
-- a history filtered by provider (the Execuções tab) reads only that provider's jobs.
--
-- The new index leads with (tenant_id, provider_slug), so it replaces
-- integration_jobs_tenant_provider_idx: the hot path keeps one index entry per job. Like
-- 0050, a plain CREATE INDEX inside the migration's transaction; on a large production
-- table build it first by hand without blocking:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS integration_jobs_provider_history_idx ON ... (as below)
CREATE INDEX IF NOT EXISTS integration_jobs_provider_history_idx
  ON integration_jobs (tenant_id, provider_slug, created_at DESC, id DESC);
DROP INDEX IF EXISTS integration_jobs_tenant_provider_idx;
