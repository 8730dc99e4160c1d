#!/usr/bin/env bash
# Observability smoke test: scripts/smoke_obs.sh BASE_URL [LOG_FILE]
#   /metrics names the series the alert rules and the dashboard rely on; a request's
#   X-Request-Id comes back in its error body and, with LOG_FILE (the instance's JSON log), in the
#   logs. Exits non-zero with a one-line reason on the first failure.
set -euo pipefail
base=${1:?usage: scripts/smoke_obs.sh BASE_URL [LOG_FILE]}
base=${base%/}
log=${2:-${SMOKE_LOG_FILE:-}}
die() { echo "smoke_obs: $*" >&2; exit 1; }

curl -s -o /dev/null "$base/health"
metrics=$(curl -s "$base/metrics")
for name in http_requests_total http_request_duration_ms_bucket webhook_processed_total \
  otto_dependency_up worker_heartbeat_age_seconds ws_messages_sent_total rate_limit_backend_errors_total; do
  grep -q "^$name[{ ]" <<<"$metrics" || die "/metrics has no $name"
done
request_id=$(python3 -c 'import uuid; print(uuid.uuid4().hex)')
body=$(curl -s -H "X-Request-Id: $request_id" "$base/v1/no-such-route-$request_id")
case "$body" in *"$request_id"*) ;; *) die "the error body does not carry X-Request-Id: $body" ;; esac
if [ -n "$log" ]; then
  for _ in $(seq 1 20); do
    grep -q "$request_id" "$log" && break
    sleep 0.1
  done
  grep -q "\"trace_id\":\"$request_id\"" "$log" || die "the JSON log has no line with trace_id $request_id"
fi
echo "smoke_obs: ok ($base)"
