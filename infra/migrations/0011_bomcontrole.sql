-- BomControle data: financial installments (incremental by last change) and clients,
-- upserted by (tenant_id, external_id). Calendar dates are dates; instants are converted
-- from the provider's local clock (Brasília) to timestamptz.

CREATE TABLE bomcontrole_financial_entries (
  tenant_id                     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  external_id                   text NOT NULL,
  debito                        boolean,
  data_vencimento               date,
  data_competencia              date,
  data_quitacao                 date,
  data_conciliacao              date,
  valor                         numeric(14, 2),
  forma_pagamento               text,
  nome                          text,
  numero_parcela                integer,
  id_empresa                    bigint,
  id_cliente                    bigint,
  id_fornecedor                 bigint,
  nome_cliente_fornecedor       text,
  documento_cliente_fornecedor  text,
  remote_created_at             timestamptz,
  remote_updated_at             timestamptz,
  synced_at                     timestamptz NOT NULL DEFAULT now(),
  updated_at                    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, external_id)
);
CREATE INDEX bomcontrole_financial_entries_changed_idx
  ON bomcontrole_financial_entries (tenant_id, remote_updated_at);

CREATE TABLE bomcontrole_clients (
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  external_id    text NOT NULL,
  nome           text,
  nome_fantasia  text,
  documento      text,
  tipo_pessoa    text,
  bloqueado      boolean,
  synced_at      timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, external_id)
);

ALTER TABLE bomcontrole_financial_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY bomcontrole_financial_entries_member_read ON bomcontrole_financial_entries
  FOR SELECT TO authenticated USING (tenant_id IN (SELECT app_user_tenants()));
ALTER TABLE bomcontrole_clients ENABLE ROW LEVEL SECURITY;
CREATE POLICY bomcontrole_clients_member_read ON bomcontrole_clients
  FOR SELECT TO authenticated USING (tenant_id IN (SELECT app_user_tenants()));
GRANT SELECT ON bomcontrole_financial_entries, bomcontrole_clients TO authenticated;
