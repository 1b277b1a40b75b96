-- 0050's index may have been built by hand with CREATE INDEX CONCURRENTLY (its comment and
-- the README suggest it for a large table). A concurrent build that failed or was
-- cancelled leaves an INVALID index of that name: 0050's IF NOT EXISTS then took it for
-- done, and the planner never uses it while every finished job still writes to it. Such an
-- index is built again here (in the migration's transaction: writes to integration_jobs
-- wait for it, as 0050 says).
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_index
             WHERE indexrelid = to_regclass('integration_jobs_finished_idx')
               AND NOT indisvalid) THEN
    DROP INDEX integration_jobs_finished_idx;
    CREATE INDEX integration_jobs_finished_idx
      ON integration_jobs (tenant_id, provider_slug, status, finished_at)
      INCLUDE (execution_time_ms)
      WHERE finished_at IS NOT NULL;
  END IF;
END;
$$;
