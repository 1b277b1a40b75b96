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

-- name: cache_search_path
-- PostgREST empties the search path while it reads the catalogs, so format_type() names
-- every type outside pg_catalog with its schema (`public.my_enum`).
SELECT set_config('search_path', '', true);

-- name: cache_tables
-- `writable`: PostgREST's insertable OR updatable OR deletable (pg_relation_is_updatable
-- bits 8, 4 and 16 for views and foreign tables); it decides the post/patch/delete paths.
SELECT c.relname AS name,
       c.relkind::text AS kind,
       obj_description(c.oid, 'pg_class') AS description,
       (c.relkind IN ('r', 'p')
        OR (c.relkind IN ('v', 'f')
            AND (pg_relation_is_updatable(c.oid::regclass, true) & 28) <> 0)) AS writable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname;

-- name: cache_columns
-- The columns as PostgREST's schema cache reads them (SchemaCache.hs, tablesSqlQuery):
--   data_type      the OpenAPI `format`: pg_catalog types without their modifier
--                  (`numeric`, `character varying`), others (enums, domains) as declared;
--   pg_type        the nominal type with its modifier, used to type json_to_recordset;
--   nullable       false for NOT NULL columns and NOT NULL domains;
--   column_default the domain's default, `nextval('seq')` for a BY DEFAULT identity,
--                  nothing for a stored generated column, else pg_get_expr of the default;
--   max_length     character_maximum_length (OpenAPI `maxLength`);
--   enum_values    the labels of an enum (or of a domain over one), OpenAPI `enum`.
SELECT c.relname AS table_name,
       a.attname AS name,
       CASE
           WHEN t.typtype = 'd' THEN
               CASE WHEN bt_ns.nspname = 'pg_catalog' THEN format_type(t.typbasetype, NULL)
                    ELSE format_type(a.atttypid, a.atttypmod) END
           ELSE
               CASE WHEN t_ns.nspname = 'pg_catalog' THEN format_type(a.atttypid, NULL)
                    ELSE format_type(a.atttypid, a.atttypmod) END
       END AS data_type,
       format_type(a.atttypid, a.atttypmod) AS pg_type,
       NOT (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)) AS nullable,
       CASE
           WHEN t.typbasetype <> 0 THEN pg_get_expr(t.typdefaultbin, 0)
           WHEN a.attidentity = 'd' THEN
               format('nextval(%%s)',
                      quote_literal(pg_get_serial_sequence(c.oid::regclass::text, a.attname)))
           WHEN a.attgenerated = 's' THEN NULL
           ELSE pg_get_expr(ad.adbin, ad.adrelid)
       END AS column_default,
       information_schema._pg_char_max_length(
           information_schema._pg_truetypid(a.*, t.*),
           information_schema._pg_truetypmod(a.*, t.*)
       )::integer AS max_length,
       ARRAY(SELECT e.enumlabel FROM pg_enum e
             WHERE e.enumtypid = COALESCE(bt.oid, t.oid)
             ORDER BY e.enumsortorder)::text[] AS enum_values,
       col_description(c.oid, a.attnum) AS description,
       COALESCE(i.indisprimary, false) AS is_pk
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace t_ns ON t_ns.oid = t.typnamespace
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
LEFT JOIN pg_namespace bt_ns ON bt_ns.oid = bt.typnamespace
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
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
