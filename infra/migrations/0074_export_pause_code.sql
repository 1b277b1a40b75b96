-- Why an export paused, as a stable code beside the English pause_reason, so a client (the
-- dashboard, a webhook's receiver) says it in its own words without matching sentences:
--   admin   an admin paused it
--   schema  the remote's schema does not fit the field mapping
--   key     the remote refused the key
--   refused the remote refused a batch for a rule of its own
--   failing too many batches in a row failed (GESTAO_SCOUTER_MAX_FAILING_BATCHES)
--   stalled its runner stopped without a word that many times in a row
-- The export_paused alert carries the same code. Rows paused before this migration get the
-- code their reason's wording had then (a reason in no known form stays without one), and so
-- do the rows an instance of the release before it writes during a rolling deploy (below).
ALTER TABLE gestao_scouter_export_jobs ADD COLUMN IF NOT EXISTS pause_code text
  CHECK (pause_code IN ('admin', 'schema', 'key', 'refused', 'failing', 'stalled'));
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS pause_code text
  CHECK (pause_code IN ('admin', 'schema', 'key', 'refused', 'failing', 'stalled'));

-- The code a reason's wording stands for: every reason syncq has written.
CREATE OR REPLACE FUNCTION gestao_pause_code_of(reason text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN reason = 'paused by an admin' THEN 'admin'
    WHEN reason LIKE '%schema does not fit%' THEN 'schema'
    WHEN reason LIKE '%refused the key%' THEN 'key'
    WHEN reason LIKE '%refused the batch%' THEN 'refused'
    WHEN reason ~ '^[0-9]+ batches in a row failed' THEN 'failing'
    WHEN reason LIKE 'The runner stopped without a word%' THEN 'stalled'
  END
$$;

UPDATE gestao_scouter_export_jobs SET pause_code = gestao_pause_code_of(pause_reason)
WHERE pause_reason IS NOT NULL AND pause_code IS NULL;
UPDATE alert_outbox SET pause_code = gestao_pause_code_of(detail)
WHERE event = 'export_paused' AND detail IS NOT NULL AND pause_code IS NULL;

-- pause_code right whoever writes the row. During a rolling deploy, instances of the
-- release before 0074 pause, resume, reset and release exports with their own statements,
-- which write pause_reason and never pause_code: a resume left the old code on a job that no
-- longer paused, and a pause (an admin's, or the runner's after failing batches) kept the
-- code of the pause before it, or none, as did its export_paused alert. This release writes
-- both together, so the trigger changes nothing for its own rows: a job without a reason has
-- no code; a reason written with the code left as it was gets the code its wording stands
-- for (the backfill's rule above, every reason this release writes among them).
CREATE OR REPLACE FUNCTION gestao_export_pause_code() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.pause_reason IS NULL THEN
    NEW.pause_code := NULL;
  ELSIF NEW.pause_reason IS DISTINCT FROM OLD.pause_reason
        AND NEW.pause_code IS NOT DISTINCT FROM OLD.pause_code THEN
    NEW.pause_code := gestao_pause_code_of(NEW.pause_reason);
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER gestao_export_pause_code
  BEFORE UPDATE OF pause_reason ON gestao_scouter_export_jobs
  FOR EACH ROW EXECUTE FUNCTION gestao_export_pause_code();

-- The previous release's export_paused alert names no code: the one its detail stands for.
CREATE OR REPLACE FUNCTION alert_outbox_pause_code() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.pause_code := gestao_pause_code_of(NEW.detail);
  RETURN NEW;
END;
$$;

CREATE TRIGGER alert_outbox_pause_code
  BEFORE INSERT ON alert_outbox
  FOR EACH ROW WHEN (NEW.event = 'export_paused' AND NEW.pause_code IS NULL)
  EXECUTE FUNCTION alert_outbox_pause_code();