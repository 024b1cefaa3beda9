"""The ``genprm`` command line (also ``python -m genprm``).

    genprm verify --model DIR --input FILE.jsonl --output OUT.jsonl --majority N
                  [--mode full|cot|code-no-exec|direct] [--device cpu|cuda] [--dtype float32|bfloat16|float16]
    genprm eval --input OUT.jsonl [--threshold 0.5] [--json]     (ProcessBench metrics)
    genprm label --model POLICY_DIR --input ROWS.jsonl --output LABELS.jsonl [--k K] [--seed S]
                                                               (MC + RPE step labels; see genprm label -h)
    genprm search --policy POLICY_DIR (--prm PRM_DIR | --scorer none) --input PROBLEMS.jsonl --output OUT.jsonl
                  [--method beam|best-of-n]                    (test-time scaling; see genprm search -h)

Input rows: ``{"id", "problem", "steps": [...]}`` (ProcessBench rows, which also carry ``label``
and more, are accepted as they are). Each finished row is appended to the output at once: the
input row plus ``value`` (step rewards), ``first_wrong_step``, ``threshold``, ``time`` and
``verification`` (per step and path: rewards, judgements, rationales, code and outputs, token
counts). Rerunning resumes: ids already in the output are skipped. A malformed row is reported
with its line number and skipped.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable, Dict, List

from .. import _core
from ..prm import GenPRM
from .jobs import CHECKPOINT, Job, add_command, add_device, add_files, add_run, run_job, start_job

# This module's docstring is `genprm verify -h`'s description: the overview of the whole command line.

_D = _core.GenPRMOptions()  # the defaults, defined once in C++


def add(sub: Any) -> None:
    v = add_command(sub, "verify", _verify, "reward every step of every solution in a JSONL file", __doc__)
    v.add_argument("--model", required=True, help="GenPRM checkpoint directory (HF format)")
    add_files(v, "{id, problem, steps}")
    v.add_argument("--majority", type=int, default=_D.verifier.majority, help="rationales per step, rewards averaged (Maj@N)")
    v.add_argument("--mode", choices=["full", "cot", "code-no-exec", "direct"], default=_D.verifier.mode)
    add_device(v)
    v.add_argument("--threshold", type=float, default=_D.verifier.threshold, help="a step is wrong when its reward is below this")
    v.add_argument("--max-tokens", dest="max_tokens", type=int, default=None,
                   help="token budget per step (reference: 2048)")
    v.add_argument("--analyze-max-tokens", dest="analyze_max_tokens", type=int, default=None,
                   help="budget of the analyze stage (default: --max-tokens)")
    v.add_argument("--round-limit", dest="round_limit", type=int, default=None, help="code rounds (reference: 3)")
    v.add_argument("--seed", type=int, default=None, help="seed every request (reproducible runs)")
    v.add_argument("--kv-blocks", dest="kv_blocks", type=int, default=None, help="KV cache blocks of 16 tokens")
    v.add_argument("--max-in-flight", dest="max_in_flight", type=int, default=None,
                   help="solutions verified at once (default 32)")
    v.add_argument("--reward", choices=["exact", "reference"], default=_D.verifier.reward,
                   help="exact: p(Yes)/(p(Yes)+p(No)) at the judgement (default); reference: the reference "
                        "implementation's read-out (first Yes/No match, top-20 log-probabilities), bit for bit")
    v.add_argument("--sequential-paths", dest="sequential_paths", action="store_true",
                   help="Maj@N as the reference: a step's paths run one after another over one code namespace")
    v.add_argument("--code-timeout", dest="code_timeout", type=float, default=_D.sandbox.timeout_s,
                   help="seconds per code block (default %(default)s, as the reference)")
    add_run(v, show="print each row's step rewards as it finishes")


def _verify(args: argparse.Namespace) -> int:
    todo = start_job(JOB.name, args, [("--model", args.model, f"a GenPRM {CHECKPOINT}")], verb="verify")
    if todo is None:
        return 2
    if not todo:
        return 0
    return 1 if run_job(JOB, args, todo) else 0


def _load(args: argparse.Namespace) -> GenPRM:
    options: Dict[str, Any] = {"threshold": args.threshold, "reward": args.reward,
                               "sequential_paths": args.sequential_paths}
    for opt in ("max_tokens", "analyze_max_tokens", "round_limit", "seed"):
        value = getattr(args, opt)
        if value is not None:
            options[opt] = value
    engine: Dict[str, Any] = {}
    if args.kv_blocks is not None:
        engine["kv_blocks"] = args.kv_blocks
    if args.max_in_flight is not None:
        options["max_solutions_in_flight"] = args.max_in_flight
    return GenPRM(args.model, device=args.device, dtype=args.dtype, majority=args.majority, mode=args.mode,
                  engine=engine, sandbox={"timeout_s": args.code_timeout}, **options)


def _records(prm: GenPRM, args: argparse.Namespace, rows: List[Dict[str, Any]],
             on_record: Callable[[int, Dict[str, Any]], None], progress: bool) -> None:
    """Verifies ``rows``; on_record(index, output line) as each finishes."""
    def write(i: int, result) -> None:
        d = result.to_dict()
        record = dict(rows[i])
        record.update({"value": d["value"], "first_wrong_step": d["first_wrong_step"],
                       "threshold": d["threshold"], "time": d["time"],
                       "verification": {"mode": prm.mode, "majority": prm.majority, "reward": args.reward,
                                        "steps": d["steps"],
                                        "generated_tokens": d["generated_tokens"],
                                        "prompt_tokens": d["prompt_tokens"],
                                        "cached_prompt_tokens": d["cached_prompt_tokens"],
                                        "error": d["error"]}})
        on_record(i, record)

    prm.verify_many(rows, progress=progress, on_result=write)


def _failed(row: Dict[str, Any], message: str) -> Dict[str, Any]:
    # "value": null marks the row done (a rerun skips it, as a verification error); eval skips it
    return dict(row, value=None, first_wrong_step=None, error=message)


def _show(record: Dict[str, Any]) -> str:
    rewards = ", ".join(f"{v:.3f}" for v in record["value"])
    return f"{record['id']}: step rewards [{rewards}]  first wrong step {record['first_wrong_step']}"


JOB = Job("genprm verify", "rows", _load, _records, _failed, _show, lambda prm: prm.stats(),
          lambda args: args.max_in_flight or _D.verifier.max_solutions_in_flight)
