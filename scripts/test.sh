#!/usr/bin/env bash
# Runs every test: builds (installing what is missing), then the GoogleTest unit tests via ctest,
# then the pytest + pika integration tests against a broker each test session starts itself.
# With CI=true (set by CI) a skipped integration test fails; see tests/integration/conftest.py.
set -euo pipefail
cd "$(dirname "$0")/.."
WARREN_WITH_BROWSER=1 bash scripts/build.sh
echo "== unit tests (ctest)"
# --no-tests=error: a build that discovers no unit test fails instead of passing vacuously.
ctest --test-dir build --output-on-failure --no-tests=error -j"$(nproc)"
echo "== integration tests (pytest + pika, amqp-tools)"
WARREN_SERVER="$PWD/build/warren-server" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider "$@"
