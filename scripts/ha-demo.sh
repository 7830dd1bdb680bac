#!/usr/bin/env bash
# HA set-up on one machine, as commands: a 3-member etcd cluster on loopback and two lrsched
# replicas (--store=etcd) serving the same sessions. Builds first if needed (scripts/build.sh),
# runs in the foreground and stops everything it started on Ctrl-C / exit.
#   scripts/ha-demo.sh                 # replicas on 127.0.0.1:50051 and :50052
#   build/client/lrsched create cos --spec=/tmp/spec.json --server=127.0.0.1:50051
#   build/client/lrsched step cos --if-epoch=0 --server=127.0.0.1:50052
#   build/client/lrsched get cos --server=127.0.0.1:50051
# Environment: HA_DIR (default: a fresh temporary directory), ETCD_BIN (default: etcd),
# HA_PORTS (default "50051 50052": the replicas' ports).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
[[ -x $build/server/lrsched-server ]] || scripts/build.sh
etcd=${ETCD_BIN:-etcd}
command -v "$etcd" >/dev/null || { echo "ha-demo: etcd not found (scripts/install-deps.sh)"; exit 1; }
dir=${HA_DIR:-$(mktemp -d /tmp/lrsched-ha.XXXXXX)}
mkdir -p "$dir"
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # etcd may hang in a graceful stop once its peers are gone: SIGKILL after 5 s.
  for _ in $(seq 1 50); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# 22379..22384, not etcd's 2379/2380: Debian's etcd-server package starts a system etcd there.
cluster="e0=http://127.0.0.1:22380,e1=http://127.0.0.1:22382,e2=http://127.0.0.1:22384"
endpoints="127.0.0.1:22379,127.0.0.1:22381,127.0.0.1:22383"
for i in 0 1 2; do
  client=$((22379 + 2 * i)) peer=$((22380 + 2 * i))
  "$etcd" --name "e$i" --data-dir "$dir/e$i" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token lrsched-ha-demo \
    --log-level warn >"$dir/e$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 1 100); do
  ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
echo "ha-demo: etcd cluster up at $endpoints (data and logs in $dir)"

ports=${HA_PORTS:-50051 50052}
for port in $ports; do
  "$build/server/lrsched-server" --store=etcd --etcd_endpoints="$endpoints" \
    --listen="127.0.0.1:$port" 2>"$dir/lrsched-$port.log" &
  pids+=($!)
done
echo "ha-demo: lrsched replicas on 127.0.0.1 ports $ports (logs in $dir); Ctrl-C stops all"
wait -n "${pids[@]}" || true
echo "ha-demo: a process exited; stopping the rest"
