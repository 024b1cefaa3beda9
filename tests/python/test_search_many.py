"""genprm.search.beam_search_many / best_of_n_many over a random tiny policy (the R1-Distill
vocabulary): many problems at once give each problem its one-problem result, per-problem errors,
grading, argument errors; and the `genprm search` CLI end to end (resume, torn line, bad input)."""
import json
import os

import pytest

import genprm
from genprm import cli, search
from genprm import math as gmath

DELIMS = ["\n\n", " the"]  # a random model rarely writes blank lines: " the" makes steps end early too
PROBLEMS = ["What is 1+1?", "What is 2+3?", "Compute 7*6.", "Solve x+1=3."]


@pytest.fixture(scope="module")
def policy_dir(tiny_r1_checkpoint):
    return tiny_r1_checkpoint("search_many_policy", 3)


def length_scorer(log=None):
    def score(problem, solutions):
        if log is not None:
            log.append(problem)
        return [[(len(step) % 7) / 7 for step in s] for s in solutions]
    return score


OPTS = dict(beams=4, width=2, max_steps=3, max_step_tokens=6, seed=3, step_delimiters=DELIMS, progress=False)


def test_beam_search_many_matches_one_by_one(policy_dir):
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    rows = [PROBLEMS[0], {"problem": PROBLEMS[1], "answer": "5", "id": "p-1"},
            {"problem": PROBLEMS[2], "answer": 42}, {"problem": PROBLEMS[3], "id": 9}]
    seen = []
    log = []
    many = search.beam_search_many(engine, length_scorer(log), rows, max_problems_in_flight=3,
                                   on_result=lambda i, r: seen.append((i, r)), **OPTS)
    assert [r["index"] for r in many] == [0, 1, 2, 3]
    assert [r["id"] for r in many] == [0, "p-1", 2, 9]
    assert sorted(i for i, _ in seen) == [0, 1, 2, 3]
    assert all(r is many[i] for i, r in seen)  # on_result saw the returned dicts
    st = engine.stats()
    assert st["requests_submitted"] == sum(r["requests"] for r in many)
    # every problem: exactly its one-problem search (same seed, same requests, same result). Exact
    # tokens need the same batch layout (batch-dependent float rounding can flip a sampled token
    # on some CPUs), so one problem in flight is compared with beam_search one by one on one engine.
    serial = search.beam_search_many(genprm.Engine(policy_dir, kv_blocks=512), length_scorer(), rows,
                                     max_problems_in_flight=1, **OPTS)
    one = genprm.Engine(policy_dir, kv_blocks=512)
    opts = {k: v for k, v in OPTS.items() if k != "progress"}
    for r, r3, p in zip(serial, many, PROBLEMS):
        assert r["error"] is None and r3["error"] is None and r["problem"] == p and r3["problem"] == p
        ref = search.beam_search(one, length_scorer(), p, **opts)
        assert r["best"] == ref["best"]
        assert r["iterations"] == ref["iterations"]
        assert r["requests"] == ref["requests"]
        assert r["prediction"] == r["best"]["answer"]
    # grading: only where an answer is given
    assert many[0]["correct"] is None and many[3]["correct"] is None and many[0]["answer"] is None
    assert many[2]["answer"] == "42"
    for r in many[1:3]:
        assert r["correct"] == (r["prediction"] is not None and gmath.is_equiv(r["prediction"], r["answer"]))
    # problems overlapped: the scorer saw batches of different problems interleaved
    firsts = [log.index(p) for p in PROBLEMS]
    lasts = [len(log) - 1 - log[::-1].index(p) for p in PROBLEMS]
    assert min(lasts[:3]) > max(firsts[:3])


def test_beam_search_many_errors_stay_with_their_problem(policy_dir):
    engine = genprm.Engine(policy_dir, kv_blocks=512)

    def picky(problem, solutions):
        if problem == PROBLEMS[1]:
            raise ZeroDivisionError("no scores for this one")
        return length_scorer()(problem, solutions)

    rs = search.beam_search_many(engine, picky, PROBLEMS[:3], **dict(OPTS, progress=True))
    assert rs[0]["error"] is None and rs[2]["error"] is None
    assert rs[1]["best"] is None and "no scores for this one" in rs[1]["error"]
    assert "ZeroDivisionError" in rs[1]["error"]
    assert rs[1]["prediction"] is None
    assert rs[1]["requests"] >= 1  # what it spent before failing

    # an exception from on_result (e.g. a full disk while writing) ends the run and comes through
    def boom(i, r):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        search.beam_search_many(engine, length_scorer(), PROBLEMS, on_result=boom, **OPTS)
    # the engine is still usable
    assert search.beam_search(engine, length_scorer(), PROBLEMS[0], beams=2, width=2, max_steps=1,
                              max_step_tokens=2)["best"]["steps"]


def test_beam_search_many_bad_arguments(policy_dir):
    engine = genprm.Engine(policy_dir, kv_blocks=64)
    sc = length_scorer()
    with pytest.raises(ValueError, match="problems must be a list"):
        search.beam_search_many(engine, sc, "What is 1+1?")
    with pytest.raises(ValueError, match=r"problems\[1\]: missing or non-string 'problem'"):
        search.beam_search_many(engine, sc, ["ok", {"question": "x"}])
    with pytest.raises(ValueError, match=r"problems\[0\] must be a string or a dict"):
        search.beam_search_many(engine, sc, [3])
    with pytest.raises(ValueError, match=r"problems\[0\]: 'answer'"):
        search.beam_search_many(engine, sc, [{"problem": "x", "answer": [1]}])
    with pytest.raises(ValueError, match="max_problems_in_flight"):
        search.beam_search_many(engine, sc, ["x"], max_problems_in_flight=0)
    with pytest.raises(ValueError, match="divisible by width"):
        search.beam_search_many(engine, sc, ["x"], beams=3, width=2)
    with pytest.raises(ValueError, match="aggregation"):
        search.beam_search_many(engine, sc, ["x"], aggregation="median")
    with pytest.raises(ValueError, match="on_result"):
        search.beam_search_many(engine, sc, ["x"], on_result=5)
    with pytest.raises(ValueError, match="policy"):
        search.beam_search_many("engine", sc, ["x"])
    with pytest.raises(ValueError, match="n must be a positive integer"):
        search.best_of_n_many(engine, sc, ["x"], n=0)
    assert search.beam_search_many(engine, sc, [], progress=False) == []


def test_beam_search_many_with_genprm(policy_dir, tiny_r1_checkpoint):
    prm_dir = tiny_r1_checkpoint("search_many_prm", 4)
    opts = dict(beams=2, width=2, max_steps=2, max_step_tokens=4, seed=1, step_delimiters=DELIMS, progress=False)
    rows = [{"problem": p, "answer": "2"} for p in PROBLEMS[:3]]
    runs = {}
    for batched in (True, False):
        prm = genprm.GenPRM(prm_dir, mode="direct", max_tokens=6, fallback_tokens=4, seed=0)
        engine = genprm.Engine(policy_dir, kv_blocks=512)
        runs[batched] = (search.beam_search_many(engine, prm, rows, batch_scorer=batched, **opts), prm.stats())
    rs, st = runs[True]
    # batched across problems: the same searches, in fewer GenPRM forward steps
    for a, b in zip(rs, runs[False][0]):
        assert a["iterations"] == b["iterations"] and a["best"] == b["best"]
    assert st["forward_steps"] < runs[False][1]["forward_steps"]
    for r in rs:
        assert r["error"] is None
        assert isinstance(r["correct"], bool)
        for it in r["iterations"]:
            for c in it["candidates"]:
                assert len(c["rewards"]) == len(c["steps"]) == len(c["critiques"])
                assert all(0.0 <= x <= 1.0 for x in c["rewards"])
    n_cands = sum(len(it["candidates"]) for r in rs for it in r["iterations"])
    assert prm.stats()["requests_submitted"] >= n_cands


def test_split_solution_and_best_of_n_many(policy_dir):
    assert search.split_solution("a\n\nb\nStep 2: c\n\n\n") == ["a", "b", "Step 2: c"]
    assert search.split_solution("") == [""]
    engine = genprm.Engine(policy_dir, kv_blocks=512)
    log = []
    rows = [{"problem": PROBLEMS[0], "answer": "2"}, PROBLEMS[1]]
    rs = search.best_of_n_many(engine, length_scorer(log), rows, n=3, max_tokens=8, seed=2, progress=False)
    assert log == PROBLEMS[:2]  # one scorer batch per problem
    for r in rs:
        assert r["error"] is None and len(r["candidates"]) == 3
        for c in r["candidates"]:
            assert c["steps"] == search.split_solution(c["text"])
            assert c["value"] == pytest.approx([(len(s) % 7) / 7 for s in c["steps"]])
            assert c["answer"] == gmath.extract_answer(c["text"])
        assert set(r["picks"]) == {f"bon_{h}" for h in search.AGGREGATIONS} | \
            {f"weighted_{h}" for h in search.AGGREGATIONS} | {"majority"}
        i = search.best_of_n([c["value"] for c in r["candidates"]], how="last")["index"]
        assert r["picks"]["bon_last"]["index"] == i and r["prediction"] == r["candidates"][i]["answer"]
    assert rs[1]["correct"] is None and rs[1]["pass"] is None
    assert isinstance(rs[0]["correct"], bool) and isinstance(rs[0]["pass"], bool)
    # one request of n = 3 per problem; the curves tool reads these rows
    assert engine.stats()["requests_submitted"] == 2
    curves = genprm.eval.best_of_n([rs[0]], sizes=[1, 3], truth_key="answer")
    assert curves["problems"] == 1


# --- genprm search ------------------------------------------------------------------------------

def _write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_cli_search_resume_and_torn_line(policy_dir, tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [{"id": "a", "problem": PROBLEMS[0], "answer": "2"},
                 {"unique_id": "b", "problem": PROBLEMS[1], "answer": "5"},
                 "{not json",
                 {"id": "c", "problem": PROBLEMS[2]},
                 {"id": "d"}])
    argv = ["search", "--policy", policy_dir, "--scorer", "none", "--input", str(inp), "--output", str(out),
            "--beams", "2", "--width", "2", "--max-steps", "2", "--max-step-tokens", "3", "--seed", "1",
            "--max-in-flight", "2", "--no-progress"]
    assert cli.main(argv) == 0
    cap = capsys.readouterr()
    assert "in.jsonl:3: invalid JSON" in cap.err and "in.jsonl:5: missing or non-string 'problem'" in cap.err
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == ["a", "b", "c"]
    for r in rows:
        assert "prediction" in r and r["method"] == "beam" and r["search"]["beams"] == 2
        assert len(r["rewards"]) == len(r["steps"]) and set(r["rewards"]) <= {0.0}
    graded = [r for r in rows if "correct" in r]
    assert sorted(r["id"] for r in graded) == ["a", "b"]
    hits = sum(r["correct"] for r in graded)
    assert f"accuracy (beam, last): {hits}/2 = {50.0 * hits:.1f}%" in cap.out
    by_id = {r["id"]: r for r in rows}

    # an interrupted run: the last row torn in the middle; rerun redoes only that one
    data = out.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    torn_id = json.loads(last)["id"]
    out.write_bytes(data[:len(data) - len(last) // 2 - 1])
    assert cli.main(argv) == 0
    cap = capsys.readouterr()
    assert "2 already in" in cap.err and "1 to solve" in cap.err
    rows2 = _lines(out)
    assert sorted(r["id"] for r in rows2) == ["a", "b", "c"]
    assert {r["id"]: r for r in rows2}[torn_id]["text"] == by_id[torn_id]["text"]  # same seed, same search
    # everything done: nothing to solve, the accuracy is still printed
    assert cli.main(argv) == 0
    cap = capsys.readouterr()
    assert "0 to solve" in cap.err and "accuracy (beam, last)" in cap.out
    assert len(_lines(out)) == 3


def test_cli_search_best_of_n_with_prm(policy_dir, tiny_r1_checkpoint, tmp_path, capsys):
    prm_dir = tiny_r1_checkpoint("search_cli_prm", 5)
    inp, out = tmp_path / "in.jsonl", tmp_path / "bon.jsonl"
    _write(inp, [{"id": 1, "problem": PROBLEMS[0], "answer": "2"}, {"id": 2, "problem": PROBLEMS[1], "answer": "5"}])
    argv = ["search", "--policy", policy_dir, "--prm", prm_dir, "--prm-mode", "direct", "--prm-max-tokens", "4",
            "--method", "best-of-n", "--n", "2", "--max-tokens", "6", "--input", str(inp), "--output", str(out),
            "--seed", "0", "--no-progress"]
    assert cli.main(argv) == 0
    cap = capsys.readouterr()
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == [1, 2]
    for r in rows:
        assert len(r["candidates"]) == 2 and "bon_min" in r["picks"] and isinstance(r["pass"], bool)
        for c in r["candidates"]:
            assert len(c["value"]) == len(c["steps"]) and all(0.0 <= v <= 1.0 for v in c["value"])
    assert "accuracy (best-of-n, last)" in cap.out and "majority" in cap.out and "pass" in cap.out


def test_cli_search_bad_input(policy_dir, tmp_path, capsys):
    out = str(tmp_path / "o.jsonl")
    base = ["--scorer", "none", "--output", out]
    assert cli.main(["search", "--policy", str(tmp_path / "nope"), "--input", "x.jsonl"] + base) == 2
    assert "--policy" in capsys.readouterr().err
    assert cli.main(["search", "--policy", policy_dir, "--input", str(tmp_path / "missing.jsonl")] + base) == 2
    assert "cannot read --input" in capsys.readouterr().err
    inp = tmp_path / "in.jsonl"
    _write(inp, [{"id": 1, "problem": "x"}])
    assert cli.main(["search", "--policy", policy_dir, "--input", str(inp), "--beams", "3"] + base) == 2
    assert "divisible by --width" in capsys.readouterr().err
    assert cli.main(["search", "--policy", policy_dir, "--input", str(inp), "--n", "0"] + base) == 2
    assert "--n must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --prm and --scorer are exclusive, one is required
        cli.main(["search", "--policy", policy_dir, "--input", str(inp), "--output", out])
    assert not os.path.exists(out)


def test_cli_search_failed_problem_is_recorded_and_retried(policy_dir, tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [{"id": "ok", "problem": PROBLEMS[0], "answer": "2"},
                 {"id": "long", "problem": "word " * 400, "answer": "2"}])  # outgrows a 16-block KV cache
    argv = ["search", "--policy", policy_dir, "--scorer", "none", "--input", str(inp), "--output", str(out),
            "--beams", "2", "--width", "2", "--max-steps", "2", "--max-step-tokens", "3", "--kv-blocks", "16",
            "--plain-prompt", "--no-progress"]
    assert cli.main(argv) == 1
    cap = capsys.readouterr()
    assert "long: failed: beam_search: generation failed at iteration 1" in cap.err
    rows = {r["id"]: r for r in _lines(out)}
    assert "prediction" in rows["ok"] and "error" not in rows["ok"]
    assert "prediction" not in rows["long"] and "KV blocks" in rows["long"]["error"]
    assert "accuracy (beam, last): " in cap.out and "/1 = " in cap.out  # failed rows are not graded
    assert cli.main(argv) == 1  # resume: only the failed one is tried again
    assert "1 already in" in capsys.readouterr().err
    assert sorted(r["id"] for r in _lines(out)) == ["long", "long", "ok"]
