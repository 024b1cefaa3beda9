"""genprm.Model against Hugging Face transformers' Qwen2ForCausalLM, live, on random small
configurations saved with save_pretrained (tied/untied, MHA/GQA/MQA, head_dim != hidden/heads,
rope theta, layer counts, sharded and bf16 checkpoints), plus the stored golden fixture."""
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as np_load_file

import genprm

DATA = Path(__file__).resolve().parents[1] / "data"
transformers = pytest.importorskip("transformers")


def _hf_model(seed, *, vocab, hidden, layers, heads, kv_heads, head_dim=None, theta=10000.0, tied=False):
    cfg = transformers.Qwen2Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden + 8, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, rope_theta=theta,
        tie_word_embeddings=tied, max_position_embeddings=512, rms_norm_eps=1e-6,
        **({"head_dim": head_dim} if head_dim else {}))
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    # O(1) activations, so that 1e-4 on the logits is a meaningful bound (HF init is N(0, 0.02)).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5 * (2.0 if "q_proj" in name or "k_proj" in name else 1.0))
    return model


def _hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def _greedy_ours(m, prompt, n):
    ids = list(prompt)
    margins = []
    for _ in range(n):
        last = m.logits(ids)[-1]
        top2 = np.sort(last)[-2:]
        margins.append(float(top2[1] - top2[0]))
        ids.append(int(last.argmax()))
    return ids[len(prompt):], margins


def _check_greedy(ours, margins, theirs, ours_logits_fn):
    """Equal, or the first difference sits where our top-2 margin is below 1e-4."""
    for t, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            assert margins[t] < 1e-4, f"greedy token {t}: ours {a} vs HF {b}, top-2 margin {margins[t]}"
            return
    assert len(ours) == len(theirs)


CONFIGS = {
    "tied_mqa_theta1e6": dict(vocab=97, hidden=32, layers=2, heads=4, kv_heads=1, theta=1e6, tied=True),
    "mha_headdim24_1layer": dict(vocab=120, hidden=40, layers=1, heads=4, kv_heads=4, head_dim=24, theta=500.0),
    "gqa3_3layers_sharded": dict(vocab=150, hidden=48, layers=3, heads=6, kv_heads=2, theta=20000.0),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_random_configs_match_hf_logits_and_greedy(tmp_path, name):
    spec = CONFIGS[name]
    hf = _hf_model(hash(name) % 1000, **spec)
    kwargs = {"max_shard_size": "40KB"} if "sharded" in name else {}
    hf.save_pretrained(tmp_path, **kwargs)
    if "sharded" in name:
        assert (tmp_path / "model.safetensors.index.json").exists()
        assert len(list(tmp_path.glob("model-*.safetensors"))) >= 3
    if spec.get("tied"):
        assert "lm_head.weight" not in np_load_file(str(tmp_path / "model.safetensors"))

    m = genprm.Model.load(tmp_path, device="cpu", dtype="float32")
    assert m.config.num_key_value_heads == spec["kv_heads"]
    assert m.config.head_dim == spec.get("head_dim", spec["hidden"] // spec["heads"])
    assert m.num_parameters == sum(p.numel() for p in hf.parameters())

    rng = np.random.default_rng(len(name))
    for length in (1, 5, 37):
        ids = rng.integers(0, spec["vocab"], size=length).tolist()
        ours = m.logits(ids)
        assert ours.shape == (length, spec["vocab"]) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, _hf_logits(hf, ids), rtol=0, atol=1e-4)

    prompt = rng.integers(0, spec["vocab"], size=6).tolist()
    with torch.no_grad():
        theirs = hf.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                             pad_token_id=0)[0, len(prompt):].tolist()
    ours, margins = _greedy_ours(m, prompt, 12)
    _check_greedy(ours, margins, theirs, m.logits)


def test_bf16_checkpoint_converted_on_load(tmp_path):
    hf = _hf_model(5, vocab=64, hidden=32, layers=2, heads=4, kv_heads=2)
    with torch.no_grad():  # round the weights to bf16 but keep the model (and its inv_freq) float32
        for p in hf.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    ids = list(range(3, 40))
    want32 = _hf_logits(hf, ids)
    hf.to(torch.bfloat16).save_pretrained(tmp_path)
    # float32 compute on the bf16 checkpoint is HF's float32 forward on the same weights.
    m32 = genprm.Model.load(tmp_path, dtype="float32")
    np.testing.assert_allclose(m32.logits(ids), want32, rtol=0, atol=1e-4)
    # bfloat16 compute: close to HF's own bfloat16 load and forward (both round at every op).
    m16 = genprm.Model.load(tmp_path, dtype=torch.bfloat16)
    assert m16.dtype == "bfloat16"
    hf16 = transformers.Qwen2ForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    theirs16 = _hf_logits(hf16, ids)
    diff16 = np.abs(m16.logits(ids) - theirs16).max()
    diff_to_f32 = np.abs(theirs16 - want32).max()
    # Our bf16 result is at least as close to HF bf16 as HF bf16 is to float32.
    print(f"bf16 compute: |ours - HF bf16| {diff16:.4g}, |HF bf16 - HF f32| {diff_to_f32:.4g}")
    assert diff16 <= max(diff_to_f32, 0.02 * np.abs(want32).max()), (diff16, diff_to_f32)


def test_golden_fixture_through_python():
    g = np_load_file(str(DATA / "tiny_qwen2_a_golden.safetensors"))
    m = genprm.Model.load(DATA / "tiny_qwen2_a")
    assert (m.config.vocab_size, m.config.num_hidden_layers, m.config.tie_word_embeddings) == (512, 2, False)
    for i in range(4):
        np.testing.assert_allclose(m.logits(g[f"input_ids_{i}"]), g[f"logits_{i}"], rtol=0, atol=1e-4)
    assert "qwen2" in repr(m) and m.device == "cpu" and m.dtype == "float32"
    assert m.kv_bytes_per_block(16) == 2 * 2 * 16 * 2 * 16 * 4


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        genprm.Model.load(tmp_path)
    with pytest.raises(ValueError, match="dtype 'float64'"):
        genprm.Model.load(DATA / "tiny_qwen2_a", dtype="float64")
    with pytest.raises(ValueError, match="device 'tpu'"):
        genprm.Model.load(DATA / "tiny_qwen2_a", device="tpu")
    m = genprm.Model.load(DATA / "tiny_qwen2_a")
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 512\)"):
        m.logits([1, 512])
    with pytest.raises(ValueError, match="non-empty"):
        m.logits([])


@pytest.mark.parametrize("bias", [False, True])
def test_llama_checkpoint_matches_hf(tmp_path, bias):
    """model_type llama: no q/k/v bias by default; attention_bias adds q/k/v and o_proj biases."""
    cfg = transformers.LlamaConfig(vocab_size=90, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, rope_theta=3000.0,
                                   attention_bias=bias, tie_word_embeddings=False, max_position_embeddings=256)
    torch.manual_seed(3)
    hf = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.copy_(1 + 0.1 * torch.randn_like(p) if name.endswith("norm.weight") else
                    0.2 * torch.randn_like(p) if name.endswith("bias") else
                    torch.randn_like(p) / (p.shape[1] ** 0.5 if "embed" not in name else 1.0))
    hf.save_pretrained(tmp_path)
    m = genprm.Model.load(tmp_path)
    assert m.config.model_type == "llama" and m.config.attention_bias == bias
    ids = list(range(1, 30))
    np.testing.assert_allclose(m.logits(ids), _hf_logits(hf, ids), rtol=0, atol=1e-4)
