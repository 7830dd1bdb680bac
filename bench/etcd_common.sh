# shellcheck shell=bash
# Shared by bench/run_etcd_bench.sh and bench/etcd_startup_bench.sh (sourced, not run): what
# bench/common.sh gives (scratch directory, process bookkeeping, start/stop), and one etcd
# member on free ports.
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

WORK_NAME=${WORK_NAME:-lrsched-etcdbench}
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

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
