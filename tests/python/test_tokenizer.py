"""genprm.Tokenizer: stored Hugging Face fixtures, Python API, chat templates (against
transformers' apply_chat_template), streaming decode, invalid UTF-8 and load errors."""
import json
import os
import random
import shutil
from pathlib import Path

import pytest

import genprm

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
QWEN_DIR = DATA / "qwen_tokenizer"
R1_DIR = DATA / "r1distill_tokenizer"


@pytest.fixture(scope="module")
def qwen():
    return genprm.Tokenizer.from_pretrained(QWEN_DIR)


@pytest.fixture(scope="module")
def r1():
    return genprm.Tokenizer.from_pretrained(R1_DIR)


def _rows(name):
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_public_fixture_rows_match_exactly(qwen):
    rows = _rows("tokenizer_public.jsonl")
    assert len(rows) >= 50
    for row in rows:
        assert qwen.encode(row["text"]) == row["ids"], row["text"]
        assert qwen.decode(row["ids"]) == row["decoded"], row["text"]


def _render_row(tok, row):
    name = row["name"]
    if name.startswith("genprm_step"):
        text = tok.apply_chat_template(row["messages"], add_generation_prompt=False)
        if text.endswith(tok.eos_token):
            text = text[: -len(tok.eos_token)]
        step = int(name[len("genprm_step"):])
        return text + f"<analyze>\nLet's analyze the Paragraph {step} step by step: "
    return tok.apply_chat_template(row["messages"], add_generation_prompt=row["add_generation_prompt"])


def test_chat_golden_rows_match_text_and_ids(qwen, r1):
    rows = _rows("chat_golden.jsonl")
    assert len(rows) == 14
    for row in rows:
        tok = qwen if row["name"].startswith("chatml") else r1
        text = _render_row(tok, row)
        assert text == row["text"], row["name"]
        assert tok.encode(text) == row["ids"], row["name"]


def test_api_surface(qwen, r1):
    assert qwen.vocab_size == 151669 == len(qwen) == qwen.get_vocab_size()
    assert qwen.token_to_id("<|im_end|>") == 151645
    assert qwen.token_to_id("no such token") is None
    assert qwen.id_to_token(279) == "\u0120the"
    assert qwen.id_to_token(10**7) is None
    assert qwen.is_special(151643) and not qwen.is_special(151667)
    assert r1.eos_token_id == 151643 and r1.bos_token_id == 151646
    assert r1.eos_token == "<\uff5cend\u2581of\u2581sentence\uff5c>"
    assert qwen.bos_token_id is None and qwen.eos_token_id == 151645
    assert r1.chat_family == "deepseek_r1" and qwen.chat_family == "chatml"
    ids = qwen.encode("<|im_start|>user\nhi<|im_end|>")
    assert qwen.decode(ids, skip_special_tokens=True) == "user\nhi"
    assert qwen.encode_batch(["a b", "c"]) == [qwen.encode("a b"), qwen.encode("c")]
    bare = genprm.Tokenizer.from_file(QWEN_DIR / "tokenizer.json")
    assert bare.encode("Hello world") == [9707, 1879]
    assert bare.chat_family == "none"
    with pytest.raises(ValueError, match="no chat template"):
        bare.apply_chat_template([{"role": "user", "content": "x"}])


def test_invalid_utf8_becomes_replacement_characters(qwen):
    samples = [b"abc\xff", b"\xe4\xbd", b"\xed\xa0\x80x", b"\xc0\xaf", b"ok \xf0\x9f\x98", b"\x80\x80 \xe4\xbd\xa0"]
    for data in samples:
        assert qwen.encode_bytes(data) == qwen.encode(data.decode("utf-8", "replace")), data
    # decode of a lone lead byte: U+FFFD, like tokenizers
    e4 = qwen.token_to_id("\u00e4")
    assert qwen.decode([e4]) == "\ufffd"
    # Python str with lone surrogates cannot be UTF-8 at all: rejected before reaching C++.
    with pytest.raises(UnicodeEncodeError):
        qwen.encode("\ud800")


def test_stream_decoder_property(qwen):
    rng = random.Random(5)
    texts = ["Hello \u4f60\u597d \U0001F600\U0001F44D\U0001F3FD \u0645\u0631\u062d\u0628\u0627",
             "$\\frac{1}{2}$ \u03b1\u03b2 <think>x</think> done"]
    for skip in (False, True):
        for trial in range(300):
            ids = list(qwen.encode(texts[trial % 2])) if trial % 3 else []
            for _ in range(rng.randrange(25)):
                r = rng.random()
                tok = rng.randrange(256) if r < 0.5 else (151643 + rng.randrange(26) if r < 0.7 else rng.randrange(151669))
                ids.insert(rng.randrange(len(ids) + 1), tok)
            sd = qwen.stream_decoder(skip_special_tokens=skip)
            chunks = [sd.push(i) for i in ids]
            chunks.append(sd.flush())
            for c in chunks:
                c.encode("utf-8")  # valid text, no split surrogates
            assert "".join(chunks) == qwen.decode(ids, skip_special_tokens=skip)


def _byte_chars():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _tiny_tokenizer_json():
    """The Qwen tokenizer.json with its vocabulary cut to the 256 byte tokens and no merges."""
    head = json.loads((QWEN_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = {ch: b for b, ch in _byte_chars().items()}
    head["model"]["vocab"] = vocab
    head["model"]["merges"] = []
    head["added_tokens"] = []
    return head


def test_malformed_tokenizer_json_errors_name_the_file(tmp_path):
    good = _tiny_tokenizer_json()
    ok = tmp_path / "tiny.json"
    ok.write_text(json.dumps(good), encoding="utf-8")
    tiny = genprm.Tokenizer.from_file(ok)
    assert tiny.decode(tiny.encode("h\u00e9llo")) == "h\u00e9llo" and len(tiny.encode("h\u00e9llo")) == 6
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"type": "BPE", "vocab": {', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json: invalid JSON"):
        genprm.Tokenizer.from_file(bad)
    cases = {
        "nomerges.json": (lambda j: j["model"].pop("merges"), "merges"),
        "unigram.json": (lambda j: j["model"].update(type="Unigram"), "model type 'Unigram' is not supported"),
        "pretok.json": (lambda j: j.update(pre_tokenizer={"type": "Metaspace"}), "pre_tokenizer 'Metaspace' is not supported"),
    }
    for name, (mutate, msg) in cases.items():
        j = json.loads(json.dumps(good))
        mutate(j)
        p = tmp_path / name
        p.write_text(json.dumps(j), encoding="utf-8")
        with pytest.raises(ValueError) as e:
            genprm.Tokenizer.from_file(p)
        assert str(p) in str(e.value) and msg in str(e.value)


# ---- chat templates against transformers ---------------------------------------------------------

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi\n\nthere"}],
    [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "<think>\nhm\n</think>\n\nA1"},
     {"role": "user", "content": "Q2"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
     {"role": "assistant", "content": "plain answer"}, {"role": "user", "content": "Q2"},
     {"role": "assistant", "content": "<think>why</think>because"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b</think>c</think>\n\nd"}],
    [{"role": "system", "content": "first"}, {"role": "system", "content": "second"}, {"role": "user", "content": "u"}],
    [{"role": "user", "content": "\u4f60\u597d \U0001F600 $x^2$"}, {"role": "assistant", "content": "\n\n<think>\n\nx\n\n</think>\n\n\ny"}],
]

QWEN25_MATH_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0]['content'] + "
    "'<|im_end|>\\n' }}\n{%- else %}\n    {{- '<|im_start|>system\\nPlease reason step by step, and put your final "
    "answer within \\\\boxed{}.<|im_end|>\\n' }}\n{%- endif %}\n{%- for message in messages %}\n    {%- if "
    "(message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == "
    "\"assistant\") %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + "
    "'\\n' }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- "
    "'<|im_start|>assistant\\n' }}\n{%- endif %}\n")

MISTRAL_LIKE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ '<<SYS>>' + message['content'] + '<</SYS>>' }}{% endif %}{% endfor %}")


def _model_dir(tmp_path, src, template, name, extra=None):
    d = tmp_path / name
    d.mkdir()
    shutil.copy(src / "tokenizer.json", d / "tokenizer.json")
    cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["chat_template"] = template
    cfg.update(extra or {})
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
    return d


def _check_against_transformers(model_dir, expected_family):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    tok = genprm.Tokenizer.from_pretrained(model_dir)
    assert tok.chat_family == expected_family
    for conv in CONVERSATIONS:
        for gen in (False, True):
            want = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            assert tok.apply_chat_template(conv, add_generation_prompt=gen) == want, (conv, gen)
            if expected_family != "unknown":
                # the native renderer itself, not the jinja2 fallback
                assert tok.core.apply_chat_template(conv, gen) == want, (conv, gen)
    return tok, hf


def test_chat_r1_and_qwen3_against_transformers(tmp_path):
    _check_against_transformers(R1_DIR, "deepseek_r1")
    _check_against_transformers(QWEN_DIR, "chatml")


def test_chat_qwen25_math_default_system_against_transformers(tmp_path):
    d = _model_dir(tmp_path, QWEN_DIR, QWEN25_MATH_TEMPLATE, "qwen25math")
    _check_against_transformers(d, "chatml")


def test_unknown_family_uses_jinja2_like_transformers(tmp_path):
    d = _model_dir(tmp_path, R1_DIR, MISTRAL_LIKE_TEMPLATE, "mistral_like")
    tok, _ = _check_against_transformers(d, "unknown")
    with pytest.raises(ValueError, match="pre-rendered prompt"):
        tok.core.apply_chat_template(CONVERSATIONS[0], False)


def test_chat_messages_as_objects(r1):
    objs = [genprm.ChatMessage("system", "S"), genprm.ChatMessage(role="user", content="Q")]
    dicts = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert r1.apply_chat_template(objs, add_generation_prompt=True) == r1.apply_chat_template(dicts, True)
    assert r1.apply_chat_template(dicts, True) == "<\uff5cbegin\u2581of\u2581sentence\uff5c>S<\uff5cUser\uff5c>Q<\uff5cAssistant\uff5c><think>\n"
    # the policy prompt of rpe and search: [system?, user = problem] with the generation prompt
    assert genprm.tokenizer.problem_prompt(r1, "Q", "S") == r1.apply_chat_template(dicts, True)
    assert genprm.tokenizer.problem_prompt(r1, "Q") == r1.apply_chat_template(dicts[1:], True)


def test_template_kwargs_go_through_jinja2(qwen):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(QWEN_DIR))
    conv = CONVERSATIONS[0]
    want = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert qwen.apply_chat_template(conv, add_generation_prompt=True, enable_thinking=False) == want
