"""Rich display in Jupyter: verification, search and RPE results as readable HTML.

``genprm.VerificationResult`` and the dicts that ``genprm.search`` and ``genprm.rpe`` return
(``SearchResult`` / ``RPEResult``, plain ``dict`` subclasses: JSON, pickling, equality and
indexing are a dict's) have ``_repr_html_``, so a notebook cell ending in one renders it: the
steps with their rewards coloured (red 0 .. green 1), each rationale collapsible (``<details>``)
with the Python the model wrote and the sandbox's output. The functions below give the same HTML
for any such dict (e.g. rows read back from a JSONL file). Progress bars of long runs use
``tqdm.auto``, which is the notebook widget in Jupyter when ipywidgets is installed.
"""
from __future__ import annotations

import html
import math
from typing import Any, Iterable, Mapping, Optional, Sequence

from . import _core

__all__ = ["verification_html", "search_html", "rpe_html", "SearchResult", "RPEResult", "reward_color"]

_THRESHOLD = _core.VerifierConfig().threshold
_STYLE = ("<style>.genprm td,.genprm th{padding:2px 6px;text-align:left;vertical-align:top}"
          ".genprm pre{white-space:pre-wrap;margin:2px 0;font-size:90%}"
          ".genprm .r{font-family:monospace;border-radius:3px;padding:0 4px}</style>")


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def reward_color(r: Optional[float]) -> str:
    """A background colour for a reward in [0, 1]: red at 0, yellow at 0.5, green at 1 (grey
    for None / NaN)."""
    if r is None or not isinstance(r, (int, float)) or math.isnan(r):
        return "#dddddd"
    r = min(1.0, max(0.0, float(r)))
    red = 230 if r < 0.5 else int(230 - (r - 0.5) * 2 * 130)
    green = int(120 + r * 2 * 90) if r < 0.5 else 210
    return f"rgb({red},{green},110)"


def _reward(r: Optional[float], digits: int = 3) -> str:
    text = "—" if r is None or (isinstance(r, float) and math.isnan(r)) else f"{r:.{digits}f}"
    return f'<span class="r" style="background:{reward_color(r)}">{text}</span>'


def _pre(text: Any) -> str:
    return f"<pre>{_e(text)}</pre>"


def _details(summary: str, body: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>{body}</details>"


def _code_blocks(blocks: Iterable[Mapping[str, Any]]) -> str:
    out = []
    for b in blocks:
        state = "" if b.get("executed", True) else " (not executed)"
        if b.get("timed_out"):
            state = " (timed out)"
        out.append(f"<div><b>code</b>{state}{_pre(b.get('code', ''))}<b>output</b>{_pre(b.get('output', ''))}</div>")
    return "".join(out)


def verification_html(result: Any) -> str:
    """HTML of one verification result (``VerificationResult`` or its dict): a table of the steps
    (paragraph, reward coloured, correct by the threshold), and per step its rationales, each
    collapsible with its reward, judgement, text, and the code it ran with the output."""
    d = getattr(result, "_data", result)
    if not isinstance(d, Mapping) or "steps" not in d:
        raise ValueError("result must be a verification result (or its to_dict())")
    thr = d.get("threshold", _THRESHOLD)
    head = (f"<b>verification</b> {_e(d.get('id'))}: first wrong step {_e(d.get('first_wrong_step'))}"
            f" (threshold {thr:g})")
    if d.get("error"):
        head += f' <span style="color:#b00">error: {_e(d["error"])}</span>'
    rows = []
    for s in d["steps"]:
        paths = []
        for k, p in enumerate(s.get("paths", [])):
            summary = f"rationale {k + 1}: {_reward(p.get('reward'))} judgement {_e(p.get('judgement'))}"
            paths.append(_details(summary, _pre(p.get("text", "")) + _code_blocks(p.get("code", []))))
        ok = s.get("reward", 0.0) >= thr
        rows.append(f"<tr><td>{_e(s.get('step'))}</td><td>{_reward(s.get('reward'))}</td>"
                    f"<td>{'✓' if ok else '✗'}</td><td>{_pre(s.get('paragraph', ''))}{''.join(paths)}</td></tr>")
    problem = _details("problem", _pre(d["problem"])) if d.get("problem") else ""
    return (f'{_STYLE}<div class="genprm">{head}{problem}<table><tr><th>step</th><th>reward</th><th></th>'
            f"<th>paragraph and rationales</th></tr>{''.join(rows)}</table></div>")


def _steps_table(steps: Sequence[str], rewards: Sequence[Optional[float]], critiques: Sequence[str] = ()) -> str:
    rows = []
    for i, s in enumerate(steps):
        r = rewards[i] if i < len(rewards) else None
        crit = _details("critique", _pre(critiques[i])) if i < len(critiques) and critiques[i] else ""
        rows.append(f"<tr><td>{i + 1}</td><td>{_reward(r)}</td><td>{_pre(s)}{crit}</td></tr>")
    return f"<table><tr><th>step</th><th>reward</th><th>text</th></tr>{''.join(rows)}</table>"


def _beam_row(i: int, b: Mapping[str, Any]) -> str:
    steps = b.get("steps", [])
    return (f"<tr><td>{i + 1}</td><td>{_reward(b.get('score'))}</td><td>{_e(b.get('answer'))}</td>"
            f"<td>{_details(f'{len(steps)} steps', _steps_table(steps, b.get('rewards', [])))}</td></tr>")


def _grade(correct: Any) -> str:
    return "" if correct is None else (" ✓" if correct else " ✗")


def search_html(result: Mapping[str, Any]) -> str:
    """HTML of a search result dict: beam search (the best beam's steps with their rewards, the
    other finished beams collapsible), Best-of-N (the picks by method, every candidate
    collapsible) or critic refinement (every turn with its critiques)."""
    if not isinstance(result, Mapping):
        raise ValueError("result must be a search result dict")
    d = result
    head = "<b>search</b>"
    if "id" in d:
        head += f" {_e(d.get('id'))}"
    if d.get("answer") is not None or d.get("prediction") is not None:
        head += f": prediction {_e(d.get('prediction'))}, ground truth {_e(d.get('answer'))}{_grade(d.get('correct'))}"
    if d.get("error"):
        head += f' <span style="color:#b00">error: {_e(d["error"])}</span>'
    problem = _details("problem", _pre(d["problem"])) if d.get("problem") else ""
    body = ""
    if "best" in d:  # beam search
        best = d["best"] or {}
        body += (f"<div>best beam: score {_reward(best.get('score'))}, answer {_e(best.get('answer'))}, "
                 f"{len(best.get('steps', []))} steps</div>")
        body += _steps_table(best.get("steps", []), best.get("rewards", []), best.get("critiques", []))
        others = [b for b in d.get("finished", []) if b != d["best"]]
        if others:
            rows = "".join(_beam_row(i, b) for i, b in enumerate(others))
            body += _details(f"{len(others)} finished beams",
                             f"<table><tr><th></th><th>score</th><th>answer</th><th>steps</th></tr>{rows}</table>")
    elif "candidates" in d:  # Best-of-N
        picks = d.get("picks") or {}
        if picks:
            rows = "".join(f"<tr><td>{_e(m)}</td><td>{_e(p.get('index'))}</td><td>{_e(p.get('answer'))}"
                           f"{_grade(p.get('correct'))}</td></tr>" for m, p in picks.items())
            body += f"<table><tr><th>method</th><th>candidate</th><th>answer</th></tr>{rows}</table>"
        cands = []
        for i, c in enumerate(d["candidates"]):
            rewards = c.get("value", c.get("rewards", []))
            summary = (f"candidate {i}: answer {_e(c.get('answer'))}, rewards "
                       + " ".join(_reward(r, 2) for r in rewards))
            cands.append(_details(summary, _steps_table(c.get("steps", []), rewards)))
        body += _details(f"{len(cands)} candidates", "".join(cands), open_=len(cands) <= 4)
    elif "turns" in d:  # refinement
        for i, t in enumerate(d["turns"]):
            summary = f"turn {i + 1}: score {_reward(t.get('score'))}, answer {_e(t.get('answer'))}"
            fb = _details("feedback given", _pre(t["feedback"])) if t.get("feedback") else ""
            body += _details(summary, _steps_table(t.get("steps", []), t.get("rewards", []), t.get("critiques", [])) + fb,
                             open_=i == len(d["turns"]) - 1)
    else:
        raise ValueError("result: not a beam search, Best-of-N or refinement result")
    return f'{_STYLE}<div class="genprm">{head}{problem}{body}</div>'


def rpe_html(result: Mapping[str, Any], steps: Optional[Sequence[str]] = None) -> str:
    """HTML of an RPE result dict: MC(s_1) and K, then per step MC(s_t, a_t) coloured, P_t, the
    RPE / hard labels, rollouts used (adaptive: rounds, and whether the test stopped it early);
    the step texts when given (``steps``) or kept in the result, the rollouts' texts collapsible
    when kept (``keep_rollouts``)."""
    if not isinstance(result, Mapping) or "steps" not in result or "mc_first" not in result:
        raise ValueError("result must be an RPE result dict (genprm.rpe.label_steps / label_many)")
    d = result
    head = (f"<b>RPE labels</b> {_e(d.get('id'))}: MC(s_1) {_reward(d['mc_first'])} from {_e(d.get('k_first'))} "
            f"rollouts{' (stopped early)' if d.get('first_early') else ''}, K {_e(d.get('k'))}, "
            f"epsilon {_e(d.get('epsilon'))}, rollouts {_e(d.get('rollouts'))}, labels {_e(d.get('labels'))}")
    if d.get("error"):
        head += f' <span style="color:#b00">error: {_e(d["error"])}</span>'
    texts = list(steps) if steps is not None else list(d.get("step_texts", []))
    rows = []
    for i, s in enumerate(d["steps"]):
        prog = s.get("progress")
        prog_text = "∞" if prog is None or (isinstance(prog, float) and math.isinf(prog)) else f"{prog:.3f}"
        used = ("answer" if not s.get("rollout", True) else
                f"{s.get('correct')}/{s.get('k')}" + (f" in {s.get('rounds')} rounds" if s.get("rounds", 1) > 1 else "")
                + (" (early)" if s.get("early") else ""))
        if not s.get("estimated", True):
            used = "after a zero"
        text = _pre(texts[i]) if i < len(texts) else ""
        if s.get("rollouts"):
            text += _details(f"{len(s['rollouts'])} rollouts", "".join(_pre(x) for x in s["rollouts"]))
        rows.append(f"<tr><td>{_e(s.get('step'))}</td><td>{_reward(s.get('mc'))}</td><td>{prog_text}</td>"
                    f"<td>{_e(s.get('label'))}</td><td>{_e(s.get('hard_label'))}</td><td>{_e(used)}</td>"
                    f"<td>{text}</td></tr>")
    return (f'{_STYLE}<div class="genprm">{head}<table><tr><th>step</th><th>MC</th><th>P_t</th><th>RPE</th>'
            f"<th>hard</th><th>right / rollouts</th><th>{'text' if texts else ''}</th></tr>{''.join(rows)}</table></div>")


class SearchResult(dict):
    """A search result: a plain dict (see genprm.search) that renders as HTML in Jupyter."""

    def _repr_html_(self) -> str:
        return search_html(self)

    def __reduce__(self):  # pickles (and copies) as a plain dict of the same class
        return (SearchResult, (dict(self),))


class RPEResult(dict):
    """An RPE result: a plain dict (see genprm.rpe) that renders as HTML in Jupyter."""

    def _repr_html_(self) -> str:
        return rpe_html(self)

    def __reduce__(self):
        return (RPEResult, (dict(self),))
