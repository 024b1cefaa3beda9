"""Monte Carlo + Relative Progress Estimation (RPE) step labels (GenPRM's data pipeline).

    engine = genprm.Engine("Qwen2.5-Math-7B-Instruct", device="cuda", dtype="bfloat16")
    sols = genprm.rpe.sample_solutions(engine, ["What is 6*7?"], answers=["42"], n=4, seed=0)
    res = genprm.rpe.label_steps(engine, "What is 6*7?", sols[0]["solutions"][0]["steps"], "42", seed=0)
    res["labels"], res["mc"], res["mc_first"], res["k"]

Per solution: MC(s_1) from rollouts of the chat prompt + ``Step 1: `` (a first batch of 32, topped
up while the dynamic rule wants more: K = 128 if MC(s_1) < 0.1, 64 if < 0.9, else 32), then ONE
request with n = K rollouts per step from the solution's steps through that step followed by the
next step's header (``rollout_prefix``, the reference's form; the K rollouts share the prefix's
KV, and step t+1 finds step t's prefix cached), the last step graded from its
own answer. MC(s_t, a_t) = share of rollouts whose final answer (``genprm.math`` grading) equals
the ground truth; after the first step with MC = 0 later steps get 0 (their rollouts are
cancelled). RPE: P_t = MC(s_t, a_t) / MC(s_t) (MC(s_t) = previous step's MC, MC(s_1) for t = 1),
label = P_t >= epsilon; also the hard label (MC > 0) and the difference MC(s_t, a_t) - MC(s_t).
0/0 gives P_t = 0 (label 0); x/0 with x > 0 gives P_t = inf (label 1).

Adaptive Monte Carlo (``adaptive=True``, off by default): every estimate draws its rollouts in
rounds (8) that are pieces of the fixed scheme's requests (same seeds, consecutive samples) and
stops once an exact sequential binomial test decides what it feeds: a step its RPE label
(MC(s_t, a_t) against epsilon * MC(s_t)), MC(s_1) its bucket of the dynamic K rule. Each decided
estimate is wrong with probability at most ``delta`` (0.2, exact over all its checks together:
the boundaries are computed from the binomial law of the whole sequence; a bound on the worst
case, a rate right at its threshold); an estimate never decided is exactly the fixed-K one.
``adaptive={"round": 4, "delta": 0.05}`` changes the settings (a smaller delta: fewer labels that
differ from the fixed scheme's, fewer rollouts saved).
A step's ``k`` is then the rollouts it used, ``rounds`` its requests, ``early`` whether the test
stopped it; ``first_early`` says the same of MC(s_1).

Result dicts (JSON-serialisable apart from an infinite ``progress``): ``id``, ``mc_first``,
``k_first``, ``correct_first``, ``first_requests``, ``k``, ``epsilon``, ``labels``,
``hard_labels``, ``mc``, ``steps`` (per step: ``step``, ``k``, ``correct``, ``rollout``,
``estimated``, ``mc_raw``, ``rounds``, ``early``, ``mc``, ``mc_prev``, ``propagated``, ``progress``, ``label``,
``hard_label``, ``difference``, ``difference_label``, ``prompt_tokens``, ``cached_prompt_tokens``,
``generated_tokens``), token totals (``prompt_tokens``, ``cached_prompt_tokens``,
``generated_tokens``), ``requests``, ``rollouts`` (that came back), ``first_early``, ``seconds`` and
``error`` ("" unless a request failed).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import _core
from .display import RPEResult
from .tokenizer import problem_prompt

__all__ = ["compute_labels", "k_for", "split_steps", "join_steps", "rollout_prefix", "label_steps", "label_many",
           "sample_solutions", "STEP_PREFIX"]

_LABEL = _core.LabelerConfig()
_SAMPLE = _core.SamplerConfig()
_ROLLOUT = _LABEL.rollout
_K_RULE = _LABEL.k_rule
_ADAPTIVE = _LABEL.adaptive

STEP_PREFIX = _LABEL.step_prefix


def compute_labels(mc: Sequence[float], mc_first: float, epsilon: float = _LABEL.labels.epsilon, *,
                   difference_epsilon: float = _LABEL.labels.difference_epsilon) -> Dict[str, List[Any]]:
    """Step labels from Monte Carlo estimates (pure: no model).

    ``mc``: MC(s_t, a_t) of every step (in [0, 1]); ``mc_first``: MC(s_1). Returns lists, one
    entry per step: ``mc`` (after zero propagation), ``mc_prev`` (MC(s_t)), ``progress`` (P_t;
    inf for x/0), ``labels`` (P_t >= epsilon), ``hard_labels`` (MC > 0), ``difference``,
    ``difference_labels`` (difference >= difference_epsilon), ``propagated``.
    Raises ValueError naming the argument for an empty ``mc``, values outside [0, 1] or
    ``epsilon`` outside (0, 1].
    """
    config = _core.LabelConfig(epsilon=float(epsilon), difference_epsilon=float(difference_epsilon))
    rows = [r.to_dict() for r in _core.rpe_compute_labels([float(x) for x in mc], float(mc_first), config)]
    keys = {"mc": "mc", "mc_prev": "mc_prev", "progress": "progress", "labels": "label",
            "hard_labels": "hard_label", "difference": "difference", "difference_labels": "difference_label",
            "propagated": "propagated"}
    return {out: [r[key] for r in rows] for out, key in keys.items()}


def k_for(mc_first: float, *, thresholds: Tuple[float, float] = (_K_RULE.low, _K_RULE.high),
          ks: Tuple[int, int, int] = (_K_RULE.k_low, _K_RULE.k_mid, _K_RULE.k_high)) -> int:
    """Dynamic K: ks[0] if mc_first < thresholds[0], ks[1] if < thresholds[1], else ks[2]."""
    rule = _core.KRule(low=float(thresholds[0]), high=float(thresholds[1]), k_low=int(ks[0]), k_mid=int(ks[1]),
                       k_high=int(ks[2]))
    return _core.rpe_k_for(rule, float(mc_first))


def split_steps(solution: str) -> List[str]:
    """Splits a step-forced solution on ``\\nStep `` keeping every byte: ``join_steps(steps, t)``
    is the solution's text up to the end of step t and ``join_steps(steps)`` the whole."""
    if not isinstance(solution, str):
        raise ValueError(f"solution must be a string, got {type(solution).__name__}")
    return _core.math.split_steps(solution, "step_headers")


def join_steps(steps: Sequence[str], count: Optional[int] = None) -> str:
    """The first ``count`` steps (all when None) joined by ``\\n``: the inverse of split_steps."""
    return _core.math.join_steps(list(steps), -1 if count is None else int(count))


def rollout_prefix(steps: Sequence[str], step: int) -> str:
    """The assistant text that the Monte Carlo rollouts of ``step`` (1-based) continue from, as
    the reference's RPE data generation writes it: steps 1..step, each trimmed, joined by a blank
    line, then the next header ``Step {step + 1}: ``. For a solution written with blank lines
    between numbered steps it is the solution's own text through that header."""
    _check_positive_int("step", step)
    return _core.rpe_rollout_prefix([str(s) for s in steps], int(step))


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _rollout(temperature: float, top_p: float, top_k: int, max_tokens: int,
             stop: Optional[Sequence[str]]) -> Dict[str, Any]:
    _check_positive_int("max_tokens", max_tokens)
    return {"temperature": float(temperature), "top_p": float(top_p), "top_k": int(top_k),
            "max_tokens": max_tokens, "stop": [str(x) for x in stop or ()]}


def _adaptive(adaptive: Any) -> Dict[str, Any]:
    """The C++ AdaptiveMC of the ``adaptive`` keyword: a bool, or a dict of its fields (``round``,
    ``delta``), which turns it on."""
    if isinstance(adaptive, bool):
        return {"enabled": adaptive}
    if isinstance(adaptive, Mapping):
        unknown = sorted(set(adaptive) - (set(_core.AdaptiveMC.FIELDS) - {"enabled"}))
        if unknown:
            raise ValueError(f"adaptive: unknown key(s) {unknown}; known: round, delta")
        return {"enabled": True, **dict(adaptive)}
    raise ValueError(f"adaptive must be a bool or a dict with 'round' / 'delta', got {type(adaptive).__name__}")


def _labeler_config(*, epsilon: float, k: Optional[int], temperature: float, top_p: float, top_k: int,
                    max_tokens: int, seed: Optional[int], first_k: Optional[int],
                    k_rule: Optional[Mapping[str, Any]], difference_epsilon: float, step_prefix: str,
                    stop: Optional[Sequence[str]], cancel_after_zero: bool, max_problems_in_flight: int,
                    keep_rollouts: bool, adaptive: Any = _ADAPTIVE.enabled,
                    share_first: bool = _LABEL.share_first) -> Any:
    """The C++ LabelerConfig of label_many's keywords (None: the C++ default)."""
    if not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool) or not (0.0 < float(epsilon) <= 1.0):
        raise ValueError(f"epsilon must be in (0, 1], got {epsilon!r}")
    _check_positive_int("k", k)
    _check_positive_int("first_k", first_k)
    _check_positive_int("max_problems_in_flight", max_problems_in_flight)
    if seed is not None:
        _check_positive_int("seed", seed, 0)
    rule: Dict[str, Any] = {}
    if k_rule:
        unknown = sorted(set(k_rule) - {"thresholds", "ks"})
        if unknown:
            raise ValueError(f"k_rule: unknown key(s) {unknown}; known: thresholds=(low, high), ks=(k_low, k_mid, k_high)")
        if "thresholds" in k_rule:
            lo, hi = k_rule["thresholds"]
            rule.update(low=float(lo), high=float(hi))
        if "ks" in k_rule:
            a, b, c = k_rule["ks"]
            for name, v in (("k_rule ks[0]", a), ("k_rule ks[1]", b), ("k_rule ks[2]", c)):
                _check_positive_int(name, v)
            rule.update(k_low=a, k_mid=b, k_high=c)
    return _core.LabelerConfig(
        labels={"epsilon": float(epsilon), "difference_epsilon": float(difference_epsilon)}, k_rule=rule,
        fixed_k=k, first_k=first_k, step_prefix=str(step_prefix),
        rollout=_rollout(temperature, top_p, top_k, max_tokens, stop), seed=seed,
        max_problems_in_flight=max_problems_in_flight, cancel_after_zero=bool(cancel_after_zero),
        keep_rollouts=bool(keep_rollouts), adaptive=_adaptive(adaptive), share_first=bool(share_first))


def _core_engine(engine: Any):
    core = getattr(engine, "_core", None)
    if core is None or not isinstance(core, _core.Engine):
        raise ValueError(f"engine must be a genprm.Engine, got {type(engine).__name__}")
    return core


def _row(row: Any, index: int, tokenizer: Any,
         system_prompt: Optional[str]) -> Tuple[str, str, List[str], str, str, Optional[float]]:
    """(id, problem, steps, answer, prompt, mc_first) of a dict row {problem, steps | solution,
    answer, [id], [prompt], [mc_first]}."""
    if not isinstance(row, Mapping):
        raise ValueError(f"rows[{index}]: expected a dict with 'problem', 'steps' and 'answer', got {type(row).__name__}")
    problem = row.get("problem")
    steps = row.get("steps")
    if steps is None and isinstance(row.get("solution"), str):
        steps = split_steps(row["solution"])
    answer = row.get("answer", row.get("ground_truth"))
    prompt = row.get("prompt") or ""
    rid = row.get("id", index)
    if not isinstance(problem, str) or (not problem and not prompt):
        raise ValueError(f"rows[{index}]: 'problem' must be a non-empty string")
    if isinstance(steps, str) or not isinstance(steps, Sequence) or not all(isinstance(s, str) for s in steps):
        raise ValueError(f"rows[{index}]: 'steps' must be a list of strings")
    if not steps:
        raise ValueError(f"rows[{index}]: 'steps' is empty (a solution needs at least one step)")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"rows[{index}]: 'answer' (the ground truth) must be a non-empty string")
    if not prompt and tokenizer is not None:
        prompt = problem_prompt(tokenizer, problem, system_prompt)
    mc_first = row.get("mc_first")
    if mc_first is not None and (isinstance(mc_first, bool) or not isinstance(mc_first, (int, float))
                                 or not 0.0 <= float(mc_first) <= 1.0):
        raise ValueError(f"rows[{index}]: 'mc_first' must be a number in [0, 1] (the problem's pass rate), "
                         f"got {mc_first!r}")
    return str(rid), problem, list(steps), answer, str(prompt), None if mc_first is None else float(mc_first)


def label_many(engine: Any, rows: Iterable[Mapping[str, Any]], *, epsilon: float = _LABEL.labels.epsilon,
               k: Optional[int] = None, temperature: float = _ROLLOUT.temperature, top_p: float = _ROLLOUT.top_p,
               top_k: int = _ROLLOUT.top_k, max_tokens: int = _ROLLOUT.max_tokens,
               seed: Optional[int] = None, first_k: Optional[int] = None,
               k_rule: Optional[Mapping[str, Any]] = None,
               difference_epsilon: float = _LABEL.labels.difference_epsilon,
               step_prefix: str = STEP_PREFIX, system_prompt: Optional[str] = None,
               stop: Optional[Sequence[str]] = None, cancel_after_zero: bool = _LABEL.cancel_after_zero,
               max_problems_in_flight: int = _LABEL.max_problems_in_flight,
               keep_rollouts: bool = _LABEL.keep_rollouts, adaptive: Any = _ADAPTIVE.enabled,
               share_first: bool = _LABEL.share_first, tokenizer: Any = None, progress: bool = True,
               on_result: Optional[Callable[[int, Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """Labels many solutions, up to ``max_problems_in_flight`` at once over one engine.

    rows: dicts with ``problem``, ``steps`` (list of strings; or ``solution``, a string split with
    split_steps), ``answer`` (ground truth), optionally ``id``, ``prompt`` (a pre-rendered
    chat prompt) and ``mc_first`` (the problem's pass rate measured elsewhere, such as the share
    of its sampled solutions that are right, as the reference's base score: then no MC(s_1)
    rollouts are drawn, K follows from it, and the result says ``first_given``). The chat prompt is otherwise rendered with the engine's tokenizer
    ([system_prompt?, user = problem] + generation prompt), or with ``tokenizer`` (a
    genprm.Tokenizer, whose jinja2 fallback renders any template) when given.
    ``k``: a fixed K for every estimate (default: the dynamic rule; ``k_rule`` =
    ``{"thresholds": (0.1, 0.9), "ks": (128, 64, 32)}`` changes it); ``first_k``: the first
    batch of the MC(s_1) estimate (default the smallest K). ``keep_rollouts``: every rollout's
    text in the result (``steps[i]["rollouts"]``, ``first_rollouts``). ``adaptive``: True (or a dict
    ``{"round": 8, "delta": 0.2}``) draws rollouts in rounds and stops each estimate once its label
    (its K, for MC(s_1)) is decided (module docstring). ``share_first``: MC(s_1) once per problem
    (rows with the same chat prompt share the estimate of the first of them, whose id the others
    report as ``first_shared``; its rollouts are counted there). ``seed``: every request seeded from
    (seed, row id, step, batch): reproducible. ``on_result(index, result)`` runs as each row
    finishes; results are returned in input order (see the module docstring for their keys).
    """
    core = _core_engine(engine)
    config = _labeler_config(epsilon=epsilon, k=k, temperature=temperature, top_p=top_p, top_k=top_k,
                             max_tokens=max_tokens, seed=seed, first_k=first_k, k_rule=k_rule,
                             difference_epsilon=difference_epsilon, step_prefix=step_prefix, stop=stop,
                             cancel_after_zero=cancel_after_zero, max_problems_in_flight=max_problems_in_flight,
                             keep_rollouts=keep_rollouts, adaptive=adaptive, share_first=share_first)
    items = [_row(r, i, tokenizer, system_prompt) for i, r in enumerate(rows)]
    if not items:
        return []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(items), desc="rpe label", unit="solution")

    def done(i: int, r: Any) -> None:
        if bar is not None:
            bar.update(1)
        if on_result is not None:
            on_result(i, RPEResult(r.to_dict()))

    try:
        results = _core.rpe_label(core, items, config, system_prompt, done)
    finally:
        if bar is not None:
            bar.close()
    return [RPEResult(r.to_dict()) for r in results]


def label_steps(engine: Any, problem: str, steps: Sequence[str], answer: str, *,
                epsilon: float = _LABEL.labels.epsilon, k: Optional[int] = None,
                temperature: float = _ROLLOUT.temperature, top_p: float = _ROLLOUT.top_p,
                top_k: int = _ROLLOUT.top_k, max_tokens: int = _ROLLOUT.max_tokens, seed: Optional[int] = None,
                first_k: Optional[int] = None, k_rule: Optional[Mapping[str, Any]] = None,
                difference_epsilon: float = _LABEL.labels.difference_epsilon,
                step_prefix: str = STEP_PREFIX, system_prompt: Optional[str] = None,
                stop: Optional[Sequence[str]] = None, cancel_after_zero: bool = _LABEL.cancel_after_zero,
                keep_rollouts: bool = _LABEL.keep_rollouts, adaptive: Any = _ADAPTIVE.enabled,
                prompt: Optional[str] = None, tokenizer: Any = None, id: str = "") -> Dict[str, Any]:
    """MC estimates and RPE labels of one solution (``steps``: list of step texts, e.g.
    split_steps of a step-forced solution) against the ground truth ``answer``. Options as in
    label_many; ``prompt``: a pre-rendered chat prompt. Returns the result dict."""
    if isinstance(steps, str):
        raise ValueError("steps must be a list of step strings (use split_steps(solution) for a whole solution)")
    row = {"id": id, "problem": problem, "steps": list(steps) if steps is not None else None, "answer": answer,
           "prompt": prompt or ""}
    try:
        return label_many(engine, [row], epsilon=epsilon, k=k, temperature=temperature, top_p=top_p, top_k=top_k,
                          max_tokens=max_tokens, seed=seed, first_k=first_k, k_rule=k_rule,
                          difference_epsilon=difference_epsilon, step_prefix=step_prefix,
                          system_prompt=system_prompt, stop=stop, cancel_after_zero=cancel_after_zero,
                          keep_rollouts=keep_rollouts, adaptive=adaptive, tokenizer=tokenizer, progress=False)[0]
    except ValueError as e:
        msg = str(e)
        if msg.startswith("rows[0]: "):  # name the argument of this function
            msg = msg[len("rows[0]: "):].replace("'steps'", "steps").replace("'answer'", "answer").replace(
                "'problem'", "problem")
        raise ValueError(msg) from None


def sample_solutions(engine: Any, problems: Sequence[str], *, n: int = _SAMPLE.n,
                     answers: Optional[Sequence[str]] = None, temperature: float = _SAMPLE.rollout.temperature,
                     top_p: float = _SAMPLE.rollout.top_p, top_k: int = _SAMPLE.rollout.top_k,
                     max_tokens: int = _SAMPLE.rollout.max_tokens, seed: Optional[int] = None,
                     step_prefix: str = _SAMPLE.step_prefix, system_prompt: Optional[str] = None,
                     stop: Optional[Sequence[str]] = None, ids: Optional[Sequence[Any]] = None,
                     prompts: Optional[Sequence[str]] = None, tokenizer: Any = None,
                     max_problems_in_flight: int = _SAMPLE.max_problems_in_flight,
                     progress: bool = False) -> List[Dict[str, Any]]:
    """Samples ``n`` solutions per problem with step forcing (assistant prefix ``Step 1: ``; one
    request with n samples per problem, so the prompt is computed once). Returns per problem
    ``{"id", "problem", "answer", "solutions": [{"text", "steps", "answer", "correct",
    "finish_reason", "generated_tokens"}], "pass_rate", "prompt_tokens", "cached_prompt_tokens",
    "error"}``; a solution's ``answer`` is the extracted final answer (None when none),
    ``correct`` its grade against ``answers`` (False without a ground truth), ``pass_rate`` the
    share of right solutions (None without a ground truth). Each solution's ``steps`` can go
    straight into label_steps / label_many, and ``pass_rate`` as its rows' ``mc_first`` (the
    reference's base score: no MC(s_1) rollouts then)."""
    core = _core_engine(engine)
    if isinstance(problems, str):
        raise ValueError("problems must be a list of problem strings")
    problems = list(problems)
    _check_positive_int("n", n)
    _check_positive_int("max_tokens", max_tokens)
    _check_positive_int("max_problems_in_flight", max_problems_in_flight)
    for name, seq in (("answers", answers), ("ids", ids), ("prompts", prompts)):
        if seq is not None and len(seq) != len(problems):
            raise ValueError(f"{name}: {len(seq)} entries for {len(problems)} problems")
    if float(temperature) < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    rows = []
    for i, p in enumerate(problems):
        if not isinstance(p, str) or not p:
            raise ValueError(f"problems[{i}] must be a non-empty string")
        prompt = prompts[i] if prompts is not None else ""
        if not prompt and tokenizer is not None:
            prompt = problem_prompt(tokenizer, p, system_prompt)
        ans = "" if answers is None or answers[i] is None else str(answers[i])
        rows.append((str(ids[i]) if ids is not None else str(i), p, ans, prompt))
    _check_positive_int("seed", seed, 0)
    config = _core.SamplerConfig(n=n, step_prefix=str(step_prefix),
                                 rollout=_rollout(temperature, top_p, top_k, max_tokens, stop), seed=seed,
                                 max_problems_in_flight=max_problems_in_flight)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(rows), desc="rpe sample", unit="problem")
    try:
        results = _core.rpe_sample(core, rows, config, system_prompt,
                                   (lambda i, r: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return [r.to_dict() for r in results]
