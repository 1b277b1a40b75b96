-- BomControle data. Upserts take a JSON array of mapped rows: one statement per page.

-- name: upsert_entries
-- Only rows whose values changed are written, so an unchanged re-sync writes nothing.
INSERT INTO bomcontrole_financial_entries AS e
  (tenant_id, external_id, debito, data_vencimento, data_competencia, data_quitacao,
   data_conciliacao, valor, forma_pagamento, nome, numero_parcela, id_empresa, id_cliente,
   id_fornecedor, nome_cliente_fornecedor, documento_cliente_fornecedor, remote_created_at,
   remote_updated_at)
SELECT %(tenant_id)s, r.external_id, r.debito, r.data_vencimento, r.data_competencia,
       r.data_quitacao, r.data_conciliacao, r.valor, r.forma_pagamento, r.nome,
       r.numero_parcela, r.id_empresa, r.id_cliente, r.id_fornecedor,
       r.nome_cliente_fornecedor, r.documento_cliente_fornecedor, r.remote_created_at,
       r.remote_updated_at
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
  external_id text, debito boolean, data_vencimento date, data_competencia date,
  data_quitacao date, data_conciliacao date, valor numeric, forma_pagamento text, nome text,
  numero_parcela integer, id_empresa bigint, id_cliente bigint, id_fornecedor bigint,
  nome_cliente_fornecedor text, documento_cliente_fornecedor text,
  remote_created_at timestamptz, remote_updated_at timestamptz)
ON CONFLICT (tenant_id, external_id) DO UPDATE
SET debito = EXCLUDED.debito, data_vencimento = EXCLUDED.data_vencimento,
    data_competencia = EXCLUDED.data_competencia, data_quitacao = EXCLUDED.data_quitacao,
    data_conciliacao = EXCLUDED.data_conciliacao, valor = EXCLUDED.valor,
    forma_pagamento = EXCLUDED.forma_pagamento, nome = EXCLUDED.nome,
    numero_parcela = EXCLUDED.numero_parcela, id_empresa = EXCLUDED.id_empresa,
    id_cliente = EXCLUDED.id_cliente, id_fornecedor = EXCLUDED.id_fornecedor,
    nome_cliente_fornecedor = EXCLUDED.nome_cliente_fornecedor,
    documento_cliente_fornecedor = EXCLUDED.documento_cliente_fornecedor,
    remote_created_at = EXCLUDED.remote_created_at,
    remote_updated_at = EXCLUDED.remote_updated_at, synced_at = now(), updated_at = now()
WHERE (e.debito, e.data_vencimento, e.data_competencia, e.data_quitacao, e.data_conciliacao,
       e.valor, e.forma_pagamento, e.nome, e.numero_parcela, e.id_empresa, e.id_cliente,
       e.id_fornecedor, e.nome_cliente_fornecedor, e.documento_cliente_fornecedor,
       e.remote_created_at, e.remote_updated_at)
      IS DISTINCT FROM
      (EXCLUDED.debito, EXCLUDED.data_vencimento, EXCLUDED.data_competencia,
       EXCLUDED.data_quitacao, EXCLUDED.data_conciliacao, EXCLUDED.valor,
       EXCLUDED.forma_pagamento, EXCLUDED.nome, EXCLUDED.numero_parcela, EXCLUDED.id_empresa,
       EXCLUDED.id_cliente, EXCLUDED.id_fornecedor, EXCLUDED.nome_cliente_fornecedor,
       EXCLUDED.documento_cliente_fornecedor, EXCLUDED.remote_created_at,
       EXCLUDED.remote_updated_at)

-- name: upsert_clients
INSERT INTO bomcontrole_clients AS c
  (tenant_id, external_id, nome, nome_fantasia, documento, tipo_pessoa, bloqueado)
SELECT %(tenant_id)s, r.external_id, r.nome, r.nome_fantasia, r.documento, r.tipo_pessoa,
       r.bloqueado
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
  external_id text, nome text, nome_fantasia text, documento text, tipo_pessoa text,
  bloqueado boolean)
ON CONFLICT (tenant_id, external_id) DO UPDATE
SET nome = EXCLUDED.nome, nome_fantasia = EXCLUDED.nome_fantasia,
    documento = EXCLUDED.documento, tipo_pessoa = EXCLUDED.tipo_pessoa,
    bloqueado = EXCLUDED.bloqueado, synced_at = now(), updated_at = now()
WHERE (c.nome, c.nome_fantasia, c.documento, c.tipo_pessoa, c.bloqueado)
      IS DISTINCT FROM
      (EXCLUDED.nome, EXCLUDED.nome_fantasia, EXCLUDED.documento, EXCLUDED.tipo_pessoa,
       EXCLUDED.bloqueado)
