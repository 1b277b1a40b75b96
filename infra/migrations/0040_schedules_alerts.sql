-- Scheduled syncs and failure alerts (the original roadmap, seed 004).
--
-- Schedules: one row per (tenant, integration) with its next occurrence. The minute sweep
-- takes due rows (SKIP LOCKED) and, in one transaction, creates the occurrence's job and
-- moves the row on; the occurrence is the job's key (a unique index), so duplicate sweeps,
-- a sweep killed midway and a clock step back create no second job.
--
-- Alerts: an outbox. The statement that ends a job (or pauses an export) writes the alert
-- row too (shared/sql/queue.sql, gestao.sql); the engine delivers it as its own kind.

-- What started a job, and for a scheduled job the occurrence it runs.
ALTER TABLE integration_jobs
  ADD COLUMN trigger text NOT NULL DEFAULT 'manual'
    CHECK (trigger IN ('manual', 'schedule', 'retry')),
  ADD COLUMN scheduled_for timestamptz;
CREATE UNIQUE INDEX integration_jobs_occurrence_idx
  ON integration_jobs (tenant_id, provider_slug, scheduled_for) WHERE scheduled_for IS NOT NULL;

-- Consecutive final failures, and when the integration last alerted (throttling).
ALTER TABLE tenant_integrations
  ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  ADD COLUMN last_alert_at timestamptz;

CREATE TABLE integration_schedules (
  tenant_id      uuid NOT NULL,
  provider_slug  text NOT NULL,
  cron           text NOT NULL CHECK (length(cron) <= 200),
  timezone       text NOT NULL DEFAULT 'America/Sao_Paulo' CHECK (length(timezone) <= 64),
  enabled        boolean NOT NULL DEFAULT true,
  missed         text NOT NULL DEFAULT 'once' CHECK (missed IN ('skip', 'once', 'all')),
  -- Spread: the occurrence is taken `offset_s` after its time (derived from the
  -- integration's identity), so thousands of "02:00" schedules do not fire in one second.
  spread         boolean NOT NULL DEFAULT true,
  offset_s       integer NOT NULL DEFAULT 0 CHECK (offset_s >= 0),
  next_run_at    timestamptz NOT NULL,  -- the next occurrence, in UTC
  due_at         timestamptz NOT NULL,  -- next_run_at + offset_s: when the sweep takes it
  last_run_at    timestamptz,           -- the last occurrence acted on
  last_outcome   text CHECK (last_outcome IN ('enqueued', 'skipped', 'missed')),
  last_job_id    uuid,
  paused_reason  text,
  created_by     uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, provider_slug),
  FOREIGN KEY (tenant_id, provider_slug)
    REFERENCES tenant_integrations (tenant_id, provider_slug) ON DELETE CASCADE
);
CREATE INDEX integration_schedules_due_idx ON integration_schedules (due_at) WHERE enabled;

ALTER TABLE integration_schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY integration_schedules_member_read ON integration_schedules FOR SELECT
  TO authenticated USING (tenant_id IN (SELECT app_user_tenants()));
GRANT SELECT ON integration_schedules TO authenticated;

CREATE TABLE alert_settings (
  tenant_id             uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  emails                text[] NOT NULL DEFAULT '{}' CHECK (cardinality(emails) <= 20),
  webhook_url           text CHECK (length(webhook_url) <= 2000),
  events                text[] NOT NULL
                        DEFAULT '{failing,reminder,digest,recovered,schedule_paused,export_paused,export_failed}',
  remind_at             integer[] NOT NULL DEFAULT '{3,10}' CHECK (cardinality(remind_at) <= 10),
  pause_schedule_after  integer NOT NULL DEFAULT 5 CHECK (pause_schedule_after BETWEEN 1 AND 1000),
  updated_by            uuid,
  updated_at            timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE alert_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_settings_member_read ON alert_settings FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));
GRANT SELECT ON alert_settings TO authenticated;

-- Alerts to deliver: a job kind of the engine (lease columns), one row per alert. The id is
-- the idempotency key every channel carries; `delivered` names the channels already done,
-- so a retry never sends twice on a channel that succeeded.
CREATE TABLE alert_outbox (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  provider_slug    text NOT NULL,
  event            text NOT NULL CHECK (event IN ('failing', 'reminder', 'digest', 'recovered',
                                                  'schedule_paused', 'export_paused',
                                                  'export_failed')),
  job_id           uuid,
  failures         integer NOT NULL DEFAULT 0,
  detail           text,
  schedule_paused  boolean NOT NULL DEFAULT false,
  delivered        text[] NOT NULL DEFAULT '{}',
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'sent', 'failed', 'suppressed')),
  attempts         integer NOT NULL DEFAULT 0,
  lease_token      uuid,
  heartbeat_at     timestamptz,
  run_after        timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  error_message    text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_outbox_claim_idx ON alert_outbox (status, run_after, created_at)
  WHERE status = 'pending';
CREATE INDEX alert_outbox_tenant_idx ON alert_outbox (tenant_id, created_at DESC);
ALTER TABLE alert_outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_outbox_member_read ON alert_outbox FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));
GRANT SELECT ON alert_outbox TO authenticated;

-- The alert (if any) that a final job state raises, from the integration's state before it:
-- failing on the first failure, a reminder on the failures named in remind_at, then at most
-- a daily digest, schedule_paused when this failure pauses the schedule, recovered on the
-- first success after failures. One definition for every statement that needs it.
CREATE OR REPLACE FUNCTION integration_alert_event(
  failures_before integer, status text, last_alert_at timestamptz, remind_at integer[],
  pauses_schedule boolean
) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN status = 'success' AND failures_before > 0 THEN 'recovered'
    WHEN status <> 'error' THEN NULL
    WHEN failures_before = 0 THEN 'failing'
    WHEN pauses_schedule THEN 'schedule_paused'
    WHEN failures_before + 1 = ANY (remind_at) THEN 'reminder'
    WHEN failures_before + 1 > COALESCE((SELECT max(r) FROM unnest(remind_at) AS r), 0)
         AND (last_alert_at IS NULL OR last_alert_at <= now() - interval '1 day') THEN 'digest'
  END
$$;
