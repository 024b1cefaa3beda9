"""Quality of the shipped arithmetic models on held-out problems, every stage through genprm's
engine and sandbox (the figures in the README and python/genprm/models/README.md):

- GenPRM: ProcessBench F1 at Maj@1 and Maj@4, AUC of step rewards (right vs wrong steps), share
  of rationales that executed a Python block, in the full mode and beside it the reference's
  CoT-only, code-without-execution and direct modes; the full mode also on rows whose errors are
  all wrong operations (``heldout_rows(..., operand_error_share=1.0)``, the policy's usual error);
- with the arithmetic policy: Best-of-8 (pass@1, majority, PRM-weighted vote, Best-of-N), beam
  search vs greedy, critic refinement, RPE / hard / difference labels against the known first
  wrong step.

    PYTHONPATH=build/python .venv/bin/python benchmarks/bench_arith_quality.py [--rows 100] [--problems 60]
"""
from __future__ import annotations

import argparse
import time

import genprm
from genprm import arith


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40, help="ProcessBench-style rows verified per mode")
    ap.add_argument("--problems", type=int, default=60, help="problems for Best-of-N / beam / refinement")
    ap.add_argument("--rpe-rows", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    rows = arith.heldout_rows(args.rows)
    problems = arith.heldout_problems(args.problems)
    print(f"held-out rows {len(rows)} ({sum(r['label'] >= 0 for r in rows)} with an error), problems {len(problems)}")
    print("| GenPRM mode | Maj@N | F1 | acc_error | acc_correct | AUC | python executed | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    prms = {}
    for mode, maj in (("full", 1), ("full", 4), ("cot", 1), ("code-no-exec", 1), ("direct", 1)):
        prm = genprm.GenPRM(arith.genprm_dir(), majority=maj, mode=mode, seed=0)
        t = time.time()
        q = arith.verification_quality(prm, rows)
        print(f"| {mode} | {maj} | {q['f1']:.1f} | {q['acc_error']:.1f} | {q['acc_correct']:.1f} | {q['auc']:.3f} | "
              f"{q['executed_share']:.0%} | {time.time() - t:.0f} |")
        prms[(mode, maj)] = prm
    # the policy's usual error: a step that applies an operation the problem does not have
    operand_rows = arith.heldout_rows(args.rows, operand_error_share=1.0)
    for maj in (1, 4):
        t = time.time()
        q = arith.verification_quality(prms[("full", maj)], operand_rows)
        print(f"| full, operand-error rows | {maj} | {q['f1']:.1f} | {q['acc_error']:.1f} | {q['acc_correct']:.1f} | "
              f"{q['auc']:.3f} | {q['executed_share']:.0%} | {time.time() - t:.0f} |")
    if not arith.available():
        print("\n(the arithmetic policy is not shipped yet: no Best-of-N / beam / refinement / RPE figures)")
        return
    policy = genprm.Engine(arith.policy_dir())
    prm = prms[("full", 1)]
    s = arith.sampling_quality(policy, prm, problems, n=8)
    print(f"\nBest-of-8: pass@1 {s['pass1']:.3f}, majority {s['majority']:.3f}, PRM-weighted vote {s['weighted']:.3f}, "
          f"Best-of-N (PRM-min) {s['bon']:.3f}")
    b = arith.beam_quality(policy, prm, problems)
    print(f"beam search N4 M2: {b['beam']:.3f} vs greedy {b['greedy']:.3f}")
    r = arith.refine_quality(policy, prm, problems)
    print(f"critic refinement: {r['fixed']} of {r['first_wrong']} wrong first solutions fixed")
    lab = arith.rpe_quality(policy, arith.heldout_rows(args.rpe_rows, seed=arith.HELDOUT_SEED + 2, level="small"), k=16)
    print(f"RPE labels = known first wrong step: RPE {lab['rpe']:.3f}, hard {lab['hard']:.3f}, "
          f"difference {lab['difference']:.3f}")


if __name__ == "__main__":
    main()
