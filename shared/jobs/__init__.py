"""The job engine: leased, retried, swept work over any table with the lease columns.

- `table.JobTable`  which table a kind's jobs live in (and its SQL fragments);
- `store`           claim, heartbeat, lock, release, rescue and due counts (`sql/jobs.sql`);
- `policy`          the pure retry policy: retry with backoff, give up, or stop;
- `lease.Lease`     one claimed job as its runner holds it;
- `kind.Kind`       what a kind of job provides (run one, hand back a stale one);
- `wake`            the wake-up tasks and their de-duplication keys;
- `drain`           the budgeted claim-and-run loop;
- `sweep`           one pass over every registered kind.

The engine imports no kind: kinds import the engine, and `shared.kinds` composes them.
"""
