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
#   BENCH_PAUSE       seconds to idle between runs (default 2)
#   BENCH_PERF_ARGS   extra warren-perf arguments for every run (e.g. "--prefetch 500")
#   BENCH_KEEP=1      keep the work directory (broker logs, per-run JSON) instead of deleting it
#   BENCH_SKIP_BUILD=1  use the binaries in build/ as they are
# Each broker is started fresh (Warren on a free port with a temporary data directory; RabbitMQ
# on free node/dist/epmd ports with its own mnesia/log directories) and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-"16b 1k"}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}
BENCH_RUNS=${BENCH_RUNS:-1}
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
    *=*) echo "${1#*=}" | tr ',' ' ' ;;
    *) return 1 ;;
  esac
}

log() { echo "[bench] $*" >&2; }

for s in $BENCH_SCENARIOS; do
  scenario_args "$s" >/dev/null || { log "unknown scenario '$s'"; exit 2; }
done

WORK=$(mktemp -d /tmp/warren-bench.XXXXXX)
chmod 755 "$WORK"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
WARREN_PID=""
RMQ_PID=""
RMQ_NODE=""
RMQ_EPMD=""

stop_warren() {
  if [ -n "$WARREN_PID" ]; then
    kill -TERM -- "-$WARREN_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$WARREN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$WARREN_PID" 2>/dev/null || true
    wait "$WARREN_PID" 2>/dev/null || true
    WARREN_PID=""
  fi
}

stop_rabbitmq() {
  if [ -n "$RMQ_PID" ]; then
    ERL_EPMD_PORT=$RMQ_EPMD timeout 60 rabbitmqctl -n "$RMQ_NODE" stop >/dev/null 2>&1 || true
    kill -TERM -- "-$RMQ_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$RMQ_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$RMQ_PID" 2>/dev/null || true
    wait "$RMQ_PID" 2>/dev/null || true
    # The epmd this node started on its private port; refuses while nodes are still registered.
    ERL_EPMD_PORT=$RMQ_EPMD epmd -kill >/dev/null 2>&1 || true
    RMQ_PID=""
  fi
}

cleanup() {
  stop_warren
  stop_rabbitmq
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {  # port pid seconds
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

build() {
  if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
    return 0
  elif [ ! -x build/warren-server ] || [ ! -x build/warren-perf ]; then
    log "building Warren (scripts/build.sh)"
    bash scripts/build.sh
  else
    cmake --build build --target warren-server warren-perf >/dev/null
  fi
}

# Sets PORT, or returns non-zero when Warren does not come up.
start_warren() {
  local data="$WORK/warren-data-$1" logf="$WORK/warren-$1.log"
  mkdir -p "$data"
  # In a session of its own (setsid in a background job does not fork, so $! is the server and
  # its process group): the script can stop it as a group, and it cannot signal the script's.
  setsid "$ROOT/build/warren-server" --amqp-port 0 --bind 127.0.0.1 --management-port 0 \
    --data-dir "$data" >"$logf" 2>&1 &
  WARREN_PID=$!
  PORT=""
  for _ in $(seq 1 100); do
    PORT=$(grep -o 'AMQP listening on 127\.0\.0\.1:[0-9]*' "$logf" 2>/dev/null | tail -1 |
      grep -o '[0-9]*$' || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$WARREN_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "Warren did not start; its log:"
  tail -20 "$logf" >&2 || true
  stop_warren
  return 1
}

# Sets PORT, or returns non-zero when RabbitMQ does not come up.
start_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null; then
    log "installing rabbitmq-server"
    WARREN_WITH_RABBITMQ=1 bash scripts/install-deps.sh
  fi
  local dir="$WORK/rabbitmq"
  mkdir -p "$dir/mnesia" "$dir/log"
  echo '[].' >"$dir/plugins"
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$dir"; fi
  PORT=$(free_port)
  local dist
  dist=$(free_port)
  RMQ_EPMD=$(free_port)
  RMQ_NODE="warren-bench-$$@localhost"
  log "starting RabbitMQ $RMQ_NODE on port $PORT"
  (cd "$dir" && RABBITMQ_NODE_PORT=$PORT RABBITMQ_DIST_PORT=$dist RABBITMQ_NODENAME=$RMQ_NODE \
    RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log \
    RABBITMQ_ENABLED_PLUGINS_FILE=$dir/plugins ERL_EPMD_PORT=$RMQ_EPMD \
    exec setsid rabbitmq-server >"$dir/stdout.log" 2>&1) &
  RMQ_PID=$!
  if ! wait_for_port "$PORT" "$RMQ_PID" 120; then
    log "RabbitMQ did not start; its output:"
    tail -20 "$dir/stdout.log" >&2 || true
    stop_rabbitmq
    return 1
  fi
  sleep 2  # the listener opens just before boot completes
}

# run_perf broker scenario run -> appends a line to $RESULTS
run_perf() {
  local broker=$1 name=$2 run=$3 args queue out
  args=$(scenario_args "$name")
  queue="bench-$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_' | cut -c1-60)-$run"
  out="$WORK/$broker-$queue"
  log "$broker / $name (run $run): warren-perf $args"
  # shellcheck disable=SC2086
  if timeout -k 5 $((BENCH_SECONDS + 60)) "$ROOT/build/warren-perf" --uri "amqp://guest:guest@127.0.0.1:$PORT/" --time "$BENCH_SECONDS" \
    --queue "$queue" --json $args $BENCH_PERF_ARGS >"$out.json" 2>"$out.log"; then :; else
    log "warren-perf failed against $broker ($name):"
    tail -5 "$out.log" >&2 || true
  fi
  grep -E '^(time|summary|  )' "$out.log" | tail -4 | sed "s/^/[$broker $name] /" >&2 || true
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

build
for broker in $BENCH_BROKERS; do
  case "$broker" in
    warren)
      for name in $BENCH_SCENARIOS; do
        for run in $(seq 1 "$BENCH_RUNS"); do
          # A fresh broker per run: no backlog left over from the previous load.
          if start_warren "$name-$run"; then
            run_perf warren "$name" "$run"
            stop_warren
          else
            printf 'warren\t%s\terror\t0\t0\t0\t0\n' "$name" >>"$RESULTS"
          fi
        done
      done
      ;;
    rabbitmq)
      if start_rabbitmq; then
        for name in $BENCH_SCENARIOS; do
          for run in $(seq 1 "$BENCH_RUNS"); do run_perf rabbitmq "$name" "$run"; done
        done
        stop_rabbitmq
      else
        for name in $BENCH_SCENARIOS; do
          printf 'rabbitmq\t%s\terror\t0\t0\t0\t0\n' "$name" >>"$RESULTS"
        done
      fi
      ;;
    *) log "unknown broker '$broker'"; exit 2 ;;
  esac
done

echo
echo "warren-perf, ${BENCH_SECONDS}s per run, $(nproc) CPU(s) shared by broker and load tool"
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
