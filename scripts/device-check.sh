#!/usr/bin/env bash
# GPU check, in two halves.
#   scripts/device-check.sh prepare   (here, on the development machine)
#       gathers the Debian-only dependencies (fmt, nlohmann-json, Eigen, doctest headers and
#       libutf8proc) into .deps-gpu/, an ignored folder that travels with the tree (carry it).
#   scripts/device-check.sh run [seconds-for-benchmarks]   (there, on the GPU machine)
#       configures against the GPU machine's torch (PyTorch 2.11 + CUDA), builds, runs the C++ and
#       Python tests, then the CUDA golden tests and the GPU benchmarks. Logs go to $OUT (or out/).
# See docs/gpu.md.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEPS="$ROOT/.deps-gpu"
mode="${1:-}"

prepare() {
  rm -rf "$DEPS"
  mkdir -p "$DEPS/include" "$DEPS/lib"
  cp -r /usr/include/fmt /usr/include/nlohmann /usr/include/doctest "$DEPS/include/"
  cp -r /usr/include/eigen3 "$DEPS/include/"
  cp /usr/include/utf8proc.h "$DEPS/include/"
  cp -P /usr/lib/x86_64-linux-gnu/libutf8proc.so* "$DEPS/lib/"
  du -sh "$DEPS"
}

run() {
  local out="${OUT:-$ROOT/out}"
  mkdir -p "$out"
  local py; py="$(command -v python3)"
  local build="$ROOT/build-gpu"
  export LD_LIBRARY_PATH="$DEPS/lib:${LD_LIBRARY_PATH:-}"
  export GENPRM_PYTHON="$py"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
  local t0=$SECONDS
  cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DPython_EXECUTABLE="$py" -DGENPRM_DEPS_DIR="$DEPS" \
      -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; return 1; }
  cmake --build "$build" -j 16 >"$out/build.log" 2>&1 || { grep -E "error|Error" "$out/build.log" | head -40; return 1; }
  echo "configure+build: $((SECONDS - t0)) s"
  echo "== ctest (CPU tests)"
  (cd "$ROOT" && ctest --test-dir "$build" --output-on-failure -j 8 2>&1 | tail -15)
  echo "== CUDA golden tests (float32 and bfloat16)"
  for dt in float32 bfloat16; do
    (cd "$ROOT" && GENPRM_TEST_DEVICE=cuda GENPRM_TEST_DTYPE=$dt "$build/test_model" 2>&1 | tail -4)
    [ -x "$build/test_engine" ] && (cd "$ROOT" && GENPRM_TEST_DEVICE=cuda GENPRM_TEST_DTYPE=$dt "$build/test_engine" 2>&1 | tail -4)
  done
  echo "== pytest"
  (cd "$ROOT" && PYTHONPATH="$build/python" timeout 300 "$py" -m pytest -q -x tests/python 2>&1 | tail -15)
  echo "== GPU benchmarks"
  if [ -x "$build/bench_engine" ]; then
    (cd "$ROOT" && timeout 240 "$build/bench_engine" --device cuda --dtype bfloat16 --shape r1-1.5b 2>&1 | tee "$out/bench_engine.txt")
  fi
  if [ -f "$ROOT/benchmarks/bench_genprm.py" ]; then
    (cd "$ROOT" && PYTHONPATH="$build/python" timeout 180 "$py" benchmarks/bench_genprm.py --device cuda --dtype bfloat16 2>&1 | tee "$out/bench_genprm.txt")
  fi
}

case "$mode" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: scripts/device-check.sh prepare|run" >&2; exit 2 ;;
esac
