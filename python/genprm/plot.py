"""Pictures of PRM runs (needs matplotlib, an optional dependency imported only here).

    import genprm.plot as gp
    gp.reward_heatmap(results, labels=[r["label"] for r in rows])   # solutions x steps
    gp.reward_distribution(results, labels=...)                      # right vs wrong steps
    gp.best_of_n(genprm.eval.best_of_n(rows))                        # accuracy against N
    gp.rpe_steps(genprm.rpe.label_steps(...))                        # MC per step, labels
    fig.savefig("heatmap.png")

Every function returns the matplotlib ``Figure``. Figures are built with
``matplotlib.figure.Figure`` directly, never through pyplot, so they work headless (no display,
no backend to choose) and do not pile up in pyplot's state; in Jupyter a returned figure is shown
once. ``ax=`` draws into an existing Axes instead (its figure is returned).

Inputs are what genprm gives: verification results (``GenPRM.verify`` / ``verify_many``, their
``to_dict()``, or rows of ``genprm verify``'s output: anything with ``value``, the step rewards),
ProcessBench labels (index of the first wrong step, -1 when all are right; a row's own ``label``
is used when ``labels`` is not given), ``genprm.eval.best_of_n``'s curves and RPE result dicts.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

from . import _core

__all__ = ["reward_heatmap", "reward_distribution", "best_of_n", "rpe_steps"]

_THRESHOLD = _core.VerifierConfig().threshold


def _show_in_ipython(figure_class: Any) -> None:
    """In IPython / Jupyter, a Figure built without pyplot has no display formatter until pyplot's
    inline backend registers one; register the PNG one (as IPython's own pylab tools do) so a
    returned figure shows, once, whatever backend is active. Outside IPython nothing happens."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return
    png = ip.display_formatter.formatters["image/png"]
    if figure_class in png.type_printers:
        return
    from IPython.core.pylabtools import print_figure
    png.for_type(figure_class, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def _figure(ax: Any, size: Tuple[float, float]):
    """(figure, axes): a new headless Figure with one Axes, or ax's."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("genprm.plot needs matplotlib: pip install matplotlib") from e
    _show_in_ipython(Figure)
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _as_dict(result: Any, index: int, what: str) -> Mapping[str, Any]:
    if isinstance(result, Mapping):
        return result
    data = getattr(result, "_data", None)  # genprm.VerificationResult
    if isinstance(data, Mapping):
        return data
    if hasattr(result, "to_dict"):
        return result.to_dict()
    raise ValueError(f"{what}[{index}]: expected a verification result or a dict with 'value', "
                     f"got {type(result).__name__}")


def _rewards(results: Sequence[Any], what: str = "results") -> Tuple[List[str], List[List[float]], List[Mapping]]:
    if isinstance(results, (str, bytes)) or not isinstance(results, Sequence):
        if isinstance(results, Mapping) or hasattr(results, "_data"):
            results = [results]
        else:
            results = list(results)
    ids, values, dicts = [], [], []
    for i, r in enumerate(results):
        d = _as_dict(r, i, what)
        v = d.get("value")
        if v is None:
            raise ValueError(f"{what}[{i}]: no 'value' (the step rewards)")
        values.append([float(x) for x in v])
        ids.append(str(d.get("id", i)))
        dicts.append(d)
    if not values:
        raise ValueError(f"{what} is empty")
    return ids, values, dicts


def _labels(labels: Optional[Sequence[Any]], dicts: Sequence[Mapping], required: bool) -> List[Optional[int]]:
    """First-wrong-step labels: the given list, else each row's own 'label' (None when absent)."""
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(dicts):
            raise ValueError(f"labels: {len(labels)} labels for {len(dicts)} results")
        out = []
        for i, lab in enumerate(labels):
            if lab is not None and (isinstance(lab, bool) or not isinstance(lab, (int, float)) or int(lab) != lab):
                raise ValueError(f"labels[{i}] must be an integer step index (-1: no wrong step), got {lab!r}")
            out.append(None if lab is None else int(lab))
        return out
    out = [int(d["label"]) if isinstance(d.get("label"), (int, float)) else None for d in dicts]
    if required and all(x is None for x in out):
        raise ValueError("labels: none given and no result has a 'label' (index of the first wrong step, -1: none)")
    return out


def reward_heatmap(results: Sequence[Any], *, labels: Optional[Sequence[Optional[int]]] = None,
                   threshold: float = _THRESHOLD, ax: Any = None, title: Optional[str] = None,
                   max_rows: Optional[int] = None):
    """Per-step rewards of many verified solutions: rows = solutions (their ids on the left),
    columns = steps, colour = reward (red 0 .. green 1; blank where a solution has no such step).
    The labelled first wrong step (``labels``, else each row's ``label``; -1 / None: none) is
    framed in black; the predicted one (first reward < ``threshold``) is dotted.
    ``max_rows``: only the first that many solutions."""
    ids, values, dicts = _rewards(results)
    labs = _labels(labels, dicts, required=False)
    if max_rows is not None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
        ids, values, labs = ids[:max_rows], values[:max_rows], labs[:max_rows]
    import numpy as np
    from matplotlib.patches import Rectangle
    cols = max(1, max(len(v) for v in values))
    grid = np.full((len(values), cols), np.nan)
    for i, v in enumerate(values):
        grid[i, :len(v)] = v
    longest = max(len(i) for i in ids)  # room for the ids on the left and the caption below
    fig, ax = _figure(ax, (max(5.0, 1.8 + 0.075 * longest + 0.55 * cols), 1.3 + 0.32 * len(values)))
    im = ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    for i, (v, lab) in enumerate(zip(values, labs)):
        if lab is not None and 0 <= lab < len(v):
            ax.add_patch(Rectangle((lab - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.2))
        pred = next((t for t, x in enumerate(v) if x < threshold), -1)
        if pred >= 0:
            ax.plot([pred], [i], marker="o", markersize=4, color="black", linestyle="none")
    ax.set_xticks(range(cols), [str(t + 1) for t in range(cols)])
    ax.set_yticks(range(len(ids)), ids)
    ax.set_xlabel(f"step\n(frame: labelled first wrong step; dot: first reward < {threshold:g})", fontsize=8)
    ax.set_title(title or f"step rewards of {len(values)} solutions", fontsize=9)
    fig.colorbar(im, ax=ax, label="reward", shrink=0.8)
    return fig


def _step_classes(values: Sequence[Sequence[float]], labs: Sequence[Optional[int]]) -> Tuple[List[float], List[float]]:
    """Rewards of right steps (before the labelled first wrong step, or all when -1) and of the
    labelled wrong steps; steps after the first wrong one carry no label and are left out."""
    right, wrong = [], []
    for v, lab in zip(values, labs):
        if lab is None:
            continue
        if lab < 0:
            right += v
        elif lab < len(v):
            right += v[:lab]
            wrong.append(v[lab])
    return right, wrong


def reward_distribution(results: Sequence[Any], *, labels: Optional[Sequence[Optional[int]]] = None,
                        bins: int = 20, ax: Any = None, title: Optional[str] = None):
    """Histogram of the rewards of right steps against those of wrong steps (by the ProcessBench
    labels: steps before the first wrong one are right, that one is wrong, later ones are left
    out). Raises ValueError when no result has a label."""
    _, values, dicts = _rewards(results)
    labs = _labels(labels, dicts, required=True)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    right, wrong = _step_classes(values, labs)
    fig, ax = _figure(ax, (5.0, 3.2))
    edges = [i / bins for i in range(bins + 1)]
    if right:
        ax.hist(right, bins=edges, alpha=0.65, color="tab:green", label=f"right steps ({len(right)})")
    if wrong:
        ax.hist(wrong, bins=edges, alpha=0.65, color="tab:red", label=f"wrong steps ({len(wrong)})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("step reward")
    ax.set_ylabel("steps")
    ax.legend(fontsize=8)
    ax.set_title(title or "reward of right vs wrong steps", fontsize=9)
    return fig


_METHOD_STYLE = {"majority": ("majority vote", "tab:blue", "s"), "pass": ("pass@N (oracle)", "gray", "^")}
_OTHER_COLORS = ["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]


def _method_style(method: str, index: int) -> Tuple[str, str, str]:
    """(legend name, colour, marker) of a curve: bon_min -> "Best-of-N (PRM min)",
    weighted_min -> "PRM-weighted vote (min)"; colours never repeat majority's or pass@N's."""
    if method in _METHOD_STYLE:
        return _METHOD_STYLE[method]
    kind, _, agg = method.partition("_")
    name = {"bon": f"Best-of-N (PRM {agg})", "weighted": f"PRM-weighted vote ({agg})"}.get(kind, method)
    return name, _OTHER_COLORS[index % len(_OTHER_COLORS)], "D" if kind == "weighted" else "o"


def best_of_n(curves: Mapping[str, Any], *, methods: Optional[Sequence[str]] = None, ax: Any = None,
              title: Optional[str] = None):
    """Accuracy against N from ``genprm.eval.best_of_n(rows)``: by default majority vote, the
    PRM-weighted vote and Best-of-N by PRM-min, and pass@N; ``methods`` picks others of
    ``curves["methods"]`` (bon_last, bon_min, bon_avg, bon_prod, weighted_*, majority, pass)."""
    if not isinstance(curves, Mapping) or "sizes" not in curves or "accuracy" not in curves:
        raise ValueError("curves must be genprm.eval.best_of_n's result (a dict with 'sizes' and 'accuracy')")
    known = list(curves.get("methods", curves["accuracy"].keys()))
    if methods is None:
        methods = [m for m in ("majority", "weighted_min", "bon_min", "pass") if m in known]
    for m in methods:
        if m not in curves["accuracy"]:
            raise ValueError(f"methods: unknown method {m!r} (known: {', '.join(known)})")
    sizes = [int(n) for n in curves["sizes"]]
    fig, ax = _figure(ax, (5.0, 3.4))
    others = 0
    for m in methods:
        name, color, marker = _method_style(m, others)
        others += m not in _METHOD_STYLE
        ax.plot(sizes, [float(a) for a in curves["accuracy"][m]], marker=marker, label=name, color=color,
                linestyle="--" if m == "pass" else "-")
    if len(sizes) > 1 and all(n > 0 for n in sizes):
        ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("N (samples per problem)")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title(title or f"Best-of-N over {curves.get('problems', '?')} problems", fontsize=9)
    return fig


def rpe_steps(result: Mapping[str, Any], *, ax: Any = None, title: Optional[str] = None):
    """One RPE result (``genprm.rpe.label_steps``): MC(s_t, a_t) per step as bars coloured by the
    RPE label (green 1, red 0; hatched: not estimated, after a zero), MC(s_1) at step 0, the
    threshold epsilon * MC(s_t) each step was compared with, and the rollouts each used (with
    adaptive Monte Carlo, fewer where the test stopped early)."""
    if not isinstance(result, Mapping) or "steps" not in result or "mc_first" not in result:
        raise ValueError("result must be an RPE result dict (genprm.rpe.label_steps / label_many)")
    if result.get("error"):
        raise ValueError(f"result: the labelling failed: {result['error']}")
    steps = result["steps"]
    eps = float(result.get("epsilon", _core.LabelerConfig().labels.epsilon))
    fig, ax = _figure(ax, (1.8 + 0.6 * (len(steps) + 1), 3.4))
    xs = list(range(1, len(steps) + 1))
    ax.bar([0], [result["mc_first"]], color="tab:gray", width=0.6)
    ax.text(0, result["mc_first"] + 0.02, f"k {result['k_first']}", ha="center", fontsize=7)
    for x, s in zip(xs, steps):
        color = "tab:green" if s["label"] else "tab:red"
        ax.bar([x], [s["mc"]], color=color, width=0.6, hatch=None if s["estimated"] else "//",
               alpha=1.0 if s["estimated"] else 0.4)
        if s["rollout"] and s["estimated"]:
            ax.text(x, s["mc"] + 0.02, f"k {s['k']}" + ("*" if s.get("early") else ""), ha="center", fontsize=7)
        elif not s["rollout"]:
            ax.text(x, s["mc"] + 0.02, "answer", ha="center", fontsize=7)
    thr = [eps * s["mc_prev"] for s in steps]
    ax.step([x - 0.5 for x in xs] + [xs[-1] + 0.5], thr + [thr[-1]], where="post", color="black",
            linestyle=":", label=f"epsilon x MC(s_t), epsilon {eps:g}")
    ax.set_xticks([0] + xs, ["MC(s_1)"] + [str(x) for x in xs])
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("step (* stopped early by the adaptive test)" if any(s.get("early") for s in steps) else "step")
    ax.set_ylabel("MC estimate")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title or f"RPE labels of {result.get('id') or 'a solution'}: {result['labels']}", fontsize=9)
    return fig
