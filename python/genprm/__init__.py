"""genprm: fast generative process reward models (GenPRM) on a libtorch decoder with a shared,
paged KV cache.

Import torch first: the compiled core links libtorch and finds it already loaded.
"""
import torch as _torch  # noqa: F401  (loads libtorch for _core)


def _check_torch() -> None:
    """ImportError naming both versions when the loaded torch is not the one genprm was compiled
    against (libtorch's C++ ABI changes between releases: it would fail with an undefined symbol)."""
    try:
        from . import _build_info
    except ImportError:  # a source tree without a build: _core's own import error says more
        return
    built, loaded = _build_info.TORCH_VERSION, _torch.__version__.split("+")[0]
    if built and built.split(".")[:2] != loaded.split(".")[:2]:
        raise ImportError(
            f"genprm {_build_info.VERSION} was compiled against torch {built}, but torch {loaded} is loaded; "
            "rebuild genprm against this torch (pip install --force-reinstall --no-cache-dir "
            "--no-build-isolation <genprm source>, or make build in a checkout), or install torch "
            f"{built}")


_check_torch()

from . import _core  # noqa: E402
from . import _bound  # noqa: E402,F401  (mapping reads, repr, equality, pickling of the bound structs)

__version__ = _core.__version__

__all__ = ["__version__"]

from .io import (ModelConfig, load_safetensors, safetensors_info, save_safetensors,  # noqa: E402
                 save_sharded_safetensors)
__all__ += ["ModelConfig", "load_safetensors", "safetensors_info", "save_safetensors",
            "save_sharded_safetensors"]
from . import math  # noqa: E402,F401  (genprm.math: answer extraction and grading)
__all__ += ["math"]

from .engine import Engine, SamplingParams, TextStream  # noqa: E402
__all__ += ["Engine", "SamplingParams", "TextStream"]

from .sandbox import Sandbox, SandboxSession, last_python_block  # noqa: E402
__all__ += ["Sandbox", "SandboxSession", "last_python_block"]

from .tokenizer import ChatMessage, StreamDecoder, Tokenizer  # noqa: E402
__all__ += ["Tokenizer", "StreamDecoder", "ChatMessage"]

from .model import Model  # noqa: E402
__all__ += ["Model"]

from .prm import GenPRM, VerificationResult, results_to_dataframe  # noqa: E402
__all__ += ["GenPRM", "VerificationResult", "results_to_dataframe"]
from . import eval  # noqa: E402,F401  (genprm.eval: ProcessBench metrics)
__all__ += ["eval"]
from . import rpe  # noqa: E402,F401  (genprm.rpe: MC + RPE step labels)
__all__ += ["rpe"]
from . import search  # noqa: E402,F401  (genprm.search: BoN, votes, beam search, refinement)
__all__ += ["search"]
from . import display  # noqa: E402,F401  (genprm.display: HTML of results in Jupyter)
__all__ += ["display"]


def __getattr__(name: str):
    """``genprm.plot`` on first use: it needs matplotlib, an optional dependency."""
    if name == "plot":
        import importlib
        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'genprm' has no attribute {name!r}")

# Options and results of every layer: C++ structs bound once (keyword construction with the C++
# defaults, a readable repr, to_dict() / from_dict(), pickling).
from ._core import (BeamSearchOptions, BestOfNOptions, EngineOptions, GenPRMOptions, LabelerConfig,  # noqa: E402
                    RefineOptions, SamplerConfig, SandboxOptions, VerifierConfig)
__all__ += ["BeamSearchOptions", "BestOfNOptions", "EngineOptions", "GenPRMOptions", "LabelerConfig",
            "RefineOptions", "SamplerConfig", "SandboxOptions", "VerifierConfig"]
