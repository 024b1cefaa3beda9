"""`genprm verify`: appends finished rows, resumes, reports malformed rows by line number."""
import json
import os
import subprocess
import sys

import pytest

from genprm import cli

SMALL = ["--max-tokens", "40", "--analyze-max-tokens", "8", "--round-limit", "1", "--seed", "1",
         "--no-progress"]


@pytest.fixture(scope="module")
def model_dir(tiny_r1_checkpoint):
    return tiny_r1_checkpoint("genprm_cli_model", seed=9)


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_verify_appends_resumes_and_reports_malformed(model_dir, tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    good = [{"id": f"r{i}", "problem": f"What is {i} + 1?", "steps": [f"{i} + 1 = {i + 1}."], "label": -1}
            for i in range(3)]
    lines = [json.dumps(good[0]), "{not json", json.dumps(good[1]), json.dumps({"id": "x", "problem": "p"}),
             "", json.dumps(good[2]), json.dumps(good[0])]
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "sub" / "out.jsonl"
    args = ["verify", "--model", model_dir, "--input", str(inp), "--output", str(out), "--majority", "2"] + SMALL
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "in.jsonl:2: invalid JSON" in err
    assert "in.jsonl:4: 'steps' must be a non-empty list of strings" in err
    assert "in.jsonl:7: duplicate id 'r0'" in err
    rows = _rows(out)
    assert sorted(r["id"] for r in rows) == ["r0", "r1", "r2"]
    assert {r["verification"]["reward"] for r in rows} == {"exact"}
    for r in rows:
        assert r["label"] == -1  # input fields kept
        assert len(r["value"]) == 1 and 0.0 <= r["value"][0] <= 1.0
        assert r["first_wrong_step"] in (-1, 0)
        assert len(r["verification"]["steps"][0]["paths"]) == 2

    # Rerun: nothing left to do.
    assert cli.main(args) == 0
    assert "3 already in" in capsys.readouterr().err
    assert len(_rows(out)) == 3

    # An interrupted run: one row missing and a torn last line; the rerun redoes only that row.
    kept = out.read_text().splitlines(keepends=True)[:2]
    out.write_text("".join(kept) + '{"id": "r2", "val')
    assert cli.main(args + ["--show"]) == 0
    err = capsys.readouterr().err
    assert "2 already in" in err and "1 to verify" in err
    assert "step rewards [" in err
    rows = _rows(out)
    assert sorted(r["id"] for r in rows) == ["r0", "r1", "r2"]


def test_bad_arguments(model_dir, tmp_path, capsys):
    assert cli.main(["verify", "--model", str(tmp_path / "none"), "--input", "x", "--output", "y"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert cli.main(["verify", "--model", model_dir, "--input", str(tmp_path / "missing.jsonl"),
                     "--output", str(tmp_path / "o.jsonl")]) == 2
    with pytest.raises(SystemExit):
        cli.main(["verify", "--model", model_dir, "--input", "a", "--output", "b", "--mode", "fast"])


def test_python_dash_m_genprm_help():
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-m", "genprm", "verify", "--help"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0
    assert "--majority" in p.stdout and "--mode" in p.stdout


def test_verify_reward_reference(model_dir, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "problem": "What is 1 + 1?", "steps": ["1 + 1 = 2."]}) + "\n")
    out = tmp_path / "out.jsonl"
    assert cli.main(["verify", "--model", model_dir, "--input", str(inp), "--output", str(out), "--majority", "2",
                     "--reward", "reference", "--sequential-paths"] + SMALL) == 0
    (row,) = _rows(out)
    assert row["verification"]["reward"] == "reference"
    assert "reward_note" in row["verification"]["steps"][0]
