#!/usr/bin/env bash
# MQTT throughput, Warren vs RabbitMQ 3.10's rabbitmq_mqtt on this machine, one run each:
# fan-in (BENCH_FAN publishers -> 1 subscriber) and fan-out (1 publisher -> BENCH_FAN
# subscribers), at QoS 0 and QoS 1, with build/warren-mqtt-perf as the client.
#
#   bash bench/mqtt_throughput.sh
#   BENCH_TIME=20 BENCH_SIZE=1024 BENCH_BROKERS=warren bash bench/mqtt_throughput.sh
#
# Publishers write batches (QoS 1: up to 1000 PUBLISHes awaiting PUBACK each); subscribers
# PUBACK what they get (the broker allows mqtt.prefetch = 10 unacknowledged, both brokers).
# publish_rate counts messages written by the publishers (QoS 1: acknowledged), receive_rate
# messages received by all subscribers together, over the run and its drain.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WARREN_SERVER=${WARREN_SERVER:-$ROOT/build/warren-server}
source "$ROOT/bench/lib.sh"

BENCH_TIME=${BENCH_TIME:-10}
BENCH_SIZE=${BENCH_SIZE:-16}
BENCH_FAN=${BENCH_FAN:-4}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}
PERF=${WARREN_MQTT_PERF:-$ROOT/build/warren-mqtt-perf}

build
make_workdir warren-mqtt-throughput results.txt

run_all() {  # label port
  local qos
  for qos in 0 1; do
    for shape in "fan-in $BENCH_FAN 1" "fan-out 1 $BENCH_FAN"; do
      set -- $shape
      printf '{"broker": "%s", "shape": "%s", ' "$LABEL" "$1" | tee -a "$RESULTS"
      "$PERF" --port "$MQTT_PORT" -P "$2" -S "$3" -q "$qos" -s "$BENCH_SIZE" -t "$BENCH_TIME" |
        sed 's/^{//' | tee -a "$RESULTS"
    done
  done
}

for broker in $BENCH_BROKERS; do
  MQTT_PORT=$(free_port)
  LABEL=$broker
  if [ "$broker" = warren ]; then
    WARREN_EXTRA_ARGS="--mqtt-port $MQTT_PORT" start_warren mqtt
    run_all
    stop_warren 60
  else
    start_rabbitmq_mqtt "warren-mqtt-perf-$$@localhost" "$MQTT_PORT"
    run_all
    stop_rabbitmq
  fi
done
log "results in $RESULTS"
