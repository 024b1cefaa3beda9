"""genprm.rpe end to end on a random tiny policy (R1-Distill tokenizer): shapes and ranges,
dynamic K, determinism with a seed, KV sharing visible in engine.stats(), the sampler, errors,
and `genprm label` resume. The exact MC / label values are tested in tests/cpp/rpe with a scripted
generator; the random model never reaches an answer, so only the last step's own answer (graded
without rollouts) is ever right here."""
import json
import math

import pytest

import genprm
from genprm import rpe

STEPS = ["Step 1: Let x be the number of apples Alice has at the start, so x = 2.",
         "Step 2: Three times that is 3x = 6 because 3 * 2 = 6.",
         "Step 3: So the answer is \\boxed{6}."]
PROBLEM = "Alice has 2 apples. What is three times that number?"


@pytest.fixture(scope="module")
def policy_dir(tiny_r1_checkpoint):
    return tiny_r1_checkpoint("rpe_policy", 11)


def engine(policy_dir, **kw):
    return genprm.Engine(policy_dir, kv_blocks=256, **kw)


def strip_time(r):
    return {k: v for k, v in r.items() if k != "seconds"}


def test_compute_labels_table():
    out = rpe.compute_labels([0.5, 0.25, 0.0, 0.75], 0.5)
    assert out["mc"] == [0.5, 0.25, 0.0, 0.0]  # zero propagation
    assert out["mc_prev"] == [0.5, 0.5, 0.25, 0.0]
    assert out["progress"] == [1.0, 0.5, 0.0, 0.0]  # 0/0 -> 0
    assert out["labels"] == [1, 0, 0, 0]
    assert out["hard_labels"] == [1, 1, 0, 0]
    assert out["difference"] == [0.0, -0.25, -0.25, 0.0]
    assert out["propagated"] == [False, False, False, True]
    inf = rpe.compute_labels([0.25], 0.0)  # x/0 -> inf, label 1
    assert math.isinf(inf["progress"][0]) and inf["labels"] == [1]
    assert rpe.compute_labels([0.5], 0.625, epsilon=0.8)["labels"] == [1]  # 0.8 >= 0.8
    assert rpe.compute_labels([0.5], 0.625, epsilon=0.81)["labels"] == [0]
    assert rpe.compute_labels([0.25], 0.5, difference_epsilon=-0.25)["difference_labels"] == [1]
    for kwargs, word in [(dict(mc=[], mc_first=0.5), "mc"), (dict(mc=[1.5], mc_first=0.5), "mc[0]"),
                         (dict(mc=[0.5], mc_first=-1), "mc_first"), (dict(mc=[0.5], mc_first=0.5, epsilon=0), "epsilon"),
                         (dict(mc=[0.5], mc_first=0.5, epsilon=1.5), "epsilon")]:
        with pytest.raises(ValueError, match=word.replace("[", r"\[").replace("]", r"\]")):
            rpe.compute_labels(**kwargs)


def test_k_rule_and_steps():
    assert [rpe.k_for(x) for x in (0.0, 0.05, 0.1, 0.5, 0.9, 1.0)] == [128, 128, 64, 64, 32, 32]
    assert rpe.k_for(0.3, thresholds=(0.25, 0.5), ks=(8, 4, 2)) == 4
    text = "Step 1: a\nb\nStep 2: c\n\nStep 3: d"
    steps = rpe.split_steps(text)
    assert steps == ["Step 1: a\nb", "Step 2: c\n", "Step 3: d"]
    assert rpe.join_steps(steps) == text
    assert rpe.join_steps(steps, 2) == text[:text.index("\nStep 3")]
    # Rollouts continue after the next step's header, steps trimmed and joined by a blank line.
    assert rpe.rollout_prefix(steps, 1) == "Step 1: a\nb\n\nStep 2: "
    assert rpe.rollout_prefix(steps, 2) == "Step 1: a\nb\n\nStep 2: c\n\nStep 3: "
    with pytest.raises(ValueError, match=r"step must be an integer >= 1"):
        rpe.rollout_prefix(steps, 0)
    with pytest.raises(ValueError, match=r"rollout_prefix: step 4 is not in \[1, 3\]"):
        rpe.rollout_prefix(steps, 4)


def test_label_steps_shapes_dynamic_k_and_kv_sharing(policy_dir):
    eng = engine(policy_dir)
    r = rpe.label_steps(eng, PROBLEM, STEPS, "6", k_rule={"ks": (8, 4, 2)}, max_tokens=3, seed=0,
                        cancel_after_zero=False)
    assert r["error"] == ""
    # Dynamic K: first batch = the smallest K (2); MC(s_1) = 0 < 0.1 -> K = 8, topped up by 6.
    assert (r["k_first"], r["first_requests"], r["k"], r["mc_first"]) == (8, 2, 8, 0.0)
    assert len(r["labels"]) == len(r["hard_labels"]) == len(r["mc"]) == len(r["steps"]) == 3
    for s in r["steps"]:
        assert 0.0 <= s["mc"] <= 1.0 and s["label"] in (0, 1) and s["hard_label"] in (0, 1)
        assert 0 <= s["correct"] <= max(s["k"], 1)
    assert [s["rollout"] for s in r["steps"]] == [True, True, False]
    assert r["steps"][0]["k"] == 8 and r["steps"][0]["estimated"]
    json.loads(json.dumps(r))  # JSON-serialisable (progress is finite here)

    # One request per estimate: 2 for MC(s_1), one per step but the last.
    st = eng.stats()
    assert st["requests_submitted"] == r["requests"] == 2 + 2
    assert st["prompt_tokens_submitted"] == r["prompt_tokens"]
    # The top-up re-submits the MC(s_1) prompt: found cached but for its last token; step 1 finds
    # the chat prompt cached, step 2 finds step 1's prefix (all but the token at the step boundary).
    s1, s2 = r["steps"][0], r["steps"][1]
    assert s1["cached_prompt_tokens"] > 0
    assert s2["cached_prompt_tokens"] >= s1["prompt_tokens"] - 2
    assert st["prompt_tokens_computed"] < st["prompt_tokens_submitted"]

    # Without prefix caching: every prompt is computed, but still once per request although each
    # request has n = K samples (the K completions fork the prefix's KV).
    cold = engine(policy_dir, prefix_caching=False)
    rc = rpe.label_steps(cold, PROBLEM, STEPS, "6", k_rule={"ks": (8, 4, 2)}, max_tokens=3, seed=0,
                         cancel_after_zero=False)
    sc = cold.stats()
    assert sc["prompt_tokens_computed"] == sc["prompt_tokens_submitted"] == rc["prompt_tokens"]
    assert sc["prompt_tokens_computed"] < 8 * rc["steps"][0]["prompt_tokens"]
    assert sc["prompt_tokens_computed"] > st["prompt_tokens_computed"]


def test_last_step_own_answer_and_infinite_progress(policy_dir):
    eng = engine(policy_dir)
    ok = rpe.label_steps(eng, "What is 3 * 2?", ["Step 1: 3 * 2 = \\boxed{6}."], "6", k=2, max_tokens=2, seed=1)
    assert ok["requests"] == 1 and ok["mc_first"] == 0.0
    assert ok["mc"] == [1.0] and ok["labels"] == [1] and math.isinf(ok["steps"][0]["progress"])
    bad = rpe.label_steps(eng, "What is 3 * 2?", ["Step 1: 3 * 2 = \\boxed{5}."], "6", k=2, max_tokens=2, seed=1)
    assert bad["mc"] == [0.0] and bad["labels"] == [0] and bad["steps"][0]["progress"] == 0.0


def test_determinism_with_a_seed(policy_dir):
    def run(seed):
        return rpe.label_many(engine(policy_dir), [{"id": "a", "problem": PROBLEM, "steps": STEPS, "answer": "6"},
                                                   {"id": "b", "problem": "What is 1+1?", "steps": STEPS[:2],
                                                    "answer": "2"}],
                              k=3, max_tokens=4, seed=seed, keep_rollouts=True, cancel_after_zero=False,
                              progress=False)
    a, b, c = run(5), run(5), run(6)
    assert [strip_time(x) for x in a] == [strip_time(x) for x in b]
    assert len(a[0]["first_rollouts"]) == 3 and all(isinstance(t, str) for t in a[0]["first_rollouts"])
    assert a[0]["first_rollouts"] != c[0]["first_rollouts"]
    # A row keeps its rollouts whatever else is labelled with it (seeds are keyed by id).
    alone = rpe.label_many(engine(policy_dir), [{"id": "b", "problem": "What is 1+1?", "steps": STEPS[:2],
                                                 "answer": "2"}],
                           k=3, max_tokens=4, seed=5, keep_rollouts=True, cancel_after_zero=False, progress=False)
    assert alone[0]["first_rollouts"] == a[1]["first_rollouts"]


def test_sample_solutions_step_forcing(policy_dir):
    eng = engine(policy_dir)
    res = rpe.sample_solutions(eng, ["What is 1+1?", "What is 2+2?"], n=3, answers=["2", None], max_tokens=5,
                               seed=0)
    assert eng.stats()["requests_submitted"] == 2  # one request with n = 3 per problem
    assert [len(r["solutions"]) for r in res] == [3, 3]
    for r in res:
        assert r["error"] == ""
        for s in r["solutions"]:
            assert s["text"].startswith("Step 1: ")
            assert rpe.join_steps(s["steps"]) == s["text"]
            assert s["correct"] in (True, False)
    assert res[0]["pass_rate"] == sum(s["correct"] for s in res[0]["solutions"]) / 3
    assert res[1]["pass_rate"] is None  # no ground truth
    # Sampled steps go straight into the labeler.
    lab = rpe.label_steps(eng, "What is 1+1?", res[0]["solutions"][0]["steps"], "2", k=2, max_tokens=2)
    assert len(lab["labels"]) == len(res[0]["solutions"][0]["steps"])


def test_errors_name_the_argument(policy_dir):
    eng = engine(policy_dir)
    with pytest.raises(ValueError, match="steps"):
        rpe.label_steps(eng, PROBLEM, [], "6")
    with pytest.raises(ValueError, match="steps"):
        rpe.label_steps(eng, PROBLEM, "Step 1: x", "6")
    with pytest.raises(ValueError, match="answer"):
        rpe.label_steps(eng, PROBLEM, STEPS, "")
    with pytest.raises(ValueError, match="epsilon"):
        rpe.label_steps(eng, PROBLEM, STEPS, "6", epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        rpe.label_steps(eng, PROBLEM, STEPS, "6", epsilon=1.5)
    with pytest.raises(ValueError, match="k must"):
        rpe.label_steps(eng, PROBLEM, STEPS, "6", k=0)
    with pytest.raises(ValueError, match="max_tokens"):
        rpe.label_steps(eng, PROBLEM, STEPS, "6", max_tokens=0)
    with pytest.raises(ValueError, match="engine"):
        rpe.label_steps(object(), PROBLEM, STEPS, "6")
    with pytest.raises(ValueError, match="n must"):
        rpe.sample_solutions(eng, ["x"], n=0)
    assert eng.stats()["requests_submitted"] == 0  # nothing ran


def test_cli_label_appends_and_resumes(policy_dir, tmp_path, capsys):
    from genprm.cli import main

    inp, out = tmp_path / "rows.jsonl", tmp_path / "labels.jsonl"
    rows = [{"id": "a", "problem": "1+1?", "steps": ["Step 1: 1+1", "Step 2: \\boxed{2}"], "answer": "2"},
            {"problem": "2+2?", "solution": "Step 1: \\boxed{4}", "answer": 4},  # id = line number
            {"id": "c", "problem": "x", "steps": [], "answer": "1"}]
    inp.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\nnot json\n" + json.dumps(rows[2]) + "\n")
    args = ["label", "--model", policy_dir, "--input", str(inp), "--output", str(out), "--k", "2",
            "--max-tokens", "2", "--seed", "3", "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "rows.jsonl:3: invalid JSON" in err and "rows.jsonl:4:" in err and "'steps' is empty" in err
    done = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(d["id"] for d in done) == ["2", "a"]
    by_id = {d["id"]: d for d in done}
    assert by_id["2"]["labels"] == [1] and by_id["2"]["rpe"]["steps"][0]["progress"] is None  # inf -> null
    assert by_id["a"]["problem"] == "1+1?" and len(by_id["a"]["labels"]) == 2 and by_id["a"]["k"] == 2
    first = out.read_text()

    assert main(args) == 0  # resume: nothing left
    assert "2 already in" in capsys.readouterr().err
    assert out.read_text() == first

    # A torn last line (interrupted append) is cut off and that row redone, with the same result.
    lines = first.splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    assert main(args) == 0
    assert "1 to label" in capsys.readouterr().err
    redone = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(redone) == 2
    strip = lambda d: {k: v for k, v in d.items() if k != "rpe"}  # noqa: E731
    assert sorted(map(json.dumps, map(strip, redone))) == sorted(map(json.dumps, map(strip, done)))


def test_on_result_exception_is_raised_after_the_run(policy_dir):
    eng = engine(policy_dir)
    rows = [{"id": str(i), "problem": f"What is {i}+1?", "steps": STEPS[:2], "answer": str(i + 1)} for i in range(3)]
    seen = []

    def boom(i, r):
        seen.append(i)
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        rpe.label_many(eng, rows, k=2, max_tokens=2, on_result=boom, progress=True)
    assert len(seen) == 1  # not called again after the failure
    st = eng.stats()
    assert st["running"] == 0 and st["waiting"] == 0  # the run finished; the engine is usable
    assert len(rpe.label_many(eng, rows, k=2, max_tokens=2, progress=False)) == 3


def test_adaptive_options_and_rounds(policy_dir):
    eng = engine(policy_dir)
    rows = [{"id": "a", "problem": PROBLEM, "steps": STEPS, "answer": "6"}]
    fixed = rpe.label_many(eng, rows, k=8, max_tokens=3, seed=1, progress=False)[0]
    off = rpe.label_many(eng, rows, k=8, max_tokens=3, seed=1, adaptive=False, progress=False)[0]
    same = lambda r: (r["labels"], r["mc"], r["rollouts"], [(s["k"], s["correct"], s["rounds"], s["early"])  # noqa: E731
                                                            for s in r["steps"]])
    assert same(off) == same(fixed)  # off by default (cached prompt tokens differ: the cache is warm)
    # fixed K: one request for step 1; step 2 is not estimated after step 1's zero
    assert [s["rounds"] for s in fixed["steps"]] == [1, 0, 0] and not any(s["early"] for s in fixed["steps"])
    # The random policy is never right, so MC(s_1) = 0, and a step's label (p > 0) is decided
    # only by a right rollout: every round runs, in pieces of 3 (3 + 3 + 2 = K 8).
    res = rpe.label_many(eng, rows, k=8, max_tokens=3, seed=1, adaptive={"round": 3}, progress=False)[0]
    assert res["mc_first"] == 0.0 and res["k_first"] == 8 and not res["first_early"]
    assert [(s["k"], s["rounds"], s["early"]) for s in res["steps"][:1]] == [(8, 3, False)]
    assert res["labels"] == fixed["labels"] and res["mc"] == fixed["mc"]
    # MC(s_1)'s 8 and step 1's 8; a round of step 2 that was back before step 1's zero counts too
    assert res["rollouts"] >= 16
    with pytest.raises(ValueError, match=r"adaptive: unknown key\(s\) \['rounds'\]"):
        rpe.label_many(eng, rows, k=8, adaptive={"rounds": 2})
    with pytest.raises(ValueError, match="adaptive must be a bool or a dict"):
        rpe.label_many(eng, rows, k=8, adaptive="yes")
    with pytest.raises(ValueError, match=r"adaptive.delta must be in \(0, 0.5\)"):
        rpe.label_steps(eng, PROBLEM, STEPS, "6", adaptive={"delta": 0.7})
    with pytest.raises(ValueError, match="adaptive.round must be >= 1"):
        rpe.label_steps(eng, PROBLEM, STEPS, "6", adaptive={"round": 0})


def test_adaptive_on_the_trained_policy_saves_rollouts_and_keeps_labels():
    from genprm import arith, synthetic
    if not arith.available():
        pytest.skip("the trained models are missing (make models)")
    eng = genprm.Engine(arith.policy_dir())
    rows = []
    for r in arith.heldout_rows(24, level="small"):
        rows.append({"id": r["id"], "problem": r["problem"], "answer": r["answer"],
                     "steps": rpe.split_steps(synthetic.solution_text(r["steps"]))})
    fixed = rpe.label_many(eng, rows, k=32, seed=0, max_tokens=160, progress=False)
    adapt = rpe.label_many(eng, rows, k=32, seed=0, max_tokens=160, adaptive=True, progress=False)
    used = lambda rs: sum(r["rollouts"] for r in rs)  # noqa: E731
    # measured 1344 of 1984 rollouts, 2 of 62 labels differ (K 32 fixed: MC(s_1) takes all 32,
    # only the steps stop early)
    assert used(adapt) <= 0.9 * used(fixed), (used(adapt), used(fixed))
    labels = sum(len(r["labels"]) for r in fixed)
    differ = sum(a != f for ra, rf in zip(adapt, fixed) for a, f in zip(ra["labels"], rf["labels"]))
    assert differ <= max(1, labels // 10), (differ, labels)
    round_ = genprm._core.LabelerConfig().adaptive.round
    for r in adapt:
        for s in r["steps"]:
            if not s["rollout"] or not s["estimated"]:
                continue
            assert s["k"] <= 32 and s["rounds"] == -(-s["k"] // round_)
            assert s["early"] == (s["k"] < 32)  # a step stops before K only when its label is decided


def test_cli_label_adaptive(policy_dir, tmp_path, capsys):
    from genprm.cli import main

    inp, out = tmp_path / "rows.jsonl", tmp_path / "labels.jsonl"
    inp.write_text(json.dumps({"id": "a", "problem": PROBLEM, "steps": STEPS, "answer": "6"}) + "\n")
    base = ["label", "--model", policy_dir, "--input", str(inp), "--k", "8", "--max-tokens", "3", "--seed", "1",
            "--no-progress"]
    assert main(base + ["--output", str(out), "--adaptive", "--adaptive-round", "4", "--show"]) == 0
    assert "rollouts" in capsys.readouterr().err
    step1 = json.loads(out.read_text())["rpe"]["steps"][0]
    assert (step1["k"], step1["rounds"]) == (8, 2)  # never right: both rounds of 4 run
    assert main(base + ["--output", str(tmp_path / "x.jsonl"), "--adaptive", "--adaptive-delta", "0.9"]) == 2
    assert "adaptive.delta must be in (0, 0.5)" in capsys.readouterr().err


def test_share_first_estimates_mc_first_once_per_problem(policy_dir, tmp_path):
    eng = engine(policy_dir)
    rows = [{"id": "a", "problem": PROBLEM, "steps": STEPS, "answer": "6"},
            {"id": "b", "problem": PROBLEM + " Twice?", "steps": STEPS, "answer": "6"},
            {"id": "c", "problem": PROBLEM, "steps": STEPS, "answer": "6"}]
    own = rpe.label_many(eng, rows, k=8, max_tokens=3, seed=1, progress=False)
    shared = rpe.label_many(eng, rows, k=8, max_tokens=3, seed=1, share_first=True, progress=False)
    assert [r["first_shared"] for r in own] == ["", "", ""]
    assert [r["first_shared"] for r in shared] == ["", "", "a"]
    assert shared[2]["first_requests"] == 0 and shared[2]["k_first"] == shared[0]["k_first"] == 8
    assert shared[2]["rollouts"] == own[2]["rollouts"] - 8  # its MC(s_1) rollouts are row a's
    from genprm.cli import main
    inp, out = tmp_path / "rows.jsonl", tmp_path / "labels.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["label", "--model", policy_dir, "--input", str(inp), "--output", str(out), "--k", "8",
                 "--max-tokens", "3", "--seed", "1", "--no-progress", "--share-first"]) == 0
    got = {r["id"]: r["rpe"]["first_shared"] for r in map(json.loads, out.read_text().splitlines())}
    assert got == {"a": "", "b": "", "c": "a"}


def test_a_given_mc_first_draws_no_prompt_rollouts(policy_dir):
    eng = engine(policy_dir)
    rows = [{"id": "a", "problem": PROBLEM, "steps": STEPS, "answer": "6", "mc_first": 0.5}]
    res = rpe.label_many(eng, rows, max_tokens=3, seed=1, progress=False)[0]
    assert res["first_given"] and res["mc_first"] == 0.5 and res["k"] == 64  # the rule's K for 0.5
    assert res["k_first"] == 0 and res["first_requests"] == 0
    own = rpe.label_many(eng, [dict(rows[0], mc_first=None)], max_tokens=3, seed=1, progress=False)[0]
    assert not own["first_given"] and own["k_first"] > 0
    with pytest.raises(ValueError, match=r"rows\[0\]: 'mc_first' must be a number in \[0, 1\]"):
        rpe.label_many(eng, [dict(rows[0], mc_first=1.5)], progress=False)
