"""genprm.GenPRM end to end on a random checkpoint whose vocabulary covers the R1-Distill
tokenizer (written at test time with genprm.testing)."""
import json

import pytest

import genprm

SMALL = dict(max_tokens=40, analyze_max_tokens=8, round_limit=1, max_fallbacks=1, seed=3)
PROBLEM = "What is 2 + 3?"
STEPS = ["2 + 3 = 5.", "So the answer is $\\boxed{5}$."]


@pytest.fixture(scope="module")
def model_dir(tiny_r1_checkpoint):
    return tiny_r1_checkpoint("genprm_random", seed=5)


@pytest.fixture(scope="module")
def prm(model_dir):
    return genprm.GenPRM(model_dir, majority=2, mode="full", **SMALL)


def test_verify_returns_step_rewards(prm):
    r = prm.verify(PROBLEM, STEPS, id="q1")
    assert r.id == "q1"
    assert len(r.value) == 2
    assert all(0.0 <= v <= 1.0 for v in r.value)
    assert r.first_wrong_step in (-1, 0, 1)
    assert r.first_wrong_step == next((i for i, v in enumerate(r.value) if v < 0.5), -1)
    assert r.correct == [v >= 0.5 for v in r.value]
    d = r.to_dict()
    json.dumps(d)  # JSON-serializable
    step = d["steps"][0]
    assert len(step["paths"]) == 2
    assert step["reward"] == pytest.approx(sum(p["reward"] for p in step["paths"]) / 2)
    for p in step["paths"]:
        assert p["text"].startswith("<analyze>\nLet's analyze the Paragraph 1 step by step: ")
        assert p["generated_tokens"] > 0
    assert "value=[" in repr(r)


def test_stats_show_prefix_reuse(prm):
    prm.verify(PROBLEM, STEPS)
    s = prm.stats()
    assert s["prompt_tokens_cached"] > 0
    assert s["prompt_tokens_computed"] < s["prompt_tokens_submitted"]


def test_verify_many_in_order_with_callback(prm):
    rows = [{"id": "a", "problem": PROBLEM, "steps": STEPS[:1], "label": -1},
            ("Is 9 prime?", ["No, 9 = 3 * 3."]),
            {"id": 7, "problem": "1+1?", "steps": ["1+1 = 2.", "Done."]}]
    seen = []
    out = prm.verify_many(rows, progress=False, on_result=lambda i, r: seen.append((i, r.id)))
    assert [r.id for r in out] == ["a", "1", "7"]
    assert sorted(seen) == [(0, "a"), (1, "1"), (2, "7")]
    assert [len(r.value) for r in out] == [1, 1, 2]


def test_dataframe(prm):
    pd = pytest.importorskip("pandas")
    r = prm.verify(PROBLEM, STEPS)
    df = r.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert list(df["step"]) == [1, 2]
    assert df["reward"].tolist() == pytest.approx(r.value)


def test_modes_and_errors(model_dir):
    cot = genprm.GenPRM(model_dir, majority=1, mode="cot", **SMALL)
    r = cot.verify(PROBLEM, STEPS[:1])
    assert "<verify>" not in r.steps[0]["paths"][0]["text"]
    direct = genprm.GenPRM(model_dir, mode="direct", **SMALL)
    r = direct.verify(PROBLEM, STEPS[:1])
    assert r.steps[0]["paths"][0]["text"].startswith("<output>\n**Judgement**: $\\boxed")
    assert not direct._core.sandbox_started
    with pytest.raises(ValueError, match="mode"):
        genprm.GenPRM(model_dir, mode="fast")
    with pytest.raises(ValueError, match="unknown option"):
        genprm.GenPRM(model_dir, temprature=0.1)
    with pytest.raises(ValueError, match="majority"):
        genprm.GenPRM(model_dir, majority=0)
    with pytest.raises(ValueError, match="nope"):
        genprm.GenPRM(model_dir + "/nope")
    with pytest.raises(ValueError, match="steps"):
        cot.verify(PROBLEM, "not a list")


def test_concurrent_threads_take_turns(prm):
    import threading
    out, errors = {}, []

    def work(k):
        try:
            out[k] = prm.verify(PROBLEM, STEPS[:1], id=f"t{k}")
        except Exception as e:  # pragma: no cover - a failure is reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.id for r in out.values()) == ["t0", "t1", "t2"]
    assert all(len(r.value) == 1 for r in out.values())
