#!/usr/bin/env bash
# Broker memory per idle AMQP connection (one channel each), Warren vs RabbitMQ, one run.
#
#   bash bench/idle_connections.sh
#   BENCH_CONNECTIONS=5000 BENCH_BROKERS=warren bash bench/idle_connections.sh
#
# A fresh broker gets BENCH_CONNECTIONS (2000) pika connections with heartbeats off, each with
# one channel; bench/idle_connections.py prints the broker's RSS growth per connection (one JSON
# line per broker). WARREN_SERVER=path compares another Warren build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WARREN_SERVER=${WARREN_SERVER:-$ROOT/build/warren-server}
source "$ROOT/bench/lib.sh"

BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-2000}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}

build
make_workdir warren-idle-conns results.txt
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

for broker in $BENCH_BROKERS; do
  if [ "$broker" = warren ]; then
    start_warren idle
    /usr/bin/python3 bench/idle_connections.py "$PORT" "$WARREN_PID" "$BENCH_CONNECTIONS" \
      warren | tee -a "$RESULTS"
    stop_warren 30
  else
    rabbitmq_install
    rabbitmq_setup "$WORK/rabbitmq" "warren-idle-bench-$$@localhost"
    chown -R rabbitmq:rabbitmq "$RMQ_DIR" 2>/dev/null || true
    rabbitmq_launch
    rabbitmq_wait_up 180
    sleep 5
    /usr/bin/python3 bench/idle_connections.py "$PORT" "$(rabbitmq_beam_pid)" \
      "$BENCH_CONNECTIONS" rabbitmq | tee -a "$RESULTS"
    stop_rabbitmq
  fi
done
log "results in $RESULTS"
