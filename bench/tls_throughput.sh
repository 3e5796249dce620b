#!/usr/bin/env bash
# Throughput over TLS (amqps) against plain AMQP, Warren and RabbitMQ on this machine, one run.
#
#   bash bench/tls_throughput.sh
#   BENCH_MESSAGES=2000000 BENCH_SIZES="16 1024" BENCH_ROUNDS=3 BENCH_BROKERS="warren rabbitmq" \
#     bash bench/tls_throughput.sh
#
# One broker of each kind is started with a plain and a TLS listener (a self-signed certificate
# generated here; warren-perf does not verify it). Each round runs, per message size, warren-perf
# (one producer, one consumer, no confirms) for BENCH_MESSAGES messages over amqp:// and then
# over amqps://, and prints the consumer's msg/s of both and the TLS/plain ratio. The medians of
# the rounds are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WARREN_SERVER=$ROOT/build/warren-server
WARREN_PERF=$ROOT/build/warren-perf
source "$ROOT/bench/lib.sh"

BENCH_MESSAGES=${BENCH_MESSAGES:-1000000}
BENCH_SIZES=${BENCH_SIZES:-"16 1024"}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}

build
make_workdir warren-tls-bench results.txt

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"

rate() {  # URI SIZE -> msg/s
  "$WARREN_PERF" --uri "$1" -C "$BENCH_MESSAGES" --size "$2" --json 2>/dev/null | tail -1 |
    /usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)["receive_rate"]))'
}

declare -A PLAIN_URI TLS_URI
for broker in $BENCH_BROKERS; do
  if [ "$broker" = warren ]; then
    mkdir -p "$WORK/warren-data"
    setsid "$WARREN_SERVER" --amqp-port 0 --amqps-port 0 --bind 127.0.0.1 --management-port 0 --prometheus-port 0 \
      --ssl-certfile "$WORK/cert.pem" --ssl-keyfile "$WORK/key.pem" \
      --data-dir "$WORK/warren-data" >"$WORK/warren.log" 2>&1 &
    WARREN_PID=$!
    warren_wait_listening "$WORK/warren.log"
    for _ in $(seq 1 50); do
      TLS_PORT=$(grep -o 'AMQPS listening on 127\.0\.0\.1:[0-9]*' "$WORK/warren.log" |
        grep -o '[0-9]*$' || true)
      [ -n "$TLS_PORT" ] && break
      sleep 0.1
    done
    PLAIN_URI[warren]="amqp://guest:guest@127.0.0.1:$PORT/"
    TLS_URI[warren]="amqps://guest:guest@127.0.0.1:$TLS_PORT/"
  else
    rabbitmq_install
    rabbitmq_setup "$WORK/rabbitmq" "warren-tls-bench-$$@localhost"
    TLS_PORT=$(free_port)
    cp "$WORK/cert.pem" "$WORK/key.pem" "$RMQ_DIR/"
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
listeners.ssl.default = $TLS_PORT
ssl_options.certfile = $RMQ_DIR/cert.pem
ssl_options.keyfile = $RMQ_DIR/key.pem
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOF
    if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$RMQ_DIR"; fi
    export RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq.conf
    rabbitmq_launch
    rabbitmq_wait_up 120
    wait_for_port "$TLS_PORT" "$RMQ_PID" 60
    PLAIN_URI[rabbitmq]="amqp://guest:guest@127.0.0.1:$PORT/"
    TLS_URI[rabbitmq]="amqps://guest:guest@127.0.0.1:$TLS_PORT/"
  fi
done

declare -A ALL
printf '%-9s %6s %5s %12s %12s %7s\n' broker size round plain_msg/s tls_msg/s tls/plain
for round in $(seq 1 "$BENCH_ROUNDS"); do
  for broker in $BENCH_BROKERS; do
    for size in $BENCH_SIZES; do
      p=$(rate "${PLAIN_URI[$broker]}" "$size")
      t=$(rate "${TLS_URI[$broker]}" "$size")
      ratio=$(/usr/bin/python3 -c "print(f'{$t/$p:.2f}')")
      printf '%-9s %6s %5s %12s %12s %7s\n' "$broker" "$size" "$round" "$p" "$t" "$ratio"
      ALL[$broker-$size]+="$p:$t "
    done
  done
done
echo "medians:"
for broker in $BENCH_BROKERS; do
  for size in $BENCH_SIZES; do
    /usr/bin/python3 - "$broker" "$size" ${ALL[$broker-$size]} <<'EOF'
import statistics, sys
broker, size, pairs = sys.argv[1], sys.argv[2], [p.split(":") for p in sys.argv[3:]]
plain = statistics.median(int(p) for p, _ in pairs)
tls = statistics.median(int(t) for _, t in pairs)
print(f"{broker:9} {size:>6} B  plain {plain:>10.0f} msg/s  tls {tls:>10.0f} msg/s  tls/plain {tls/plain:.2f}")
EOF
  done
done
