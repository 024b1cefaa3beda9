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


# A citation of a design document other than this repository's own (any spelling of the name,
# unless it is exactly the lowercase path docs/design.md), or a path into the workspace outside
# the repository. The patterns are written so that this file does not match itself.
_FOREIGN_DESIGN = re.compile(r"(?i)(?:[\w./-]*/)?design\.md")
_OWN_DESIGN = "docs/design" + ".md"
_OUTSIDE = re.compile(r"(?:\.\./|/work/)shared\b")


def _tracked_files():
    """The repository's tracked files (git ls-files); without git, every file outside build,
    virtual-environment and cache folders."""
    import subprocess
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        names = [n for n in out.stdout.decode("utf-8", "replace").split("\0") if n]
        if names:
            return [ROOT / n for n in names]
    except (OSError, subprocess.CalledProcessError):
        pass
    skip = {".git", ".venv", ".deps-gpu", "__pycache__", ".pytest_cache", "out"}
    return [p for p in ROOT.rglob("*")
            if p.is_file() and not any(part in skip or part.startswith("build")
                                       for part in p.relative_to(ROOT).parts[:-1])]


def outside_references(files):
    """'path:line: text' for every citation of a foreign design document or path outside the
    repository in `files` (binary files are skipped)."""
    offenders = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            bad = [m.group(0) for m in _FOREIGN_DESIGN.finditer(line)
                   if m.group(0) != _OWN_DESIGN and not m.group(0).endswith("/" + _OWN_DESIGN)]
            bad += [m.group(0) for m in _OUTSIDE.finditer(line)]
            if bad:
                rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                offenders.append(f"{rel}:{n}: {', '.join(bad)}")
    return offenders


def test_no_references_outside_the_repository():
    # The design document is docs/design.md; nothing may cite a design brief or workspace files
    # that are not part of the repository.
    offenders = outside_references(_tracked_files())
    assert not offenders, ("cite docs/design.md (and keep paths inside the repository) instead of: "
                           + "; ".join(offenders))
