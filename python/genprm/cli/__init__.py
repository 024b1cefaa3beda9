"""The ``genprm`` command line (also ``python -m genprm``): one module per command (verify, eval,
label, search; each ``add(sub)`` registers its parser) over the resumable-job helpers in jobs."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from . import eval as _eval, label as _label, search as _search, verify as _verify
from .jobs import JobError, eprint
from .jobs import (appending, done_ids, json_lines, plan_job, read_rows, require_dir,  # noqa: F401  (as before)
                   set_threads, token_summary)

__all__ = ["main", "read_rows", "done_ids"]


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, JobError) as e:  # bad checkpoint, options: the message names the file and the rule
        eprint(f"genprm {args.command}: {e}")
        return 2
