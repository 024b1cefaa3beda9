"""Every option default is defined once, in C++ (the member initialisers of the bound option
structs); Python signatures, the CLI's argparse defaults and the bindings read it from there.
This test fails when a literal that equals a C++ default is written again for an option of the
same name."""
import ast
import pathlib
import re

import genprm

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Python / CLI names of options whose C++ field is spelled differently.
ALIASES = {
    "timeout": "timeout_s", "cpu": "cpu_s", "kill_grace": "kill_grace_s", "memory": "memory_bytes",
    "file_size": "file_size_bytes", "max_output": "max_output_bytes", "namespaces": "use_namespaces",
    "seccomp": "use_seccomp", "code_timeout": "timeout_s", "max_in_flight": "max_problems_in_flight",
    "kv_memory": "kv_memory_bytes", "k": "fixed_k",
}
# Names that also mean something else: data seeds of the generators, the storage dtype of a
# random checkpoint (genprm.testing).
NOT_OPTIONS = {"seed"}
NOT_OPTIONS_IN = {("python/genprm/testing.py", "dtype")}


def _key(v):
    """Comparable form of a default (bools apart from numbers, ints equal to floats)."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("num", float(v))
    if isinstance(v, (list, tuple)):
        return ("seq", tuple(_key(x) for x in v))
    return (type(v).__name__, v)


def cpp_defaults():
    """{field name: {default keys}} over every bound option struct, nested ones included."""
    out = {}

    def walk(d):
        for name, v in d.items():
            if isinstance(v, dict):
                walk(v)
            elif v is not None:
                out.setdefault(name, set()).add(_key(v))

    for name in dir(genprm._core):
        cls = getattr(genprm._core, name)
        if hasattr(cls, "FIELDS") and name.endswith(("Options", "Config", "Params", "Rule")):
            walk(cls().to_dict())
    return out


def _literal(node):
    try:
        v = ast.literal_eval(node)
    except ValueError:
        return None
    return v


def python_offences(source, where, defaults):
    """(where:line, name, value) of literal defaults in `source` that repeat a C++ default."""
    found = []

    def check(name, node):
        v = _literal(node)
        if v is None:
            return
        field = ALIASES.get(name, name)
        if name in NOT_OPTIONS or (where, name) in NOT_OPTIONS_IN:
            return
        if _key(v) in defaults.get(field, ()):
            found.append((f"{where}:{node.lineno}", name, v))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            positional = a.posonlyargs + a.args
            for arg, d in zip(positional[len(positional) - len(a.defaults):], a.defaults):
                check(arg.arg, d)
            for arg, d in zip(a.kwonlyargs, a.kw_defaults):
                if d is not None:
                    check(arg.arg, d)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            kw = {k.arg: k.value for k in node.keywords}
            if "default" not in kw:
                continue
            if "dest" in kw:
                name = _literal(kw["dest"])
            else:
                longs = [_literal(a) for a in node.args if isinstance(_literal(a), str) and _literal(a).startswith("--")]
                name = longs[0][2:].replace("-", "_") if longs else None
            if name:
                check(name, kw["default"])
    return found


_PY_ARG = re.compile(r'py::arg\("(\w+)"\)\s*=\s*(-?[0-9.]+f?|"[^"]*"|true|false)')


def binding_offences(source, where, defaults):
    found = []
    for m in _PY_ARG.finditer(source):
        raw = m.group(2)
        v = {"true": True, "false": False}.get(raw)
        if v is None:
            v = raw[1:-1] if raw.startswith('"') else float(raw.rstrip("f"))
        if _key(v) in defaults.get(ALIASES.get(m.group(1), m.group(1)), ()):
            line = source.count("\n", 0, m.start()) + 1
            found.append((f"{where}:{line}", m.group(1), v))
    return found


def test_the_check_finds_a_repeated_default():
    defaults = cpp_defaults()
    beams = genprm._core.BeamSearchOptions().beams
    src = f"def f(x, *, beams={beams}, seed=None, progress=True):\n    pass\n"
    assert python_offences(src, "demo.py", defaults) == [("demo.py:1", "beams", beams)]
    cli = f'p.add_argument("--max-in-flight", dest="max_in_flight", type=int, default={beams * 2})\n'
    assert python_offences(cli, "demo.py", defaults)  # 8 is max_problems_in_flight's default
    assert binding_offences('py::arg("top_p") = 1.0f, py::arg("x") = 3', "demo.cpp", defaults)
    assert not python_offences("def f(beams=None):\n    pass\n", "demo.py", defaults)


def test_no_literal_default_is_repeated():
    defaults = cpp_defaults()
    assert {"beams", "temperature", "epsilon", "timeout_s", "majority"} <= set(defaults)
    found = []
    for path in sorted((ROOT / "python" / "genprm").rglob("*.py")):
        found += python_offences(path.read_text(), str(path.relative_to(ROOT)), defaults)
    for path in sorted((ROOT / "bindings").glob("*.[ch]pp")):
        found += binding_offences(path.read_text(), str(path.relative_to(ROOT)), defaults)
    assert not found, "read these defaults from the C++ option structs: " + "; ".join(
        f"{w} {n}={v!r}" for w, n, v in found)
