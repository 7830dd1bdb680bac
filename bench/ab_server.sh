#!/usr/bin/env bash
# A/B of two lrsched-server binaries under the same Step (or GetLR) load: runs alternate
# between A and B, each on a fresh data directory, and every run prints its QPS, p99, and the
# CPU time per call of the server and of the load generator (from /proc/PID/stat, over the
# measured seconds), which vary less between runs on a shared VM than QPS does.
#
#   bench/ab_server.sh OLD_BINARY NEW_BINARY              # Step, NORMAL, 8 clients, 3 runs each
#   RPC=getlr CONC=64 SYNC=full RUNS=5 bench/ab_server.sh A B
#
# Environment: BUILD (build: where loadgen is), RPC (step|getlr), CONC (8), SYNC (normal),
# RUNS (3), DURATION_MS (5000), EXTRA_A / EXTRA_B (more server flags for A / B).
# Servers bind 127.0.0.1:0; everything started here is stopped on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -eq 2 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
BUILD=${BUILD:-build}
RPC=${RPC:-step}
CONC=${CONC:-8}
SYNC=${SYNC:-normal}
RUNS=${RUNS:-3}
DURATION_MS=${DURATION_MS:-5000}
LOADGEN=$BUILD/bench/loadgen
for b in "$LOADGEN" "$1" "$2"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 2; }; done
HZ=$(getconf CLK_TCK)

WORK_NAME=lrsched-ab
# shellcheck source=bench/common.sh
source bench/common.sh

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one_run() {  # one_run NAME BINARY EXTRA_FLAGS
  local name=$1 bin=$2 extra=$3 dir
  dir=$(mktemp -d "$work/run.XXXXXX")
  # shellcheck disable=SC2086  # EXTRA flags are split on purpose
  start "$name" "$bin" --listen=127.0.0.1:0 --data_dir="$dir/data" --sqlite_synchronous="$SYNC" \
    $extra
  local server=$PID addr=$ADDR
  local args=(--rpc="$RPC" --sessions=1000)
  [[ $RPC == getlr ]] && args=(--rpc=getlr --prefix=getlr)
  timeout 300 "$LOADGEN" --addr="$addr" "${args[@]}" --warmup_ms=100 --duration_ms=300 >/dev/null
  timeout 120 "$LOADGEN" --addr="$addr" "${args[@]}" --concurrency="$CONC" --warmup_ms=1000 \
    --duration_ms="$DURATION_MS" >"$dir/out" &
  local lg=$!
  pids+=("$lg")
  sleep 1  # the warm-up: measure the CPU of the measured seconds only
  local lgpid s0 l0 s1 l1
  lgpid=$(pgrep -P "$lg" | head -1)  # loadgen itself, under `timeout`
  s0=$(cpu_ticks "$server"); l0=$(cpu_ticks "$lgpid")
  sleep "$(awk -v d="$DURATION_MS" 'BEGIN { printf "%.3f", (d - 200) / 1000 }')"
  s1=$(cpu_ticks "$server"); l1=$(cpu_ticks "$lgpid")
  wait "$lg"
  stop "$server"
  local out qps p99
  out=$(cat "$dir/out")
  qps=$(sed -n 's/.* qps=\([^ ]*\).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.* p99_us=\([^ ]*\).*/\1/p' <<<"$out")
  awk -v n="$name" -v q="$qps" -v p="$p99" -v s=$((s1 - s0)) -v l=$((l1 - l0)) -v hz="$HZ" \
      -v d="$DURATION_MS" 'BEGIN {
    secs = (d - 200) / 1000
    printf "%s qps=%d p99_us=%d server_us_per_call=%.1f loadgen_us_per_call=%.1f\n",
      n, q, p, s * 1e6 / hz / (q * secs), l * 1e6 / hz / (q * secs) }'
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) rpc=$RPC conc=$CONC sync=$SYNC $(uptime | sed 's/.*load/load/')"
for _ in $(seq "$RUNS"); do
  # Not in a pipeline: one_run must run in this shell, where `pids` and the EXIT trap live.
  one_run A "$1" "${EXTRA_A:-}" >>"$work/results"; tail -1 "$work/results"
  one_run B "$2" "${EXTRA_B:-}" >>"$work/results"; tail -1 "$work/results"
done
awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); sum[$1, kv[1]] += kv[2] } n[$1]++ }
  END { for (k in n) printf "mean %s qps=%.0f p99_us=%.0f server_us_per_call=%.1f loadgen_us_per_call=%.1f\n",
          k, sum[k, "qps"] / n[k], sum[k, "p99_us"] / n[k], sum[k, "server_us_per_call"] / n[k],
          sum[k, "loadgen_us_per_call"] / n[k] }' "$work/results" | sort
