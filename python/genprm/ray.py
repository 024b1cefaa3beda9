"""genprm on a Ray cluster: verify, label and search datasets with one engine per worker (GPU).

Two routes, both computing a row with the function the single-machine CLI uses (each command's
``genprm.cli.<command>.JOB``), so a row's output line is the same wherever it ran (requests are
seeded from the row's content):

* Ray Data: callable classes for ``Dataset.map_batches`` with actor concurrency; each actor loads
  its model(s) once. Batches are rows in the CLI's row format; the output batch has the CLI's
  result fields plus ``error`` (None, or why that row could not be computed)::

      import ray, genprm.ray
      ds = ray.data.read_json("rows.jsonl")
      out = ds.map_batches(genprm.ray.GenPRMVerifier, fn_constructor_kwargs={"model": "GenPRM-7B",
                           "device": "cuda", "dtype": "bfloat16", "majority": 4},
                           concurrency=8, num_gpus=1, batch_size=64)

  The keywords are the command's options by their CLI names (``--max-tokens`` is ``max_tokens``),
  with the CLI's defaults. ``RPELabeler`` takes ``genprm label``'s, ``SearchRunner`` ``genprm
  search``'s (policy and PRM in one worker).

* ``genprm verify|label|search ... --ray [ADDRESS] --workers N``: ``run_job`` below. The driver
  (the command) owns the output file and the resume rule (genprm.cli.jobs); workers are Ray
  actors that stream each finished row back, so a row is written as soon as it is done. A
  worker that dies costs only its unfinished rows: Ray restarts it (the model is loaded again)
  and those rows go back to the queue; a row that failed ATTEMPTS times (its worker crashed or
  raised on it each time) is written once with ``error`` and the job goes on.

Ray is imported only here, and only when used (``pip install 'genprm[ray]'``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import math
import os
import queue
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from . import _ray_base
from ._ray_base import INSTALL, connect, message as _message, parquet_rows, require

__all__ = ["GenPRMVerifier", "RPELabeler", "SearchRunner", "run_job", "compute", "options", "require",
           "connect", "parquet_rows", "INSTALL", "ATTEMPTS"]

#: Tries of a row (worker crashes or exceptions while it was in flight) before it is written
#: with its error.
ATTEMPTS = 3

_QUEUED = 2  # batches sent to a worker at once: the next one is there when the last finishes
_POLL_S = 1.0  # how often the driver looks at the workers when nothing arrives


def _job(command: str) -> Any:
    """The command's Job (genprm.cli.<command>.JOB): how a row is computed."""
    return importlib.import_module(f"genprm.cli.{command}").JOB


def _threads(args: argparse.Namespace) -> int:
    """CPU threads of a worker: --threads, else 1 (a worker per core or per GPU)."""
    return max(1, args.threads or 1)


# ---- the computation of a batch -----------------------------------------------------------------


def compute(job: Any, models: Any, args: argparse.Namespace, rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The output lines of ``rows`` in order. When the batch raises, its unfinished rows are
    computed one by one; a row that raises alone gets ``job.failed(row, message)``."""
    out: List[Optional[Dict[str, Any]]] = [None] * len(rows)

    def keep(i: int, record: Dict[str, Any]) -> None:
        out[i] = record

    try:
        job.records(models, args, rows, keep, False)
    except Exception as e:  # noqa: BLE001  a row's failure must not lose the batch
        if len(rows) == 1:
            return [out[0] or job.failed(rows[0], _message(e))]
        for i, row in enumerate(rows):
            if out[i] is None:
                out[i] = compute(job, models, args, [row])[0]
    return [r if r is not None else job.failed(rows[i], "no result") for i, r in enumerate(out)]


def _plain(v: Any) -> Any:
    """A Ray Data batch value as JSON-like Python (numpy arrays to lists, numpy scalars to numbers)."""
    import numpy as np
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()] if v.dtype != object else [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _batch_rows(batch: Any) -> List[Dict[str, Any]]:
    """The rows of a Ray Data batch (dict of columns, pandas DataFrame or pyarrow Table)."""
    if hasattr(batch, "to_pylist"):
        return batch.to_pylist()
    if hasattr(batch, "columns") and hasattr(batch, "iloc"):
        columns = {c: list(batch[c]) for c in batch.columns}
    else:
        columns = dict(batch)
    n = len(next(iter(columns.values()))) if columns else 0
    return [{k: _plain(v[i]) for k, v in columns.items()} for i in range(n)]


def _columns(records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """A batch of columns (1-D object arrays, one entry per record) over the records' keys, with
    ``error`` always present (None where the row succeeded)."""
    import numpy as np
    keys: Dict[str, None] = {}
    for r in records:
        keys.update(dict.fromkeys(r))
    keys.setdefault("error", None)
    out = {}
    for k in keys:
        col = np.empty(len(records), dtype=object)
        for i, r in enumerate(records):
            col[i] = r.get(k)
        out[k] = col
    return out


def options(command: str, opts: Dict[str, Any]) -> argparse.Namespace:
    """``genprm <command>``'s arguments from keywords named as its options (``max_tokens`` for
    --max-tokens; True for a flag), with the CLI's defaults and checks. ValueError names a bad one."""
    from .cli.parser import build_parser
    argv = [command]
    for key, value in opts.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    argv += ["--input", "-", "--output", "-", "--no-progress"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(argv)
    except SystemExit:
        lines = err.getvalue().strip().splitlines()
        raise ValueError(f"genprm.ray: bad options for {command}: {lines[-1] if lines else argv}") from None
    return args


class _Rows:
    """A Ray Data map_batches callable: the command's models, loaded once; each batch of rows
    becomes a batch of output lines (see the module docstring)."""
    COMMAND = ""

    def __init__(self, **opts: Any):
        self.args = options(self.COMMAND, opts)
        self.job = _job(self.COMMAND)
        from .cli.jobs import set_threads
        set_threads(_threads(self.args))
        self.models = self.job.load(self.args)

    def __call__(self, batch: Any) -> Dict[str, Any]:
        rows = _batch_rows(batch)
        out: List[Optional[Dict[str, Any]]] = [None] * len(rows)
        good: List[int] = []
        for i, row in enumerate(rows):
            why = self.job.check(row)  # the CLI's input rules (it may fill "id", as search does)
            if why is None and "id" not in row:
                why = "missing 'id' (Ray Data rows have no line numbers to stand in)"
            if why:
                out[i] = self.job.failed(row, why)
            else:
                good.append(i)
        if good:
            for i, record in zip(good, compute(self.job, self.models, self.args, [rows[i] for i in good])):
                out[i] = record
        return _columns(out)


class GenPRMVerifier(_Rows):
    """``genprm verify`` on batches of {id, problem, steps} rows (options: model, majority, mode, ...)."""
    COMMAND = "verify"


class RPELabeler(_Rows):
    """``genprm label`` (Monte Carlo + RPE step labels) on batches of {problem, steps | solution,
    answer, id} rows (options: model, k, epsilon, ...)."""
    COMMAND = "label"


class SearchRunner(_Rows):
    """``genprm search`` (beam / Best-of-N / refine with the policy and the PRM in one worker) on
    batches of {id, problem, answer} rows (options: policy, prm or scorer="none", method, ...)."""
    COMMAND = "search"


# ---- the CLI's distributed run ------------------------------------------------------------------


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


class GenprmWorker:
    """A Ray actor holding one command's models; ``process`` streams (index, output line) pairs
    as its rows finish."""

    def __init__(self, job: Any, args: argparse.Namespace):
        self.args = args
        self.job = job
        from .cli.jobs import set_threads
        set_threads(_threads(args))
        self.models = self.job.load(args)

    def ready(self) -> int:
        return os.getpid()

    def process(self, items: List[Tuple[int, Dict[str, Any]]]) -> Iterator[Tuple[int, Dict[str, Any]]]:
        # The job reports rows through a callback from inside its run; a thread turns that into
        # this generator, so each row leaves as soon as it is done.
        rows = [row for _, row in items]
        out: "queue.Queue[Any]" = queue.Queue()
        end = object()

        def run() -> None:
            try:
                self.job.records(self.models, self.args, rows, lambda i, rec: out.put((items[i][0], rec)), False)
                out.put(end)
            except BaseException as e:  # noqa: BLE001  handed to the driver
                out.put(_Raised(e))

        threading.Thread(target=run, daemon=True).start()
        while True:
            x = out.get()
            if x is end:
                return
            if isinstance(x, _Raised):
                raise x.error
            yield x

    def stats(self) -> Dict[str, Any]:
        return self.job.stats(self.models)


def _worker_count(args: argparse.Namespace, gpus: float, ray: Any) -> int:
    if args.workers is not None:
        return args.workers
    if gpus > 0:
        return max(1, int(ray.cluster_resources().get("GPU", 0) // gpus))
    return 1


def _add(total: Dict[str, Any], more: Dict[str, Any]) -> None:
    for k, v in more.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v


def run_job(job: Any, args: argparse.Namespace, rows: List[Dict[str, Any]],
            write: Callable[[Dict[str, Any]], None]) -> Dict[str, Any]:
    """Computes ``rows`` on Ray workers, calling ``write(output line)`` here as each row finishes
    (each row exactly once). Returns the engine counters summed over the workers.
    genprm.cli.jobs.JobError when no worker can load the models (the rows left are not written).

    Retry rule: the unfinished rows of a batch whose worker died or raised are suspects. A batch
    of suspects runs alone on its worker (nothing queued behind it), so its next failure is its
    own; from their second failure on suspects run one at a time; a row's ATTEMPTS-th failure
    writes it with its error."""
    ray = require()
    from ray.exceptions import ActorDiedError, RayActorError
    from .cli.jobs import JobError
    connect(args.ray)
    gpus = args.gpus_per_worker if args.gpus_per_worker is not None else (
        1.0 if str(args.device).startswith("cuda") else 0.0)
    count = _worker_count(args, gpus, ray)
    actor = ray.remote(GenprmWorker).options(num_cpus=_threads(args), num_gpus=gpus, max_restarts=-1,
                                             max_task_retries=0)
    workers = [actor.remote(job, args) for _ in range(count)]
    batch = args.batch_size or max(1, min(2 * job.in_flight(args), math.ceil(len(rows) / (_QUEUED * count))))
    # (rows, alone): a batch, and whether it must run with nothing beside it on its worker
    pending: Deque[Tuple[List[int], bool]] = deque(
        (list(range(i, min(i + batch, len(rows)))), False) for i in range(0, len(rows), batch))
    attempts = [0] * len(rows)
    done = [False] * len(rows)
    left = len(rows)  # rows not written yet
    inflight: Dict[Any, Tuple[int, List[int], bool]] = {}  # streaming generator -> (worker, its rows, alone)
    starting: Dict[Any, int] = {w.ready.remote(): i for i, w in enumerate(workers)}  # ready() ref -> worker
    probe_at: Dict[int, float] = {}  # restarting worker -> when to ask again whether it is ready
    alive: Dict[int, bool] = {}  # worker -> loaded and taking rows (False: gone for good)
    from tqdm.auto import tqdm
    bar = tqdm(total=len(rows), desc=job.name, unit=job.noun.rstrip("s") or "row", disable=args.no_progress,
               file=sys.stderr, dynamic_ncols=True)

    def say(text: str) -> None:
        bar.write(f"{job.name}: {text}", file=sys.stderr)

    def finish(i: int, record: Dict[str, Any]) -> None:
        nonlocal left
        if not done[i]:  # a row is written once, whatever happened to its worker
            done[i] = True
            left -= 1
            write(record)
            bar.update(1)

    def lost(unit: List[int], why: str) -> None:
        """The unfinished rows of a failed batch go back to the queue, or are written failed."""
        unfinished = [i for i in unit if not done[i]]
        again: List[int] = []
        for i in unfinished:
            attempts[i] += 1
            if attempts[i] >= ATTEMPTS:
                finish(i, job.failed(rows[i], f"failed {attempts[i]} times; last: {why}"))
            elif attempts[i] >= ATTEMPTS - 1:
                pending.appendleft(([i], True))  # one at a time: a row that kills its worker harms no other
            else:
                again.append(i)
        if again:
            pending.appendleft((again, True))
        if unfinished:
            say(f"{why}; {len(unfinished)} {job.noun} in flight retried or recorded")

    def submit() -> None:
        for w in [w for w, ok in alive.items() if ok]:
            mine = [alone for v, _, alone in inflight.values() if v == w]
            while pending and not any(mine) and len(mine) < _QUEUED:
                unit, alone = pending[0]
                if alone and mine:
                    break
                pending.popleft()
                unit = [i for i in unit if not done[i]]
                if unit:
                    gen = workers[w].process.options(num_returns="streaming").remote([(i, rows[i]) for i in unit])
                    inflight[gen] = (w, unit, alone)
                    mine.append(alone)

    try:
        while left:
            now = time.monotonic()
            for w, t in list(probe_at.items()):
                if t <= now:
                    del probe_at[w]
                    starting[workers[w].ready.remote()] = w
            submit()
            if not inflight and not starting and not probe_at:
                raise JobError(f"no worker could load the models; {left} {job.noun} not done "
                               "(rerun the command to resume)")
            ready, _ = ray.wait(list(inflight) + list(starting), num_returns=1, timeout=_POLL_S)
            for ref in ready:
                if ref in starting:
                    w = starting.pop(ref)
                    try:
                        ray.get(ref)
                        alive[w] = True
                    except ActorDiedError as e:  # its models do not load: gone for good
                        alive[w] = False
                        say(f"worker {w} could not start: {_message(e)}")
                    except RayActorError:  # still restarting
                        probe_at[w] = time.monotonic() + _POLL_S
                    continue
                w, unit, _ = inflight[ref]
                try:
                    i, record = ray.get(next(ref))
                    finish(i, record)
                except StopIteration:
                    del inflight[ref]
                    lost(unit, "the worker returned no result")  # a no-op when all are done
                except RayActorError as e:
                    del inflight[ref]
                    if alive.get(w):  # Ray restarts it: taken again once it has loaded the models
                        alive[w] = False
                        probe_at[w] = time.monotonic()
                    lost(unit, f"worker {w} lost ({type(e).__name__})")
                except Exception as e:  # noqa: BLE001  the batch raised: its rows are retried
                    del inflight[ref]
                    lost(unit, f"worker {w} raised {_message(getattr(e, 'cause', None) or e)}")
        stats: Dict[str, Any] = {}
        for w, ok in alive.items():
            if ok:
                with contextlib.suppress(Exception):
                    _add(stats, ray.get(workers[w].stats.remote(), timeout=60))
        return stats
    finally:
        bar.close()
        for w in workers:
            with contextlib.suppress(Exception):
                ray.kill(w)
        _ray_base.disconnect()
