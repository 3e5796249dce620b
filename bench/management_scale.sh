#!/usr/bin/env bash
# The management API with many idle queues, Warren vs RabbitMQ on this machine, one run.
#
#   bash bench/management_scale.sh
#   BENCH_QUEUES="10000 100000" BENCH_RABBITMQ_QUEUES="10000" bash bench/management_scale.sh
#
# For each count, a fresh broker gets N idle queues (declared over AMQP), then
# bench/management_scale.py times GET /api/queues?page=1&page_size=100, the full /api/queues,
# /api/overview and Prometheus /metrics (median of 5), RSS per idle queue, and the longest
# publish->get round trip of a ping client while the full list is built. RabbitMQ (management
# and prometheus plugins) runs only the counts in BENCH_RABBITMQ_QUEUES: 100,000 classic queues
# take it many minutes to declare. Results: one JSON line per broker and count.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WARREN_SERVER=$ROOT/build/warren-server
source "$ROOT/bench/lib.sh"

BENCH_QUEUES=${BENCH_QUEUES:-"10000 100000"}
BENCH_RABBITMQ_QUEUES=${BENCH_RABBITMQ_QUEUES:-"10000"}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}

build
make_workdir warren-mgmt-scale results.txt

port_from_log() {  # LOG WHAT
  for _ in $(seq 1 100); do
    p=$(grep -o "$2 listening on 127\.0\.0\.1:[0-9]*" "$1" | head -1 | grep -o '[0-9]*$' || true)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}

for broker in $BENCH_BROKERS; do
  counts=$BENCH_QUEUES
  [ "$broker" = rabbitmq ] && counts=$BENCH_RABBITMQ_QUEUES
  for n in $counts; do
    if [ "$broker" = warren ]; then
      start_warren "scale-$n"
      MGMT=$(port_from_log "$WORK/warren-scale-$n.log" "management HTTP API")
      PROM=$(port_from_log "$WORK/warren-scale-$n.log" "Prometheus metrics")
      /usr/bin/python3 bench/management_scale.py "$PORT" "$MGMT" \
        "http://127.0.0.1:$PROM/metrics" "$WARREN_PID" "$n" warren | tee -a "$RESULTS"
      stop_warren 30
    else
      rabbitmq_install
      rabbitmq_setup "$WORK/rabbitmq-$n" "warren-mgmt-bench-$n-$$@localhost"
      echo '[rabbitmq_management,rabbitmq_prometheus].' >"$RMQ_DIR/plugins"
      MGMT=$(free_port)
      PROM=$(free_port)
      printf 'management.tcp.port = %s\nprometheus.tcp.port = %s\n' "$MGMT" "$PROM" >"$RMQ_DIR/rabbitmq.conf"
      chown -R rabbitmq:rabbitmq "$RMQ_DIR" 2>/dev/null || true
      export RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq.conf
      rabbitmq_launch
      rabbitmq_wait_up 180
      sleep 5
      /usr/bin/python3 bench/management_scale.py "$PORT" "$MGMT" \
        "http://127.0.0.1:$PROM/metrics" "$(rabbitmq_beam_pid)" "$n" rabbitmq | tee -a "$RESULTS"
      stop_rabbitmq
    fi
  done
done
log "results in $RESULTS"
