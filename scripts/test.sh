#!/usr/bin/env bash
# The README's second command (and all .ci/run does): install, build, run every test, three ways:
#   1. ./build: ctest, then pytest (Debian's /usr/bin/python3) against its binaries;
#   2. ./build-asan (-DLRSCHED_SANITIZE=ON: ASan + UBSan, no benchmarks): ctest, then pytest
#      against the sanitized server and CLI;
#   3. scripts/fuzz.sh: each libFuzzer target for FUZZ_SECONDS (default 60) seconds.
# Prints each suite's closing summary and exits non-zero if any suite fails.
#   Stages 2 and 3 are opt-in (LRSCHED_CI_SANITIZE=1, LRSCHED_CI_FUZZ=1): together they more
#   than double the run on a 2-core machine, beyond the CI budget this project set itself.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh || exit 1
build=${BUILD_DIR:-build}
summary=()

# run_suites NAME BUILD_DIR: ctest and pytest of one build tree; records their exit codes.
run_suites() {
  local name=$1 dir=$2 rc
  (cd "$dir" && ctest --output-on-failure -j2 --timeout 300)
  rc=$?
  summary+=("$name ctest exit code: $rc")
  # Debian's interpreter: python3-grpcio, python3-protobuf and python3-pytest belong to it.
  LRSCHED_BIN_DIR="$PWD/$dir" PYTHONPATH="$PWD/client/python:$PWD/$dir/client/python" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
  rc=$?
  summary+=("$name pytest exit code: $rc")
}

run_suites normal "$build"

if [[ ${LRSCHED_CI_SANITIZE:-0} != 0 ]]; then
  asan=${ASAN_BUILD_DIR:-build-asan}
  if BUILD_DIR=$asan scripts/build.sh -DLRSCHED_SANITIZE=ON -DLRSCHED_BUILD_BENCH=OFF; then
    # Every finding fails the test that hit it: ASan aborts, UBSan too (-fno-sanitize-recover).
    ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1} \
      UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
      run_suites sanitize "$asan"
  else
    summary+=("sanitize build exit code: 1")
  fi
fi

if [[ ${LRSCHED_CI_FUZZ:-0} != 0 ]]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-60} scripts/fuzz.sh
  summary+=("fuzz exit code: $?")
fi

failed=0
for line in "${summary[@]}"; do
  echo "$line"
  [[ $line == *"exit code: 0" ]] || failed=1
done
exit "$failed"
