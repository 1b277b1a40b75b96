-- Credits: a `/create` sent with an `Idempotency-Key` header is safe to retry. A client
-- whose first answer was lost (a timeout, a dropped connection) sends the same request with
-- the same key and gets the job the first try made, not a second job (and a second debit
-- once both are started).
--
-- One row per (user, key): the job it made and a hash of the request it came with (the
-- same key with another request is refused, 422 idempotency_key_reused). /create claims the
-- row before it inserts the job, in the same transaction: a concurrent create with the same
-- key waits on the primary key, then finds the row the first one committed (or claims it
-- if the first one was rolled back). A key is remembered for 24 hours: an older row is
-- claimed anew by the next create that sends it (shared/sql/credits.sql
-- claim_idempotency_key), so no cleanup job is needed for correctness.
--
-- Only the service reads and writes it (no grant to `authenticated`): a user could
-- otherwise point their key at a job that is not theirs.
CREATE TABLE IF NOT EXISTS credit_idempotency_keys (
  user_id       uuid NOT NULL,
  key           text NOT NULL CHECK (key ~ '^[!-~]([ -~]{0,253}[!-~])?$'),
  request_hash  text NOT NULL CHECK (length(request_hash) = 64),
  job_table     text NOT NULL CHECK (job_table IN ('image_jobs', 'video_jobs')),
  job_id        uuid NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key),
  -- Checked at commit: the key is claimed before the job it names is inserted. A job
  -- deleted (a purge, an account removed) takes its key with it.
  FOREIGN KEY (job_table, job_id) REFERENCES ai_jobs (job_table, id) ON DELETE CASCADE
    DEFERRABLE INITIALLY DEFERRED
);

ALTER TABLE credit_idempotency_keys ENABLE ROW LEVEL SECURITY;
