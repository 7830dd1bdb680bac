#!/usr/bin/env bash
# Bytes written to disk per acknowledged Step (issue #20): the write amplification of the
# store, journal + apply + checkpoints, as the kernel counts it (/proc/PID/io write_bytes: bytes
# the process caused to be sent to the block layer, charged when a page cache page is dirtied).
#
#   bench/write_bytes_bench.sh          # after: cmake --build build --target loadgen lrsched-server
#   SERVER_FLAGS="--sqlite_synchronous=normal" DURATION=60 bench/write_bytes_bench.sh
#
# One lrsched-server (flags from SERVER_FLAGS; data dir in a scratch directory under /tmp, which
# must be a disk, not tmpfs: tmpfs writes nothing) on 127.0.0.1:0, then:
#   1. create SESSIONS sessions (bench/loadgen's create pass, plus a 0.1 s Step run), wait
#      SETTLE seconds (so that what the creates left pending is written before the count starts);
#   2. the Step phase: loadgen --rpc=step, CONC clients round-robin over the sessions for
#      DURATION seconds; write_bytes and the server's Step OK count (lrsched_rpc_total) are read
#      before and after it;
#   3. a clean stop (SIGTERM): the server is a child of a small sh wrapper, whose own /proc/PID/io
#      includes its reaped child's, so the writes of the final apply/checkpoint are counted too.
# Prints the change of the store's counters over the Step phase (transactions, checkpoints, the
# journal's bytes, syncs and applies when it has one), then one key=value line: step_bytes_per_step (phase 2 only) and with_stop_bytes_per_step
# (phase 2 + the stop), cancelled_write_bytes (dirty pages truncated away before writeback, e.g.
# deleted journal segments) of the whole run, and the totals.
# Environment: BUILD (build), SERVER_FLAGS (""), DURATION (60, seconds), CONC (8), SESSIONS
# (1000), SETTLE (2, seconds). Every process started here is stopped on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SERVER_FLAGS=${SERVER_FLAGS:-}
DURATION=${DURATION:-60}
CONC=${CONC:-8}
SESSIONS=${SESSIONS:-1000}
SETTLE=${SETTLE:-2}
LOADGEN=$BUILD/bench/loadgen
SERVER=$BUILD/server/lrsched-server
for b in "$LOADGEN" "$SERVER"; do
  [[ -x $b ]] || { echo "missing $b (build it first)" >&2; exit 2; }
done

WORK_NAME=lrsched-wbytes
# shellcheck source=bench/common.sh
source bench/common.sh

io() { awk -v k="$1:" '$1 == k {print $2}' "$2"; }
scrape() { curl -sf --max-time 10 "http://127.0.0.1:$MPORT/metrics" >"$1"; }
metric() {  # metric NAME FILE: a sample's value (0 if absent); NAME may carry {labels}
  awk -v k="$1" '$1 == k {print $2; found=1} END {if (!found) print 0}' "$2"
}
# Counters whose change over the Step phase is printed beside the bytes: the store's
# transactions and checkpoints, and the journal's (absent, so 0, without it).
COUNTERS="lrsched_store_commits_total lrsched_store_transactions_total
  lrsched_store_wal_checkpoints_total lrsched_store_wal_syncs_total
  lrsched_store_journal_bytes_total lrsched_store_journal_syncs_total
  lrsched_store_journal_applies_total lrsched_store_journal_waits_total"
STEP_OK='lrsched_rpc_total{method="lrsched.v1.LrScheduler/Step",code="OK"}'

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')" \
     "fs=$(df -T "$work" | awk 'NR == 2 {print $2}') server_flags=\"$SERVER_FLAGS\""
# shellcheck disable=SC2086  # SERVER_FLAGS is a list of flags
# shellcheck disable=SC2016  # $0, $! and $$ are the wrapper's
start server sh -c '"$@" & echo $! >"$0"; wait $!; rc=$?; cat /proc/$$/io >"$0.io"; exit $rc' \
  "$work/server.pid" "$SERVER" --listen=127.0.0.1:0 --data_dir="$work/data" \
  --metrics_listen=127.0.0.1:0 --max_sessions=$((SESSIONS + 1000)) $SERVER_FLAGS
WRAPPER=$PID
SPID=$(cat "$work/server.pid")
pids+=("$SPID")  # cleanup stops the server itself, not only its wrapper
MPORT=
for _ in $(seq 100); do  # at most 10 s: logged right after event=listening
  MPORT=$(sed -n 's/.*event=metrics_listening .*port=\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
  [[ -n $MPORT ]] && break
  sleep 0.1
done
[[ -n $MPORT ]] || { echo "no event=metrics_listening in the server's log" >&2; exit 1; }

timeout 600 "$LOADGEN" --addr="$ADDR" --rpc=step --sessions="$SESSIONS" --concurrency="$CONC" \
  --warmup_ms=0 --duration_ms=100 >/dev/null
sleep "$SETTLE"
cp "/proc/$SPID/io" "$work/io1"
scrape "$work/m1"
run=$(timeout $((DURATION + 120)) "$LOADGEN" --addr="$ADDR" --rpc=step --create=0 \
  --sessions="$SESSIONS" --concurrency="$CONC" --warmup_ms=0 --duration_ms=$((DURATION * 1000)))
cp "/proc/$SPID/io" "$work/io2"
scrape "$work/m2"
echo "loadgen: $run"
deltas=
for m in $COUNTERS; do
  d=$(awk -v a="$(metric "$m" "$work/m1")" -v b="$(metric "$m" "$work/m2")" 'BEGIN {print b - a}')
  deltas+="${m#lrsched_store_}=$d "
done
echo "step_phase_counters: $deltas"

kill -TERM "$SPID"
for _ in $(seq 600); do kill -0 "$WRAPPER" 2>/dev/null || break; sleep 0.1; done  # at most 60 s
wait "$WRAPPER" || { echo "server exited with $?:" >&2; tail -20 "$work/server.log" >&2; exit 1; }
pids=()
[[ -s $work/server.pid.io ]] || { echo "no io counters from the wrapper" >&2; exit 1; }

w1=$(io write_bytes "$work/io1"); w2=$(io write_bytes "$work/io2")
w3=$(io write_bytes "$work/server.pid.io")
c3=$(io cancelled_write_bytes "$work/server.pid.io")
acked=$(($(metric "$STEP_OK" "$work/m2") - $(metric "$STEP_OK" "$work/m1")))
((acked > 0)) || { echo "no Step acknowledged in the Step phase" >&2; exit 1; }
echo "acked_steps=$acked step_write_bytes=$((w2 - w1)) with_stop_write_bytes=$((w3 - w1))" \
     "step_bytes_per_step=$(((w2 - w1) / acked)) with_stop_bytes_per_step=$(((w3 - w1) / acked))" \
     "total_write_bytes=$w3 total_cancelled_write_bytes=$c3" \
     "data_dir_kib_after_stop=$(du -sk "$work/data" | cut -f1)"
echo "end $(uptime | sed 's/.*load/load/')"
