"""RPE labelling with and without prefix caching, same random model, same rows, same run.

    PYTHONPATH=build/python python benchmarks/bench_rpe.py [--problems 4] [--steps 6] [--k 8]
        [--max-tokens 16] [--hidden 256] [--layers 4] [--device cpu|cuda] [--dtype float32|bfloat16]

Each row: a problem and a step-forced solution of --steps steps of ~60 tokens; MC(s_1) and every
step are estimated with a fixed K (one request with n = K per step). Both runs fork the K
samples of a request from one prefill; only the first also reuses prefixes across requests
(the MC(s_1) prompt for step 1, step t's prefix for step t+1, the chat prompt across problems).
Prints prompt tokens submitted / computed, wall time and the ratios (no caching / caching).
"""
import argparse
import os
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    import genprm
    from genprm.testing import copy_tokenizer, make_random_qwen2

    d = tempfile.mkdtemp(prefix="bench_rpe_")
    heads = max(2, args.hidden // 64)
    make_random_qwen2(d, vocab_size=151936, hidden_size=args.hidden, intermediate_size=args.hidden * 3,
                      num_hidden_layers=args.layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                      eos_token_id=151643, seed=0)
    copy_tokenizer(d, "r1distill")
    step_text = ("we combine the previous quantities, substitute the known values into the expression, simplify "
                 "every term carefully and check the arithmetic once more before moving on to the next part")
    rows = []
    for p in range(args.problems):
        steps = [f"Step {t + 1}: For part {t + 1} of problem {p}, {step_text}." for t in range(args.steps - 1)]
        steps.append(f"Step {args.steps}: So the answer is \\boxed{{{p}}}.")
        rows.append({"id": str(p), "problem": f"Problem {p}: compute the value of the expression number {p}.",
                     "steps": steps, "answer": str(p)})

    results = {}
    for caching in (True, False):
        eng = genprm.Engine(d, device=args.device, dtype=args.dtype, kv_blocks=4096, prefix_caching=caching)
        t0 = time.perf_counter()
        res = genprm.rpe.label_many(eng, rows, k=args.k, max_tokens=args.max_tokens, seed=0, progress=False,
                                    cancel_after_zero=False)
        wall = time.perf_counter() - t0
        st = eng.stats()
        assert all(r["error"] == "" for r in res), [r["error"] for r in res]
        results[caching] = (st, wall, res)
        print(f"prefix_caching={str(caching):5}  requests {st['requests_submitted']:4}  prompt tokens submitted "
              f"{st['prompt_tokens_submitted']:6}  computed {st['prompt_tokens_computed']:6}  cached "
              f"{st['prompt_tokens_cached']:6}  generated {st['generated_tokens']:6}  wall {wall:7.3f} s")
    (on, t_on, r_on), (off, t_off, r_off) = results[True], results[False]
    same = [r["labels"] for r in r_on] == [r["labels"] for r in r_off]
    print(f"ratio (no caching / caching): prompt tokens computed "
          f"{off['prompt_tokens_computed'] / max(1, on['prompt_tokens_computed']):.2f}x, wall {t_off / t_on:.2f}x; "
          f"labels identical: {same}")
    print(f"shape: hidden {args.hidden}, layers {args.layers}, {args.problems} problems x {args.steps} steps, "
          f"K = {args.k}, max_tokens {args.max_tokens}, device {args.device}, dtype {args.dtype}, "
          f"threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
