#!/bin/sh
# Renders alertmanager.yml.tmpl the way Cabalmail's Alertmanager entrypoint does (sed on the
# placeholders, secrets from the environment), for scripts/check-deploy.sh and tests/deploy.rs.
# Cabalmail's entrypoint needs the same two additions: the CABAL_TRIAGE_WEBHOOK_TOKEN check and
# its -e expression.
# Usage: ALERT_SINK_URL=... ALERT_SECRET=... CABAL_TRIAGE_WEBHOOK_TOKEN=... render.sh TEMPLATE OUT
set -eu
: "${ALERT_SINK_URL:?ALERT_SINK_URL is required}"
: "${ALERT_SECRET:?ALERT_SECRET is required}"
: "${CABAL_TRIAGE_WEBHOOK_TOKEN:?CABAL_TRIAGE_WEBHOOK_TOKEN is required (SSM /cabal/triage_webhook_token)}"
sed \
  -e "s|__ALERT_SINK_URL__|${ALERT_SINK_URL}|g" \
  -e "s|__ALERT_SECRET__|${ALERT_SECRET}|g" \
  -e "s|__CABAL_TRIAGE_WEBHOOK_TOKEN__|${CABAL_TRIAGE_WEBHOOK_TOKEN}|g" \
  "$1" > "$2"
if grep -n '__[A-Z_]*__' "$2" >&2; then
  echo "render.sh: placeholders left in $2" >&2
  exit 1
fi
