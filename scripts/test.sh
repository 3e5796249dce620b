#!/usr/bin/env bash
# Runs every test: builds (installing what is missing), then the GoogleTest unit tests via ctest,
# then the pytest + pika integration tests against a broker each test session starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
echo "== unit tests (ctest)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
echo "== integration tests (pytest + pika, amqp-tools)"
WARREN_SERVER="$PWD/build/warren-server" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider "$@"
