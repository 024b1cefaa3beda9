"""Adaptive against fixed-K Monte Carlo RPE labels: same policy, same solutions, same seeds, same run.

    PYTHONPATH=build/python python benchmarks/bench_rpe_adaptive.py [--problems 48] [--solutions 2]
        [--k K] [--round R] [--delta D] [--sweep] [--share-first] [--max-tokens 160] [--threads N]

The policy is the small trained one shipped in python/genprm/models (arith-policy; a random model
when it is missing, which then says so). It first samples --solutions step-forced solutions of
each held-out problem; then every solution is labelled twice on a fresh engine each: with the
fixed scheme (dynamic K 128 / 64 / 32 by MC(s_1), or --k) and with adaptive Monte Carlo (rounds of
--round rollouts, each estimate stops once its label is decided at error --delta). Prints
rollouts and generated tokens of each, the ratios (fixed / adaptive; target >= 2x), the share of
step labels that differ (RPE and hard labels; target <= 5 %), and the wall-time ratio.

The peer of that share is the fixed scheme itself: it is labelled a second time with another
seed, and the share of its labels that change says how much of a label is Monte Carlo noise. With
--sweep, adaptive runs once per (round, delta) of a small grid against the same fixed run. With
--share-first every run estimates MC(s_1) once per problem (rows of one problem share it).
"""
import argparse
import sys
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=48)
    ap.add_argument("--solutions", type=int, default=2, help="sampled solutions labelled per problem")
    ap.add_argument("--k", type=int, default=None, help="fixed K (default: the dynamic rule)")
    ap.add_argument("--round", type=int, default=None, help="adaptive round size (default: the C++ default)")
    ap.add_argument("--delta", type=float, default=None, help="adaptive error bound (default: the C++ default)")
    ap.add_argument("--sweep", action="store_true", help="also adaptive at rounds 4 / 8 and deltas 0.05 / 0.1 / 0.2")
    ap.add_argument("--share-first", action="store_true", help="MC(s_1) once per problem in every run")
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

    def run(name, opt, seed, show=True):
        eng = genprm.Engine(model, device=args.device, kv_blocks=8192)
        t0 = time.perf_counter()
        res = genprm.rpe.label_many(eng, rows, k=args.k, seed=seed, max_tokens=args.max_tokens, adaptive=opt,
                                    share_first=args.share_first, progress=False)
        wall = time.perf_counter() - t0
        assert all(r["error"] == "" for r in res), [r["error"] for r in res]
        st = eng.stats()
        out = {"res": res, "wall": wall, "rollouts": sum(r["rollouts"] for r in res),
               "generated": st["generated_tokens"], "computed": st["prompt_tokens_computed"]}
        if show:
            print(f"{name:22}  rollouts {out['rollouts']:7}  generated tokens {out['generated']:8}  "
                  f"prompt tokens computed {out['computed']:7}  wall {wall:7.2f} s")
        return out

    def differ(a, b, key):
        return sum(x != y for ra, rb in zip(a["res"], b["res"]) for x, y in zip(ra[key], rb[key]))

    fixed = run("fixed", False, args.seed)
    reseeded = run(f"fixed, seed {args.seed + 1}", False, args.seed + 1)
    adapt = run("adaptive", adaptive, args.seed)
    steps = sum(len(r["labels"]) for r in fixed["res"])
    pct = lambda n: f"{n} ({100.0 * n / max(1, steps):.1f} %)"  # noqa: E731
    early = sum(sum(bool(s["early"]) for s in a["steps"]) + bool(a["first_early"]) for a in adapt["res"])
    estimates = sum(1 + sum(bool(s["rollout"]) for s in a["steps"]) for a in adapt["res"])
    print(f"fixed / adaptive: rollouts {fixed['rollouts'] / max(1, adapt['rollouts']):.2f}x, generated tokens "
          f"{fixed['generated'] / max(1, adapt['generated']):.2f}x, wall {fixed['wall'] / adapt['wall']:.2f}x "
          f"(targets: >= 2x fewer rollouts and tokens)")
    print(f"step labels that differ from the fixed scheme's, of {steps}: adaptive RPE {pct(differ(adapt, fixed, 'labels'))}, "
          f"hard {pct(differ(adapt, fixed, 'hard_labels'))} (target <= 5 %); the fixed scheme with another seed: RPE "
          f"{pct(differ(reseeded, fixed, 'labels'))}, hard {pct(differ(reseeded, fixed, 'hard_labels'))}")
    print(f"estimates stopped early: {early} of {estimates}")
    if args.sweep:
        print("sweep (same fixed run):  round  delta  rollouts saved  tokens saved  RPE labels differ  hard differ")
        for rnd in (4, 8):
            for delta in (0.05, 0.1, 0.2):
                one = run("", {"round": rnd, "delta": delta}, args.seed, show=False)
                print(f"{'':24}{rnd:5}  {delta:5}  {fixed['rollouts'] / max(1, one['rollouts']):13.2f}x  "
                      f"{fixed['generated'] / max(1, one['generated']):11.2f}x  "
                      f"{pct(differ(one, fixed, 'labels')):>17}  {pct(differ(one, fixed, 'hard_labels')):>11}")
    setup = {"solutions": len(rows), "problems": args.problems, "K": args.k or "dynamic", **adaptive,
             "share_first": args.share_first,
             "max_tokens": args.max_tokens, "seed": args.seed, "threads": torch.get_num_threads()}
    print(f"setup: {what}; " + ", ".join(f"{key} {value}" for key, value in setup.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
