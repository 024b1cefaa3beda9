"""The peer, measured in the same run: Hugging Face transformers `generate` (sdpa, eager) with the
DeepSeek-R1-Distill-Qwen-1.5B shape and random weights, on the same device and dtype as
bench_engine, with the workloads of tests/data/hf_h200_anchors.json.

    python benchmarks/hf_peer.py --device cuda --dtype bfloat16 [--quick]

Prints one line per workload and a machine-readable `HF_PEER {json}` line. tok/s = generated
tokens / wall time of the whole generate call (prefill included), min_new_tokens = max_new_tokens.
"""
import argparse
import json
import time

import torch


def r1_distill_1p5b_config(transformers):
    return transformers.Qwen2Config(
        vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=131072,
        rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_generate(model, ids, device, **kw):
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, **kw)
    sync(device)
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--quick", action="store_true", help="fewer new tokens (a smoke run)")
    args = ap.parse_args()
    import transformers

    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    cfg = r1_distill_1p5b_config(transformers)
    with torch.device(args.device):
        model = transformers.Qwen2ForCausalLM(cfg).to(dtype)
    model.eval()
    model.generation_config.pad_token_id = 0
    scale = 8 if args.quick else 1
    g = torch.Generator(device="cpu").manual_seed(0)

    def prompt(batch, length):
        return torch.randint(0, cfg.vocab_size, (batch, length), generator=g).to(args.device)

    results = {}
    # warm-up
    timed_generate(model, prompt(1, 16), args.device, max_new_tokens=4, min_new_tokens=4, do_sample=False)

    new = 256 // scale
    _, s = timed_generate(model, prompt(1, 512), args.device, max_new_tokens=new, min_new_tokens=new,
                          do_sample=False)
    results["hf_b1_greedy"] = {"batch": 1, "prompt": 512, "new": new, "s": s, "gen_tok_per_s": new / s}

    _, s = timed_generate(model, prompt(1, 1024), args.device, max_new_tokens=new, min_new_tokens=new,
                          do_sample=True, temperature=0.6, top_p=0.95, top_k=20, num_return_sequences=8)
    results["hf_maj8_sample"] = {"batch": 8, "prompt": 1024, "new": new, "s": s, "gen_tok_per_s": 8 * new / s}

    new64 = 128 // scale
    _, s = timed_generate(model, prompt(64, 512), args.device, max_new_tokens=new64, min_new_tokens=new64,
                          do_sample=True, temperature=0.6, top_p=0.95, top_k=20)
    results["hf_b64_sample"] = {"batch": 64, "prompt": 512, "new": new64, "s": s, "gen_tok_per_s": 64 * new64 / s}

    ids = prompt(1, 4096)
    with torch.no_grad():
        model(ids[:, :64])
        sync(args.device)
        t0 = time.perf_counter()
        model(ids)
        sync(args.device)
    s = time.perf_counter() - t0
    results["hf_prefill_4096_tok_per_s"] = 4096 / s

    for k, v in results.items():
        print(k, v if not isinstance(v, dict) else f"{v['gen_tok_per_s']:.1f} tok/s ({v['s']:.2f} s)")
    print("HF_PEER " + json.dumps(results))


if __name__ == "__main__":
    main()
