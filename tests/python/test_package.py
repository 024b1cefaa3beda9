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
