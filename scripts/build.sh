#!/usr/bin/env bash
# Configures (once) and builds the library, tests, Python module and benchmarks into build/.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$PY" -DCMAKE_INSTALL_PREFIX="$BUILD_DIR/install" "$@"
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
