#!/usr/bin/env bash
# Regenerates the small trained models shipped in python/genprm/models (`make models`): the
# tokenizer, the arithmetic policy and the arithmetic GenPRM. Deterministic (seeded data, seeded
# training, 2 threads); about a quarter of an hour per model on 2 CPU cores. Tests never retrain.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT/scripts/models"
export OMP_NUM_THREADS=2
"$PY" make_tokenizer.py
"$PY" train_policy.py
"$PY" train_genprm.py
echo "train-models: done; measure them with: $PY benchmarks/bench_arith_quality.py"
