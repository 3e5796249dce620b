#!/usr/bin/env bash
# Broker memory per idle MQTT connection, Warren vs RabbitMQ 3.10's rabbitmq_mqtt, one run.
#
#   bash bench/mqtt_idle_connections.sh
#   BENCH_CONNECTIONS=5000 BENCH_SUBSCRIBE_QOS=1 BENCH_BROKERS=warren bash bench/mqtt_idle_connections.sh
#
# A fresh broker gets BENCH_CONNECTIONS (10000) MQTT connections (clean session, keep-alive off;
# with BENCH_SUBSCRIBE_QOS=0|1 one subscription each, which is a queue and a binding);
# bench/mqtt_idle_connections.py prints the broker's RSS growth per connection. The number of
# connections is capped by the open-file limit of this machine (the broker needs one descriptor
# per connection, and so does the client).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WARREN_SERVER=${WARREN_SERVER:-$ROOT/build/warren-server}
source "$ROOT/bench/lib.sh"

BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-10000}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}
BENCH_SUBSCRIBE_QOS=${BENCH_SUBSCRIBE_QOS:--1}

build
make_workdir warren-mqtt-idle results.txt
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

for broker in $BENCH_BROKERS; do
  MQTT_PORT=$(free_port)
  if [ "$broker" = warren ]; then
    WARREN_EXTRA_ARGS="--mqtt-port $MQTT_PORT" start_warren idle
    /usr/bin/python3 bench/mqtt_idle_connections.py "$MQTT_PORT" "$WARREN_PID" \
      "$BENCH_CONNECTIONS" warren "$BENCH_SUBSCRIBE_QOS" | tee -a "$RESULTS"
    stop_warren 60
  else
    start_rabbitmq_mqtt "warren-mqtt-idle-$$@localhost" "$MQTT_PORT"
    /usr/bin/python3 bench/mqtt_idle_connections.py "$MQTT_PORT" "$(rabbitmq_beam_pid)" \
      "$BENCH_CONNECTIONS" rabbitmq "$BENCH_SUBSCRIBE_QOS" | tee -a "$RESULTS"
    stop_rabbitmq
  fi
done
log "results in $RESULTS"
