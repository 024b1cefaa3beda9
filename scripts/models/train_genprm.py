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

import argparse
import random
import sys
from pathlib import Path

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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3500)
    ap.add_argument("--examples", type=int, default=20000)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--out", default=str(C.MODELS / "arith-genprm"))
    args = ap.parse_args()
    log = C.logger("genprm")
    tok = C.load_tokenizer()
    data = examples(args.examples, SEED, tok)
    n_tokens = sum(len(s) for s, _ in data)
    log(f"{len(data)} examples, {n_tokens} tokens, {sum(sum(m) for _, m in data)} learned, "
        f"longest {max(len(s) for s, _ in data)}")
    cfg = C.qwen2_config(vocab_size=576, eos_id=tok.token_to_id(C.EOS), bos_id=tok.token_to_id(C.BOS), **SHAPE)
    model, record = C.train(cfg, data, steps=args.steps, batch_tokens=args.batch_tokens, lr=args.lr, seed=SEED,
                            log=log)
    out = Path(args.out)
    C.save_model(model, out)
    record.update({"script": "scripts/models/train_genprm.py", "data": {
        "examples": len(data), "tokens": n_tokens, "seed": SEED, "modes": dict(MODES), "error_rate": ERROR_RATE},
        "shape": SHAPE, "parameters": sum(p.numel() for p in model.parameters())})
    C.write_json(out / "training.json", record)
    log(f"saved to {out}: {record['parameters']} parameters, final loss {record['final_loss']}, "
        f"{record['train_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
