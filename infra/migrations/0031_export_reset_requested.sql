-- A reset asked while an export runs is carried out between batches, by the runner that
-- holds the lease once its requests in flight have returned (or by the sweep when that
-- runner died): never by a second runner while the first is still sending.
ALTER TABLE gestao_scouter_export_jobs
  ADD COLUMN IF NOT EXISTS reset_requested boolean NOT NULL DEFAULT false;
