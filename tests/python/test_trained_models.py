"""The small trained GenPRM (genprm.arith) through the real engine and sandbox, on held-out
synthetic problems: the tokenizer handled exactly as Hugging Face does, the models loading in
transformers, every GenPRM stage on model-written text (stop strings, executed code, judgements
read), and quality thresholds that fail when a stage breaks.

The thresholds sit well below the measured figures (README, python/genprm/models/README.md), so
float rounding that differs between CPUs cannot flip them; each would fail if, say, the code output
stopped reaching the model or the reward were read at the wrong token.
"""
import json
from pathlib import Path

import pytest

import genprm
from genprm import arith, synthetic

ROWS = arith.heldout_rows(40)


@pytest.fixture(scope="module")
def prm():
    return genprm.GenPRM(arith.genprm_dir(), majority=1, seed=0)


@pytest.fixture(scope="module")
def full_quality(prm):
    return arith.verification_quality(prm, ROWS)


def test_tokenizer_is_hugging_face_exact():
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    d = Path(arith.genprm_dir())
    ours = genprm.Tokenizer.from_pretrained(str(d))
    hf = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    texts = [r["problem"] + "\n" + "\n\n".join(r["steps"]) for r in ROWS[:10]]
    texts += ["<｜begin▁of▁sentence｜><｜User｜>Compute 2 + 3.<｜Assistant｜><think>\nStep 1: 2 + 3 = 5",
              "$\\boxed{Yes}$ {No} ünïcödé 𝔘 日本語 \t\r\n  x", "```python\nprint(1 == 1)\n```\n[Code Output]"]
    for t in texts:
        assert ours.encode(t) == hf.encode(t, add_special_tokens=False).ids, t
        assert ours.decode(ours.encode(t)) == t
    assert len(ours.encode("Yes")) == 1 and len(ours.encode("No")) == 1
    auto = transformers.AutoTokenizer.from_pretrained(str(d))
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
            {"role": "assistant", "content": "A"}, {"role": "user", "content": "U2"}]
    for gen in (False, True):
        assert ours.apply_chat_template(msgs, add_generation_prompt=gen) == auto.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=gen)


def test_model_loads_in_transformers_with_the_same_logits():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    d = arith.genprm_dir()
    hf = transformers.Qwen2ForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
    ids = genprm.Tokenizer.from_pretrained(d).encode(ROWS[0]["problem"] + "\n" + ROWS[0]["steps"][0])
    with torch.no_grad():
        want = hf(input_ids=torch.tensor([ids])).logits[0]
    got = torch.as_tensor(genprm.Model.load(d).logits(ids))
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 1e-3


def test_every_stage_runs_on_model_written_text(prm):
    row = next(r for r in ROWS if r["label"] >= 1)  # a right first step, a wrong step later
    res = prm.verify(row["problem"], row["steps"])
    first, bad = res.steps[0]["paths"][0], res.steps[row["label"]]["paths"][0]
    for path in (first, bad):
        text = path["text"]
        assert text.startswith("<analyze>\nLet's analyze the Paragraph ")
        assert "</analyze>\n<verify>\nLet's use python code to find any potential error:\n```python\n" in text
        assert "\n```\n[Code Output]\n\n```\n" in text and text.endswith("</output>\n")
        assert path["judgement_found"] and path["code"] and path["code"][0]["executed"]
    # the executed block recomputed the step: True for the right one, False for the wrong one
    assert first["code"][0]["output"].endswith("True") and first["judgement"] == "Yes"
    assert bad["code"][0]["output"].endswith("False") and bad["judgement"] == "No"
    assert res.value[0] > 0.5 > res.value[row["label"]]


def test_genprm_processbench_f1_auc_and_execution(full_quality):
    q = full_quality
    assert q["f1"] >= 80, q["f1"]
    assert q["auc"] >= 0.9, q["auc"]
    assert q["executed_share"] >= 0.9, q["executed_share"]
    assert q["mean_reward_right"] > 0.8 > 0.2 > q["mean_reward_wrong"]


def test_majority_of_four_is_at_least_majority_of_one(full_quality):
    prm4 = genprm.GenPRM(arith.genprm_dir(), majority=4, seed=0)
    q4 = arith.verification_quality(prm4, ROWS)
    assert q4["f1"] >= full_quality["f1"] - 1e-9
    assert q4["auc"] >= 0.9


def test_execution_helps_over_the_reference_modes_without_it(full_quality):
    f1 = {}
    for mode in ("cot", "code-no-exec", "direct"):
        q = arith.verification_quality(genprm.GenPRM(arith.genprm_dir(), mode=mode, seed=0), ROWS)
        f1[mode] = q["f1"]
        if mode != "code-no-exec":
            assert q["executed_share"] == 0
    assert all(full_quality["f1"] > v + 10 for v in f1.values()), (full_quality["f1"], f1)


def test_round_limit_zero_falls_back_to_the_output_stage():
    prm0 = genprm.GenPRM(arith.genprm_dir(), round_limit=0, seed=0)
    row = ROWS[0]
    res = prm0.verify(row["problem"], row["steps"])
    for step in res.steps:
        path = step["paths"][0]
        assert path["fallbacks"] >= 1 and not path["code"]
        assert "</analyze>\n<output>\n**Judgement**: $\\boxed{" in path["text"]
        assert path["judgement_found"] and path["judgement"] in ("Yes", "No")
