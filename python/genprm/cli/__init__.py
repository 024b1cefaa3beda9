"""The ``genprm`` command line (also ``python -m genprm``): one module per command (verify, eval,
label, search; each ``add(sub)`` registers its parser) over the resumable-job helpers in jobs."""
from __future__ import annotations

from typing import Optional, Sequence

from .jobs import JobError, eprint
from .jobs import (appending, done_ids, json_lines, plan_job, read_rows, require_dir,  # noqa: F401  (as before)
                   set_threads, token_summary)
from .parser import build_parser, version_text  # noqa: F401  (as before)

__all__ = ["main", "read_rows", "done_ids"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "ray", None) is not None:  # the distributed driver (Ray is imported only then)
        from .. import ray as _ray
        args.run_distributed = _ray.run_job
    try:
        return args.func(args)
    except (ValueError, JobError) as e:  # bad checkpoint, options: the message names the file and the rule
        eprint(f"genprm {args.command}: {e}")
        return 2
