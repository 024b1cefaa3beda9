#!/usr/bin/env bash
# Regenerates the small trained models shipped in python/genprm/models (`make models`): the
# tokenizer and the arithmetic GenPRM (about 9 minutes on 2 idle CPU cores). Deterministic
# (seeded data, seeded training, 2 threads). Tests never retrain. The arithmetic policy
# (scripts/models/train_policy.py) is not shipped yet: its runs have not learned the arithmetic.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT/scripts/models"
export OMP_NUM_THREADS=2
"$PY" make_tokenizer.py
"$PY" train_genprm.py
echo "train-models: done; measure with: PYTHONPATH=build/python $PY benchmarks/bench_arith_quality.py"
