-- When a scheduled job was meant to start: its occurrence (`scheduled_for`) plus the spread
-- offset its schedule had when the tick enqueued it. The schedule-skew metric measures from
-- it; the schedule's offset may change or the schedule go away later, and the job's history
-- must not move with it. NULL for manual jobs and for jobs enqueued before this migration.
ALTER TABLE integration_jobs ADD COLUMN IF NOT EXISTS scheduled_due_at timestamptz;
