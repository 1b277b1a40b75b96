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
