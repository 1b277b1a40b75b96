"""Failure alerts: per-tenant settings (integration-alerts) and the delivery of the alert
outbox as a job kind of the engine. Alerts are written by the statements that end a job or
pause an export (sql/queue.sql, sql/gestao.sql), never by this package."""
