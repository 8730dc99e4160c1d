#!/usr/bin/env bash
# Upload throughput and memory of recording uploads (PUT /v1/recording-sessions/{id}/audio),
# through a real otto-api:
#   - a ${UPLOAD_MB:-100} MB file to the local store, next to `cp` of the same file, and to an
#     S3 server (moto, started here), next to boto3's upload_file (the `aws s3 cp` equivalent),
#     each in MB/s, with the ratio (goal >= 70 %);
#   - the API's RSS growth (peak VmHWM minus VmRSS before) over a ${RSS_MB:-200} MB upload,
#     which must stay under 32 MB: the upload is streamed, never held whole. Exits 1 otherwise.
# Usage: scripts/bench_uploads.sh [BIN_DIR]   (default target/release; scripts/test.sh passes
# target/debug with UPLOAD_MB=20 for the memory check)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-${OTTO_BIN_DIR:-target/release}}")
upload_mb=${UPLOAD_MB:-100}
rss_mb=${RSS_MB:-200}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "bench_uploads: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { python3 -c 'import time; print(time.time())'; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):.0f}')"; }

make_wav() { # file, megabytes: a RIFF/WAVE header, then noise
  printf 'RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00' >"$1"
  head -c $(($2 * 1024 * 1024)) /dev/urandom >>"$1"
}

api_pid=""
base=""
start_api() { # extra environment assignments...
  local port
  port=$(free_port)
  base="http://127.0.0.1:$port"
  (cd "$work" && exec env PORT="$port" LOG_LEVEL=warn DATABASE_URL="sqlite://$work/otto-$port.db?mode=rwc" \
    STORAGE_DIR="$work/store" RATE_LIMIT_USER=100000/minute MAX_RECORDING_MB=$((rss_mb + upload_mb)) "$@" "$bin/otto-api" >"$work/api-$port.log" 2>&1) &
  api_pid=$!
  pids+=("$api_pid")
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ] && break
    sleep 0.2
  done
  # The subshell execs otto-api: its pid is the API's.
  token=$("$bin/otto-api" token --tenant org_bench --user user_bench --role rep)
}
stop_api() { kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true; }

upload() { # file -> prints seconds taken
  local session started ended code
  session=$(curl -sf -X POST -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{}' "$base/v1/recording-sessions" | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])') ||
    die "cannot open a recording session at $base"
  started=$(now)
  code=$(curl -s -o "$work/answer.json" -w '%{http_code}' -T "$1" -X PUT \
    -H "authorization: Bearer $token" -H 'content-type: audio/wav' \
    "$base/v1/recording-sessions/$session/audio")
  ended=$(now)
  [ "$code" = 200 ] || die "upload answered $code: $(cat "$work/answer.json")"
  python3 -c "print($ended - $started)"
}

kb_of() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$api_pid/status"; }

make_wav "$work/upload.wav" "$upload_mb"
bytes_mb=$(python3 -c "print($(stat -c %s "$work/upload.wav") / 1048576)")

# Local store vs cp.
start_api
started=$(now); cp "$work/upload.wav" "$work/copy.wav"; ended=$(now)
cp_rate=$(rate "$bytes_mb" "$started" "$ended")
rm -f "$work/copy.wav"
seconds=$(upload "$work/upload.wav")
local_rate=$(python3 -c "print(f'{$bytes_mb / $seconds:.0f}')")
echo "local store: ${upload_mb} MB at $local_rate MB/s; cp: $cp_rate MB/s; ratio $(python3 -c "print(f'{100 * $local_rate / $cp_rate:.0f}')") %"

# Memory over a large upload, streamed.
make_wav "$work/large.wav" "$rss_mb"
before=$(kb_of VmRSS)
upload "$work/large.wav" >/dev/null
peak=$(kb_of VmHWM)
growth_mb=$(python3 -c "print(f'{($peak - $before) / 1024:.1f}')")
echo "memory: RSS $((before / 1024)) MB before a ${rss_mb} MB upload, peak $((peak / 1024)) MB: growth $growth_mb MB (limit 32 MB)"
stop_api
python3 -c "import sys; sys.exit(0 if ($peak - $before) / 1024 < 32 else 1)" ||
  die "RSS grew by $growth_mb MB over a ${rss_mb} MB upload (limit 32 MB)"

# S3 (moto) vs boto3's upload_file, when moto is installed.
if command -v moto_server >/dev/null 2>&1 && python3 -c 'import boto3' 2>/dev/null; then
  s3_port=$(free_port)
  moto_server -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$s3_port" && break; sleep 0.2; done
  curl -sf -X PUT "http://127.0.0.1:$s3_port/otto-bench" >/dev/null
  s3_env=(S3_BUCKET=otto-bench S3_ENDPOINT="http://127.0.0.1:$s3_port" S3_REGION=us-east-1
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)
  boto_seconds=$(env "${s3_env[@]}" python3 - "$work/upload.wav" <<'EOF'
import os, sys, time, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
started = time.time()
s3.upload_file(sys.argv[1], "otto-bench", "reference/upload.wav",
               Config=TransferConfig(multipart_chunksize=5 * 1024 * 1024))
print(time.time() - started)
EOF
)
  start_api "${s3_env[@]}"
  seconds=$(upload "$work/upload.wav")
  stop_api
  s3_rate=$(python3 -c "print(f'{$bytes_mb / $seconds:.0f}')")
  boto_rate=$(python3 -c "print(f'{$bytes_mb / $boto_seconds:.0f}')")
  echo "S3 (moto): ${upload_mb} MB at $s3_rate MB/s; boto3 upload_file: $boto_rate MB/s; ratio $(python3 -c "print(f'{100 * $s3_rate / $boto_rate:.0f}')") %"
else
  echo "S3 (moto): skipped, moto[server] and boto3 are not installed (pip install 'moto[server]')"
fi
