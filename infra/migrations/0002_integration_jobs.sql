-- The integration job queue: jobs, their logs, realtime notifications.

CREATE TABLE integration_jobs (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  provider_slug      text NOT NULL,
  status             text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'success', 'error', 'canceled')),
  progress           integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts       integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  started_at         timestamptz,
  finished_at        timestamptz,
  execution_time_ms  integer,
  error_message      text,
  payload            jsonb NOT NULL DEFAULT '{}'::jsonb,
  result             jsonb,
  created_by         uuid,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  heartbeat_at       timestamptz,
  run_after          timestamptz NOT NULL DEFAULT now(),
  lease_token        uuid,
  cancel_requested   boolean NOT NULL DEFAULT false
);

CREATE INDEX integration_jobs_tenant_provider_idx ON integration_jobs (tenant_id, provider_slug);
CREATE INDEX integration_jobs_status_idx ON integration_jobs (status);
-- Invariant 2: at most one live job per (tenant, provider); a double click inserts once.
CREATE UNIQUE INDEX integration_jobs_one_active_idx ON integration_jobs (tenant_id, provider_slug)
  WHERE status IN ('pending', 'running');
-- Invariant 3: the claim walks this index, oldest due first.
CREATE INDEX integration_jobs_claim_idx ON integration_jobs (status, run_after, created_at);
-- History listing per tenant, newest first, with a keyset cursor.
CREATE INDEX integration_jobs_history_idx ON integration_jobs (tenant_id, created_at DESC, id DESC);

CREATE TABLE integration_logs (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id         uuid REFERENCES integration_jobs(id) ON DELETE CASCADE,
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  provider_slug  text NOT NULL,
  status         text NOT NULL,
  message        text NOT NULL,
  details        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integration_logs_job_idx ON integration_logs (job_id, id);
CREATE INDEX integration_logs_tenant_idx ON integration_logs (tenant_id, created_at DESC);

-- Realtime: every change of a job row is announced on channel `integration_jobs` with the
-- few fields a listener needs to decide whether it cares (it re-reads the row under RLS).
CREATE OR REPLACE FUNCTION integration_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('integration_jobs', json_build_object(
    'id', NEW.id, 'tenant_id', NEW.tenant_id, 'status', NEW.status, 'progress', NEW.progress
  )::text);
  RETURN NEW;
END
$$;

CREATE TRIGGER integration_jobs_notify AFTER INSERT OR UPDATE ON integration_jobs
  FOR EACH ROW EXECUTE FUNCTION integration_jobs_notify();

ALTER TABLE integration_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY integration_jobs_member_read ON integration_jobs FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));

ALTER TABLE integration_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY integration_logs_member_read ON integration_logs FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));

GRANT SELECT ON integration_jobs, integration_logs TO authenticated;
