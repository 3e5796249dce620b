#!/usr/bin/env bash
# Memory of a million delayed messages: publishes DELAYED_COUNT messages of DELAYED_SIZE bytes
# with an hour's delay to an x-delayed-message exchange (bench/delayed_load.py) and reports the
# broker's resident memory (VmRSS; VmHWM is the peak) before and after, for Warren and, when the
# plugin is at hand, for RabbitMQ with rabbitmq-delayed-message-exchange (which keeps every
# delayed message in a Mnesia RAM table). For Warren it also restarts the broker on the same
# data directory and reports the recovery and the RSS after it.
#
#   bash bench/delayed_memory.sh
#   DELAYED_COUNT=200000 DELAYED_MODES=transient DELAYED_BROKERS=warren bash bench/delayed_memory.sh
#   RABBITMQ_DELAYED_PLUGIN_DIR=/tmp/plugin bash bench/delayed_memory.sh
#
# Environment: DELAYED_COUNT (1000000), DELAYED_SIZE (100), DELAYED_DELAY_MS (3600000),
# DELAYED_MODES ("persistent transient": persistent messages on a durable exchange, transient
# ones on a transient exchange), DELAYED_BROKERS ("warren rabbitmq"), BENCH_KEEP (keep the work
# directory), BENCH_SKIP_BUILD, RABBITMQ_DELAYED_PLUGIN_DIR: a directory holding the plugin
# (rabbitmq_delayed_message_exchange-<version>/ with an ebin/, or the .ez); without it RabbitMQ
# is skipped. The plugin is not packaged by Debian; bench/build_delayed_plugin.sh builds it from
# a checkout of github.com/rabbitmq/rabbitmq-delayed-message-exchange with the installed
# RabbitMQ's headers (no network).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

COUNT=${DELAYED_COUNT:-1000000}
SIZE=${DELAYED_SIZE:-100}
DELAY=${DELAYED_DELAY_MS:-3600000}
MODES=${DELAYED_MODES:-persistent transient}
BROKERS=${DELAYED_BROKERS:-warren rabbitmq}

make_workdir warren-delayed results.txt

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f MB", kb / 1024}'; }

# settled_rss PID: VmRSS once it stops changing by more than 1 MB between two reads 1 s apart
# (the broker may still be writing or freeing right after the last confirm), at most 30 s.
settled_rss() {
  local prev now i
  prev=$(rss_kb "$1")
  for i in $(seq 1 30); do
    sleep 1
    now=$(rss_kb "$1")
    if [ $((now - prev)) -lt 1024 ] && [ $((prev - now)) -lt 1024 ]; then break; fi
    prev=$now
  done
  echo "$now"
}

report() { echo "$*" | tee -a "$RESULTS"; }

load() {  # port mode
  local flag=""
  [ "$2" = persistent ] && flag=--persistent
  $PY bench/delayed_load.py --port "$1" --count "$COUNT" --size "$SIZE" --delay "$DELAY" $flag
}

bench_warren() {  # mode
  local mode=$1 data before after hwm out restored
  build
  data="$WORK/warren-data-$mode"
  warren_launch "$data" "$WORK/warren-$mode.log"
  warren_wait_listening "$WORK/warren-$mode.log"
  before=$(settled_rss "$WARREN_PID")
  log "Warren ($mode): publishing $COUNT delayed messages of $SIZE bytes"
  out=$(load "$PORT" "$mode")
  after=$(settled_rss "$WARREN_PID")
  hwm=$(hwm_kb "$WARREN_PID")
  report "warren $mode: load $out"
  report "warren $mode: RSS before $(mb "$before"), after $COUNT delayed $(mb "$after")" \
    "(peak $(mb "$hwm")); data dir $(du -sh "$data" | cut -f1)"
  if [ "$mode" = persistent ]; then
    stop_warren 60
    warren_launch "$data" "$WORK/warren-$mode-restart.log"
    warren_wait_listening "$WORK/warren-$mode-restart.log"
    restored=$(grep -o '[0-9]* delayed messages restored' "$WORK/warren-$mode-restart.log" || true)
    after=$(settled_rss "$WARREN_PID")
    hwm=$(hwm_kb "$WARREN_PID")
    report "warren $mode: after a restart: ${restored:-no delayed messages restored};" \
      "$(grep -o 'recovered: .* in [0-9.]* s' "$WORK/warren-$mode-restart.log" | head -1)"
    report "warren $mode: RSS after the restart $(mb "$after") (peak $(mb "$hwm"))"
  fi
  stop_warren 60
}

bench_rabbitmq() {  # mode
  local mode=$1 beam before after hwm out
  if [ -z "${RABBITMQ_DELAYED_PLUGIN_DIR:-}" ]; then
    report "rabbitmq $mode: skipped (set RABBITMQ_DELAYED_PLUGIN_DIR; the plugin is not in Debian)"
    return 0
  fi
  rabbitmq_install
  rabbitmq_setup "$WORK/rabbitmq-$mode" "warren-delayed-$$-$mode@localhost"
  echo '[rabbitmq_delayed_message_exchange].' >"$RMQ_DIR/plugins"
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq:rabbitmq "$RMQ_DIR"
  fi
  local core
  core=$(dirname "$(ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbit-* | head -1)")
  export RABBITMQ_PLUGINS_DIR="$core:$RABBITMQ_DELAYED_PLUGIN_DIR"
  log "starting RabbitMQ $RMQ_NODE with the delayed-message plugin on port $PORT"
  rabbitmq_launch
  rabbitmq_wait_up 120
  beam=$(rabbitmq_beam_pid)
  before=$(settled_rss "$beam")
  log "RabbitMQ ($mode): publishing $COUNT delayed messages of $SIZE bytes"
  out=$(load "$PORT" "$mode")
  after=$(settled_rss "$beam")
  hwm=$(hwm_kb "$beam")
  report "rabbitmq $mode: load $out"
  report "rabbitmq $mode: RSS before $(mb "$before"), after $COUNT delayed $(mb "$after")" \
    "(peak $(mb "$hwm")); mnesia dir $(du -sh "$RMQ_DIR/mnesia" | cut -f1)"
  stop_rabbitmq 60
}

for broker in $BROKERS; do
  for mode in $MODES; do
    "bench_$broker" "$mode"
  done
done
echo
cat "$RESULTS"
