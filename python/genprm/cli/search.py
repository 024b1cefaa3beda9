"""``genprm search``: policy test-time scaling over a dataset (beam search, Best-of-N or critic
refinement with a PRM).

    genprm search --policy POLICY_DIR (--prm PRM_DIR | --scorer none) --input problems.jsonl \\
                  --output out.jsonl [--method beam|best-of-n|refine]
                  [--beams 4 --width 2 | --n 8 | --max-turns 3] ...

Input rows: ``{"problem", "answer"?, "id"?}`` (MATH500 rows as they are: ``unique_id`` serves as
the id when ``id`` is absent; without either, ``id`` is required). Each problem is appended to
the output as one JSON line as soon as it finishes (the input row plus ``prediction``,
``correct`` when an answer is given, and the method's details); rerunning resumes: ids already
in the output are skipped and a torn last line (an interrupted write) is cut off and redone. A
problem that failed is written with ``error`` and no ``prediction`` and is retried on resume;
the exit status is then 1.
When answers are present the accuracy (over every finished row of the output) is printed.

--method beam (default): step-level beam search (genprm.search.beam_search_many), up to
--max-in-flight problems at once on the policy engine. Row fields: prediction, correct, score,
text, steps, rewards, finish_reason, search {aggregation, beams, width, requests, tokens, ...}.
--method best-of-n: per problem one request of n = --n full solutions (the same step-by-step
prompt), split into steps at the beam-search delimiters, scored by the PRM; row fields:
candidates [{text, steps, answer, value, ...}], picks {bon_last..bon_prod, majority,
weighted_last..weighted_prod: {index, answer, correct}}, prediction/correct (bon_<aggregation>),
pass. The rows fit genprm.eval.best_of_n(rows, truth_key="answer"). Scoring of a problem starts
as soon as its N samples are back, while the other problems still decode.
--method refine: critic refinement (genprm.search.refine_many): the policy writes a solution of
at most --max-tokens tokens, the PRM judges its steps (split at blank lines), the critiques of
the steps with reward < --threshold go back to the policy for a revised solution; up to
--max-turns revisions, stopping once every step is judged correct; up to --max-in-flight
problems at once. Row fields: prediction/correct (the final solution's), score, text, steps,
rewards, incorrect (0-based steps judged incorrect), finish_reason, refine {aggregation,
max_turns, threshold, revisions (turns taken after the first), all_correct, requests,
generated_tokens, turns [{answer, score, incorrect, finish_reason}]}.

--scorer none: no PRM, every step rewarded 0 (beam search keeps the first candidates, BoN picks
the first sample; majority vote is unaffected; refine revises every solution --max-turns times).
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _core
from .. import search as _search
from ..engine import Engine
from ..prm import GenPRM
from ..search import AGGREGATIONS
from ..tokenizer import Tokenizer
from .jobs import (CHECKPOINT, Job, add_command, add_device, add_files, add_run, eprint, json_lines, problem_row,
                   run_job, start_job)

# This module's docstring is `genprm search -h`'s description.

_METHODS = ("beam", "best-of-n", "refine")
# the defaults, defined once in C++
_BEAM, _BON, _REFINE = _core.BeamSearchOptions(), _core.BestOfNOptions(), _core.RefineOptions()


def add(sub: Any) -> None:
    p = add_command(sub, "search", _cli_search,
                    "beam search / Best-of-N / critic refinement with a PRM over a JSONL of problems", __doc__)
    p.add_argument("--policy", required=True, help="policy checkpoint directory (HF format, with tokenizer)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--prm", help="GenPRM checkpoint directory")
    who.add_argument("--scorer", choices=["none"], help="'none': no PRM (every step rewarded 0)")
    add_files(p, "{problem, answer?, id? | unique_id?}", output="JSONL output (appended; resumed by id)")
    p.add_argument("--method", choices=_METHODS, default="beam")
    p.add_argument("--beams", type=int, default=_BEAM.beams, help="beam: candidates per iteration (N)")
    p.add_argument("--width", type=int, default=_BEAM.width, help="beam: samples per kept beam (M); N/M beams survive")
    p.add_argument("--max-steps", dest="max_steps", type=int, default=_BEAM.max_steps, help="beam: steps per solution")
    p.add_argument("--max-step-tokens", dest="max_step_tokens", type=int, default=_BEAM.max_step_tokens, help="beam: tokens per step")
    p.add_argument("--max-total-tokens", dest="max_total_tokens", type=int, default=_BEAM.max_total_tokens,
                   help="beam: generated tokens per beam (0: no limit)")
    p.add_argument("--n", type=int, default=_BON.n, help="best-of-n: solutions per problem")
    p.add_argument("--max-tokens", dest="max_tokens", type=int, default=_BON.sampling.max_tokens,
                   help="best-of-n, refine: tokens per solution")
    p.add_argument("--max-turns", dest="max_turns", type=int, default=_REFINE.max_turns,
                   help="refine: revisions at most after the first solution (0: score the first only)")
    p.add_argument("--threshold", type=float, default=_REFINE.threshold,
                   help="refine: a step with reward below it is judged incorrect (its critique is fed back)")
    p.add_argument("--temperature", type=float, default=_BEAM.sampling.temperature)
    p.add_argument("--top-p", dest="top_p", type=float, default=_BEAM.sampling.top_p)
    p.add_argument("--seed", type=int, default=None, help="seed every request (reproducible runs)")
    p.add_argument("--aggregation", choices=AGGREGATIONS, default=_BEAM.aggregation,
                   help="step rewards -> solution score (beam pruning and the BoN prediction)")
    p.add_argument("--plain-prompt", dest="plain_prompt", action="store_true",
                   help="prompt = problem + instruction as plain text (default: the policy's chat template)")
    add_device(p, "cpu, cuda or cuda:N (policy and PRM)")
    p.add_argument("--kv-blocks", dest="kv_blocks", type=int, default=None, help="policy KV cache blocks of 16 tokens")
    p.add_argument("--prm-mode", dest="prm_mode", choices=["full", "cot", "code-no-exec", "direct"], default="cot",
                   help="GenPRM verification mode (default cot)")
    p.add_argument("--majority", type=int, default=_core.VerifierConfig().majority, help="GenPRM rationales per step (Maj@N)")
    p.add_argument("--prm-max-tokens", dest="prm_max_tokens", type=int, default=None,
                   help="GenPRM token budget per step")
    p.add_argument("--max-in-flight", dest="max_in_flight", type=int, default=_BEAM.max_problems_in_flight, help="problems searched at once")
    add_run(p, show="print each problem's prediction as it finishes", models="the models")


def _bad_option(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with the numeric options, or None."""
    for opt in ("beams", "width", "max_steps", "max_step_tokens", "n", "max_tokens", "max_in_flight", "majority"):
        if getattr(args, opt) <= 0:
            return f"--{opt.replace('_', '-')} must be positive, got {getattr(args, opt)}"
    if args.max_turns < 0:
        return f"--max-turns must be >= 0, got {args.max_turns}"
    if args.method == "beam" and args.beams % args.width:
        return f"--beams ({args.beams}) must be divisible by --width ({args.width})"
    return None


def _check_search_row(row: Any) -> Optional[str]:
    """read_rows check: a problem row; fills ``id`` from ``unique_id`` when absent."""
    why = problem_row(row, id_from="unique_id")
    if why:
        return why
    answer = row.get("answer")
    if answer is not None and (isinstance(answer, bool) or not isinstance(answer, (str, int, float))):
        return "'answer' must be a string or a number"
    return None


def _zero_scorer(problem: str, solutions: List[List[str]]) -> List[List[float]]:
    return [[0.0] * len(s) for s in solutions]


def _chat_tokenizer(name: str, args: argparse.Namespace) -> Optional[Tokenizer]:
    """The policy's tokenizer when its chat template renders (None: plain prompts, said once)."""
    if args.plain_prompt:
        return None
    try:
        tokenizer = Tokenizer.from_pretrained(args.policy)
        _search.default_prompt("1+1", tokenizer)  # has a usable chat template?
    except Exception as e:  # noqa: BLE001  plain prompts then, said once
        eprint(f"{name}: no chat template in {args.policy} ({e}); using plain prompts")
        return None
    return tokenizer


def _scorer(args: argparse.Namespace) -> Any:
    """The GenPRM of --prm, or for --scorer none one that rewards every step 0."""
    if args.prm is None:
        return _zero_scorer
    opts: Dict[str, Any] = {}
    if args.prm_max_tokens is not None:
        opts["max_tokens"] = args.prm_max_tokens
    if args.seed is not None:
        opts["seed"] = args.seed
    return GenPRM(args.prm, device=args.device, dtype=args.dtype, majority=args.majority, mode=args.prm_mode, **opts)


def _accuracy(path: str) -> Dict[str, Any]:
    """Accuracy over the finished rows of an output file (the last row per id): overall
    (``prediction``) and, for Best-of-N rows, per pick."""
    last: Dict[str, Dict[str, Any]] = {}
    for row in json_lines(path):
        if "prediction" in row and row.get("correct") is not None:
            last[str(row.get("id"))] = row
    out: Dict[str, Any] = {"graded": len(last), "correct": sum(bool(r["correct"]) for r in last.values())}
    picks: Dict[str, List[int]] = {}
    for r in last.values():
        for name, pk in (r.get("picks") or {}).items():
            picks.setdefault(name, [0, 0])
            picks[name][0] += bool(pk.get("correct"))
            picks[name][1] += 1
        if r.get("pass") is not None:
            picks.setdefault("pass", [0, 0])
            picks["pass"][0] += bool(r["pass"])
            picks["pass"][1] += 1
    out["picks"] = picks
    return out


def _record(row: Dict[str, Any], res: Dict[str, Any], args: argparse.Namespace, elapsed: float) -> Dict[str, Any]:
    rec = dict(row)
    if res["error"] is not None:
        rec["error"] = res["error"]
        return rec
    rec["prediction"] = res["prediction"]
    if res["answer"] is not None:
        rec["correct"] = bool(res["correct"])
    rec["method"] = args.method
    if args.method == "beam":
        best = res["best"]
        rec.update({"score": best["score"], "text": best["text"], "steps": best["steps"], "rewards": best["rewards"],
                    "finish_reason": best["finish_reason"]})
        rec["search"] = {"aggregation": args.aggregation, "beams": args.beams, "width": args.width,
                         "iterations": len(res["iterations"]), "requests": res["requests"],
                         "generated_tokens": res["generated_tokens"], "prompt_tokens": res["prompt_tokens"],
                         "cached_prompt_tokens": res["cached_prompt_tokens"],
                         "finished": [{"text": b["text"], "score": b["score"], "answer": b["answer"],
                                       "finish_reason": b["finish_reason"]} for b in res["finished"]]}
    elif args.method == "refine":
        fin = res["final"]
        rec.update({"score": fin["score"], "text": fin["text"], "steps": fin["steps"], "rewards": fin["rewards"],
                    "incorrect": fin["incorrect"], "finish_reason": fin["finish_reason"]})
        rec["refine"] = {"aggregation": args.aggregation, "max_turns": args.max_turns, "threshold": args.threshold,
                         "revisions": len(res["turns"]) - 1, "all_correct": res["all_correct"],
                         "requests": res["requests"], "generated_tokens": res["generated_tokens"],
                         "turns": [{"answer": t["answer"], "score": t["score"], "incorrect": t["incorrect"],
                                    "finish_reason": t["finish_reason"]} for t in res["turns"]]}
    else:
        rec.update({"candidates": res["candidates"], "picks": res["picks"], "pass": res["pass"],
                    "aggregation": args.aggregation})
    rec["elapsed"] = round(elapsed, 3)  # seconds since the run started (problems overlap)
    return rec


def _cli_search(args: argparse.Namespace) -> int:
    planned = start_job(JOB.name, args, [("--policy", args.policy, f"a policy {CHECKPOINT}"),
                                         ("--prm", args.prm, "a GenPRM checkpoint dir")],
                        check_args=_bad_option, check=_check_search_row, done_key="prediction", noun="problems",
                        verb="solve")
    if planned is None:
        return 2
    failed = run_job(JOB, args, planned) if planned else 0
    if os.path.exists(args.output):
        acc = _accuracy(args.output)
        if acc["graded"]:
            print(f"accuracy ({args.method}, {args.aggregation}): {acc['correct']}/{acc['graded']} = "
                  f"{100.0 * acc['correct'] / acc['graded']:.1f}%")
            for pick, (hits, total) in sorted(acc["picks"].items()):
                print(f"  {pick:<16} {hits}/{total} = {100.0 * hits / total:.1f}%")
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> Tuple[Engine, Optional[Tokenizer], Any]:
    """The policy engine, its chat tokenizer (None: plain prompts) and the scorer."""
    policy = Engine(args.policy, device=args.device, dtype=args.dtype, kv_blocks=args.kv_blocks,
                    seed=args.seed or 0)
    return policy, _chat_tokenizer(JOB.name, args), _scorer(args)


def _records(models: Tuple[Engine, Optional[Tokenizer], Any], args: argparse.Namespace,
             rows: List[Dict[str, Any]], on_record: Callable[[int, Dict[str, Any]], None], progress: bool) -> None:
    """Solves ``rows``; on_record(index, output line) as each finishes."""
    policy, tokenizer, scorer = models
    items = [{"problem": r["problem"], "answer": r.get("answer"), "id": r["id"]} for r in rows]
    t0 = time.time()
    common = dict(temperature=args.temperature, top_p=args.top_p, aggregation=args.aggregation,
                  seed=args.seed, max_problems_in_flight=args.max_in_flight, tokenizer=tokenizer,
                  progress=progress, on_result=lambda i, res: on_record(i, _record(rows[i], res, args,
                                                                                    time.time() - t0)))
    if args.method == "beam":
        _search.beam_search_many(policy, scorer, items, beams=args.beams, width=args.width,
                                 max_steps=args.max_steps, max_step_tokens=args.max_step_tokens,
                                 max_total_tokens=args.max_total_tokens, **common)
    elif args.method == "refine":
        _search.refine_many(policy, scorer, items, max_turns=args.max_turns, max_tokens=args.max_tokens,
                            threshold=args.threshold, **common)
    else:
        _search.best_of_n_many(policy, scorer, items, n=args.n, max_tokens=args.max_tokens, **common)


def _failed(row: Dict[str, Any], message: str) -> Dict[str, Any]:
    return dict(row, error=message)  # no prediction: retried on resume, as a failed search


def _show(record: Dict[str, Any]) -> str:
    mark = "" if record.get("correct") is None else (" (correct)" if record["correct"] else " (wrong)")
    return f"{record['id']}: {record['prediction']!r}{mark}"


JOB = Job("genprm search", "problems", _load, _records, _failed, _show, lambda models: models[0].stats(),
          lambda args: args.max_in_flight, stats_of="policy ", check=_check_search_row)
