#!/usr/bin/env bash
# The README's second command (and all .ci/run does): install, build, run every test.
# Prints ctest's and pytest's closing summaries; exits non-zero if either suite fails.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh || exit 1
build=${BUILD_DIR:-build}

(cd "$build" && ctest --output-on-failure -j2 --timeout 300)
ctest_rc=$?

# Debian's interpreter: python3-grpcio, python3-protobuf and python3-pytest belong to it.
LRSCHED_BIN_DIR="$PWD/$build" PYTHONPATH="$PWD/client/python:$PWD/$build/client/python" \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
pytest_rc=$?

echo "ctest exit code: $ctest_rc; pytest exit code: $pytest_rc"
[[ $ctest_rc -eq 0 && $pytest_rc -eq 0 ]]
