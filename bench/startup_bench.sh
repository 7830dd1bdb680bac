#!/usr/bin/env bash
# Start-up time and memory of lrsched-server holding SESSIONS sessions (default 100,000), and,
# with RECORDS > 0, a journal of RECORDS records to replay first (issue #20).
#
#   bench/startup_bench.sh     # after: cmake --build build-bench --target startup_db lrsched-server
#   BUILD=build RECORDS=1000000 bench/startup_bench.sh      # 100k sessions + a 1M-record journal
#
# Writes the database once with bench/startup_db (the server's own Registry and record
# format), then starts lrsched-server on it RUNS times (default 3): the time from exec to its
# `event=listening` log line, the CPU time used by then (utime + stime: steadier than wall time
# on a shared VM), and VmRSS / VmHWM from /proc/PID/status at that moment. The same for an
# empty database gives the baseline; per-session memory = (RSS - empty RSS) / SESSIONS.
# With RECORDS: startup_db --journal_records writes RECORDS journal records past the applied
# seq after the database, each re-writing a session's record at its next revision; every run
# starts on a fresh copy (a start replays and applies the journal), prints the server's
# `journal_replayed records=` and checks that the clean stop left the journal empty; a last run
# on the applied copy gives the start-up with nothing to replay.
# Environment: BUILD (build-bench), SESSIONS (100000), RECORDS (0), RUNS (3), SERVER_FLAGS ("").
# Binds 127.0.0.1:0; every server is stopped, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
SESSIONS=${SESSIONS:-100000}
RECORDS=${RECORDS:-0}
RUNS=${RUNS:-3}
SERVER_FLAGS=${SERVER_FLAGS:-}
SERVER=$BUILD/server/lrsched-server
DB=$BUILD/bench/startup_db
for b in "$SERVER" "$DB"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 2; }; done

work=$(mktemp -d /tmp/lrsched-startup.XXXXXX)
PID=
cleanup() {
  if [[ -n $PID ]]; then kill -KILL "$PID" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

# measure DIR: sets MS and SECS (exec to listening), CPU (its CPU seconds by then), REPLAYED
# (journal records), RSS and HWM (KiB) of a server started on DIR, then stops it cleanly and
# checks the stop left DIR/journal empty.
measure() {
  local log=$work/server.log t0 t1 up=
  : >"$log"  # truncated here: the background child's own truncation may come after the grep
  t0=$(date +%s%N)
  # shellcheck disable=SC2086  # SERVER_FLAGS is a list of flags
  "$SERVER" --listen=127.0.0.1:0 --data_dir="$1" --max_sessions=$((SESSIONS + 1000)) \
    $SERVER_FLAGS 2>"$log" &
  PID=$!
  for _ in $(seq 24000); do  # at most 120 s
    if grep -q 'event=listening' "$log"; then up=1; break; fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.005
  done
  t1=$(date +%s%N)
  [[ -n $up ]] || { echo "server did not start:" >&2; tail -20 "$log" >&2; exit 1; }
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
  HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  CPU=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$PID/stat")
  REPLAYED=$(sed -n 's/.*event=journal_replayed .*records=\([0-9]*\).*/\1/p' "$log" | head -1)
  kill -TERM "$PID"
  for _ in $(seq 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done  # 120 s
  kill -KILL "$PID" 2>/dev/null || true
  wait "$PID" || { echo "server exited with $? after SIGTERM:" >&2; tail -20 "$log" >&2; exit 1; }
  PID=
  MS=$(( (t1 - t0) / 1000000 ))
  SECS=$(awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", ns / 1e9}')
  if [[ -n $(find "$1" -path "$1/journal/*" 2>/dev/null) ]]; then
    echo "after a clean stop $1/journal is not empty:" >&2
    ls -l "$1/journal" >&2
    exit 1
  fi
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')" \
     "server_flags=\"$SERVER_FLAGS\""
mkdir -p "$work/empty"
measure "$work/empty"
base_rss=$RSS
echo "empty database: rss_kib=$base_rss"
"$DB" --dir="$work/full" --sessions="$SESSIONS" --journal_records="$RECORDS"
du -k "$work/full"/lrsched.db* | sed 's/^/db_kib: /'
[[ $RECORDS == 0 ]] || du -sk "$work/full/journal" | sed 's/^/journal_kib: /'
for r in $(seq "$RUNS"); do
  dir=$work/full
  if [[ $RECORDS != 0 ]]; then  # each run replays the journal afresh
    rm -rf "$work/run"
    cp -a "$work/full" "$work/run"
    dir=$work/run
  fi
  measure "$dir"
  echo "run=$r sessions=$SESSIONS journal_records=$RECORDS start_ms=$MS start_s=$SECS" \
       "cpu_s=$CPU replayed=${REPLAYED:-0} rss_kib=$RSS hwm_kib=$HWM" \
       "bytes_per_session=$(( (RSS - base_rss) * 1024 / SESSIONS ))" \
       "hwm_bytes_per_session=$(( (HWM - base_rss) * 1024 / SESSIONS ))"
  [[ ${REPLAYED:-0} == "$RECORDS" ]] || echo "warning: replayed ${REPLAYED:-none} of $RECORDS" >&2
done
if [[ $RECORDS != 0 ]]; then
  measure "$work/run"  # the same data, its journal applied by the last run's clean stop
  echo "empty_journal sessions=$SESSIONS start_ms=$MS start_s=$SECS cpu_s=$CPU rss_kib=$RSS"
fi
echo "end $(uptime | sed 's/.*load/load/')"
