#!/usr/bin/env bash
# Fresh-replica start-up on the etcd backend (issue #6): how long lrsched-server --store=etcd
# takes to load SESSIONS sessions (default 100,000) from etcd, and its memory.
#
#   bench/etcd_startup_bench.sh    # after: cmake --build build-bench --target startup_db lrsched-server
#
# Starts one etcd member (127.0.0.1, free ports, data under /tmp, bench/etcd_common.sh), writes
# the sessions with bench/startup_db --store=etcd (the server's own Registry and record format,
# written to SQLite and copied to etcd in batched Txns), then starts lrsched-server
# --store=etcd on it RUNS times (default 3): the time from exec to its `event=listening` line
# and VmRSS / VmHWM at that moment, as bench/startup_bench.sh does for SQLite. A server on an
# empty prefix gives the baseline. Last, startup_db --load_only=1 splits the load in-process
# into etcd's Range alone and the whole Registry::Load. Everything started is stopped on exit,
# also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
SESSIONS=${SESSIONS:-100000}
RUNS=${RUNS:-3}
SERVER=$BUILD/server/lrsched-server
DB=$BUILD/bench/startup_db
for b in "$SERVER" "$DB"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 2; }; done
WORK_NAME=lrsched-etcdstartup
source bench/etcd_common.sh

# measure PREFIX: sets MS (exec to listening), RSS and HWM (KiB) of a server on PREFIX in etcd.
measure() {
  local log=$work/server.log t0 t1 ok=
  : >"$log"  # truncated here: the background child's own truncation may come after the grep
  t0=$(date +%s%N)
  "$SERVER" --listen=127.0.0.1:0 --store=etcd --etcd_endpoints="$ETCD_EP" --etcd_prefix="$1" \
    --max_sessions=$((SESSIONS + 1000)) 2>"$log" &
  PID=$!
  pids+=("$PID")
  for _ in $(seq 12000); do  # at most 60 s
    if grep -q 'event=listening' "$log"; then ok=1; break; fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.005
  done
  t1=$(date +%s%N)
  [[ -n $ok ]] || { echo "server did not start:" >&2; tail -20 "$log" >&2; exit 1; }
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
  HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  stop "$PID"
  MS=$(( (t1 - t0) / 1000000 ))
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')"
start_etcd
echo "etcd=$ETCD_EP $("$ETCD_BIN" --version | head -1)"
measure /empty/
base_rss=$RSS
echo "empty prefix: start_ms=$MS rss_kib=$base_rss"
timeout 1200 "$DB" --dir="$work/sqlite" --sessions="$SESSIONS" --store=etcd \
  --etcd_endpoints="$ETCD_EP" --etcd_prefix=/lrsched/
echo "etcd $(etcd_status)"
for r in $(seq "$RUNS"); do
  measure /lrsched/
  echo "run=$r sessions=$SESSIONS start_ms=$MS rss_kib=$RSS hwm_kib=$HWM" \
       "bytes_per_session=$(( (RSS - base_rss) * 1024 / SESSIONS ))" \
       "hwm_bytes_per_session=$(( (HWM - base_rss) * 1024 / SESSIONS ))"
done
# The same load in-process, split: etcd's paged Range alone, then Registry::Load (absl deadlock
# detection off, as lrsched-server runs).
timeout 300 "$DB" --dir="$work/sqlite" --sessions="$SESSIONS" --store=etcd \
  --etcd_endpoints="$ETCD_EP" --etcd_prefix=/lrsched/ --load_only=1 --deadlock_detection=off
echo "end $(uptime | sed 's/.*load/load/')"
