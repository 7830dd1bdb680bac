#!/usr/bin/env bash
# Installs what is missing and builds everything into ./build (Release with debug info, -j2).
#   BUILD_DIR=... to build elsewhere; extra CMake options go after the script's name.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"${JOBS:-2}"
