#!/usr/bin/env bash
# Service benchmarks: lrsched's GetLR and Step against a bare gRPC echo with the same message
# sizes (the ceiling), at several concurrencies, all in one session on 127.0.0.1.
#
#   bench/run_service_bench.sh            # after: cmake --build build-bench --target loadgen echo_server lrsched-server
#   HTTP=1 CONCS="8 32" SYNCS=normal bench/run_service_bench.sh   # GetLR over HTTP/JSON beside gRPC
#
# Environment: BUILD (build-bench), CONCS ("1 8 32 64"), CHANNELS (1), DURATION_MS (5000),
# WARMUP_MS (1000), STEP_SESSIONS (1000: Step round-robins over these), SYNCS ("full normal";
# "full-nojournal" and "normal-nojournal" run a server with --journal=false beside them),
# ROUNDS (3), HTTP (0). With HTTP=1 the servers also serve HTTP/JSON (--http_listen=127.0.0.1:0,
# the port read from their `event=http_listening port=` line) and each GetLR run is followed by `getlr-http`: GetLR of the same session on the
# same server through GET /v1/sessions/{name}:lr (loadgen --rpc=http_getlr: one keep-alive
# connection per client thread); a second table gives HTTP's QPS and p99 over gRPC's, per round.
# One lrsched-server per SYNCS value runs beside the echo server for the whole session. Each
# round measures, per concurrency and back to back, the echo at GetLR's size, GetLR, the echo
# at Step's size and Step on each server, so every ratio compares runs made seconds apart (a
# shared VM's speed drifts over minutes); the table gives each ratio's median over the rounds
# and every round's value.
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
HTTP=${HTTP:-0}
SYNCS=${SYNCS:-"full normal"}
ROUNDS=${ROUNDS:-3}
LOADGEN=$BUILD/bench/loadgen
ECHO=$BUILD/bench/echo_server
SERVER=$BUILD/server/lrsched-server
for b in "$LOADGEN" "$ECHO" "$SERVER"; do
  [[ -x $b ]] || { echo "missing $b (build it first)" >&2; exit 2; }
done

WORK_NAME=lrsched-svcbench
# shellcheck source=bench/common.sh
source bench/common.sh

kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
http_port() {  # http_port LOG: the port of the server's `event=http_listening port=N` line
  local port=
  for _ in $(seq 100); do  # at most 10 s
    port=$(sed -n 's/.*event=http_listening .*port=\([0-9]*\).*/\1/p' "$1" | head -1)
    [[ -n $port ]] && { echo "$port"; return 0; }
    sleep 0.1
  done
  echo "no event=http_listening in $1" >&2; return 1
}
run() {  # run ROUND LABEL ARGS...: one loadgen run, result line appended to results
  local out
  out=$(timeout 120 "$LOADGEN" --label="$2" --warmup_ms="$WARMUP_MS" --duration_ms="$DURATION_MS" \
        --channels="$CHANNELS" "${@:3}")
  echo "round=$1 $out" | tee -a "$work/results"
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')"
start echo "$ECHO" --listen=127.0.0.1:0 --max_seconds=3600
ECHO_ADDR=$ADDR

declare -A LR_ADDRS HTTP_ADDRS
for sync in $SYNCS; do
  http_flag=()
  [[ $HTTP == 1 ]] && http_flag=(--http_listen=127.0.0.1:0)
  # "full-nojournal": --sqlite_synchronous=full without the journal (a SQLite transaction per
  # batch on the reply path, as before issue #20), beside the journal's "full" in one session.
  journal_flag=()
  [[ $sync == *-nojournal ]] && journal_flag=(--journal=false)
  start "lrsched-$sync" "$SERVER" --listen=127.0.0.1:0 --data_dir="$work/data-$sync" \
    --sqlite_synchronous="${sync%-nojournal}" "${journal_flag[@]}" "${http_flag[@]}"
  LR_ADDRS[$sync]=$ADDR
  if [[ $HTTP == 1 ]]; then
    HTTP_ADDRS[$sync]=127.0.0.1:$(http_port "$work/lrsched-$sync.log")
  fi
  # Creates the sessions, and reads the message sizes off the probe.
  p=$(timeout 300 "$LOADGEN" --addr="$ADDR" --rpc=getlr --prefix=getlr --warmup_ms=100 --duration_ms=300)
  G_REQ=$(kv request_bytes "$p"); G_RESP=$(kv response_bytes "$p")
  p=$(timeout 300 "$LOADGEN" --addr="$ADDR" --rpc=step --sessions="$STEP_SESSIONS" --warmup_ms=100 --duration_ms=300)
  S_REQ=$(kv request_bytes "$p"); S_RESP=$(kv response_bytes "$p")
done
first_sync=${SYNCS%% *}

for round in $(seq "$ROUNDS"); do
  for c in $CONCS; do
    run "$round" echo-getlr --addr="$ECHO_ADDR" --rpc=echo --concurrency="$c" \
      --request_bytes="$G_REQ" --response_bytes="$G_RESP"
    run "$round" getlr --addr="${LR_ADDRS[$first_sync]}" --rpc=getlr --prefix=getlr --concurrency="$c"
    if [[ $HTTP == 1 ]]; then
      run "$round" getlr-http --addr="${LR_ADDRS[$first_sync]}" --rpc=http_getlr --prefix=getlr \
        --http_addr="${HTTP_ADDRS[$first_sync]}" --create=0 --concurrency="$c"
    fi
    run "$round" echo-step --addr="$ECHO_ADDR" --rpc=echo --concurrency="$c" \
      --request_bytes="$S_REQ" --response_bytes="$S_RESP"
    for sync in $SYNCS; do
      run "$round" "step-$sync" --addr="${LR_ADDRS[$sync]}" --rpc=step --concurrency="$c" \
        --sessions="$STEP_SESSIONS"
    done
  done
done
echo "end $(uptime | sed 's/.*load/load/')"

# Table: per run and concurrency, the median over the rounds of QPS, p50, p99, and of the ratios
# to the echo ceiling measured in the same round with the same message size; then each
# round's QPS ratio.
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
      t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { delete v
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = v["label"] SUBSEP v["concurrency"] SUBSEP v["round"]
    qps[k] = v["qps"]; p50[k] = v["p50_us"]; p99[k] = v["p99_us"]; err[k] += v["errors"]
    if (!(v["label"] in seen)) { seen[v["label"]] = 1; labels[++nl] = v["label"] }
    if (!(v["concurrency"] in cs)) { cs[v["concurrency"]] = 1; conc[++nc] = v["concurrency"] }
    if (!(v["round"] in rs)) { rs[v["round"]] = 1; rounds[++nr] = v["round"] }
  }
  END {
    print ""
    print "| run | concurrency | QPS | p50 µs | p99 µs | errors | QPS / echo | p99 / echo | QPS / echo by round |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for (l = 1; l <= nl; l++) for (c = 1; c <= nc; c++) {
      ref = (labels[l] ~ /^getlr/) ? "echo-getlr" : (labels[l] ~ /^step/) ? "echo-step" : ""
      q = ""; a = ""; b = ""; e = ""; r1 = ""; r2 = ""; each = ""; n = 0
      for (r = 1; r <= nr; r++) {
        k = labels[l] SUBSEP conc[c] SUBSEP rounds[r]
        if (!(k in qps)) continue
        n++; q = q " " qps[k]; a = a " " p50[k]; b = b " " p99[k]; e += err[k]
        kr = ref SUBSEP conc[c] SUBSEP rounds[r]
        if (ref != "" && (kr in qps)) {
          x = 100 * qps[k] / qps[kr]; y = p99[k] / p99[kr]
          r1 = r1 " " x; r2 = r2 " " y
          each = each (each == "" ? "" : " / ") sprintf("%.0f%%", x)
        }
      }
      if (n == 0) continue
      m1 = r1 == "" ? "-" : sprintf("%.0f%%", median(r1))
      m2 = r2 == "" ? "-" : sprintf("%.2fx", median(r2))
      printf "| %s | %s | %.0f | %.0f | %.0f | %d | %s | %s | %s |\n", labels[l], conc[c], \
        median(q), median(a), median(b), e, m1, m2, each == "" ? "-" : each
    }
    # HTTP/JSON over gRPC: GetLR of the same session, runs made seconds apart in each round.
    if (!("getlr-http" in seen)) exit
    print ""
    print "| concurrency | HTTP QPS / gRPC QPS | HTTP p99 / gRPC p99 | QPS ratio by round |"
    print "|---:|---:|---:|---|"
    for (c = 1; c <= nc; c++) {
      r1 = ""; r2 = ""; each = ""
      for (r = 1; r <= nr; r++) {
        kh = "getlr-http" SUBSEP conc[c] SUBSEP rounds[r]; kg = "getlr" SUBSEP conc[c] SUBSEP rounds[r]
        if (!(kh in qps) || !(kg in qps) || qps[kg] == 0 || p99[kg] == 0) continue
        x = 100 * qps[kh] / qps[kg]; r1 = r1 " " x; r2 = r2 " " p99[kh] / p99[kg]
        each = each (each == "" ? "" : " / ") sprintf("%.0f%%", x)
      }
      if (r1 == "") continue
      printf "| %s | %.0f%% | %.2fx | %s |\n", conc[c], median(r1), median(r2), each
    }
  }' "$work/results"
