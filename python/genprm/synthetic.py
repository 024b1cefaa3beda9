"""A seeded synthetic task family: multi-step integer arithmetic, solved step by step.

The small trained models shipped in ``models/`` (a policy and a GenPRM) were trained on text made
here, and the tests draw held-out problems from it, so every stage of genprm runs on
model-written text whose right answer is known.

A problem is a left-to-right chain: a start value and 2-4 operations (``+ n``, ``- n``, ``* n``),
written with the parentheses the order needs, e.g. ``Compute (17 + 25) * 3 - 8.`` Its solution
has one step per operation, in the policy format (steps joined by a blank line, the last one
boxed)::

    Step 1: 17 + 25 = 42

    Step 2: 42 * 3 = 126

    Step 3: 126 - 8 = 118. The answer is \\boxed{118}.

``corrupt`` injects arithmetic errors (a step states a wrong result; later steps compute
correctly from it, as a real wrong solution does), ``corrupt_operand`` the error a small policy
makes most (a step applies an operation the problem does not have, with the arithmetic right), and ``processbench_rows`` writes
ProcessBench-style rows (``problem``, ``steps``, ``label`` = index of the first wrong step or
-1, ``final_answer_correct``). ``verification`` writes a GenPRM rationale of one step in the
reference's stage format: the analysis (what the paragraph claims), a Python block that
recomputes the step from the problem's operation, the block's
output (filled in by the sandbox at inference), and a judgement that follows from that output.

This module uses only the standard library, so the training scripts can load it by path.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["Problem", "make_problem", "make_problems", "solution_steps", "solution_text", "corrupt", "corrupt_operand",
           "processbench_rows", "verification", "Verification", "CHECKS", "step_claim", "first_wrong", "judgement_text",
           "OUTPUT_OPENING", "MAX_VALUE", "LEVELS"]

MAX_VALUE = 999  # every intermediate value stays in [0, MAX_VALUE]
_OPS = ("+", "-", "*")


@dataclass(frozen=True)
class Problem:
    start: int
    ops: Tuple[Tuple[str, int], ...]  # (operator, operand) applied left to right

    @property
    def text(self) -> str:
        return f"Compute {self.expression()}."

    def expression(self) -> str:
        expr, loose = str(self.start), False  # loose: the expression so far ends in + or -
        for op, n in self.ops:
            if op == "*" and loose:
                expr = f"({expr})"
            expr = f"{expr} {op} {n}"
            loose = op in "+-"
        return expr

    def values(self) -> List[int]:
        """The running value after each operation (the correct step results)."""
        out, v = [], self.start
        for op, n in self.ops:
            v = _apply(v, op, n)
            out.append(v)
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]


def _apply(v: int, op: str, n: int) -> int:
    return v + n if op == "+" else v - n if op == "-" else v * n


#: Difficulty levels: start range, + / - operand range, * operand range, largest value, op count.
LEVELS = {
    "standard": dict(start=(2, 50), add=(2, 60), mul=(2, 9), max_value=MAX_VALUE, ops=(2, 4)),
    # what the shipped policy solves: one-digit operands, values below 100, 2-3 operations
    "small": dict(start=(2, 20), add=(1, 9), mul=(2, 5), max_value=99, ops=(2, 3)),
}


def make_problem(rng: random.Random, min_ops: Optional[int] = None, max_ops: Optional[int] = None,
                 level: str = "standard") -> Problem:
    """One problem of ``level`` (LEVELS): every value stays in [0, the level's max_value]."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
    cfg = LEVELS[level]
    top = cfg["max_value"]
    count = rng.randint(cfg["ops"][0] if min_ops is None else min_ops, cfg["ops"][1] if max_ops is None else max_ops)
    v = rng.randint(*cfg["start"])
    start, ops = v, []
    while len(ops) < count:
        op = rng.choice(_OPS)
        if op == "+":
            n = rng.randint(*cfg["add"])
        elif op == "-":
            if v < cfg["add"][0] + 2:
                continue
            n = rng.randint(cfg["add"][0], min(v - 1, cfg["add"][1]))  # stays positive
        else:
            if v < 2 or v * cfg["mul"][0] > top or (ops and ops[-1][0] == "*"):
                continue  # no two multiplications in a row: keeps values small
            n = rng.randint(cfg["mul"][0], min(cfg["mul"][1], top // v))
        r = _apply(v, op, n)
        if not 0 <= r <= top:
            continue
        ops.append((op, n))
        v = r
    return Problem(start, tuple(ops))


def make_problems(count: int, seed: int, min_ops: Optional[int] = None, max_ops: Optional[int] = None,
                  level: str = "standard") -> List[Problem]:
    """``count`` distinct problems from ``seed`` (the same list on every machine)."""
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < count:
        p = make_problem(rng, min_ops, max_ops, level)
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


#: The operations a solution's steps apply, when they differ from the problem's (corrupt_operand).
Written = Optional[Sequence[Tuple[str, int]]]


def step_claim(problem: Problem, claimed: Sequence[int], k: int,
               written: Written = None) -> Tuple[int, str, int, int]:
    """Step k (0-based) of a solution with results ``claimed`` as its paragraph states it: (left,
    op, right, stated result); the operation is the problem's unless ``written`` says otherwise."""
    left = problem.start if k == 0 else claimed[k - 1]
    op, n = problem.ops[k] if written is None else written[k]
    return left, op, n, claimed[k]


def solution_steps(problem: Problem, claimed: Optional[Sequence[int]] = None, written: Written = None) -> List[str]:
    """The steps stating ``claimed`` results (default: the correct ones), last one boxed."""
    claimed = list(problem.values() if claimed is None else claimed)
    steps = []
    for k in range(len(problem.ops)):
        left, op, n, r = step_claim(problem, claimed, k, written)
        s = f"Step {k + 1}: {left} {op} {n} = {r}"
        if k == len(problem.ops) - 1:
            s += f". The answer is \\boxed{{{r}}}."
        steps.append(s)
    return steps


def solution_text(steps: Sequence[str]) -> str:
    """The solution as the policy writes it: steps joined by a blank line."""
    return "\n\n".join(steps)


def _wrong(rng: random.Random, right: int) -> int:
    for _ in range(100):
        delta = rng.choice((1, 2, 3, 10, rng.randint(1, 30)))
        w = right + rng.choice((-1, 1)) * delta
        if 0 <= w <= MAX_VALUE and w != right:
            return w
    return right + 1


def corrupt(problem: Problem, rng: random.Random, step: Optional[int] = None) -> List[int]:
    """Claimed results with one arithmetic error at ``step`` (0-based; random when None): that
    step states a wrong result and the later steps compute correctly from it (a wrong result
    that would push a later value out of [0, MAX_VALUE] is drawn again)."""
    k = rng.randrange(len(problem.ops)) if step is None else step
    values = problem.values()
    for _ in range(100):
        claimed = values[:k] + [_wrong(rng, values[k])]
        for op, n in problem.ops[k + 1:]:
            claimed.append(_apply(claimed[-1], op, n))
        if all(0 <= v <= MAX_VALUE for v in claimed):
            return claimed
    last = len(values) - 1  # the last step's error moves no later value
    return values[:last] + [_wrong(rng, values[last])]


def corrupt_operand(problem: Problem, rng: random.Random,
                    step: Optional[int] = None) -> Tuple[List[Tuple[str, int]], List[int]]:
    """(written operations, claimed results) of a solution whose step ``step`` (0-based; random
    when None) applies another operand or operator than the problem's, computing it correctly,
    and whose later steps compute correctly from that result. The step's result always differs
    from the right one."""
    k = rng.randrange(len(problem.ops)) if step is None else step
    values = problem.values()
    left = problem.start if k == 0 else values[k - 1]
    op, n = problem.ops[k]
    for _ in range(100):
        if rng.random() < 0.75:
            wop, wn = op, max(1, n + rng.choice((-3, -2, -1, 1, 2, 3)))
        else:
            wop, wn = rng.choice([o for o in _OPS if o != op]), n
        if (wop, wn) == (op, n):
            continue
        claimed = values[:k] + [_apply(left, wop, wn)]
        for o, m in problem.ops[k + 1:]:
            claimed.append(_apply(claimed[-1], o, m))
        if claimed[k] != values[k] and all(0 <= v <= MAX_VALUE for v in claimed):
            written = list(problem.ops)
            written[k] = (wop, wn)
            return written, claimed
    return list(problem.ops), corrupt(problem, rng, k)  # no operand fits: a wrong result instead


def first_wrong(problem: Problem, claimed: Sequence[int], written: Written = None) -> int:
    """Index of the first step that does not apply the problem's operation to the previous
    stated result (wrong operation, or wrong result), -1 if none."""
    for k in range(len(problem.ops)):
        left, op, n, r = step_claim(problem, claimed, k)
        if _apply(left, op, n) != r or (written is not None and tuple(written[k]) != tuple(problem.ops[k])):
            return k
    return -1


def processbench_rows(count: int, seed: int, error_rate: float = 0.5, *, id_prefix: str = "arith",
                      min_ops: Optional[int] = None, max_ops: Optional[int] = None,
                      level: str = "standard", operand_error_share: float = 0.0) -> List[Dict[str, object]]:
    """ProcessBench-style rows: a share ``error_rate`` of the solutions carry one error, of which
    a share ``operand_error_share`` apply a wrong operation (corrupt_operand) and the rest state a
    wrong result (corrupt). Keys: id, generator, problem, steps, label, final_answer_correct,
    answer."""
    rng = random.Random(seed ^ 0x5EED)
    rows = []
    for i, p in enumerate(make_problems(count, seed, min_ops, max_ops, level)):
        written = None
        if rng.random() >= error_rate:
            claimed = p.values()
        elif operand_error_share > 0 and rng.random() < operand_error_share:
            written, claimed = corrupt_operand(p, rng)
        else:
            claimed = corrupt(p, rng)
        rows.append({"id": f"{id_prefix}-{seed}-{i}", "generator": "synthetic", "problem": p.text,
                     "steps": solution_steps(p, claimed, written), "label": first_wrong(p, claimed, written),
                     "final_answer_correct": claimed[-1] == p.answer, "answer": str(p.answer)})
    return rows


@dataclass
class Verification:
    """One GenPRM rationale of a step, cut where the stages meet (the reference's format)."""
    analysis: str        # after the analyze opening, through "</analyze>\n"
    code: str            # after the verify opening, through the closing fence "\n```\n"
    output: str          # what the sandbox prints for `code` (stripped)
    conclusion: str      # after the code output, through "</output>\n"
    judgement: str = field(default="Yes")


#: How a rationale's Python block checks step k (``verification``):
#: "problem" copies the problem's expression into the block and recomputes the value after its
#: first k + 1 operations (so a step that applies a wrong operation, or builds on an earlier
#: error, prints False; the model copies text and the paragraph number, it never computes);
#: "step" recomputes the paragraph's own operation on its left value (catches a wrong result
#: only; the first GenPRM's format, on which the shipped tokenizer was trained);
#: "match" copies the problem's expression into the block and prints two checks: whether the
#: paragraph's operation is the problem's operation k + 1 (Python picks it out of the copy, so only
#: a slip on that operation's tokens matters), and whether the paragraph's own arithmetic is right.
CHECKS = ("problem", "step", "match")


def verification(problem: Problem, claimed: Sequence[int], k: int, written: Written = None,
                 check: str = "step") -> Verification:
    """The rationale of step k (0-based) of a solution stating ``claimed`` (applying ``written``
    operations): the analysis restates the paragraph, the code checks it (``CHECKS``), the
    judgement follows the code output."""
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
    wleft, wop, wn, r = step_claim(problem, claimed, k, written)
    analysis = f"The paragraph claims {wleft} {wop} {wn} = {r}.\n</analyze>\n"
    if check == "problem":
        actual = problem.values()[k]
        code = (f"t = \"{problem.expression()}\".replace(\"(\", \"\").replace(\")\", \"\").split()\n"
                f"v = int(t[0])\nfor i in range(1, 2 * {k + 1}, 2):\n    v = eval(f\"{{v}} {{t[i]}} {{t[i + 1]}}\")\n"
                f"print(v, v == {r})\n```\n")
        shown = f"the value after step {k + 1} is {actual}"
    elif check == "match":
        same = (wop, wn) == tuple(problem.ops[k])
        right = _apply(wleft, wop, wn) == r
        j = 2 * (k + 1)
        code = (f"t = \"{problem.expression()}\".replace(\"(\", \"\").replace(\")\", \"\").split()\n"
                f"print(t[{j} - 1:{j} + 1] == [\"{wop}\", \"{wn}\"], {wleft} {wop} {wn} == {r})\n```\n")
        output = f"{same} {right}"
        if same and right:
            said = "The code output shows the paragraph applies the problem's operation and computes it right.\n"
        elif not same:
            said = "The code output shows the paragraph does not apply the problem's operation.\n"
        else:
            said = f"The code output shows {wleft} {wop} {wn} is not {r}.\n"
        verdict = "Yes" if same and right else "No"
        return Verification(analysis=analysis, code=code, output=output,
                            conclusion=said + "</verify>\n" + OUTPUT_OPENING + judgement_text(verdict),
                            judgement=verdict)
    else:
        left, op, n, _ = step_claim(problem, claimed, k)
        actual = _apply(left, op, n)
        code = f"result = {left} {op} {n}\nprint(result, result == {r})\n```\n"
        shown = f"{left} {op} {n} = {actual}"
    ok = actual == r  # what the block prints: the judgement follows the code output
    verdict = "Yes" if ok else "No"
    output = f"{actual} {ok}"
    if ok:
        said = f"The code output shows {shown}, as the paragraph says.\n"
    else:
        said = f"The code output shows {shown}, not {r}.\n"
    return Verification(analysis=analysis, code=code, output=output,
                        conclusion=said + "</verify>\n" + OUTPUT_OPENING + judgement_text(verdict),
                        judgement=verdict)


OUTPUT_OPENING = "<output>\n**Judgement**: $\\boxed"  # the verifier writes this itself in CoT / direct


def judgement_text(verdict: str) -> str:
    """What follows the output opening: the boxed verdict and the closing tag."""
    return f"{{{verdict}}}$\n</output>\n"
