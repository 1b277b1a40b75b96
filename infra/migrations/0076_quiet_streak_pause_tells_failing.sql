-- A failure streak that raised no alert at once (within a day of the last one: 0060) and
-- pauses the schedule before a reminder told it raised `schedule_paused`: a tenant who asked
-- only for `failing` and `recovered` heard nothing of the streak, then got its `recovered`
-- (as 0062 fixed for the reminder). Its first alert is now `failing` with the pause on it,
-- as a first failure that pauses is: it reaches who asked for `schedule_paused` too
-- (shared/alerts/kind.py). A pause in a streak already told stays `schedule_paused`.
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
    WHEN pauses_schedule THEN
      CASE WHEN failure_alerted THEN 'schedule_paused' ELSE 'failing' END
    WHEN failures_before + 1 = ANY (remind_at) THEN
      CASE WHEN failure_alerted THEN 'reminder' ELSE 'failing' END
    WHEN failures_before + 1 > COALESCE((SELECT max(r) FROM unnest(remind_at) AS r), 0)
         AND (last_alert_at IS NULL OR last_alert_at <= now() - interval '1 day') THEN
      CASE WHEN failure_alerted THEN 'digest' ELSE 'failing' END
  END
$$;
