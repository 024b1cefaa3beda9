"""The small trained models shipped with genprm, and their quality on held-out problems.

``genprm/models/arith-policy`` solves the synthetic arithmetic problems of ``genprm.synthetic`` step
by step; ``genprm/models/arith-genprm`` verifies such steps in the GenPRM format (analysis, a
Python block that genprm's sandbox runs, a Yes/No judgement that follows the code output). Both
are Qwen2 models of under a million parameters with a small byte-level BPE tokenizer carrying the
DeepSeek-R1-Distill chat template, trained on the CPU by ``scripts/models`` (provenance in
``genprm/models/README.md``). They make every stage run on model-written text:

    prm = genprm.GenPRM(genprm.arith.genprm_dir(), majority=4, seed=0)
    rows = genprm.arith.heldout_rows(50)
    genprm.arith.verification_quality(prm, rows)["f1"]

The quality functions below are what the tests assert and the README reports.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from . import _core, synthetic

# search and labelling settings of the quality checks: the C++ defaults
_BON, _BEAM, _LABEL = _core.BestOfNOptions(), _core.BeamSearchOptions(), _core.LabelerConfig()

__all__ = ["models_dir", "available", "policy_dir", "genprm_dir", "HELDOUT_SEED", "heldout_rows", "heldout_problems", "auc",
           "verification_quality", "sampling_quality", "beam_quality", "refine_quality", "rpe_quality"]

#: Seed of the held-out problems (the training scripts draw from seeds 7, 11 and 12).
HELDOUT_SEED = 20261201


def models_dir() -> Path:
    return Path(__file__).resolve().parent / "models"


def _model(name: str) -> str:
    d = models_dir() / name
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise FileNotFoundError(f"{d}: the trained model is missing; `make models` trains it "
                                "(scripts/train-models.sh)")
    return str(d)


def available() -> bool:
    """Whether both trained models are in place."""
    return all((models_dir() / n / "model.safetensors").is_file() for n in ("arith-policy", "arith-genprm"))


def policy_dir() -> str:
    """The trained arithmetic policy (a genprm.Engine / transformers model directory)."""
    return _model("arith-policy")


def genprm_dir() -> str:
    """The trained arithmetic GenPRM (a genprm.GenPRM model directory)."""
    return _model("arith-genprm")


def heldout_rows(count: int, seed: int = HELDOUT_SEED, error_rate: float = 0.5, level: str = "standard",
                 operand_error_share: float = 0.0) -> List[Dict[str, Any]]:
    """ProcessBench-style rows of held-out problems (about ``error_rate`` of them with one wrong
    step: a wrong result, or for ``operand_error_share`` of them a wrong operation); keys: id,
    generator, problem, steps, label, final_answer_correct, answer. ``level`` "small" gives
    problems the policy can solve (for Monte Carlo labels)."""
    return synthetic.processbench_rows(count, seed, error_rate, id_prefix="heldout", level=level,
                                       operand_error_share=operand_error_share)


def heldout_problems(count: int, seed: int = HELDOUT_SEED + 1, level: str = "small") -> List[Dict[str, str]]:
    """Held-out problems with their answers, as search and Best-of-N take them (the level the
    policy was trained on)."""
    return [{"id": f"p{i}", "problem": p.text, "answer": str(p.answer)}
            for i, p in enumerate(synthetic.make_problems(count, seed, level=level))]


def _policy_tokenizer(tokenizer: Any = None) -> Any:
    """The chat template that renders the policy's prompts (the shipped policy's by default)."""
    if tokenizer is not None:
        return tokenizer
    from .tokenizer import Tokenizer
    return Tokenizer.from_pretrained(policy_dir())


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positive or not negative:
        return float("nan")
    wins = 0.0
    for p in positive:
        for n in negative:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positive) * len(negative))


def verification_quality(prm: Any, rows: Sequence[Dict[str, Any]], *, progress: bool = False) -> Dict[str, Any]:
    """Verifies ``rows`` and measures: ProcessBench acc_error / acc_correct / F1 (all x100), the AUC of
    step rewards (steps before the first error = correct, the first wrong step = wrong; later steps
    are not judged), the share of rationales that executed a Python block, and the verified rows."""
    from . import eval as _eval
    results = prm.verify_many(rows, progress=progress)
    verified, right, wrong = [], [], []
    paths = executed = 0
    for row, res in zip(rows, results):
        d = res.to_dict()
        verified.append(dict(row, value=list(d["value"])))
        label = int(row["label"])
        for k, r in enumerate(d["value"]):
            if label == -1 or k < label:
                right.append(float(r))
            elif k == label:
                wrong.append(float(r))
        for step in res.steps:
            for path in step["paths"]:
                paths += 1
                executed += any(c.get("executed") for c in path.get("code", []))
    pb = _eval.processbench(verified)
    sub = next(iter(pb["subsets"].values()), {})  # one subset: the rows' id prefix
    return {"f1": pb["average_f1"], "acc_error": sub.get("acc_error"), "acc_correct": sub.get("acc_correct"),
            "auc": auc(right, wrong), "executed_share": executed / max(paths, 1),
            "mean_reward_right": sum(right) / max(len(right), 1), "mean_reward_wrong": sum(wrong) / max(len(wrong), 1),
            "rows": verified}


def sampling_quality(policy: Any, prm: Any, problems: Sequence[Dict[str, str]], *, n: int = _BON.n, seed: int = 0,
                     temperature: float = _BON.sampling.temperature, max_tokens: int = 160, tokenizer: Any = None,
                     progress: bool = False) -> Dict[str, Any]:
    """Best-of-N over ``problems`` with the GenPRM as verifier: accuracy of pass@1 (mean over
    samples), majority vote, PRM-weighted vote and Best-of-N (PRM-min), and the error rate of
    single samples."""
    from . import math as _math
    from . import search
    rows = search.best_of_n_many(policy, prm, problems, n=n, seed=seed, temperature=temperature,
                                 max_tokens=max_tokens, aggregation="min", tokenizer=_policy_tokenizer(tokenizer),
                                 progress=progress)
    singles = [bool(c["answer"] is not None and _math.is_equiv(c["answer"], r["answer"]))
               for r in rows for c in r["candidates"]]

    def acc(key: str) -> float:
        return sum(bool(r["picks"][key]["correct"]) for r in rows) / len(rows)
    return {"pass1": sum(singles) / len(singles), "sample_error_rate": 1 - sum(singles) / len(singles),
            "majority": acc("majority"), "weighted": acc("weighted_min"), "bon": acc("bon_min"),
            "pass_at_n": sum(bool(r["pass"]) for r in rows) / len(rows), "rows": rows}


def _greedy_accuracy(policy: Any, problems: Sequence[Dict[str, str]], max_tokens: int, tokenizer: Any) -> float:
    from . import math as _math
    from . import search
    from .engine import SamplingParams
    tok = _policy_tokenizer(tokenizer)
    prompts = [search.default_prompt(p["problem"], tok) for p in problems]
    outs = policy.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_tokens))
    ok = 0
    for p, o in zip(problems, outs):
        a = _math.extract_answer(o.text)
        ok += bool(a is not None and _math.is_equiv(a, p["answer"]))
    return ok / len(problems)


def beam_quality(policy: Any, prm: Any, problems: Sequence[Dict[str, str]], *, beams: int = _BEAM.beams, width: int = _BEAM.width,
                 seed: int = 0, max_tokens: int = 160, tokenizer: Any = None,
                 progress: bool = False) -> Dict[str, Any]:
    """Step-level beam search with the GenPRM against greedy decoding: accuracy of each."""
    from . import search
    tok = _policy_tokenizer(tokenizer)
    rows = search.beam_search_many(policy, prm, problems, beams=beams, width=width, seed=seed,
                                   max_step_tokens=48, max_steps=6, tokenizer=tok, progress=progress)
    return {"beam": sum(bool(r["correct"]) for r in rows) / len(rows),
            "greedy": _greedy_accuracy(policy, problems, max_tokens, tok), "rows": rows}


def refine_quality(policy: Any, prm: Any, problems: Sequence[Dict[str, str]], *, max_turns: int = 2, seed: int = 0,
                   tokenizer: Any = None, progress: bool = False) -> Dict[str, Any]:
    """Critic refinement: of the problems whose first solution is wrong, how many the revisions fix
    (and how many right ones they break)."""
    from . import search
    rows = search.refine_many(policy, prm, problems, max_turns=max_turns, max_tokens=160, seed=seed,
                              temperature=0.7, tokenizer=_policy_tokenizer(tokenizer), progress=progress)
    from . import math as _math

    def right(turn: Dict[str, Any], answer: str) -> bool:
        a = turn["answer"]
        a = a.get("answer") if isinstance(a, dict) else a
        return bool(a is not None and _math.is_equiv(str(a), answer))
    first_wrong = [r for r in rows if r["turns"] and not right(r["turns"][0], r["answer"])]
    fixed = sum(bool(r["correct"]) for r in first_wrong)
    broken = sum(1 for r in rows if r["turns"] and right(r["turns"][0], r["answer"]) and not r["correct"])
    return {"first_wrong": len(first_wrong), "fixed": fixed, "broken": broken,
            "first_accuracy": 1 - len(first_wrong) / len(rows),
            "final_accuracy": sum(bool(r["correct"]) for r in rows) / len(rows), "rows": rows}


def rpe_quality(policy: Any, rows: Sequence[Dict[str, Any]], *, k: int = 16, seed: int = 0,
                epsilon: float = _LABEL.labels.epsilon, progress: bool = False) -> Dict[str, Any]:
    """Monte Carlo labels of ``rows`` (ProcessBench-style, with a known first wrong step) by the
    policy's rollouts: per variant (RPE ratio, hard MC > 0, difference), the share of rows whose
    first step labelled 0 is the known first wrong step (-1 = none labelled 0)."""
    from . import rpe
    items = []
    for r in rows:
        steps = rpe.split_steps(synthetic.solution_text(r["steps"]))  # the policy's own step text
        items.append({"id": r["id"], "problem": r["problem"], "steps": steps, "answer": r["answer"]})
    res = rpe.label_many(policy, items, k=k, epsilon=epsilon, seed=seed, max_tokens=160, progress=progress,
                         difference_epsilon=-0.5)

    def first_zero(labels: Sequence[Any]) -> int:
        for i, lab in enumerate(labels):
            if not lab:
                return i
        return -1
    agree = {"rpe": 0, "hard": 0, "difference": 0}
    for row, out in zip(rows, res):
        label = int(row["label"])
        agree["rpe"] += first_zero(out["labels"]) == label
        agree["hard"] += first_zero(out["hard_labels"]) == label
        agree["difference"] += first_zero([s["difference_label"] for s in out["steps"]]) == label
    return {key: v / len(rows) for key, v in agree.items()} | {"rows": res}
