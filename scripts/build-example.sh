#!/usr/bin/env bash
# Builds examples/cpp against the package installed in build/install and runs it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
ex="$BUILD_DIR/example-cpp"
cmake -S examples/cpp -B "$ex" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$BUILD_DIR/install" -DPython_EXECUTABLE="$PY" >/dev/null
cmake --build "$ex" -j "$JOBS"
"$ex/genprm_example" "$ROOT/tests/data/tiny_qwen2_a"
