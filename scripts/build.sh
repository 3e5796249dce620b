#!/usr/bin/env bash
# Configures and builds Warren into build/ (Release-with-debug-info by default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${WARREN_BUILD_TYPE:-RelWithDebInfo}" -DWARREN_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
# The management web UI (served at / by warren-server): npm packages pinned by www/package-lock.json.
(cd www && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
# The browser test's driver (playwright-core), when tests will run.
if [ "${WARREN_WITH_BROWSER:-0}" = 1 ]; then
  (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
fi
