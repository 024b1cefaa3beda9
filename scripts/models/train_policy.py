"""Trains the tiny arithmetic policy (models/arith-policy): a Qwen2 model that solves the synthetic
problems step by step (`Step 1: 17 + 25 = 42` ... `\\boxed{118}`), from every prompt form genprm
gives a policy (search's chat prompt with the instruction, RPE's chat prompt without a system turn
and with `Step 1: ` forced, a plain prompt, and critic refinement's revision request).

It is small and trained briefly on purpose: its arithmetic is imperfect, so sampled solutions
are wrong often enough (and differently enough) that sampling more of them, and choosing among
them with a verifier, helps.

    .venv/bin/python scripts/models/train_policy.py [--steps N] [--out DIR]
"""
from __future__ import annotations

import random
import sys

import common as C

SEED = 7
SHAPE = dict(hidden=64, layers=4, heads=4, kv_heads=2, intermediate=256)
FORMS = (("chat", 0.4), ("chat-nosys", 0.3), ("plain", 0.1), ("refine", 0.2))
LEVEL = "small"  # genprm.synthetic.LEVELS: one-digit operands, values below 100


def examples(count: int, seed: int, tok):
    rng = random.Random(seed)
    eos = C.EOS
    out = []
    for p in C.S.make_problems(count, seed, level=LEVEL):
        r, form = rng.random(), None
        for name, share in FORMS:
            if r < share:
                form = name
                break
            r -= share
        form = form or FORMS[-1][0]
        target = C.S.solution_text(C.S.solution_steps(p)) + eos
        if form == "refine":
            previous = C.S.corrupt(p, rng)
            prompt = C.refine_prompt(p, previous, [C.S.first_wrong(p, previous)])
        else:
            prompt = C.policy_prompt(p.text, form)
        out.append(C.encode_with_mask(tok, [(prompt, False), (target, True)]))
    return out


def main() -> int:
    return C.train_main(__doc__, "policy", examples, seed=SEED, shape=SHAPE,
                        defaults=dict(steps=3600, examples=80000, batch_tokens=1536, lr=5e-3),
                        data_record={"forms": dict(FORMS), "level": LEVEL})


if __name__ == "__main__":
    sys.exit(main())
