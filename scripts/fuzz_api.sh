#!/usr/bin/env bash
# API fuzzing: schemathesis (PyPI) against /openapi.json of an embedded otto-api started here
# from the debug binary, signed in as leadership, every operation with a bounded number of
# examples (FUZZ_EXAMPLES, 5), plus its stateful phase over the document's links. Fails on any 5xx
# and on any response that does not match its documented schema. Providers are configured (at
# unroutable addresses) so that "not configured" 503s do not hide the routes behind them; UWC is
# the mock (`otto-dev mock-uwc`), so Ask Otto answers.
# Usage: scripts/fuzz_api.sh   (build first: cargo build -p otto)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${OTTO_BIN_DIR:-target/debug}")
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
uwc_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/otto-dev" mock-uwc --port "$uwc_port" --api-key fuzz-uwc-key --hmac-secret fuzz-uwc-secret \
  >"$work/uwc.log" 2>&1 &
export PORT=$port DATABASE_URL="sqlite://$work/otto.db?mode=rwc" LOG_LEVEL=warn \
  RATE_LIMIT_USER=100000/second RATE_LIMIT_TENANT=100000/second RATE_LIMIT_WHITELIST_IPS=127.0.0.1 \
  PUBLIC_BASE_URL="http://127.0.0.1:$port" \
  TWILIO_ACCOUNT_SID=ACfuzz TWILIO_AUTH_TOKEN=fuzz-token TWILIO_FROM_NUMBER=+15550001111 \
  TWILIO_API_URL=http://127.0.0.1:9 GOOGLE_CLIENT_ID=fuzz GOOGLE_CLIENT_SECRET=fuzz \
  GOOGLE_TOKEN_URL=http://127.0.0.1:9/token GOOGLE_CALENDAR_API_URL=http://127.0.0.1:9/calendar \
  ENCRYPTION_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= \
  UWC_BASE_URL="http://127.0.0.1:$uwc_port" UWC_API_KEY=fuzz-uwc-key UWC_HMAC_SECRET=fuzz-uwc-secret
unset REDIS_URL
(cd "$work" && exec "$bin/otto-api" >"$work/api.log" 2>&1) &
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
token=$(cd "$work" && "$bin/otto-api" token --tenant org_fuzz --user user_fuzz --role leadership)
schemathesis run "http://127.0.0.1:$port/openapi.json" -H "Authorization: Bearer $token" \
  --max-examples "${FUZZ_EXAMPLES:-5}" --checks not_a_server_error,response_schema_conformance \
  --no-color --seed 42
