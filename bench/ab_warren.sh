#!/usr/bin/env bash
# Paired before/after check of two warren-server binaries under the same warren-perf load.
#
#   bash bench/ab_warren.sh SERVER_A SERVER_B [warren-perf arguments...]
#   BENCH_ROUNDS=16 BENCH_MESSAGES=2000000 bash bench/ab_warren.sh /tmp/old/warren-server \
#     build/warren-server --size 16
#
# Each round runs A and B once each (A first in odd rounds, B first in even ones), each on a fresh
# server with an empty data directory. A run is `warren-perf -C BENCH_MESSAGES --json ARGS`: one
# producer publishes that many messages and the run ends once the consumer has them all. Per run
# it records the consumer's msg/s and the server's CPU time per message (utime + stime of all its
# threads from /proc/PID/stat, before and after the load, divided by the messages received).
# Per round it prints both figures for A and B and the ratio B/A; at the end the medians and
# how many rounds had B/A above 1.
#
# CPU time per message is much steadier than msg/s on a shared machine (a busy neighbour takes
# the CPU away but adds little to what each message costs), and the pairing means both binaries
# see the same phases of the machine. Quote the median ratio, not one round.
#
# Environment: BENCH_ROUNDS (12), BENCH_MESSAGES (2000000), BENCH_PAUSE (1 s between runs),
# WARREN_PERF (build/warren-perf), BENCH_KEEP=1 (keep the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ $# -lt 2 ]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
SERVER_A=$(realpath "$1")
SERVER_B=$(realpath "$2")
shift 2
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BENCH_ROUNDS=${BENCH_ROUNDS:-12}
BENCH_MESSAGES=${BENCH_MESSAGES:-2000000}
BENCH_PAUSE=${BENCH_PAUSE:-1}
for b in "$SERVER_A" "$SERVER_B" "$WARREN_PERF"; do
  [ -x "$b" ] || { log "not an executable: $b"; exit 2; }
done
make_workdir warren-ab results.tsv
TICKS=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_one LABEL SERVER ROUND [warren-perf args] -> appends "LABEL ROUND ns_per_msg msg_per_s" (or "nan nan") to $RESULTS
run_one() {
  local label=$1 round=$3 before after out
  WARREN_SERVER=$2
  shift 3
  out="$WORK/$label-$round"
  warren_launch "$WORK/data-$label-$round" "$out.server.log"
  if ! warren_wait_listening "$out.server.log"; then
    echo "$label $round nan nan" >>"$RESULTS"
    return
  fi
  before=$(cpu_ticks "$WARREN_PID")
  timeout -k 5 600 "$WARREN_PERF" --uri "amqp://guest:guest@127.0.0.1:$PORT/" --queue ab \
    -C "$BENCH_MESSAGES" --json "$@" >"$out.json" 2>"$out.log" || log "warren-perf failed ($label, round $round)"
  after=$(cpu_ticks "$WARREN_PID")
  stop_warren
  rm -rf "$WORK/data-$label-$round"
  $PY - "$out.json" "$label" "$round" "$before" "$after" "$TICKS" >>"$RESULTS" <<'EOF'
import json, sys
path, label, rnd, before, after, ticks = sys.argv[1:7]
try:
    r = json.loads([l for l in open(path) if l.startswith("{")][-1])
    assert r["ok"] and r["received"] > 0
    ns = (float(after) - float(before)) / float(ticks) * 1e9 / r["received"]
    print(label, rnd, "%.0f" % ns, "%.0f" % r["receive_rate"])
except Exception:
    print(label, rnd, "nan", "nan")
EOF
  sleep "$BENCH_PAUSE"
}

log "A = $SERVER_A"
log "B = $SERVER_B"
log "warren-perf -C $BENCH_MESSAGES $*, $BENCH_ROUNDS rounds"
echo "round  A ns/msg  B ns/msg  B/A    A msg/s   B msg/s  B/A"
for round in $(seq 1 "$BENCH_ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then
    run_one A "$SERVER_A" "$round" "$@"
    run_one B "$SERVER_B" "$round" "$@"
  else
    run_one B "$SERVER_B" "$round" "$@"
    run_one A "$SERVER_A" "$round" "$@"
  fi
  $PY - "$RESULTS" "$round" <<'EOF'
import sys
rows = {l.split()[0]: l.split()[2:] for l in open(sys.argv[1]) if l.split()[1] == sys.argv[2]}
a, b = [float(x) for x in rows["A"]], [float(x) for x in rows["B"]]
print("%5s %9.0f %9.0f %5.3f %9.0f %9.0f %5.3f" % (sys.argv[2], a[0], b[0], b[0] / a[0], a[1], b[1], b[1] / a[1]))
EOF
done
$PY - "$RESULTS" <<'EOF'
import math, statistics, sys
runs = {}
for l in open(sys.argv[1]):
    label, rnd, ns, rate = l.split()
    runs.setdefault(rnd, {})[label] = (float(ns), float(rate))
pairs = [(r["A"], r["B"]) for r in runs.values()
         if "A" in r and "B" in r and not any(math.isnan(x) for x in r["A"] + r["B"])]
if not pairs:
    sys.exit("no complete rounds")
cpu = [b[0] / a[0] for a, b in pairs]
rate = [b[1] / a[1] for a, b in pairs]
print("%d complete rounds" % len(pairs))
print("server CPU ns/msg: median A %.0f, B %.0f; B/A median %.3f (B/A > 1 in %d rounds)" % (
    statistics.median(a[0] for a, _ in pairs), statistics.median(b[0] for _, b in pairs),
    statistics.median(cpu), sum(x > 1 for x in cpu)))
print("consumer msg/s:    median A %.0f, B %.0f; B/A median %.3f (B/A > 1 in %d rounds)" % (
    statistics.median(a[1] for a, _ in pairs), statistics.median(b[1] for _, b in pairs),
    statistics.median(rate), sum(x > 1 for x in rate)))
EOF
