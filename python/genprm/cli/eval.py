"""``genprm eval``: ProcessBench acc_error / acc_correct / F1 of a ``genprm verify`` output."""
from __future__ import annotations

import argparse
import json
from typing import Any, Optional

from .. import _core
from .. import eval as _evaluation
from .jobs import add_command, eprint, read_rows


def add(sub: Any) -> None:
    e = add_command(sub, "eval", _eval, "ProcessBench acc_error / acc_correct / F1 of a verify output",
                    "Scores the rows of a `genprm verify` output that carry a ProcessBench "
                    "'label': prediction = first step with reward < threshold.", formatter_class=argparse.HelpFormatter)
    e.add_argument("--input", required=True, help="JSONL written by genprm verify")
    e.add_argument("--threshold", type=float, default=_core.VerifierConfig().threshold, help="a step is wrong when its reward is below this")
    e.add_argument("--json", action="store_true", help="print the report as JSON")


def _eval(args: argparse.Namespace) -> int:
    rows, problems = read_rows(args.input)
    scored = [row for _, row in rows if "label" in row and row.get("value") is not None]
    for lineno, row in rows:
        if row.get("value") is None and row.get("error"):  # a row genprm verify --ray could not verify
            problems.append(f"{args.input}:{lineno}: row {row['id']!r} failed in verify ({row['error']}); skipped")
        elif "label" not in row or "value" not in row:
            problems.append(f"{args.input}:{lineno}: row {row['id']!r} has no 'label' or 'value'; skipped")
    for msg in problems:
        eprint(f"genprm eval: {msg}")
    if not scored:
        eprint(f"genprm eval: {args.input}: no rows with both 'label' and 'value' "
               "(run genprm verify on ProcessBench rows)")
        return 2
    report = _evaluation.processbench(scored, threshold=args.threshold)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0

    def pct(x: Optional[float]) -> str:
        return "   n/a" if x is None else f"{x:6.1f}"

    print(f"ProcessBench, threshold {args.threshold}: {len(scored)} rows")
    print(f"{'subset':<16} {'rows':>5} {'acc_error':>9} {'acc_correct':>11} {'F1':>6}")
    for name, sc in report["subsets"].items():
        n = sc["error_rows"] + sc["correct_rows"]
        print(f"{name:<16} {n:>5} {pct(sc['acc_error']):>9} {pct(sc['acc_correct']):>11} {pct(sc['f1']):>6}")
    print(f"{'average F1':<16} {'':>5} {'':>9} {'':>11} {pct(report['average_f1']):>6}")
    return 0
