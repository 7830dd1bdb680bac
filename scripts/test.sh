#!/usr/bin/env bash
# The README's second command (and all .ci/run does): install, build, run every test, three ways:
#   1. ./build: ctest, then pytest against its binaries, with the Python package pip-installed
#      into ./build/venv (over Debian's /usr/bin/python3), not from the source tree;
#   2. ./build-asan (-DLRSCHED_SANITIZE=ON: ASan + UBSan, no benchmarks): ctest, then pytest
#      against the sanitized server and CLI (with LRSCHED_SANITIZED=1, which drops the tests'
#      bounds on the server's RSS: under ASan it measures the sanitizer's own memory);
#   3. scripts/fuzz.sh: each libFuzzer target for FUZZ_SECONDS (here 30 by default) seconds.
#   0. scripts/check-tree.sh: format and include rules (seconds).
# Prints each suite's closing summary and exits non-zero if any suite fails.
#   All three run by default (issue #5). LRSCHED_CI_SANITIZE=0 and LRSCHED_CI_FUZZ=0 skip stages
#   2 and 3 for a quick local run (stage 1 alone: ~5 min on 2 cores).
#   Budget, measured on a 2-core machine (2026-11-25): stage 1 5m08s; stage 2 7m06s to build
#   from scratch + 0m49s ctest + 2m16s pytest (the 60 s soak included); stage 3 ~30 s to build
#   + 3 x FUZZ_SECONDS. With 30 s per target the whole run is ~17.5 min, inside the project's
#   ~20 min CI budget; 60 s per target (fuzz.sh's own default) would leave about one minute of
#   slack, too little for a shared machine.
#   Re-measured 2026-11-30 on a 2-core VM about three times slower per call (bench/README.md):
#   23m44s for the whole run with ./build up to date and build-asan built from scratch (the
#   suites themselves: normal ctest 0.5 min + pytest 1.9 min, sanitized 1 min + 2.8 min).
#   CI took 2653 s on 2026-12-03 (stop 21), near its 45-minute budget, mostly compiling both
#   trees cold; since then RelWithDebInfo keeps line tables only (-g1) and the sanitized tree
#   builds at -O1 (CMakeLists.txt: about 20% and 55% less compile CPU), while #15 added
#   python3-torch and its tests (~1.5 min a suite).
#   Since 2026-12-03 evening the sanitized tree runs each test executable as one ctest test (tests/
#   CMakeLists.txt): its ctest went from 350 s to 60 s. Since 2026-12-04 it builds at -Og (37%
#   less compile CPU than -O1); its suites then took 55 s (ctest) and 320 s (pytest, 642 tests
#   with #19's HTTP, browser and package tests) against 64 s and 289 s (574 tests) at -O1.
#   Each stage's wall time is printed with the summary ("time, STAGE: N s").
#   No sanitizer suppressions are needed: the whole suite is clean under ASan, LSan and UBSan
#   (with float-cast-overflow, see CMakeLists.txt). A new finding is ours until shown otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
# Wall time of each stage, printed with the summary: the 45-minute budget is spent here.
timings=()
stage_start=$SECONDS
stage_done() {
  timings+=("$1: $((SECONDS - stage_start)) s")
  stage_start=$SECONDS
}
scripts/build.sh || exit 1
stage_done "build"
build=${BUILD_DIR:-build}
summary=()

# The tree's own rules (format, each folder's include rule): seconds, and a red CI if broken.
scripts/check-tree.sh
summary+=("tree check exit code: $?")
stage_done "tree check"

# install_venv DIR: a fresh venv at DIR over Debian's /usr/bin/python3 (its python3-grpcio,
# python3-protobuf, python3-pytest, torch), with `pip install ./client/python` in it, as the
# README tells users. No pip of its own (--without-pip: Debian's pip, seen through the system
# site-packages, installs into the venv) and no index (pip.conf and --no-index; no PyPI here):
# a few seconds, measured 2026-12-03 at ~3 s idle and ~10 s with the machine loaded.
install_venv() {
  local venv=$1
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages --without-pip "$venv" || return 1
  printf '[global]\nno-index = true\ndisable-pip-version-check = true\n' > "$venv/pip.conf"
  "$venv/bin/python" -m pip install -q --no-index --no-build-isolation ./client/python
}

# run_suites NAME BUILD_DIR [PYTHON]: ctest and pytest of one build tree; records their exit
# codes. With PYTHON (a venv's, lrsched installed in it) pytest runs against the installed
# package, client/python off the path (LRSCHED_EXPECT_INSTALLED=1: test_python_package.py fails
# otherwise); without, Debian's interpreter takes the package from the source tree.
run_suites() {
  local name=$1 dir=$2 python=${3:-} rc
  (cd "$dir" && ctest --output-on-failure -j2 --timeout 300)
  rc=$?
  summary+=("$name ctest exit code: $rc")
  stage_done "$name ctest"
  if [[ -n $python ]]; then
    LRSCHED_BIN_DIR="$PWD/$dir" LRSCHED_EXPECT_INSTALLED=1 PYTHONPATH="$PWD/tests/python" \
      "$python" -m pytest -q -p no:cacheprovider tests/python
  else
    # Debian's interpreter: python3-grpcio, python3-protobuf and python3-pytest belong to it.
    LRSCHED_BIN_DIR="$PWD/$dir" PYTHONPATH="$PWD/client/python:$PWD/$dir/client/python" \
      /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
  fi
  rc=$?
  summary+=("$name pytest exit code: $rc")
  stage_done "$name pytest"
}

# The normal tree's Python tests run against the package as pip installs it (issue #19).
venv="$build/venv"
if install_venv "$venv"; then
  stage_done "pip install into $venv"
  run_suites normal "$build" "$PWD/$venv/bin/python"
else
  summary+=("pip install ./client/python exit code: 1")
  run_suites normal "$build"
fi

if [[ ${LRSCHED_CI_SANITIZE:-1} != 0 ]]; then
  asan=${ASAN_BUILD_DIR:-build-asan}
  if BUILD_DIR=$asan scripts/build.sh -DLRSCHED_SANITIZE=ON -DLRSCHED_BUILD_BENCH=OFF; then
    stage_done "sanitize build"
    # Every finding fails the test that hit it: ASan aborts, UBSan too (-fno-sanitize-recover).
    ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1} \
      UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
      LRSCHED_SANITIZED=1 run_suites sanitize "$asan"
  else
    summary+=("sanitize build exit code: 1")
  fi
fi

if [[ ${LRSCHED_CI_FUZZ:-1} != 0 ]]; then
  # 30 s per target fits the CI budget above; set FUZZ_SECONDS for a longer run.
  FUZZ_SECONDS=${FUZZ_SECONDS:-30} scripts/fuzz.sh
  summary+=("fuzz exit code: $?")
  stage_done "fuzz (build and run)"
fi

for line in "${timings[@]}"; do
  echo "time, $line"
done
failed=0
for line in "${summary[@]}"; do
  echo "$line"
  [[ $line == *"exit code: 0" ]] || failed=1
done
exit "$failed"
