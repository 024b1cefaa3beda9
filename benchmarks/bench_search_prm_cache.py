"""Beam search with a GenPRM scorer, with vs without the scorer's prefix cache, same run.

    PYTHONPATH=build/python python benchmarks/bench_search_prm_cache.py [--problems 2] [--beams 4]
        [--width 2] [--steps 4] [--step-tokens 12] [--majority 1] [--mode cot|full]
        [--verify-tokens 48] [--hidden 64] [--layers 2] [--device cpu] [--threads 1]

Policy and GenPRM are the same random tiny Qwen2 checkpoint (R1-Distill vocabulary) written at
start. With the cache (GenPRM.search_prefix_cache = True, the default) VerifierScorer passes each
beam's verified prefix as `prior`, so the GenPRM verifies only the new step of every candidate;
without it each iteration re-verifies every candidate's whole partial solution. Each
configuration gets a fresh policy engine and GenPRM (no radix-cache carry-over) and the same
seeds. Prints the GenPRM engine's tokens generated / prompt tokens computed, requests and wall
per configuration and the ratios (without / with). The two searches may keep different beams
(re-sampled rewards differ), so the candidate steps scored per configuration are printed too.
"""
import argparse
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=2)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--width", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--step-tokens", type=int, default=12)
    ap.add_argument("--majority", type=int, default=1)
    ap.add_argument("--mode", default="cot", help="GenPRM mode (cot: no sandbox; full: with code)")
    ap.add_argument("--verify-tokens", type=int, default=48, help="GenPRM max_tokens per step")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    import genprm
    from genprm.testing import copy_tokenizer, make_random_qwen2

    d = tempfile.mkdtemp(prefix="bench_search_prm_cache_")
    heads = max(2, args.hidden // 32)
    make_random_qwen2(d, vocab_size=151936, hidden_size=args.hidden, intermediate_size=args.hidden * 2,
                      num_hidden_layers=args.layers, num_attention_heads=heads, num_key_value_heads=1,
                      eos_token_id=151643, seed=0)
    copy_tokenizer(d, "r1distill")
    problems = [f"Problem {p}: what is {p} + {p + 2}?" for p in range(args.problems)]

    results = {}
    for cache in (True, False):
        policy = genprm.Engine(d, device=args.device, dtype=args.dtype, kv_blocks=4096)
        prm = genprm.GenPRM(d, device=args.device, dtype=args.dtype, majority=args.majority, mode=args.mode,
                            max_tokens=args.verify_tokens, analyze_max_tokens=args.verify_tokens // 2,
                            round_limit=1, max_fallbacks=1, seed=1, engine={"kv_blocks": 8192})
        prm.search_prefix_cache = cache
        steps_scored = 0
        t0 = time.perf_counter()
        for i, problem in enumerate(problems):
            res = genprm.search.beam_search(policy, prm, problem, beams=args.beams, width=args.width,
                                            max_steps=args.steps, max_step_tokens=args.step_tokens, seed=7 + i)
            steps_scored += sum(len(c["steps"]) for it in res["iterations"] for c in it["candidates"])
        wall = time.perf_counter() - t0
        st = prm.stats()
        results[cache] = (st, wall, steps_scored)
        print(f"prefix cache {'on ' if cache else 'off'}: GenPRM generated {st['generated_tokens']:6}  prompt tokens "
              f"computed {st['prompt_tokens_computed']:7}  requests {st['requests_submitted']:5}  "
              f"candidate steps scored {steps_scored:4}  wall {wall:7.2f} s")
    (on, t_on, s_on), (off, t_off, s_off) = results[True], results[False]
    print(f"ratio (cache off / on): GenPRM tokens generated "
          f"{off['generated_tokens'] / max(1, on['generated_tokens']):.2f}x, prompt tokens computed "
          f"{off['prompt_tokens_computed'] / max(1, on['prompt_tokens_computed']):.2f}x, requests "
          f"{off['requests_submitted'] / max(1, on['requests_submitted']):.2f}x, wall {t_off / t_on:.2f}x "
          f"(candidate steps scored: {s_off} vs {s_on})")
    print(f"shape: {args.problems} problems, beams {args.beams}, width {args.width}, max_steps {args.steps}, "
          f"step tokens {args.step_tokens}, GenPRM mode {args.mode} majority {args.majority} max_tokens "
          f"{args.verify_tokens}, hidden {args.hidden}, layers {args.layers}, device {args.device}, "
          f"dtype {args.dtype}, threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
