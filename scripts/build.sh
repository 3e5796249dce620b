#!/usr/bin/env bash
# Configures and builds Warren into build/ (Release-with-debug-info by default).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${WARREN_BUILD_TYPE:-RelWithDebInfo}" -DWARREN_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
