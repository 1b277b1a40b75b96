-- Flapping integrations (failing and succeeding by turns) raised two alerts a run: a
-- `failing` on each first failure, a `recovered` on each first success after it. Now a
-- new failure within a day of the last alert (the `recovered` that ended the previous
-- streak) raises nothing at once: it alerts when it persists (the reminder at the failures
-- named in remind_at, 3 by default). A streak that raised no alert ends without a
-- `recovered` (nobody was told it was failing): `failure_alerted` remembers whether it did.
ALTER TABLE tenant_integrations
  ADD COLUMN IF NOT EXISTS failure_alerted boolean NOT NULL DEFAULT false;
UPDATE tenant_integrations SET failure_alerted = true WHERE consecutive_failures > 0;

DROP FUNCTION IF EXISTS integration_alert_event(integer, text, timestamptz, integer[], boolean);
CREATE OR REPLACE FUNCTION integration_alert_event(
  failures_before integer, status text, last_alert_at timestamptz, remind_at integer[],
  pauses_schedule boolean, failure_alerted boolean
) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN status = 'success' AND failures_before > 0 THEN
      CASE WHEN failure_alerted THEN 'recovered' END
    WHEN status <> 'error' THEN NULL
    WHEN failures_before = 0 THEN
      CASE WHEN last_alert_at IS NULL OR last_alert_at <= now() - interval '1 day'
                OR pauses_schedule THEN 'failing' END
    WHEN pauses_schedule THEN 'schedule_paused'
    WHEN failures_before + 1 = ANY (remind_at) THEN 'reminder'
    WHEN failures_before + 1 > COALESCE((SELECT max(r) FROM unnest(remind_at) AS r), 0)
         AND (last_alert_at IS NULL OR last_alert_at <= now() - interval '1 day') THEN 'digest'
  END
$$;
