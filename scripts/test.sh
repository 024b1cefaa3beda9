#!/usr/bin/env bash
# Runs every test: C++ doctest binaries through ctest, the Python tests through pytest, and the
# C++ example built against the installed package (find_package(genprm)).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export GENPRM_PYTHON="$PY"
# ctest runs $JOBS test binaries at once; one intra-op thread each avoids oversubscribing the
# cores (the test models are tiny, so more threads only add synchronisation).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "== C++ tests (ctest)"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
echo "== C++ example against the installed package"
cmake --install "$BUILD_DIR" --prefix "$BUILD_DIR/install" >/dev/null
scripts/build-example.sh
echo "== Python tests (pytest)"
PYTHONPATH="$BUILD_DIR/python" "$PY" -m pytest -q --durations=10 tests/python "$@"
