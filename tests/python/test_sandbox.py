"""genprm.Sandbox: GenPRM-compatible outputs, persistence, sessions, pool concurrency, cleanup."""
import contextlib
import io
import os
import re
import time

import pytest

import genprm
from genprm import Sandbox


@pytest.fixture(scope="module")
def sb():
    # sympy preloaded as GenPRM does: a cold import without .pyc files can take seconds.
    with Sandbox(timeout=2.0, workers=4, kill_grace=0.3, preload=("sympy",)) as s:
        yield s


def reference_execute(code, namespace):
    """GenPRM's CodeExecutor.execute body (without the SIGALRM timer): the oracle."""
    try:
        f = io.StringIO()
        with contextlib.redirect_stdout(f):
            exec(code, namespace)
        return f.getvalue().strip()
    except Exception as e:  # noqa: BLE001 (same catch as the reference)
        return f"Code execute Error: {type(e).__name__}: {e}"


# Blocks of the kind GenPRM writes, run in order in ONE namespace (state carries over).
GENPRM_BLOCKS = [
    "from fractions import Fraction\nprint(Fraction(3, 4) + Fraction(1, 4))",
    "total = Fraction(1, 2) + Fraction(1, 3)\nprint(total)\nprint(f'{float(total):.4f}')",
    "print(total * 6)",
    "import math\nprint(math.comb(10, 3), math.gcd(84, 36), math.isclose(0.1 + 0.2, 0.3))",
    "from sympy import symbols, solve, Eq, simplify, Rational, sqrt\nx = symbols('x')\n"
    "print(solve(Eq(x**2 - 5*x + 6, 0), x))",
    "print(simplify((x**2 - 1)/(x - 1)))\nprint(Rational(6, 8), sqrt(8))",
    "import sympy as sp\nexpr = sp.expand((x + 1)**3)\nprint(expr)\nprint(sp.factor(expr))",
    "assert total == Fraction(5, 6), 'sum is wrong'\nprint('paragraph verified')",
    "assert total == 1, 'Paragraph 2 claims the sum is 1'",
    "print(10 / 0)",
    "print(undefined_variable)",
    "int('abc')",
    "[1, 2, 3][5]",
    "{'a': 1}['b']",
    "import numpy as np\nv = np.array([1, 2, 3])\nprint(v.mean(), v.sum())",
    "raise ValueError('custom message')",
    "for i in range(3):\n    print(i, end=' ')\nprint()",
    "def f(n):\n    return n * f(n - 1) if n else 1\nprint(f(10))",
    "print(f(5) == 120)",
    "print('   spaced out   ')\nprint()\n",
    "x = 1\nif x:\nprint('bad indent')",
]


def test_outputs_match_the_reference_executor_and_state_persists(sb):
    ns = {}
    with sb.session() as s:
        for block in GENPRM_BLOCKS:
            expected = reference_execute(block, ns)
            assert s.run(block) == expected, block
    # the state above is the point of the exercise: it carried over between blocks
    assert reference_execute("print(total)", ns) == "5/6"


def test_sympy_and_fractions_answers(sb):
    with sb.session() as s:
        assert s.run("from sympy import *\nx = symbols('x')\nprint(solve(x**2 - 4, x))") == \
            "[-2, 2]"
        assert s.run("print(integrate(2*x, (x, 0, 3)))") == "9"
        assert s.run("from fractions import Fraction as F\nprint(sum(F(1, k*(k+1)) "
                     "for k in range(1, 10)))") == "9/10"


def test_timeout_text_and_namespace_survives_soft_timeout(sb):
    with sb.session() as s:
        s.run("kept = 7")
        r = s.run_result("import time\ntime.sleep(30)")
        assert r.timed_out and not r.ok
        assert r.output == "Code execute time out: Code execution timed out"
        assert 1.9 < r.seconds < 2.0 + 0.3 + 0.5
        r = s.run_result("print(kept)")
        assert r.output == "7" and not r.state_reset


def test_reset_is_announced_once(sb):
    with sb.session() as s:
        s.run("a = 1")
        crash = s.run_result("import ctypes\nctypes.string_at(0)")
        assert crash.output.startswith("Code execute Error: SandboxCrash: ")
        assert "Segmentation fault" in crash.output or "signal 11" in crash.output
        after = s.run_result("print('a' in globals())")
        assert after.state_reset
        assert re.match(r"^\[Sandbox note: the Python state was reset .*\]\nFalse$", after.output)
        assert not s.run_result("print(1)").state_reset


def test_default_session_and_reset():
    with Sandbox(timeout=1.0, workers=1) as sb:
        sb.run("y = 5")
        assert sb.run("print(y * 2)") == "10"
        sb.reset()
        assert sb.run("print(y)") == "Code execute Error: NameError: name 'y' is not defined"


def test_closed_session_rejects_blocks(sb):
    s = sb.session()
    s.close()
    with pytest.raises(ValueError):
        s.run("print(1)")


def test_pool_runs_sessions_concurrently_and_reuses_warm_workers():
    with Sandbox(timeout=3.0, workers=4) as sb:
        sessions = [sb.session() for _ in range(8)]
        got = {}
        t0 = time.monotonic()
        for i, s in enumerate(sessions):
            s.submit("import time\ntime.sleep(0.4)\nprint(%d)" % i,
                     lambda r, i=i: got.__setitem__(i, r.output))
        submit_s = time.monotonic() - t0
        while not sb.idle():
            sb.wait_and_poll(1.0)
        elapsed = time.monotonic() - t0
        assert submit_s < 0.2  # asynchronous
        assert got == {i: str(i) for i in range(8)}
        assert elapsed < 8 * 0.4  # ran in parallel (4 at a time: about 0.8 s + start-up)
        for s in sessions:
            s.close()


def test_blocks_of_one_session_run_in_order():
    with Sandbox(timeout=3.0, workers=4) as sb:
        with sb.session() as s:
            out = []
            s.run("n = 0")
            for _ in range(10):
                s.submit("n += 1\nprint(n)", lambda r: out.append(r.output))
            while not sb.idle():
                sb.wait_and_poll(1.0)
            assert out == [str(k) for k in range(1, 11)]


def test_private_workdir_is_removed_and_uid_dropped(sb):
    s = sb.session()
    workdir = s.run("import os\nprint(os.getcwd())")
    assert os.path.basename(workdir).startswith("genprm-sandbox-")
    assert s.run("open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())") == "ok"
    if os.geteuid() == 0:
        assert s.run("import os\nprint(os.getuid(), os.getgid(), os.getgroups())") == \
            "65534 65534 []"
    s.close()
    deadline = time.monotonic() + 5
    while os.path.exists(workdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(workdir)


def test_isolation_is_described(sb):
    text = sb.isolation
    for key in ("rlimits:", "network namespace:", "pid namespace:", "mount namespace:",
                "ipc namespace:", "filesystem view:", "privilege drop:", "seccomp:",
                "new processes", "leftovers:", "parent death:", "protocol:",
                "work directories:"):
        assert key in text
    iso = sb.pool.isolation
    # the file-system layer is named as it is: the minimal root wherever it is active
    assert ("filesystem view: minimal root" in text) == iso["minimal_root"]
    if iso["mount_ns"]:
        assert iso["minimal_root"], text
    if os.geteuid() == 0:
        assert iso["drop_uid"]


def test_last_python_block_matches_reference_regex():
    pattern = re.compile(r'```python\s*(.*?)\s*```', re.DOTALL)
    texts = [
        "no code", "```python\nprint(1)\n```", "a\n```python\nx = 1\n```\nb\n```python\ny\n```\n",
        "```python```", "```python\n   \n```", "```python\nunterminated",
        "```python\nprint('a')\n```python\nprint('b')\n```",
        "Let's check:\n```python\nfrom sympy import *\nprint(1)\n```\n[Code Output]\n",
    ]
    for t in texts:
        found = pattern.findall(t)
        expected = found[-1].strip() if found else None
        assert genprm.last_python_block(t) == expected, t


def test_options_are_validated():
    with pytest.raises(ValueError):
        Sandbox(timeout=0)
    with pytest.raises(ValueError):
        Sandbox(python="/nonexistent/python")
    with pytest.raises(ValueError):
        Sandbox(workers=0)


def test_close_kills_running_blocks_and_removes_workdirs():
    sb = Sandbox(timeout=30.0, workers=1)
    s = sb.session()
    workdir = s.run("import os\nprint(os.getcwd())")
    got = []
    s.submit("import time\ntime.sleep(30)", got.append)
    time.sleep(0.3)
    t0 = time.monotonic()
    pool = sb.pool
    sb.close()
    assert time.monotonic() - t0 < 5.0
    assert pool.poll() == 1 and not got[0].ok
    assert not os.path.exists(workdir)
    with pytest.raises(ValueError):
        sb.run("print(1)")
    with pytest.raises(RuntimeError):
        s.run("print(1)")
