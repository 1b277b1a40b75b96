-- Acessórias data. Upserts take a JSON array of mapped rows: one statement per page.

-- name: upsert_companies
-- Only rows whose values changed are written, so an unchanged re-sync writes nothing.
INSERT INTO acessorias_companies AS c
  (tenant_id, external_id, cnpj, razao, fantasia, status, uf, cliente_desde, cliente_ate,
   honorario, contacts)
SELECT %(tenant_id)s, r.external_id, r.cnpj, r.razao, r.fantasia, r.status, r.uf,
       r.cliente_desde, r.cliente_ate, r.honorario, COALESCE(r.contacts, '[]'::jsonb)
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
  external_id text, cnpj text, razao text, fantasia text, status text, uf text,
  cliente_desde date, cliente_ate date, honorario numeric, contacts jsonb)
ON CONFLICT (tenant_id, external_id) DO UPDATE
SET cnpj = EXCLUDED.cnpj, razao = EXCLUDED.razao, fantasia = EXCLUDED.fantasia,
    status = EXCLUDED.status, uf = EXCLUDED.uf, cliente_desde = EXCLUDED.cliente_desde,
    cliente_ate = EXCLUDED.cliente_ate, honorario = EXCLUDED.honorario,
    contacts = EXCLUDED.contacts, synced_at = now(), updated_at = now()
WHERE (c.cnpj, c.razao, c.fantasia, c.status, c.uf, c.cliente_desde, c.cliente_ate,
       c.honorario, c.contacts)
      IS DISTINCT FROM
      (EXCLUDED.cnpj, EXCLUDED.razao, EXCLUDED.fantasia, EXCLUDED.status, EXCLUDED.uf,
       EXCLUDED.cliente_desde, EXCLUDED.cliente_ate, EXCLUDED.honorario, EXCLUDED.contacts)
