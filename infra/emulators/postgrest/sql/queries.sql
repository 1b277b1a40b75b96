-- Named queries of the PostgREST emulator (loaded by _sqlfile.load_queries).

-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = %(name)s;

-- name: role_exists
SELECT 1 FROM pg_roles WHERE rolname = %(name)s;

-- name: current_role_info
SELECT rolsuper FROM pg_roles WHERE rolname = current_user;

-- name: table_exists
SELECT to_regclass(%(name)s) IS NOT NULL AS present;

-- name: bootstrap_lock
SELECT pg_advisory_xact_lock(hashtext('syncq.postgrest_emulator.bootstrap'));

-- name: cache_tables
SELECT c.relname AS name,
       c.relkind::text AS kind,
       obj_description(c.oid, 'pg_class') AS description
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname;

-- name: cache_columns
SELECT c.relname AS table_name,
       a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS pg_type,
       t.typcategory::text AS category,
       a.attnotnull AS not_null,
       (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default,
       col_description(c.oid, a.attnum) AS description,
       COALESCE(i.indisprimary, false) AS is_pk
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i
       ON i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY (i.indkey)
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY c.relname, a.attnum;

-- name: cache_table_privileges
SELECT r.rolname AS role, c.relname AS table_name,
       has_table_privilege(r.oid, c.oid, 'SELECT') AS can_select,
       has_table_privilege(r.oid, c.oid, 'INSERT') AS can_insert,
       has_table_privilege(r.oid, c.oid, 'UPDATE') AS can_update,
       has_table_privilege(r.oid, c.oid, 'DELETE') AS can_delete
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN pg_roles r
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND r.rolname = ANY (%(roles)s);

-- name: cache_functions
SELECT p.proname AS name,
       p.pronargs AS nargs,
       format_type(p.prorettype, NULL) AS returns,
       obj_description(p.oid, 'pg_proc') AS description,
       array_agg(r.rolname ORDER BY r.rolname)
           FILTER (WHERE has_function_privilege(r.oid, p.oid, 'EXECUTE')) AS roles
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN pg_roles r
WHERE n.nspname = %(schema)s
  AND p.prokind = 'f'
  AND p.prorettype <> 'trigger'::regtype
  AND r.rolname = ANY (%(roles)s)
GROUP BY p.oid, p.proname, p.pronargs, p.prorettype
ORDER BY p.proname;

-- name: set_claims
-- One round trip, as PostgREST does it: the role (SET LOCAL ROLE) and the request's GUCs.
SELECT set_config('role', %(role)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.method', %(method)s, true),
       set_config('request.path', %(path)s, true);

-- name: take_outbox
DELETE FROM emulator.webhook_outbox
WHERE id IN (
    SELECT id FROM emulator.webhook_outbox ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
RETURNING id, payload;

-- name: outbox_present
SELECT to_regclass('emulator.webhook_outbox') IS NOT NULL AS present;

-- name: count_rows
SELECT count(*) AS n FROM public.leads;

-- name: dump_leads
SELECT COALESCE(jsonb_agg(to_jsonb(l) ORDER BY l.id), '[]'::jsonb) AS rows FROM public.leads l;

-- name: seed_leads
INSERT INTO public.leads (id, name, age, phone, email, project, stage, status, sync_source, criado)
SELECT COALESCE((SELECT max(id) FROM public.leads), 0) + g,
       'Lead remoto ' || g, 18 + g %% 40, '119' || lpad((g * 7919 %% 100000000)::text, 8, '0'),
       'lead' || g || '@example.com', 'Projeto Remoto', 'Novo', 'ativo', %(source)s,
       now() - make_interval(mins => g)
FROM generate_series(1, %(count)s) AS g;

-- name: get_loop_guard
SELECT loop_guard FROM emulator.webhook_settings WHERE id = 1;

-- name: loop_guard_on
DROP TRIGGER IF EXISTS sync_to_tabuladormax ON public.leads;
CREATE TRIGGER sync_to_tabuladormax
    AFTER INSERT OR UPDATE ON public.leads
    FOR EACH ROW
    WHEN (NEW.sync_source IS DISTINCT FROM 'tabuladormax'
          AND NEW.sync_source IS DISTINCT FROM 'supabase')
    EXECUTE FUNCTION emulator.notify_tabuladormax();
UPDATE emulator.webhook_settings SET loop_guard = true WHERE id = 1;

-- name: loop_guard_off
DROP TRIGGER IF EXISTS sync_to_tabuladormax ON public.leads;
CREATE TRIGGER sync_to_tabuladormax
    AFTER INSERT OR UPDATE ON public.leads
    FOR EACH ROW
    EXECUTE FUNCTION emulator.notify_tabuladormax();
UPDATE emulator.webhook_settings SET loop_guard = false WHERE id = 1;
