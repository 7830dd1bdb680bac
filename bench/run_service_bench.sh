#!/usr/bin/env bash
# Service benchmarks: lrsched's GetLR and Step against a bare gRPC echo with the same message
# sizes (the ceiling), at several concurrencies, all in one session on 127.0.0.1.
#
#   bench/run_service_bench.sh            # after: cmake --build build-bench --target loadgen echo_server lrsched-server
#
# Environment: BUILD (build-bench), CONCS ("1 8 32 64"), CHANNELS (1), DURATION_MS (5000),
# WARMUP_MS (1000), STEP_SESSIONS (1000: Step round-robins over these), SYNCS ("full normal").
# Servers bind 127.0.0.1:0 (the port is read from their `event=listening addr=` line); every
# process started here is stopped on exit, also on failure; each run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
CONCS=${CONCS:-"1 8 32 64"}
CHANNELS=${CHANNELS:-1}
DURATION_MS=${DURATION_MS:-5000}
WARMUP_MS=${WARMUP_MS:-1000}
STEP_SESSIONS=${STEP_SESSIONS:-1000}
SYNCS=${SYNCS:-"full normal"}
LOADGEN=$BUILD/bench/loadgen
ECHO=$BUILD/bench/echo_server
SERVER=$BUILD/server/lrsched-server
for b in "$LOADGEN" "$ECHO" "$SERVER"; do
  [[ -x $b ]] || { echo "missing $b (build it first)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/lrsched-svcbench.XXXXXX)
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

# start NAME CMD...: starts CMD in the background, waits (at most 20 s) for its listening line,
# sets ADDR and PID.
start() {
  local name=$1; shift
  : >"$work/$name.log"  # exists before the sed below, whatever the background child's timing
  "$@" 2>"$work/$name.log" &
  PID=$!
  pids+=("$PID")
  ADDR=
  for _ in $(seq 200); do
    ADDR=$(sed -n 's/.*event=listening addr=\([^ ]*\).*/\1/p' "$work/$name.log" | head -1)
    [[ -n $ADDR ]] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2; cat "$work/$name.log" >&2; exit 1
}
stop() {  # stop PID: SIGTERM, at most 20 s, then SIGKILL
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
run() {  # run LABEL ARGS...: one loadgen run, result line appended to results
  local out
  out=$(timeout 120 "$LOADGEN" --label="$1" --warmup_ms="$WARMUP_MS" --duration_ms="$DURATION_MS" \
        --channels="$CHANNELS" "${@:2}")
  echo "$out" | tee -a "$work/results"
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')"
start echo "$ECHO" --listen=127.0.0.1:0 --max_seconds=3600
ECHO_ADDR=$ADDR; ECHO_PID=$PID

first=1
for sync in $SYNCS; do
  start "lrsched-$sync" "$SERVER" --listen=127.0.0.1:0 --data_dir="$work/data-$sync" \
    --sqlite_synchronous="$sync"
  LR_ADDR=$ADDR; LR_PID=$PID
  # Probe the message sizes (this also creates the sessions).
  p=$(timeout 300 "$LOADGEN" --addr="$LR_ADDR" --rpc=getlr --prefix=getlr --warmup_ms=100 --duration_ms=300)
  G_REQ=$(kv request_bytes "$p"); G_RESP=$(kv response_bytes "$p")
  p=$(timeout 300 "$LOADGEN" --addr="$LR_ADDR" --rpc=step --sessions="$STEP_SESSIONS" --warmup_ms=100 --duration_ms=300)
  S_REQ=$(kv request_bytes "$p"); S_RESP=$(kv response_bytes "$p")
  for c in $CONCS; do
    if (( first )); then
      run echo-getlr --addr="$ECHO_ADDR" --rpc=echo --concurrency="$c" \
        --request_bytes="$G_REQ" --response_bytes="$G_RESP"
      run getlr --addr="$LR_ADDR" --rpc=getlr --prefix=getlr --concurrency="$c"
      run echo-step --addr="$ECHO_ADDR" --rpc=echo --concurrency="$c" \
        --request_bytes="$S_REQ" --response_bytes="$S_RESP"
    fi
    run "step-$sync" --addr="$LR_ADDR" --rpc=step --concurrency="$c" --sessions="$STEP_SESSIONS"
  done
  stop "$LR_PID"
  first=0
done
echo "end $(uptime | sed 's/.*load/load/')"

# Table: per concurrency, each run's QPS / p50 / p99, and lrsched's ratios to the echo ceiling
# measured with the same message size.
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    key = v["label"] SUBSEP v["concurrency"]
    qps[key] = v["qps"]; p50[key] = v["p50_us"]; p99[key] = v["p99_us"]; err[key] = v["errors"]
    if (!(v["label"] in seen)) { seen[v["label"]] = 1; labels[++nl] = v["label"] }
    if (!(v["concurrency"] in cs)) { cs[v["concurrency"]] = 1; conc[++nc] = v["concurrency"] }
  }
  END {
    print ""
    print "| run | concurrency | QPS | p50 µs | p99 µs | errors | QPS / echo | p99 / echo |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|"
    for (l = 1; l <= nl; l++) for (c = 1; c <= nc; c++) {
      k = labels[l] SUBSEP conc[c]
      if (!(k in qps)) continue
      ref = (labels[l] ~ /^getlr/) ? "echo-getlr" : (labels[l] ~ /^step/) ? "echo-step" : ""
      r1 = "-"; r2 = "-"
      if (ref != "" && (ref SUBSEP conc[c]) in qps) {
        r1 = sprintf("%.0f%%", 100 * qps[k] / qps[ref SUBSEP conc[c]])
        r2 = sprintf("%.2fx", p99[k] / p99[ref SUBSEP conc[c]])
      }
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", labels[l], conc[c], qps[k], p50[k], p99[k], err[k], r1, r2
    }
  }' "$work/results"
