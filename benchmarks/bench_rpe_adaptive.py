"""Adaptive against fixed-K Monte Carlo RPE labels: same policy, same solutions, same seeds, same run.

    PYTHONPATH=build/python python benchmarks/bench_rpe_adaptive.py [--problems 12] [--solutions 2]
        [--k K] [--round 8] [--delta 0.05] [--max-tokens 160] [--threads N]

The policy is the small trained one shipped in python/genprm/models (arith-policy; a random model
when it is missing, which then says so). It first samples --solutions step-forced solutions of
each held-out problem; then every solution is labelled twice on a fresh engine each: with the
fixed scheme (dynamic K 128 / 64 / 32 by MC(s_1), or --k) and with adaptive Monte Carlo (rounds of
--round rollouts, each estimate stops once its label is decided at error --delta). Prints
rollouts and generated tokens of each, the ratios (fixed / adaptive; target >= 2x), the share of
step labels that differ (RPE and hard labels; target <= 5 %), and the wall-time ratio.
"""
import argparse
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=12)
    ap.add_argument("--solutions", type=int, default=2, help="sampled solutions labelled per problem")
    ap.add_argument("--k", type=int, default=None, help="fixed K (default: the dynamic rule)")
    ap.add_argument("--round", type=int, default=None, help="adaptive round size (default: the C++ default)")
    ap.add_argument("--delta", type=float, default=None, help="adaptive error bound (default: the C++ default)")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    import genprm
    from genprm import _core, arith

    if arith.available():
        model, what = arith.policy_dir(), "trained arith-policy"
    else:
        from genprm.testing import copy_tokenizer, make_random_qwen2
        model = tempfile.mkdtemp(prefix="bench_rpe_adaptive_")
        make_random_qwen2(model, vocab_size=151936, hidden_size=128, intermediate_size=384, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, eos_token_id=151643, seed=0)
        copy_tokenizer(model, "r1distill")
        what = "RANDOM model (the trained arith-policy is missing: `make models`)"
    problems = arith.heldout_problems(args.problems)

    eng = genprm.Engine(model, device=args.device, kv_blocks=8192)
    sampled = genprm.rpe.sample_solutions(eng, [p["problem"] for p in problems], answers=[p["answer"] for p in problems],
                                          ids=[p["id"] for p in problems], n=args.solutions, seed=args.seed,
                                          max_tokens=args.max_tokens)
    rows = []
    for p, s in zip(problems, sampled):
        for j, sol in enumerate(s["solutions"]):
            if sol["steps"]:
                rows.append({"id": f"{p['id']}-{j}", "problem": p["problem"], "steps": sol["steps"],
                             "answer": p["answer"]})

    defaults = _core.LabelerConfig().adaptive
    adaptive = {"round": args.round if args.round is not None else defaults.round,
                "delta": args.delta if args.delta is not None else defaults.delta}
    runs = {}
    for name, opt in (("fixed", False), ("adaptive", adaptive)):
        eng = genprm.Engine(model, device=args.device, kv_blocks=8192)
        t0 = time.perf_counter()
        res = genprm.rpe.label_many(eng, rows, k=args.k, seed=args.seed, max_tokens=args.max_tokens,
                                    adaptive=opt, progress=False)
        wall = time.perf_counter() - t0
        assert all(r["error"] == "" for r in res), [r["error"] for r in res]
        st = eng.stats()
        runs[name] = {"res": res, "wall": wall, "rollouts": sum(r["rollouts"] for r in res),
                      "generated": st["generated_tokens"], "computed": st["prompt_tokens_computed"]}
        print(f"{name:8}  rollouts {runs[name]['rollouts']:7}  generated tokens {st['generated_tokens']:8}  "
              f"prompt tokens computed {st['prompt_tokens_computed']:7}  wall {wall:7.2f} s")

    fixed, adapt = runs["fixed"], runs["adaptive"]
    steps = diff = hard_diff = early = 0
    for a, f in zip(adapt["res"], fixed["res"]):
        steps += len(f["labels"])
        diff += sum(x != y for x, y in zip(a["labels"], f["labels"]))
        hard_diff += sum(x != y for x, y in zip(a["hard_labels"], f["hard_labels"]))
        early += sum(bool(s["early"]) for s in a["steps"]) + bool(a["first_early"])
    estimates = sum(1 + sum(bool(s["rollout"]) for s in a["steps"]) for a in adapt["res"])
    print(f"fixed / adaptive: rollouts {fixed['rollouts'] / max(1, adapt['rollouts']):.2f}x, generated tokens "
          f"{fixed['generated'] / max(1, adapt['generated']):.2f}x, wall {fixed['wall'] / adapt['wall']:.2f}x "
          f"(targets: >= 2x fewer rollouts and tokens)")
    print(f"step labels that differ: RPE {diff} of {steps} ({100.0 * diff / max(1, steps):.1f} %), hard "
          f"{hard_diff} ({100.0 * hard_diff / max(1, steps):.1f} %) (target <= 5 %); estimates stopped early "
          f"{early} of {estimates}")
    setup = {"solutions": len(rows), "problems": args.problems, "K": args.k or "dynamic", **adaptive,
             "max_tokens": args.max_tokens, "seed": args.seed, "threads": torch.get_num_threads()}
    print(f"setup: {what}; " + ", ".join(f"{key} {value}" for key, value in setup.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
