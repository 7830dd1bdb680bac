#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz: fuzz_expr, fuzz_spec, fuzz_state, fuzz_record,
# fuzz_journal; clang, ASan+UBSan) into ./build-fuzz and runs each for a bounded time on a
# temporary copy of its seed corpus
# (tests/fuzz/corpus/TARGET; the repository's corpus is never written). Exits non-zero if any
# target crashes; the crashing input is kept under build-fuzz/artifacts/TARGET/ (save it in
# tests/fuzz/regressions/TARGET/ so that fuzz_regression_test replays it from then on).
#   scripts/fuzz.sh [TARGET...]      FUZZ_SECONDS=60 (per target), FUZZ_BUILD_DIR=build-fuzz
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || exit 1
build=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-60}
CC=clang CXX=clang++ cmake -S tests/fuzz -B "$build" -DLRSCHED_FUZZ=ON >/dev/null || exit 1
cmake --build "$build" -j"${JOBS:-2}" >/dev/null || { cmake --build "$build" -j1; exit 1; }

# Input bounds: a little over Expr's 1024-byte source limit; specs and states as large as a
# composite schedule needs (the engine's own 1 MiB limit is not what is being searched).
declare -A max_len=([expr]=1100 [spec]=4096 [state]=8192 [record]=8192 [journal]=4096)
targets=("$@")
((${#targets[@]})) || targets=(expr spec state record journal)
work=$(mktemp -d /tmp/lrsched-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  [[ -n ${max_len[$t]:-} ]] || { echo "fuzz: unknown target $t (expr, spec, state, record, journal)"; exit 2; }
  mkdir -p "$work/$t" "$build/artifacts/$t"
  cp -r "tests/fuzz/corpus/$t/." "$work/$t/"
  # -timeout: an input taking 10 s is a hang (Eval and Step are bounded by design).
  UBSAN_OPTIONS=print_stacktrace=1 "$build/fuzz_$t" "$work/$t" -max_total_time="$seconds" \
    -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t/" >"$work/$t.log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
  if ((rc == 0)); then
    echo "fuzz_$t: ok, ${runs:-?} inputs in ${seconds}s"
  else
    failed+=("$t")
    echo "fuzz_$t: FAILED (exit $rc); last lines of its log:"
    tail -n 60 "$work/$t.log"
    ls "$build/artifacts/$t/"
  fi
done
((${#failed[@]} == 0)) || { echo "fuzz: crashes in ${failed[*]}"; exit 1; }
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a crash"
