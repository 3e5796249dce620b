# shellcheck shell=bash disable=SC2034,SC2119,SC2120
# Shared by bench/compare.sh and bench/durability.sh (sourced, not run): building, free ports,
# starting and stopping a throwaway Warren and a private RabbitMQ node.
#
# The sourcing script sets ROOT (the repository), WORK (its temporary directory), and optionally
# WARREN_SERVER / WARREN_PERF (default: the binaries in build/).
# State kept in globals: PORT (AMQP port of the broker just started), WARREN_PID, RMQ_PID,
# RMQ_NODE, RMQ_EPMD, RMQ_DIST, RMQ_DIR, STOP_FORCED (1 when the last stop needed SIGKILL).

PY=/usr/bin/python3  # the system Python, which has python3-pika
WARREN_SERVER=${WARREN_SERVER:-$ROOT/build/warren-server}
WARREN_PERF=${WARREN_PERF:-$ROOT/build/warren-perf}
WARREN_PID=""
RMQ_PID=""
RMQ_NODE=""
RMQ_EPMD=""
RMQ_DIST=""
RMQ_DIR=""
STOP_FORCED=0

log() { echo "[bench] $*" >&2; }

# make_workdir PREFIX RESULTS_NAME: creates WORK and an empty RESULTS file in it, and stops both
# brokers and removes WORK on exit (kept with BENCH_KEEP=1), Ctrl-C and SIGTERM included.
make_workdir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$WORK"
  RESULTS="$WORK/$2"
  : >"$RESULTS"
  trap cleanup_workdir EXIT
  trap 'exit 130' INT TERM
}

cleanup_workdir() {
  stop_warren
  stop_rabbitmq
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}

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

# Builds build/warren-server and the perf clients unless BENCH_SKIP_BUILD=1.
build() {
  if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
    return 0
  elif [ ! -x build/warren-server ] || [ ! -x build/warren-perf ] || [ ! -x build/warren-mqtt-perf ] ||
    [ ! -x build/warren-stomp-perf ]; then
    log "building Warren (scripts/build.sh)"
    bash scripts/build.sh
  else
    cmake --build build --target warren-server warren-perf warren-mqtt-perf warren-stomp-perf >/dev/null
  fi
}

# ---- Warren ----

# warren_launch DATA_DIR LOG_FILE [AMQP_PORT]: starts warren-server in the background (port 0 =
# any free port) and sets WARREN_PID. Does not wait for it to listen.
# This stays shell, apart from tests/integration/warren_process.py (the launcher the tests and
# the Python bench scripts share): these scripts drive Warren and RabbitMQ alike as background
# jobs in process groups of their own, with log files, and time the stops themselves.
warren_launch() {
  mkdir -p "$1"
  # In a session of its own (setsid in a background job does not fork, so $! is the server and
  # its process group): the script can stop it as a group, and it cannot signal the script's.
  # shellcheck disable=SC2086  # WARREN_EXTRA_ARGS: more flags, split on spaces (--mqtt-port 0)
  setsid "$WARREN_SERVER" --amqp-port "${3:-0}" --bind 127.0.0.1 --management-port 0 --prometheus-port 0 \
    --data-dir "$1" ${WARREN_EXTRA_ARGS:-} >"$2" 2>&1 &
  WARREN_PID=$!
}

# warren_wait_listening LOG_FILE: sets PORT from the "AMQP listening on" line, or returns
# non-zero (after printing the log and stopping the server) when Warren does not come up within
# 30 s (warren_process.STARTUP_TIMEOUT: a busy machine, a journal to recover).
warren_wait_listening() {
  PORT=""
  for _ in $(seq 1 300); do
    PORT=$(grep -o 'AMQP listening on 127\.0\.0\.1:[0-9]*' "$1" 2>/dev/null | tail -1 |
      grep -o '[0-9]*$' || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$WARREN_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "Warren did not start; its log:"
  tail -20 "$1" >&2 || true
  stop_warren
  return 1
}

# start_warren NAME: a fresh Warren on a free port with data in $WORK/warren-data-NAME. Sets PORT,
# or returns non-zero when Warren does not come up.
start_warren() {
  warren_launch "$WORK/warren-data-$1" "$WORK/warren-$1.log"
  warren_wait_listening "$WORK/warren-$1.log"
}

# stop_warren [SECONDS]: SIGTERM to the server's process group, SIGKILL after SECONDS (default 5).
stop_warren() {
  STOP_FORCED=0
  if [ -n "$WARREN_PID" ]; then
    kill -TERM -- "-$WARREN_PID" 2>/dev/null || true
    for _ in $(seq 1 $((${1:-5} * 10))); do kill -0 "$WARREN_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$WARREN_PID" 2>/dev/null; then STOP_FORCED=1; fi
    kill -KILL -- "-$WARREN_PID" 2>/dev/null || true
    wait "$WARREN_PID" 2>/dev/null || true
    WARREN_PID=""
  fi
}

# kill_warren: SIGKILL, no shutdown at all.
kill_warren() {
  if [ -n "$WARREN_PID" ]; then
    kill -KILL -- "-$WARREN_PID" 2>/dev/null || true
    wait "$WARREN_PID" 2>/dev/null || true
    WARREN_PID=""
  fi
}

# ---- RabbitMQ ----

rabbitmq_install() {
  if ! command -v rabbitmq-server >/dev/null; then
    log "installing rabbitmq-server"
    WARREN_WITH_RABBITMQ=1 bash scripts/install-deps.sh
  fi
}

# rabbitmq_setup DIR NODE: prepares a private node's directories (mnesia, logs, an empty plugin
# list) under DIR and picks free AMQP, dist and epmd ports. Sets RMQ_DIR, RMQ_NODE, PORT,
# RMQ_DIST and RMQ_EPMD; rabbitmq_launch then starts (and restarts) that node.
rabbitmq_setup() {
  RMQ_DIR=$1
  RMQ_NODE=$2
  mkdir -p "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
  echo '[].' >"$RMQ_DIR/plugins"
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$RMQ_DIR"; fi
  PORT=$(free_port)
  RMQ_DIST=$(free_port)
  RMQ_EPMD=$(free_port)
}

# rabbitmq_launch: starts the node rabbitmq_setup prepared, in the background; sets RMQ_PID. The
# node starts its own epmd on RMQ_EPMD (or reuses it when it is still running).
rabbitmq_launch() {
  local dir=$RMQ_DIR
  (cd "$dir" && RABBITMQ_NODE_PORT=$PORT RABBITMQ_DIST_PORT=$RMQ_DIST RABBITMQ_NODENAME=$RMQ_NODE \
    RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log \
    RABBITMQ_ENABLED_PLUGINS_FILE=$dir/plugins ERL_EPMD_PORT=$RMQ_EPMD \
    exec setsid rabbitmq-server >>"$dir/stdout.log" 2>&1) &
  RMQ_PID=$!
}

# rabbitmq_wait_up [SECONDS]: waits for the AMQP listener, or returns non-zero (after printing the
# node's output and stopping it).
rabbitmq_wait_up() {
  if ! wait_for_port "$PORT" "$RMQ_PID" "${1:-120}"; then
    log "RabbitMQ did not start; its output:"
    tail -20 "$RMQ_DIR/stdout.log" >&2 || true
    stop_rabbitmq
    return 1
  fi
  sleep 2  # the listener opens just before boot completes
}

# start_rabbitmq: installs rabbitmq-server when missing, then starts one private node
# (warren-bench-<pid>@localhost) under $WORK/rabbitmq. Sets PORT, or returns non-zero.
start_rabbitmq() {
  rabbitmq_install
  rabbitmq_setup "$WORK/rabbitmq" "warren-bench-$$@localhost"
  log "starting RabbitMQ $RMQ_NODE on port $PORT"
  rabbitmq_launch
  rabbitmq_wait_up 120
}

# start_rabbitmq_plugin PLUGIN LISTENER_KEY NODE PORT: installs rabbitmq-server when missing, then
# starts a private node with PLUGIN enabled and listening on PORT (LISTENER_KEY = PORT in its
# rabbitmq.conf), and waits for it. Sets PORT (AMQP).
start_rabbitmq_plugin() {
  rabbitmq_install
  rabbitmq_setup "$WORK/rabbitmq" "$3"
  echo "[$1]." >"$RMQ_DIR/plugins"
  echo "$2 = $4" >"$RMQ_DIR/rabbitmq.conf"
  chown -R rabbitmq:rabbitmq "$RMQ_DIR" 2>/dev/null || true
  RABBITMQ_CONFIG_FILE=$RMQ_DIR/rabbitmq rabbitmq_launch
  rabbitmq_wait_up 180
  wait_for_port "$4" "$RMQ_PID" 60
  sleep 5  # the plugin settles after the port opens
}

# start_rabbitmq_mqtt NODE MQTT_PORT / start_rabbitmq_stomp NODE STOMP_PORT: the MQTT or STOMP
# plugin on that port.
start_rabbitmq_mqtt() { start_rabbitmq_plugin rabbitmq_mqtt mqtt.listeners.tcp.default "$1" "$2"; }
start_rabbitmq_stomp() { start_rabbitmq_plugin rabbitmq_stomp stomp.listeners.tcp.default "$1" "$2"; }

# rabbitmq_beam_pid: the pid of the node's Erlang VM: the beam.smp whose environment names the node
# (RABBITMQ_NODENAME; the name is not on its command line), or else whose command line has the
# node's private epmd port.
rabbitmq_beam_pid() {
  local pid
  for pid in $(pgrep -x beam.smp || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RABBITMQ_NODENAME=$RMQ_NODE" ||
      tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-epmd_port $RMQ_EPMD "; then
      echo "$pid"
      return 0
    fi
  done
}

# rabbitmq_kill_vm: SIGKILL to the Erlang VM's process group. `su` (which rabbitmq-server uses to
# switch to the rabbitmq user) puts the VM in a session of its own, out of reach of RMQ_PID's.
rabbitmq_kill_vm() {
  local pid pgid
  pid=$(rabbitmq_beam_pid)
  if [ -n "$pid" ]; then
    pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
    if [ -n "$pgid" ]; then kill -KILL -- "-$pgid" 2>/dev/null || true; fi
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# rabbitmq_stop_node [SECONDS]: `rabbitmqctl stop`, then SIGTERM to the Erlang VM (a clean stop as
# well) and to the node's process group, then SIGKILL once SECONDS (default 10) have passed without
# the VM exiting. Leaves the node's epmd running for a restart.
rabbitmq_stop_node() {
  STOP_FORCED=0
  if [ -n "$RMQ_PID" ]; then
    local beam i
    beam=$(rabbitmq_beam_pid)
    ERL_EPMD_PORT=$RMQ_EPMD timeout 60 rabbitmqctl -n "$RMQ_NODE" stop >/dev/null 2>&1 || true
    if [ -n "$beam" ]; then kill -TERM "$beam" 2>/dev/null || true; fi
    kill -TERM -- "-$RMQ_PID" 2>/dev/null || true
    for ((i = 0; i < ${1:-10} * 5; i++)); do
      if ! kill -0 "$RMQ_PID" 2>/dev/null && { [ -z "$beam" ] || ! kill -0 "$beam" 2>/dev/null; }; then
        break
      fi
      sleep 0.2
    done
    if kill -0 "$RMQ_PID" 2>/dev/null || { [ -n "$beam" ] && kill -0 "$beam" 2>/dev/null; }; then
      STOP_FORCED=1
      rabbitmq_kill_vm
    fi
    kill -KILL -- "-$RMQ_PID" 2>/dev/null || true
    wait "$RMQ_PID" 2>/dev/null || true
    RMQ_PID=""
  fi
}

# rabbitmq_kill: SIGKILL to the Erlang VM and to the node's process group, no shutdown.
rabbitmq_kill() {
  if [ -n "$RMQ_PID" ]; then
    rabbitmq_kill_vm
    kill -KILL -- "-$RMQ_PID" 2>/dev/null || true
    wait "$RMQ_PID" 2>/dev/null || true
    RMQ_PID=""
  fi
}

# stop_rabbitmq [SECONDS]: stops the node (see rabbitmq_stop_node) and the epmd it started.
stop_rabbitmq() {
  rabbitmq_stop_node "${1:-10}"
  if [ -n "$RMQ_EPMD" ]; then
    # The epmd this node started on its private port; refuses while nodes are still registered.
    ERL_EPMD_PORT=$RMQ_EPMD epmd -kill >/dev/null 2>&1 || true
    RMQ_EPMD=""
  fi
}
