-- Tenants, their members and the role that user-context queries run under.

-- `authenticated` is the role a user's queries run as (the Supabase name, so the same
-- policies work there). Roles are cluster-wide: create it once, tolerating a concurrent
-- migration on the same server.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;

-- The user a request runs for, from the request's claims (set with set_config(..., true)).
CREATE OR REPLACE FUNCTION app_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('request.jwt.claims', true)::jsonb ->> 'sub', '')::uuid
$$;

CREATE TABLE tenants (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_members (
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id     uuid NOT NULL,
  role        text NOT NULL CHECK (role IN ('admin', 'member')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX tenant_members_user_idx ON tenant_members (user_id);

-- Tenants the current user belongs to; SECURITY DEFINER so policies can use it without
-- recursing into tenant_members' own policy.
CREATE OR REPLACE FUNCTION app_user_tenants() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT tenant_id FROM tenant_members WHERE user_id = app_user_id()
$$;

CREATE OR REPLACE FUNCTION app_user_admin_tenants() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT tenant_id FROM tenant_members WHERE user_id = app_user_id() AND role = 'admin'
$$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenants_member_read ON tenants FOR SELECT TO authenticated
  USING (id IN (SELECT app_user_tenants()));

ALTER TABLE tenant_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_members_member_read ON tenant_members FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));

CREATE TABLE tenant_integrations (
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  provider_slug  text NOT NULL,
  enabled        boolean NOT NULL DEFAULT false,
  config         jsonb NOT NULL DEFAULT '{}'::jsonb,
  last_run       timestamptz,
  last_status    text,
  last_error     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, provider_slug)
);

ALTER TABLE tenant_integrations ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_integrations_member_read ON tenant_integrations FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));

GRANT USAGE ON SCHEMA public TO authenticated;
GRANT SELECT ON tenants, tenant_members, tenant_integrations TO authenticated;
