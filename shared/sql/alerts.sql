-- Alert settings and the outbox's delivery (shared/alerts).

-- Fragment of the engine's heartbeat (shared/sql/jobs.sql): a channel that delivered, and
-- the recipients an e-mail reached, are recorded under the lease, so a retry skips them.
-- name: heartbeat_set
, delivered = CASE WHEN %(channel)s::text IS NULL OR %(channel)s::text = ANY (delivered)
                   THEN delivered ELSE array_append(delivered, %(channel)s::text) END,
  mailed = ARRAY(SELECT DISTINCT m FROM unnest(mailed || %(mailed)s::text[]) AS m ORDER BY m)

-- name: settings
SELECT * FROM alert_settings WHERE tenant_id = %(tenant_id)s

-- name: settings_shown
-- As the caller: every column but webhook_url, which users may not read (migration 0069).
SELECT emails, events, remind_at, pause_schedule_after FROM alert_settings
WHERE tenant_id = %(tenant_id)s

-- name: webhook_url
-- As the service, once the caller's role in the tenant is checked.
SELECT webhook_url FROM alert_settings WHERE tenant_id = %(tenant_id)s

-- name: put_settings
INSERT INTO alert_settings (tenant_id, emails, webhook_url, events, remind_at,
                            pause_schedule_after, updated_by, updated_at)
VALUES (%(tenant_id)s, %(emails)s, %(webhook_url)s, %(events)s, %(remind_at)s,
        %(pause_schedule_after)s, %(updated_by)s, now())
ON CONFLICT (tenant_id) DO UPDATE
SET emails = EXCLUDED.emails, webhook_url = EXCLUDED.webhook_url, events = EXCLUDED.events,
    remind_at = EXCLUDED.remind_at, pause_schedule_after = EXCLUDED.pause_schedule_after,
    updated_by = EXCLUDED.updated_by, updated_at = now()
RETURNING *

-- name: recent
SELECT id, provider_slug, event, job_id, failures, detail, pause_code, schedule_paused, status,
       attempts, delivered, error_message, created_at, finished_at
FROM alert_outbox WHERE tenant_id = %(tenant_id)s
ORDER BY created_at DESC, id DESC LIMIT %(limit)s

-- name: tenant_name
SELECT name FROM tenants WHERE id = %(tenant_id)s
