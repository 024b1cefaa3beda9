"""Evaluation metrics over verification results.

``processbench(rows, threshold=0.5)`` scores rows that carry a ProcessBench ``label`` (index of
the first wrong step, -1 if all are correct) and step rewards (``value``, as ``genprm verify``
writes them): prediction = first step with reward < threshold (-1 if none); acc_error = share of
erroneous rows predicted exactly; acc_correct = share of correct rows predicted -1; F1 = their
harmonic mean. All in percent, per subset and averaged over subsets.

``best_of_n(rows, sizes=...)`` computes Best-of-N accuracy curves: per problem N candidates with
final answers and step rewards; for each size n (first n candidates) the accuracy of BoN under
PRM-last/min/avg/prod, majority vote, PRM-weighted vote and pass@n (oracle).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from . import _core

__all__ = ["processbench", "subset_of", "best_of_n"]


def subset_of(row: Mapping[str, Any]) -> str:
    """The row's ProcessBench subset: its ``subset`` field, else the part of its ``id`` before the
    first '-' (ProcessBench ids look like ``gsm8k-12``), else ``"all"``."""
    if row.get("subset"):
        return str(row["subset"])
    rid = str(row.get("id", ""))
    return rid.split("-", 1)[0] if "-" in rid else "all"


def processbench(rows: Iterable[Mapping[str, Any]], threshold: float = _core.VerifierConfig().threshold,
                 rewards_key: str = "value") -> Dict[str, Any]:
    """ProcessBench acc_error / acc_correct / F1 per subset (dict) and ``average_f1``.

    Raises ValueError naming the row for a missing ``label`` or rewards, or a label outside the steps.
    """
    subsets, labels, rewards = [], [], []
    for i, row in enumerate(rows):
        if "label" not in row or rewards_key not in row:
            raise ValueError(f"processbench: row {i} (id {row.get('id')!r}) needs 'label' and '{rewards_key}'")
        subsets.append(subset_of(row))
        labels.append(int(row["label"]))
        rewards.append([float(r) for r in row[rewards_key]])
    report = _core.processbench_score(subsets, labels, rewards, threshold).to_dict()
    report["subsets"] = {s.pop("subset"): s for s in report["subsets"]}
    return report


def _candidate_answer(c: Mapping[str, Any], where: str, answer_key: str) -> Optional[str]:
    """The candidate's final answer: ``answer_key`` if present (None = no answer), else extracted
    (genprm.math.extract_answer) from "text", else from "steps" joined by blank lines."""
    from .math import extract_answer
    if answer_key in c:
        a = c[answer_key]
        if a is not None and not isinstance(a, str):
            raise ValueError(f"best_of_n: {where}: '{answer_key}' must be a string or None")
        return a
    if "text" in c:
        return extract_answer(str(c["text"]))
    if "steps" in c:
        return extract_answer("\n\n".join(str(s) for s in c["steps"]))
    raise ValueError(f"best_of_n: {where} needs '{answer_key}', 'text' or 'steps'")


def best_of_n(rows: Iterable[Mapping[str, Any]], sizes: Optional[Sequence[int]] = None, *,
              truth_key: str = "ground_truth", answer_key: str = "answer",
              rewards_key: str = "value") -> Dict[str, Any]:
    """Best-of-N accuracy curves (percent) over problems.

    Rows: one per problem, ``{"id", truth_key: "1/2", "candidates": [{answer_key: "\\frac12"
    (or "text" / "steps" to extract it from), rewards_key: [step rewards]}, ...]}``.
    ``sizes``: the N values (each uses the FIRST n candidates of every problem); default: 1, 2,
    4, ... up to the smallest candidate count (that count included).

    Returns ``{"sizes": [...], "methods": [...], "problems": int, "accuracy": {method: numpy array
    over sizes}, "hits": {method: numpy int array}}`` with methods bon_last, bon_min, bon_avg,
    bon_prod, majority, weighted_last, weighted_min, weighted_avg, weighted_prod, pass. Ties and
    answer grouping as genprm.search. Raises ValueError naming the row for malformed input or a
    problem with fewer candidates than a size.
    """
    ids: List[str] = []
    truths: List[str] = []
    answers: List[List[Optional[str]]] = []
    rewards: List[List[List[float]]] = []
    for i, row in enumerate(rows):
        if truth_key not in row or "candidates" not in row:
            raise ValueError(f"best_of_n: row {i} (id {row.get('id')!r}) needs '{truth_key}' and 'candidates'")
        cands = row["candidates"]
        ids.append(str(row.get("id", i)))
        truths.append(str(row[truth_key]))
        a_row, r_row = [], []
        for j, c in enumerate(cands):
            where = f"row {i} candidate {j}"
            if not isinstance(c, Mapping):
                raise ValueError(f"best_of_n: {where} must be a dict")
            a_row.append(_candidate_answer(c, where, answer_key))
            rs = c.get(rewards_key, c.get("rewards"))
            if rs is None:
                raise ValueError(f"best_of_n: {where} has no '{rewards_key}' (step rewards)")
            r_row.append([float(x) for x in rs])
        answers.append(a_row)
        rewards.append(r_row)
    if not ids:
        raise ValueError("best_of_n: rows is empty")
    if sizes is None:
        smallest = min(len(a) for a in answers)
        if smallest == 0:
            raise ValueError("best_of_n: a problem has no candidates")
        sizes = []
        n = 1
        while n < smallest:
            sizes.append(n)
            n *= 2
        sizes.append(smallest)
    sizes = [int(n) for n in sizes]
    out = _core.best_of_n_score(ids, truths, answers, rewards, sizes).to_dict()
    methods = list(out["methods"])
    return {
        "sizes": sizes,
        "methods": methods,
        "problems": out["problems"],
        "accuracy": {m: np.array([p["accuracy"][m] for p in out["points"]], dtype=np.float64) for m in methods},
        "hits": {m: np.array([p["hits"][m] for p in out["points"]], dtype=np.int64) for m in methods},
    }
