"""Sync metrics: per-provider runs, outcomes, durations, freshness and queue; exports'
throughput and lag; a daily series; and the operators' Prometheus exposition.

Read-only, from indexes bounded by the window (shared/sql/metrics.sql). Metrics read the
queue's and the export's tables through SQL and import neither capability.
"""
