-- Leads (the TabuladorMax side) and their export to / sync from Gestão Scouter.

-- Local leads, per tenant. `id` is the lead's id in TabuladorMax (the same id the remote
-- project keys its rows by). Data comes from field teams and imports, so it is loosely
-- typed on purpose: the remote decides what it accepts.
CREATE TABLE leads (
  tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  id                bigint NOT NULL,
  name              text,
  age               integer,
  address           text,
  celular           text,
  telefone          text,
  email             text,
  responsavel       text,
  scouter           text,
  projeto           text,
  etapa             text,
  status            text,
  fonte             text,
  foto_url          text,
  data_nascimento   date,
  genero            text,
  latitude          double precision,
  longitude         double precision,
  valor_ficha       numeric(12, 2),
  ficha_confirmada  boolean NOT NULL DEFAULT false,
  observacoes       text,
  criado            timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  sync_source       text CHECK (sync_source IN ('tabuladormax', 'gestao_scouter', 'supabase', 'import')),
  last_sync_at      timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX leads_updated_at_idx ON leads (tenant_id, updated_at);
-- The export's keyset cursor walks (criado, id) inside a tenant.
CREATE INDEX leads_criado_idx ON leads (tenant_id, criado, id);

-- An update that does not set updated_at itself gets now(); the reverse sync sets it
-- explicitly (to the remote's value) so "which side is newer" stays comparable.
CREATE OR REPLACE FUNCTION leads_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER leads_touch_updated_at BEFORE UPDATE ON leads
  FOR EACH ROW EXECUTE FUNCTION leads_touch_updated_at();

-- Which local field goes to which remote column, per tenant (defaults apply when a tenant
-- has no rows here; see shared/gestao/mapping.py).
CREATE TABLE gestao_scouter_field_mappings (
  tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  local_field   text NOT NULL,
  remote_field  text NOT NULL CHECK (remote_field ~ '^[a-z_][a-z0-9_]{0,62}$'),
  updated_by    uuid,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, local_field),
  UNIQUE (tenant_id, remote_field)
);

CREATE TABLE gestao_scouter_export_jobs (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id             uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  status                text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'paused', 'completed', 'failed')),
  start_date            date,
  end_date              date CHECK (end_date IS NULL OR start_date IS NULL OR end_date >= start_date),
  total_leads           integer NOT NULL DEFAULT 0 CHECK (total_leads >= 0),
  exported_leads        integer NOT NULL DEFAULT 0 CHECK (exported_leads >= 0),
  error_leads           integer NOT NULL DEFAULT 0 CHECK (error_leads >= 0),
  processing_date       date,
  last_completed_date   date,
  field_mappings        jsonb NOT NULL,
  batch_size            integer NOT NULL CHECK (batch_size BETWEEN 1 AND 10000),
  -- Keyset checkpoint: the last (criado, id) whose batch is fully accounted for.
  cursor_criado         timestamptz,
  cursor_id             bigint,
  batches               integer NOT NULL DEFAULT 0,
  consecutive_failures  integer NOT NULL DEFAULT 0,
  pause_requested       boolean NOT NULL DEFAULT false,
  pause_reason          text,
  error_message         text,
  attempts              integer NOT NULL DEFAULT 0,
  lease_token           uuid,
  heartbeat_at          timestamptz,
  run_after             timestamptz NOT NULL DEFAULT now(),
  created_by            uuid,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  started_at            timestamptz,
  finished_at           timestamptz
);
-- One live export per tenant: a double click starts one job; the second gets its id (409).
CREATE UNIQUE INDEX gestao_scouter_export_jobs_one_live_idx ON gestao_scouter_export_jobs (tenant_id)
  WHERE status IN ('pending', 'running', 'paused');
CREATE INDEX gestao_scouter_export_jobs_tenant_idx
  ON gestao_scouter_export_jobs (tenant_id, created_at DESC);
CREATE INDEX gestao_scouter_export_jobs_due_idx ON gestao_scouter_export_jobs (status, run_after);

CREATE TABLE gestao_scouter_export_errors (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id           uuid NOT NULL REFERENCES gestao_scouter_export_jobs(id) ON DELETE CASCADE,
  tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  lead_id          bigint NOT NULL,
  error_message    text NOT NULL,
  response_status  integer,
  response_body    jsonb,
  lead_snapshot    jsonb NOT NULL,
  fields_sent      jsonb NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (job_id, lead_id)
);
CREATE INDEX gestao_scouter_export_errors_created_idx ON gestao_scouter_export_errors (created_at);

-- The remote OpenAPI document, cached for a few minutes across function instances;
-- a schema-cache reload deletes the row.
CREATE TABLE gestao_scouter_schema_cache (
  tenant_id    uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  project_url  text NOT NULL,
  columns      jsonb NOT NULL,
  fetched_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY leads_member_read ON leads FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));

ALTER TABLE gestao_scouter_field_mappings ENABLE ROW LEVEL SECURITY;
CREATE POLICY gestao_scouter_field_mappings_member_read ON gestao_scouter_field_mappings
  FOR SELECT TO authenticated USING (tenant_id IN (SELECT app_user_tenants()));

ALTER TABLE gestao_scouter_export_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY gestao_scouter_export_jobs_member_read ON gestao_scouter_export_jobs
  FOR SELECT TO authenticated USING (tenant_id IN (SELECT app_user_tenants()));

-- Error rows hold lead snapshots: admins only.
ALTER TABLE gestao_scouter_export_errors ENABLE ROW LEVEL SECURITY;
CREATE POLICY gestao_scouter_export_errors_admin_read ON gestao_scouter_export_errors
  FOR SELECT TO authenticated USING (tenant_id IN (SELECT app_user_admin_tenants()));

ALTER TABLE gestao_scouter_schema_cache ENABLE ROW LEVEL SECURITY;

GRANT SELECT ON leads, gestao_scouter_field_mappings, gestao_scouter_export_jobs,
  gestao_scouter_export_errors TO authenticated;
