#!/usr/bin/env bash
# The whole suite, exactly as CI runs it: services check, format, lints, every test.
# PostgreSQL and Redis must be reachable on 127.0.0.1; they are started if installed but
# stopped, and the script fails loudly (never skips) when they cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379

fail() {
  echo "scripts/test.sh: $*" >&2
  exit 1
}

wait_for() { # description, command...
  local what=$1
  shift
  for _ in $(seq 1 30); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  fail "$what did not become reachable"
}

ensure_postgres() {
  if pg_isready -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; then return 0; fi
  command -v pg_ctlcluster >/dev/null 2>&1 ||
    fail "PostgreSQL is not reachable on $PG_HOST:$PG_PORT and not installed (apt-get install postgresql postgresql-client)"
  echo "starting PostgreSQL..."
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  wait_for "PostgreSQL on $PG_HOST:$PG_PORT" pg_isready -h "$PG_HOST" -p "$PG_PORT"
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
  command -v redis-server >/dev/null 2>&1 ||
    fail "Redis is not reachable on 127.0.0.1:$REDIS_PORT and not installed (apt-get install redis-server redis-tools)"
  echo "starting Redis..."
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no
  wait_for "Redis on 127.0.0.1:$REDIS_PORT" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
}

# promtool (Debian package prometheus) checks and unit-tests the alert rules.
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing promtool (apt-get install prometheus)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; } ||
      true
  fi
  command -v promtool >/dev/null 2>&1 || fail "promtool missing and could not be installed (apt-get install prometheus)"
}

# schemathesis (PyPI) fuzzes the API from its OpenAPI document.
ensure_schemathesis() {
  command -v schemathesis >/dev/null 2>&1 && return 0
  echo "installing schemathesis (pip install schemathesis)..."
  python3 -m pip install -q schemathesis >/dev/null 2>&1 || true
  command -v schemathesis >/dev/null 2>&1 || fail "schemathesis missing and could not be installed (pip install schemathesis)"
}

# detect-secrets (PyPI) scans the tracked files against the reviewed baseline.
ensure_detect_secrets() {
  command -v detect-secrets >/dev/null 2>&1 && return 0
  echo "installing detect-secrets (pip install detect-secrets)..."
  python3 -m pip install -q detect-secrets >/dev/null 2>&1 || true
  command -v detect-secrets >/dev/null 2>&1 || fail "detect-secrets missing and could not be installed (pip install detect-secrets)"
}

# moto (PyPI) is the S3-compatible server the object storage contract test runs against.
ensure_moto() {
  command -v moto_server >/dev/null 2>&1 && python3 -c 'import boto3' 2>/dev/null && return 0
  echo "installing moto (pip install 'moto[server]')..."
  python3 -m pip install -q 'moto[server]' >/dev/null 2>&1 || true
  command -v moto_server >/dev/null 2>&1 || fail "moto_server missing and could not be installed (pip install 'moto[server]')"
}

command -v pg_isready >/dev/null 2>&1 || fail "pg_isready missing (apt-get install postgresql-client)"
command -v redis-cli >/dev/null 2>&1 || fail "redis-cli missing (apt-get install redis-tools)"
ensure_postgres
ensure_redis
ensure_moto

ensure_detect_secrets
python3 scripts/secrets_check.py --self-test
python3 scripts/secrets_check.py

ensure_promtool
promtool check rules ops/prometheus/alerts.yml
promtool test rules ops/prometheus/alerts_test.yml

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

# The deploy checks against real instances started from the debug binaries, in both modes.
cargo build -p ws-bench
scripts/verify_local.sh embedded
scripts/verify_local.sh distributed
# Uploads stream: RSS growth over a 200 MB recording stays under 32 MB (exits 1 otherwise).
UPLOAD_MB=20 scripts/bench_uploads.sh target/debug
ensure_schemathesis
scripts/fuzz_api.sh
