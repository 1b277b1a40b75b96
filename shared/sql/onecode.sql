-- OneCode data. Upserts take a JSON array of mapped rows: one statement per page.

-- name: upsert_contacts
-- Only rows whose values changed are written, so an unchanged re-sync writes nothing.
INSERT INTO onecode_contacts AS c
  (tenant_id, external_id, name, number, email, is_group, blocked, tags,
   remote_created_at, remote_updated_at)
SELECT %(tenant_id)s, r.external_id, r.name, r.number, r.email, COALESCE(r.is_group, false),
       COALESCE(r.blocked, false), COALESCE(r.tags, '[]'::jsonb), r.remote_created_at,
       r.remote_updated_at
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
  external_id text, name text, number text, email text, is_group boolean, blocked boolean,
  tags jsonb, remote_created_at timestamptz, remote_updated_at timestamptz)
ON CONFLICT (tenant_id, external_id) DO UPDATE
SET name = EXCLUDED.name, number = EXCLUDED.number, email = EXCLUDED.email,
    is_group = EXCLUDED.is_group, blocked = EXCLUDED.blocked, tags = EXCLUDED.tags,
    remote_created_at = EXCLUDED.remote_created_at,
    remote_updated_at = EXCLUDED.remote_updated_at, synced_at = now(), updated_at = now()
WHERE (c.name, c.number, c.email, c.is_group, c.blocked, c.tags, c.remote_created_at,
       c.remote_updated_at)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.number, EXCLUDED.email, EXCLUDED.is_group, EXCLUDED.blocked,
       EXCLUDED.tags, EXCLUDED.remote_created_at, EXCLUDED.remote_updated_at)
