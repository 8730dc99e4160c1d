#!/usr/bin/env bash
# Prints Otto's metrics: scripts/metrics_snapshot.sh URL [--format=json]
# Text (default) drops comment lines; JSON emits {"metric{labels}": value, ...}.
set -euo pipefail
base=${1:?usage: scripts/metrics_snapshot.sh URL [--format=json]}
format=${2:---format=text}
body=$(curl -fsS "${base%/}/metrics")
case "$format" in
  --format=json)
    printf '%s\n' "$body" | grep -v '^#' | grep -v '^$' | python3 -c '
import json, sys
out = {}
for line in sys.stdin:
    name, _, value = line.rstrip("\n").rpartition(" ")
    out[name] = float(value)
print(json.dumps(out, indent=2, sort_keys=True))'
    ;;
  *) printf '%s\n' "$body" | grep -v '^#' ;;
esac
