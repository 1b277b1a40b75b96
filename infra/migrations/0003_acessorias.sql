-- Acessórias data: companies with their contacts, upserted by (tenant_id, external_id).

CREATE TABLE acessorias_companies (
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  external_id    text NOT NULL,
  cnpj           text,
  razao          text,
  fantasia       text,
  status         text,
  uf             text,
  cliente_desde  date,
  cliente_ate    date,
  honorario      numeric(14, 2),
  contacts       jsonb NOT NULL DEFAULT '[]'::jsonb,
  synced_at      timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, external_id)
);

ALTER TABLE acessorias_companies ENABLE ROW LEVEL SECURITY;
CREATE POLICY acessorias_companies_member_read ON acessorias_companies FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));
GRANT SELECT ON acessorias_companies TO authenticated;
