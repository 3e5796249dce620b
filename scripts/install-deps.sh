#!/usr/bin/env bash
# Installs every Debian package Warren needs to build, test and benchmark, if any is missing.
# The integration tests run amqp-tools (test_amqp_tools.py), mount/umount (a tmpfs for the
# disk-full tests, as root) and ip (iproute2: network namespaces); the MQTT and STOMP tests drive
# paho-mqtt, mosquitto_pub/sub, stomp.py and websocket-client; under CI=true a test that
# would skip for want of one of them fails instead. node and npm build the management web UI
# (www/, packages from the npm registry); WARREN_WITH_BROWSER=1 adds chromium for its test.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-all-dev libspdlog-dev libfmt-dev libcli11-dev libssl-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  amqp-specs python3 python3-pika python3-amqp python3-pytest amqp-tools librabbitmq-dev
  mount iproute2
  python3-paho-mqtt mosquitto-clients python3-stomp python3-websocket
)
# node and npm: Debian's, unless the machine already has them (a nodejs from elsewhere bundles
# its own npm, and Debian's npm package would conflict with it).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then PKGS+=(nodejs npm); fi
if [ "${WARREN_WITH_RABBITMQ:-0}" = 1 ]; then PKGS+=(rabbitmq-server); fi
# The web UI's browser test (tests/ui) drives Debian's chromium.
if [ "${WARREN_WITH_BROWSER:-0}" = 1 ]; then PKGS+=(chromium); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
