-- A failure streak that raised no alert at once (within a day of the last one: 0060) now
-- raises `failing` when it persists, not `reminder`: a tenant who asked only for `failing`
-- and `recovered` heard nothing of the streak, then got its `recovered`. Later reminders
-- and digests of a streak that has alerted stay as they were.
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
    WHEN failures_before + 1 = ANY (remind_at) THEN
      CASE WHEN failure_alerted THEN 'reminder' ELSE 'failing' END
    WHEN failures_before + 1 > COALESCE((SELECT max(r) FROM unnest(remind_at) AS r), 0)
         AND (last_alert_at IS NULL OR last_alert_at <= now() - interval '1 day') THEN
      CASE WHEN failure_alerted THEN 'digest' ELSE 'failing' END
  END
$$;

-- The signature before 0060, for instances of the previous release still running while a
-- deploy rolls out (they release jobs with it): the old rule, as if every streak alerted.
CREATE OR REPLACE FUNCTION integration_alert_event(
  failures_before integer, status text, last_alert_at timestamptz, remind_at integer[],
  pauses_schedule boolean
) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT integration_alert_event(failures_before, status, last_alert_at, remind_at,
                                 pauses_schedule, true)
$$;
