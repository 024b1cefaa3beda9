#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a time budget.
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Default: every tests/fuzz/fuzz_*.cpp. Corpora live in build-fuzz/corpus/<target>, seeded from
# tests/fuzz/seeds/<target>/ (and tests/data where a target has seeds); tests/fuzz/<target>.dict is
# passed as -dict when present.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_PER_TARGET="${1:-60}"
shift || true
PY="${PY:-$ROOT/.venv/bin/python}"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DGENPRM_BUILD_FUZZERS=ON -DGENPRM_BUILD_TESTS=OFF -DGENPRM_BUILD_PYTHON=OFF -DGENPRM_BUILD_BENCHMARKS=OFF \
  -DPython_EXECUTABLE="$PY" >/dev/null
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then  # every tests/fuzz/fuzz_*.cpp
  for src in "$ROOT"/tests/fuzz/fuzz_*.cpp; do TARGETS+=("$(basename "$src" .cpp)"); done
fi
cmake --build "$BUILD" --target "${TARGETS[@]}" -j2
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/corpus/$t"
  if [ -d "$ROOT/tests/fuzz/seeds/$t" ]; then cp -n "$ROOT/tests/fuzz/seeds/$t"/* "$BUILD/corpus/$t"/ 2>/dev/null || true; fi
  DICT=()
  if [ -f "$ROOT/tests/fuzz/$t.dict" ]; then DICT=(-dict="$ROOT/tests/fuzz/$t.dict"); fi
  case "$t" in
    fuzz_math)  # seed with the labelled answer pairs (prediction NUL reference)
      i=0
      grep -v '^#' "$ROOT/tests/data/math_equiv_cases.tsv" | while IFS=$'\t' read -r _ p r; do
        printf '%s\0%s' "$p" "$r" > "$BUILD/corpus/$t/seed_$i"; i=$((i+1)); done ;;
  esac
  echo "== $t for ${SECONDS_PER_TARGET}s"
  "$BUILD/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 "${DICT[@]}" "$BUILD/corpus/$t"
done
