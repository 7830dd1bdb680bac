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

echo "check-tree: ${#cxx[@]} C++ files checked, format $([[ ${#bad[@]} == 0 ]] && echo ok || echo FAILED)"

# includes: one rule a line, "FOLDER FORBIDDEN-PREFIX": no C++ file under FOLDER may #include a
# header whose path starts with FORBIDDEN-PREFIX. Untracked files count too, so that a new file
# is caught before it is added.
include_rules=(
  "server/ scheduler/internal/"  # the engine's public face only (scheduler/README.md)
  "client/ scheduler/internal/"
  "bench/ scheduler/internal/"
)
offending=()
for rule in "${include_rules[@]}"; do
  read -r folder prefix <<<"$rule"
  pattern="^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]${prefix//./\\.}"
  while IFS= read -r hit; do
    offending+=("$hit  ($folder may not include $prefix)")
  done < <(git grep --untracked -nE "$pattern" -- "$folder*.h" "$folder*.cc")
done
if ((${#offending[@]})); then
  echo "check-tree: forbidden includes (file:line):"
  printf '  %s\n' "${offending[@]}"
  failed=1
fi
echo "check-tree: ${#include_rules[@]} include rules checked, includes" \
  "$([[ ${#offending[@]} == 0 ]] && echo ok || echo FAILED)"
exit "$failed"
