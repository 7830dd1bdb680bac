#!/usr/bin/env bash
# etcd backend benchmarks (issue #6): lrsched's Step and GetLR over --store=etcd next to etcd's
# own write rate measured in the same run, by the same load generator, at the same concurrency
# and with the same value size; and GetLR over SQLite for reference.
#
#   bench/run_etcd_bench.sh    # after: cmake --build build-bench --target loadgen lrsched-server
#
# Starts one etcd member (127.0.0.1, free ports, data in a scratch directory under /tmp), an
# lrsched-server --store=etcd on it and an lrsched-server on SQLite (both on 127.0.0.1:0, port
# read from their `event=listening addr=` line). Then, per concurrency, 1 s warm-up + 5 s
# measured each:
#   etcd_txn   bare etcd Txn shaped like Step's commit (compare mod_revision, put), value as
#              large as lrsched's record of a Step session (read back from etcd: --value_like)
#   etcd_put   bare etcd Put of the same value (reference)
#   step       lrsched Step over etcd (STEP_SESSIONS sessions, round-robin per slot)
#   getlr      lrsched GetLR over etcd (served from memory)
#   getlr-sqlite   lrsched GetLR over SQLite
# and prints a markdown table: Step ÷ bare Txn, GetLR(etcd) ÷ GetLR(SQLite).
#
# Environment: BUILD (build-bench), CONCS ("1 8 32 64"), CHANNELS (1), DURATION_MS (5000),
# WARMUP_MS (1000), STEP_SESSIONS (1000), BARE ("etcd_txn etcd_put"), ETCD_BIN, ETCDCTL_BIN,
# ETCD_QUOTA_BYTES (bench/etcd_common.sh). Everything started here is stopped on exit, also on
# failure; every run and wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
CONCS=${CONCS:-"1 8 32 64"}
CHANNELS=${CHANNELS:-1}
DURATION_MS=${DURATION_MS:-5000}
WARMUP_MS=${WARMUP_MS:-1000}
STEP_SESSIONS=${STEP_SESSIONS:-1000}
BARE=${BARE:-"etcd_txn etcd_put"}
LOADGEN=$BUILD/bench/loadgen
SERVER=$BUILD/server/lrsched-server
for b in "$LOADGEN" "$SERVER"; do
  [[ -x $b ]] || { echo "missing $b (build it first)" >&2; exit 2; }
done
WORK_NAME=lrsched-etcdbench
source bench/etcd_common.sh

cpu_ms() {  # cpu_ms PID: user + system CPU time of PID so far, in ms (clock ticks of 10 ms)
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' \
    "/proc/$1/stat"
}
# etcd_counters: etcd's own counters from its /metrics (client URL): successful Txn, Range and
# Put calls, WAL fsyncs and their total seconds, MVCC events (a watcher's changes).
etcd_counters() {
  curl -s --max-time 5 "http://$ETCD_EP/metrics" | awk '
    /^grpc_server_handled_total.*grpc_code="OK".*grpc_method="Txn"/ { t = $2 }
    /^grpc_server_handled_total.*grpc_code="OK".*grpc_method="Range"/ { r = $2 }
    /^grpc_server_handled_total.*grpc_code="OK".*grpc_method="Put"/ { p = $2 }
    /^etcd_disk_wal_fsync_duration_seconds_count/ { fc = $2 }
    /^etcd_disk_wal_fsync_duration_seconds_sum/ { fs = $2 }
    /^etcd_debugging_mvcc_events_total/ { ev = $2 }
    END { printf "%d %d %d %d %.6f %d\n", t, r, p, fc, fs, ev }'
}
# settle PID...: waits (at most 5 s) until the processes together use < 5% of a core over
# 200 ms, so that one run's tail (etcd's backend commit, a replica applying its own steps from
# the watch feed) is not billed to the next run; prints how long it waited.
settle() {
  local t0 before after p
  t0=$(date +%s%N)
  for _ in $(seq 25); do
    before=0; after=0
    for p in "$@"; do before=$((before + $(cpu_ms "$p"))); done
    sleep 0.2
    for p in "$@"; do after=$((after + $(cpu_ms "$p"))); done
    (( after - before < 10 )) && break
  done
  echo "settled_ms=$(( ($(date +%s%N) - t0) / 1000000 ))"
}
run() {  # run LABEL SERVER_PID ARGS...: one loadgen run, result line appended to results
  # Besides loadgen's figures, over warm-up + measured window: the CPU etcd and the lrsched
  # server (SERVER_PID, or - for none) used per call (calls ≈ QPS × both; 10 ms resolution),
  # and etcd's counters (etcd_counters) as deltas.
  local out e0 e1 s0=0 s1=0 calls c0 c1 t0 t1
  e0=$(cpu_ms "$ETCD_PID"); [[ $2 == - ]] || s0=$(cpu_ms "$2")
  c0=$(etcd_counters); t0=$(date +%s%N)
  out=$(timeout 120 "$LOADGEN" --label="$1" --warmup_ms="$WARMUP_MS" --duration_ms="$DURATION_MS" \
        --channels="$CHANNELS" "${@:3}")
  t1=$(date +%s%N); c1=$(etcd_counters)
  e1=$(cpu_ms "$ETCD_PID"); [[ $2 == - ]] || s1=$(cpu_ms "$2")
  calls=$(awk -v q="$(sed -n 's/.* qps=\([^ ]*\).*/\1/p' <<<"$out")" \
    -v ms=$((WARMUP_MS + DURATION_MS)) 'BEGIN { print int(q * ms / 1000) + 1 }')
  out="$out etcd_cpu_us_per_call=$(( (e1 - e0) * 1000 / calls ))"
  out="$out server_cpu_us_per_call=$(( (s1 - s0) * 1000 / calls ))"
  out="$out $(awk -v a="$c0" -v b="$c1" -v wall=$(( (t1 - t0) / 1000000 )) 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    printf "etcd_txns=%d etcd_ranges=%d etcd_puts=%d wal_fsyncs=%d wal_fsync_ms=%d watch_events=%d wall_ms=%d",
      y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] - x[4], (y[5] - x[5]) * 1000, y[6] - x[6], wall }')"
  echo "$out" | tee -a "$work/results"
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')"
start_etcd
echo "etcd=$ETCD_EP $("$ETCD_BIN" --version | head -1)"
start lrsched-etcd "$SERVER" --listen=127.0.0.1:0 --store=etcd --etcd_endpoints="$ETCD_EP"
LR_ETCD=$ADDR; LR_ETCD_PID=$PID
start lrsched-sqlite "$SERVER" --listen=127.0.0.1:0 --data_dir="$work/data-sqlite"
LR_SQLITE=$ADDR; LR_SQLITE_PID=$PID

# Create the sessions (CreateSession is idempotent) and step them a little, so that the record
# whose size the bare loads copy is a stepped one.
timeout 300 "$LOADGEN" --addr="$LR_ETCD" --rpc=step --sessions="$STEP_SESSIONS" \
  --warmup_ms=100 --duration_ms=500 >/dev/null
timeout 300 "$LOADGEN" --addr="$LR_ETCD" --rpc=getlr --prefix=getlr --warmup_ms=100 \
  --duration_ms=300 >/dev/null
timeout 300 "$LOADGEN" --addr="$LR_SQLITE" --rpc=getlr --prefix=getlr --warmup_ms=100 \
  --duration_ms=300 >/dev/null
# Bare keys: /lrsched_bare/bench/<i>, outside lrsched's prefix (/lrsched/) and its watch.
bare_prefix=/lrsched_bare/bench/
for c in $CONCS; do
  for rpc in $BARE; do
    run "$rpc" - --addr="$ETCD_EP" --rpc="$rpc" --concurrency="$c" --sessions="$STEP_SESSIONS" \
      --prefix="$bare_prefix" --value_like=/lrsched/bench/0
  done
  run step "$LR_ETCD_PID" --addr="$LR_ETCD" --rpc=step --create=0 --concurrency="$c" --sessions="$STEP_SESSIONS"
  settle "$ETCD_PID" "$LR_ETCD_PID" "$LR_SQLITE_PID"
  run getlr "$LR_ETCD_PID" --addr="$LR_ETCD" --rpc=getlr --prefix=getlr --create=0 --concurrency="$c"
  run getlr-sqlite "$LR_SQLITE_PID" --addr="$LR_SQLITE" --rpc=getlr --prefix=getlr --create=0 --concurrency="$c"
done
echo "etcd $(etcd_status)"
echo "end $(uptime | sed 's/.*load/load/')"

# Table: per concurrency, QPS / p50 / p99 (µs) of each run, errors, and the two ratios.
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = v["label"] SUBSEP v["concurrency"]
    ecpu[k] = v["etcd_cpu_us_per_call"]; scpu[k] = v["server_cpu_us_per_call"]
    w = v["etcd_txns"] + v["etcd_puts"]
    wpf[k] = v["wal_fsyncs"] ? sprintf("%.1f", w / v["wal_fsyncs"]) : "-"
    busy[k] = v["wall_ms"] ? sprintf("%.0f%%", 100 * v["wal_fsync_ms"] / v["wall_ms"]) : "-"
    fsms[k] = v["wal_fsyncs"] ? sprintf("%.2f", v["wal_fsync_ms"] / v["wal_fsyncs"]) : "-"
    rpw[k] = w ? sprintf("%.3f", v["etcd_ranges"] / w) : "-"
    epw[k] = w ? sprintf("%.2f", v["watch_events"] / w) : "-"
    qps[k] = v["qps"]; p50[k] = v["p50_us"]; p99[k] = v["p99_us"]; err[k] += v["errors"]
    if (v["value_bytes"] > 0) vb[v["concurrency"]] = v["value_bytes"]
    if (!(v["concurrency"] in cs)) { cs[v["concurrency"]] = 1; conc[++nc] = v["concurrency"] }
  }
  function cell(l, c) {
    if (!((l SUBSEP c) in qps)) return "-"
    return sprintf("%d / %d / %d", qps[l SUBSEP c], p50[l SUBSEP c], p99[l SUBSEP c])
  }
  function cpu(l, c) {
    if (!((l SUBSEP c) in qps)) return "-"
    return sprintf("%d / %d", ecpu[l SUBSEP c], scpu[l SUBSEP c])
  }
  function ratio(a, b, c) {
    if (!((a SUBSEP c) in qps) || !((b SUBSEP c) in qps) || qps[b SUBSEP c] == 0) return "-"
    return sprintf("%.0f%%", 100 * qps[a SUBSEP c] / qps[b SUBSEP c])
  }
  END {
    print ""
    print "QPS / p50 µs / p99 µs; value = bytes of each bare put (the size of a Step session record in lrsched)"
    print ""
    print "| conc | value | etcd Txn (bare) | etcd Put (bare) | Step (etcd) | Step ÷ Txn | GetLR (etcd) | GetLR (SQLite) | GetLR etcd ÷ SQLite | errors |"
    print "|---:|---:|---|---|---|---:|---|---|---:|---:|"
    for (i = 1; i <= nc; i++) {
      c = conc[i]; e = 0
      split("etcd_txn etcd_put step getlr getlr-sqlite", ls, " ")
      for (j in ls) e += err[ls[j] SUBSEP c]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", c, vb[c], cell("etcd_txn", c),
        cell("etcd_put", c), cell("step", c), ratio("step", "etcd_txn", c), cell("getlr", c),
        cell("getlr-sqlite", c), ratio("getlr", "getlr-sqlite", c), e
    }
    print ""
    print "CPU per call, µs (etcd / lrsched-server): where the 2 cores go"
    print ""
    print "| conc | etcd Txn (bare) | etcd Put (bare) | Step (etcd) | GetLR (etcd) | GetLR (SQLite) |"
    print "|---:|---|---|---|---|---|"
    for (i = 1; i <= nc; i++) {
      c = conc[i]
      printf "| %s | %s | %s | %s | %s | %s |\n", c, cpu("etcd_txn", c), cpu("etcd_put", c),
        cpu("step", c), cpu("getlr", c), cpu("getlr-sqlite", c)
    }
    print ""
    print "etcd during the write runs (its /metrics): writes per WAL fsync, mean fsync ms, share of"
    print "the run spent in WAL fsync, Range calls per write, watch events per write"
    print ""
    print "| conc | run | writes / fsync | fsync ms | fsync busy | Range / write | events / write |"
    print "|---:|---|---:|---:|---:|---:|---:|"
    split("etcd_txn etcd_put step", wl, " ")
    for (i = 1; i <= nc; i++) for (j = 1; j <= 3; j++) {
      k = wl[j] SUBSEP conc[i]
      if (!(k in qps)) continue
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", conc[i], wl[j], wpf[k], fsms[k], busy[k], rpw[k], epw[k]
    }
  }' "$work/results"
