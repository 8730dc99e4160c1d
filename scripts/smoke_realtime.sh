#!/usr/bin/env bash
# Real-time smoke test against a running instance:
#   scripts/smoke_realtime.sh BASE TOKEN [TENANT] [DEV_EMIT_KEY]
# connects to BASE/ws with TOKEN, subscribes to the tenant's channel, publishes a test event
# through /ws/test-emit (the instance needs DEV_EMIT_KEY) and prints the round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/smoke_realtime.sh BASE TOKEN [TENANT] [DEV_EMIT_KEY]}
token=${2:?usage: scripts/smoke_realtime.sh BASE TOKEN [TENANT] [DEV_EMIT_KEY]}
# The tenant defaults to the token's org_id claim.
tenant=${3:-$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; p+="="*(-len(p)%4); c=json.loads(base64.urlsafe_b64decode(p)); print(c.get("org_id") or c.get("o",{}).get("id"))' "$token")}
dev_key=${4:-${DEV_EMIT_KEY:?set DEV_EMIT_KEY or pass it as the fourth argument}}
cargo run -q --release -p ws-bench -- smoke --base "$base" --token "$token" --tenant "$tenant" --dev-key "$dev_key"
