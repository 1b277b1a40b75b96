#!/usr/bin/env bash
# Secret Manager wiring.
#
#   platform:  syncq-database-url, syncq-jwt-secret   (injected as env by deploy.py)
#   alerts:    syncq-smtp-password (the worker), syncq-alert-webhook-secret (the worker and
#              syncq-api, which shows admins their signing key)
#   runninghub: syncq-runninghub-api-key, syncq-runninghub-webhook-secret (the credits
#              function and the worker, whose sweep starts and checks renders)
#   tenants:   syncq-<tenant_slug>-<provider>-<key>    (read at run time by shared/secrets.py,
#              e.g. syncq-acme-bomcontrole-api_key)      SECRET_BACKEND=gcp, cached 5 min)
#
# Usage:
#   infra/deploy/secrets.sh platform                      # create the two platform secrets
#   infra/deploy/secrets.sh alerts                        # the two alert secrets
#   infra/deploy/secrets.sh runninghub                    # the two RunningHub secrets
#   infra/deploy/secrets.sh tenant acme bomcontrole api_key   # value read from stdin
# A tenant secret is readable only by the runtime identity that runs that provider.
set -euo pipefail
PROJECT="${PROJECT:?set PROJECT}"
sa() { echo "$1@${PROJECT}.iam.gserviceaccount.com"; }

put() {  # put NAME: create if missing, then add a version from stdin
  gcloud secrets describe "$1" --project="$PROJECT" >/dev/null 2>&1 \
    || gcloud secrets create "$1" --project="$PROJECT" --replication-policy=automatic
  gcloud secrets versions add "$1" --project="$PROJECT" --data-file=-
}

reader_for() {
  case "$1" in
    acessorias|onecode|bomcontrole) echo syncq-worker ;;
    gestao-scouter) echo syncq-export ;;
    *) echo "unknown provider: $1" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  platform)
    for name in syncq-database-url syncq-jwt-secret; do
      echo "value for $name (stdin, then Ctrl-D):" >&2
      put "$name"
    done ;;
  alerts)
    for name in syncq-smtp-password syncq-alert-webhook-secret; do
      echo "value for $name (stdin, then Ctrl-D):" >&2
      put "$name"
      for reader in syncq-worker $( [ "$name" = syncq-alert-webhook-secret ] && echo syncq-api ); do
        gcloud secrets add-iam-policy-binding "$name" --project="$PROJECT" \
          --member="serviceAccount:$(sa "$reader")" \
          --role=roles/secretmanager.secretAccessor >/dev/null
      done
    done ;;
  runninghub)
    for name in syncq-runninghub-api-key syncq-runninghub-webhook-secret; do
      echo "value for $name (stdin, then Ctrl-D):" >&2
      put "$name"
      for reader in syncq-credits syncq-worker; do
        gcloud secrets add-iam-policy-binding "$name" --project="$PROJECT" \
          --member="serviceAccount:$(sa "$reader")" \
          --role=roles/secretmanager.secretAccessor >/dev/null
      done
    done ;;
  tenant)
    tenant="${2:?tenant slug}"; provider="${3:?provider}"; key="${4:?key}"
    # Before anything is stored: an unknown provider must not leave a credential in a
    # secret nothing reads (an assignment stops the script when its substitution fails).
    reader="$(reader_for "$provider")"
    name="syncq-${tenant}-${provider}-${key}"
    put "$name"
    gcloud secrets add-iam-policy-binding "$name" --project="$PROJECT" \
      --member="serviceAccount:$(sa "$reader")" \
      --role=roles/secretmanager.secretAccessor >/dev/null
    echo "stored $name (readable by $reader)" ;;
  *) sed -n '2,18p' "$0"; exit 2 ;;
esac
