"""genprm.search and genprm.eval.best_of_n: selection rules, and beam search / refinement end to end
over a random tiny policy (the R1-Distill vocabulary) with a Python-callable scorer and with GenPRM."""
import math

import numpy as np
import pytest

import genprm
from genprm import search

PROBLEM = "What is 1+1?"
DELIMS = ["\n\n", " the"]  # a random model rarely writes blank lines: " the" makes steps end early too


@pytest.fixture(scope="module")
def policy_dir(tiny_r1_checkpoint):
    return tiny_r1_checkpoint("search_policy", 3)


def length_scorer(log):
    """Deterministic reward: (characters of the step mod 7) / 7; records every batch."""
    def score(problem, solutions):
        assert problem == PROBLEM
        log.append([list(s) for s in solutions])
        return [[(len(step) % 7) / 7 for step in s] for s in solutions]
    return score


# --- scores and votes -------------------------------------------------------------------------

def test_aggregate_and_best_of_n():
    r = [0.9, 0.4, 0.8]
    assert search.aggregate(r, how="last") == pytest.approx(0.8)
    assert search.aggregate(r, how="min") == pytest.approx(0.4)
    assert search.aggregate(r, how="avg") == pytest.approx(0.7)
    assert search.aggregate(r, how="prod") == pytest.approx(0.288)
    assert search.aggregate([], how="prod") == 0.0
    with pytest.raises(ValueError, match="how"):
        search.aggregate(r, how="median")
    b = search.best_of_n([[0.9, 0.2], {"value": [0.6, 0.7]}, [0.6, 0.9]], how="min")
    assert b["index"] == 1 and b["score"] == pytest.approx(0.6)  # tie with index 2: lower index
    np.testing.assert_allclose(b["scores"], [0.2, 0.6, 0.6])
    with pytest.raises(ValueError, match="candidates"):
        search.best_of_n([])
    with pytest.raises(ValueError, match=r"candidates\[0\]"):
        search.best_of_n(["0.5"])


def test_votes_group_equivalent_answers():
    m = search.majority_vote(["3", "1/2", "\\frac{1}{2}", None, "0.5"])
    assert m["answer"] == "1/2" and m["index"] == 1 and m["weight"] == 3
    assert m["groups"] == [[0], [1, 2, 4]] and m["group_of"] == [0, 1, 1, -1, 1]
    assert search.majority_vote([None, "7"])["answer"] == "7"
    assert search.majority_vote([None, " "])["answer"] is None
    w = search.weighted_vote(["1/2", "3", "0.5"], [0.2, 0.9, 0.3])
    assert w["answer"] == "3" and w["weight"] == pytest.approx(0.9)
    w = search.weighted_vote(["1/2", "3", "0.5"], [0.4, 0.7, 0.4])
    assert w["answer"] == "1/2" and w["weight"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="scores"):
        search.weighted_vote(["1", "2"], [0.5])
    with pytest.raises(ValueError, match="answers"):
        search.majority_vote("12")
    with pytest.raises(ValueError, match=r"answers\[1\]"):
        search.majority_vote(["1", 2])


def test_eval_best_of_n_curves():
    rows = [
        {"id": "A", "ground_truth": "1/2", "candidates": [
            {"answer": "\\frac{1}{2}", "value": [0.9, 0.2]},
            {"text": "so the answer is $1/3$", "value": [0.6, 0.6]},
            {"steps": ["x", "thus \\boxed{\\dfrac12}"], "value": [0.3, 0.95]},
            {"answer": None, "value": [0.1]}]},
        {"id": "B", "ground_truth": "3", "candidates": [
            {"answer": "4", "value": [0.8]}, {"answer": "3", "value": [0.7]},
            {"answer": "3.0", "value": [0.4]}, {"answer": "4", "value": [0.2]}]},
    ]
    out = genprm.eval.best_of_n(rows)
    assert out["sizes"] == [1, 2, 4] and out["problems"] == 2
    acc = out["accuracy"]
    np.testing.assert_allclose(acc["bon_last"], [50, 0, 50])
    np.testing.assert_allclose(acc["bon_min"], [50, 0, 0])
    np.testing.assert_allclose(acc["bon_avg"], [50, 0, 50])
    np.testing.assert_allclose(acc["bon_prod"], [50, 0, 0])
    np.testing.assert_allclose(acc["majority"], [50, 50, 50])
    np.testing.assert_allclose(acc["weighted_last"], [50, 0, 100])
    np.testing.assert_allclose(acc["weighted_min"], [50, 0, 50])
    np.testing.assert_allclose(acc["pass"], [50, 100, 100])
    assert out["hits"]["pass"].tolist() == [1, 2, 2]
    assert genprm.eval.best_of_n(rows, sizes=[3])["accuracy"]["bon_last"].tolist() == [50.0]
    with pytest.raises(ValueError, match="'A'.*fewer than size 5"):
        genprm.eval.best_of_n(rows, sizes=[5])
    with pytest.raises(ValueError, match="row 0"):
        genprm.eval.best_of_n([{"id": "x", "candidates": []}])
    with pytest.raises(ValueError, match="candidate 0"):
        genprm.eval.best_of_n([{"ground_truth": "1", "candidates": [{"value": [1.0]}]}])


# --- beam search end to end -------------------------------------------------------------------

def run_beam(policy_dir, log, seed=0, **kw):
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    opts = dict(beams=4, width=2, max_steps=3, max_step_tokens=8, seed=seed, step_delimiters=DELIMS)
    opts.update(kw)
    return engine, search.beam_search(engine, length_scorer(log), PROBLEM, **opts)


def test_beam_search_with_callable_scorer(policy_dir):
    log = []
    engine, r = run_beam(policy_dir, log)
    its = r["iterations"]
    assert 1 <= len(its) <= 3
    # iteration 1: one request of n = 4; later: one request of n = 2 per kept beam
    assert its[0]["requests"] == 1 and len(its[0]["candidates"]) == 4
    for prev, it in zip(its, its[1:]):
        kept = [c for c, s in zip(prev["candidates"], prev["status"]) if s == "kept"]
        kept.sort(key=lambda c: (-c["score"], c["order"]))  # kept beams are expanded in rank order
        assert it["requests"] == len(kept) <= 2
        assert len(it["candidates"]) == 2 * len(kept)
        for j, c in enumerate(it["candidates"]):  # candidate order: parent rank, then sample
            assert c["parent"] == j // 2
            assert c["steps"][:-1] == kept[j // 2]["steps"]
    assert r["requests"] == sum(it["requests"] for it in its)
    assert engine.stats()["requests_submitted"] == r["requests"]
    # the scorer saw every candidate once per iteration, and its rewards were used
    assert len(log) == len(its)
    for batch, it in zip(log, its):
        assert batch == [c["steps"] for c in it["candidates"]]
        for c in it["candidates"]:
            assert c["rewards"] == pytest.approx([(len(s) % 7) / 7 for s in c["steps"]])
            assert c["score"] == pytest.approx(c["rewards"][-1])  # aggregation "last"
    # pruning: the kept ones are the top 2 unfinished by score, ties to the lower order
    for it in its:
        open_ = [(-c["score"], c["order"]) for c, s in zip(it["candidates"], it["status"]) if s != "finished"]
        kept = sorted((-c["score"], c["order"]) for c, s in zip(it["candidates"], it["status"]) if s == "kept")
        assert kept == sorted(open_)[:2]
    # the winner is the best finished beam, finished beams all have reasons
    fin = r["finished"]
    assert fin and all(b["finish_reason"] in ("eos", "answer", "budget", "max_steps") for b in fin)
    best = max(range(len(fin)), key=lambda i: (fin[i]["score"], -i))
    assert r["best"] == fin[best]
    assert r["best"]["text"] == "\n\n".join(r["best"]["steps"])
    # KV sharing: the M samples of a beam fork its prefill, extended beams hit the radix cache
    s = engine.stats()
    assert s["prompt_tokens_cached"] > 0
    assert s["prompt_tokens_computed"] < s["prompt_tokens_submitted"]
    assert r["cached_prompt_tokens"] == s["prompt_tokens_cached"]


def test_beam_search_is_deterministic_with_a_seed(policy_dir):
    _, a = run_beam(policy_dir, [], seed=5)
    _, b = run_beam(policy_dir, [], seed=5)
    _, c = run_beam(policy_dir, [], seed=6)
    assert a["best"] == b["best"] and a["iterations"] == b["iterations"]
    texts = lambda r: [c["steps"] for it in r["iterations"] for c in it["candidates"]]  # noqa: E731
    assert texts(a) != texts(c)


def test_beam_search_token_budget_and_errors(policy_dir):
    _, r = run_beam(policy_dir, [], beams=2, width=2, max_steps=5, max_total_tokens=3, max_step_tokens=2,
                    step_delimiters=["\n\n\n\n"])
    assert len(r["iterations"]) == 2  # 2 tokens, then 4 >= 3: budget
    assert all(b["finish_reason"] in ("budget", "eos", "answer") for b in r["finished"])
    assert r["best"]["tokens"] <= 4
    engine = genprm.Engine(policy_dir, kv_blocks=256)
    scorer = length_scorer([])
    with pytest.raises(ValueError, match="divisible by width"):
        search.beam_search(engine, scorer, PROBLEM, beams=3, width=2)
    with pytest.raises(ValueError, match="aggregation"):
        search.beam_search(engine, scorer, PROBLEM, aggregation="median")
    with pytest.raises(ValueError, match="scorer"):
        search.beam_search(engine, object(), PROBLEM)
    with pytest.raises(ValueError, match="policy"):
        search.beam_search("not an engine", scorer, PROBLEM)
    with pytest.raises(ValueError, match="scorer: entry 0 has 2 rewards for 1 steps"):
        search.beam_search(engine, lambda p, sols: [[0.5, 0.5] for _ in sols], PROBLEM, max_step_tokens=2)
    with pytest.raises(ZeroDivisionError):  # the scorer's own exception comes through
        search.beam_search(engine, lambda p, sols: [[1 / 0] for _ in sols], PROBLEM, max_step_tokens=2)


def test_beam_search_with_genprm(policy_dir, tiny_r1_checkpoint):
    prm = genprm.GenPRM(tiny_r1_checkpoint("search_prm", 4), mode="direct", max_tokens=6, fallback_tokens=4)
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    r = search.beam_search(engine, prm, PROBLEM, beams=2, width=2, max_steps=2, max_step_tokens=6, seed=1,
                           step_delimiters=DELIMS)
    for it in r["iterations"]:
        for c in it["candidates"]:
            assert len(c["rewards"]) == len(c["steps"])
            assert all(0.0 <= x <= 1.0 for x in c["rewards"])
            assert len(c["critiques"]) == len(c["steps"])
    assert r["best"] in r["finished"]
    # the GenPRM verified each candidate's steps: one solution per candidate per iteration
    n_cands = sum(len(it["candidates"]) for it in r["iterations"])
    assert prm.stats()["requests_submitted"] >= n_cands


# --- critic refinement ------------------------------------------------------------------------

def test_refine_feeds_critiques_back(policy_dir):
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    seen = []

    def critic(problem, solutions):
        seen.append(solutions)
        return [{"rewards": [0.0] + [1.0] * (len(s) - 1), "critiques": [f"step {k} is off" for k in range(len(s))]}
                for s in solutions]
    r = search.refine(engine, critic, PROBLEM, max_turns=2, max_tokens=10, seed=0,
                      render=lambda u: "<|User|>" + u + "<|Assistant|>")
    assert len(r["turns"]) == 3 and not r["all_correct"]
    assert r["requests"] == 3 and len(seen) == sum(1 for t in r["turns"] if t["steps"])
    t0, t1 = r["turns"][0], r["turns"][1]
    assert t0["incorrect"] == [0] if t0["steps"] else t0["feedback"] == "No solution was written."
    if t0["steps"]:
        assert t0["feedback"] == "Paragraph 1: step 0 is off"
    assert t1["prompt"].startswith("<|User|>" + PROBLEM) and t0["feedback"] in t1["prompt"]
    assert r["final"] == r["turns"][-1] and r["final"]["feedback"] == ""

    def happy(problem, solutions):
        return [[1.0] * len(s) for s in solutions]
    one = search.refine(engine, happy, PROBLEM, max_turns=3, max_tokens=10, seed=0,
                        initial="1 plus 1\n\nis \\boxed{2}")
    assert len(one["turns"]) == 1 and one["all_correct"] and one["requests"] == 0
    assert one["final"]["answer"] == "2" and one["final"]["steps"] == ["1 plus 1", "is \\boxed{2}"]
    assert math.isclose(one["final"]["score"], 1.0)
