"""safetensors and config.json: numpy/torch in, numpy out.

``load_safetensors(path)`` reads a ``.safetensors`` file, a ``model.safetensors.index.json`` or a
model directory into ``{name: numpy.ndarray}`` (BF16 becomes float32, F16 stays float16);
malformed files raise ``ValueError`` whose message starts with the file's path.
``save_safetensors`` / ``save_sharded_safetensors`` write numpy arrays or torch tensors with the
project's own C++ writer.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from . import _core

ModelConfig = _core.ModelConfig

_NUMPY_TO_ST = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}


def _host(name: str, value: Any) -> Tuple[str, str, List[int], np.ndarray]:
    """(name, safetensors dtype, shape, C-contiguous array holding the raw bytes)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the package
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        shape = list(t.shape)
        if t.dtype == torch.bfloat16:
            return name, "BF16", shape, t.view(torch.int16).numpy()
        value = t.numpy()
    arr = np.ascontiguousarray(np.asarray(value))
    if arr.dtype.name == "bfloat16":  # ml_dtypes.bfloat16
        return name, "BF16", list(arr.shape), arr.view(np.int16)
    dt = _NUMPY_TO_ST.get(arr.dtype)
    if dt is None:
        raise ValueError(f"tensor '{name}': unsupported dtype {arr.dtype} for safetensors")
    return name, dt, list(arr.shape), arr


def load_safetensors(path: str | os.PathLike) -> Dict[str, np.ndarray]:
    """All tensors of a file, index or model directory as numpy arrays (copies)."""
    return _core.load_safetensors(os.fspath(path))


def safetensors_info(path: str | os.PathLike) -> Tuple[List[Tuple[str, str, List[int]]], Dict[str, str]]:
    """``([(name, dtype, shape), ...], metadata)`` without reading tensor data."""
    return _core.safetensors_info(os.fspath(path))


def save_safetensors(path: str | os.PathLike, tensors: Mapping[str, Any],
                     metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes ``{name: numpy array | torch tensor}`` to one safetensors file (atomically)."""
    items = [_host(str(k), v) for k, v in tensors.items()]
    _core.write_safetensors(os.fspath(path), items, dict(metadata or {}))


def save_sharded_safetensors(directory: str | os.PathLike, tensors: Mapping[str, Any],
                             max_shard_bytes: int,
                             metadata: Optional[Mapping[str, str]] = None) -> List[str]:
    """Writes ``model-0000i-of-0000n.safetensors`` shards of at most ``max_shard_bytes`` of data
    plus ``model.safetensors.index.json`` into ``directory`` (created if needed); returns the
    shard file names."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    items = [_host(str(k), v) for k, v in tensors.items()]
    return _core.write_sharded_safetensors(directory, items, int(max_shard_bytes), dict(metadata or {}))


__all__ = ["ModelConfig", "load_safetensors", "safetensors_info", "save_safetensors",
           "save_sharded_safetensors"]
