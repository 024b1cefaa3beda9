"""What the commands share: a resumable JSONL job (read and check the input rows, skip the ids
already in the output, append each finished row at once) and the options every model command has."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .. import _core

_PLACE = _core.GenPRMOptions()  # device and dtype defaults, defined once in C++

Rows = List[Tuple[int, Dict[str, Any]]]
Check = Callable[[Any], Optional[str]]


def eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def read_rows(path: str, check: Optional[Check] = None, fill_id: bool = False) -> Tuple[Rows, List[str]]:
    """(line number, row) for every valid row of a JSONL file (or of a Parquet file, its row number
    for a line number), and one message per malformed line (naming the file, the line number and
    what is wrong). ``check(row)`` -> what is wrong or None (default: a verify row {id, problem,
    steps}); it may fill ``id``. With ``fill_id`` a row without ``id`` gets its line number as id."""
    rows: Rows = []
    problems: List[str] = []
    seen: Set[str] = set()
    for lineno, row, bad in (_parquet_records(path) if is_parquet(path) else _jsonl_records(path)):
        if bad:
            problems.append(f"{path}:{lineno}: {bad}; skipped")
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


def _jsonl_records(path: str) -> Iterator[Tuple[int, Any, Optional[str]]]:
    """(line number, parsed value, None) per non-blank line, or (line number, None, what is wrong)."""
    with open(path, "r", encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line), None
            except json.JSONDecodeError as e:
                yield lineno, None, f"invalid JSON ({e.msg} at column {e.colno})"


def is_parquet(path: str) -> bool:
    """Whether --input names Parquet (a *.parquet file or a folder of them) rather than JSONL."""
    return path.endswith(".parquet") or (os.path.isdir(path) and any(n.endswith(".parquet") for n in os.listdir(path)))


def _parquet_records(path: str) -> Iterator[Tuple[int, Any, Optional[str]]]:
    """(row number, row, None) of a Parquet input: Ray Data's reader when a Ray job is connected
    (cluster storage such as s3:// works there), pyarrow otherwise."""
    from .. import _ray_base
    for n, row in enumerate(_ray_base.parquet_rows(path), 1):
        yield n, row, None


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
    except (OSError, UnicodeDecodeError, ImportError) as e:  # ImportError: Parquet without pyarrow
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
    if why is None:
        why = _bad_ray_option(args)
    if why:
        eprint(f"{name}: {why}")
        return None
    if getattr(args, "ray", None) is not None and is_parquet(args.input):
        from .. import _ray_base
        _ray_base.connect(args.ray)  # Ray Data reads the Parquet input (cluster storage included)
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
    """The last options of a model command: --threads, --show (``show``: what it prints),
    --no-progress, then the Ray options (add_ray)."""
    p.add_argument("--threads", type=int, default=None,
                   help=f"CPU threads of {models} (torch.set_num_threads; with --ray: per worker, default 1)")
    p.add_argument("--show", action="store_true", help=show)
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bar")
    add_ray(p)


def add_ray(p: argparse.ArgumentParser) -> None:
    """--ray [ADDRESS], --workers, --gpus-per-worker, --batch-size: the same job on a Ray cluster
    (genprm.ray; Ray is imported only when --ray is given)."""
    g = p.add_argument_group("distributed (Ray; pip install 'genprm[ray]'; see docs/ray.md)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray workers: no ADDRESS starts a local Ray instance (or joins $RAY_ADDRESS); "
                        "'auto' joins the cluster `ray start` made on this node; HOST:PORT or ray://HOST:PORT "
                        "a remote one. The output is written here, by this process, as rows finish")
    g.add_argument("--workers", type=int, default=None,
                   help="workers, each loading the model(s) once (default: one per --gpus-per-worker GPUs of "
                        "the cluster, or 1 without GPUs)")
    g.add_argument("--gpus-per-worker", dest="gpus_per_worker", type=float, default=None,
                   help="GPUs each worker reserves (default: 1 when --device is cuda, else 0)")
    g.add_argument("--batch-size", dest="batch_size", type=int, default=None,
                   help="rows sent to a worker at once (default: twice the rows it has in flight)")


def _bad_ray_option(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with the Ray options (Ray itself missing included), or None; also None for
    commands without them."""
    if getattr(args, "ray", None) is None:
        for opt in ("workers", "gpus_per_worker", "batch_size"):
            if getattr(args, opt, None) is not None:
                return f"--{opt.replace('_', '-')} needs --ray"
        return None
    for opt in ("workers", "batch_size"):
        value = getattr(args, opt)
        if value is not None and value <= 0:
            return f"--{opt.replace('_', '-')} must be positive, got {value}"
    if args.gpus_per_worker is not None and args.gpus_per_worker < 0:
        return f"--gpus-per-worker must be >= 0, got {args.gpus_per_worker}"
    from .. import _ray_base
    try:
        _ray_base.require()
    except ImportError as e:
        return f"--ray: {e}"
    return None


class JobError(RuntimeError):
    """A job that cannot go on (no Ray worker could load the models): said without a traceback."""


# ---- the computation of a job, the same here and on Ray workers ---------------------------------


@dataclass(frozen=True)
class Job:
    """What a command computes, as functions that the local run and genprm.ray's workers both call.

    ``load(args)``: the models (once per process); ``records(models, args, rows, on_record,
    progress)``: computes the rows, calling ``on_record(index, record)`` with each finished row's
    output line; ``failed(row, message)``: the output line of a row that could not be computed
    (its worker crashed or raised on it every try); ``show(record)``: what --show prints for a
    row; ``stats(models)``: the engine counters summed over the workers at the end, printed after
    ``stats_of``; ``in_flight(args)``: rows one worker computes at once; ``check(row)``: what is
    wrong with an input row, or None (read_rows' check, for rows that do not come from a file)."""
    name: str
    noun: str
    load: Callable[[argparse.Namespace], Any]
    records: Callable[[Any, argparse.Namespace, List[Dict[str, Any]], Callable[[int, Dict[str, Any]], None], bool],
                      None]
    failed: Callable[[Dict[str, Any], str], Dict[str, Any]]
    show: Callable[[Dict[str, Any]], str]
    stats: Callable[[Any], Dict[str, Any]]
    in_flight: Callable[[argparse.Namespace], int]
    stats_of: str = ""
    check: Check = _row_problem


def run_job(job: Job, args: argparse.Namespace, todo: Rows) -> int:
    """Computes the rows still to do (on Ray workers with --ray, else here) and appends each
    finished row to --output at once; says what it wrote. Returns the number of rows written
    with an ``error`` (failed)."""
    rows = [r for _, r in todo]
    failed = 0
    t0 = time.time()
    with appending(args.output) as append:
        def write(record: Dict[str, Any]) -> None:
            nonlocal failed
            append(record)
            if record.get("error") is not None:
                failed += 1
                eprint(f"{job.name}: {record.get('id')}: failed: {record['error']}")
            elif args.show:
                eprint(job.show(record))

        if getattr(args, "ray", None) is not None:
            # genprm.ray's run_job, which genprm.cli.main puts there: the driver sits above the
            # commands (it parses their options), so the jobs do not import it
            runner = getattr(args, "run_distributed", None)
            if runner is None:
                raise JobError("--ray: no distributed driver (args.run_distributed; genprm.cli.main sets it)")
            stats = runner(job, args, rows, write)
        else:
            models = job.load(args)
            job.records(models, args, rows, lambda i, record: write(record), not args.no_progress)
            stats = job.stats(models)
    eprint(f"{job.name}: wrote {len(rows)} {job.noun} to {args.output} in {time.time() - t0:.1f} s "
           f"({failed} failed); {job.stats_of}{token_summary(stats)}")
    return failed
