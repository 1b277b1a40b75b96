-- Gestão Scouter export and reverse sync. The export's batch SELECT and the reverse upsert
-- depend on the tenant's field mapping: they are templates here, whose placeholders in braces
-- are filled in Python with allow-listed identifiers (shared/gestao/batches.py, reverse.py).

-- name: export_page
-- The page after the cursor, mapped, as one row: n, body, last_criado, last_id and when it
-- was read. json_agg over a row of aliased columns (the mapping's) is the cheapest way to
-- build the body (about twice as fast as json_build_object per row); the page is
-- materialized once and read for the body and for the cursor.
WITH page AS MATERIALIZED (
  SELECT * FROM leads l
  WHERE l.tenant_id = %(tenant_id)s
    AND l.criado >= COALESCE(%(from_ts)s::timestamptz, '-infinity')
    AND l.criado < COALESCE(%(to_ts)s::timestamptz, 'infinity')
    AND (l.criado, l.id) > (%(cursor_criado)s::timestamptz, %(cursor_id)s::bigint)
  ORDER BY l.criado, l.id
  LIMIT %(limit)s
)
SELECT (SELECT count(*) FROM page) AS n,
       (SELECT json_agg(d) FROM (SELECT {cols} FROM page l ORDER BY l.criado, l.id) AS d)
         AS body,
       (SELECT criado FROM page ORDER BY criado DESC, id DESC LIMIT 1) AS last_criado,
       (SELECT id FROM page ORDER BY criado DESC, id DESC LIMIT 1) AS last_id,
       statement_timestamp() AS read_at

-- name: synced_lately
-- Whether the reverse sync wrote any of the tenant's leads since a moment: one descent of
-- leads_reverse_synced_idx, and usually no, so a batch's check costs nothing more.
SELECT EXISTS (
  SELECT 1 FROM leads WHERE tenant_id = %(tenant_id)s AND last_sync_at >= %(since)s
) AS lately

-- name: export_synced_since
-- Those of a batch's leads (by id: a remote edit may have moved a lead's criado out of the
-- batch's range) the reverse sync wrote since a moment, mapped as a batch maps them (the
-- mapping's columns fill the braces). By id, not every lead the tenant's reverse sync wrote
-- lately: after a storm of webhooks those are thousands, read again after every batch.
SELECT json_agg(d) AS body FROM (
  SELECT {cols} FROM leads l
  WHERE l.tenant_id = %(tenant_id)s AND l.id = ANY(%(ids)s::bigint[])
    AND l.last_sync_at >= %(since)s
  ORDER BY l.criado, l.id
) AS d

-- name: reverse_upsert
-- One remote lead's fields (the mapping's, named, read from the row, and set on update):
-- never over a newer local row. A field left out takes its default on insert (updated_at
-- now(), so a remote row without one counts as new) and keeps its local value on update.
INSERT INTO leads AS l (tenant_id, {idents}, sync_source, last_sync_at)
SELECT %(tenant_id)s, {values}, 'gestao_scouter', now()
FROM jsonb_populate_record(NULL::leads, %(row)s) AS r
ON CONFLICT (tenant_id, id) DO UPDATE
SET {sets}sync_source = 'gestao_scouter', last_sync_at = now()
WHERE l.updated_at <= EXCLUDED.updated_at
RETURNING l.id

-- name: get_mappings
SELECT local_field, remote_field FROM gestao_scouter_field_mappings
WHERE tenant_id = %(tenant_id)s ORDER BY local_field

-- name: lock_mappings
-- One save of a tenant's mapping at a time: the next one's DELETE must see the rows the
-- previous one inserted (else its INSERT meets them: a unique violation).
SELECT pg_advisory_xact_lock(hashtext('syncq:gestao-mappings'), hashtext(%(tenant_id)s::text))

-- name: delete_mappings
DELETE FROM gestao_scouter_field_mappings WHERE tenant_id = %(tenant_id)s

-- name: insert_mappings
INSERT INTO gestao_scouter_field_mappings (tenant_id, local_field, remote_field, updated_by)
SELECT %(tenant_id)s, m.key, m.value, %(user_id)s FROM jsonb_each_text(%(mapping)s::jsonb) AS m

-- name: count_leads
SELECT count(*) AS n FROM leads
WHERE tenant_id = %(tenant_id)s
  AND criado >= COALESCE(%(from_ts)s::timestamptz, '-infinity')
  AND criado < COALESCE(%(to_ts)s::timestamptz, 'infinity')

-- name: insert_job
INSERT INTO gestao_scouter_export_jobs
  (tenant_id, start_date, end_date, total_leads, field_mappings, batch_size, created_by)
VALUES (%(tenant_id)s, %(start_date)s, %(end_date)s, %(total)s, %(field_mappings)s,
        %(batch_size)s, %(created_by)s)
RETURNING *

-- name: live_job
SELECT id, status FROM gestao_scouter_export_jobs
WHERE tenant_id = %(tenant_id)s AND status IN ('pending', 'running', 'paused')

-- name: get_job
SELECT * FROM gestao_scouter_export_jobs WHERE id = %(id)s AND tenant_id = %(tenant_id)s

-- name: lock_job
-- The job held while an admin's request decides on it: claims skip it (SKIP LOCKED) and its
-- runner's release waits, so the state it was decided on is the state it is changed in.
SELECT * FROM gestao_scouter_export_jobs WHERE id = %(id)s AND tenant_id = %(tenant_id)s
FOR UPDATE

-- name: recent_jobs
-- The tenant's exports, newest first (gestao_scouter_export_jobs_tenant_idx).
SELECT * FROM gestao_scouter_export_jobs WHERE tenant_id = %(tenant_id)s
ORDER BY created_at DESC LIMIT %(limit)s

-- Fragments of the engine's statements (shared/sql/jobs.sql) for gestao_scouter_export_jobs.

-- name: claim_set
-- started_at is the export's first start (a continuation keeps it).
, started_at = COALESCE(j.started_at, now())

-- name: release_returning
j.*, i.extra AS release_extra

-- name: release_set
-- A release answers any pause request; extra: failures (consecutive failed batches, kept
-- when absent), reason and pause_code (why it paused) and batch_size (as the run adapted
-- it, for the next run). A completed job has exported up to its end.
, consecutive_failures = COALESCE((i.extra ->> 'failures')::integer, j.consecutive_failures),
  pause_requested = false, pause_reason = i.extra ->> 'reason',
  pause_code = i.extra ->> 'pause_code',
  batch_size = COALESCE((i.extra ->> 'batch_size')::integer, j.batch_size),
  last_completed_date = CASE WHEN i.status = 'completed'
                             THEN COALESCE(j.end_date, j.processing_date, j.last_completed_date)
                             ELSE j.last_completed_date END

-- name: release_effects
-- An export that paused itself (a fault a person must fix) or failed raises an alert in the
-- same statement; one an admin paused does not.
, alerted AS (
  INSERT INTO alert_outbox (tenant_id, provider_slug, event, job_id, failures, detail,
                            pause_code)
  SELECT tenant_id, 'gestao_scouter',
         CASE status WHEN 'failed' THEN 'export_failed' ELSE 'export_paused' END,
         id, consecutive_failures, COALESCE(pause_reason, error_message), pause_code
  FROM done
  WHERE status = 'failed' OR (status = 'paused' AND (release_extra ->> 'alert')::boolean)
)
-- An export that ended is the Gestão Scouter integration's last run (its card in
-- list-integrations), as the queue's release writes a provider's.
, ran AS (
  UPDATE tenant_integrations ti
  SET last_run = now(), last_error = d.error_message, updated_at = now(),
      last_status = CASE d.status WHEN 'completed' THEN 'success' ELSE 'error' END
  FROM done d
  WHERE ti.tenant_id = d.tenant_id AND ti.provider_slug = 'gestao-scouter'
    AND d.status IN ('completed', 'failed')
)

-- name: checkpoint
-- One batch accounted for, under the lease: counters, keyset cursor, dates, heartbeat; and
-- what an admin asked meanwhile (the runner stops reading at a pause or a reset).
UPDATE gestao_scouter_export_jobs
SET exported_leads = exported_leads + %(exported)s,
    cursor_criado = %(cursor_criado)s, cursor_id = %(cursor_id)s,
    processing_date = (%(cursor_criado)s::timestamptz AT TIME ZONE 'UTC')::date,
    last_completed_date = (%(cursor_criado)s::timestamptz AT TIME ZONE 'UTC')::date - 1,
    batches = batches + 1, consecutive_failures = 0, heartbeat_at = now(), updated_at = now()
WHERE id = %(id)s AND lease_token = %(lease)s AND status = 'running'
RETURNING pause_requested, reset_requested, tenant_id

-- name: insert_errors
-- Bad rows of the batch just checkpointed (same transaction), with the local row as it is.
INSERT INTO gestao_scouter_export_errors
  (job_id, tenant_id, lead_id, error_message, response_status, response_body, lead_snapshot,
   fields_sent)
SELECT %(job_id)s, %(tenant_id)s, e.lead_id, e.error_message, e.response_status,
       e.response_body, COALESCE(to_jsonb(l) - 'tenant_id', '{}'::jsonb), e.fields_sent
FROM jsonb_to_recordset(%(errors)s::jsonb)
     AS e(lead_id bigint, error_message text, response_status integer, response_body jsonb,
          fields_sent jsonb)
LEFT JOIN leads l ON l.tenant_id = %(tenant_id)s AND l.id = e.lead_id
ON CONFLICT (job_id, lead_id) DO NOTHING
RETURNING lead_id

-- name: add_errors
UPDATE gestao_scouter_export_jobs SET error_leads = error_leads + %(count)s
WHERE id = %(id)s AND lease_token = %(lease)s

-- name: request_pause
-- A pending job pauses now; a running one at its runner's next check (between batches).
UPDATE gestao_scouter_export_jobs
SET status = CASE WHEN status = 'pending' THEN 'paused' ELSE status END,
    pause_requested = (status = 'running'),
    pause_reason = 'paused by an admin', pause_code = 'admin', updated_at = now()
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND status IN ('pending', 'running')
RETURNING *

-- name: resume
UPDATE gestao_scouter_export_jobs
SET status = CASE WHEN status IN ('paused', 'failed') THEN 'pending' ELSE status END,
    lease_token = CASE WHEN status IN ('paused', 'failed') THEN NULL ELSE lease_token END,
    pause_requested = false, pause_reason = NULL, pause_code = NULL, error_message = NULL,
    consecutive_failures = 0, run_after = now(), finished_at = NULL, updated_at = now()
WHERE id = %(id)s AND tenant_id = %(tenant_id)s
  AND status IN ('pending', 'running', 'paused', 'failed')
RETURNING *

-- name: reset
-- Start over: counters and cursor cleared (the caller deletes the errors), the tenant's
-- mapping as it is now. A job at rest is reset at once (lease NULL); a running one only
-- under its lease, once its runner stopped.
UPDATE gestao_scouter_export_jobs
SET status = 'pending', total_leads = %(total)s, exported_leads = 0, error_leads = 0,
    field_mappings = %(field_mappings)s,
    batch_size = COALESCE(%(batch_size)s::integer, batch_size),
    processing_date = NULL, last_completed_date = NULL, cursor_criado = NULL, cursor_id = NULL,
    batches = 0, consecutive_failures = 0, pause_requested = false, pause_reason = NULL,
    pause_code = NULL, reset_requested = false, error_message = NULL, lease_token = NULL,
    run_after = now(), started_at = NULL, finished_at = NULL, updated_at = now()
WHERE id = %(id)s AND tenant_id = %(tenant_id)s
  AND CASE WHEN %(lease)s::uuid IS NULL THEN status <> 'running'
           ELSE status = 'running' AND lease_token = %(lease)s::uuid END
RETURNING *, 0::float8 AS delay_s -- due now, as every release answers it

-- name: request_reset
-- A running job is reset between batches: its runner sees this at its next check.
UPDATE gestao_scouter_export_jobs
SET reset_requested = true, pause_requested = false, updated_at = now()
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND status = 'running'
RETURNING *

-- name: delete_errors
DELETE FROM gestao_scouter_export_errors WHERE job_id = %(id)s

-- name: stuck_jobs
SELECT j.*, t.slug AS tenant_slug FROM gestao_scouter_export_jobs j
JOIN tenants t ON t.id = j.tenant_id
WHERE j.status = 'running'
  AND COALESCE(j.heartbeat_at, j.started_at, j.created_at)
      < now() - make_interval(secs => %(older_than_s)s)
ORDER BY j.heartbeat_at NULLS FIRST

-- name: prune_errors
DELETE FROM gestao_scouter_export_errors
WHERE created_at < now() - make_interval(days => %(days)s)

-- name: job_errors
SELECT lead_id, error_message, response_status, response_body, created_at
FROM gestao_scouter_export_errors WHERE job_id = %(id)s ORDER BY id LIMIT %(limit)s

-- name: get_schema_cache
SELECT columns, project_url FROM gestao_scouter_schema_cache
WHERE tenant_id = %(tenant_id)s AND project_url = %(project_url)s
  AND fetched_at > now() - make_interval(secs => %(max_age_s)s)

-- name: put_schema_cache
INSERT INTO gestao_scouter_schema_cache (tenant_id, project_url, columns, fetched_at)
VALUES (%(tenant_id)s, %(project_url)s, %(columns)s, now())
ON CONFLICT (tenant_id) DO UPDATE
SET project_url = EXCLUDED.project_url, columns = EXCLUDED.columns, fetched_at = now()

-- name: drop_schema_cache
DELETE FROM gestao_scouter_schema_cache WHERE tenant_id = %(tenant_id)s

-- name: seed_leads
-- Demo and benchmark data: realistic-looking leads, ids after the tenant's highest.
INSERT INTO leads (tenant_id, id, name, age, address, celular, telefone, email, responsavel,
                   scouter, projeto, etapa, status, fonte, data_nascimento, genero, latitude,
                   longitude, valor_ficha, ficha_confirmada, criado, updated_at, sync_source)
SELECT %(tenant_id)s, base.m + g,
       (ARRAY['Ana','Bruno','Carla','Diego','Eduarda','Felipe','Gabriela','Heitor'])[1 + mod(g, 8)]
         || ' ' || (ARRAY['Silva','Santos','Oliveira','Souza','Lima','Costa'])[1 + mod(g, 6)],
       16 + mod(g, 40), 'Rua ' || g || ', São Paulo - SP',
       '119' || lpad(mod(g::bigint * 7919, 100000000)::text, 8, '0'),
       '113' || lpad(mod(g::bigint * 104729, 10000000)::text, 7, '0'),
       'lead' || (base.m + g) || '@example.com',
       (ARRAY['Marina','Rogério','Patrícia'])[1 + mod(g, 3)],
       (ARRAY['Scouter A','Scouter B','Scouter C','Scouter D'])[1 + mod(g, 4)],
       (ARRAY['Projeto Verão','Projeto Moda','Projeto TV'])[1 + mod(g, 3)],
       (ARRAY['Novo','Contato','Agendado','Compareceu'])[1 + mod(g, 4)],
       (ARRAY['ativo','inativo'])[1 + mod(g, 2)],
       (ARRAY['Instagram','Indicação','Evento'])[1 + mod(g, 3)],
       DATE '1990-01-01' + (mod(g, 9000)), (ARRAY['F','M'])[1 + mod(g, 2)],
       -23.5 - (mod(g, 1000)) / 10000.0, -46.6 - (mod(g, 1000)) / 10000.0,
       round(((mod(g, 500)) + 50)::numeric, 2), mod(g, 5) = 0,
       %(first_day)s::timestamptz + make_interval(secs => g::double precision * %(spread_s)s / %(count)s),
       now(), 'import'
FROM generate_series(1, %(count)s) AS g,
     (SELECT COALESCE(max(id), 0) AS m FROM leads WHERE tenant_id = %(tenant_id)s) AS base

-- name: updated_at_given
-- This transaction's lead writes carry their own updated_at: the touch trigger keeps it.
SELECT set_config('syncq.updated_at_given', 'on', true)
