#!/usr/bin/env bash
# The Cloud Tasks queue that wakes the worker. Usage: PROJECT=p REGION=r infra/deploy/queue.sh
#
# Why these numbers (keep them consistent with shared/jobs/policy.py and the settings):
# * Cloud Tasks is only a wake-up (DESIGN.md invariant 1). A job's own retries live in
#   Postgres: run_after = now + backoff(attempt) (BACKOFF_BASE_S 30 s, cap BACKOFF_CAP_S
#   3600 s, max_attempts 3) and a *delayed task* with that schedule_time. The worker answers
#   200 even when a job fails (the failure is a row, not an HTTP error), so Cloud Tasks
#   never retries a failed sync: the two retry loops cannot multiply.
# * The queue's own retries therefore only cover delivery failures (cold start, 429 when
#   every worker instance is busy, 5xx from the platform). The minute sweep finds every
#   due job anyway, so a task retried for longer than a few sweeps is pointless:
#   min 5 s, max 60 s (one sweep interval), 3 doublings, give up after 10 minutes
#   (= STALE_AFTER_S), at most 8 attempts.
# * Rate: at most 10 concurrent dispatches = max instances of process-integration-job
#   (concurrency 1). More would only queue 429s at the function. 20 dispatches/s is far
#   above what 10 single-job workers consume; it only bounds a burst of wake-ups.
# * Task names are hashed from job id + attempt (shared/dispatch.py): a duplicate submit
#   is ALREADY_EXISTS (dedup window ~1 h), and a duplicate delivery finds nothing to claim.
set -euo pipefail
PROJECT="${PROJECT:?set PROJECT}"
REGION="${REGION:-southamerica-east1}"
QUEUE="${QUEUE:-syncq}"

verb=create
if gcloud tasks queues describe "$QUEUE" --project="$PROJECT" --location="$REGION" >/dev/null 2>&1; then
  verb=update
fi
gcloud tasks queues "$verb" "$QUEUE" --project="$PROJECT" --location="$REGION" \
  --max-dispatches-per-second=20 \
  --max-concurrent-dispatches=10 \
  --max-attempts=8 \
  --min-backoff=5s \
  --max-backoff=60s \
  --max-doublings=3 \
  --max-retry-duration=600s
