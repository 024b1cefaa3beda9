"""ProcessBench scoring from Python and the `genprm eval` command line."""
import json

import pytest

import genprm
from genprm import cli


ROWS = [
    {"id": "gsm8k-0", "label": 1, "value": [0.9, 0.2, 0.1]},   # hit
    {"id": "gsm8k-1", "label": 0, "value": [0.9, 0.9]},        # miss
    {"id": "gsm8k-2", "label": -1, "value": [0.8, 0.7]},       # hit
    {"id": "gsm8k-3", "label": -1, "value": [0.6]},            # hit at 0.5, miss at 0.65
    {"id": "x", "subset": "math", "label": 2, "value": [0.1, 0.9, 0.9]},  # miss (too early)
    {"id": "y", "subset": "math", "label": -1, "value": [0.9, 0.3]},      # miss
]


def test_processbench_metrics_per_subset_and_average():
    r = genprm.eval.processbench(ROWS)
    g, m = r["subsets"]["gsm8k"], r["subsets"]["math"]
    assert g["acc_error"] == pytest.approx(50.0) and g["acc_correct"] == pytest.approx(100.0)
    assert g["f1"] == pytest.approx(2 * 50 * 100 / 150)
    assert m["f1"] == pytest.approx(0.0)
    assert r["average_f1"] == pytest.approx((2 * 50 * 100 / 150) / 2)
    assert genprm.eval.processbench(ROWS, threshold=0.65)["subsets"]["gsm8k"]["acc_correct"] == pytest.approx(50.0)


def test_processbench_rejects_rows_without_label_and_bad_labels():
    with pytest.raises(ValueError, match="row 0"):
        genprm.eval.processbench([{"id": "a", "value": [0.9]}])
    with pytest.raises(ValueError, match="label 5 outside"):
        genprm.eval.processbench([{"id": "gsm8k-0", "label": 5, "value": [0.9]}])


def test_cli_eval_prints_table_and_json(tmp_path, capsys):
    path = tmp_path / "verified.jsonl"
    with open(path, "w") as f:
        for row in ROWS:
            f.write(json.dumps({**row, "problem": "p", "steps": ["s"] * len(row["value"])}) + "\n")
        f.write("{not json\n")
    assert cli.main(["eval", "--input", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["subsets"]["gsm8k"]["error_hits"] == 1
    assert f"{path}:7: invalid JSON" in err
    assert cli.main(["eval", "--input", str(path)]) == 0
    assert "average F1" in capsys.readouterr().out


def test_cli_eval_without_labels_is_an_error(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"id": "a", "problem": "p", "steps": ["s"], "value": [0.5]}) + "\n")
    assert cli.main(["eval", "--input", str(path)]) == 2
    assert "no rows with both 'label' and 'value'" in capsys.readouterr().err
