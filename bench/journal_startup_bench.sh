#!/usr/bin/env bash
# Start-up of lrsched-server with a journal to replay (issue #20: 100k sessions and a 1M-record
# journal, < 3 s): the seconds from exec to its `event=listening` log line.
#
#   bench/journal_startup_bench.sh   # after: cmake --build build --target startup_db lrsched-server
#
# Writes the data directory once with bench/startup_db --journal_records (SESSIONS sessions in
# lrsched.db, then RECORDS journal records past the applied seq, each re-writing a session's
# record at its next revision), then RUNS times: copies it afresh (a start replays and applies
# the journal, so each run needs the unreplayed copy), starts the server on the copy, and prints
# the time to listening and the CPU time used by then, the server's `journal_replayed records=`
# and its RSS; then stops it (SIGTERM) and checks the clean stop left the journal empty. Also
# one run on the same database with an empty journal, for the cost of the replay alone.
# Environment: BUILD (build), SESSIONS (100000), RECORDS (1000000), RUNS (3), SERVER_FLAGS ("").
# Binds 127.0.0.1:0; every server is stopped, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SESSIONS=${SESSIONS:-100000}
RECORDS=${RECORDS:-1000000}
RUNS=${RUNS:-3}
SERVER_FLAGS=${SERVER_FLAGS:-}
SERVER=$BUILD/server/lrsched-server
DB=$BUILD/bench/startup_db
for b in "$SERVER" "$DB"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 2; }; done

work=$(mktemp -d /tmp/lrsched-jstartup.XXXXXX)
PID=
cleanup() {
  if [[ -n $PID ]]; then kill -KILL "$PID" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

# measure DIR: sets SECS (exec to listening), CPU (its CPU seconds by then), REPLAYED (records)
# and RSS (KiB) of a server
# started on DIR, then stops it cleanly.
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
  # CPU seconds so far (utime + stime, in clock ticks): steadier than wall time on a shared VM.
  CPU=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$PID/stat")
  REPLAYED=$(sed -n 's/.*event=journal_replayed .*records=\([0-9]*\).*/\1/p' "$log" | head -1)
  kill -TERM "$PID"
  for _ in $(seq 1200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done  # 120 s
  kill -KILL "$PID" 2>/dev/null || true
  wait "$PID" || { echo "server exited with $? after SIGTERM:" >&2; tail -20 "$log" >&2; exit 1; }
  PID=
  SECS=$(awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", ns / 1e9}')
  if [[ -n $(find "$1" -path "$1/journal/*" 2>/dev/null) ]]; then
    echo "after a clean stop $1/journal is not empty:" >&2
    ls -l "$1/journal" >&2
    exit 1
  fi
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')" \
     "server_flags=\"$SERVER_FLAGS\""
"$DB" --dir="$work/full" --sessions="$SESSIONS" --journal_records="$RECORDS"
du -k "$work/full"/lrsched.db* "$work/full/journal" | sed 's/^/kib: /'
for r in $(seq "$RUNS"); do
  rm -rf "$work/run"
  cp -a "$work/full" "$work/run"
  measure "$work/run"
  echo "run=$r sessions=$SESSIONS journal_records=$RECORDS start_s=$SECS cpu_s=$CPU" \
       "replayed=${REPLAYED:-?} rss_kib=$RSS"
  [[ ${REPLAYED:-} == "$RECORDS" ]] || echo "warning: replayed ${REPLAYED:-none} of $RECORDS" >&2
done
measure "$work/run"  # the same data, its journal applied by the last run's clean stop
echo "empty_journal sessions=$SESSIONS start_s=$SECS cpu_s=$CPU replayed=${REPLAYED:-?}" \
     "rss_kib=$RSS"
echo "end $(uptime | sed 's/.*load/load/')"
