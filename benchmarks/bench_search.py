"""Beam search over many problems: all at once (search.beam_search_many) vs one by one
(search.beam_search per problem), same random policy, same problems, same seed, same run.
--method refine: the same for critic refinement (search.refine_many vs search.refine per
problem; --max-turns revisions of at most --max-tokens tokens, a step judged incorrect when its
reward is below --threshold, 0.5). With --prm the GenPRM's rationale seeds are keyed on the
solution's content (prm/verifier.hpp), so many and one-by-one differ only where a different
batch rounds a near tie differently.

    PYTHONPATH=build/python python benchmarks/bench_search.py [--problems 8] [--beams 4] [--width 2]
        [--max-steps 4] [--max-step-tokens 16] [--hidden 256] [--layers 4] [--in-flight 8]
        [--device cpu|cuda] [--dtype float32|bfloat16] [--threads N] [--prm]
        [--method beam|refine] [--max-turns 2] [--max-tokens 32] [--threshold 0.5]

The scorer is a cheap Python callable (reward from the step's length), so the timing is the
policy's. Many-at-once keeps the expansions of up to --in-flight problems in the engine's batch
together; one-by-one has at most N/M requests (one problem's beams) in flight. Both runs search
exactly the same beams (checked and printed; batch-dependent float rounding in a forward can
still flip a near-tie sample of a random model, seen with --prm). Prints wall time,
engine.stats() (mean sequences and tokens per forward, forward steps, prompt tokens computed /
from cache, generated tokens) and the ratios (one-by-one / many).

--prm: the scorer is a random GenPRM of the same size (mode "direct") instead, and a third run
"many, per-problem PRM" (batch_scorer=False) shows what batching the verifications of all
waiting problems into one GenPRM batch saves; the GenPRM's forward steps are printed too.
"""
import argparse
import sys
import tempfile
import time

STEP_WORDS = " the"  # a random model rarely writes blank lines: " the" ends steps early too


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--width", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=4)
    ap.add_argument("--max-step-tokens", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--prm", action="store_true", help="score with a random GenPRM (direct mode)")
    ap.add_argument("--method", choices=["beam", "refine"], default="beam")
    ap.add_argument("--max-turns", type=int, default=2, help="refine: revisions at most")
    ap.add_argument("--max-tokens", type=int, default=32, help="refine: tokens per solution")
    ap.add_argument("--threshold", type=float, default=0.5, help="refine: steps below it are revised")
    args = ap.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    import genprm
    from genprm import search
    from genprm.testing import copy_tokenizer, make_random_qwen2

    def model(seed):
        d = tempfile.mkdtemp(prefix="bench_search_")
        heads = max(2, args.hidden // 64)
        make_random_qwen2(d, vocab_size=151936, hidden_size=args.hidden, intermediate_size=args.hidden * 3,
                          num_hidden_layers=args.layers, num_attention_heads=heads,
                          num_key_value_heads=max(1, heads // 2), eos_token_id=151643, seed=seed)
        copy_tokenizer(d, "r1distill")
        return d

    d = model(0)
    prm_dir = model(1) if args.prm else None
    problems = [f"Problem {p}: a train leaves at {p + 1} o'clock at {10 * (p + 2)} km/h; how far has it gone by "
                f"{p + 4} o'clock?" for p in range(args.problems)]

    def length_scorer(problem, solutions):
        return [[(len(step) % 7) / 7 for step in s] for s in solutions]

    opts = dict(beams=args.beams, width=args.width, max_steps=args.max_steps, max_step_tokens=args.max_step_tokens,
                seed=0, step_delimiters=["\n\n", STEP_WORDS])
    runs = {}
    modes = ("many", "many, per-problem PRM", "one-by-one") if args.prm else ("many", "one-by-one")
    for mode in modes:
        eng = genprm.Engine(d, device=args.device, dtype=args.dtype, kv_blocks=8192)
        scorer = length_scorer
        if args.prm:
            scorer = genprm.GenPRM(prm_dir, device=args.device, dtype=args.dtype, mode="direct", max_tokens=8,
                                   fallback_tokens=4, seed=0, engine={"kv_blocks": 8192})
        search.beam_search(eng, scorer, "warm up", beams=2, width=2, max_steps=1, max_step_tokens=2)
        base = eng.stats()
        prm_base = scorer.stats()["forward_steps"] if args.prm else 0
        t0 = time.perf_counter()
        if args.method == "refine":
            ropts = dict(max_turns=args.max_turns, max_tokens=args.max_tokens, threshold=args.threshold, seed=0)
            if mode.startswith("many"):
                res = search.refine_many(eng, scorer, problems, max_problems_in_flight=args.in_flight,
                                         batch_scorer=mode == "many", progress=False, **ropts)
            else:
                res = [search.refine(eng, scorer, p, **ropts) for p in problems]
            res = [{"best": {"steps": [t["text"] for t in r["turns"]]}} for r in res]  # every turn compared
        elif mode.startswith("many"):
            res = search.beam_search_many(eng, scorer, problems, max_problems_in_flight=args.in_flight,
                                          batch_scorer=mode == "many", progress=False, **opts)
        else:
            res = [search.beam_search(eng, scorer, p, **opts) for p in problems]
        wall = time.perf_counter() - t0
        st = eng.stats()
        fwd = st["forward_steps"] - base["forward_steps"]
        seqs = st["mean_batch_seqs"] * st["forward_steps"] - base["mean_batch_seqs"] * base["forward_steps"]
        toks = st["mean_batch_tokens"] * st["forward_steps"] - base["mean_batch_tokens"] * base["forward_steps"]
        runs[mode] = {"wall": wall, "forward_steps": fwd, "mean_batch_seqs": seqs / max(1, fwd),
                      "mean_batch_tokens": toks / max(1, fwd),
                      "prompt_computed": st["prompt_tokens_computed"] - base["prompt_tokens_computed"],
                      "prompt_cached": st["prompt_tokens_cached"] - base["prompt_tokens_cached"],
                      "generated": st["generated_tokens"] - base["generated_tokens"],
                      "prm_forward_steps": scorer.stats()["forward_steps"] - prm_base if args.prm else 0,
                      "best": [r["best"]["steps"] for r in res]}
    same = ", ".join(f"{mode}: {r['best'] == runs['one-by-one']['best']}" for mode, r in runs.items()
                     if mode != "one-by-one")
    what = (f"refine, {args.problems} problems, max {args.max_turns} revisions x {args.max_tokens} tokens"
            if args.method == "refine" else
            f"beam search, {args.problems} problems, N={args.beams} M={args.width}, max {args.max_steps} steps x "
            f"{args.max_step_tokens} tokens")
    print(f"{what}, hidden {args.hidden} x {args.layers} layers, {args.device} {args.dtype}, "
          f"threads {torch.get_num_threads()}, in flight {args.in_flight}, scorer "
          f"{'GenPRM (direct)' if args.prm else 'length callable'}; same "
          f"{'turns' if args.method == 'refine' else 'best beams'} as one-by-one ({same})")
    print(f"{'':<22} {'wall s':>8} {'fwd steps':>9} {'seqs/fwd':>8} {'toks/fwd':>8} {'prompt comp':>11} "
          f"{'prompt cache':>12} {'generated':>9}" + (f" {'PRM fwd':>8}" if args.prm else ""))
    for mode, r in runs.items():
        print(f"{mode:<22} {r['wall']:>8.2f} {r['forward_steps']:>9} {r['mean_batch_seqs']:>8.2f} "
              f"{r['mean_batch_tokens']:>8.2f} {r['prompt_computed']:>11} {r['prompt_cached']:>12} "
              f"{r['generated']:>9}" + (f" {r['prm_forward_steps']:>8}" if args.prm else ""))
    m, o = runs["many"], runs["one-by-one"]
    print(f"ratio one-by-one / many: wall {o['wall'] / m['wall']:.2f}x, forward steps "
          f"{o['forward_steps'] / max(1, m['forward_steps']):.2f}x; many / one-by-one: sequences per forward "
          f"{m['mean_batch_seqs'] / max(1e-9, o['mean_batch_seqs']):.2f}x")
    if args.prm:
        pp = runs["many, per-problem PRM"]
        print(f"ratio per-problem PRM / batched PRM (both many): wall {pp['wall'] / m['wall']:.2f}x, PRM forward "
              f"steps {pp['prm_forward_steps'] / max(1, m['prm_forward_steps']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
