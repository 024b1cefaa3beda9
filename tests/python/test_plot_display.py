"""genprm.plot (headless matplotlib figures) and genprm.display (Jupyter HTML) on results of the
shapes genprm gives: verification dicts, Best-of-N curves, RPE results, search results."""
import io
import pickle

import pytest

import genprm
from genprm import display

VERIFIED = [  # verification results as genprm verify writes them (only what the plots read)
    {"id": "a", "value": [0.9, 0.8, 0.1], "label": 2},
    {"id": "b", "value": [0.95, 0.9], "label": -1},
    {"id": "c", "value": [0.2, 0.3, 0.4, 0.9], "label": 0},
]


def _png(fig):
    """The figure rendered to PNG, decoded: (bytes, pixel array)."""
    pytest.importorskip("matplotlib")
    import matplotlib.image
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(io.BytesIO(data))
    return data, pixels


def _not_blank(pixels):
    """More than one colour: something was drawn, not an empty canvas."""
    flat = pixels.reshape(-1, pixels.shape[-1])
    return len({tuple(p) for p in flat[:: max(1, len(flat) // 5000)]}) > 8


def _rpe_result(early=False):
    steps = []
    mc_prev = 0.5
    for t, (k, c, lab) in enumerate([(8, 6, 1), (16, 1, 0), (0, 0, 0)], 1):
        mc = c / k if k else 0.0
        steps.append({"step": t, "k": k, "correct": c, "rollout": t < 3, "estimated": True, "mc_raw": mc,
                      "rounds": 1 if k <= 8 else 2, "early": early and t == 1, "mc": mc, "mc_prev": mc_prev,
                      "propagated": False, "progress": mc / mc_prev if mc_prev else None, "label": lab,
                      "hard_label": int(mc > 0), "difference": mc - mc_prev, "difference_label": int(mc >= mc_prev)})
        mc_prev = mc
    return {"id": "p1", "mc_first": 0.5, "k_first": 16, "correct_first": 8, "first_requests": 1,
            "first_early": early, "k": 16, "epsilon": 0.8, "steps": steps, "labels": [1, 0, 0],
            "hard_labels": [1, 1, 0], "mc": [0.75, 0.0625, 0.0], "requests": 3, "rollouts": 40, "error": ""}


def test_heatmap_distribution_and_rpe_render_headless():
    gp = pytest.importorskip("genprm.plot", exc_type=ImportError)
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    for fig in (gp.reward_heatmap(VERIFIED), gp.reward_distribution(VERIFIED),
                gp.rpe_steps(_rpe_result(early=True))):
        data, pixels = _png(fig)
        assert len(data) > 2000 and _not_blank(pixels)
    assert plt.get_fignums() == before  # built without pyplot: nothing piles up in its state


def test_heatmap_marks_the_labelled_and_predicted_steps():
    gp = pytest.importorskip("genprm.plot", exc_type=ImportError)
    from matplotlib.patches import Rectangle
    fig = gp.reward_heatmap(VERIFIED, labels=[1, None, 0], max_rows=3)
    ax = fig.axes[0]
    frames = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert sorted((round(p.get_x() + 0.5), round(p.get_y() + 0.5)) for p in frames) == [(0, 2), (1, 0)]
    dots = sorted((int(x), int(y)) for line in ax.lines for x, y in zip(line.get_xdata(), line.get_ydata()))
    assert dots == [(0, 2), (2, 0)]  # first reward below 0.5: step 3 of a, step 1 of c; b none
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert len(gp.reward_heatmap(VERIFIED, max_rows=2).axes[0].get_yticklabels()) == 2


def test_distribution_splits_right_and_wrong_steps_by_label():
    gp = pytest.importorskip("genprm.plot", exc_type=ImportError)
    fig = gp.reward_distribution(VERIFIED, bins=10)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    # right: a's first two, all of b; wrong: a's step 3 and c's step 1; c's later steps unlabelled
    assert texts == ["right steps (4)", "wrong steps (2)"]


def test_best_of_n_curve_from_eval():
    gp = pytest.importorskip("genprm.plot", exc_type=ImportError)
    rows = [{"id": str(i), "ground_truth": "2",
             "candidates": [{"answer": a, "value": [r]} for a, r in zip(("2", "3", "3", "2"), (0.9, 0.2, 0.3, 0.8))]}
            for i in range(3)]
    curves = genprm.eval.best_of_n(rows)
    fig = gp.best_of_n(curves)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "majority vote" and labels[-1] == "pass@N (oracle)" and len(labels) == 4
    assert list(ax.lines[0].get_xdata()) == [1, 2, 4]
    _, pixels = _png(fig)
    assert _not_blank(pixels)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        gp.best_of_n(curves, methods=["nope"])


def test_plot_input_errors_name_the_argument():
    gp = pytest.importorskip("genprm.plot", exc_type=ImportError)
    with pytest.raises(ValueError, match=r"results\[1\]: no 'value'"):
        gp.reward_heatmap([{"value": [1.0]}, {"id": "x"}])
    with pytest.raises(ValueError, match="labels: 1 labels for 3 results"):
        gp.reward_heatmap(VERIFIED, labels=[0])
    with pytest.raises(ValueError, match=r"labels\[0\] must be an integer"):
        gp.reward_distribution(VERIFIED, labels=["2", 0, 0])
    with pytest.raises(ValueError, match="no result has a 'label'"):
        gp.reward_distribution([{"value": [0.5]}])
    with pytest.raises(ValueError, match="max_rows"):
        gp.reward_heatmap(VERIFIED, max_rows=0)
    with pytest.raises(ValueError, match="is empty"):
        gp.reward_heatmap([])
    with pytest.raises(ValueError, match="RPE result"):
        gp.rpe_steps({"value": [1]})
    with pytest.raises(ValueError, match="the labelling failed: boom"):
        gp.rpe_steps({**_rpe_result(), "error": "boom"})


def test_verification_html_escapes_and_collapses_rationales():
    d = {"id": "r<1>", "problem": "What is 2+2?", "threshold": 0.5, "first_wrong_step": 1, "error": "",
         "value": [0.9, 0.1],
         "steps": [{"step": 0, "reward": 0.9, "paragraph": "2 + 2 = 4",
                    "paths": [{"reward": 0.9, "judgement": "Yes", "text": "<analyze>fine</analyze>",
                               "code": [{"code": "print(2 + 2)", "output": "4", "executed": True}]}]},
                   {"step": 1, "reward": 0.1, "paragraph": "so 5", "paths": []}]}
    page = genprm.VerificationResult(d)._repr_html_()
    assert "r&lt;1&gt;" in page and "<details>" in page and "print(2 + 2)" in page
    assert "&lt;analyze&gt;fine" in page and "<analyze>" not in page  # model text is escaped
    assert page.count("✓") == 1 and page.count("✗") == 1
    assert display.reward_color(0.0) != display.reward_color(1.0) != display.reward_color(None)
    with pytest.raises(ValueError, match="verification result"):
        display.verification_html({"value": []})


def test_search_and_rpe_results_render_and_stay_plain_dicts():
    beam = display.SearchResult({"id": "q", "problem": "p", "answer": "4", "prediction": "4", "correct": True,
                                 "best": {"score": 0.8, "answer": "4", "steps": ["s1", "s2"], "rewards": [0.9, 0.8]},
                                 "finished": [{"score": 0.3, "answer": "5", "steps": ["t1"], "rewards": [0.3]}]})
    page = beam._repr_html_()
    assert "best beam" in page and "1 finished beams" in page and "✓" in page
    bon = display.search_html({"candidates": [{"answer": "4", "steps": ["x"], "value": [0.7]}],
                               "picks": {"majority": {"index": 0, "answer": "4", "correct": True}}})
    assert "majority" in bon and "candidate 0" in bon
    turns = display.search_html({"turns": [{"score": 0.2, "answer": "5", "steps": ["a"], "rewards": [0.2],
                                            "critiques": ["wrong"], "feedback": "fix step 1"}]})
    assert "turn 1" in turns and "fix step 1" in turns
    with pytest.raises(ValueError, match="not a beam search"):
        display.search_html({"id": 1})
    rpe = display.RPEResult(_rpe_result(early=True))
    page = rpe._repr_html_()
    assert "stopped early" in page and "6/8" in page and "1/16 in 2 rounds" in page and "(early)" in page
    # a plain dict for everything else: equality, JSON, pickling keep working
    import json
    assert rpe == _rpe_result(early=True) and json.loads(json.dumps(rpe)) == _rpe_result(early=True)
    back = pickle.loads(pickle.dumps(rpe))
    assert type(back) is display.RPEResult and back == rpe


def test_plot_is_loaded_on_first_use_only():
    import subprocess
    import sys
    code = ("import sys, genprm\nassert 'genprm.plot' not in sys.modules and 'matplotlib' not in sys.modules\n"
            "genprm.plot\nassert 'genprm.plot' in sys.modules\n")
    pytest.importorskip("matplotlib")
    subprocess.run([sys.executable, "-c", code], check=True)
