"""The ``genprm`` argument parser: every command's options (each command module's ``add(sub)``).
genprm.ray builds a command's options with it too, so it sits below the driver in main."""
from __future__ import annotations

import argparse

from . import eval as _eval, label as _label, search as _search, verify as _verify

__all__ = ["build_parser", "version_text"]


def version_text() -> str:
    """genprm's version, the torch it was compiled against and whether CUDA kernels are in."""
    from .. import __version__
    try:
        from .. import _build_info as b
        torch_version, cuda = b.TORCH_VERSION, "yes" if b.CUDA_KERNELS else "no"
    except ImportError:
        torch_version, cuda = "unknown", "unknown"
    return f"genprm {__version__} (built with torch {torch_version}; CUDA kernels compiled in: {cuda})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genprm", description="Generative process reward models (GenPRM).")
    p.add_argument("--version", action="version", version=version_text())
    sub = p.add_subparsers(dest="command", required=True)
    for command in (_verify, _eval, _label, _search):
        command.add(sub)
    return p
