"""Lead export to, and reverse sync from, Gestão Scouter (a Supabase project's /rest/v1)."""

SLUG = "gestao-scouter"  # tenant_integrations.provider_slug and secret names
NAME = "Gestão Scouter"
