#!/usr/bin/env bash
# The tree's own rules, checked by the test command (scripts/test.sh) after scripts/build.sh has installed what it needs:
#   format    every tracked C++ file is as clang-format (Debian's clang-format-14, .clang-format:
#             Google style at 100 columns) would write it;
#   includes  each folder includes only what its layer may (server/README.md, scheduler/README):
#             the rules are the table below, one line per folder.
# Prints every offending file (with the fix for format: `clang-format-14 -i FILE`) and exits 1
# if there is any. Needs only git and clang-format-14.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0

fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [[ -z $fmt ]]; then
  echo "check-tree: clang-format-14 not found (scripts/install-deps.sh installs it)"
  exit 1
fi
mapfile -t cxx < <(git ls-files '*.h' '*.cc')
bad=()
for f in "${cxx[@]}"; do
  [[ -f $f ]] || continue  # deleted in the work tree, not yet in the index
  "$fmt" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "check-tree: not formatted (fix: $fmt -i FILE):"
  printf '  %s\n' "${bad[@]}"
  failed=1
fi

# Include rules: FOLDER|FORBIDDEN (an extended regex matched against the quoted include path).
# server/README.md explains the layers: ops <- store <- registry <- rpc <- http <- main.cc.
rules=(
  'scheduler/|^(server|client|lrsched|grpcpp|grpc|etcdserverpb)/'
  'server/ops/|^(server/(store|registry|rpc)/|grpcpp/|grpc/|lrsched/|etcdserverpb/)'
  'server/store/|^(server/(registry|rpc)/|server/ops/(access_log|metrics|auth)\.h|lrsched/|scheduler/)'
  'server/store/sqlite/|^(server/store/(etcd|testing)/|grpcpp/|grpc/|etcdserverpb/)'
  'server/store/etcd/|^server/store/(sqlite|testing)/'
  'server/registry/|^(server/rpc/|server/store/(sqlite|etcd|testing)/|server/ops/(access_log|metrics|auth)\.h|grpcpp/|grpc/|lrsched/|etcdserverpb/)'
  'server/rpc/|^(server/(store/(sqlite|etcd|testing)|http)/|etcdserverpb/)'
  'server/http/|^(server/store/(sqlite|etcd|testing)/|etcdserverpb/)'
  'client/|^server/'
  # The engine's public face only (scheduler/README.md); tests may include its internals.
  'server/|^scheduler/internal/'
  'client/|^scheduler/internal/'
  'bench/|^scheduler/internal/'
)
broken=()
for rule in "${rules[@]}"; do
  folder=${rule%%|*}
  forbidden=${rule#*|}
  while IFS= read -r hit; do
    [[ -n $hit ]] && broken+=("$hit   (rule: $folder may not include $forbidden)")
  done < <(git ls-files "$folder" | grep -E '\.(h|cc)$' | while read -r f; do
    [[ -f $f ]] || continue
    grep -nE '^#include "' "$f" | while IFS= read -r line; do
      inc=${line#*\"}; inc=${inc%%\"*}
      [[ $inc =~ $forbidden ]] && echo "$f:${line%%:*}: #include \"$inc\""
    done
  done)
done
if ((${#broken[@]})); then
  echo "check-tree: includes that break a folder's rule:"
  printf '  %s\n' "${broken[@]}"
  failed=1
fi

echo "check-tree: ${#cxx[@]} C++ files checked, format $([[ ${#bad[@]} == 0 ]] && echo ok || echo FAILED)," \
  "includes $([[ ${#broken[@]} == 0 ]] && echo ok || echo FAILED)"
exit "$failed"
