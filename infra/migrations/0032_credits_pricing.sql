-- Credits: the server sets the price, a user caps their own queue, a queued job has a
-- deadline.
--
-- Until now a user's INSERT chose `credits_cost` (and /start debited it as given), so a
-- job inserted with credits_cost = 0 rendered for free. Prices now live in
-- `credit_prices`, one row per (job_table, workflow_id), always > 0:
--   * a BEFORE INSERT trigger sets credits_cost from it and refuses a workflow without a
--     price (check_violation, so a PostgREST insert answers 400 with the message);
--   * the user's INSERT grant no longer includes credits_cost (sending it is refused);
--   * /start debits the price current at that moment (shared/sql/credits.sql price_job),
--     which also re-prices jobs created before this migration.
-- Operators manage prices with SQL, e.g.
--   INSERT INTO credit_prices (job_table, workflow_id, credits) VALUES ('image_jobs', 'wf', 10)
--   ON CONFLICT (job_table, workflow_id) DO UPDATE SET credits = excluded.credits;
-- Deleting a row retires the workflow: its pending jobs can no longer start.

CREATE TABLE credit_prices (
  job_table    text NOT NULL CHECK (job_table IN ('image_jobs', 'video_jobs')),
  workflow_id  text NOT NULL CHECK (workflow_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  credits      integer NOT NULL CHECK (credits > 0),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_table, workflow_id)
);

-- The price list is public to signed-in users (the browser shows it); only the owner writes.
ALTER TABLE credit_prices ENABLE ROW LEVEL SECURITY;
CREATE POLICY credit_prices_read ON credit_prices FOR SELECT TO authenticated USING (true);
GRANT SELECT ON credit_prices TO authenticated;

CREATE FUNCTION ai_jobs_set_price() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  price integer;
BEGIN
  SELECT p.credits INTO price FROM credit_prices p
  WHERE p.job_table = NEW.job_table AND p.workflow_id = NEW.workflow_id;
  IF price IS NULL THEN
    RAISE EXCEPTION 'unknown workflow "%" for %: it has no price', NEW.workflow_id, NEW.job_table
      USING ERRCODE = 'check_violation', CONSTRAINT = 'ai_jobs_priced_workflow',
            HINT = 'Only workflows listed in credit_prices can be run.';
  END IF;
  NEW.credits_cost := price;  -- whatever the inserter sent
  RETURN NEW;
END
$$;

-- Created on the partitioned table, so both partitions (and a direct insert into either)
-- get it.
CREATE TRIGGER ai_jobs_set_price BEFORE INSERT ON ai_jobs
  FOR EACH ROW EXECUTE FUNCTION ai_jobs_set_price();

REVOKE INSERT (credits_cost) ON image_jobs, video_jobs FROM authenticated;

-- When a job entered the queue (kept when RunningHub was full and it went back): the sweep
-- fails, with its refund, a job that waited longer than RUNNINGHUB_MAX_QUEUE_WAIT_S.
ALTER TABLE ai_jobs ADD COLUMN queued_at timestamptz;
UPDATE ai_jobs SET queued_at = updated_at WHERE status = 'queued';

-- The per-user cap counts a user's jobs in the queue or holding a slot.
CREATE INDEX ai_jobs_user_active_idx ON ai_jobs (user_id)
  WHERE status IN ('queued', 'starting', 'running');
