"""The Qwen2 decoder: load a Hugging Face model directory and compute logits."""
from __future__ import annotations

import os
from typing import Sequence, Union

import numpy as np

from . import _core

PathLike = Union[str, "os.PathLike[str]"]


_PLACE = _core.GenPRMOptions()  # device and dtype defaults, defined once in C++


class Model:
    """A Qwen2-architecture causal LM (Qwen2, Qwen2.5, DeepSeek-R1-Distill-Qwen, GenPRM, plain
    Llama) run by genprm's libtorch decoder.

    >>> m = Model.load("tests/data/tiny_qwen2_a", device="cpu", dtype="float32")
    >>> m.logits([1, 2, 3]).shape
    (3, 512)
    """

    def __init__(self, core: "_core.Qwen2Model"):
        self._core = core

    @classmethod
    def load(cls, model_dir: PathLike, device: str = _PLACE.device, dtype: str = _PLACE.dtype) -> "Model":
        """Loads ``model_dir/config.json`` and its safetensors weights (single file or sharded).

        ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (a ``torch.device`` works too);
        ``dtype``: compute dtype ``"float32"``, ``"bfloat16"`` or ``"float16"`` (or the torch
        dtype); stored F32/BF16/F16 weights are converted on load.
        """
        return cls(_core.Qwen2Model.load(os.fspath(model_dir), str(device), _dtype_name(dtype)))

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Causal logits of every position: ids ``[T]`` -> ``numpy.float32`` array ``[T, vocab]``."""
        return self._core.logits(np.asarray(ids, dtype=np.int64).reshape(-1))

    @property
    def config(self) -> "_core.ModelConfig":
        """The validated ``config.json`` (a ``genprm.ModelConfig``)."""
        return self._core.config

    @property
    def device(self) -> str:
        return self._core.device

    @property
    def dtype(self) -> str:
        return self._core.dtype

    @property
    def num_parameters(self) -> int:
        return self._core.num_parameters

    def kv_bytes_per_block(self, block_size: int) -> int:
        """Bytes of paged K/V (all layers) per block of ``block_size`` tokens."""
        return self._core.kv_bytes_per_block(block_size)

    def __repr__(self) -> str:
        c = self.config
        return (f"Model({c.model_type}, {self.num_parameters / 1e6:.1f}M params, layers={c.num_hidden_layers}, "
                f"hidden={c.hidden_size}, device={self.device}, dtype={self.dtype})")


def _dtype_name(dtype) -> str:
    s = str(dtype)
    return s[len("torch."):] if s.startswith("torch.") else s
