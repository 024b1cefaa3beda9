#!/usr/bin/env bash
# Line counts behind the layering figures the docs quote: the library (headers under include/
# and the compiled part under src/, CUDA included), the bindings and their share of the library,
# and the Python package. Usage: scripts/code-stats.sh [REV] (default: the work tree).
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:-}"
count() {  # count DIR REGEX: lines of the tracked files under DIR whose names match REGEX
  if [ -n "$rev" ]; then
    git ls-tree -r --name-only "$rev" -- "$1" | grep -E "$2" | while read -r f; do git show "$rev:$f"; done | wc -l
  else
    git ls-files -- "$1" | grep -E "$2" | while read -r f; do cat "$f"; done | wc -l
  fi
}
lib=$(( $(count include '\.(hpp|h)$') + $(count src '\.(hpp|h|cpp|cu|cuh)$') ))
bind=$(count bindings '\.(hpp|cpp)$')
py=$(count python/genprm '\.py$')
awk -v l="$lib" -v b="$bind" -v p="$py" 'BEGIN {
  printf "library (include/ + src/): %d lines\nbindings: %d lines (%.2f %% of the library)\nPython package: %d lines\n", l, b, 100 * b / l, p }'
