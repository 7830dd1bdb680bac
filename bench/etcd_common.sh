# shellcheck shell=bash
# Shared by bench/run_etcd_bench.sh and bench/etcd_startup_bench.sh (sourced, not run): a
# scratch directory, process bookkeeping with a trap that stops everything on exit (also on
# failure), start/stop helpers as in run_service_bench.sh, and one etcd member on free ports.
#
# The sourcing script sets WORK_NAME first; afterwards $work is the scratch directory and every
# process started with start / start_etcd is stopped (SIGTERM, at most 10 s, then SIGKILL) when
# the script exits. ETCD_BIN (etcd), ETCDCTL_BIN (etcdctl), ETCD_QUOTA_BYTES (4 GiB).

ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}
# 4 GiB: above the ~0.5 GB a full run writes (100k ~1 KB records plus every benchmark write in
# etcd's uncompacted history), below etcd's 8 GiB warning.
ETCD_QUOTA_BYTES=${ETCD_QUOTA_BYTES:-4294967296}
command -v "$ETCD_BIN" >/dev/null || { echo "missing $ETCD_BIN" >&2; exit 2; }
command -v "$ETCDCTL_BIN" >/dev/null || { echo "missing $ETCDCTL_BIN" >&2; exit 2; }

work=$(mktemp -d "/tmp/${WORK_NAME:-lrsched-etcdbench}.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

# start NAME CMD...: starts CMD in the background, waits (at most WAIT_S, default 20 s) for its
# `event=listening addr=` line, sets ADDR and PID.
start() {
  local name=$1; shift
  : >"$work/$name.log"  # exists before the sed below, whatever the background child's timing
  "$@" 2>"$work/$name.log" &
  PID=$!
  pids+=("$PID")
  ADDR=
  for _ in $(seq $(( ${WAIT_S:-20} * 10 ))); do
    ADDR=$(sed -n 's/.*event=listening addr=\([^ ]*\).*/\1/p' "$work/$name.log" | head -1)
    [[ -n $ADDR ]] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2; tail -20 "$work/$name.log" >&2; exit 1
}
stop() {  # stop PID: SIGTERM, at most 20 s, then SIGKILL; reaped and forgotten by cleanup
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_etcd: one etcd member on 127.0.0.1 (free client and peer ports), data in $work/etcd;
# waits at most 30 s for `etcdctl endpoint health`. Sets ETCD_EP (host:port) and ETCD_PID.
start_etcd() {
  local cport pport
  cport=$(free_port); pport=$(free_port)
  while [[ $pport == "$cport" ]]; do pport=$(free_port); done
  ETCD_EP=127.0.0.1:$cport
  "$ETCD_BIN" --name bench --data-dir "$work/etcd" \
    --listen-client-urls "http://$ETCD_EP" --advertise-client-urls "http://$ETCD_EP" \
    --listen-peer-urls "http://127.0.0.1:$pport" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bench=http://127.0.0.1:$pport" --initial-cluster-state new \
    --quota-backend-bytes "$ETCD_QUOTA_BYTES" --log-level warn >"$work/etcd.log" 2>&1 &
  ETCD_PID=$!
  pids+=("$ETCD_PID")
  for _ in $(seq 60); do
    if ETCDCTL_API=3 timeout 5 "$ETCDCTL_BIN" --endpoints="$ETCD_EP" --command-timeout=2s \
         endpoint health >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$ETCD_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "etcd did not start:" >&2; tail -20 "$work/etcd.log" >&2; exit 1
}

# etcd_status: "db_size=BYTES revision=N" of $ETCD_EP (etcdctl endpoint status).
etcd_status() {
  ETCDCTL_API=3 timeout 10 "$ETCDCTL_BIN" --endpoints="$ETCD_EP" --command-timeout=5s \
    endpoint status -w json 2>/dev/null |
    python3 -c 'import json, sys; s = json.load(sys.stdin)[0]["Status"]; print("db_size=%d revision=%d" % (s["dbSize"], s["header"]["revision"]))' ||
    echo "db_size=? revision=?"
}
