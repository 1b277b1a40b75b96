-- Credits queue manager (RunningHub): AI-render jobs, credit accounts and the ledger.
--
-- `image_jobs` and `video_jobs` are the two partitions of `ai_jobs` (LIST on job_table):
-- the same columns by construction, and one place to count slots and order the queue
-- across both. Service SQL names `ai_jobs` with job_table as a bound value, so a table
-- name from a request is never an identifier (and is checked against an allow-list first).

CREATE TABLE ai_jobs (
  job_table         text NOT NULL CHECK (job_table IN ('image_jobs', 'video_jobs')),
  id                uuid NOT NULL DEFAULT gen_random_uuid(),
  session_id        text CHECK (length(session_id) <= 200),
  user_id           uuid NOT NULL,
  status            text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'queued', 'starting', 'running',
                                      'completed', 'failed', 'cancelled')),
  workflow_id       text NOT NULL CHECK (workflow_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  inputs            jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(inputs) = 'array'),
  credits_cost      integer NOT NULL DEFAULT 0 CHECK (credits_cost >= 0),
  external_task_id  text,
  outputs           jsonb,
  error_message     text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  completed_at      timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_table, id),
  UNIQUE (job_table, external_task_id)
) PARTITION BY LIST (job_table);

CREATE TABLE image_jobs PARTITION OF ai_jobs FOR VALUES IN ('image_jobs');
CREATE TABLE video_jobs PARTITION OF ai_jobs FOR VALUES IN ('video_jobs');
-- A row inserted straight into a partition (the browser's insert) gets its own name.
ALTER TABLE image_jobs ALTER COLUMN job_table SET DEFAULT 'image_jobs';
ALTER TABLE video_jobs ALTER COLUMN job_table SET DEFAULT 'video_jobs';

-- The queue, oldest first, across both tables.
CREATE INDEX ai_jobs_queued_idx ON ai_jobs (created_at, id) WHERE status = 'queued';
-- Slot holders (counted under the slot lock) and the sweep's candidates.
CREATE INDEX ai_jobs_active_idx ON ai_jobs (started_at) WHERE status IN ('starting', 'running');
CREATE INDEX ai_jobs_user_idx ON ai_jobs (user_id, created_at DESC);

CREATE TABLE credit_accounts (
  user_id     uuid PRIMARY KEY,
  balance     bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Invariant 8: one debit and at most one refund per job; the balance moves only when the
-- ledger row was inserted by the same statement.
CREATE TABLE credit_ledger (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     uuid NOT NULL,
  amount      integer NOT NULL CHECK (amount >= 0),
  kind        text NOT NULL CHECK (kind IN ('debit', 'refund')),
  job_table   text NOT NULL CHECK (job_table IN ('image_jobs', 'video_jobs')),
  job_id      uuid NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (job_table, job_id, kind),
  FOREIGN KEY (job_table, job_id) REFERENCES ai_jobs (job_table, id)
);
CREATE INDEX credit_ledger_user_idx ON credit_ledger (user_id, created_at DESC);

-- Row-level security: a user reads only their own rows and may only insert a new job as
-- pending; every other change goes through the queue manager (there is no UPDATE grant,
-- so the browser can no longer mark a job failed without its refund).
ALTER TABLE ai_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE image_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE video_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_ledger ENABLE ROW LEVEL SECURITY;

CREATE POLICY ai_jobs_owner_read ON ai_jobs FOR SELECT TO authenticated
  USING (user_id = app_user_id());
CREATE POLICY image_jobs_owner_read ON image_jobs FOR SELECT TO authenticated
  USING (user_id = app_user_id());
CREATE POLICY video_jobs_owner_read ON video_jobs FOR SELECT TO authenticated
  USING (user_id = app_user_id());
CREATE POLICY image_jobs_owner_insert ON image_jobs FOR INSERT TO authenticated
  WITH CHECK (user_id = app_user_id() AND status = 'pending');
CREATE POLICY video_jobs_owner_insert ON video_jobs FOR INSERT TO authenticated
  WITH CHECK (user_id = app_user_id() AND status = 'pending');
CREATE POLICY credit_accounts_owner_read ON credit_accounts FOR SELECT TO authenticated
  USING (user_id = app_user_id());
CREATE POLICY credit_ledger_owner_read ON credit_ledger FOR SELECT TO authenticated
  USING (user_id = app_user_id());

GRANT SELECT ON ai_jobs, image_jobs, video_jobs, credit_accounts, credit_ledger TO authenticated;
-- Only the columns a new job may choose; status and the rest take their defaults.
GRANT INSERT (id, session_id, user_id, workflow_id, inputs, credits_cost)
  ON image_jobs, video_jobs TO authenticated;
