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

Scores of a solution from its step rewards: ``last``, ``min``, ``avg``, ``prod``; an empty list
scores 0.0. Ties: the lower candidate index (for votes: the answer group seen first) wins; NaN
scores rank lowest; a missing answer (None or blank) never wins a vote while any answer exists.

A scorer is a ``genprm.GenPRM`` or any callable ``scorer(problem, solutions) -> list`` where
``solutions`` is a list of step lists and each entry of the result is that solution's list of
step rewards (or a dict ``{"rewards": [...], "critiques": [...]}``, or a VerificationResult).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core

__all__ = ["AGGREGATIONS", "aggregate", "best_of_n", "majority_vote", "weighted_vote", "beam_search",
           "refine", "default_prompt"]

AGGREGATIONS = ("last", "min", "avg", "prod")

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def default_prompt(problem: str, tokenizer: Any = None, system: str = DEFAULT_INSTRUCTION) -> str:
    """The policy prompt for ``problem``: with a ``genprm.Tokenizer`` whose chat template is known,
    the chat rendering of [system, user=problem] with the generation prompt (Qwen2.5-Math style);
    without one, ``problem + "\\n\\n" + system + "\\n\\n"``."""
    if not isinstance(problem, str):
        raise ValueError(f"problem must be a string, got {type(problem).__name__}")
    if tokenizer is not None:
        return tokenizer.apply_chat_template([{"role": "system", "content": system},
                                              {"role": "user", "content": problem}],
                                             add_generation_prompt=True)
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


def _scorer_core(scorer: Any):
    core = getattr(scorer, "_core", None)
    if isinstance(core, _core.GenPRMCore):
        return core
    if isinstance(scorer, _core.GenPRMCore) or callable(scorer):
        return scorer
    raise ValueError(f"scorer must be a genprm.GenPRM or a callable (problem, solutions) -> rewards, "
                     f"got {type(scorer).__name__}")


def _sampling(sampling: Optional[Any], temperature: float, top_p: float, top_k: int):
    if sampling is None:
        return _core.SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k)
    if not isinstance(sampling, _core.SamplingParams):
        raise ValueError(f"sampling must be a genprm.SamplingParams, got {type(sampling).__name__}")
    return sampling


def beam_search(policy: Any, scorer: Any, problem: str, *, beams: int = 4, width: int = 2, max_steps: int = 40,
                max_step_tokens: int = 512, max_total_tokens: int = 0, temperature: float = 0.7,
                top_p: float = 1.0, top_k: int = 0, sampling: Optional[Any] = None,
                step_delimiters: Sequence[str] = ("\n\n", "\nStep "), step_separator: str = "\n\n",
                aggregation: str = "last", seed: Optional[int] = None, prompt: Optional[str] = None
                ) -> Dict[str, Any]:
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
    _check_how(aggregation, "aggregation")
    if isinstance(step_delimiters, str):
        raise ValueError("step_delimiters must be a list of strings, got one string")
    core = _policy_core(policy)
    return _core.search_beam_search(
        core, _scorer_core(scorer), problem, default_prompt(problem) if prompt is None else prompt,
        beams=int(beams), width=int(width), max_steps=int(max_steps), max_step_tokens=int(max_step_tokens),
        max_total_tokens=int(max_total_tokens), sampling=_sampling(sampling, temperature, top_p, top_k),
        step_delimiters=list(step_delimiters), step_separator=step_separator, aggregation=aggregation, seed=seed)


def refine(policy: Any, scorer: Any, problem: str, *, max_turns: int = 3, max_tokens: int = 1024,
           threshold: float = 0.5, temperature: float = 0.7, top_p: float = 1.0, top_k: int = 0,
           sampling: Optional[Any] = None, aggregation: str = "min", refine_template: Optional[str] = None,
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
    _check_how(aggregation, "aggregation")
    if render is not None and not callable(render):
        raise ValueError("render must be callable (str) -> str")
    core = _policy_core(policy)
    return _core.search_refine(
        core, _scorer_core(scorer), problem, default_prompt(problem) if prompt is None else prompt,
        max_turns=int(max_turns), max_tokens=int(max_tokens), threshold=float(threshold),
        sampling=_sampling(sampling, temperature, top_p, top_k), aggregation=aggregation,
        refine_template=refine_template or "", render=render, initial=initial, seed=seed)
