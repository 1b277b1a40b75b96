-- How long an export sat at rest (paused, or failed until a resume) since it first started,
-- so its rate counts only the time it was going: paused_s adds up the rests that ended,
-- paused_at is when the current one began (NULL while it goes). A trigger keeps both right
-- whoever changes the status (the engine's release, a pause, a resume, a reset, and an
-- instance of the release before this one during a rolling deploy). A rest before the first
-- start, or one a reset ended (started_at cleared), counts nothing: nothing ran before it.
ALTER TABLE gestao_scouter_export_jobs
  ADD COLUMN IF NOT EXISTS paused_s double precision NOT NULL DEFAULT 0 CHECK (paused_s >= 0),
  ADD COLUMN IF NOT EXISTS paused_at timestamptz;

-- Jobs at rest now: their rest began when they last changed (a pause or a failure).
UPDATE gestao_scouter_export_jobs SET paused_at = updated_at
WHERE status IN ('paused', 'failed') AND paused_at IS NULL;

CREATE OR REPLACE FUNCTION gestao_export_paused_time() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.started_at IS NULL THEN
    NEW.paused_s := 0;
  ELSIF OLD.status IN ('paused', 'failed') AND NEW.status NOT IN ('paused', 'failed')
        AND OLD.paused_at IS NOT NULL THEN
    NEW.paused_s := OLD.paused_s
      + GREATEST(extract(epoch FROM now() - GREATEST(OLD.paused_at, NEW.started_at)), 0);
  END IF;
  IF NEW.status NOT IN ('paused', 'failed') THEN
    NEW.paused_at := NULL;
  ELSIF OLD.status NOT IN ('paused', 'failed') THEN
    NEW.paused_at := now();
  END IF;
  RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS gestao_export_paused_time ON gestao_scouter_export_jobs;
CREATE TRIGGER gestao_export_paused_time BEFORE UPDATE ON gestao_scouter_export_jobs
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.started_at IS DISTINCT FROM NEW.started_at)
  EXECUTE FUNCTION gestao_export_paused_time();
