-- A tenant's alert webhook URL is a credential (a Slack or Teams URL carries its token in
-- the path): integration-alerts shows a member only its origin, yet every member could read
-- the whole URL with a query of their own (a Supabase deployment serves alert_settings to
-- the browser as `authenticated`). Users now read every column but that one; the function
-- reads it as the service once the caller's role is checked, and masks it for a member.
REVOKE SELECT ON alert_settings FROM authenticated;
GRANT SELECT (tenant_id, emails, events, remind_at, pause_schedule_after, updated_by, updated_at)
  ON alert_settings TO authenticated;
