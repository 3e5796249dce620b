#!/usr/bin/env bash
# Durability benchmark: persistent messages in durable queues, Warren against a private RabbitMQ
# node on the same machine. Prints a markdown table (Warren, RabbitMQ, Warren/RabbitMQ) and writes
# it, with the raw JSON lines, to bench/results/durability-<date>.md. See bench/README.md.
#
#   1. live:    4 publishers (confirm window 1000 each), 2 consumers, persistent 16 B and 1 KiB
#               bodies into a durable queue for BENCH_SECONDS: confirmed msg/s, confirm latency.
#   2. backlog: the same publishers, no consumer, BENCH_BACKLOG messages of 16 B in total:
#               confirmed msg/s, broker RSS and disk (data dir) growth per queued message.
#   3. restart: clean stop (SIGTERM / rabbitmqctl stop), start again, seconds until a passive
#               queue.declare reports message_count == BENCH_BACKLOG; then the same after kill -9.
#   4. consume: 1 consumer with manual acks drains the backlog: msg/s.
#
# Environment:
#   BENCH_SECONDS          duration of each live run (default 10)
#   BENCH_BACKLOG          messages in the backlog, a multiple of 4 (default 1000000)
#   BENCH_BACKLOG_SIZE     body size of the backlog messages in bytes (default 16)
#   BENCH_BROKERS          which brokers to run (default "warren rabbitmq")
#   BENCH_KILL9            brokers that also get the kill -9 restart (default "warren rabbitmq")
#   BENCH_PAUSE            seconds to idle between runs (default 2)
#   BENCH_SETTLE           seconds to idle before reading RSS and disk usage (default 2)
#   BENCH_STOP_TIMEOUT     seconds a clean stop may take before SIGKILL (default 300)
#   BENCH_RESTART_TIMEOUT  seconds a restart may take to report the backlog (default 600)
#   BENCH_RUN_TIMEOUT      cap in seconds for the backlog publish and consume runs (default 3600)
#   BENCH_RESULTS_DIR      where the result file goes (default bench/results)
#   BENCH_KEEP=1           keep the work directory (broker logs and data, warren-perf output)
#   BENCH_SKIP_BUILD=1     do not build; the binaries are used as they are
#   WARREN_SERVER, WARREN_PERF  binaries to use (default build/warren-server, build/warren-perf;
#                          nothing is built when either is set)
# shellcheck disable=SC2119  # stop_warren / stop_rabbitmq take an optional timeout
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -n "${WARREN_SERVER:-}${WARREN_PERF:-}" ]; then BENCH_SKIP_BUILD=1; fi
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_BACKLOG=${BENCH_BACKLOG:-1000000}
BENCH_BACKLOG_SIZE=${BENCH_BACKLOG_SIZE:-16}
BENCH_BROKERS=${BENCH_BROKERS:-"warren rabbitmq"}
BENCH_KILL9=${BENCH_KILL9-"warren rabbitmq"}
BENCH_PAUSE=${BENCH_PAUSE:-2}
BENCH_SETTLE=${BENCH_SETTLE:-2}
BENCH_STOP_TIMEOUT=${BENCH_STOP_TIMEOUT:-300}
BENCH_RESTART_TIMEOUT=${BENCH_RESTART_TIMEOUT:-600}
BENCH_RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-3600}
BENCH_RESULTS_DIR=${BENCH_RESULTS_DIR:-$ROOT/bench/results}

PRODUCERS=4
CONSUMERS=2
CONFIRM=1000
BACKLOG_QUEUE=dur-backlog

if [ $((BENCH_BACKLOG % PRODUCERS)) != 0 ] || [ "$BENCH_BACKLOG" -le 0 ]; then
  log "BENCH_BACKLOG must be a positive multiple of $PRODUCERS"; exit 2
fi
for b in $BENCH_BROKERS; do
  case "$b" in warren | rabbitmq) ;; *) log "unknown broker '$b'"; exit 2 ;; esac
done
$PY -c 'import pika' 2>/dev/null || { log "$PY lacks pika (apt-get install python3-pika)"; exit 2; }

make_workdir warren-durability results.jsonl

# ---- small helpers ----

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# record BROKER TEST KEY=VALUE...: appends one JSON line to $RESULTS (numbers, true, false and
# null stay bare; anything else becomes a string).
record() {
  local j="{\"broker\":\"$1\",\"test\":\"$2\"" kv k v
  shift 2
  for kv in "$@"; do
    k=${kv%%=*}
    v=${kv#*=}
    if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ || $v =~ ^(true|false|null)$ ]]; then
      j+=",\"$k\":$v"
    else
      j+=",\"$k\":\"${v//[\"\\]/_}\""
    fi
  done
  echo "$j}" >>"$RESULTS"
  log "result: ${j#\{}"
}

# A tiny pika client for what warren-perf does not do.
#   wait-count PORT QUEUE N T0 TIMEOUT PID: polls (connect, passive queue.declare) until the queue
#     reports N messages; prints "listen_s=<first connection> ready_s=<count == N> count=<last>"
#     with times relative to T0 (epoch seconds); exit status 1 on timeout or when PID exits.
#   count PORT QUEUE: prints the message count.   delete PORT QUEUE: deletes the queue.
cat >"$WORK/amqp.py" <<'EOF'
import logging, os, sys, time
import pika
logging.disable(logging.CRITICAL)  # pika logs every refused connection attempt

def params(port):
    return pika.ConnectionParameters(host="127.0.0.1", port=int(port), heartbeat=0,
                                     connection_attempts=1, socket_timeout=5,
                                     credentials=pika.PlainCredentials("guest", "guest"))

op = sys.argv[1]
if op == "wait-count":
    port, queue, n, t0, timeout = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    pid = int(sys.argv[7])
    listen, count, conn, ch = None, None, None, None
    while time.time() - t0 < timeout:
        try:
            os.kill(pid, 0)
        except OSError:
            print("broker process %d exited" % pid, file=sys.stderr)
            break
        try:
            if conn is None or not conn.is_open:
                conn = pika.BlockingConnection(params(port))
                if listen is None:
                    listen = time.time() - t0
                ch = None
            if ch is None or not ch.is_open:
                ch = conn.channel()
            count = ch.queue_declare(queue=queue, passive=True).method.message_count
            if count == n:
                print("listen_s=%.2f ready_s=%.2f count=%d" % (listen, time.time() - t0, count))
                sys.exit(0)
        except pika.exceptions.ChannelClosedByBroker:
            ch = None  # e.g. 404 while the queue is not recovered yet
        except (pika.exceptions.AMQPError, OSError):
            conn = None
        time.sleep(0.05)
    print("listen_s=%s ready_s=null count=%s" % ("%.2f" % listen if listen is not None else "null",
                                                 count if count is not None else "null"))
    sys.exit(1)
conn = pika.BlockingConnection(params(sys.argv[2]))
ch = conn.channel()
if op == "count":
    print(ch.queue_declare(queue=sys.argv[3], passive=True).method.message_count)
elif op == "delete":
    ch.queue_delete(queue=sys.argv[3])
conn.close()
EOF
amqp() {
  if [ "$1" = wait-count ]; then
    timeout $((BENCH_RESTART_TIMEOUT + 30)) $PY "$WORK/amqp.py" "$@"
  else
    timeout 60 $PY "$WORK/amqp.py" "$@"
  fi
}

# perf NAME TIMEOUT ARGS...: runs warren-perf against $PORT with --json; prints the fields of its
# summary as KEY=VALUE words for record (ok=false when it failed or printed no summary).
perf() {
  local name=$1 cap=$2 out="$WORK/$CUR_BROKER-$1"
  shift 2
  log "$CUR_BROKER / $name: warren-perf $*"
  if timeout -k 5 "$cap" "$WARREN_PERF" --port "$PORT" --json "$@" >"$out.json" 2>"$out.log"; then :; else
    log "warren-perf failed against $CUR_BROKER ($name):"
    tail -5 "$out.log" >&2 || true
  fi
  grep -E '^(summary|  )' "$out.log" | sed "s/^/[$CUR_BROKER $name] /" >&2 || true
  $PY - "$out.json" <<'EOF'
import json, sys
try:
    r = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
except Exception:
    print("ok=false")
    sys.exit(0)
lat, clat = r["latency_us"], r["confirm_latency_us"]
print("ok=%s stop_reason=%s duration_s=%.3f sent=%d confirmed=%d nacked=%d received=%d "
      "send_rate=%.1f confirm_rate=%.1f receive_rate=%.1f latency_p50_ms=%.3f latency_p99_ms=%.3f "
      "confirm_p50_ms=%.3f confirm_p99_ms=%.3f" % (
          "true" if r.get("ok") else "false", r["stop_reason"].replace(" ", "_"), r["duration_s"],
          r["sent"], r["confirmed"], r["nacked"], r["received"], r["send_rate"],
          r["confirm_rate"], r["receive_rate"], lat["p50"] / 1000, lat["p99"] / 1000,
          clat["p50"] / 1000, clat["p99"] / 1000))
EOF
}

# ---- per-broker operations (CUR_BROKER is warren or rabbitmq) ----

# broker_start_fresh NAME: a broker with an empty data directory; sets PORT (fixed, so that the
# broker can be restarted on it) and DATA (the directory whose size is measured).
broker_start_fresh() {
  LAUNCHES=0
  if [ "$CUR_BROKER" = warren ]; then
    DATA="$WORK/warren-$1-data"
    PORT=$(free_port)
    log "starting Warren ($WARREN_SERVER) on port $PORT, data in $DATA"
    warren_launch "$DATA" "$WORK/warren-$1-0.log" "$PORT"
    warren_wait_listening "$WORK/warren-$1-0.log"
  else
    rabbitmq_install
    rabbitmq_setup "$WORK/rabbitmq-$1" "warren-dur-$$-$1@localhost"
    DATA="$RMQ_DIR/mnesia"
    log "starting RabbitMQ $RMQ_NODE on port $PORT, mnesia in $DATA"
    rabbitmq_launch
    rabbitmq_wait_up 120
  fi
}

# broker_relaunch NAME: starts the broker again on the same data directory and port (no wait).
broker_relaunch() {
  LAUNCHES=$((LAUNCHES + 1))
  if [ "$CUR_BROKER" = warren ]; then
    warren_launch "$DATA" "$WORK/warren-$1-$LAUNCHES.log" "$PORT"
  else
    rabbitmq_launch
  fi
}

broker_stop() {  # [SECONDS]: clean stop; sets STOP_FORCED
  if [ "$CUR_BROKER" = warren ]; then stop_warren "${1:-10}"; else stop_rabbitmq "${1:-10}"; fi
}
broker_stop_keep_epmd() {  # SECONDS: clean stop of the node only (RabbitMQ's epmd stays up)
  if [ "$CUR_BROKER" = warren ]; then stop_warren "$1"; else rabbitmq_stop_node "$1"; fi
}
broker_kill() {
  if [ "$CUR_BROKER" = warren ]; then kill_warren; else rabbitmq_kill; fi
}
broker_rss_kib() {  # resident set size of the broker process (RabbitMQ: its beam.smp)
  local pid
  if [ "$CUR_BROKER" = warren ]; then pid=$WARREN_PID; else pid=$(rabbitmq_beam_pid); fi
  if [ -n "$pid" ]; then ps -o rss= -p "$pid" | tr -d ' '; else echo null; fi
}
data_bytes() { du -sb "$DATA" | cut -f1; }
per_msg() {  # BEFORE AFTER UNIT: (AFTER - BEFORE) * UNIT / BENCH_BACKLOG, or null
  awk -v a="$1" -v b="$2" -v u="$3" -v n="$BENCH_BACKLOG" \
    'BEGIN { if (a == "null" || b == "null" || a == "" || b == "") print "null"; else printf "%.1f", (b - a) * u / n }'
}

# ---- the four measurements ----

live_runs() {
  if ! broker_start_fresh live; then record "$CUR_BROKER" start ok=false; return 0; fi
  local size name
  for size in 16 1024; do
    name="live-$([ "$size" = 16 ] && echo 16b || echo 1k)"
    # shellcheck disable=SC2046
    record "$CUR_BROKER" "$name" $(perf "$name" $((BENCH_SECONDS + 120)) \
      -x $PRODUCERS -y $CONSUMERS -c $CONFIRM --persistent --durable -s "$size" \
      --time "$BENCH_SECONDS" --queue "dur-$name")
    amqp delete "$PORT" "dur-$name" || log "could not delete queue dur-$name"
    sleep "$BENCH_PAUSE"
  done
  broker_stop 60
}

# wait_backlog TEST T0: polls until the restarted broker reports the whole backlog; records it.
wait_backlog() {
  local out st=0 rss
  local pid=$WARREN_PID
  if [ "$CUR_BROKER" = rabbitmq ]; then pid=$RMQ_PID; fi
  out=$(amqp wait-count "$PORT" "$BACKLOG_QUEUE" "$BENCH_BACKLOG" "$2" "$BENCH_RESTART_TIMEOUT" "$pid") &&
    st=0 || st=$?
  rss=$(broker_rss_kib)
  if [ $st = 0 ]; then ok=true; else ok=false; log "$CUR_BROKER did not report $BENCH_BACKLOG messages: $out"; fi
  # shellcheck disable=SC2086
  record "$CUR_BROKER" "$1" ok=$ok $out rss_kib="$rss"
  [ $st = 0 ]
}

backlog_runs() {
  local n=$BENCH_BACKLOG rss0 rss1 du0 du1 t0 t1 fields count
  if ! broker_start_fresh backlog; then record "$CUR_BROKER" start ok=false; return 0; fi
  sleep "$BENCH_SETTLE"
  rss0=$(broker_rss_kib)
  du0=$(data_bytes)
  fields=$(perf backlog "$BENCH_RUN_TIMEOUT" -x $PRODUCERS -y 0 -c $CONFIRM --persistent --durable \
    -s "$BENCH_BACKLOG_SIZE" -C $((n / PRODUCERS)) --time "$BENCH_RUN_TIMEOUT" --queue "$BACKLOG_QUEUE")
  sleep "$BENCH_SETTLE"
  rss1=$(broker_rss_kib)
  du1=$(data_bytes)
  count=$(amqp count "$PORT" "$BACKLOG_QUEUE" || echo null)
  # shellcheck disable=SC2086
  record "$CUR_BROKER" backlog $fields messages="$n" queue_count="$count" rss_before_kib="$rss0" \
    rss_after_kib="$rss1" data_before_bytes="$du0" data_after_bytes="$du1" \
    mem_per_msg="$(per_msg "$rss0" "$rss1" 1024)" \
    disk_per_msg="$(per_msg "$du0" "$du1" 1)"
  if [ "$count" != "$n" ]; then
    log "$CUR_BROKER holds $count messages, not $n; skipping the restart and consume runs"
    record "$CUR_BROKER" restart ok=false
    broker_stop 60
    return 0
  fi

  # 3. Clean stop and restart.
  log "$CUR_BROKER: clean stop with $n messages"
  t0=$(now)
  broker_stop_keep_epmd "$BENCH_STOP_TIMEOUT"
  t1=$(now)
  record "$CUR_BROKER" stop ok="$([ "$STOP_FORCED" = 0 ] && echo true || echo false)" \
    stop_s="$(elapsed "$t0" "$t1")" forced="$STOP_FORCED" data_bytes="$(data_bytes)"
  log "$CUR_BROKER: restart"
  t0=$(now)
  broker_relaunch backlog
  if ! wait_backlog restart "$t0"; then broker_stop 60; return 0; fi

  # 3b. kill -9 and restart.
  if [[ " $BENCH_KILL9 " == *" $CUR_BROKER "* ]]; then
    sleep "$BENCH_SETTLE"
    log "$CUR_BROKER: kill -9 and restart"
    broker_kill
    t0=$(now)
    broker_relaunch backlog
    if ! wait_backlog restart-kill9 "$t0"; then broker_stop 60; return 0; fi
  fi

  # 4. Drain the backlog with one consumer.
  sleep "$BENCH_PAUSE"
  # shellcheck disable=SC2046
  record "$CUR_BROKER" consume $(perf consume "$BENCH_RUN_TIMEOUT" -x 0 -y 1 -D "$n" --no-purge \
    --durable --time "$BENCH_RUN_TIMEOUT" --queue "$BACKLOG_QUEUE")
  broker_stop 60
}

# ---- main ----

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then build; fi
for b in $BENCH_BROKERS; do
  [ "$b" = warren ] && [ ! -x "$WARREN_SERVER" ] && { log "no $WARREN_SERVER"; exit 2; }
done
[ -x "$WARREN_PERF" ] || { log "no $WARREN_PERF"; exit 2; }

STARTED=$(date '+%Y-%m-%d %H:%M:%S %Z')
for CUR_BROKER in $BENCH_BROKERS; do
  live_runs
  sleep "$BENCH_PAUSE"
  backlog_runs
done

RMQ_VERSION=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo "?")
mkdir -p "$BENCH_RESULTS_DIR"
OUT="$BENCH_RESULTS_DIR/durability-$(date +%Y%m%d-%H%M%S).md"
$PY - "$RESULTS" >"$OUT" <<EOF
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def get(broker, test, field):
    r = [x for x in rows if x["broker"] == broker and x["test"] == test]
    if not r:
        return None, "-"
    r = r[-1]
    v = r.get(field)
    if r.get("ok") is False or v is None:
        return None, "error"
    return float(v), None
n = $BENCH_BACKLOG
metrics = [
    ("live-16b", "confirm_rate", "live 16 B: published and confirmed, msg/s", "higher", 0),
    ("live-16b", "receive_rate", "live 16 B: consumed, msg/s", "higher", 0),
    ("live-16b", "confirm_p50_ms", "live 16 B: confirm latency p50, ms", "lower", 2),
    ("live-16b", "confirm_p99_ms", "live 16 B: confirm latency p99, ms", "lower", 2),
    ("live-1k", "confirm_rate", "live 1 KiB: published and confirmed, msg/s", "higher", 0),
    ("live-1k", "receive_rate", "live 1 KiB: consumed, msg/s", "higher", 0),
    ("live-1k", "confirm_p50_ms", "live 1 KiB: confirm latency p50, ms", "lower", 2),
    ("live-1k", "confirm_p99_ms", "live 1 KiB: confirm latency p99, ms", "lower", 2),
    ("backlog", "confirm_rate", "backlog of {:,} x $BENCH_BACKLOG_SIZE B, no consumer: published and confirmed, msg/s".format(n), "higher", 0),
    ("backlog", "mem_per_msg", "backlog: RSS growth per queued message, bytes", "lower", 0),
    ("backlog", "disk_per_msg", "backlog: data dir growth per queued message, bytes", "lower", 0),
    ("stop", "stop_s", "clean stop with the backlog, s", "lower", 2),
    ("restart", "listen_s", "restart after clean stop until a connection is accepted, s", "lower", 2),
    ("restart", "ready_s", "restart after clean stop until message_count = N, s", "lower", 2),
    ("restart-kill9", "ready_s", "restart after kill -9 until message_count = N, s", "lower", 2),
    ("consume", "receive_rate", "consume the backlog (1 consumer, manual acks), msg/s", "higher", 0),
]
def fmt(v, d):
    return "{:,.{}f}".format(v, d)
print("# Durability benchmark, $STARTED")
print()
print("Machine: $(nproc) CPU(s), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr); brokers and load tool share the CPUs.  ")
print("Warren: \`$WARREN_SERVER\` (built $(date -r "$WARREN_SERVER" '+%Y-%m-%d %H:%M' 2>/dev/null || echo '?'); repository HEAD $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ', src/ has uncommitted changes')). RabbitMQ: $RMQ_VERSION (classic queue, default configuration).  ")
print("Settings: BENCH_SECONDS=$BENCH_SECONDS BENCH_BACKLOG=$BENCH_BACKLOG BENCH_BACKLOG_SIZE=$BENCH_BACKLOG_SIZE; "
      "$PRODUCERS publishers with confirm window $CONFIRM, persistent messages, durable queue.")
print()
print("| metric | Warren | RabbitMQ | Warren / RabbitMQ | better |")
print("| --- | ---: | ---: | ---: | --- |")
for test, field, label, better, d in metrics:
    w, we = get("warren", test, field)
    r, re_ = get("rabbitmq", test, field)
    ratio = "{:.2f}x".format(w / r) if w is not None and r else "-"
    print("| %s | %s | %s | %s | %s |" % (label, we or fmt(w, d), re_ or fmt(r, d), ratio, better))
print()
print("Ratios are Warren / RabbitMQ; the last column says which direction is better. "
      "What each figure means and its caveats: bench/README.md, section durability.sh.")
print()
print("Raw results (one JSON object per measurement):")
print()
print("\`\`\`")
for l in open(sys.argv[1]):
    print(l.rstrip())
print("\`\`\`")
EOF
echo
sed -n '/^| metric/,/^$/p' "$OUT"
log "results written to $OUT"
