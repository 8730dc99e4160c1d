#!/usr/bin/env bash
# Runs scripts/verify.sh against an instance started here from the debug binaries (build them
# first: cargo build -p otto -p ws-bench):
#   scripts/verify_local.sh embedded      otto-api alone on a fresh SQLite file
#   scripts/verify_local.sh distributed   otto-api, otto-worker and otto-scheduler on a fresh
#                                         PostgreSQL database and a private Redis prefix
# with a low per-user rate limit (the 6th request is 429), a CallRail secret and a dev key.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/verify_local.sh embedded|distributed}
bin=$(realpath "${OTTO_BIN_DIR:-target/debug}")
PG=${VERIFY_PG:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
db=""
prefix="otto-verify-$$:"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "$db" ] && psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  [ "$mode" = distributed ] && redis-cli --scan --pattern "$prefix*" | xargs -r redis-cli del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PORT=$port LOG_LEVEL=info CALLRAIL_WEBHOOK_SECRET=verify-secret DEV_EMIT_KEY=verify-dev-key \
  RATE_LIMIT_USER=5/minute SMOKE_RATE_LIMIT=5 OTTO_API_BIN="$bin/otto-api" WS_BENCH_BIN="$bin/ws-bench"
case "$mode" in
  embedded)
    export DATABASE_URL="sqlite://$work/otto.db?mode=rwc"
    unset REDIS_URL
    ;;
  distributed)
    db="otto_verify_$$"
    psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
    export DATABASE_URL="$PG/$db" REDIS_URL=redis://127.0.0.1:6379 REDIS_PREFIX="$prefix"
    (cd "$work" && "$bin/otto-api" migrate >/dev/null)
    (cd "$work" && exec "$bin/otto-worker" >"$work/worker.log" 2>&1) &
    (cd "$work" && exec "$bin/otto-scheduler" >"$work/scheduler.log" 2>&1) &
    ;;
  *) echo "verify_local: mode is embedded or distributed" >&2; exit 2 ;;
esac
(cd "$work" && exec "$bin/otto-api" >"$work/api.log" 2>&1) &
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" = 200 ] && break
  sleep 0.2
done
scripts/verify.sh "http://127.0.0.1:$port" "$work/api.log" || {
  echo "verify_local ($mode) failed; last API log lines:" >&2
  tail -5 "$work/api.log" >&2
  exit 1
}
echo "verify_local: $mode ok"
