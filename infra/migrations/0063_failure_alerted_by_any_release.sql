-- `failure_alerted` (0060) right whoever writes the row. During a rolling deploy, instances
-- of the release before 0060 end jobs with their own statement, which moves
-- consecutive_failures and last_alert_at but never this column: a streak whose `failing`
-- one of them sent stayed "not told", so this release then sent no `recovered` when it
-- ended, and a second `failing` instead of the reminder. The rule is this release's own
-- (shared/sql/queue.sql), so the trigger changes nothing for the rows it writes itself:
-- a success clears it; a new failure that raised an alert (last_alert_at moved) sets it.
CREATE OR REPLACE FUNCTION tenant_integrations_failure_alerted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.consecutive_failures = 0 THEN
    NEW.failure_alerted := false;
  ELSIF NEW.consecutive_failures > OLD.consecutive_failures
        AND NEW.last_alert_at IS DISTINCT FROM OLD.last_alert_at THEN
    NEW.failure_alerted := true;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER tenant_integrations_failure_alerted
  BEFORE UPDATE OF consecutive_failures, last_alert_at ON tenant_integrations
  FOR EACH ROW EXECUTE FUNCTION tenant_integrations_failure_alerted();
