-- The leads a remote edit reached lately (the reverse sync stamps last_sync_at): after each
-- batch's upsert the export asks which of its leads were written here meanwhile, since the
-- upsert wrote the copy it read before over that edit on the remote (it is sent again). A
-- partial index: only reverse-synced leads have a last_sync_at, so local writes and imports
-- keep no entry, and the question costs one descent whatever the tenant's size. Like 0050,
-- a plain CREATE INDEX inside the migration's transaction; on a large production table
-- build it first by hand without blocking:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_reverse_synced_idx ON ... (as below)
CREATE INDEX IF NOT EXISTS leads_reverse_synced_idx
  ON leads (tenant_id, last_sync_at) WHERE last_sync_at IS NOT NULL;
