#!/usr/bin/env bash
# The main job (`make demo`, after the build): GenPRM-verifies held-out arithmetic solutions with
# the small GenPRM shipped in python/genprm/models (trained here; it writes its analysis, a Python
# block that the sandbox runs, and a judgement that follows the code output), prints the step
# rewards and the ProcessBench table, then runs Best-of-N with the shipped policy and that GenPRM.
#   scripts/demo.sh --model /path/to/GenPRM-1.5B          # a real GenPRM checkpoint instead
#   GENPRM_DEMO_MODEL=/path/to/GenPRM-1.5B make demo      # the same
#   GENPRM_DEMO_DEVICE=cuda GENPRM_DEMO_DTYPE=bfloat16 ... # on a GPU
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export PYTHONPATH="$BUILD_DIR/python${PYTHONPATH:+:$PYTHONPATH}"
MODEL="${GENPRM_DEMO_MODEL:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --model) [ $# -ge 2 ] || { echo "demo: --model needs a directory" >&2; exit 2; }; MODEL="$2"; shift 2 ;;
    --model=*) MODEL="${1#--model=}"; shift ;;
    *) echo "demo: unknown argument '$1' (use --model DIR)" >&2; exit 2 ;;
  esac
done
OUT_DIR="${GENPRM_DEMO_OUT:-$BUILD_DIR/demo}"
DEVICE="${GENPRM_DEMO_DEVICE:-cpu}"
DTYPE="${GENPRM_DEMO_DTYPE:-float32}"
MAJORITY="${GENPRM_DEMO_MAJORITY:-4}"
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/verified.jsonl"

if [ -n "$MODEL" ]; then
  [ -f "$MODEL/config.json" ] || { echo "demo: $MODEL is not a model directory (no config.json)" >&2; exit 2; }
  INPUT="examples/data/sample_processbench.jsonl"
  echo "== GenPRM checkpoint: $MODEL"
else
  MODEL="$("$PY" -c 'import genprm.arith as a; print(a.genprm_dir())')"
  POLICY="$("$PY" -c 'import genprm.arith as a
try: print(a.policy_dir())
except FileNotFoundError: pass')"  # the policy is not shipped yet: no Best-of-N line then
  INPUT="examples/data/arith_processbench.jsonl"
  echo "== The small trained GenPRM shipped with genprm: $MODEL"
  echo "   (see python/genprm/models/README.md; a real checkpoint: scripts/demo.sh --model DIR)"
fi

rm -f "$OUT"
echo "== genprm verify --model $MODEL --input $INPUT --output $OUT --majority $MAJORITY"
"$PY" -m genprm verify --model "$MODEL" --input "$INPUT" --output "$OUT" --majority "$MAJORITY" \
  --device "$DEVICE" --dtype "$DTYPE" --seed 0 --no-progress

echo "== Per-step rewards (p(Yes) / (p(Yes) + p(No)) at the judgement, averaged over $MAJORITY rationales)"
"$PY" - "$OUT" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for r in rows:
    label = r.get("label", "?")
    marks = "  ".join(f"{v:.3f}{'*' if i == label else ' '}" for i, v in enumerate(r["value"]))
    print(f"{r['id']:>12}: [{marks}]  predicted first wrong step {r['first_wrong_step']:>2}  (label {label:>2})")
right = [v for r in rows for i, v in enumerate(r["value"]) if r.get("label") is not None and (r["label"] < 0 or i < r["label"])]
wrong = [r["value"][r["label"]] for r in rows if isinstance(r.get("label"), int) and r["label"] >= 0]
if right and wrong:
    print(f"mean reward of right steps {sum(right) / len(right):.3f}, of wrong steps (* above) {sum(wrong) / len(wrong):.3f}")
code = [c for r in rows for s in r["verification"]["steps"] for p in s["paths"] for c in p.get("code", [])]
if code:
    c = code[0]
    print(f"e.g. model-written code executed in the sandbox: {c['code']!r} -> {c['output']!r} "
          f"({sum(bool(c.get('executed')) for c in code)} blocks executed)")
PYEOF

echo "== genprm eval --input $OUT   (ProcessBench metrics over the rows' labels)"
"$PY" -m genprm eval --input "$OUT"

if [ -n "${POLICY:-}" ]; then
  SEARCH_OUT="$OUT_DIR/best_of_n.jsonl"
  rm -f "$SEARCH_OUT"
  echo "== genprm search --method best-of-n --n 8 --policy $POLICY --prm $MODEL (held-out problems)"
  "$PY" -m genprm search --method best-of-n --n 8 --policy "$POLICY" --prm "$MODEL" --prm-mode full \
    --input examples/data/arith_problems.jsonl --output "$SEARCH_OUT" --max-tokens 160 --temperature 0.7 \
    --seed 0 --aggregation min --device "$DEVICE" --dtype "$DTYPE" --no-progress
  "$PY" - "$SEARCH_OUT" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
import genprm.math as m
singles = [bool(c["answer"] is not None and m.is_equiv(c["answer"], r["answer"])) for r in rows for c in r["candidates"]]
acc = lambda k: sum(bool(r["picks"][k]["correct"]) for r in rows) / len(rows)
print(f"Best-of-8 over {len(rows)} problems: one sample right {sum(singles) / len(singles):.0%}, "
      f"majority vote {acc('majority'):.0%}, PRM-weighted vote {acc('weighted_min'):.0%}, "
      f"Best-of-N by PRM-min {acc('bon_min'):.0%}")
PYEOF
fi
echo "Full output (rationales, code and its output, token counts) is in $OUT_DIR."
