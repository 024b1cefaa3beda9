"""Trains the tiny arithmetic GenPRM (models/arith-genprm): a Qwen2 model that verifies the steps of
synthetic arithmetic solutions in the reference GenPRM format. For step t it writes
`The paragraph claims a op b = c.\\n</analyze>\\n`, then (after genprm's `<verify>` opening) a Python
block that recomputes the step and ends with the code fence; genprm's sandbox runs it and inserts
`[Code Output]`; the model then reads that output and writes its conclusion and
`<output>\\n**Judgement**: $\\boxed{Yes}$\\n</output>\\n` (or `No`). The analysis never says whether
the step is right, so the judgement comes from the executed code. A share of the data is in the
CoT-only and direct formats (no code), where the model can only guess from the text.

    .venv/bin/python scripts/models/train_genprm.py [--steps N] [--out DIR]
"""
from __future__ import annotations

import random
import sys

import common as C

SEED = 11
SHAPE = dict(hidden=64, layers=4, heads=4, kv_heads=2, intermediate=256)
MODES = (("full", 0.7), ("cot", 0.15), ("direct", 0.15))
ERROR_RATE = 0.5  # share of training solutions with one wrong step


def examples(count: int, seed: int, tok):
    rng = random.Random(seed)
    out = []
    for p in C.S.make_problems(count, seed):
        claimed = C.S.corrupt(p, rng) if rng.random() < ERROR_RATE else p.values()
        r, mode = rng.random(), MODES[-1][0]
        for name, share in MODES:
            if r < share:
                mode = name
                break
            r -= share
        t = rng.randint(1, len(p.ops))
        out.append(C.encode_with_mask(tok, C.prm_example(p, claimed, mode, t)))
    return out


def main() -> int:
    return C.train_main(__doc__, "genprm", examples, seed=SEED, shape=SHAPE,
                        defaults=dict(steps=3500, examples=20000, batch_tokens=2048, lr=5e-3),
                        data_record={"modes": dict(MODES), "error_rate": ERROR_RATE})


if __name__ == "__main__":
    sys.exit(main())
