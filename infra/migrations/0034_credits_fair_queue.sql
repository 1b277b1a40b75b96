-- Credits: free RunningHub slots are shared fairly (shared/sql/credits.sql fair_queue):
-- the user holding the fewest slots first, FIFO within a user, and on a tie the user who
-- got a slot least recently. This index finds each waiting user's latest start without
-- reading their whole job history. (The per-user limit of jobs queued or holding a slot,
-- RUNNINGHUB_MAX_ACTIVE_PER_USER, is now 20 by default: a user may queue a batch.)
CREATE INDEX ai_jobs_user_started_idx ON ai_jobs (user_id, started_at DESC)
  WHERE started_at IS NOT NULL;
