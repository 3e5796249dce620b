#!/usr/bin/env bash
# STOMP throughput, Warren vs RabbitMQ 3.10's rabbitmq_stomp on this machine, one run each:
# fan-in (BENCH_FAN publishers -> 1 subscriber) and fan-out (1 publisher -> BENCH_FAN
# subscribers) on topic destinations, with ack:auto and no receipts, then with
# ack:client-individual and a receipt on every SEND, with build/warren-stomp-perf as the client.
#
#   bash bench/stomp_throughput.sh
#   BENCH_TIME=20 BENCH_SIZE=1024 BENCH_BROKERS=warren bash bench/stomp_throughput.sh
#
# Publishers write batches of SENDs to /topic/perf.<run>.<i> (with receipts: up to
# BENCH_WINDOW SENDs awaiting their RECEIPT each); subscribers on /topic/perf.<run>.# ACK every
# MESSAGE in client-individual mode, with prefetch-count BENCH_PREFETCH on the SUBSCRIBE.
# publish_rate counts SENDs written by the publishers, receive_rate MESSAGEs received by all
# subscribers together, over the run and its drain.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WARREN_SERVER=${WARREN_SERVER:-$ROOT/build/warren-server}
source "$ROOT/bench/lib.sh"

BENCH_TIME=${BENCH_TIME:-10}
BENCH_SIZE=${BENCH_SIZE:-16}
BENCH_FAN=${BENCH_FAN:-4}
BENCH_WINDOW=${BENCH_WINDOW:-1000}
BENCH_PREFETCH=${BENCH_PREFETCH:-100}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}
PERF=${WARREN_STOMP_PERF:-$ROOT/build/warren-stomp-perf}

build
make_workdir warren-stomp-throughput results.txt

run_all() {
  local mode shape
  for mode in "--ack auto" "--ack client-individual --receipts"; do
    for shape in "fan-in $BENCH_FAN 1" "fan-out 1 $BENCH_FAN"; do
      # shellcheck disable=SC2086  # shape: label and counts, split on spaces
      set -- $shape
      printf '{"broker": "%s", "shape": "%s", ' "$LABEL" "$1" | tee -a "$RESULTS"
      # shellcheck disable=SC2086  # mode: flags, split on spaces
      "$PERF" --port "$STOMP_PORT" -P "$2" -S "$3" $mode --window "$BENCH_WINDOW" \
        --prefetch "$BENCH_PREFETCH" --destination-kind topic -s "$BENCH_SIZE" -t "$BENCH_TIME" |
        sed 's/^{//' | tee -a "$RESULTS"
    done
  done
}

for broker in $BENCH_BROKERS; do
  STOMP_PORT=$(free_port)
  LABEL=$broker
  if [ "$broker" = warren ]; then
    WARREN_EXTRA_ARGS="--stomp-port $STOMP_PORT" start_warren stomp
    run_all
    stop_warren 60
  else
    start_rabbitmq_stomp "warren-stomp-perf-$$@localhost" "$STOMP_PORT"
    run_all
    stop_rabbitmq
  fi
done
log "results in $RESULTS"
