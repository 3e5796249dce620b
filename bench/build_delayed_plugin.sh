#!/usr/bin/env bash
# Builds RabbitMQ's community plugin rabbitmq-delayed-message-exchange for the installed
# (Debian) RabbitMQ, offline: erlc against the broker's own headers and beams. Debian does not
# package the plugin; bench/delayed_memory.sh compares Warren with it.
#
#   git clone https://github.com/rabbitmq/rabbitmq-delayed-message-exchange src
#   git -C src checkout e6c8b16    # the last 3.10.x version (RabbitMQ 3.10.8 is Debian 12's)
#   bash bench/build_delayed_plugin.sh src /tmp/delayed-plugin
#   RABBITMQ_DELAYED_PLUGIN_DIR=/tmp/delayed-plugin bash bench/delayed_memory.sh
set -euo pipefail

SRC=${1:?usage: build_delayed_plugin.sh PLUGIN_SOURCE_DIR OUT_DIR}
OUT=${2:?usage: build_delayed_plugin.sh PLUGIN_SOURCE_DIR OUT_DIR}
PLUGINS=$(dirname "$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbit_common-* | head -1)")
COMMON=$(ls -d "$PLUGINS"/rabbit_common-* | head -1)
RABBIT=$(ls -d "$PLUGINS"/rabbit-* | head -1)
VSN=3.10.2
EBIN="$OUT/rabbitmq_delayed_message_exchange-$VSN/ebin"
mkdir -p "$EBIN"
erlc -o "$EBIN" -I "$PLUGINS" -I "$COMMON/include" -pa "$COMMON/ebin" -pa "$RABBIT/ebin" \
  "$SRC"/src/*.erl
modules=$(cd "$EBIN" && ls ./*.beam | sed 's|^\./||; s|\.beam$||' | paste -sd, -)
cat >"$EBIN/rabbitmq_delayed_message_exchange.app" <<EOF
{application, rabbitmq_delayed_message_exchange, [
  {description, "RabbitMQ Delayed Message Exchange"},
  {vsn, "$VSN"},
  {modules, [$modules]},
  {registered, []},
  {applications, [kernel, stdlib, rabbit_common, rabbit]},
  {mod, {rabbit_delayed_message_app, []}},
  {env, []},
  {broker_version_requirements, ["3.10.0"]}
]}.
EOF
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$OUT"; fi
echo "built $EBIN"
