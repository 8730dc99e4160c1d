#!/usr/bin/env bash
# A deploy pipeline's check of a running Otto: scripts/verify.sh BASE_URL [LOG_FILE]
# = scripts/smoke.sh then scripts/smoke_obs.sh (see each for its settings).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/smoke.sh "$1"
scripts/smoke_obs.sh "$@"
