"""Runs the C++ GenPRM benchmark (benchmarks/bench_genprm.cpp, built as
<build>/benchmarks/bench_genprm): Maj@8 verification of a 10-step solution with a random model,
our engine vs the reference's call pattern (each path separately, whole prompt re-submitted, no
cache reuse); prints wall time, tokens computed and the ratios.

    PYTHONPATH=build/python python benchmarks/bench_genprm.py [--device cuda --dtype bfloat16] [args...]

On CUDA the DeepSeek-R1-Distill-Qwen-1.5B shape is used (--shape 1.5b) unless --shape is given.
Other arguments go to the binary unchanged (see its header comment).
"""
import os
import subprocess
import sys
from pathlib import Path


def find_binary() -> Path:
    cands = []
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry:
            cands.append(Path(entry).resolve().parent / "benchmarks" / "bench_genprm")
    root = Path(__file__).resolve().parent.parent
    cands += [root / d / "benchmarks" / "bench_genprm" for d in ("build", "build-gpu", "build-prm")]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise SystemExit("bench_genprm.py: build the bench_genprm target first (looked in "
                     + ", ".join(str(c) for c in cands) + ")")


def main(argv):
    args = list(argv)
    if "--device" in args and args[args.index("--device") + 1].startswith("cuda") and "--shape" not in args:
        args += ["--shape", "1.5b"]
    return subprocess.call([str(find_binary())] + args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
