"""Reference texts checked against the reference's own code run by this CPython.

The GenPRM reference (RyanLiu112/GenPRM, src/prm_evaluation/genprm_inference.py) extracts a block
with ``re.compile(r'```python\\s*(.*?)\\s*```', re.DOTALL).findall(text)[-1].strip()`` and runs it
with ``redirect_stdout(io.StringIO())``; its reward read-out takes the first
``re.search(r'(Yes|No)\\}', text, re.IGNORECASE)``. The oracles below are those lines; genprm's
C++ (util/python_text.hpp, the sandbox worker, prm/reward.hpp) must give the same bytes. The C++
tests hold the same cases as tables (tests/cpp/util/test_python_text.cpp,
tests/cpp/exec/test_reference_texts.cpp, tests/cpp/prm/test_reference.cpp).
"""
import contextlib
import io
import re
import sys

import pytest

import genprm
from genprm import Sandbox

CODE_PATTERN = re.compile(r'```python\s*(.*?)\s*```', re.DOTALL)

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
NOT_SPACES = ["\x00", "\x1b", "\x7f", "\x84", "\xad", "\u180e", "\u200b", "\u2060", "\ufeff", "\u3164"]


def reference_block(text):
    found = CODE_PATTERN.findall(text)
    return found[-1].strip() if found else None


class ReferenceCodeExecutor:
    """The reference's CodeExecutor.execute(text): extraction, then the block under
    redirect_stdout(io.StringIO()) (its 5 s SIGALRM timer left out: no block here loops)."""

    def __init__(self):
        self.namespace = {}

    def execute(self, text):
        code_block = reference_block(text)
        if code_block is None:
            return "Code format error: No code found."
        f = io.StringIO()
        try:
            with contextlib.redirect_stdout(f):
                exec(code_block, self.namespace)
            return f.getvalue().strip()
        except TimeoutError as te:
            return f"Code execute time out: {te}"
        except Exception as e:  # noqa: BLE001 (the reference's catch)
            return f"Code execute Error: {type(e).__name__}: {e}"


def test_python_whitespace_table_is_the_one_the_cpp_side_uses():
    assert [hex(ord(c)) for c in SPACES] == [
        '0x9', '0xa', '0xb', '0xc', '0xd', '0x1c', '0x1d', '0x1e', '0x1f', '0x20', '0x85', '0xa0',
        '0x1680', '0x2000', '0x2001', '0x2002', '0x2003', '0x2004', '0x2005', '0x2006', '0x2007',
        '0x2008', '0x2009', '0x200a', '0x2028', '0x2029', '0x202f', '0x205f', '0x3000']
    assert all(re.fullmatch(r'\s', c) for c in SPACES)


def block_texts(w):
    return [
        f"```python{w}print(1)\n```",
        f"```python\nprint(1){w}```",
        f"```python{w}\nprint(1)\n{w}```\n",
        f"```python{w}{w}x = 1{w}{w}```",
        f"```python\nx ={w}1\ny = 2\n```",
        f"```python{w}```",
        f"```python\n{w}\n```",
        f"```python\na\n```{w}```python{w}b{w}```",
        f"```python\na\n```\n```python{w}b",
        f"text {w}```python{w}\n```\n[Code Output]\n\n```\n1\n```\n",
    ]


@pytest.mark.parametrize("w", SPACES + NOT_SPACES, ids=lambda w: f"U+{ord(w):04X}")
def test_last_python_block_is_the_reference_regex(w):
    for text in block_texts(w):
        assert genprm.last_python_block(text) == reference_block(text), ascii(text)


# Blocks whose in-band text the model sees; run in order in ONE namespace in both.
BLOCKS = [
    "print('  3  ')\nprint()",
    "print('\\u3000\\u00a0x y\\u2028\\x1c')",
    "x = 1",
    "import sys\nprint('e', file=sys.stderr)",
    "print('lost')\n1/0",
    "print(undefined_name)",
    "{}['k']",
    "assert 1 == 2",
    "raise ValueError('a\\nb')",
    "class Oops(Exception):\n    pass\nraise Oops('m')",
    "def f(:\n  pass",
    "x =\u00a01",
    "import sys\nsys.stdout.buffer.write(b'x')",
    "import sys\nsys.stdout.reconfigure(encoding='utf-8')",
    "import sys\nsys.stdout.fileno()",
    "import sys\nsys.stdout.write(b'x')",
    "import sys, io\nprint(type(sys.stdout), isinstance(sys.stdout, io.StringIO))",
    "import sys\nprint(repr(sys.stdout)[:26])",
    "import sys\nprint(sys.stdout.encoding, sys.stdout.closed, sys.stdout.writable())",
    "import sys\nprint('a')\nv = sys.stdout.getvalue()\nprint(repr(v))",
    "import sys\nsys.stdout.close()",
    "raise TimeoutError('slow')",
    "print(x)",
]


def genprm_execute(sb, text):
    """What genprm's verifier appends for `text`: the no-code message, or the block's run."""
    code = genprm.last_python_block(text)
    return "Code format error: No code found." if code is None else sb.run(code)


def test_in_band_texts_are_the_reference_executors():
    reference = ReferenceCodeExecutor()
    with Sandbox(timeout=5.0, workers=1) as sb:
        for code in BLOCKS:
            text = f"```python\u3000\n{code}\n\u00a0```\n"
            assert genprm_execute(sb, text) == reference.execute(text), code
        for text in ["no block", "```python\nprint(1)", "```python\n\u2028```"]:
            assert genprm_execute(sb, text) == reference.execute(text), ascii(text)


@pytest.mark.parametrize("text", [
    "\\boxed{Yes}", "\\boxed{no}", "nO} Yes}", "YeS}", "Yes }", "Ye}s}", "No}Yes}", "NNo}", "yyes}",
    "ye\u017f}", "Y\u00e9s}", "", "Yes", "None}", "marked no} then \\boxed{Yes}",
])
def test_decision_regex_matches_case_insensitively_as_the_reference(text):
    # The C++ table of first_decision_match (tests/cpp/prm/test_reference.cpp) holds these rows;
    # here the expectations themselves are checked against CPython's re.
    expected = {
        "\\boxed{Yes}": "Yes", "\\boxed{no}": "no", "nO} Yes}": "nO", "YeS}": "YeS", "No}Yes}": "No",
        "NNo}": "No", "yyes}": "yes", "ye\u017f}": "ye\u017f", "marked no} then \\boxed{Yes}": "no",
    }.get(text)
    m = re.search(r'(Yes|No)\}', text, re.IGNORECASE)
    assert (m.group(1) if m else None) == expected
    if m and m.group(1) == "ye\u017f":
        assert m.group(1).capitalize() not in ("Yes", "No")  # the reference then returns None
