# shellcheck shell=bash
# Shared by the benchmark scripts (sourced, not run): a scratch directory, process bookkeeping
# with a trap that stops everything on exit (also on failure), and start/stop helpers for
# servers that log `event=listening addr=HOST:PORT` (lrsched-server, echo_server).
#
# The sourcing script may set WORK_NAME first; afterwards $work is the scratch directory and
# every process started with start, or added to `pids`, is stopped (SIGTERM, at most 10 s, then
# SIGKILL) when the script exits.

work=$(mktemp -d "/tmp/${WORK_NAME:-lrsched-bench}.XXXXXX")
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

# start NAME CMD...: starts CMD in the background, waits (at most WAIT_S, default 20 s) for its
# `event=listening addr=` line, sets ADDR and PID. Its stderr is $work/NAME.log.
start() {
  local name=$1; shift
  : >"$work/$name.log"  # exists before the sed below, whatever the background child's timing
  "$@" 2>"$work/$name.log" &
  PID=$!
  pids+=("$PID")
  ADDR=
  for _ in $(seq $(( ${WAIT_S:-20} * 10 ))); do
    ADDR=$(sed -n 's/.*event=listening addr=\([^ ]*\).*/\1/p' "$work/$name.log" | head -1)
    [[ -n $ADDR ]] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2; tail -20 "$work/$name.log" >&2; exit 1
}

stop() {  # stop PID: SIGTERM, at most 20 s, then SIGKILL; reaped and forgotten by cleanup
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
}
