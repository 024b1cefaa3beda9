#!/usr/bin/env bash
# Configures (once) and builds the library, tests, Python module and benchmarks into build/.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # The CUDA kernels are compiled wherever a CUDA toolkit is (they also build, without running,
  # on a machine with no GPU); GENPRM_CUDA=OFF in the environment leaves them out.
  cuda=OFF
  if [ "${GENPRM_CUDA:-auto}" != OFF ]; then
    if command -v nvcc >/dev/null; then cuda=ON
    elif [ -x /usr/local/cuda/bin/nvcc ]; then cuda=ON; set -- -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc "$@"
    fi
  fi
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGENPRM_CUDA=$cuda \
    -DPython_EXECUTABLE="$PY" -DCMAKE_INSTALL_PREFIX="$BUILD_DIR/install" "$@"
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
