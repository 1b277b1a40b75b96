#!/usr/bin/env bash
# Cloud Scheduler's minute sweep: POST {} to process-integration-job with an OIDC token of
# syncq-scheduler (the only identity besides syncq-tasks allowed to invoke the worker),
# whose audience is the worker's URL, as Cloud Run requires of a private function.
# The sweep rescues stale jobs, runs subsystem hooks and drains due jobs (DESIGN.md §2).
# Usage: PROJECT=p REGION=r infra/deploy/scheduler.sh
set -euo pipefail
PROJECT="${PROJECT:?set PROJECT}"
REGION="${REGION:-southamerica-east1}"
BASE="https://${REGION}-${PROJECT}.cloudfunctions.net"
SA="syncq-scheduler@${PROJECT}.iam.gserviceaccount.com"

verb=create headers=--headers
if gcloud scheduler jobs describe syncq-sweep --project="$PROJECT" --location="$REGION" >/dev/null 2>&1; then
  verb=update headers=--update-headers  # `update http` takes no --headers
fi
# attempt-deadline: a sweep may drain for WORKER_BUDGET_S (240 s); no retry within the
# minute, the next tick is the retry.
gcloud scheduler jobs "$verb" http syncq-sweep --project="$PROJECT" --location="$REGION" \
  --schedule="* * * * *" --time-zone="Etc/UTC" \
  --uri="${BASE}/process-integration-job" --http-method=POST \
  "$headers=Content-Type=application/json" --message-body='{}' \
  --oidc-service-account-email="$SA" --oidc-token-audience="${BASE}/process-integration-job" \
  --attempt-deadline=300s --max-retry-attempts=0
