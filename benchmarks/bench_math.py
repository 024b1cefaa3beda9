"""Answer-grading throughput: genprm.math vs Hugging Face Math-Verify on the same pairs, same run.

Typical MATH final answers (integers, fractions, radicals, pi, tuples, intervals, expressions,
text, choice letters), each paired with an equal rewrite and a near miss as a model would write
them. genprm is timed on one core through is_equiv_many (one C++ call, no per-pair Python) and
through a Python loop of is_equiv; Math-Verify through parse(gold), parse(pred), verify(...).

    PYTHONPATH=build-<you>/python .venv/bin/python benchmarks/bench_math.py [--pairs 200000]
"""
import argparse
import os
import time

import genprm  # noqa: F401
from genprm import math as gm

PAIRS = [
    # (prediction, reference)
    ("42", "42"), ("41", "42"), ("\\frac{3}{4}", "0.75"), ("\\dfrac34", "\\frac{3}{4}"), ("\\frac{2}{3}", "0.6"),
    ("2\\sqrt{5}", "\\sqrt{20}"), ("\\sqrt{18}", "3\\sqrt{2}"), ("2\\sqrt{3}", "3\\sqrt{2}"),
    ("\\frac{\\pi}{3}", "\\frac{1}{3}\\pi"), ("60^\\circ", "60"), ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"),
    ("(1, 2)", "\\left(1,2\\right)"), ("(2,1)", "(1,2)"), ("[2, 5)", "[2,5)"), ("(-\\infty, 3]", "(-\\infty,3)"),
    ("x^2+2x+1", "(x+1)^2"), ("x^2-1", "(x-1)(x+1)"), ("x^2+1", "(x+1)^2"), ("\\frac{1}{2}", "\\frac12"),
    ("10\\%", "10"), ("\\$1,000", "1000"), ("x = 5", "5"), ("\\text{(C)}", "C"), ("B", "C"),
    ("-\\frac{7}{2}", "-3.5"), ("\\frac{5}{12}", "\\frac{10}{24}"), ("\\frac{1}{2^{10}}", "\\frac{1}{1024}"),
    ("1, 2, 3", "\\{3, 2, 1\\}"), ("\\frac{-1\\pm\\sqrt{5}}{2}", "\\frac{-1+\\sqrt5}{2},\\frac{-1-\\sqrt5}{2}"),
    ("4\\pi", "12.566"), ("\\text{Monday}", "Monday"), ("3 \\text{ cm}", "3"), ("\\frac{9}{4}\\pi", "2.25\\pi"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}"), ("2^{10}", "1024"),
    ("\\log_2 8", "3"), ("e^{2}", "e^2"), ("\\sin^2 x+\\cos^2 x", "1"), ("\\binom{6}{2}", "15"), ("720", "6!"),
]


# Rates are per second of this process's CPU time (time.process_time): the development machine is
# shared, and CPU time is what one core delivers whatever else runs. Wall-clock rates are printed too.
def timed(fn):
    c, w = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c, time.perf_counter() - w


def rate_genprm_many(preds, refs, repeat):
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        best = min(best, timed(lambda: gm.is_equiv_many(preds, refs)))
    return len(preds) / best[0], len(preds) / best[1]


def rate_genprm_loop(preds, refs):
    def run():
        for p, r in zip(preds, refs):
            gm.is_equiv(p, r)
    c, w = timed(run)
    return len(preds) / c, len(preds) / w


def rate_math_verify(pairs, rounds):
    from math_verify import parse, verify

    def run():
        for _ in range(rounds):
            for p, r in pairs:
                verify(parse(f"${r}$"), parse(f"${p}$"))
    c, w = timed(run)
    n = rounds * len(pairs)
    return n / c, n / w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=200_000, help="pairs per genprm timing")
    ap.add_argument("--mv-rounds", type=int, default=3, help="passes over the pair list for Math-Verify")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    except (AttributeError, OSError):
        pass
    reps = args.pairs // len(PAIRS) + 1
    preds = [p for p, _ in PAIRS] * reps
    refs = [r for _, r in PAIRS] * reps
    preds, refs = preds[:args.pairs], refs[:args.pairs]
    gm.is_equiv_many(preds[:1000], refs[:1000])  # warm-up
    ours = rate_genprm_many(preds, refs, repeat=3)
    ours_loop = rate_genprm_loop(preds[:50_000], refs[:50_000])
    mv = rate_math_verify(PAIRS, args.mv_rounds)
    agree = sum(gm.is_equiv(p, r) == __import__("math_verify").verify(
        __import__("math_verify").parse(f"${r}$"), __import__("math_verify").parse(f"${p}$")) for p, r in PAIRS)
    print(f"pairs: {len(PAIRS)} distinct typical MATH answer pairs, one core")
    print("comparisons per second of CPU time (wall-clock in brackets)")
    print(f"genprm is_equiv_many : {ours[0]:12,.0f}  [{ours[1]:12,.0f}]")
    print(f"genprm is_equiv loop : {ours_loop[0]:12,.0f}  [{ours_loop[1]:12,.0f}]  (one Python call per pair)")
    print(f"Math-Verify          : {mv[0]:12,.0f}  [{mv[1]:12,.0f}]")
    print(f"ratio genprm/Math-Verify: {ours[0] / mv[0]:,.0f}x batch, {ours_loop[0] / mv[0]:,.0f}x per-call loop "
          f"(wall-clock: {ours[1] / mv[1]:,.0f}x, {ours_loop[1] / mv[1]:,.0f}x)")
    print(f"verdicts agree on {agree}/{len(PAIRS)} pairs")


if __name__ == "__main__":
    main()
