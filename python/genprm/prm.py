"""GenPRM step verification (C++: include/genprm/prm/).

    >>> prm = genprm.GenPRM("path/to/GenPRM-1.5B", device="cuda", dtype="bfloat16", majority=8)
    >>> r = prm.verify(problem, steps)
    >>> r.value               # reward per step, p(Yes) / (p(Yes) + p(No)) averaged over 8 paths
    >>> r.first_wrong_step    # first step with reward < 0.5, or -1
    >>> r.to_dict(); r.to_dataframe()   # the latter needs pandas
    >>> r3 = prm.verify(problem, steps + [next_step], prior=r)   # verifies only next_step

Prompts, stop strings, sampling, the token budget, the code rounds and the output fallback are
those of the reference implementation (RyanLiu112/GenPRM; C++ defaults of
``genprm.VerifierConfig``); every one of them can be changed with a keyword argument (see
``GenPRM.OPTIONS``). Modes: "full" (analyze + code + execution), "cot" (analyze only),
"code-no-exec" (code written but not run), "direct" (judgement only).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from . import _core

__all__ = ["GenPRM", "VerificationResult", "results_to_dataframe", "MODES"]

MODES = ("full", "cot", "code-no-exec", "direct")


class VerificationResult:
    """The verification of one solution. Attributes mirror the JSON of ``to_dict()``:
    ``id``, ``value`` (step rewards), ``first_wrong_step``, ``threshold``, ``steps`` (per step:
    ``reward``, ``paths`` with each path's ``reward``, ``judgement``, ``text``, ``code``, token
    counts), ``time``, token totals and ``error``. ``problem`` and each step's ``paragraph``
    record what was verified (so the result can be passed back as ``prior``);
    ``reused_steps`` is the number of leading steps copied from a prior (their entries are the
    prior's, unchanged) and ``replayed_code_blocks`` the prior code blocks re-run to rebuild the
    Python namespace. The totals (``generated_tokens``, ``prompt_tokens``,
    ``cached_prompt_tokens``, ``time``) count only the work of the call that produced this
    result, not the prior's."""

    def __init__(self, data: Any):
        if isinstance(data, _core.SolutionResult):
            self._result, self._data = data, data.to_dict()
        else:
            self._result, self._data = None, dict(data)

    @classmethod
    def from_json(cls, text: str) -> "VerificationResult":
        return cls(json.loads(text))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VerificationResult":
        """A result from its ``to_dict()`` (e.g. a row of ``genprm verify``'s output)."""
        return cls(dict(data))

    def _core_result(self, what: str = "prior") -> Any:
        """The C++ SolutionResult (built from the dict when this result was read from JSON)."""
        if self._result is None:
            self._result = _result_from_dict(self._data, what)
        return self._result

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("_data")
        if data is not None and name in data:
            return data[name]
        raise AttributeError(name)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    @property
    def correct(self) -> List[bool]:
        """Per step: reward >= threshold."""
        return [v >= self._data["threshold"] for v in self._data["value"]]

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serializable dict (a deep copy)."""
        return json.loads(json.dumps(self._data))

    def to_dataframe(self):
        """One row per step (needs pandas)."""
        return results_to_dataframe([self])

    def _repr_html_(self) -> str:
        """Jupyter's rich display: steps, coloured rewards, collapsible rationales with their code
        and its output (genprm.display.verification_html)."""
        from .display import verification_html
        return verification_html(self._data)

    def __repr__(self) -> str:
        vals = ", ".join(f"{v:.3f}" for v in self._data["value"])
        return (f"VerificationResult(id={self._data['id']!r}, value=[{vals}], "
                f"first_wrong_step={self._data['first_wrong_step']})")


def results_to_dataframe(results: Iterable[VerificationResult]):
    """A pandas DataFrame with one row per (solution, step): id, step, reward, correct, the
    paths' rewards and sampled judgements, code blocks run, tokens generated."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_dataframe needs pandas: pip install pandas") from e
    rows = []
    for r in results:
        d = r._data if isinstance(r, VerificationResult) else r
        for s in d["steps"]:
            rows.append({
                "id": d["id"],
                "step": s["step"],
                "reward": s["reward"],
                "correct": s["reward"] >= d["threshold"],
                "path_rewards": [p["reward"] for p in s["paths"]],
                "judgements": [p["judgement"] for p in s["paths"]],
                "code_blocks": sum(len(p["code"]) for p in s["paths"]),
                "generated_tokens": sum(p["generated_tokens"] for p in s["paths"]),
                "seconds": s["seconds"],
            })
    return pd.DataFrame(rows)


def _result_from_dict(d: Mapping[str, Any], what: str) -> Any:
    """A written result as the C++ SolutionResult; it must have the keys a prior needs (the C++
    lists SolutionResult.PRIOR_KEYS / PRIOR_STEP_KEYS, as prm/result.hpp reads JSON)."""
    for key in _core.SolutionResult.PRIOR_KEYS:
        if key not in d:
            raise ValueError(f"{what}: prior: verification result: missing '{key}'")
    for st in d["steps"]:
        for key in _core.SolutionResult.PRIOR_STEP_KEYS:
            if not isinstance(st, Mapping) or key not in st:
                raise ValueError(f"{what}: prior: verification result step: missing '{key}'")
    return _core.SolutionResult.from_dict(d)


def _prior(prior: Any, what: str) -> Any:
    """The C++ SolutionResult of a prior (VerificationResult or its to_dict()), or None."""
    if prior is None:
        return None
    if isinstance(prior, VerificationResult):
        return prior._core_result(what)
    if isinstance(prior, Mapping):
        return _result_from_dict(prior, what)
    raise ValueError(f"{what}: prior must be a VerificationResult (or its to_dict()) or None, "
                     f"got {type(prior).__name__}")


def _row_fields(row: Any, index: int):
    """(id, problem, steps) of a dict-like row or a (problem, steps) pair."""
    if isinstance(row, Mapping):
        problem, steps = row.get("problem"), row.get("steps")
        rid = row.get("id", index)
    elif isinstance(row, (tuple, list)) and len(row) == 2:
        (problem, steps), rid = row, index
    else:
        raise ValueError(f"row {index}: expected a dict with 'problem' and 'steps' or a (problem, steps) pair")
    if not isinstance(problem, str):
        raise ValueError(f"row {index}: 'problem' must be a string, got {type(problem).__name__}")
    if isinstance(steps, str) or not isinstance(steps, Sequence) or not all(isinstance(s, str) for s in steps):
        raise ValueError(f"row {index}: 'steps' must be a list of strings")
    return str(rid), problem, list(steps)


_DEFAULTS = _core.GenPRMOptions()


class GenPRM:
    """A GenPRM checkpoint directory (config.json, safetensors, tokenizer files) with its own
    engine (shared paged KV cache) and code sandbox.

    Keyword options of the verifier are the fields of ``genprm.VerifierConfig`` (defaults = the
    reference's, read from C++): ``threshold``, ``temperature``, ``top_p``, ``top_k``,
    ``repetition_penalty``, ``max_tokens``, ``analyze_max_tokens`` (0 = max_tokens),
    ``round_limit``, ``fallback_tokens``, ``max_fallbacks``, ``processed_logprobs`` (vLLM V0's,
    as the reference ran), ``reward`` ("exact", the default: p(Yes)/(p(Yes)+p(No)) at the
    judgement position; "reference": the reference implementation's read-out bit for bit, with
    ``reward_note`` on steps it would have crashed on), ``sequential_paths`` (Maj@N paths of a step
    one after another over one code namespace, as the reference), ``seed``, templates (``system_prompt``, ``analyze_template``,
    ``verify_template``, ``output_template``, ``direct_system_prompt``), ``max_solutions_in_flight``.
    ``engine`` / ``sandbox``: dicts of ``genprm.EngineOptions`` fields (kv_blocks,
    kv_memory_bytes, block_size, max_batch_tokens, max_running_seqs, seed, prefix_caching,
    decode_graphs, ...) and of
    ``genprm.SandboxOptions`` fields (timeout_s, workers, python, ...).
    """

    OPTIONS = tuple(k for k in _core.VerifierConfig.FIELDS if k not in ("mode", "majority"))

    def __init__(self, model_dir: str, device: str = _DEFAULTS.device, dtype: str = _DEFAULTS.dtype,
                 majority: int = _DEFAULTS.verifier.majority, mode: str = _DEFAULTS.verifier.mode, *,
                 engine: Optional[Dict[str, Any]] = None, sandbox: Optional[Dict[str, Any]] = None,
                 **options: Any):
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise ValueError(f"GenPRM: unknown option(s) {unknown}; known: {list(self.OPTIONS)}")
        if mode not in MODES:
            raise ValueError(f"GenPRM: mode must be one of {MODES}, got {mode!r}")
        self.model_dir = str(model_dir)
        sandbox = dict(sandbox or {})
        # The sandbox's interpreter: this one, as genprm.Sandbox does (the C++ default looks for a
        # .venv above the working directory, then PATH, whose python may be one the sandbox's
        # unprivileged user cannot run, e.g. a pyenv shim under /root).
        sandbox.setdefault("python", os.environ.get("GENPRM_SANDBOX_PYTHON") or sys.executable)
        opts = _core.GenPRMOptions(device=device, dtype=dtype,
                                   verifier=dict(options, mode=mode, majority=int(majority)),
                                   engine=dict(engine or {}), sandbox=sandbox)
        self._core = _core.GenPRMCore(self.model_dir, opts)

    @property
    def options(self) -> Any:
        """The ``genprm.GenPRMOptions`` this GenPRM runs with."""
        return self._core.options

    @property
    def mode(self) -> str:
        return self._core.options.verifier.mode

    @property
    def majority(self) -> int:
        return self._core.options.verifier.majority

    @property
    def threshold(self) -> float:
        return self._core.options.verifier.threshold

    def stats(self) -> Dict[str, Any]:
        """Engine counters: prompt tokens submitted / computed / cached, tokens generated, ..."""
        return self._core.engine_stats()

    @property
    def search_prefix_cache(self) -> bool:
        """Whether ``genprm.search`` functions scoring with this GenPRM reuse the verifications of
        earlier iterations (each beam's steps so far are passed as ``prior``, so every step is
        verified once and keeps its reward). Default True; set False to re-verify whole partial
        solutions every iteration."""
        return self._core.search_prefix_cache

    @search_prefix_cache.setter
    def search_prefix_cache(self, on: bool) -> None:
        self._core.search_prefix_cache = bool(on)

    def verify(self, problem: str, steps: Sequence[str], id: Any = "",
               prior: Optional[VerificationResult] = None) -> VerificationResult:
        """Rewards for every step of one solution (problem text + list of step texts).

        ``prior``: an earlier result of this problem whose steps are the first steps of
        ``steps`` (e.g. ``verify(problem, steps[:t])``). Only the steps after it are verified: its
        steps and rewards are copied unchanged, its first paths' verification texts are the
        conversation history (the next prompt is the one a full run with those texts builds), and
        its executed code blocks are re-run (in their original order, outputs discarded) in a
        fresh sandbox session before the first new block. A prior of another problem, one whose
        steps are not a prefix of ``steps``, or one with an error raises ValueError."""
        rid, problem, steps = _row_fields({"id": id, "problem": problem, "steps": steps}, 0)
        return VerificationResult(self._core.verify(rid, problem, steps, _prior(prior, "verify")))

    def verify_many(self, rows: Iterable[Any], progress: bool = True,
                    on_result: Optional[Callable[[int, VerificationResult], None]] = None,
                    prior: Optional[Sequence[Optional[VerificationResult]]] = None
                    ) -> List[VerificationResult]:
        """Verifies many solutions with many in flight at once (their requests share the engine's
        batches). Rows: dicts with "problem", "steps" (and optionally "id"; other keys such as
        ProcessBench's "label" are ignored) or (problem, steps) pairs. ``on_result(index, result)``
        runs as each solution finishes. Results are returned in input order.

        ``prior``: one entry per row, a VerificationResult of a prefix of that row's steps or
        None (see ``verify``); every prior is checked before any row starts."""
        items = [_row_fields(r, i) for i, r in enumerate(rows)]
        priors: List[Any] = []
        if prior is not None:
            prior = list(prior)
            if len(prior) != len(items):
                raise ValueError(f"verify_many: {len(prior)} priors for {len(items)} rows")
            priors = [_prior(p, f"verify_many row {i}") for i, p in enumerate(prior)]
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(items), desc="verify", unit="solution")

        def done(i: int, r: Any) -> None:
            if bar is not None:
                bar.update(1)
            if on_result is not None:
                on_result(i, VerificationResult(r))

        try:
            results = self._core.verify_many(items, done, priors)
        finally:
            if bar is not None:
                bar.close()
        return [VerificationResult(r) for r in results]

    def __repr__(self) -> str:
        o = self._core.options
        return (f"GenPRM({self.model_dir!r}, device={o.device!r}, dtype={o.dtype!r}, "
                f"majority={self.majority}, mode={self.mode!r})")
