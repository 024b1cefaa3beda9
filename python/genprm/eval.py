"""Evaluation metrics over verification results.

``processbench(rows, threshold=0.5)`` scores rows that carry a ProcessBench ``label`` (index of
the first wrong step, -1 if all are correct) and step rewards (``value``, as ``genprm verify``
writes them): prediction = first step with reward < threshold (-1 if none); acc_error = share of
erroneous rows predicted exactly; acc_correct = share of correct rows predicted -1; F1 = their
harmonic mean. All in percent, per subset and averaged over subsets.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping

from . import _core

__all__ = ["processbench", "subset_of"]


def subset_of(row: Mapping[str, Any]) -> str:
    """The row's ProcessBench subset: its ``subset`` field, else the part of its ``id`` before the
    first '-' (ProcessBench ids look like ``gsm8k-12``), else ``"all"``."""
    if row.get("subset"):
        return str(row["subset"])
    rid = str(row.get("id", ""))
    return rid.split("-", 1)[0] if "-" in rid else "all"


def processbench(rows: Iterable[Mapping[str, Any]], threshold: float = 0.5,
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
    return _core.processbench_score(subsets, labels, rewards, threshold)
