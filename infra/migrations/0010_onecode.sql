-- OneCode data: WhatsApp CRM contacts with their tags, upserted by (tenant_id, external_id).

CREATE TABLE onecode_contacts (
  tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  external_id        text NOT NULL,
  name               text,
  number             text,
  email              text,
  is_group           boolean NOT NULL DEFAULT false,
  blocked            boolean NOT NULL DEFAULT false,
  tags               jsonb NOT NULL DEFAULT '[]'::jsonb,
  remote_created_at  timestamptz,
  remote_updated_at  timestamptz,
  synced_at          timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, external_id)
);

ALTER TABLE onecode_contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY onecode_contacts_member_read ON onecode_contacts FOR SELECT TO authenticated
  USING (tenant_id IN (SELECT app_user_tenants()));
GRANT SELECT ON onecode_contacts TO authenticated;
