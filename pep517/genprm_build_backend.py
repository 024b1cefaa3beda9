"""genprm's PEP 517 build backend: scikit-build-core, plus the torch genprm is compiled against.

genprm's C++ core links libtorch, so a build needs a torch, and the wheel only works with a torch
of the same major.minor (libtorch has no stable C++ ABI across minor versions). Two things are
added to scikit-build-core:

* Finding torch. With build isolation (a plain ``pip install .``) the build runs in a fresh
  environment that does not see the packages of the environment being installed into. When that
  environment already has torch, the build compiles against it (its CMake files are passed on);
  only when it has none is torch asked for as a build requirement (then the newest torch is
  downloaded and the wheel pins that version). ``--no-build-isolation`` builds against the
  torch the interpreter imports, as before.
* Pinning it. The wheel's ``Requires-Dist: torch`` becomes ``torch>=X.Y,<X.(Y+1)`` for the torch
  it was built against, so installing it elsewhere brings (or demands) a compatible torch.

Everything else is scikit-build-core's (settings in pyproject.toml).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

from scikit_build_core import build as _skb

__all__ = [
    "build_sdist", "build_wheel", "build_editable", "get_requires_for_build_sdist",
    "get_requires_for_build_wheel", "get_requires_for_build_editable", "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
]

build_sdist = _skb.build_sdist
get_requires_for_build_sdist = _skb.get_requires_for_build_sdist


# --- finding torch -----------------------------------------------------------------------------
def target_torch(python: str = sys.executable) -> Optional[Tuple[str, Path]]:
    """(version, CMake prefix) of the torch that `python` imports when started on its own: an
    isolated build runs the interpreter of the environment pip installs into, with that
    environment hidden from sys.path by environment variables, which `-I` ignores."""
    code = ("import importlib.util, importlib.metadata, os; s = importlib.util.find_spec('torch'); "
            "print(importlib.metadata.version('torch') if s else ''); "
            "print(os.path.join(os.path.dirname(s.origin), 'share', 'cmake') if s else '')")
    try:
        out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=120,
                             check=True).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    if len(out) < 2 or not out[0] or not Path(out[1]).is_dir():
        return None
    return out[0], Path(out[1])


def find_torch() -> Optional[Tuple[str, Path, bool]]:
    """(version, CMake prefix, importable) of the torch to build against: the one this interpreter
    imports (no isolation, or torch as a build requirement), else the target environment's."""
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        prefix = Path(spec.origin).parent / "share" / "cmake"
        return importlib.metadata.version("torch"), prefix, True
    found = target_torch()
    return (found[0], found[1], False) if found else None


def torch_pin(version: str) -> str:
    """'2.15.0+cu132' -> 'torch<2.16,>=2.15': the versions whose C++ ABI is the one built against."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"genprm build: cannot read torch version {version!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    return f"torch<{major}.{minor + 1},>={major}.{minor}"


def _use_torch() -> Optional[str]:
    """Points CMake at a torch the build interpreter cannot import; returns the pin, if found."""
    found = find_torch()
    if found is None:
        return None
    version, prefix, importable = found
    if not importable:
        os.environ["CMAKE_PREFIX_PATH"] = os.pathsep.join(
            p for p in (str(prefix), os.environ.get("CMAKE_PREFIX_PATH", "")) if p)
        print(f"genprm build: compiling against torch {version} of the target environment ({prefix})",
              file=sys.stderr)
    return torch_pin(version)


# --- pinning it ----------------------------------------------------------------------------------
def pin_metadata(text: str, pin: str) -> str:
    """METADATA with its unversioned `Requires-Dist: torch` replaced by `pin`."""
    lines = text.split("\n")
    out = [f"Requires-Dist: {pin}" if re.fullmatch(r"Requires-Dist:\s*torch\s*", ln) else ln for ln in lines]
    if out == lines and f"Requires-Dist: {pin}" not in lines:  # (already pinned: prepared metadata reused)
        raise ValueError("genprm build: METADATA has no unversioned 'Requires-Dist: torch' to pin")
    return "\n".join(out)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pin_wheel(path: Path, pin: str) -> None:
    """Rewrites the wheel at `path` with its METADATA pinned, and RECORD updated to match."""
    with zipfile.ZipFile(path) as z:
        items = [(info, z.read(info)) for info in z.infolist()]
    meta_name = next(i.filename for i, _ in items if re.fullmatch(r"[^/]+\.dist-info/METADATA", i.filename))
    record_name = meta_name.rsplit("/", 1)[0] + "/RECORD"
    new_meta = pin_metadata(next(d for i, d in items if i.filename == meta_name).decode(), pin).encode()
    rows = []
    for row in csv.reader(io.StringIO(next(d for i, d in items if i.filename == record_name).decode())):
        if row and row[0] == meta_name:
            row = [meta_name, _record_hash(new_meta), str(len(new_meta))]
        rows.append(row)
    record = io.StringIO()
    csv.writer(record, lineterminator="\n").writerows(rows)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            if info.filename == meta_name:
                data = new_meta
            elif info.filename == record_name:
                data = record.getvalue().encode()
            z.writestr(info, data)
    tmp.replace(path)


def _pin_dist_info(directory: str, name: str, pin: Optional[str]) -> str:
    if pin is not None:
        meta = Path(directory) / name / "METADATA"
        meta.write_text(pin_metadata(meta.read_text(), pin))
    return name


# --- the hooks -----------------------------------------------------------------------------------
# Wheel and editable hooks differ only in which scikit-build-core hook they wrap.
def _requires(hook):
    def get_requires(config_settings=None) -> List[str]:
        return list(hook(config_settings)) + ([] if find_torch() is not None else ["torch"])
    return get_requires


def _prepare(hook):
    def prepare_metadata(metadata_directory, config_settings=None):
        pin = _use_torch()
        return _pin_dist_info(metadata_directory, hook(metadata_directory, config_settings), pin)
    return prepare_metadata


def _build(hook):
    def build(wheel_directory, config_settings=None, metadata_directory=None):
        pin = _use_torch()
        # Not the prepared metadata: scikit-build-core would find it differs (pinned) from its own.
        name = hook(wheel_directory, config_settings, None)
        if pin is not None:
            pin_wheel(Path(wheel_directory) / name, pin)
        return name
    return build


get_requires_for_build_wheel = _requires(_skb.get_requires_for_build_wheel)
get_requires_for_build_editable = _requires(_skb.get_requires_for_build_editable)
prepare_metadata_for_build_wheel = _prepare(_skb.prepare_metadata_for_build_wheel)
prepare_metadata_for_build_editable = _prepare(_skb.prepare_metadata_for_build_editable)
build_wheel = _build(_skb.build_wheel)
build_editable = _build(_skb.build_editable)
