#!/usr/bin/env bash
# Runs the CPU benchmarks, each printing its ratio against the peer measured in the same run.
# GPU variants: see docs/gpu.md (scripts/device-check.sh run bench,peer,genprm).
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export PYTHONPATH="$BUILD_DIR/python"
run() { echo "== $*"; "$@" || echo "(failed: $*)"; }
run "$BUILD_DIR/benchmarks/bench_engine"
run "$BUILD_DIR/benchmarks/bench_model"
run "$BUILD_DIR/benchmarks/bench_genprm"
run "$PY" benchmarks/bench_engine.py
run "$PY" benchmarks/bench_tokenizer.py
run "$PY" benchmarks/bench_math.py
run "$PY" benchmarks/bench_sandbox.py
run "$PY" benchmarks/bench_rpe.py --threads 1
run "$PY" benchmarks/bench_search.py --threads 1
run "$PY" benchmarks/bench_search_prm_cache.py
