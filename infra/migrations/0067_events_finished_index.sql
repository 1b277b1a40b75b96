-- The event stream's snapshot (shared/sql/events.sql) replays the jobs that changed after a
-- reconnecting client's last event. A job's row changes while it is live and once more when
-- it finishes (finished_at = updated_at, never touched again), so "changed after T" is "live,
-- or finished after T": this index answers the second part with one range per tenant, where
-- the snapshot read the tenant's whole history (every reconnect, ~0.35 s at 50k jobs).
--
-- Only finished rows are in it, one entry per job, written when it finishes (heartbeats
-- change no indexed column). Like 0050, a plain CREATE INDEX inside the migration's
-- transaction; on a large production table build it first by hand without blocking:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS integration_jobs_tenant_finished_idx ON ... (as below)
CREATE INDEX IF NOT EXISTS integration_jobs_tenant_finished_idx
  ON integration_jobs (tenant_id, finished_at DESC, id DESC)
  WHERE finished_at IS NOT NULL;
