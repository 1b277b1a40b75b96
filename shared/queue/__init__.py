"""The multi-tenant integration job queue on PostgreSQL."""
