#!/usr/bin/env bash
# Builds Warren (installing what is missing) and starts the broker with the embedded defaults:
# AMQP on 127.0.0.1:5672, management port 15672, data in ./data, user guest/guest.
# Extra arguments go to warren-server (see `build/warren-server --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/warren-server --data-dir "${WARREN_DATA_DIR:-./data}" "$@"
