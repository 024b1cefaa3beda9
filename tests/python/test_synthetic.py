"""genprm.synthetic: the seeded arithmetic task the small models were trained on (fast, no model)."""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from genprm import synthetic as S

ROOT = Path(__file__).resolve().parents[2]


def test_rows_are_the_committed_ones_on_every_machine():
    # the demo's input was written by processbench_rows; the generator must not drift
    rows = [json.loads(line) for line in open(ROOT / "examples/data/arith_processbench.jsonl")]
    again = S.processbench_rows(len(rows), 20261130, 0.5)
    assert [(r["problem"], r["steps"], r["label"]) for r in rows] == \
        [(r["problem"], r["steps"], r["label"]) for r in again]


@pytest.mark.parametrize("level", sorted(S.LEVELS))
def test_labels_are_the_first_wrong_step(level):
    rows = S.processbench_rows(60, 3, 0.7, level=level, operand_error_share=0.5)
    assert any(r["label"] >= 0 for r in rows) and any(r["label"] == -1 for r in rows)
    for r in rows:
        problem = S.make_problems(60, 3, level=level)[int(r["id"].rsplit("-", 1)[1])]
        assert r["problem"] == problem.text
        assert r["final_answer_correct"] == (r["label"] == -1)


def test_an_operand_error_keeps_the_arithmetic_right_and_the_later_steps_consistent():
    rng = random.Random(5)
    for p in S.make_problems(40, 9, level="small"):
        written, claimed = S.corrupt_operand(p, rng)
        k = S.first_wrong(p, claimed, written)
        assert k >= 0 and claimed[k] != p.values()[k]
        steps = S.solution_steps(p, claimed, written)
        for j, step in enumerate(steps):
            left, op, n, r = S.step_claim(p, claimed, j, written)
            assert step.startswith(f"Step {j + 1}: {left} {op} {n} = {r}")
            assert eval(f"{left} {op} {n}") == r  # every stated step is arithmetically right


@pytest.mark.parametrize("check", S.CHECKS)
def test_the_verification_block_prints_what_the_rationale_says(check):
    rng = random.Random(1)
    for i, p in enumerate(S.make_problems(6, 4, level="small")):
        # operand errors, and (the last two) wrong results
        written, claimed = S.corrupt_operand(p, rng) if i < 4 else (None, S.corrupt(p, rng))
        for k in range(len(p.ops)):
            v = S.verification(p, claimed, k, written, check=check)
            code = v.code[: -len("```\n")]
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            assert out.strip() == v.output
            # the judgement follows the output: every check it prints must hold
            assert v.judgement == ("No" if "False" in v.output.split() else "Yes")
    with pytest.raises(ValueError, match="check must be one of"):
        S.verification(p, claimed, 0, check="nope")
