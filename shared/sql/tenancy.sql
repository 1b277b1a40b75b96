-- Tenants, membership and integrations.

-- name: member_role
SELECT role FROM tenant_members WHERE tenant_id = %(tenant_id)s AND user_id = %(user_id)s

-- name: tenant_by_id
SELECT id, slug, name FROM tenants WHERE id = %(id)s

-- name: tenant_by_slug
SELECT id, slug, name FROM tenants WHERE slug = %(slug)s

-- name: integration
SELECT tenant_id, provider_slug, enabled, config, last_run, last_status, last_error
FROM tenant_integrations WHERE tenant_id = %(tenant_id)s AND provider_slug = %(provider_slug)s

-- name: my_tenants
-- The caller's tenants and role in each (run as the user: RLS shows only their own rows).
SELECT t.id, t.slug, t.name, m.role
FROM tenant_members m JOIN tenants t ON t.id = m.tenant_id
WHERE m.user_id = %(user_id)s
ORDER BY t.name, t.id

-- name: list_integrations
-- A tenant's integrations with their newest job (run as the user: RLS on both tables).
SELECT i.provider_slug, i.enabled, i.last_run, i.last_status, i.last_error,
       to_jsonb(j) - 'lease_token' AS latest_job
FROM tenant_integrations i
-- The newest job's id comes from integration_jobs_provider_history_idx alone (an index-only
-- scan: tenant, provider, time and id are all in it), then its row by the primary key: the
-- planner never prefers walking the tenant's whole history, filtering on the provider (for an
-- integration that ran long ago or never, every job the tenant has).
LEFT JOIN LATERAL (
  SELECT n.id FROM integration_jobs n
  WHERE n.tenant_id = i.tenant_id AND n.provider_slug = i.provider_slug
  ORDER BY n.created_at DESC, n.id DESC
  LIMIT 1
) newest ON true
LEFT JOIN integration_jobs j ON j.id = newest.id
WHERE i.tenant_id = %(tenant_id)s
ORDER BY i.provider_slug
