"""genprm.Engine end to end: token-id prompts on tests/data/tiny_qwen2_a (against the HF greedy
golden), and text prompts / stop strings / streaming / resume on a random model that has the
R1-Distill tokenizer's vocabulary, made at test time with genprm.testing."""
import json
from pathlib import Path

import pytest

import genprm
from genprm.testing import copy_tokenizer, make_random_qwen2

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
TINY = DATA / "tiny_qwen2_a"


@pytest.fixture(scope="module")
def tiny_engine():
    return genprm.Engine(str(TINY), kv_blocks=256, block_size=8, max_batch_tokens=64)


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("r1_random")
    make_random_qwen2(d, vocab_size=151665, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True, seed=3,
                      eos_token_id=151643)
    copy_tokenizer(d, "r1distill")
    return str(d)


def test_greedy_matches_hf_golden(tiny_engine):
    rows = json.loads((DATA / "tiny_qwen2_a_greedy.json").read_text())
    params = genprm.SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True, logprobs=2)
    outs = tiny_engine.generate([r["prompt"] for r in rows], params)
    assert len(outs) == len(rows)
    for row, out in zip(rows, outs):
        assert out.error is None
        assert out.finish_reason == "length"
        for k, (got, want) in enumerate(zip(out.token_ids, row["greedy"])):
            if got != want:  # only acceptable where the top-2 logits are within rounding
                top = out.logprobs[k].top
                assert abs(top[0][1] - top[1][1]) < 1e-4, (row["prompt_len"], k)
                break


def test_outputs_shape_n_samples_and_counters(tiny_engine):
    before = tiny_engine.stats()
    prompt = list(range(10, 70))
    params = genprm.SamplingParams(temperature=0.8, top_k=40, max_tokens=8, ignore_eos=True, seed=7, logprobs=0,
                                   tracked_token_ids=[3, 4])
    out = tiny_engine.generate(prompt, params, n=5)[0]
    assert len(out.samples) == 5
    assert out.token_ids == out.samples[0].token_ids
    assert all(len(s.token_ids) == 8 and s.finish_reason == "length" for s in out.samples)
    assert len({tuple(s.token_ids) for s in out.samples}) > 1
    lp = out.samples[1].logprobs
    assert len(lp) == 8 and lp[0].token == out.samples[1].token_ids[0] and len(lp[0].tracked) == 2
    after = tiny_engine.stats()
    assert after["prompt_tokens_submitted"] - before["prompt_tokens_submitted"] == 60
    assert after["prompt_tokens_computed"] - before["prompt_tokens_computed"] == 60  # once for 5 samples
    assert after["generated_tokens"] - before["generated_tokens"] == 40
    # Same seed again: same samples (now served from the prefix cache).
    again = tiny_engine.generate([prompt], params, n=5)[0]
    assert [s.token_ids for s in again.samples] == [s.token_ids for s in out.samples]
    assert again.cached_prompt_tokens == 59
    assert tiny_engine.stats()["blocks_in_use"] == 0


def test_bad_input_raises_value_error(tiny_engine):
    with pytest.raises(ValueError, match="outside"):
        tiny_engine.generate([[5, 9999]])
    with pytest.raises(ValueError, match="top_p"):
        tiny_engine.generate([[5]], genprm.SamplingParams(top_p=0.0))
    with pytest.raises(ValueError, match="tokenizer"):
        tiny_engine.generate("text needs a tokenizer")
    with pytest.raises(ValueError):
        genprm.Engine(str(TINY), dtype="int8")


def test_kv_memory_budget():
    # tiny_qwen2_a: 2 layers x (K, V) x 16 slots x 2 KV heads x 16 dims x 4 bytes = 8 KiB per block
    eng = genprm.Engine(str(TINY), kv_memory="1MiB")
    assert eng.stats()["blocks_total"] == 128
    assert genprm.Engine(str(TINY), kv_memory=8192 * 3 + 5).stats()["blocks_total"] == 3
    with pytest.raises(ValueError, match="kv_memory"):
        genprm.Engine(str(TINY), kv_memory="lots")
    with pytest.raises(ValueError, match="holds no block"):
        genprm.Engine(str(TINY), kv_memory=100)


def test_tiny_cache_preempts_and_matches(tiny_engine):
    prompts = [list(range(5 + i, 25 + 3 * i)) for i in range(4)]
    params = genprm.SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True)
    want = [o.token_ids for o in tiny_engine.generate(prompts, params)]
    small = genprm.Engine(str(TINY), kv_blocks=13, block_size=4)  # the longest needs 12 blocks alone
    got = small.generate(prompts, params)
    assert all(o.error is None for o in got)
    assert [o.token_ids for o in got] == want
    assert small.stats()["preemptions"] > 0
    huge = small.generate([list(range(100))], params)[0]
    assert huge.error is not None and "KV" in huge.error


def test_text_stop_strings_streaming_and_resume(text_model):
    eng = genprm.Engine(text_model, kv_blocks=256, block_size=4)
    assert eng.has_tokenizer
    prompt = "Step 1: compute 2 + 2.\nThe answer is"
    base = genprm.SamplingParams(temperature=0.0, max_tokens=30, ignore_eos=True)
    full = eng.generate(prompt, base)[0]
    text = full.text
    assert full.finish_reason == "length" and len(text) > 12

    stop = text[6:9]
    cut = text.find(stop)
    p = genprm.SamplingParams(temperature=0.0, max_tokens=30, ignore_eos=True, stop=[stop, "\x00never"])
    o = eng.generate(prompt, p)[0]
    assert o.finish_reason == "stop" and o.stop_reason == stop
    assert o.text == text[:cut]
    p.include_stop_str_in_output = True
    o2 = eng.generate(prompt, p)[0]
    assert o2.text == text[:cut + len(stop)]

    pieces = list(eng.stream(prompt, p))
    assert "".join(pieces) == o2.text
    streamed = eng.stream(prompt, base)
    assert "".join(streamed) == text
    assert streamed.output.token_ids == full.token_ids

    # Resume: earlier prompt + generated text + new text recomputes only from the first
    # differing token.
    before = eng.stats()["prompt_tokens_computed"]
    follow = eng.generate(prompt + text + "\n[Code Output]\n4\n", genprm.SamplingParams(temperature=0.0, max_tokens=3))[0]
    computed = eng.stats()["prompt_tokens_computed"] - before
    prev = list(full.prompt_ids) + list(full.token_ids)
    ids = list(follow.prompt_ids)
    lcp = 0
    while lcp < min(len(ids), len(prev) - 1) and ids[lcp] == prev[lcp]:
        lcp += 1
    assert lcp > len(full.prompt_ids)  # re-tokenization kept most of the generated tokens
    assert computed == len(ids) - min(lcp, len(ids) - 1)
    assert follow.cached_prompt_tokens == len(ids) - computed


def test_stop_token_and_eos(text_model):
    eng = genprm.Engine(text_model, kv_blocks=64)
    base = genprm.SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    full = eng.generate("hello world", base)[0]
    tok = full.token_ids[3]
    o = eng.generate("hello world", genprm.SamplingParams(temperature=0.0, max_tokens=12, stop_token_ids=[tok]))[0]
    assert o.token_ids == full.token_ids[:full.token_ids.index(tok) + 1]
    assert o.finish_reason == "stop" and o.stop_reason == str(tok)


def test_submit_poll_cancel_and_reentrant_callbacks(tiny_engine):
    done = {}

    def second(out):
        done["second"] = out

    def first(out):
        done["first"] = out
        tiny_engine.submit([7, 8, 9], genprm.SamplingParams(temperature=0.0, max_tokens=2), on_done=second)

    long_id = tiny_engine.submit(list(range(3, 20)), genprm.SamplingParams(temperature=0.0, max_tokens=500,
                                                                          ignore_eos=True),
                                 on_done=lambda out: done.__setitem__("long", out))
    tiny_engine.submit([4, 5], genprm.SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True), on_done=first)
    for _ in range(4):
        assert tiny_engine.poll()
    tiny_engine.cancel(long_id)
    tiny_engine.run_until_idle()
    assert done["long"].finish_reason == "abort" and 0 < len(done["long"].token_ids) < 500
    assert len(done["first"].token_ids) == 3 and len(done["second"].token_ids) >= 1
    assert tiny_engine.stats()["blocks_in_use"] == 0


def test_decode_graphs_static_buffers_match_and_are_reported(tiny_engine):
    # "static": decode steps over the fixed buffers a CUDA graph would replay (here on the CPU,
    # run eagerly); the tokens are those of the ordinary path, and the stats say it was used.
    prompts = [list(range(7 + i, 19 + 2 * i)) for i in range(3)]
    params = genprm.SamplingParams(temperature=0.7, top_p=0.9, max_tokens=12, ignore_eos=True, seed=11)
    want = [o.token_ids for o in tiny_engine.generate(prompts, params)]
    eng = genprm.Engine(str(TINY), kv_blocks=64, block_size=8, decode_graphs="static")
    assert [o.token_ids for o in eng.generate(prompts, params)] == want
    st = eng.stats()
    assert st["graph_buckets"] == 9 and not st["graphs_captured"]  # 1, 2, 4, ... 256
    assert st["graph_steps"] >= 11
    assert tiny_engine.stats()["graph_buckets"] == 0  # auto: off on the CPU
    with pytest.raises(ValueError, match="decode_graphs 'fast' is not valid"):
        genprm.Engine(str(TINY), decode_graphs="fast")
