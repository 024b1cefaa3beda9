"""Rules the sources keep that no compiler checks."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_no_std_filesystem_remove_all():
    # libtorch 2.11 exports a broken copy of std::filesystem::remove_all that torch-linked
    # programs bind to (it jumps to address 0); genprm::remove_tree (util/fs.hpp) replaces it.
    pattern = re.compile(r"\b(?:std::filesystem|fs)::remove_all\s*\(")
    offenders = []
    for folder in ("include", "bindings", "tests", "benchmarks", "examples"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".hpp", ".cpp", ".h", ".cc", ".cu") and path.is_file():
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if pattern.search(line):
                        offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert not offenders, "use genprm::remove_tree instead of remove_all: " + ", ".join(offenders)
