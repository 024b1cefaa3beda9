"""Trains the tiny arithmetic GenPRM (models/arith-genprm): a Qwen2 model that verifies the steps of
synthetic arithmetic solutions in the reference GenPRM format. For step t it writes
`The paragraph claims a op b = c.\\n</analyze>\\n`, then (after genprm's `<verify>` opening) a Python
block that recomputes the step and ends with the code fence; genprm's sandbox runs it and inserts
`[Code Output]`; the model then reads that output and writes its conclusion and
`<output>\\n**Judgement**: $\\boxed{Yes}$\\n</output>\\n` (or `No`). The analysis never says whether
the step is right, so the judgement comes from the executed code. A share of the data is in the
CoT-only and direct formats (no code), where the model can only guess from the text.

    .venv/bin/python scripts/models/train_genprm.py [--steps N] [--out DIR] [--check step|problem|match]
        [--operand-share F] [--small-share F] [--hidden H --layers L --heads A --kv-heads K --intermediate M]

The defaults make the shipped model. The other options are the attempts at a GenPRM that also
catches a wrong operation (models/README.md, "Tried and not shipped"): the block's check
(genprm.synthetic.CHECKS), the share of wrong solutions whose error is a wrong operation, the share
of problems of the policy's level, and the model's shape.
"""
from __future__ import annotations

import random
import sys

import common as C

SEED = 11
SHAPE = dict(hidden=64, layers=4, heads=4, kv_heads=2, intermediate=256)
MODES = (("full", 0.7), ("cot", 0.15), ("direct", 0.15))
ERROR_RATE = 0.5  # share of training solutions with one wrong step
CHECK = "step"  # genprm.synthetic.CHECKS: how the Python block checks the step
OPERAND_SHARE = 0.0  # share of the wrong solutions whose error is a wrong operation (corrupt_operand)
SMALL_SHARE = 0.0  # share of the problems of level "small" (the policy's), the rest "standard"


def make_examples(check: str = CHECK, operand_share: float = OPERAND_SHARE, small_share: float = SMALL_SHARE):
    def examples(count: int, seed: int, tok):
        rng = random.Random(seed)
        n_small = round(count * small_share)
        problems = C.S.make_problems(count - n_small, seed)
        if n_small:  # the small problems go to seeded places among the standard ones
            small = C.S.make_problems(n_small, seed + 1000, level="small")
            at = set(random.Random(seed + 1).sample(range(count), n_small))
            a, b = iter(problems), iter(small)
            problems = [next(b) if i in at else next(a) for i in range(count)]
        out = []
        for p in problems:
            written = None
            if rng.random() < ERROR_RATE:
                if operand_share > 0 and rng.random() < operand_share:
                    written, claimed = C.S.corrupt_operand(p, rng)
                else:
                    claimed = C.S.corrupt(p, rng)
            else:
                claimed = p.values()
            r, mode = rng.random(), MODES[-1][0]
            for name, share in MODES:
                if r < share:
                    mode = name
                    break
                r -= share
            t = rng.randint(1, len(p.ops))
            out.append(C.encode_with_mask(tok, C.prm_example(p, claimed, mode, t, written, check)))
        return out
    return examples


def add_args(ap) -> None:
    ap.add_argument("--check", choices=C.S.CHECKS, default=CHECK)
    ap.add_argument("--operand-share", type=float, default=OPERAND_SHARE)
    ap.add_argument("--small-share", type=float, default=SMALL_SHARE)
    for key, value in SHAPE.items():
        ap.add_argument("--" + key.replace("_", "-"), type=int, default=value)


def configure(args):
    shape = {key: getattr(args, key) for key in SHAPE}
    record = {"modes": dict(MODES), "error_rate": ERROR_RATE}
    if (args.check, args.operand_share, args.small_share) != ("step", 0.0, 0.0):
        record.update({"check": args.check, "operand_error_share": args.operand_share, "small_share": args.small_share})
    return make_examples(args.check, args.operand_share, args.small_share), shape, record


def main() -> int:
    return C.train_main(__doc__, "genprm", make_examples(), seed=SEED, shape=SHAPE,
                        defaults=dict(steps=3500, examples=20000, batch_tokens=2048, lr=5e-3),
                        data_record={"modes": dict(MODES), "error_rate": ERROR_RATE},
                        add_args=add_args, configure=configure)


if __name__ == "__main__":
    sys.exit(main())
