"""Final-answer extraction and answer equivalence grading (C++: include/genprm/math/).

    >>> from genprm import math as gm
    >>> gm.extract_answer(r"... so the area is $\\boxed{\\frac{3}{4}}$.")
    '\\\\frac{3}{4}'
    >>> gm.is_equiv("0.75", r"\\frac34")
    True
    >>> gm.compare(r"\\sqrt{x^2}", "x")   # equal only where x > 0
    'unknown'

compare() returns "equal", "not_equal" or "unknown" (unparseable answers, non-finite values,
equality only on a restricted domain); is_equiv() is compare() == "equal".
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from . import _core

_m = _core.math

__all__ = ["extract_answer", "extract", "is_equiv", "compare", "normalize", "is_equiv_many"]


def extract(text: str) -> Optional[Tuple[str, str]]:
    """(answer, rule) for the final answer of a solution, or None if nothing was found."""
    return _m.extract(text)


def extract_answer(text: str) -> Optional[str]:
    """The final answer of a solution (last \\boxed{...}, then phrases, then last number), or None."""
    found = _m.extract(text)
    return None if found is None else found[0]


def compare(prediction: str, reference: str) -> str:
    """"equal", "not_equal" or "unknown"."""
    return _m.compare(prediction, reference)


def is_equiv(prediction: str, reference: str) -> bool:
    """True when the prediction states the same answer as the reference."""
    return _m.is_equiv(prediction, reference)


def normalize(answer: str) -> str:
    """The LaTeX-normalised form of an answer (what string comparison sees)."""
    return _m.normalize(answer)


def is_equiv_many(predictions: Sequence[str], references: Sequence[str]) -> list:
    """is_equiv over pairs in one C++ call (no per-pair Python overhead)."""
    return _m.is_equiv_many(list(predictions), list(references))
