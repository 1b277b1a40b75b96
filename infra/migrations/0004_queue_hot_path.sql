-- Lighter writes on the queue's hot path (measured by bench/bench_queue.py).
--
-- Every state change rewrites the job row and, since `status` is indexed, adds an entry to
-- each index whose columns or predicate it touches. Indexes that only pending (or live)
-- rows need are partial, so finished jobs — nearly all rows, forever — cost nothing there:
-- * the claim index keeps only pending rows (the claim's `WHERE status = 'pending'`);
-- * the plain (status) index is dropped: live rows are reached through the partial unique
--   index (pending, running) and pending ones through the claim index.
-- A log row's tenant follows from its job (ON DELETE CASCADE), so its second foreign key
-- only cost a lookup per row.

DROP INDEX IF EXISTS integration_jobs_status_idx;
DROP INDEX IF EXISTS integration_jobs_claim_idx;
CREATE INDEX integration_jobs_claim_idx ON integration_jobs (status, run_after, created_at)
  WHERE status = 'pending';

ALTER TABLE integration_logs DROP CONSTRAINT IF EXISTS integration_logs_tenant_id_fkey;
