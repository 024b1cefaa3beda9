"""Labels every step of every solution in a JSONL file with Monte Carlo estimates and RPE labels.

Input rows: {"problem", "steps": [...] (or "solution": one string, split on "\\nStep "), "answer"}
and optionally "id" (default: the row's line number), "prompt" (a pre-rendered chat prompt) and
"mc_first" (the problem's pass rate measured elsewhere, e.g. over its sampled solutions: then no
MC(s_1) rollouts are drawn).
The model is the policy (e.g. Qwen2.5-Math-7B-Instruct). Each finished row is appended to the
output at once: the input row plus "id", "labels", "hard_labels", "mc", "mc_first", "k" and
"rpe" (the whole result: per-step MC, rollouts used (k), correct counts, P_t, the three label
variants, token counts; P_t = null where it is infinite). --adaptive draws the rollouts in rounds
and stops each estimate as soon as its label is decided (per-step "k", "rounds", "early"). Rerunning resumes: ids already in the output are
skipped. A malformed row is reported with its line number and skipped."""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable, Dict, List, Optional

from .. import _core
from ..engine import Engine
from ..rpe import _row, label_many
from .jobs import CHECKPOINT, Job, add_command, add_device, add_files, add_run, run_job, start_job

# This module's docstring is `genprm label -h`'s description.

_L = _core.LabelerConfig()  # the defaults, defined once in C++


def add(sub: Any) -> None:
    p = add_command(sub, "label", _cli_label, "MC + RPE labels for every step of every solution in a JSONL file",
                    __doc__)
    p.add_argument("--model", required=True, help="policy checkpoint directory (HF format, with tokenizer)")
    add_files(p, "{problem, steps | solution, answer, [id]}")
    p.add_argument("--epsilon", type=float, default=_L.labels.epsilon, help="RPE threshold on P_t (default %(default)s)")
    p.add_argument("--k", type=int, default=None, help="fixed rollouts per estimate (default: dynamic 128/64/32)")
    p.add_argument("--first-k", dest="first_k", type=int, default=None,
                   help="first batch of the MC(s_1) estimate (default 32)")
    p.add_argument("--temperature", type=float, default=_L.rollout.temperature)
    p.add_argument("--top-p", dest="top_p", type=float, default=_L.rollout.top_p)
    p.add_argument("--max-tokens", dest="max_tokens", type=int, default=_L.rollout.max_tokens, help="new tokens per rollout")
    p.add_argument("--seed", type=int, default=None, help="seed every request (reproducible runs)")
    p.add_argument("--system-prompt", dest="system_prompt", default=None,
                   help="system turn (default: the chat template's own default)")
    p.add_argument("--keep-rollouts", dest="keep_rollouts", action="store_true", help="store every rollout's text")
    p.add_argument("--adaptive", action="store_true",
                   help="adaptive Monte Carlo: rollouts in rounds, each estimate stops once its label (MC(s_1): its K) "
                        "is decided by an exact binomial test; each decided estimate wrong with probability <= delta")
    p.add_argument("--adaptive-round", dest="adaptive_round", type=int, default=_L.adaptive.round,
                   help="rollouts per round with --adaptive (default %(default)s)")
    p.add_argument("--adaptive-delta", dest="adaptive_delta", type=float, default=_L.adaptive.delta,
                   help="error bound of each decided estimate with --adaptive (default %(default)s)")
    p.add_argument("--share-first", dest="share_first", action="store_true",
                   help="estimate MC(s_1) once per problem: rows with the same problem share the first one's "
                        "estimate (its rollouts counted there; the others name it in rpe.first_shared)")
    add_device(p)
    p.add_argument("--kv-blocks", dest="kv_blocks", type=int, default=None, help="KV cache blocks of 16 tokens")
    p.add_argument("--max-in-flight", dest="max_in_flight", type=int, default=_L.max_problems_in_flight, help="problems labelled at once")
    add_run(p, show="print each row's labels as it finishes")


def _label_row_problem(row: Any) -> Optional[str]:
    """read_rows check for a label row (problem, steps, answer): genprm.rpe's own row rules."""
    try:
        _row(row, 0, None, None)
    except ValueError as e:
        return str(e).split(": ", 1)[-1]
    return None


def _json_safe(result: Dict[str, Any]) -> Dict[str, Any]:
    """The result with an infinite P_t written as null (JSON has no infinity)."""
    out = dict(result)
    out["steps"] = [dict(s, progress=None) if s.get("progress") == math.inf else s for s in result.get("steps", [])]
    return out


def _cli_label(args: argparse.Namespace) -> int:
    todo = start_job(JOB.name, args, [("--model", args.model, f"a policy {CHECKPOINT}")],
                     check=_label_row_problem, fill_id=True, done_key="labels", verb="label")
    if todo is None:
        return 2
    if not todo:
        return 0
    return 1 if run_job(JOB, args, todo) else 0


def _load(args: argparse.Namespace) -> Engine:
    return Engine(args.model, device=args.device, dtype=args.dtype, kv_blocks=args.kv_blocks,
                  seed=args.seed or 0)


def _records(engine: Engine, args: argparse.Namespace, rows: List[Dict[str, Any]],
             on_record: Callable[[int, Dict[str, Any]], None], progress: bool) -> None:
    """Labels ``rows``; on_record(index, output line) as each finishes."""
    def write(i: int, res: Dict[str, Any]) -> None:
        row = rows[i]
        record = dict(row)
        record.update({"id": row["id"], "labels": res["labels"], "hard_labels": res["hard_labels"],
                       "mc": res["mc"], "mc_first": res["mc_first"], "k": res["k"], "rpe": _json_safe(res)})
        on_record(i, record)

    label_many(engine, rows, epsilon=args.epsilon, k=args.k, first_k=args.first_k,
               temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed,
               system_prompt=args.system_prompt, keep_rollouts=args.keep_rollouts,
               adaptive={"round": args.adaptive_round, "delta": args.adaptive_delta} if args.adaptive else False,
               share_first=args.share_first, max_problems_in_flight=args.max_in_flight, progress=progress,
               on_result=write)


def _failed(row: Dict[str, Any], message: str) -> Dict[str, Any]:
    # "labels": null marks the row done (a rerun skips it, as a labelling error)
    return dict(row, labels=None, error=message)


def _show(record: Dict[str, Any]) -> str:
    rpe = record["rpe"]
    error, used = rpe["error"], rpe["k_first"] + sum(s["k"] for s in rpe["steps"])
    return (f"{record['id']}: MC(s_1) {record['mc_first']:.3f}, K {record['k']}, rollouts used {used}, mc "
            f"[{', '.join(f'{m:.3f}' for m in record['mc'])}], labels {record['labels']}"
            + (f", error: {error}" if error else ""))


JOB = Job("genprm label", "rows", _load, _records, _failed, _show, lambda engine: engine.stats(),
          lambda args: args.max_in_flight, check=_label_row_problem)
