"""What the commands share: a resumable JSONL job (read and check the input rows, skip the ids
already in the output, append each finished row at once) and the options every model command has."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .. import _core

_PLACE = _core.GenPRMOptions()  # device and dtype defaults, defined once in C++

Rows = List[Tuple[int, Dict[str, Any]]]
Check = Callable[[Any], Optional[str]]


def eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def read_rows(path: str, check: Optional[Check] = None, fill_id: bool = False) -> Tuple[Rows, List[str]]:
    """(line number, row) for every valid row of a JSONL file, and one message per malformed
    line (naming the file, the line number and what is wrong). ``check(row)`` -> what is wrong
    or None (default: a verify row {id, problem, steps}); it may fill ``id``. With ``fill_id`` a
    row without ``id`` gets its line number as id."""
    rows: Rows = []
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


def problem_row(row: Any, id_from: str = "") -> Optional[str]:
    """What is wrong with ``row`` as a JSON object with an ``id`` (string or integer) and a string
    ``problem``, or None. ``id_from``: a key whose value serves as ``id`` when that is absent."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    if id_from and "id" not in row and id_from in row:
        row["id"] = row[id_from]
    if "id" not in row or not isinstance(row["id"], (str, int)) or isinstance(row["id"], bool):
        return "missing or non-string/integer 'id'" + (f" (or {id_from!r})" if id_from else "")
    if not isinstance(row.get("problem"), str):
        return "missing or non-string 'problem'"
    return None


def _row_problem(row: Any) -> Optional[str]:
    """read_rows' default check: a verify row {id, problem, steps}."""
    why = problem_row(row)
    if why:
        return why
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


CHECKPOINT = "checkpoint dir with config.json, *.safetensors and tokenizer files"  # what --model / --policy must be


def require_dir(name: str, flag: str, path: str, what: str) -> bool:
    """True when ``path`` is a directory; else says so (naming the command and flag) and False."""
    if os.path.isdir(path):
        return True
    eprint(f"{name}: {flag} {path!r} is not a directory ({what})")
    return False


def plan_job(name: str, input_path: str, output_path: str, *, check: Optional[Check] = None,
             fill_id: bool = False, done_key: str = "value", noun: str = "rows",
             verb: str = "process") -> Optional[Rows]:
    """The shared start of a resumable JSONL job: reads the input rows (reporting malformed lines),
    cuts a torn last line off the output, and drops the ids already done (rows with ``done_key``).
    Returns the (line number, row) pairs still to do, or None when the input cannot be read."""
    try:
        rows, problems = read_rows(input_path, check=check, fill_id=fill_id)
    except (OSError, UnicodeDecodeError) as e:
        eprint(f"{name}: cannot read --input {input_path!r}: {e}")
        return None
    for p in problems:
        eprint(f"{name}: {p}")
    _repair_torn_tail(output_path)
    done = done_ids(output_path, key=done_key)
    todo = [(n, r) for n, r in rows if str(r["id"]) not in done]
    eprint(f"{name}: {len(rows)} {noun} in {input_path}, {len(rows) - len(todo)} already in {output_path}, "
           f"{len(todo)} to {verb}, {len(problems)} malformed")
    return todo


def start_job(name: str, args: argparse.Namespace, dirs: Sequence[Tuple[str, Optional[str], str]], *,
              check_args: Optional[Callable[[argparse.Namespace], Optional[str]]] = None,
              **plan: Any) -> Optional[Rows]:
    """A command's start: each (flag, path, what) of ``dirs`` must be a directory (a path of None
    was not given), ``check_args(args)`` (what is wrong, or None) must pass, then plan_job over
    --input and --output (``plan``: its options), and --threads is applied when rows are left.
    Returns the rows still to do, or None (the reason said) for exit status 2."""
    for flag, path, what in dirs:
        if path is not None and not require_dir(name, flag, path, what):
            return None
    why = check_args(args) if check_args is not None else None
    if why:
        eprint(f"{name}: {why}")
        return None
    todo = plan_job(name, args.input, args.output, **plan)
    if todo:
        set_threads(args.threads)
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


# ---- the options the commands share (each in its place in the command's -h) ----------------------


def add_command(sub: Any, name: str, run: Callable[[argparse.Namespace], int], help: str, description: str,
                formatter_class: type = argparse.RawDescriptionHelpFormatter) -> argparse.ArgumentParser:
    """The subcommand ``name`` of the genprm parser; ``run(args)`` -> its exit status."""
    p = sub.add_parser(name, help=help, description=description, formatter_class=formatter_class)
    p.set_defaults(func=run)
    return p


def add_files(p: argparse.ArgumentParser, rows: str, output: str = "JSONL output (appended; resumed)") -> None:
    """--input (``rows``: the fields of its rows) and --output of a resumable job."""
    p.add_argument("--input", required=True, help=f"JSONL rows {rows}")
    p.add_argument("--output", required=True, help=output)


def add_device(p: argparse.ArgumentParser, device_help: str = "cpu, cuda or cuda:N") -> None:
    """--device and --dtype of the models."""
    p.add_argument("--device", default=_PLACE.device, help=device_help)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=_PLACE.dtype)


def add_run(p: argparse.ArgumentParser, show: str, models: str = "the model") -> None:
    """The last options of a model command: --threads, --show (``show``: what it prints), --no-progress."""
    p.add_argument("--threads", type=int, default=None, help=f"CPU threads of {models} (torch.set_num_threads)")
    p.add_argument("--show", action="store_true", help=show)
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
