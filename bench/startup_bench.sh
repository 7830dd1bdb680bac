#!/usr/bin/env bash
# Start-up time and memory of lrsched-server holding SESSIONS sessions (default 100,000).
#
#   bench/startup_bench.sh     # after: cmake --build build-bench --target startup_db lrsched-server
#
# Writes the database once with bench/startup_db (the server's own Registry and record
# format), then starts lrsched-server on it RUNS times (default 3): the time from exec to its
# `event=listening` log line, and VmRSS / VmHWM from /proc/PID/status at that moment. The same
# for an empty database gives the baseline; per-session memory = (RSS - empty RSS) / SESSIONS.
# Binds 127.0.0.1:0; every server is stopped, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
SESSIONS=${SESSIONS:-100000}
RUNS=${RUNS:-3}
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

# measure DIR: sets MS (exec to listening), RSS and HWM (KiB) of a server started on DIR.
measure() {
  local log=$work/server.log t0 t1 addr=
  : >"$log"  # truncated here: the background child's own truncation may come after the grep
  t0=$(date +%s%N)
  "$SERVER" --listen=127.0.0.1:0 --data_dir="$1" --max_sessions=$((SESSIONS + 1000)) \
    2>"$log" &
  PID=$!
  for _ in $(seq 6000); do  # at most 60 s
    if grep -q 'event=listening' "$log"; then addr=1; break; fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.005
  done
  t1=$(date +%s%N)
  [[ -n $addr ]] || { echo "server did not start:" >&2; cat "$log" >&2; exit 1; }
  RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
  HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  kill -TERM "$PID"
  for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
  MS=$(( (t1 - t0) / 1000000 ))
}

echo "date=$(date -u +%FT%TZ) nproc=$(nproc) $(uptime | sed 's/.*load/load/')"
mkdir -p "$work/empty"
measure "$work/empty"
base_rss=$RSS
echo "empty database: rss_kib=$base_rss"
"$DB" --dir="$work/full" --sessions="$SESSIONS"
du -k "$work/full"/lrsched.db* | sed 's/^/db_kib: /'
for r in $(seq "$RUNS"); do
  measure "$work/full"
  echo "run=$r sessions=$SESSIONS start_ms=$MS rss_kib=$RSS hwm_kib=$HWM" \
       "bytes_per_session=$(( (RSS - base_rss) * 1024 / SESSIONS ))" \
       "hwm_bytes_per_session=$(( (HWM - base_rss) * 1024 / SESSIONS ))"
done
echo "end $(uptime | sed 's/.*load/load/')"
