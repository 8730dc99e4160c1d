#!/usr/bin/env bash
# Smoke test of a running Otto: scripts/smoke.sh BASE_URL
#   health and readiness; authentication (401 without a token, 200 with); with
#   SMOKE_RATE_LIMIT=N (the instance started with RATE_LIMIT_USER=N/minute) N requests pass and
#   the next is 429; a signed CallRail delivery processed, then duplicate_ignored (the instance and
#   this script share CALLRAIL_WEBHOOK_SECRET); a WebSocket event round trip (DEV_EMIT_KEY).
# The token is SMOKE_TOKEN, else minted with `otto-api token` (development instances).
# Exits non-zero with a one-line reason on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/smoke.sh BASE_URL}
base=${base%/}
otto_api=${OTTO_API_BIN:-target/debug/otto-api}
tenant=${SMOKE_TENANT:-org_smoke}
die() { echo "smoke: $*" >&2; exit 1; }
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

[ "$(status "$base/health")" = 200 ] || die "/health is not 200"
[ "$(status "$base/ready")" = 200 ] || die "/ready is not 200 ($(curl -s "$base/ready"))"
token=${SMOKE_TOKEN:-$("$otto_api" token --tenant "$tenant" --user user_smoke --role leadership)}
[ "$(status "$base/v1/me")" = 401 ] || die "/v1/me without a token is not 401"
[ "$(status -H "Authorization: Bearer $token" "$base/v1/me")" = 200 ] || die "/v1/me with a token is not 200"

if [ -n "${SMOKE_RATE_LIMIT:-}" ]; then
  limiter_token=$("$otto_api" token --tenant "$tenant" --user "user_limit_$$" --role csr)
  for n in $(seq 1 "$SMOKE_RATE_LIMIT"); do
    code=$(status -H "Authorization: Bearer $limiter_token" "$base/v1/session")
    [ "$code" = 200 ] || die "request $n of $SMOKE_RATE_LIMIT was $code, not 200"
  done
  code=$(status -H "Authorization: Bearer $limiter_token" "$base/v1/session")
  [ "$code" = 429 ] || die "request $((SMOKE_RATE_LIMIT + 1)) was $code, not 429"
fi

company=$(curl -s -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"callrail_company_id":"CRSMOKE"}' "$base/v1/companies/$tenant")
case "$company" in *CRSMOKE*) ;; *) die "could not map the CallRail company: $company" ;; esac
id="smoke-$$-$RANDOM"
first=$("$otto_api" replay-webhook --provider callrail --url "$base" --id "$id" --callrail-company CRSMOKE)
second=$("$otto_api" replay-webhook --provider callrail --url "$base" --id "$id" --callrail-company CRSMOKE)
case "$first" in *'"processed"'*) ;; *) die "the webhook was not processed: $first" ;; esac
case "$second" in *duplicate_ignored*) ;; *) die "the replayed webhook was not ignored: $second" ;; esac

if [ -n "${DEV_EMIT_KEY:-}" ]; then
  ws_bench=${WS_BENCH_BIN:-target/debug/ws-bench}
  "$ws_bench" smoke --base "$base" --token "$token" --tenant "$tenant" --dev-key "$DEV_EMIT_KEY" >/dev/null ||
    die "no WebSocket round trip"
fi
echo "smoke: ok ($base)"
