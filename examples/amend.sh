#!/usr/bin/env bash
# Changing a running schedule (README.md "Changing a running schedule"), end to end: starts an
# lrsched-server on a free port of 127.0.0.1 (its data in a temporary directory, removed at the
# end), then
#   1. a cosine run (T_max 100) extended mid-way, at step 60, to T_max 200 (reparameterize),
#   2. a warmup-stable-decay run whose cooldown is decided while it runs: at step 100 the
#      operator schedules a 50-step linear cooldown to start at step 150 (continue_with),
# and draws each with `lrsched plot --session` into examples/amend-extend.svg and
# examples/amend-cooldown.svg (the past solid, the lookahead dashed, the amendments marked).
# Run from anywhere after the build (BUILD_DIR: the build directory, default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
L=$build/client/lrsched
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
"$build/server/lrsched-server" --listen="127.0.0.1:$port" --data_dir="$tmp/data" \
  2>"$tmp/server.log" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
addr="127.0.0.1:$port"
lr() { "$L" "$@" --server="$addr"; }
for _ in $(seq 100); do lr health >/dev/null 2>&1 && break; sleep 0.1; done
lr health
steps() {  # steps NAME N: N conditional steps, as a trainer would make them
  local e
  e=$(lr get "$1" --json | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["last_epoch"])')
  for _ in $(seq "$2"); do lr step "$1" --if-epoch="$e" >/dev/null; e=$((e + 1)); done
}

# 1. Extend a cosine run mid-way.
cat >"$tmp/cosine.json" <<'JSON'
{"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
 "scheduler": {"type": "CosineAnnealingLR", "T_max": 100, "eta_min": 0.001}}
JSON
lr create demo/cosine --spec="$tmp/cosine.json" >/dev/null
steps demo/cosine 60
lr amend demo/cosine --set T_max=200 --dry-run --window=3
lr amend demo/cosine --set T_max=200 --reason="extend: T_max 100 -> 200"
steps demo/cosine 60
lr plot --session=demo/cosine --steps=80 --out=examples/amend-extend.svg \
  --title="CosineAnnealingLR extended at step 60 (T_max 100 -> 200)"

# 2. Cool a warmup-stable run down at a step chosen while it runs.
cat >"$tmp/wsd.json" <<'JSON'
{"optimizer": {"type": "AdamW", "param_groups": [{"lr": 0.001}]},
 "scheduler": {"type": "SequentialLR", "milestones": [20],
               "schedulers": [{"type": "LinearLR", "start_factor": 0.01, "total_iters": 20},
                              {"type": "ConstantLR", "factor": 1.0, "total_iters": 1}]}}
JSON
cat >"$tmp/cooldown.json" <<'JSON'
{"type": "LinearLR", "start_factor": 1.0, "end_factor": 0.0, "total_iters": 50}
JSON
lr create demo/wsd --spec="$tmp/wsd.json" >/dev/null
steps demo/wsd 100
lr amend demo/wsd --continue-with="$tmp/cooldown.json" --at-epoch=150 \
  --reason="cool down over 50 steps from 150"
steps demo/wsd 70
lr history demo/wsd --from=148 --to=152
lr plot --session=demo/wsd --steps=60 --out=examples/amend-cooldown.svg \
  --title="warmup-stable run cooled down from step 150 (decided at step 100)"
