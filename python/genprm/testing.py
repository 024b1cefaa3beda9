"""Test helpers: random Qwen2 checkpoints and tokenizer fixtures.

``make_random_qwen2(out_dir, ...)`` writes a Hugging Face-format Qwen2 model directory
(``config.json`` + safetensors with HF tensor names, written by genprm's own writer) that
``transformers.Qwen2ForCausalLM.from_pretrained`` loads. ``copy_tokenizer(dst, which)`` copies the
tokenizer fixtures of ``tests/data`` next to it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .io import save_safetensors, save_sharded_safetensors

_DTYPES = ("float32", "bfloat16", "float16")


def _cast(arr: np.ndarray, dtype: str):
    if dtype == "float32":
        return arr.astype(np.float32)
    if dtype == "float16":
        return arr.astype(np.float16)
    import torch
    return torch.from_numpy(arr.astype(np.float32)).to(torch.bfloat16)


def _greedy_shard_count(sizes: Sequence[int], max_bytes: int) -> int:
    count, used = 1, 0
    for s in sizes:
        if used and used + s > max_bytes:
            count, used = count + 1, 0
        used += s
    return count


def _max_bytes_for(sizes: Sequence[int], shards: int) -> int:
    """Smallest shard limit for which the writer's greedy packing yields at most ``shards``."""
    lo, hi = max(sizes), sum(sizes)
    while lo < hi:
        mid = (lo + hi) // 2
        if _greedy_shard_count(sizes, mid) <= shards:
            hi = mid
        else:
            lo = mid + 1
    return lo


def make_random_qwen2(out_dir: Union[str, os.PathLike], *, vocab_size: int = 512, hidden_size: int = 64,
                      intermediate_size: int = 128, num_hidden_layers: int = 2,
                      num_attention_heads: int = 4, num_key_value_heads: int = 2,
                      tie_word_embeddings: bool = False, rope_theta: float = 10000.0,
                      max_position_embeddings: int = 2048, dtype: str = "float32", seed: int = 0,
                      shards: int = 1, eos_token_id: Optional[Union[int, List[int]]] = None,
                      bos_token_id: Optional[int] = None) -> str:
    """Writes a random Qwen2 model (weights ~ N(0, 0.02), norm weights ~ 1 + N(0, 0.02), seeded
    numpy generator) into ``out_dir``; returns ``out_dir``. ``shards > 1`` writes
    ``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``."""
    if dtype not in _DTYPES:
        raise ValueError(f"make_random_qwen2: dtype must be one of {_DTYPES}, got {dtype!r}")
    if hidden_size % num_attention_heads or num_attention_heads % num_key_value_heads:
        raise ValueError("make_random_qwen2: hidden_size % num_attention_heads and "
                         "num_attention_heads % num_key_value_heads must be 0")
    if shards < 1:
        raise ValueError("make_random_qwen2: shards must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    head_dim = hidden_size // num_attention_heads
    q_out, kv_out = num_attention_heads * head_dim, num_key_value_heads * head_dim

    def normal(*shape):
        return rng.normal(0.0, 0.02, size=shape).astype(np.float32)

    def norm():
        return (1.0 + rng.normal(0.0, 0.02, size=(hidden_size,))).astype(np.float32)

    w: Dict[str, np.ndarray] = {"model.embed_tokens.weight": normal(vocab_size, hidden_size)}
    for i in range(num_hidden_layers):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = normal(q_out, hidden_size)
        w[p + "self_attn.q_proj.bias"] = normal(q_out)
        w[p + "self_attn.k_proj.weight"] = normal(kv_out, hidden_size)
        w[p + "self_attn.k_proj.bias"] = normal(kv_out)
        w[p + "self_attn.v_proj.weight"] = normal(kv_out, hidden_size)
        w[p + "self_attn.v_proj.bias"] = normal(kv_out)
        w[p + "self_attn.o_proj.weight"] = normal(hidden_size, q_out)
        w[p + "mlp.gate_proj.weight"] = normal(intermediate_size, hidden_size)
        w[p + "mlp.up_proj.weight"] = normal(intermediate_size, hidden_size)
        w[p + "mlp.down_proj.weight"] = normal(hidden_size, intermediate_size)
        w[p + "input_layernorm.weight"] = norm()
        w[p + "post_attention_layernorm.weight"] = norm()
    w["model.norm.weight"] = norm()
    if not tie_word_embeddings:
        w["lm_head.weight"] = normal(vocab_size, hidden_size)
    tensors = {k: _cast(v, dtype) for k, v in w.items()}

    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "attention_dropout": 0.0,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "hidden_act": "silu",
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": intermediate_size,
        "max_position_embeddings": max_position_embeddings,
        "max_window_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_hidden_layers": num_hidden_layers,
        "num_key_value_heads": num_key_value_heads,
        "rms_norm_eps": 1e-6,
        "rope_theta": float(rope_theta),
        "rope_parameters": {"rope_theta": float(rope_theta), "rope_type": "default"},
        "sliding_window": None,
        "use_sliding_window": False,
        "tie_word_embeddings": bool(tie_word_embeddings),
        "dtype": dtype,
        "use_cache": True,
        "vocab_size": vocab_size,
    }
    for stale in ("model.safetensors", "model.safetensors.index.json"):
        (out / stale).unlink(missing_ok=True)
    for old in out.glob("model-*-of-*.safetensors"):
        old.unlink()
    if shards == 1:
        save_safetensors(out / "model.safetensors", tensors, {"format": "pt"})
    else:
        if shards > len(tensors):
            raise ValueError(f"make_random_qwen2: shards={shards} exceeds the {len(tensors)} tensors")
        itemsize = 4 if dtype == "float32" else 2
        sizes = [int(np.prod(v.shape)) * itemsize for v in w.values()]
        names = save_sharded_safetensors(out, tensors, _max_bytes_for(sizes, shards), {"format": "pt"})
        assert len(names) <= shards
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return os.fspath(out_dir)


def find_test_data() -> Path:
    """The project's tests/data (GENPRM_TEST_DATA, else found above this file or the cwd)."""
    env = os.environ.get("GENPRM_TEST_DATA")
    if env:
        return Path(env)
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for d in (start, *start.parents):
            cand = d / "tests" / "data"
            if (cand / "r1distill_tokenizer").is_dir():
                return cand
    raise FileNotFoundError("tests/data not found: set GENPRM_TEST_DATA to the project's tests/data")


def copy_tokenizer(dst_dir: Union[str, os.PathLike], which: str = "r1distill") -> str:
    """Copies tokenizer.json and tokenizer_config.json of ``tests/data/<which>_tokenizer``
    (which = "r1distill" or "qwen") into ``dst_dir``; returns ``dst_dir``."""
    if which not in ("r1distill", "qwen"):
        raise ValueError(f"copy_tokenizer: which must be 'r1distill' or 'qwen', got {which!r}")
    src = find_test_data() / f"{which}_tokenizer"
    dst = Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(src / name, dst / name)
    return os.fspath(dst_dir)


__all__ = ["make_random_qwen2", "copy_tokenizer", "find_test_data"]
