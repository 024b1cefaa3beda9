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
import contextlib
import json
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

__all__ = ["main", "read_rows", "done_ids"]


def _eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def read_rows(path: str, check: Optional[Callable[[Any], Optional[str]]] = None, fill_id: bool = False
              ) -> Tuple[List[Tuple[int, Dict[str, Any]]], List[str]]:
    """(line number, row) for every valid row of a JSONL file, and one message per malformed
    line (naming the file, the line number and what is wrong). ``check(row)`` -> what is wrong
    or None (default: a verify row {id, problem, steps}); it may fill ``id``. With ``fill_id`` a
    row without ``id`` gets its line number as id."""
    rows: List[Tuple[int, Dict[str, Any]]] = []
    problems: List[str] = []
    seen: Set[str] = set()
    with open(path, "r", encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno}); skipped")
                continue
            if fill_id and isinstance(row, dict) and "id" not in row:
                row["id"] = str(lineno)
            why = (check or _row_problem)(row)
            if why:
                problems.append(f"{path}:{lineno}: {why}; skipped")
                continue
            rid = str(row["id"])
            if rid in seen:
                problems.append(f"{path}:{lineno}: duplicate id {rid!r}; skipped")
                continue
            seen.add(rid)
            rows.append((lineno, row))
    return rows, problems


def _row_problem(row: Any) -> Optional[str]:
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    if "id" not in row or not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool):
        return "missing or non-string/integer 'id'"
    if not isinstance(row.get("problem"), str):
        return "missing or non-string 'problem'"
    steps = row.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        return "'steps' must be a non-empty list of strings"
    return None


def json_lines(path: str) -> Iterator[Dict[str, Any]]:
    """The JSON objects of a JSONL file, in order; lines that do not parse as an object (a torn
    last line from an interrupted run, say) are skipped. Nothing when the file does not exist."""
    if not os.path.exists(path):
        return
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row


def done_ids(path: str, key: str = "value") -> Set[str]:
    """Ids of the rows already in an output file, i.e. rows with ``key`` (a torn last line from an
    interrupted run is ignored, so that row is redone)."""
    return {str(row["id"]) for row in json_lines(path) if "id" in row and key in row}


def _repair_torn_tail(path: str) -> None:
    """An interrupted append can leave a last line without its newline: cut it off."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)


def require_dir(name: str, flag: str, path: str, what: str) -> bool:
    """True when ``path`` is a directory; else says so (naming the command and flag) and False."""
    if os.path.isdir(path):
        return True
    _eprint(f"{name}: {flag} {path!r} is not a directory ({what})")
    return False


def plan_job(name: str, input_path: str, output_path: str, *, check: Optional[Callable[[Any], Optional[str]]] = None,
             fill_id: bool = False, done_key: str = "value", noun: str = "rows",
             verb: str = "process") -> Optional[List[Tuple[int, Dict[str, Any]]]]:
    """The shared start of a resumable JSONL job: reads the input rows (reporting malformed lines),
    cuts a torn last line off the output, and drops the ids already done (rows with ``done_key``).
    Returns the (line number, row) pairs still to do, or None when the input cannot be read."""
    try:
        rows, problems = read_rows(input_path, check=check, fill_id=fill_id)
    except (OSError, UnicodeDecodeError) as e:
        _eprint(f"{name}: cannot read --input {input_path!r}: {e}")
        return None
    for p in problems:
        _eprint(f"{name}: {p}")
    _repair_torn_tail(output_path)
    done = done_ids(output_path, key=done_key)
    todo = [(n, r) for n, r in rows if str(r["id"]) not in done]
    _eprint(f"{name}: {len(rows)} {noun} in {input_path}, {len(rows) - len(todo)} already in {output_path}, "
            f"{len(todo)} to {verb}, {len(problems)} malformed")
    return todo


def set_threads(threads: Optional[int]) -> None:
    """torch.set_num_threads for --threads (None: torch's default)."""
    if threads is not None:
        import torch
        torch.set_num_threads(max(1, threads))


@contextlib.contextmanager
def appending(path: str) -> Iterator[Callable[[Dict[str, Any]], None]]:
    """Opens ``path`` for appending (creating its folder) and yields write(record): one JSON line,
    flushed at once so that an interruption loses nothing finished."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        def write(record: Dict[str, Any]) -> None:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
        yield write


def token_summary(stats: Dict[str, Any]) -> str:
    """The engine counters a job prints at its end."""
    return (f"prompt tokens submitted {stats['prompt_tokens_submitted']}, computed "
            f"{stats['prompt_tokens_computed']}, from cache {stats['prompt_tokens_cached']}; generated "
            f"{stats['generated_tokens']}")


def _verify(args: argparse.Namespace) -> int:
    from .prm import GenPRM

    name = "genprm verify"
    if not require_dir(name, "--model", args.model, "a GenPRM checkpoint dir with config.json, *.safetensors and "
                       "tokenizer files"):
        return 2
    todo = plan_job(name, args.input, args.output, verb="verify")
    if todo is None:
        return 2
    if not todo:
        return 0
    set_threads(args.threads)
    options: Dict[str, Any] = {"threshold": args.threshold}
    for opt in ("max_tokens", "analyze_max_tokens", "round_limit", "seed"):
        value = getattr(args, opt)
        if value is not None:
            options[opt] = value
    engine: Dict[str, Any] = {}
    if args.kv_blocks is not None:
        engine["kv_blocks"] = args.kv_blocks
    if args.max_in_flight is not None:
        options["max_solutions_in_flight"] = args.max_in_flight
    prm = GenPRM(args.model, device=args.device, dtype=args.dtype, majority=args.majority, mode=args.mode,
                 engine=engine, sandbox={"timeout_s": args.code_timeout}, **options)
    with appending(args.output) as append:
        def write(i: int, result) -> None:
            _, row = todo[i]
            d = result.to_dict()
            record = dict(row)
            record.update({"value": d["value"], "first_wrong_step": d["first_wrong_step"],
                           "threshold": d["threshold"], "time": d["time"],
                           "verification": {"mode": prm.mode, "majority": prm.majority, "steps": d["steps"],
                                            "generated_tokens": d["generated_tokens"],
                                            "prompt_tokens": d["prompt_tokens"],
                                            "cached_prompt_tokens": d["cached_prompt_tokens"],
                                            "error": d["error"]}})
            append(record)
            if args.show:
                rewards = ", ".join(f"{v:.3f}" for v in d["value"])
                _eprint(f"{row['id']}: step rewards [{rewards}]  first wrong step {d['first_wrong_step']}")

        prm.verify_many([r for _, r in todo], progress=not args.no_progress, on_result=write)
    _eprint(f"{name}: wrote {len(todo)} rows to {args.output}; {token_summary(prm.stats())}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from . import eval as _evaluation

    rows, problems = read_rows(args.input)
    scored = [row for _, row in rows if "label" in row and "value" in row]
    for lineno, row in rows:
        if "label" not in row or "value" not in row:
            problems.append(f"{args.input}:{lineno}: row {row['id']!r} has no 'label' or 'value'; skipped")
    for msg in problems:
        _eprint(f"genprm eval: {msg}")
    if not scored:
        _eprint(f"genprm eval: {args.input}: no rows with both 'label' and 'value' (run genprm verify on ProcessBench rows)")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genprm", description="Generative process reward models (GenPRM).")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="reward every step of every solution in a JSONL file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--model", required=True, help="GenPRM checkpoint directory (HF format)")
    v.add_argument("--input", required=True, help="JSONL rows {id, problem, steps}")
    v.add_argument("--output", required=True, help="JSONL output (appended; resumed)")
    v.add_argument("--majority", type=int, default=1, help="rationales per step, rewards averaged (Maj@N)")
    v.add_argument("--mode", choices=["full", "cot", "code-no-exec", "direct"], default="full")
    v.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    v.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    v.add_argument("--threshold", type=float, default=0.5, help="a step is wrong when its reward is below this")
    v.add_argument("--max-tokens", dest="max_tokens", type=int, default=None,
                   help="token budget per step (reference: 2048)")
    v.add_argument("--analyze-max-tokens", dest="analyze_max_tokens", type=int, default=None,
                   help="budget of the analyze stage (default: --max-tokens)")
    v.add_argument("--round-limit", dest="round_limit", type=int, default=None, help="code rounds (reference: 3)")
    v.add_argument("--seed", type=int, default=None, help="seed every request (reproducible runs)")
    v.add_argument("--kv-blocks", dest="kv_blocks", type=int, default=None, help="KV cache blocks of 16 tokens")
    v.add_argument("--max-in-flight", dest="max_in_flight", type=int, default=None,
                   help="solutions verified at once (default 32)")
    v.add_argument("--code-timeout", dest="code_timeout", type=float, default=5.0,
                   help="seconds per code block (reference: 5)")
    v.add_argument("--threads", type=int, default=None, help="CPU threads of the model (torch.set_num_threads)")
    v.add_argument("--show", action="store_true", help="print each row's step rewards as it finishes")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=_verify)
    e = sub.add_parser("eval", help="ProcessBench acc_error / acc_correct / F1 of a verify output",
                       description="Scores the rows of a `genprm verify` output that carry a ProcessBench "
                                   "'label': prediction = first step with reward < threshold.")
    e.add_argument("--input", required=True, help="JSONL written by genprm verify")
    e.add_argument("--threshold", type=float, default=0.5, help="a step is wrong when its reward is below this")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.set_defaults(func=_eval)
    from .rpe import _add_cli as _add_label_cli  # genprm label: MC + RPE step labels (options in rpe.py)
    _add_label_cli(sub)
    from .search_cli import _add_cli as _add_search_cli  # genprm search: beam search / BoN (search_cli.py)
    _add_search_cli(sub)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # bad checkpoint, options: the message names the file and the rule
        _eprint(f"genprm {args.command}: {e}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
