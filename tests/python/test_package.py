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
