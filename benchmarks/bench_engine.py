"""genprm.Engine against Hugging Face transformers' generate (the peer), same random model, same
run, CPU by default.

    PYTHONPATH=build/python .venv/bin/python benchmarks/bench_engine.py [--device cpu] [--new 32]

A random Qwen2 (~33 M parameters) is written with the project's writer (genprm.testing), then
both generate greedily from the same prompts: batch 1 and batch 8 (64-token prompts), and 8
samples of one 1000-token prompt (n = 8 for genprm; num_return_sequences = 8 for HF). Prints
tokens/s for each, the ratio genprm / HF, whether the greedy tokens agree, and a machine-readable
line BENCH_ENGINE_PY {json}.
"""
import argparse
import json
import tempfile
import time

import numpy as np
import torch
import transformers

import genprm
from genprm.testing import make_random_qwen2


def hf_generate(model, prompts, new, device, n=1):
    ids = torch.tensor(prompts, device=device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                             do_sample=n > 1, num_return_sequences=n, top_k=None, top_p=None, temperature=None,
                             pad_token_id=0)
    dt = time.perf_counter() - t0
    return out[:, ids.shape[1]:].tolist(), dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--new", type=int, default=32)
    args = ap.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    res = {"device": args.device}
    with tempfile.TemporaryDirectory() as d:
        make_random_qwen2(d, vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=6,
                          num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True, seed=1)
        hf = transformers.Qwen2ForCausalLM.from_pretrained(d, torch_dtype=torch.float32).to(args.device).eval()
        eng = genprm.Engine(d, device=args.device, kv_blocks=2048, max_batch_tokens=2048)
        greedy = genprm.SamplingParams(temperature=0.0, max_tokens=args.new, ignore_eos=True)
        eng.generate([[1, 2, 3]], genprm.SamplingParams(temperature=0.0, max_tokens=2))  # warm-up
        hf_generate(hf, [[1, 2, 3]], 2, args.device)
        for batch in (1, 8):
            prompts = rng.integers(0, 32000, size=(batch, 64)).tolist()
            want, t_hf = hf_generate(hf, prompts, args.new, args.device)
            t0 = time.perf_counter()
            outs = eng.generate(prompts, greedy)
            t_g = time.perf_counter() - t0
            agree = sum(o.token_ids == w for o, w in zip(outs, want))
            tok = batch * args.new
            print(f"batch {batch}: genprm {tok / t_g:8.1f} tok/s, HF {tok / t_hf:8.1f} tok/s, ratio "
                  f"{t_hf / t_g:.2f}x; greedy sequences equal {agree}/{batch}")
            res[f"b{batch}_genprm_tok_s"] = tok / t_g
            res[f"b{batch}_hf_tok_s"] = tok / t_hf
            res[f"b{batch}_ratio"] = t_hf / t_g
            res[f"b{batch}_greedy_equal"] = agree
        prompt = rng.integers(0, 32000, size=(1, 1000)).tolist()
        _, t_hf = hf_generate(hf, prompt, args.new, args.device, n=8)
        before = eng.stats()["prompt_tokens_computed"]
        t0 = time.perf_counter()
        eng.generate(prompt, genprm.SamplingParams(temperature=1.0, max_tokens=args.new, ignore_eos=True, seed=0), n=8)
        t_g = time.perf_counter() - t0
        computed = eng.stats()["prompt_tokens_computed"] - before
        tok = 8 * args.new
        print(f"8 samples of one 1000-token prompt: genprm {tok / t_g:8.1f} tok/s (prompt tokens computed "
              f"{computed}), HF {tok / t_hf:8.1f} tok/s, ratio {t_hf / t_g:.2f}x")
        res["maj8_genprm_tok_s"] = tok / t_g
        res["maj8_hf_tok_s"] = tok / t_hf
        res["maj8_ratio"] = t_hf / t_g
        res["maj8_prompt_tokens_computed"] = computed
    print("BENCH_ENGINE_PY " + json.dumps(res))


if __name__ == "__main__":
    main()
