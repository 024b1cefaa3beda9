#!/usr/bin/env bash
# Regenerates the small trained models shipped in python/genprm/models (`make models`): the
# tokenizer, the arithmetic policy and the arithmetic GenPRM (about 15 minutes on 2 idle CPU
# cores; every other process slows the 2 training threads a lot). Deterministic (seeded data,
# seeded training, 2 threads). Tests never retrain.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT/scripts/models"
export OMP_NUM_THREADS=2
"$PY" make_tokenizer.py
"$PY" train_policy.py
"$PY" train_genprm.py
echo "train-models: done; measure with: PYTHONPATH=build/python $PY benchmarks/bench_arith_quality.py"
