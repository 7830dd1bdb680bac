#!/usr/bin/env bash
# The README's first command: install, build, and start the server on its embedded default
# store (SQLite under ./data), listening on 127.0.0.1:50051 unless flags say otherwise.
#   scripts/run.sh [lrsched-server flags...]     e.g. scripts/run.sh --listen=0.0.0.0:50051
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p data
exec build/server/lrsched-server --data_dir=./data "$@"
