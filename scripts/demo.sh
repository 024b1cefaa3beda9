#!/usr/bin/env bash
# The main job (`make demo`, after the build): GenPRM-verifies the sample solutions in
# examples/data with a small model made here, prints the per-step rewards, and says how to use a
# real GenPRM checkpoint instead.
#   GENPRM_DEMO_MODEL=/path/to/GenPRM-1.5B scripts/demo.sh   # a real checkpoint directory
#   GENPRM_DEMO_DEVICE=cuda GENPRM_DEMO_DTYPE=bfloat16 ...    # on a GPU
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export PYTHONPATH="$BUILD_DIR/python${PYTHONPATH:+:$PYTHONPATH}"
INPUT="examples/data/sample_processbench.jsonl"
OUT="${GENPRM_DEMO_OUT:-$BUILD_DIR/demo/verified.jsonl}"
DEVICE="${GENPRM_DEMO_DEVICE:-cpu}"
DTYPE="${GENPRM_DEMO_DTYPE:-float32}"
MAJORITY="${GENPRM_DEMO_MAJORITY:-4}"
mkdir -p "$(dirname "$OUT")"

if [ -n "${GENPRM_DEMO_MODEL:-}" ]; then
  MODEL="$GENPRM_DEMO_MODEL"
  BUDGET=()  # the reference's budgets: 2048 tokens per step, 3 code rounds
  echo "== GenPRM checkpoint: $MODEL"
else
  MODEL="$BUILD_DIR/demo/random-genprm"
  # Random weights never write a stop string, so every stage would run to the 2048-token budget;
  # smaller budgets keep the CPU demo to a minute.
  BUDGET=(--max-tokens 64 --analyze-max-tokens 24 --threads 1)
  if [ ! -f "$MODEL/config.json" ]; then
    echo "== Making a small random Qwen2 model with the DeepSeek-R1-Distill vocabulary in $MODEL"
    "$PY" - "$MODEL" <<'PYEOF'
import sys
from genprm.testing import copy_tokenizer, make_random_qwen2
d = sys.argv[1]
make_random_qwen2(d, vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, eos_token_id=151643, bos_token_id=151646,
                  seed=0)
copy_tokenizer(d, "r1distill")
PYEOF
  fi
fi

rm -f "$OUT"
echo "== genprm verify --model $MODEL --input $INPUT --output $OUT --majority $MAJORITY"
"$PY" -m genprm verify --model "$MODEL" --input "$INPUT" --output "$OUT" --majority "$MAJORITY" \
  --device "$DEVICE" --dtype "$DTYPE" --seed 0 "${BUDGET[@]}"

echo "== Per-step rewards (p(Yes) / (p(Yes) + p(No)) at the judgement, averaged over $MAJORITY rationales)"
"$PY" - "$OUT" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    rewards = "  ".join(f"{v:.3f}" for v in r["value"])
    label = r.get("label", "?")
    print(f"{r['id']:>10}: step rewards [{rewards}]  predicted first wrong step {r['first_wrong_step']:>2}"
          f"  (label {label}, {r['time']['seconds']:.1f} s)")
PYEOF

echo "== genprm eval --input $OUT   (ProcessBench metrics over the rows' labels)"
"$PY" -m genprm eval --input "$OUT"

if [ -z "${GENPRM_DEMO_MODEL:-}" ]; then
  cat <<MSG

NOTE: the demo model's weights are RANDOM, so these rewards are meaningless (a random model never
writes "\\boxed{Yes}" or "\\boxed{No}", so most rewards are the reference's neutral 0.5).
For real rewards point genprm at a GenPRM checkpoint directory (config.json, *.safetensors,
tokenizer.json, tokenizer_config.json), e.g. a download of GenPRM/GenPRM-1.5B:

  GENPRM_DEMO_MODEL=/path/to/GenPRM-1.5B make demo
  $PY -m genprm verify --model /path/to/GenPRM-1.5B --input $INPUT \\
      --output out.jsonl --majority 8 --device cuda --dtype bfloat16

Full output (rationales, code and its output, token counts) is in $OUT.
MSG
fi
