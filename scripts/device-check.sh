#!/usr/bin/env bash
# GPU check, in two halves.
#   scripts/device-check.sh prepare   (here, on the development machine)
#       gathers the Debian-only dependencies (fmt, nlohmann-json, Eigen, doctest headers and
#       libutf8proc) into .deps-gpu/, an ignored folder that travels with the tree (carry it).
#   scripts/device-check.sh run [STEPS]   (there, on the GPU machine)
#       STEPS: comma-separated subset of kernels,golden,bench,peer,genprm,ctest,pytest (default: all)
#       configures against the GPU machine's torch (PyTorch 2.11 + CUDA), builds, runs the C++ and
#       Python tests, then the CUDA golden tests and the GPU benchmarks. Logs go to $OUT (or out/).
# See docs/gpu.md.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEPS="$ROOT/.deps-gpu"
mode="${1:-}"
STEPS=",${2:-kernels,golden,bench,peer,genprm,ctest,pytest},"
want() { [[ "$STEPS" == *",$1,"* ]]; }

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
  # Detailed logs go to one folder, packed into a single archive in $OUT at the end (the device
  # tool brings back only a few files); the console gets the summaries.
  local out=/tmp/genprm-gpu-logs
  rm -rf "$out"; mkdir -p "$out"
  trap 'tar -czf "${OUT:-$ROOT/out}/gpu-logs.tar.gz" -C /tmp genprm-gpu-logs 2>/dev/null' EXIT
  mkdir -p "${OUT:-$ROOT/out}"
  local py; py="$(command -v python3)"
  local build="$ROOT/build-gpu"
  export LD_LIBRARY_PATH="$DEPS/lib:${LD_LIBRARY_PATH:-}"
  export GENPRM_PYTHON="$py"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
  local t0=$SECONDS
  cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DPython_EXECUTABLE="$py" -DGENPRM_DEPS_DIR="$DEPS" -DGENPRM_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; return 1; }
  cmake --build "$build" -j 16 >"$out/build.log" 2>&1 || { grep -E "error|Error" "$out/build.log" | head -40; return 1; }
  echo "configure+build: $((SECONDS - t0)) s"
  # Most valuable first: every step has its own time limit so one hang cannot eat the lease.
  want kernels && echo "== CUDA kernels against the ATen reference (tests/cpp/cuda)"
  want kernels && (cd "$ROOT" && GENPRM_TEST_BACKTRACE=1 timeout 120 "$build/test_cuda" >"$out/test_cuda.log" 2>&1;
     echo "test_cuda: rc=$? $(grep -E 'test cases:' "$out/test_cuda.log")"; grep -B2 -A12 "ERROR\|FATAL" "$out/test_cuda.log" | head -60)
  want golden && echo "== CUDA golden tests (float32 and bfloat16; kernels + graphs, then the ATen path)"
  want golden && for dt in float32 bfloat16; do
    for k in 1 0; do
      for t in test_model test_engine; do
        [ -x "$build/$t" ] || continue
        (cd "$ROOT" && GENPRM_CUDA_KERNELS=$k GENPRM_TEST_DEVICE=cuda GENPRM_TEST_DTYPE=$dt timeout 120 "$build/$t" \
           >"$out/${t}_cuda_${dt}_k$k.log" 2>&1;
         echo "$t cuda $dt kernels=$k: rc=$? $(grep -E 'test cases:' "$out/${t}_cuda_${dt}_k$k.log")")
      done
    done
  done
  echo "== GPU benchmarks (ours with graphs+kernels, without graphs, ATen path; then the HF peer in the same run)"
  want bench && [ -x "$build/benchmarks/bench_engine" ] && (cd "$ROOT" && GENPRM_LOG=info timeout 200 "$build/benchmarks/bench_engine" \
      --device cuda --dtype bfloat16 --shape r1-1.5b --compare-graphs 2>&1 | tee "$out/bench_engine.txt")
  want bench && [ -x "$build/benchmarks/bench_engine" ] && (cd "$ROOT" && GENPRM_CUDA_KERNELS=0 timeout 150 "$build/benchmarks/bench_engine" \
      --device cuda --dtype bfloat16 --shape r1-1.5b --quick 2>&1 | tee "$out/bench_engine_aten.txt" | grep -E "decode|prefill")
  want peer && [ -f "$ROOT/benchmarks/hf_peer.py" ] && (cd "$ROOT" && timeout 150 "$py" benchmarks/hf_peer.py \
      --device cuda --dtype bfloat16 2>&1 | grep -v Warning | tee "$out/hf_peer.txt")
  want genprm && [ -x "$build/benchmarks/bench_genprm" ] && (cd "$ROOT" && timeout 150 "$build/benchmarks/bench_genprm" \
      --shape 1.5b --device cuda --dtype bfloat16 2>&1 | tee "$out/bench_genprm.txt")
  want ctest && echo "== ctest (all C++ tests, CPU)" && (cd "$ROOT" && timeout 240 ctest --test-dir "$build" --output-on-failure -j 8 >"$out/ctest.log" 2>&1;
   tail -15 "$out/ctest.log")
  want pytest && echo "== pytest" && (cd "$ROOT" && PYTHONPATH="$build/python" timeout 240 "$py" -m pytest -q -p no:cacheprovider tests/python \
     >"$out/pytest.log" 2>&1; tail -25 "$out/pytest.log")
}

case "$mode" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: scripts/device-check.sh prepare|run" >&2; exit 2 ;;
esac
