#!/usr/bin/env bash
# Runs the same warren-perf load against Warren and against a private RabbitMQ instance and prints
# a table: scenario, Warren msg/s, RabbitMQ msg/s, ratio (msg/s = messages consumed per second).
#
# Environment:
#   BENCH_SECONDS     duration of each run (default 10)
#   BENCH_SCENARIOS   space-separated scenario names (default "16b 1k"); see scenario_args below
#                     for the built-in ones, or give your own as NAME=ARG,ARG,... (commas become
#                     spaces), e.g. "16b 4k=--size,4096 slow=--size,16,--rate,5000"
#   BENCH_BROKERS     which brokers to run (default "warren rabbitmq")
#   BENCH_RUNS        runs per scenario and broker; the median is reported (default 1)
#   BENCH_ORDER       "grouped" (default): every Warren run, then every RabbitMQ run;
#                     "interleaved": round by round, each scenario on one broker then the next,
#                     so a slow phase of a shared machine hits both brokers alike (the RabbitMQ
#                     node then stays up, idle, during the Warren runs)
#   BENCH_PAUSE       seconds to idle between runs (default 2)
#   BENCH_PERF_ARGS   extra warren-perf arguments for every run (e.g. "--prefetch 500")
#   BENCH_KEEP=1      keep the work directory (broker logs, per-run JSON) instead of deleting it
#   BENCH_SKIP_BUILD=1  use the binaries in build/ as they are
# Each broker is started fresh (Warren on a free port with a temporary data directory; RabbitMQ
# on free node/dist/epmd ports with its own mnesia/log directories) and stopped on exit.
# shellcheck disable=SC2119  # stop_warren / stop_rabbitmq take an optional timeout
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# This script always uses the binaries in build/ (bench/lib.sh would honour WARREN_SERVER and
# WARREN_PERF from the environment).
WARREN_SERVER=$ROOT/build/warren-server
WARREN_PERF=$ROOT/build/warren-perf
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-"16b 1k"}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}
BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_ORDER=${BENCH_ORDER:-grouped}
BENCH_PAUSE=${BENCH_PAUSE:-2}
BENCH_PERF_ARGS=${BENCH_PERF_ARGS:-}

# Built-in scenarios: 1 producer and 1 consumer with manual acks (warren-perf defaults: prefetch
# 1000, ack every 100 messages with multiple=true) unless the arguments say otherwise.
scenario_args() {
  case "$1" in
    16b) echo "--size 16" ;;
    1k) echo "--size 1024" ;;
    64k) echo "--size 65536" ;;
    16b-confirm) echo "--size 16 --confirm 1000 --persistent --durable" ;;
    1k-confirm) echo "--size 1024 --confirm 1000 --persistent --durable" ;;
    16b-autoack) echo "--size 16 --autoack" ;;
    16b-multi) echo "--size 16 --producers 2 --consumers 2 --queues 2" ;;
    # Queue features. The TTLs are far longer than a run: nothing expires, the cost measured is
    # that of carrying and checking them.
    16b-ttl) echo "--size 16 --queue-args x-message-ttl=60000" ;;
    16b-priority) echo "--size 16 --queue-args x-max-priority=10 --priority random:0-9" ;;
    16b-expiration) echo "--size 16 --expiration 60000" ;;
    *=*) echo "${1#*=}" | tr ',' ' ' ;;
    *) return 1 ;;
  esac
}

for s in $BENCH_SCENARIOS; do
  scenario_args "$s" >/dev/null || { log "unknown scenario '$s'"; exit 2; }
done
for b in $BENCH_BROKERS; do
  case "$b" in warren | rabbitmq) ;; *) log "unknown broker '$b'"; exit 2 ;; esac
done
case "$BENCH_ORDER" in grouped | interleaved) ;; *) log "unknown BENCH_ORDER '$BENCH_ORDER'"; exit 2 ;; esac

make_workdir warren-bench results.tsv

# delete_queues QUEUE ARGS: deletes the queue(s) a warren-perf run with ARGS declared on $PORT
# (QUEUE, or QUEUE-0..QUEUE-(N-1) with --queues N).
delete_queues() {
  local n
  n=$(echo " $2 " | grep -oE -- '--queues[ =][0-9]+' | tail -1 | grep -oE '[0-9]+$' || true)
  timeout 120 $PY - "$PORT" "$1" "${n:-1}" <<'EOF' || log "could not delete queue(s) $1"
import sys
import pika
port, queue, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = pika.BlockingConnection(pika.ConnectionParameters(
    host="127.0.0.1", port=port, heartbeat=0, blocked_connection_timeout=100,
    credentials=pika.PlainCredentials("guest", "guest")))
ch = conn.channel()
for q in [queue] if n == 1 else ["%s-%d" % (queue, i) for i in range(n)]:
    ch.queue_delete(queue=q)
conn.close()
EOF
}

# run_perf broker scenario run -> appends a line to $RESULTS
run_perf() {
  local broker=$1 name=$2 run=$3 args queue out
  args=$(scenario_args "$name")
  queue="bench-$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_' | cut -c1-60)-$run"
  out="$WORK/$broker-$queue"
  log "$broker / $name (run $run): warren-perf $args"
  # shellcheck disable=SC2086
  if timeout -k 5 $((BENCH_SECONDS + 60)) "$WARREN_PERF" --uri "amqp://guest:guest@127.0.0.1:$PORT/" --time "$BENCH_SECONDS" \
    --queue "$queue" --json $args $BENCH_PERF_ARGS >"$out.json" 2>"$out.log"; then :; else
    log "warren-perf failed against $broker ($name):"
    tail -5 "$out.log" >&2 || true
  fi
  grep -E '^(time|summary|  )' "$out.log" | tail -4 | sed "s/^/[$broker $name] /" >&2 || true
  # The RabbitMQ node serves every run: drop this run's queues (and their backlog, which the node
  # would otherwise carry, or expire, during the following runs). Warren is restarted instead.
  if [ "$broker" = rabbitmq ]; then delete_queues "$queue" "$args $BENCH_PERF_ARGS"; fi
  $PY - "$out.json" "$broker" "$name" >>"$RESULTS" <<'EOF'
import json, sys
path, broker, name = sys.argv[1:4]
try:
    lines = [l for l in open(path) if l.startswith("{")]
    r = json.loads(lines[-1])
    ok = r.get("ok") and r["received"] > 0
    lat = r["latency_us"]
    print("\t".join([broker, name, "ok" if ok else "error", "%.1f" % r["receive_rate"],
                     "%.1f" % r["send_rate"], "%.0f" % lat["p50"], "%.0f" % lat["p99"]]))
except Exception:
    print("\t".join([broker, name, "error", "0", "0", "0", "0"]))
EOF
  sleep "$BENCH_PAUSE"
}

# run_one broker scenario run: one run on a fresh Warren, or on the RabbitMQ node (started at
# its first run; a node that did not start gives error rows). PORT is the port of the broker at
# hand; RMQ_PORT keeps the node's while Warren runs in between.
RMQ_STATE=down
RMQ_PORT=""
run_one() {
  local broker=$1 name=$2 run=$3
  case "$broker" in
    warren)
      # A fresh broker per run: no backlog left over from the previous load.
      if start_warren "$name-$run"; then
        run_perf warren "$name" "$run"
        stop_warren
      else
        printf 'warren\t%s\terror\t0\t0\t0\t0\n' "$name" >>"$RESULTS"
      fi
      ;;
    rabbitmq)
      if [ "$RMQ_STATE" = down ]; then
        if start_rabbitmq; then RMQ_STATE=up RMQ_PORT=$PORT; else RMQ_STATE=failed; fi
      fi
      if [ "$RMQ_STATE" = up ]; then
        PORT=$RMQ_PORT
        run_perf rabbitmq "$name" "$run"
      else
        printf 'rabbitmq\t%s\terror\t0\t0\t0\t0\n' "$name" >>"$RESULTS"
      fi
      ;;
  esac
}

build
if [ "$BENCH_ORDER" = grouped ]; then
  for broker in $BENCH_BROKERS; do
    for name in $BENCH_SCENARIOS; do
      for run in $(seq 1 "$BENCH_RUNS"); do run_one "$broker" "$name" "$run"; done
    done
    if [ "$broker" = rabbitmq ] && [ "$RMQ_STATE" = up ]; then stop_rabbitmq; RMQ_STATE=down; fi
  done
else
  for run in $(seq 1 "$BENCH_RUNS"); do
    for name in $BENCH_SCENARIOS; do
      for broker in $BENCH_BROKERS; do run_one "$broker" "$name" "$run"; done
    done
  done
  stop_rabbitmq
fi

echo
echo "warren-perf, ${BENCH_SECONDS}s per run, ${BENCH_RUNS} run(s) ($BENCH_ORDER), $(nproc) CPU(s) shared by broker and load tool"
$PY - "$RESULTS" "$BENCH_SCENARIOS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
scenarios = sys.argv[2].split()
def cell(broker, name):
    runs = [r for r in rows if r[0] == broker and r[1] == name]
    good = [r for r in runs if r[2] == "ok"]
    if not runs:
        return None, "-", "-"
    if not good:
        return None, "error", "-"
    rate = statistics.median(float(r[3]) for r in good)
    best = min(good, key=lambda r: abs(float(r[3]) - rate))
    return rate, "%.0f" % rate, "%s/%s" % (best[5], best[6])
hdr = ("scenario", "Warren msg/s", "RabbitMQ msg/s", "ratio", "Warren p50/p99 us",
       "RabbitMQ p50/p99 us")
fmt = "%-22s %14s %15s %8s %19s %20s"
print(fmt % hdr)
for name in scenarios:
    w, ws, wl = cell("warren", name)
    r, rs, rl = cell("rabbitmq", name)
    ratio = "%.2fx" % (w / r) if w and r else "-"
    print(fmt % (name[:22], ws, rs, ratio, wl, rl))
EOF
