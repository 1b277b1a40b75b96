-- Why an export paused, as a stable code beside the English pause_reason, so a client (the
-- dashboard, a webhook's receiver) says it in its own words without matching sentences:
--   admin   an admin paused it
--   schema  the remote's schema does not fit the field mapping
--   key     the remote refused the key
--   refused the remote refused a batch for a rule of its own
--   failing too many batches in a row failed (GESTAO_SCOUTER_MAX_FAILING_BATCHES)
--   stalled its runner stopped without a word that many times in a row
-- The export_paused alert carries the same code. Rows paused before this migration get the
-- code their reason's wording had then (a reason in no known form stays without one).
ALTER TABLE gestao_scouter_export_jobs ADD COLUMN IF NOT EXISTS pause_code text
  CHECK (pause_code IN ('admin', 'schema', 'key', 'refused', 'failing', 'stalled'));
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS pause_code text
  CHECK (pause_code IN ('admin', 'schema', 'key', 'refused', 'failing', 'stalled'));

CREATE FUNCTION pg_temp.pause_code_of(reason text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN reason = 'paused by an admin' THEN 'admin'
    WHEN reason LIKE '%schema does not fit%' THEN 'schema'
    WHEN reason LIKE '%refused the key%' THEN 'key'
    WHEN reason LIKE '%refused the batch%' THEN 'refused'
    WHEN reason ~ '^[0-9]+ batches in a row failed' THEN 'failing'
    WHEN reason LIKE 'The runner stopped without a word%' THEN 'stalled'
  END
$$;
UPDATE gestao_scouter_export_jobs SET pause_code = pg_temp.pause_code_of(pause_reason)
WHERE pause_reason IS NOT NULL AND pause_code IS NULL;
UPDATE alert_outbox SET pause_code = pg_temp.pause_code_of(detail)
WHERE event = 'export_paused' AND detail IS NOT NULL AND pause_code IS NULL;
DROP FUNCTION pg_temp.pause_code_of(text);
