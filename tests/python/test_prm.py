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
    with pytest.raises(ValueError, match="option 'round_limit' has the wrong type"):
        genprm.GenPRM(model_dir, round_limit="many")
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


def test_verify_with_prior_generates_only_new_steps(prm):
    steps3 = STEPS + ["Hence 5 is correct."]
    prior = prm.verify(PROBLEM, steps3[:2], id="p")
    assert prior.problem == PROBLEM
    assert [s["paragraph"] for s in prior.steps] == steps3[:2]
    full = prm.verify(PROBLEM, steps3)
    grown = prm.verify(PROBLEM, steps3, id="g", prior=prior)
    assert grown.id == "g"
    assert grown.reused_steps == 2 and full.reused_steps == 0
    assert grown.value[:2] == prior.value  # copied, not re-sampled
    assert grown.steps[:2] == prior.steps
    assert len(grown.value) == 3 and 0.0 <= grown.value[2] <= 1.0
    # totals count only the new step's work
    assert grown.generated_tokens == sum(p["generated_tokens"] for p in grown.steps[2]["paths"])
    assert 0 < grown.generated_tokens < full.generated_tokens
    assert grown.steps[2]["paths"][0]["text"].startswith(
        "<analyze>\nLet's analyze the Paragraph 3 step by step: ")
    # the dict form works too; a full prior generates nothing
    same = prm.verify(PROBLEM, steps3[:2], prior=prior.to_dict())
    assert same.value == prior.value and same.generated_tokens == 0


def test_verify_prior_errors_and_verify_many(prm):
    prior = prm.verify(PROBLEM, STEPS[:1])
    with pytest.raises(ValueError, match="'x'.*another problem"):
        prm.verify("What is 2 + 4?", STEPS, id="x", prior=prior)
    with pytest.raises(ValueError, match="prefix"):
        prm.verify(PROBLEM, ["2 + 3 = 6.", STEPS[1]], prior=prior)
    with pytest.raises(ValueError, match="prior must be"):
        prm.verify(PROBLEM, STEPS, prior="nope")
    written = prior.to_dict()
    del written["problem"]
    with pytest.raises(ValueError, match="verification result: missing 'problem'"):
        prm.verify(PROBLEM, STEPS, prior=written)
    written = prior.to_dict()
    del written["steps"][0]["paragraph"]  # written before paragraphs were recorded
    with pytest.raises(ValueError, match="verification result step: missing 'paragraph'"):
        prm.verify(PROBLEM, STEPS, prior=genprm.VerificationResult.from_dict(written))
    with pytest.raises(ValueError, match="2 priors for 1 rows"):
        prm.verify_many([(PROBLEM, STEPS)], progress=False, prior=[prior, None])
    out = prm.verify_many([(PROBLEM, STEPS), ("1+1?", ["2."])], progress=False, prior=[prior, None])
    assert out[0].reused_steps == 1 and out[0].value[0] == prior.value[0]
    assert out[1].reused_steps == 0 and len(out[1].value) == 1
    assert prm.search_prefix_cache is True
    prm.search_prefix_cache = False
    assert prm.search_prefix_cache is False
    prm.search_prefix_cache = True


def test_beam_search_with_genprm_verifies_each_step_once(prm, model_dir):
    policy = genprm.Engine(model_dir, kv_blocks=1024)

    def run(cache):
        prm.search_prefix_cache = cache
        before = prm.stats()["generated_tokens"]
        res = genprm.search.beam_search(policy, prm, PROBLEM, beams=2, width=1, max_steps=3, max_step_tokens=4,
                                        seed=1)
        return res, prm.stats()["generated_tokens"] - before

    try:
        on, gen_on = run(True)
        off, gen_off = run(False)
    finally:
        prm.search_prefix_cache = True
    assert len(on["iterations"]) >= 2
    # N = M * kept: both searches extend the same beams with the same steps
    assert [[c["steps"] for c in it["candidates"]] for it in on["iterations"]] == \
        [[c["steps"] for c in it["candidates"]] for it in off["iterations"]]
    # with the cache a kept beam's earlier rewards do not change from one iteration to the next
    for prev, cur in zip(on["iterations"], on["iterations"][1:]):
        kept = {tuple(c["steps"]): c["rewards"] for c, s in zip(prev["candidates"], prev["status"]) if s == "kept"}
        for c in cur["candidates"]:
            assert c["rewards"][:-1] == kept[tuple(c["steps"][:-1])]
    assert gen_on < gen_off


def test_reward_reference_and_sequential_paths_options(model_dir):
    exact = genprm.GenPRM(model_dir, majority=2, mode="direct", **SMALL)
    ref = genprm.GenPRM(model_dir, majority=2, mode="direct", reward="reference", sequential_paths=True, **SMALL)
    assert exact.options.verifier.reward == "exact" and ref.options.verifier.reward == "reference"
    assert ref.options.verifier.sequential_paths
    r = ref.verify(PROBLEM, STEPS[:2])
    for step in r.to_dict()["steps"]:
        assert "reward_note" in step and all("reward_note" in p for p in step["paths"])
        for p in step["paths"]:  # no Yes/No match in a random model's text: 0.5, as the reference
            assert p["reward"] == 0.5 or p["judgement"].lower() in ("yes", "no")
    with pytest.raises(ValueError, match="reward"):
        genprm.GenPRM(model_dir, reward="approximate")
