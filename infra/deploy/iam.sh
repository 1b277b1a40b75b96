#!/usr/bin/env bash
# Service accounts and least-privilege bindings (see infra/deploy/functions.py).
#
#   identity         runs                                   may
#   syncq-api        run/cancel/list/events functions       DB + JWT secrets; enqueue tasks
#   syncq-worker     process-integration-job, sync-*        + provider secrets (acessorias,
#                                                              onecode, bomcontrole), alert and
#                                                              RunningHub secrets (the sweep);
#                                                              enqueue tasks that carry
#                                                              syncq-tasks' OIDC
#   syncq-credits    runninghub-queue-manager               + RunningHub secrets; enqueue
#   syncq-export     gestao-scouter functions               + Gestão Scouter secrets; enqueue
#   syncq-tasks      (identity inside Cloud Tasks' OIDC)    invoke the worker / sync functions
#   syncq-scheduler  (identity of the minute sweep)         invoke process-integration-job
#
# Provider secrets are bound per secret by infra/deploy/secrets.sh, so an identity can
# read only its own providers' secrets. Usage: PROJECT=p REGION=r infra/deploy/iam.sh, after
# `secrets.sh platform` and `queue.sh` (it binds those), before the other secrets.sh steps.
set -euo pipefail
PROJECT="${PROJECT:?set PROJECT}"
REGION="${REGION:-southamerica-east1}"
QUEUE="${QUEUE:-syncq}"
sa() { echo "$1@${PROJECT}.iam.gserviceaccount.com"; }

for name in syncq-api syncq-worker syncq-credits syncq-export syncq-tasks syncq-scheduler; do
  gcloud iam service-accounts describe "$(sa "$name")" --project="$PROJECT" >/dev/null 2>&1 \
    || gcloud iam service-accounts create "$name" --project="$PROJECT" --display-name="$name"
done

for runtime in syncq-api syncq-worker syncq-credits syncq-export; do
  # Every runtime reads the platform secrets (database URL, JWT secret) ...
  for secret in syncq-database-url syncq-jwt-secret; do
    gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT" \
      --member="serviceAccount:$(sa "$runtime")" --role=roles/secretmanager.secretAccessor >/dev/null
  done
  # ... may enqueue wake-ups on our queue only ...
  gcloud tasks queues add-iam-policy-binding "$QUEUE" --project="$PROJECT" --location="$REGION" \
    --member="serviceAccount:$(sa "$runtime")" --role=roles/cloudtasks.enqueuer >/dev/null
  # ... and may mint syncq-tasks' OIDC token for those tasks (actAs on that one account).
  gcloud iam service-accounts add-iam-policy-binding "$(sa syncq-tasks)" --project="$PROJECT" \
    --member="serviceAccount:$(sa "$runtime")" --role=roles/iam.serviceAccountUser >/dev/null
  # Cloud SQL (if used): connect, no admin.
  gcloud projects add-iam-policy-binding "$PROJECT" --condition=None \
    --member="serviceAccount:$(sa "$runtime")" --role=roles/cloudsql.client >/dev/null
done

# Cloud Scheduler needs to mint syncq-scheduler's token.
gcloud iam service-accounts add-iam-policy-binding "$(sa syncq-scheduler)" --project="$PROJECT" \
  --member="serviceAccount:service-$(gcloud projects describe "$PROJECT" --format='value(projectNumber)')@gcp-sa-cloudscheduler.iam.gserviceaccount.com" \
  --role=roles/iam.serviceAccountTokenCreator >/dev/null
# Invoker bindings on the private worker are added by deploy.py (add-invoker-policy-binding).
