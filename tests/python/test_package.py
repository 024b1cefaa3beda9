"""The package imports, reports its version, and maps C++ errors to Python exceptions."""
import re

import genprm


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", genprm.__version__)


def test_version_matches_pyproject():
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    text = (root / "pyproject.toml").read_text()
    assert f'version = "{genprm.__version__}"' in text


def test_built_against_the_loaded_torch():
    import torch
    from genprm import _build_info
    assert _build_info.TORCH_VERSION.split(".")[:2] == torch.__version__.split("+")[0].split(".")[:2]
    assert _build_info.VERSION == genprm.__version__


def test_a_different_torch_is_an_import_error_naming_both(monkeypatch):
    import pytest
    from genprm import _build_info
    monkeypatch.setattr(genprm._torch, "__version__", "1.13.1+cpu")
    with pytest.raises(ImportError) as e:
        genprm._check_torch()
    assert f"compiled against torch {_build_info.TORCH_VERSION}" in str(e.value)
    assert "torch 1.13.1 is loaded" in str(e.value) and "rebuild" in str(e.value)
    monkeypatch.setattr(genprm._torch, "__version__", _build_info.TORCH_VERSION + ".post1+cu999")
    genprm._check_torch()  # same major.minor: fine


def test_version_command_says_torch_and_cuda():
    import subprocess
    import sys
    for argv in ([sys.executable, "-m", "genprm", "--version"],):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert re.fullmatch(r"genprm \d+\.\d+\.\d+ \(built with torch [0-9.]+; CUDA kernels compiled in: (yes|no)\)\n",
                            p.stdout), p.stdout


# --- the build backend (pep517/genprm_build_backend.py) -----------------------------------
def _backend():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[2] / "pep517" / "genprm_build_backend.py"
    spec = importlib.util.spec_from_file_location("genprm_build_backend", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_backend_pins_the_torch_minor_it_builds_against():
    import pytest
    b = _backend()
    assert b.torch_pin("2.15.0+cu132") == "torch<2.16,>=2.15"
    assert b.torch_pin("2.9.1") == "torch<2.10,>=2.9"
    with pytest.raises(ValueError, match="cannot read torch version"):
        b.torch_pin("nightly")
    meta = "Name: genprm\nRequires-Dist: torch\nRequires-Dist: numpy\nRequires-Dist: torchvision; extra == 'x'\n"
    pinned = b.pin_metadata(meta, "torch<2.16,>=2.15")
    assert "Requires-Dist: torch<2.16,>=2.15\nRequires-Dist: numpy\n" in pinned
    assert "torchvision; extra == 'x'" in pinned
    assert b.pin_metadata(pinned, "torch<2.16,>=2.15") == pinned  # prepared metadata reused
    with pytest.raises(ValueError, match="no unversioned"):
        b.pin_metadata("Name: genprm\n", "torch<2.16,>=2.15")


def test_backend_finds_the_target_environments_torch():
    import sys
    import torch
    b = _backend()
    version, prefix = b.target_torch(sys.executable)
    assert version == torch.__version__.split("+")[0] and (prefix / "Torch" / "TorchConfig.cmake").is_file()
    assert b.target_torch("/nonexistent/python") is None


def test_backend_rewrites_a_wheel_with_a_matching_record(tmp_path):
    import base64
    import csv
    import hashlib
    import io
    import zipfile
    b = _backend()
    whl = tmp_path / "genprm-0.1.0-cp311-cp311-linux_x86_64.whl"
    meta = b"Metadata-Version: 2.1\nName: genprm\nRequires-Dist: torch\n"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("genprm/__init__.py", "x = 1\n")
        z.writestr("genprm-0.1.0.dist-info/METADATA", meta)
        z.writestr("genprm-0.1.0.dist-info/RECORD",
                   "genprm/__init__.py,sha256=abc,6\ngenprm-0.1.0.dist-info/METADATA,sha256=old,10\n"
                   "genprm-0.1.0.dist-info/RECORD,,\n")
    b.pin_wheel(whl, "torch<2.16,>=2.15")
    with zipfile.ZipFile(whl) as z:
        new_meta = z.read("genprm-0.1.0.dist-info/METADATA")
        rows = list(csv.reader(io.StringIO(z.read("genprm-0.1.0.dist-info/RECORD").decode())))
        assert z.read("genprm/__init__.py") == b"x = 1\n"
    assert b"Requires-Dist: torch<2.16,>=2.15" in new_meta
    digest = base64.urlsafe_b64encode(hashlib.sha256(new_meta).digest()).rstrip(b"=").decode()
    assert ["genprm-0.1.0.dist-info/METADATA", "sha256=" + digest, str(len(new_meta))] in rows
    assert ["genprm/__init__.py", "sha256=abc", "6"] in rows
