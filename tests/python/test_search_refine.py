"""genprm.search.refine_many (many problems at once = refine one by one, per-problem errors, GenPRM
batched across problems), best_of_n_many scoring while the others decode (same rows as
generate-then-score), and `genprm search --method refine` with resume, over a random tiny policy."""
import json

import pytest

import genprm
from genprm import cli, search
from genprm import math as gmath

PROBLEMS = ["What is 1+1?", "What is 2+3?", "Compute 7*6.", "Solve x+1=3.", "What is 9-4?"]


@pytest.fixture(scope="module")
def policy_dir(tiny_r1_checkpoint):
    return tiny_r1_checkpoint("refine_many_policy", 7)


def word_scorer(log=None):
    """A step is judged correct when it has an even number of characters; the critique says so."""
    def score(problem, solutions):
        if log is not None:
            log.append(problem)
        if "FAIL" in problem:
            raise RuntimeError("scorer broke on purpose")
        return [{"rewards": [1.0 if len(st) % 2 == 0 else 0.0 for st in s],
                 "critiques": [f"{len(st)} characters" for st in s]} for s in solutions]
    return score


OPTS = dict(max_turns=2, max_tokens=12, threshold=0.5, seed=5, temperature=0.1)  # near-greedy: no near-tie flips


def test_refine_many_matches_refine_one_by_one(policy_dir):
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    rows = [{"problem": PROBLEMS[0], "answer": "2", "id": "a"}, PROBLEMS[1],
            {"problem": PROBLEMS[2], "answer": 42, "initial": "Six times seven\n\nis \\boxed{42}."},
            {"problem": PROBLEMS[3], "prompt": "Solve it: x+1=3.\n\n"}]
    seen = []
    log = []
    many = search.refine_many(engine, word_scorer(log), iter(rows), max_problems_in_flight=3, progress=False,
                              on_result=lambda i, r: seen.append(i), **OPTS)
    assert sorted(seen) == [0, 1, 2, 3]
    assert [r["index"] for r in many] == [0, 1, 2, 3] and [r["id"] for r in many] == ["a", 1, 2, 3]
    scored = 0
    for r in many:
        assert r["error"] is None
        assert r["prediction"] == r["final"]["answer"]
        scored += sum(bool(t["steps"]) for t in r["turns"])
        for t in r["turns"][:-1]:  # every revision was asked for: some step judged incorrect
            assert t["feedback"] and (t["incorrect"] or not t["steps"])
    assert len(log) == scored  # one scorer call per turn with steps
    assert many[2]["turns"][0]["finish_reason"] == "given"
    assert many[2]["turns"][0]["steps"] == ["Six times seven", "is \\boxed{42}."]
    assert many[2]["turns"][0]["incorrect"] == [0]  # 15 characters: odd
    assert many[2]["turns"][1]["prompt"].startswith(PROBLEMS[2])
    assert many[3]["turns"][0]["prompt"] == "Solve it: x+1=3.\n\n"
    assert many[1]["correct"] is None and many[3]["correct"] is None
    assert many[0]["correct"] == (many[0]["prediction"] is not None and gmath.is_equiv(many[0]["prediction"], "2"))
    assert engine.stats()["requests_submitted"] == sum(r["requests"] for r in many)
    # Per problem the turns are those of refine() (same requests and seeds). Sampled tokens are
    # exact only for the same batch layout (batch-dependent float rounding can flip a token on
    # some CPUs), so compare one problem in flight against refine() one by one on one engine.
    serial = search.refine_many(genprm.Engine(policy_dir, kv_blocks=512), word_scorer(), rows,
                                max_problems_in_flight=1, progress=False, **OPTS)
    one_engine = genprm.Engine(policy_dir, kv_blocks=512)
    for row, r, r3 in zip(rows, serial, many):
        p = row if isinstance(row, dict) else {"problem": row}
        one = search.refine(one_engine, word_scorer(), p["problem"], prompt=p.get("prompt"),
                            initial=p.get("initial"), **OPTS)
        assert r["turns"] == one["turns"] and r["final"] == one["final"]
        assert r["requests"] == one["requests"] and r["all_correct"] == one["all_correct"]
        assert r3["turns"][0]["prompt"] == one["turns"][0]["prompt"]  # the same first request in flight


def test_refine_many_failure_stays_with_its_problem(policy_dir):
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    rows = [PROBLEMS[0], "FAIL " + PROBLEMS[1], PROBLEMS[2]]
    rs = search.refine_many(engine, word_scorer(), rows, progress=False, **OPTS)
    assert rs[1]["error"] is not None and "scorer broke on purpose" in rs[1]["error"]
    assert rs[1]["final"] is None and rs[1]["prediction"] is None and rs[1]["turns"] == []
    assert rs[1]["requests"] == 1
    assert rs[0]["error"] is None and rs[2]["error"] is None
    with pytest.raises(ValueError, match="max_problems_in_flight"):
        search.refine_many(engine, word_scorer(), rows, max_problems_in_flight=0)
    with pytest.raises(ValueError, match="'initial' must be a string"):
        search.refine_many(engine, word_scorer(), [{"problem": "x", "initial": 3}])
    with pytest.raises(ValueError, match="render"):
        search.refine_many(engine, word_scorer(), rows, render=5)
    assert search.refine_many(engine, word_scorer(), [], progress=False) == []


def test_refine_many_with_genprm_batched_across_problems(policy_dir, tiny_r1_checkpoint):
    prm_dir = tiny_r1_checkpoint("refine_many_prm", 8)
    rows = [{"problem": p, "answer": "2"} for p in PROBLEMS[:3]]
    opts = dict(max_turns=1, max_tokens=6, threshold=0.99, seed=2, progress=False)
    runs = {}
    for batched in (True, False):
        prm = genprm.GenPRM(prm_dir, mode="direct", max_tokens=6, fallback_tokens=4, seed=0)
        engine = genprm.Engine(policy_dir, kv_blocks=512)
        runs[batched] = (search.refine_many(engine, prm, rows, batch_scorer=batched, **opts), prm.stats())
    rs, st = runs[True]
    for a, b in zip(rs, runs[False][0]):
        assert a["turns"] == b["turns"]
    assert st["forward_steps"] < runs[False][1]["forward_steps"]  # one verify batch for all problems
    for r in rs:
        assert r["error"] is None and isinstance(r["correct"], bool)
        for t in r["turns"]:
            assert len(t["rewards"]) == len(t["steps"]) == len(t["critiques"])
            assert all(0.0 <= x <= 1.0 for x in t["rewards"])
            assert t["incorrect"] == [k for k, x in enumerate(t["rewards"]) if x < 0.99]


def test_best_of_n_many_scores_while_others_decode_same_rows(policy_dir):
    params = dict(n=3, max_tokens=10, seed=4, progress=False)
    # the reference: generate every problem first, then score (the former barrier)
    ref_engine = genprm.Engine(policy_dir, kv_blocks=512)
    sp = genprm.SamplingParams(temperature=0.7, top_p=1.0, top_k=0, max_tokens=10, seed=4)
    outs = ref_engine.generate([search.default_prompt(p) for p in PROBLEMS], sp, n=3)
    score = word_scorer()
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    in_flight = []

    def scorer(problem, sols):
        st = engine.stats()
        in_flight.append(st["requests_submitted"] - st["requests_finished"])
        return [r["rewards"] for r in score(problem, sols)]

    order = []
    rs = search.best_of_n_many(engine, scorer, PROBLEMS, max_problems_in_flight=2,
                               on_result=lambda i, r: order.append(i), **params)
    assert sorted(order) == list(range(len(PROBLEMS)))
    assert max(in_flight) > 0  # a problem was scored while others were in the engine
    for p, out, r in zip(PROBLEMS, outs, rs):
        assert r["error"] is None and r["problem"] == p
        assert [c["text"] for c in r["candidates"]] == [s.text for s in out.samples]
        for c in r["candidates"]:
            assert c["value"] == [1.0 if len(st) % 2 == 0 else 0.0 for st in c["steps"]]
        i = search.best_of_n([c["value"] for c in r["candidates"]], how="last")["index"]
        assert r["picks"]["bon_last"]["index"] == i
    # the cap is on problems decoding: with 1 in flight the scorer sees the input order
    log = []

    def logged(problem, sols):
        log.append(problem)
        return [[0.0] * len(x) for x in sols]

    search.best_of_n_many(genprm.Engine(policy_dir, kv_blocks=512), logged, PROBLEMS, max_problems_in_flight=1,
                          **params)
    assert log == PROBLEMS


class HoldFirst:
    """A genprm.Engine whose first request's output is handed back only after `after` others: the
    generations come back out of input order."""

    def __init__(self, engine, after):
        self.engine, self._core, self.after = engine, engine._core, after
        self.held, self.back, self.submitted = None, 0, 0
        self.generate = engine.generate

    def submit(self, prompt, params, n, on_done):
        first = self.submitted == 0
        self.submitted += 1

        def done(out):
            if first:
                self.held = (on_done, out)
                return
            on_done(out)
            self.back += 1
            if self.back == self.after and self.held:
                cb, o = self.held
                self.held = False
                cb(o)
        return self.engine.submit(prompt, params, n, done)

    def poll(self):
        return self.engine.poll()


class RecordingPRM:
    """A genprm.GenPRM that records the row ids of every verify_many batch."""

    def __init__(self, prm):
        self.prm, self._core, self.batches = prm, prm._core, []

    def verify_many(self, rows, **kw):
        self.batches.append([r["id"] for r in rows])
        return self.prm.verify_many(rows, **kw)


def test_best_of_n_many_genprm_verifies_what_is_ready(policy_dir, tiny_r1_checkpoint):
    prm_dir = tiny_r1_checkpoint("bon_many_prm", 9)
    params = dict(n=2, max_tokens=6, seed=1, progress=False, max_problems_in_flight=2)
    # The first problem's generation comes back last: the others are verified before it, and the
    # rewards equal verifying everything at once afterwards (seeds are keyed on content).
    problems = PROBLEMS[:4]
    log = []  # a callable sees the completion order

    def logged(problem, sols):
        log.append(problems.index(problem))
        return [[0.0] * len(x) for x in sols]

    search.best_of_n_many(HoldFirst(genprm.Engine(policy_dir, kv_blocks=512), 3), logged, problems, **params)
    assert log == [1, 2, 3, 0]
    prm = RecordingPRM(genprm.GenPRM(prm_dir, mode="direct", max_tokens=4, fallback_tokens=4, seed=0))
    order = []
    rs = search.best_of_n_many(HoldFirst(genprm.Engine(policy_dir, kv_blocks=512), 3), prm, problems,
                               on_result=lambda i, r: order.append(i), **params)
    assert all(r["error"] is None for r in rs) and sorted(order) == [0, 1, 2, 3]
    assert sorted(i for b in prm.batches for i in b) == [f"{i}:{j}" for i in range(4) for j in range(2)]
    assert len(prm.batches) < 4  # problems verified together
    assert "0:0" in prm.batches[-1] and "0:0" not in prm.batches[0]  # no generate-then-score barrier
    prm2 = genprm.GenPRM(prm_dir, mode="direct", max_tokens=4, fallback_tokens=4, seed=0)
    rows = [{"id": f"{r['id']}:{j}", "problem": r["problem"], "steps": c["steps"]}
            for r in rs for j, c in enumerate(r["candidates"])]
    ref = prm2.verify_many(rows, progress=False)  # all at once, after generation
    assert [c["value"] for r in rs for c in r["candidates"]] == [[float(x) for x in v.value] for v in ref]


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_cli_search_refine_and_resume(policy_dir, tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with open(inp, "w", encoding="utf-8") as f:
        for r in [{"id": "a", "problem": PROBLEMS[0], "answer": "2"}, {"id": "b", "problem": PROBLEMS[1]},
                  {"id": "c", "problem": PROBLEMS[2], "answer": "42"}]:
            f.write(json.dumps(r) + "\n")
    argv = ["search", "--policy", policy_dir, "--scorer", "none", "--input", str(inp), "--output", str(out),
            "--method", "refine", "--max-turns", "2", "--max-tokens", "5", "--seed", "3", "--max-in-flight", "2",
            "--plain-prompt", "--no-progress"]
    assert cli.main(argv) == 0
    cap = capsys.readouterr()
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == ["a", "b", "c"]
    for r in rows:
        assert r["method"] == "refine" and "prediction" in r
        assert len(r["rewards"]) == len(r["steps"]) and set(r["rewards"]) <= {0.0}
        rf = r["refine"]
        # no PRM: every step judged incorrect, so every problem takes all its revisions
        assert rf["revisions"] == 2 and len(rf["turns"]) == 3 and not rf["all_correct"]
        assert rf["requests"] == 3 and rf["turns"][-1]["answer"] == r["prediction"]
    assert ("correct" in {r["id"]: r for r in rows}["b"]) is False
    assert "accuracy (refine, last): " in cap.out and "/2 = " in cap.out
    by_id = {r["id"]: r for r in rows}
    # resume: drop the last row; rerunning solves only it, with the same result (same seed)
    data = out.read_text(encoding="utf-8").splitlines(keepends=True)
    dropped = json.loads(data[-1])["id"]
    out.write_text("".join(data[:-1]), encoding="utf-8")
    assert cli.main(argv) == 0
    assert "2 already in" in capsys.readouterr().err
    again = {r["id"]: r for r in _lines(out)}
    assert sorted(again) == ["a", "b", "c"] and len(_lines(out)) == 3
    assert again[dropped]["text"] == by_id[dropped]["text"]
    assert cli.main(argv[:-4] + ["--max-turns", "-1", "--no-progress"]) == 2
    assert "--max-turns must be >= 0" in capsys.readouterr().err
