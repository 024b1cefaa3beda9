"""Trains the small byte-level BPE tokenizer of the arithmetic models (models/arith-tokenizer).

Same structure as the DeepSeek-R1-Distill-Qwen tokenizer (NFC, the Qwen2 split pattern, byte-level
BPE, its special tokens and chat template), trained with Hugging Face `tokenizers` on text of the
synthetic task (policy prompts and solutions, GenPRM rationales in every mode, revision requests).
Merges that would glue `{` to what follows are dropped, so `{` stays its own token: the GenPRM
judgement (`Yes` / `No`) is then one token right after `\\boxed{`, where the reward is read.

    .venv/bin/python scripts/models/make_tokenizer.py
"""
from __future__ import annotations

import json
import random
import sys

import common as C

VOCAB = 640  # byte alphabet + merges (the special tokens come on top)
SEED = 12
PATTERN = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
           "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = "
    "message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in "
    "messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + "
    "message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not "
    "none %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = "
    "content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}"
    "{%- endif %}{%- endfor -%}{% if add_generation_prompt and not ns.is_tool %}"
    "{{'<｜Assistant｜><think>\\n'}}{% endif %}")


def corpus(seed: int):
    rng = random.Random(seed)
    rows = C.S.processbench_rows(3000, seed, error_rate=0.5)
    problems = C.S.make_problems(3000, seed + 1)
    for p in problems:
        for form in ("chat", "chat-nosys", "plain"):
            yield C.policy_prompt(p.text, form) + C.S.solution_text(C.S.solution_steps(p))
        claimed = C.S.corrupt(p, rng)
        yield C.refine_prompt(p, claimed, [C.S.first_wrong(p, claimed)])
        for mode in ("full", "cot", "direct"):
            for ex in C.prm_examples(p, claimed, C.S.solution_steps(p, claimed), mode)[-1:]:
                yield "".join(t for t, _ in ex)
    for r in rows:
        yield "\n".join(r["steps"])
    # The judgement words on their own (in the texts above they always follow `{`, whose merges
    # are dropped below), so that each is one token.
    for _ in range(1000):
        yield "Yes\nNo\n"


def strip_specials(text: str) -> str:
    for s in C.SPECIAL_TOKENS:
        text = text.replace(s, "\n")
    return text


def drop_brace_merges(data: dict) -> int:
    """Removes every merge whose result holds `{` with other characters, then every merge that
    needs a removed token, and renumbers the vocabulary densely."""
    model = data["model"]
    vocab, merges = model["vocab"], model["merges"]
    removed = set()
    kept = []
    for a, b in (m if isinstance(m, list) else m.split(" ") for m in merges):
        tok = a + b
        if ("{" in tok and tok != "{") or a in removed or b in removed:
            removed.add(tok)
            continue
        kept.append([a, b])
    order = sorted((i, t) for t, i in vocab.items() if t not in removed)
    model["vocab"] = {t: k for k, (_, t) in enumerate(order)}
    model["merges"] = kept
    return len(removed)


def main() -> int:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    texts = [strip_specials(t) for t in corpus(SEED)]
    tok.train_from_iterator(texts, trainer=trainer)

    data = json.loads(tok.to_str())
    dropped = drop_brace_merges(data)
    # The R1-Distill tokenizer's exact sections (what genprm's loader and HF both read).
    data["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                              "use_regex": False}
    data["model"].update({"dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                          "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                          "ignore_merges": False})
    base = len(data["model"]["vocab"])
    data["added_tokens"] = [
        {"id": base + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": s not in ("<think>", "</think>")} for i, s in enumerate(C.SPECIAL_TOKENS)]
    out = C.TOKENIZER_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
    cfg = {"add_bos_token": False, "bos_token": C.BOS, "eos_token": C.EOS, "pad_token": C.EOS,
           "chat_template": CHAT_TEMPLATE, "tokenizer_class": "LlamaTokenizerFast", "model_max_length": 2048}
    C.write_json(out / "tokenizer_config.json", cfg)

    # Checks: the tokenizer loads back, Yes/No are single tokens right after `{`, the specials are
    # atomic, and our R1 renderer matches the template rendered by jinja2 (transformers).
    t2 = Tokenizer.from_file(str(out / "tokenizer.json"))
    for word in ("Yes", "No"):
        ids = t2.encode(word, add_special_tokens=False).ids
        assert len(ids) == 1, (word, ids)
        assert t2.encode("{" + word, add_special_tokens=False).ids[1:] == ids, word
    for s in C.SPECIAL_TOKENS:
        assert len(t2.encode(s, add_special_tokens=False).ids) == 1, s
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"), bos_token=C.BOS, eos_token=C.EOS)
    hf.chat_template = CHAT_TEMPLATE
    for msgs, gen in (([("system", "S"), ("user", "U1"), ("assistant", "A</think>B"), ("user", "U2")], False),
                      ([("user", "U")], True)):
        want = hf.apply_chat_template([{"role": r, "content": c} for r, c in msgs], tokenize=False,
                                      add_generation_prompt=gen)
        assert C.render_r1(msgs, gen) == want, (C.render_r1(msgs, gen), want)
    lens = [len(t2.encode(t, add_special_tokens=False).ids) for t in texts[:400]]
    print(f"[tokenizer] {base} tokens + {len(C.SPECIAL_TOKENS)} special ({dropped} brace merges dropped); "
          f"mean {sum(lens) / len(lens):.0f} tokens per training text; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
