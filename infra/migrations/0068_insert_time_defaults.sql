-- A job's and a ledger row's times are the times of their writes, not of the transactions
-- that made them: a slow request's insert must still list above a job created and ended
-- meanwhile, a refund above the debit it returns. now() is the transaction's start, so the
-- inserts used to write clock_timestamp() themselves, each of them; the columns' defaults
-- now say it once, for every insert, including one written later that forgets to.
-- (Updates still set updated_at themselves: a default applies to inserts only.)
ALTER TABLE integration_jobs
  ALTER COLUMN created_at SET DEFAULT clock_timestamp(),
  ALTER COLUMN updated_at SET DEFAULT clock_timestamp();
ALTER TABLE credit_ledger ALTER COLUMN created_at SET DEFAULT clock_timestamp();
