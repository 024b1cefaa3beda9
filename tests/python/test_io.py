"""genprm.load_safetensors / save_safetensors / ModelConfig against the PyPI safetensors package and
transformers, plus the testing helpers other test files build on."""
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file as np_load_file
from safetensors.torch import load_file as torch_load_file
from safetensors.torch import save_file as torch_save_file

import genprm
from genprm import testing

DATA = Path(__file__).resolve().parents[1] / "data"


def _bf16_to_f32(t: torch.Tensor) -> np.ndarray:
    return t.to(torch.float32).numpy()


def test_fixture_matches_pypi_reader():
    path = DATA / "tiny_qwen2_a" / "model.safetensors"
    ours = genprm.load_safetensors(path)
    ref = np_load_file(str(path))
    assert sorted(ours) == sorted(ref) and len(ref) == 27
    for k, v in ref.items():
        assert ours[k].dtype == v.dtype == np.float32
        np.testing.assert_array_equal(ours[k], v)


def test_bf16_twin_becomes_float32_exactly():
    path = DATA / "tiny_qwen2_a_bf16"
    ours = genprm.load_safetensors(path)  # a directory works too
    ref = torch_load_file(str(path / "model.safetensors"))
    assert sorted(ours) == sorted(ref)
    for k, v in ref.items():
        assert v.dtype == torch.bfloat16
        assert ours[k].dtype == np.float32
        np.testing.assert_array_equal(ours[k], _bf16_to_f32(v))


def test_reads_every_dtype_written_by_pypi(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "f64": torch.randn(3, 2, dtype=torch.float64, generator=g),
        "f32": torch.randn(4, generator=g),
        "f16": torch.randn(2, 5, generator=g).half(),
        "bf16": torch.randn(7, generator=g).bfloat16(),
        "i64": torch.arange(-3, 3, dtype=torch.int64),
        "i32": torch.arange(5, dtype=torch.int32).reshape(5, 1),
        "i16": torch.arange(4, dtype=torch.int16),
        "i8": torch.arange(-4, 4, dtype=torch.int8),
        "u8": torch.arange(9, dtype=torch.uint8).reshape(3, 3),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    p = tmp_path / "pypi.safetensors"
    torch_save_file(tensors, str(p), metadata={"format": "pt"})
    ours = genprm.load_safetensors(str(p))
    assert sorted(ours) == sorted(tensors)
    assert ours["f16"].dtype == np.float16
    assert ours["bf16"].dtype == np.float32
    assert ours["bool"].dtype == np.bool_
    for k, t in tensors.items():
        want = _bf16_to_f32(t) if t.dtype == torch.bfloat16 else t.numpy()
        assert ours[k].shape == want.shape, k
        np.testing.assert_array_equal(ours[k], want, err_msg=k)
    names, meta = genprm.safetensors_info(p)
    assert meta == {"format": "pt"}
    assert dict((n, (d, s)) for n, d, s in names)["bf16"] == ("BF16", [7])


def test_our_writer_is_read_identically_by_pypi(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "b": rng.random(5) > 0.5,
        "u8": rng.integers(0, 255, size=(3, 2), dtype=np.uint8),
        "f16": rng.standard_normal(6).astype(np.float16),
        "f32": rng.standard_normal((4, 3)).astype(np.float32),
        "f64": rng.standard_normal(2),
        "i64": rng.integers(-9, 9, size=4),
        "i32": rng.integers(-9, 9, size=4).astype(np.int32),
        "i16": rng.integers(-9, 9, size=4).astype(np.int16),
        "i8": rng.integers(-9, 9, size=4).astype(np.int8),
        "fortran": np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)),
    }
    bf16 = torch.randn(3, 4).bfloat16()
    p = tmp_path / "ours.safetensors"
    genprm.save_safetensors(p, {**arrays, "bf16": bf16}, metadata={"format": "pt", "who": "genprm"})
    ref = torch_load_file(str(p))  # numpy has no bfloat16: read through torch
    assert sorted(ref) == sorted([*arrays, "bf16"])
    for k, a in arrays.items():
        assert ref[k].numpy().dtype == a.dtype, k
        np.testing.assert_array_equal(ref[k].numpy(), a, err_msg=k)
    assert torch.equal(ref["bf16"], bf16)
    with safe_open(str(p), framework="np") as f:
        assert f.metadata() == {"format": "pt", "who": "genprm"}
    ours = genprm.load_safetensors(p)
    for k, a in arrays.items():
        np.testing.assert_array_equal(ours[k], a, err_msg=k)
    # Header length is a multiple of 8 and every tensor starts aligned for its dtype.
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    sizes = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2}
    for name, e in header.items():
        if name != "__metadata__":
            assert e["data_offsets"][0] % sizes.get(e["dtype"], 1) == 0, name


def test_sharded_writer_read_by_pypi_and_by_us(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {f"w{i}": rng.standard_normal((8, 8)).astype(np.float32) for i in range(6)}
    names = genprm.save_sharded_safetensors(tmp_path / "ck", arrays, max_shard_bytes=600)
    assert names == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((tmp_path / "ck" / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == 6 * 256
    seen = {}
    for shard in names:
        seen.update(np_load_file(str(tmp_path / "ck" / shard)))
    assert set(index["weight_map"]) == set(arrays) == set(seen)
    for k, a in arrays.items():
        np.testing.assert_array_equal(seen[k], a)
        assert k in np_load_file(str(tmp_path / "ck" / index["weight_map"][k]))
    ours = genprm.load_safetensors(tmp_path / "ck")
    for k, a in arrays.items():
        np.testing.assert_array_equal(ours[k], a)


def _image(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


BAD_FILES = {
    "truncated": (b"\x01\x02", "truncated"),
    "header_beyond": (struct.pack("<Q", 1000) + b"{}", "beyond the end"),
    "invalid_json": (_image(b'{"a": {'), "invalid JSON"),
    "unknown_dtype": (_image(b'{"w":{"dtype":"F8_E5M2","shape":[1],"data_offsets":[0,1]}}', b"\0"), "F8_E5M2"),
    "shape_mismatch": (_image(b'{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', b"\0" * 8), "tensor 'w'"),
    "overlap": (_image(b'{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
                       b'"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', b"\0" * 6), "overlap"),
    "out_of_range": (_image(b'{"w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}', b"\0" * 6), "out of range"),
    "duplicate": (_image(b'{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                         b'"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\0" * 2), "duplicate"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_value_error_naming_the_file(tmp_path, case):
    raw, fragment = BAD_FILES[case]
    p = tmp_path / f"bad_{case}.safetensors"
    p.write_bytes(raw)
    with pytest.raises(ValueError) as e:
        genprm.load_safetensors(str(p))
    assert f"bad_{case}.safetensors" in str(e.value)
    assert fragment in str(e.value)


def test_missing_shard_and_missing_file(tmp_path):
    d = testing.make_random_qwen2(tmp_path / "m", shards=2, num_hidden_layers=1)
    shard = sorted(Path(d).glob("model-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(ValueError, match=shard.name):
        genprm.load_safetensors(d)
    with pytest.raises(ValueError, match="nope.safetensors"):
        genprm.load_safetensors(tmp_path / "nope.safetensors")


def test_save_rejects_unsupported_dtypes_and_bad_names(tmp_path):
    with pytest.raises(ValueError, match="complex"):
        genprm.save_safetensors(tmp_path / "c.safetensors", {"c": np.zeros(2, np.complex64)})
    with pytest.raises(ValueError, match="__metadata__"):
        genprm.save_safetensors(tmp_path / "c.safetensors", {"__metadata__": np.zeros(2)})


def test_model_config_from_file():
    c = genprm.ModelConfig.from_file(str(DATA / "tiny_qwen2_a" / "config.json"))
    assert (c.model_type, c.vocab_size, c.hidden_size, c.intermediate_size) == ("qwen2", 512, 64, 176)
    assert (c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (2, 4, 2, 16)
    assert c.rope_theta == 10000.0 and c.rms_norm_eps == pytest.approx(1e-6)
    assert c.tie_word_embeddings is False and c.attention_bias is True
    assert c.bos_token_id == 1 and c.eos_token_ids == [2] and c.torch_dtype == "float32"
    d = c.to_dict()
    assert d["hidden_size"] == 64 and d["model_type"] == "qwen2" and d["eos_token_id"] == 2
    assert genprm.ModelConfig.from_dict(d).to_dict() == d


def test_model_config_rejections_name_the_file(tmp_path):
    cfg = json.loads((DATA / "tiny_qwen2_a" / "config.json").read_text())
    cases = [
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope"),
        ({"model_type": "gpt2"}, "model_type"),
        ({"num_key_value_heads": 3}, "num_key_value_heads"),
    ]
    for i, (patch, fragment) in enumerate(cases):
        p = tmp_path / f"config_{i}.json"
        p.write_text(json.dumps({**cfg, **patch}))
        with pytest.raises(ValueError) as e:
            genprm.ModelConfig.from_file(str(p))
        assert p.name in str(e.value) and fragment in str(e.value)


@pytest.mark.parametrize("dtype,shards,tie", [("float32", 1, False), ("bfloat16", 3, True)])
def test_make_random_qwen2_loads_in_transformers(tmp_path, dtype, shards, tie):
    from transformers import Qwen2ForCausalLM

    d = testing.make_random_qwen2(tmp_path / "m", dtype=dtype, shards=shards, tie_word_embeddings=tie,
                                  vocab_size=96, hidden_size=32, intermediate_size=48,
                                  num_attention_heads=4, num_key_value_heads=2, eos_token_id=[3, 4],
                                  bos_token_id=1, seed=5)
    files = sorted(os.listdir(d))
    if shards == 1:
        assert files == ["config.json", "model.safetensors"]
    else:
        assert "model.safetensors.index.json" in files
        assert len([f for f in files if f.startswith("model-")]) == shards
    cfg = genprm.ModelConfig.from_file(os.path.join(d, "config.json"))
    assert (cfg.vocab_size, cfg.tie_word_embeddings, cfg.eos_token_ids) == (96, tie, [3, 4])
    model = Qwen2ForCausalLM.from_pretrained(d)
    assert model.dtype == getattr(torch, dtype)
    ours = genprm.load_safetensors(d)
    assert ("lm_head.weight" in ours) == (not tie)
    sd = model.state_dict()
    for k, v in ours.items():
        np.testing.assert_array_equal(sd[k].float().numpy(), v, err_msg=k)
    if tie:
        assert torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"])
    w = ours["model.layers.0.mlp.up_proj.weight"]
    assert abs(float(w.std()) - 0.02) < 0.004 and abs(float(w.mean())) < 0.003
    assert abs(float(ours["model.norm.weight"].mean()) - 1.0) < 0.01
    # Same seed, same weights; another seed, other weights.
    again = genprm.load_safetensors(testing.make_random_qwen2(tmp_path / "m2", dtype=dtype, shards=shards,
                                                              tie_word_embeddings=tie, vocab_size=96,
                                                              hidden_size=32, intermediate_size=48, seed=5))
    np.testing.assert_array_equal(again["model.embed_tokens.weight"], ours["model.embed_tokens.weight"])
    other = genprm.load_safetensors(testing.make_random_qwen2(tmp_path / "m3", vocab_size=96, hidden_size=32,
                                                              intermediate_size=48, seed=6))
    assert not np.array_equal(other["model.embed_tokens.weight"], ours["model.embed_tokens.weight"])


def test_copy_tokenizer(tmp_path):
    for which in ("r1distill", "qwen"):
        out = testing.copy_tokenizer(tmp_path / which, which)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            assert (Path(out) / name).read_bytes() == (DATA / f"{which}_tokenizer" / name).read_bytes()
    with pytest.raises(ValueError):
        testing.copy_tokenizer(tmp_path / "x", "llama")


def test_core_writer_rejects_strided_buffers(tmp_path):
    strided = np.arange(10, dtype=np.float32)[::2]
    with pytest.raises(ValueError, match="contiguous"):
        genprm._core.write_safetensors(str(tmp_path / "s.safetensors"), [("a", "F32", [5], strided)], {})
    genprm.save_safetensors(tmp_path / "s.safetensors", {"a": strided})  # the wrapper makes it contiguous
    np.testing.assert_array_equal(genprm.load_safetensors(tmp_path / "s.safetensors")["a"], strided)


def test_model_config_number_overflow_is_value_error(tmp_path):
    p = tmp_path / "overflow_config.json"
    p.write_text('{"model_type": "qwen2", "rope_theta": 200e666}')
    with pytest.raises(ValueError, match="overflow_config.json"):
        genprm.ModelConfig.from_file(str(p))
