"""Policy test-time scaling with a process reward model (C++: include/genprm/search/).

    >>> from genprm import search
    >>> search.aggregate([0.9, 0.4, 0.8], how="min")             # 0.4  (last / min / avg / prod)
    >>> search.best_of_n([[0.9, 0.2], [0.6, 0.7]], how="min")     # {"index": 1, "score": 0.6, ...}
    >>> search.majority_vote(["1/2", "\\\\frac{1}{2}", "3"])       # answers the grader calls equal pool
    >>> search.weighted_vote(["1/2", "3", "0.5"], [0.2, 0.9, 0.3])
    >>> policy = genprm.Engine("Qwen2.5-Math-7B-Instruct", device="cuda", dtype="bfloat16")
    >>> prm = genprm.GenPRM("GenPRM-7B", device="cuda", dtype="bfloat16", mode="cot")
    >>> r = search.beam_search(policy, prm, problem, beams=8, width=2, seed=0)
    >>> r["best"]["text"], r["best"]["answer"], r["best"]["score"]
    >>> search.refine(policy, prm, problem, max_turns=3)["final"]["answer"]
    >>> rs = search.beam_search_many(policy, prm, [{"problem": p, "answer": a, "id": i}, ...], seed=0)
    >>> sum(r["correct"] for r in rs) / len(rs)                    # many problems at once, graded
    >>> rs = search.refine_many(policy, prm, rows, max_turns=3, seed=0)  # refinement, many at once

Scores of a solution from its step rewards: ``last``, ``min``, ``avg``, ``prod``; an empty list
scores 0.0. Ties: the lower candidate index (for votes: the answer group seen first) wins; NaN
scores rank lowest; a missing answer (None or blank) never wins a vote while any answer exists.

A scorer is a ``genprm.GenPRM`` or any callable ``scorer(problem, solutions) -> list`` where
``solutions`` is a list of step lists and each entry of the result is that solution's list of
step rewards (or a dict ``{"rewards": [...], "critiques": [...]}``, or a VerificationResult).

Result dicts are ``genprm.display.SearchResult`` (a dict subclass) and render as HTML in Jupyter.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from . import _core
from .display import SearchResult
from .tokenizer import problem_prompt

__all__ = ["AGGREGATIONS", "aggregate", "best_of_n", "majority_vote", "weighted_vote", "beam_search",
           "beam_search_many", "best_of_n_many", "split_solution", "refine", "refine_many", "default_prompt"]

AGGREGATIONS = ("last", "min", "avg", "prod")

# Every default below is read from the C++ options (include/genprm/search/).
_BEAM = _core.BeamSearchOptions()
_REFINE = _core.RefineOptions()
_BON = _core.BestOfNOptions()

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def default_prompt(problem: str, tokenizer: Any = None, system: str = DEFAULT_INSTRUCTION) -> str:
    """The policy prompt for ``problem``: with a ``genprm.Tokenizer`` whose chat template is known,
    the chat rendering of [system, user=problem] with the generation prompt (Qwen2.5-Math style);
    without one, ``problem + "\\n\\n" + system + "\\n\\n"``."""
    if not isinstance(problem, str):
        raise ValueError(f"problem must be a string, got {type(problem).__name__}")
    if tokenizer is not None:
        return problem_prompt(tokenizer, problem, system)
    return f"{problem}\n\n{system}\n\n"


def _check_how(how: str, name: str = "how") -> str:
    if how not in AGGREGATIONS:
        raise ValueError(f"{name} must be one of {AGGREGATIONS}, got {how!r}")
    return how


def _rewards_of(c: Any, index: int, rewards_key: str) -> List[float]:
    if isinstance(c, Mapping):
        for key in (rewards_key, "rewards", "value"):
            if key in c:
                return [float(x) for x in c[key]]
        raise ValueError(f"candidates[{index}]: no '{rewards_key}' (step rewards) in the dict")
    if hasattr(c, "value") and not isinstance(c, (list, tuple, np.ndarray)):
        return [float(x) for x in c.value]
    if isinstance(c, (str, bytes)) or not isinstance(c, (Sequence, np.ndarray)):
        raise ValueError(f"candidates[{index}]: expected a list of step rewards, got {type(c).__name__}")
    return [float(x) for x in c]


def aggregate(rewards: Sequence[float], how: str = "min") -> float:
    """The score of one solution from its step rewards: ``last``, ``min``, ``avg`` or ``prod``
    (0.0 for an empty list)."""
    _check_how(how)
    return _core.search_aggregate([float(r) for r in rewards], how)


def best_of_n(candidates: Sequence[Any], *, how: str = "min", rewards_key: str = "value") -> Dict[str, Any]:
    """Best-of-N by PRM score. ``candidates``: per candidate its step rewards (a list, a dict with
    ``rewards_key``/"rewards", or a VerificationResult). Returns ``{"index", "score", "scores"}``
    (scores: numpy array); ties go to the lower index."""
    _check_how(how)
    if len(candidates) == 0:
        raise ValueError("candidates is empty (need at least one)")
    scores = [_core.search_aggregate(_rewards_of(c, i, rewards_key), how) for i, c in enumerate(candidates)]
    i = _core.search_best_of_n(scores)
    return {"index": i, "score": scores[i], "scores": np.asarray(scores, dtype=np.float64)}


def _answers(answers: Sequence[Optional[str]]) -> List[Optional[str]]:
    if isinstance(answers, str):
        raise ValueError("answers must be a list of answers (str or None), got one string")
    out = []
    for i, a in enumerate(answers):
        if a is not None and not isinstance(a, str):
            raise ValueError(f"answers[{i}] must be a string or None, got {type(a).__name__}")
        out.append(a)
    if not out:
        raise ValueError("answers is empty (need at least one)")
    return out


def majority_vote(answers: Sequence[Optional[str]]) -> Dict[str, Any]:
    """Majority vote over final answers; answers the grader (genprm.math) calls equivalent form one
    group ("1/2", "\\\\frac{1}{2}", "0.5"). Returns ``{"answer", "index"`` (of the winning group's
    first member; None when no answer exists), ``"weight"`` (votes), ``"groups"`` (candidate
    indices per group), ``"group_of"``, ``"weights"}``."""
    return _core.search_majority_vote(_answers(answers))


def weighted_vote(answers: Sequence[Optional[str]], scores: Sequence[float]) -> Dict[str, Any]:
    """PRM-weighted majority vote: the answer group with the largest sum of ``scores`` wins (same
    dict as ``majority_vote``; ``weight`` is the summed score)."""
    answers = _answers(answers)
    scores = [float(s) for s in scores]
    if len(scores) != len(answers):
        raise ValueError(f"scores has {len(scores)} entries for {len(answers)} answers")
    return _core.search_weighted_vote(answers, scores)


def _policy_core(policy: Any):
    core = getattr(policy, "_core", policy)
    if not isinstance(core, _core.Engine):
        raise ValueError(f"policy must be a genprm.Engine, got {type(policy).__name__}")
    return core


def _step_scores(fn: Callable) -> Callable:
    """A user's scorer as the C++ side calls it: per solution a StepScores (rewards as a list, a
    dict with "rewards" / "value" and optional "critiques", or a VerificationResult)."""
    def score(problem: str, solutions: List[List[str]]) -> List[Any]:
        got = fn(problem, solutions)
        if isinstance(got, (str, bytes, Mapping)) or not isinstance(got, (Sequence, np.ndarray)):
            raise ValueError(f"scorer: must return a list (one entry per solution), got {type(got).__name__}")
        if len(got) != len(solutions):
            raise ValueError(f"scorer: returned {len(got)} entries for {len(solutions)} solutions")
        out = []
        for i, (item, steps) in enumerate(zip(got, solutions)):
            try:
                rewards = _rewards_of(item, i, "rewards")
            except (TypeError, ValueError):
                raise ValueError(f"scorer: entry {i} is not a list of rewards (floats)") from None
            if len(rewards) != len(steps):
                raise ValueError(f"scorer: entry {i} has {len(rewards)} rewards for {len(steps)} steps")
            critiques = item.get("critiques") if isinstance(item, Mapping) else None
            out.append(_core.StepScores(rewards=rewards, critiques=list(critiques or ())))
        return out
    return score


def _scorer_core(scorer: Any):
    core = getattr(scorer, "_core", None)
    if isinstance(core, _core.GenPRMCore):
        return core
    if isinstance(scorer, _core.GenPRMCore):
        return scorer
    if callable(scorer):
        return _step_scores(scorer)
    raise ValueError(f"scorer must be a genprm.GenPRM or a callable (problem, solutions) -> rewards, "
                     f"got {type(scorer).__name__}")


def _sampling(sampling: Optional[Any], temperature: float, top_p: float, top_k: int, **more: Any):
    if sampling is None:
        return _core.SamplingParams(temperature=float(temperature), top_p=float(top_p), top_k=int(top_k), **more)
    if not isinstance(sampling, _core.SamplingParams):
        raise ValueError(f"sampling must be a genprm.SamplingParams, got {type(sampling).__name__}")
    return sampling


def _delimiters(step_delimiters: Sequence[str], name: str = "step_delimiters") -> List[str]:
    if isinstance(step_delimiters, str):
        raise ValueError(f"{name} must be a list of strings, got one string")
    return list(step_delimiters)


def _beam_options(*, beams, width, max_steps, max_step_tokens, max_total_tokens, sampling, step_delimiters,
                  step_separator, aggregation, seed, max_problems_in_flight=_BEAM.max_problems_in_flight):
    _check_how(aggregation, "aggregation")
    return _core.BeamSearchOptions(beams=beams, width=width, max_steps=max_steps, max_step_tokens=max_step_tokens,
                                   max_total_tokens=max_total_tokens, sampling=sampling,
                                   step_delimiters=_delimiters(step_delimiters), step_separator=step_separator,
                                   aggregation=aggregation, seed=seed, max_problems_in_flight=max_problems_in_flight)


def _beam_result(res: Any, sep: str) -> Dict[str, Any]:
    """A BeamSearchResult as the documented dict (each beam with its ``text``)."""
    d = res.to_dict()
    for beam in [d["best"], *d["finished"], *(c for it in d["iterations"] for c in it["candidates"])]:
        beam["text"] = sep.join(beam["steps"])
    return SearchResult(d)


def _refine_options(*, max_turns, max_tokens, threshold, sampling, aggregation, refine_template, seed,
                    max_problems_in_flight=_REFINE.max_problems_in_flight):
    _check_how(aggregation, "aggregation")
    extra = {} if refine_template is None else {"refine_template": refine_template}
    return _core.RefineOptions(max_turns=max_turns, max_tokens=max_tokens, threshold=float(threshold),
                               sampling=sampling, aggregation=aggregation, seed=seed,
                               max_problems_in_flight=max_problems_in_flight, **extra)


def _refine_result(res: Any) -> Dict[str, Any]:
    d = res.to_dict()
    d["final"] = d["turns"][-1] if d["turns"] else None
    return SearchResult(d)


def beam_search(policy: Any, scorer: Any, problem: str, *, beams: int = _BEAM.beams, width: int = _BEAM.width,
                max_steps: int = _BEAM.max_steps, max_step_tokens: int = _BEAM.max_step_tokens,
                max_total_tokens: int = _BEAM.max_total_tokens, temperature: float = _BEAM.sampling.temperature,
                top_p: float = _BEAM.sampling.top_p, top_k: int = _BEAM.sampling.top_k,
                sampling: Optional[Any] = None, step_delimiters: Sequence[str] = tuple(_BEAM.step_delimiters),
                step_separator: str = _BEAM.step_separator, aggregation: str = _BEAM.aggregation,
                seed: Optional[int] = None, prompt: Optional[str] = None) -> Dict[str, Any]:
    """Step-level beam search: ``beams`` (N) candidates per iteration, ``width`` (M) samples per
    kept beam, the top N/M by PRM score survive (N divisible by M). Iteration 1 samples N first
    steps with one request; then each kept beam is extended with ONE request of n = M (its prompt
    prefilled once and forked; the radix cache computes only the new step). A step ends at a
    delimiter (``step_delimiters``). Beams that end (EOS, a \\\\boxed answer, ``max_steps``, or
    ``max_total_tokens`` generated) are set aside; the best finished beam by ``aggregation``
    ("last", "min", "avg", "prod") wins, ties to the one finished first.

    ``policy``: a genprm.Engine; ``scorer``: a genprm.GenPRM or a callable (see the module doc).
    ``prompt``: the rendered policy prompt (default: ``default_prompt(problem)``). ``sampling``:
    a genprm.SamplingParams (else ``temperature``/``top_p``/``top_k``); max_tokens and stop are
    set per step. ``seed``: same seed, same search.

    Returns a dict: ``best`` (steps, text, rewards, critiques, score, tokens, finish_reason,
    answer, iteration, order, parent), ``finished`` (beams in the order set aside),
    ``iterations`` (per iteration: candidates and their status kept / pruned / finished),
    ``requests``, ``generated_tokens``, ``prompt_tokens``, ``cached_prompt_tokens``.
    """
    if not isinstance(problem, str):
        raise ValueError(f"problem must be a string, got {type(problem).__name__}")
    opts = _beam_options(beams=beams, width=width, max_steps=max_steps, max_step_tokens=max_step_tokens,
                         max_total_tokens=max_total_tokens, sampling=_sampling(sampling, temperature, top_p, top_k),
                         step_delimiters=step_delimiters, step_separator=step_separator, aggregation=aggregation,
                         seed=seed)
    res = _core.search_beam_search(_policy_core(policy), _scorer_core(scorer), problem,
                                   default_prompt(problem) if prompt is None else prompt, opts)
    return _beam_result(res, step_separator)


def refine(policy: Any, scorer: Any, problem: str, *, max_turns: int = _REFINE.max_turns,
           max_tokens: int = _REFINE.max_tokens, threshold: float = _REFINE.threshold,
           temperature: float = _REFINE.sampling.temperature, top_p: float = _REFINE.sampling.top_p,
           top_k: int = _REFINE.sampling.top_k, sampling: Optional[Any] = None,
           aggregation: str = _REFINE.aggregation, refine_template: Optional[str] = None,
           render: Optional[Callable[[str], str]] = None, initial: Optional[str] = None,
           seed: Optional[int] = None, prompt: Optional[str] = None) -> Dict[str, Any]:
    """Critic refinement: the policy writes a solution (or ``initial`` is used), the scorer judges
    its steps (split at blank lines), and the critiques (GenPRM: the ``<analyze>`` text) of the
    steps with reward < ``threshold`` go back to the policy, which writes a revised solution; up
    to ``max_turns`` revisions, stopping once every step is judged correct.

    ``refine_template``: the revision request with ``{problem}``, ``{solution}``, ``{feedback}``
    (default: see include/genprm/search/refine.hpp); ``render(user_message) -> prompt`` applies
    the policy's chat template (identity by default). Returns ``{"turns": [...], "final",
    "all_correct", "requests", "generated_tokens"}``; each turn has prompt, text, steps, rewards,
    critiques, incorrect (0-based), feedback, score (``aggregation``), answer, finish_reason.
    """
    if not isinstance(problem, str):
        raise ValueError(f"problem must be a string, got {type(problem).__name__}")
    if render is not None and not callable(render):
        raise ValueError("render must be callable (str) -> str")
    opts = _refine_options(max_turns=max_turns, max_tokens=max_tokens, threshold=threshold,
                           sampling=_sampling(sampling, temperature, top_p, top_k), aggregation=aggregation,
                           refine_template=refine_template, seed=seed)
    res = _core.search_refine(_policy_core(policy), _scorer_core(scorer), problem,
                              default_prompt(problem) if prompt is None else prompt, opts, render, initial)
    return _refine_result(res)


# --- many problems at once ----------------------------------------------------------------------

def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _problem_items(problems: Any, tokenizer: Any) -> List[Dict[str, Any]]:
    """Normalises ``problems`` (strings, or dicts with ``problem`` and optional ``answer``, ``id``,
    ``prompt``) into dicts with all four keys; ValueError names the offending entry."""
    if isinstance(problems, (str, bytes, Mapping)):
        raise ValueError("problems must be a list of problems (strings or dicts with 'problem'), "
                         f"got one {type(problems).__name__}")
    try:
        seq = list(problems)
    except TypeError:
        raise ValueError(f"problems must be a list of problems, got {type(problems).__name__}") from None
    items = []
    for i, p in enumerate(seq):
        if isinstance(p, str):
            p = {"problem": p}
        elif not isinstance(p, Mapping):
            raise ValueError(f"problems[{i}] must be a string or a dict with 'problem', got {type(p).__name__}")
        if not isinstance(p.get("problem"), str):
            raise ValueError(f"problems[{i}]: missing or non-string 'problem'")
        answer = p.get("answer")
        if answer is not None:
            if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
                raise ValueError(f"problems[{i}]: 'answer' must be a string or a number, got {type(answer).__name__}")
            answer = str(answer)
        prompt = p.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise ValueError(f"problems[{i}]: 'prompt' must be a string, got {type(prompt).__name__}")
        items.append({"id": p.get("id", i), "problem": p["problem"], "answer": answer,
                      "prompt": default_prompt(p["problem"], tokenizer) if prompt is None else prompt})
    return items


def _grade(prediction: Optional[str], answer: Optional[str]) -> Optional[bool]:
    if answer is None:
        return None
    from . import math as _math
    return prediction is not None and bool(_math.is_equiv(prediction, answer))


class _Progress:
    """A tqdm bar over problems showing the running accuracy (when answers are given)."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.bar = None
        self.graded = self.hits = self.failed = 0
        if enabled and total:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="problem")

    def update(self, correct: Optional[bool], error: Optional[str]) -> None:
        self.failed += error is not None
        if correct is not None:
            self.graded += 1
            self.hits += bool(correct)
        if self.bar is not None:
            post = {}
            if self.graded:
                post["acc"] = f"{100.0 * self.hits / self.graded:.1f}%"
            if self.failed:
                post["failed"] = self.failed
            if post:
                self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _finish_problem(d: Dict[str, Any], i: int, item: Dict[str, Any], prediction: Optional[str], bar: "_Progress",
                    on_result: Optional[Callable[[int, Dict[str, Any]], None]]) -> None:
    """Adds the per-problem fields (index, id, problem, answer, prediction, correct) to one
    problem's result dict, counts it on the progress bar and hands it to ``on_result``."""
    d.update({"index": i, "id": item["id"], "problem": item["problem"], "answer": item["answer"],
              "prediction": prediction,
              "correct": None if item["answer"] is None else (d["error"] is None and _grade(prediction, item["answer"]))})
    bar.update(d["correct"], d["error"])
    if on_result is not None:
        on_result(i, d)


def beam_search_many(policy: Any, scorer: Any, problems: Sequence[Any], *, beams: int = _BEAM.beams,
                     width: int = _BEAM.width, max_steps: int = _BEAM.max_steps,
                     max_step_tokens: int = _BEAM.max_step_tokens, max_total_tokens: int = _BEAM.max_total_tokens,
                     temperature: float = _BEAM.sampling.temperature, top_p: float = _BEAM.sampling.top_p,
                     top_k: int = _BEAM.sampling.top_k, sampling: Optional[Any] = None,
                     step_delimiters: Sequence[str] = tuple(_BEAM.step_delimiters),
                     step_separator: str = _BEAM.step_separator, aggregation: str = _BEAM.aggregation,
                     seed: Optional[int] = None, max_problems_in_flight: int = _BEAM.max_problems_in_flight,
                     batch_scorer: bool = True, tokenizer: Any = None, progress: bool = True,
                     on_result: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """``beam_search`` over many problems at once on one engine: up to ``max_problems_in_flight``
    problems are searched concurrently and the expansions of all of them share the engine's
    batches (continuous batching); a finished problem makes room for the next. Each problem's
    search is exactly ``beam_search`` with the same options and ``seed`` (same requests, same
    result). Scorer: as ``beam_search``. A GenPRM (``batch_scorer=True``) verifies the candidates
    of ALL problems waiting for scores in one batch on its engine, once the policy has nothing
    left to generate (problems advance in step: generate all, verify all); with
    ``batch_scorer=False``, or for a Python callable, the scorer is called once per problem and
    iteration (that problem's candidates as one batch) while the others wait.

    ``problems``: strings, or dicts with ``problem`` and optionally ``answer`` (ground truth),
    ``id`` (default: the index) and ``prompt`` (a pre-rendered policy prompt; default
    ``default_prompt(problem, tokenizer)``).

    Returns, in input order, the ``beam_search`` dict of every problem plus ``index``, ``id``,
    ``problem``, ``answer`` (the given ground truth or None), ``prediction`` (the best beam's
    answer), ``correct`` (genprm.math grading of prediction vs answer; None without an answer)
    and ``error`` (None; for a problem that failed, its message, with ``best`` None: the other
    problems go on). ``on_result(index, result)`` runs as each problem finishes (completion
    order); ``progress``: a tqdm bar with the running accuracy.
    """
    if on_result is not None and not callable(on_result):
        raise ValueError(f"on_result must be callable (index, result), got {type(on_result).__name__}")
    opts = _beam_options(beams=beams, width=width, max_steps=max_steps, max_step_tokens=max_step_tokens,
                         max_total_tokens=max_total_tokens, sampling=_sampling(sampling, temperature, top_p, top_k),
                         step_delimiters=step_delimiters, step_separator=step_separator, aggregation=aggregation,
                         seed=seed, max_problems_in_flight=_positive_int("max_problems_in_flight",
                                                                         max_problems_in_flight))
    core = _policy_core(policy)
    scorer_core = _scorer_core(scorer)
    items = _problem_items(problems, tokenizer)
    bar = _Progress(progress, len(items), "beam search")
    out: List[Dict[str, Any]] = [None] * len(items)  # type: ignore[list-item]

    def done(i: int, res: Any, error: Optional[str]) -> None:
        d = out[i] = _beam_result(res, step_separator)
        d["error"] = error
        if error is not None:
            d["best"] = None
        best = d["best"]
        _finish_problem(d, i, items[i], None if best is None else best["answer"], bar, on_result)

    try:
        _core.search_beam_search_many(core, scorer_core, [(it["problem"], it["prompt"]) for it in items], opts,
                                      done, bool(batch_scorer))
    finally:
        bar.close()
    return out


def refine_many(policy: Any, scorer: Any, problems: Sequence[Any], *, max_turns: int = _REFINE.max_turns,
                max_tokens: int = _REFINE.max_tokens, threshold: float = _REFINE.threshold,
                temperature: float = _REFINE.sampling.temperature, top_p: float = _REFINE.sampling.top_p,
                top_k: int = _REFINE.sampling.top_k, sampling: Optional[Any] = None,
                aggregation: str = _REFINE.aggregation, refine_template: Optional[str] = None,
                render: Optional[Callable[[str], str]] = None, seed: Optional[int] = None,
                max_problems_in_flight: int = _REFINE.max_problems_in_flight, batch_scorer: bool = True,
                tokenizer: Any = None, progress: bool = True,
                on_result: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """``refine`` over many problems at once on one engine: up to ``max_problems_in_flight``
    problems are refined concurrently, the policy requests of all of them share the engine's
    batches; a finished problem makes room for the next. Each problem's refinement is exactly
    ``refine`` with the same options, ``seed``, prompt and ``render`` (same requests and seeds,
    hence the same turns for a callable scorer, and for a GenPRM too, whose rationale seeds are
    keyed on the solution's content, up to float rounding of a different batch). Scorer: as
    ``refine``; a GenPRM (``batch_scorer=True``) verifies the solutions of ALL problems waiting
    for scores in one batch once the policy engine has nothing left to decode; otherwise (or for
    a callable) the scorer is called per problem and turn while the others wait.

    ``problems``: strings, or dicts with ``problem`` and optionally ``answer``, ``id``,
    ``prompt`` (turn 0's policy prompt; default ``default_prompt(problem, tokenizer)``) and
    ``initial`` (a solution to start from instead of generating turn 0). ``render``: the
    revision request -> policy prompt; default with a ``tokenizer``: ``default_prompt(message,
    tokenizer)`` (the chat template), else the message as is.

    Returns, in input order, the ``refine`` dict of every problem plus ``index``, ``id``,
    ``problem``, ``answer``, ``prediction`` (the final turn's answer), ``correct`` (graded; None
    without an answer) and ``error`` (None, or the failure's message: ``turns`` then holds the
    turns done and ``final`` is None; the other problems go on). ``on_result(index, result)`` runs
    as each problem finishes (completion order); ``progress``: a tqdm bar with the accuracy.
    """
    if render is not None and not callable(render):
        raise ValueError("render must be callable (str) -> str")
    if on_result is not None and not callable(on_result):
        raise ValueError(f"on_result must be callable (index, result), got {type(on_result).__name__}")
    opts = _refine_options(max_turns=max_turns, max_tokens=max_tokens, threshold=threshold,
                           sampling=_sampling(sampling, temperature, top_p, top_k), aggregation=aggregation,
                           refine_template=refine_template, seed=seed,
                           max_problems_in_flight=_positive_int("max_problems_in_flight", max_problems_in_flight))
    core = _policy_core(policy)
    scorer_core = _scorer_core(scorer)
    if not isinstance(problems, (str, bytes, Mapping)):
        try:
            problems = list(problems)  # read twice below
        except TypeError:
            pass  # _problem_items says why
    items = _problem_items(problems, tokenizer)
    for i, p in enumerate(problems):
        initial = p.get("initial") if isinstance(p, Mapping) else None
        if initial is not None and not isinstance(initial, str):
            raise ValueError(f"problems[{i}]: 'initial' must be a string, got {type(initial).__name__}")
        items[i]["initial"] = initial
    if render is None and tokenizer is not None:
        render = lambda message: default_prompt(message, tokenizer)  # noqa: E731
    bar = _Progress(progress, len(items), "refine")
    out: List[Dict[str, Any]] = [None] * len(items)  # type: ignore[list-item]

    def done(i: int, res: Any, error: Optional[str]) -> None:
        d = out[i] = _refine_result(res)
        d["error"] = error
        if error is not None:
            d["final"] = None
        _finish_problem(d, i, items[i], None if d["final"] is None else d["final"]["answer"], bar, on_result)

    try:
        _core.search_refine_many(core, scorer_core, [(it["problem"], it["prompt"], it["initial"]) for it in items],
                                 opts, render, done, bool(batch_scorer))
    finally:
        bar.close()
    return out


def split_solution(text: str, delimiters: Sequence[str] = tuple(_BEAM.step_delimiters)) -> List[str]:
    """The steps of a full solution as beam search delimits them: cut at every delimiter (a
    ``"\\nStep "`` delimiter starts the next step, which keeps its ``Step k:``), blank steps
    dropped; a solution without text is one empty step (C++: math/steps.hpp, rule "delimiters")."""
    return _core.math.split_steps(text, "delimiters", _delimiters(delimiters, "delimiters"))


def best_of_n_many(policy: Any, scorer: Any, problems: Sequence[Any], *, n: int = _BON.n,
                   max_tokens: int = _BON.sampling.max_tokens, temperature: float = _BON.sampling.temperature,
                   top_p: float = _BON.sampling.top_p, top_k: int = _BON.sampling.top_k,
                   sampling: Optional[Any] = None, step_delimiters: Sequence[str] = tuple(_BON.step_delimiters),
                   aggregation: str = _BON.aggregation, seed: Optional[int] = None,
                   max_problems_in_flight: int = _BON.max_problems_in_flight, tokenizer: Any = None,
                   progress: bool = True,
                   on_result: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """Best-of-N over many problems: per problem ONE request of n = ``n`` full solutions from
    ``default_prompt`` (the step-by-step prompt of beam search), each split into steps at the
    beam-search delimiters (``split_solution``), scored by the PRM, then picked per aggregation.
    Up to ``max_problems_in_flight`` problems decode at once (continuous batching); a problem is
    scored as soon as its N samples are back, while the others go on decoding, and its place goes
    to the next problem (no generate-then-score barrier). A callable scorer is called at once, per
    problem; a genprm.GenPRM verifies the problems waiting for scores together in one
    ``verify_many``, when the policy engine has no request left or once
    ``max_problems_in_flight * n`` solutions wait (the next problems are submitted first). Same
    seed, same rows as generating all first and scoring after (per-request seeds); only the
    order of the scorer and ``on_result`` calls is the completion order.
    ``sampling``: a genprm.SamplingParams used as given (else temperature / top_p / top_k with
    ``max_tokens`` and ``seed``; one seed for every problem's request, as beam search).

    Returns per problem (input order): ``index``, ``id``, ``problem``, ``answer``,
    ``candidates`` ([{text, steps, answer, value (step rewards), finish_reason, tokens}]),
    ``picks`` ({"bon_last" | ... | "bon_prod" | "majority" | "weighted_last" | ...: {index,
    answer, correct}}), ``prediction`` / ``correct`` (the ``bon_<aggregation>`` pick), ``pass``
    (any candidate correct; None without an answer) and ``error`` (None, or the message of a
    failure, which leaves the other problems going). ``on_result(index, result)`` runs as each
    problem is done. Rows fit ``genprm.eval.best_of_n(rows, truth_key="answer")``.
    """
    _check_how(aggregation, "aggregation")
    n = _positive_int("n", n)
    max_tokens = _positive_int("max_tokens", max_tokens)
    max_problems_in_flight = _positive_int("max_problems_in_flight", max_problems_in_flight)
    if on_result is not None and not callable(on_result):
        raise ValueError(f"on_result must be callable (index, result), got {type(on_result).__name__}")
    core = _policy_core(policy)
    if not callable(getattr(policy, "generate", None)):
        raise ValueError(f"policy must be a genprm.Engine, got {type(policy).__name__}")
    from .engine import Engine
    from .prm import GenPRM
    # a genprm.Engine / GenPRM runs in C++ directly; look-alikes (wrappers) through their methods
    gen = core if isinstance(policy, Engine) else policy
    verify = None
    if isinstance(scorer, GenPRM):
        scorer = scorer._core
    elif isinstance(getattr(scorer, "_core", None), _core.GenPRMCore) and hasattr(scorer, "verify_many"):
        prm = scorer
        scorer = None

        def verify(rows: List[Dict[str, Any]]) -> List[Any]:
            return [v._core_result() for v in prm.verify_many(rows, progress=False)]
    else:
        scorer = _scorer_core(scorer)  # a callable, else ValueError
    items = _problem_items(problems, tokenizer)
    # without `sampling`, max_tokens and seed join the keywords; a given one is used as is
    params = _sampling(sampling, temperature, top_p, top_k, max_tokens=max_tokens, seed=seed)
    opts = _core.BestOfNOptions(n=n, sampling=params, step_delimiters=_delimiters(step_delimiters),
                                aggregation=aggregation, max_problems_in_flight=max_problems_in_flight)
    bar = _Progress(progress, len(items), "best-of-n")
    out: List[Dict[str, Any]] = [None] * len(items)  # type: ignore[list-item]

    def done(i: int, res: Any, error: Optional[str]) -> None:
        r = out[i] = _bon_row(i, items[i], res.to_dict(), error, aggregation)
        bar.update(r["correct"], r["error"])
        if on_result is not None:
            on_result(i, r)

    try:
        _core.search_best_of_n_many(gen, scorer, [(str(it["id"]), it["problem"], it["prompt"], it["answer"])
                                                  for it in items], opts, done, verify)
    finally:
        bar.close()
    return out


def _bon_row(i: int, item: Dict[str, Any], res: Dict[str, Any], error: Optional[str],
             aggregation: str) -> Dict[str, Any]:
    """One problem's row: the item, its candidates, the picks by method, the main pick's grade."""
    picks = {} if error is not None else {p.pop("method"): p for p in res["picks"]}
    main = picks.get(f"bon_{aggregation}")
    return SearchResult({
        "index": i, "id": item["id"], "problem": item["problem"], "answer": item["answer"],
        "candidates": res["candidates"], "picks": picks,
        "prediction": None if main is None else main["answer"],
        "correct": main["correct"] if main is not None else (None if item["answer"] is None else False),
        "pass": None if error is not None else res["pass"], "error": error})
