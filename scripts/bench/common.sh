# Shared by the benchmark scripts (sourced, not run): builds otto-api in release, creates a
# scratch PostgreSQL database dropped on exit with the scratch directory and every background
# job, and picks a free port. Sets: target, db, work, port, PG.
# Usage: source scripts/bench/common.sh; bench_prepare <database name prefix>
# KEEP_DB=1 keeps the database afterwards (to EXPLAIN more queries by hand).

PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}

bench_prepare() {
  command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
  target=$(realpath "${CARGO_TARGET_DIR:-target}")
  [ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin otto-api >&2
  db="$1_$$"
  psql "$PG/postgres" -qc "CREATE DATABASE $db" >/dev/null
  work=$(mktemp -d)
  trap bench_cleanup EXIT
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
}

bench_cleanup() {
  # shellcheck disable=SC2046 # one pid per word
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP_DB:-}" ]; then
    echo "kept database $db (KEEP_DB)" >&2
  else
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
  fi
  rm -rf "$work"
}

# wrk summary: url, connections, extra wrk args -> "rps p50 p99"
summary() {
  wrk -t"$([ "$2" = 1 ] && echo 1 || echo 2)" -c"$2" -d"$duration" --latency "${@:3}" "$1" |
    awk '/Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print rps, p50, p99}'
}
