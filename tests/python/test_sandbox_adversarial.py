"""Hostile code in genprm.Sandbox: every case asserts the host is unharmed.

"Unharmed" is checked concretely in each test (files, processes, sockets, environment) and by
the `host_ok` fixture after each test: this process and its files are intact, no process of the
sandbox survives its block, and a fresh session still computes correctly.
"""
import os
import signal
import socket
import tempfile
import time

import pytest

from genprm import Sandbox

SECRET = "genprm-test-secret-7f3a9c"
os.environ["GENPRM_TEST_SECRET_TOKEN"] = SECRET  # held by the parent before the pool starts

TIMEOUT = 1.0
GRACE = 0.3
SLACK = 1.5  # scheduling slack on a shared 2-core machine
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def sb():
    with Sandbox(timeout=TIMEOUT, kill_grace=GRACE, workers=2, memory=512 << 20,
                 max_processes=16, max_output=4096) as s:
        yield s


@pytest.fixture(scope="module")
def canary():
    """A host file and directory a sandbox must not be able to touch."""
    d = tempfile.mkdtemp(prefix="genprm-canary-")
    os.chmod(d, 0o777)  # even world-writable: the sandbox must still not reach it
    path = os.path.join(d, "canary.txt")
    with open(path, "w") as f:
        f.write("intact")
    os.chmod(path, 0o666)
    yield d, path
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))
    os.rmdir(d)


def host_pids_with_parent(ppid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid:
                out.append(int(p))
        except (OSError, IndexError, ValueError):
            pass
    return out


@pytest.fixture
def host_ok(sb, canary):
    my_pid, cwd = os.getpid(), os.getcwd()
    yield
    assert os.getpid() == my_pid and os.getcwd() == cwd
    with open(canary[1]) as f:
        assert f.read() == "intact"
    with sb.session() as s:
        assert s.run("print(6 * 7)") == "42"


def run_fresh(sb, code):
    with sb.session() as s:
        return s.run_result(code)


def check_time(r):
    assert r.seconds < TIMEOUT + GRACE + SLACK


# ---- CPU, time, processes, memory, output ---------------------------------------------------

def test_infinite_loop(sb, host_ok):
    r = run_fresh(sb, "while True:\n    pass")
    assert r.timed_out and r.output == "Code execute time out: Code execution timed out"
    check_time(r)


def test_sleep_past_the_limit(sb, host_ok):
    r = run_fresh(sb, "import time\ntime.sleep(60)\nprint('woke')")
    assert r.timed_out and "woke" not in r.output
    check_time(r)


def test_loop_that_swallows_the_timeout_is_killed(sb, host_ok):
    with sb.session() as s:
        r = s.run_result("import time\nwhile True:\n    try:\n        time.sleep(10)\n"
                         "    except BaseException:\n        pass")
        assert r.timed_out
        check_time(r)
        assert s.run_result("print('next')").state_reset


def test_fork_bomb(sb, host_ok):
    with sb.session() as s:
        pid = None
        s.run("import os")
        pid = sb.pool.session_worker_pid(s.id)
        r = s.run_result("while True:\n    os.fork()")
        check_time(r)
        assert not r.ok
        # everything the bomb forked is gone once the block has answered
        assert host_pids_with_parent(pid) == []
        assert s.run("print('alive')").endswith("alive")


def test_thread_bomb(sb, host_ok):
    r = run_fresh(sb, "import threading, time\nts = []\nwhile True:\n"
                      "    t = threading.Thread(target=time.sleep, args=(30,), daemon=True)\n"
                      "    t.start(); ts.append(t)")
    check_time(r)
    # Thread creation fails at the process limit; when the address-space limit is reached first
    # CPython may instead lose the new thread before it signals "started" and Thread.start()
    # waits forever: then the wall clock ends the block. Both leave the host untouched.
    assert r.output in ("Code execute Error: RuntimeError: can't start new thread",
                        "Code execute time out: Code execution timed out")


def test_memory_bomb(host_ok):
    # its own pool: zero-filling the blocks takes a while on a loaded machine
    with Sandbox(timeout=10.0, workers=1, warm_workers=0, memory=256 << 20) as big, \
            big.session() as s:
        r = s.run_result("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))")
        assert r.output == "Code execute Error: MemoryError: "
        r = s.run_result("x = bytearray(8 << 30)")
        assert r.output == "Code execute Error: MemoryError: "
        assert s.run("del blocks\nprint('recovered')") == "recovered"


def test_huge_output_is_capped_with_a_marker(sb, host_ok):
    r = run_fresh(sb, "for i in range(10**5):\n    print('spam' * 20)")
    assert r.ok
    assert len(r.output.encode()) < 4096 + 200
    assert r.output.endswith("more characters not shown]")
    assert "[output truncated:" in r.output
    r = run_fresh(sb, "raise ValueError('x' * 10**6)")
    assert len(r.output.encode()) < 4096 + 200 and "[output truncated:" in r.output


def test_deep_recursion(sb, host_ok):
    r = run_fresh(sb, "def f(n):\n    return f(n + 1)\nf(0)")
    assert r.output == "Code execute Error: RecursionError: maximum recursion depth exceeded"
    # with the guard lifted the C stack overflows: the worker dies, the host does not
    with sb.session() as s:
        r = s.run_result("import sys\nsys.setrecursionlimit(10**8)\n"
                         "def g(n):\n    return g(n + 1)\ng(0)")
        assert not r.ok
        check_time(r)
        assert s.run_result("print(1)").output.endswith("1")


def test_segfault_through_ctypes(sb, host_ok):
    with sb.session() as s:
        r = s.run_result("import ctypes\nctypes.string_at(0)")
        assert r.output.startswith("Code execute Error: SandboxCrash:")
        nxt = s.run_result("print('fresh')")
        assert nxt.state_reset and nxt.output.endswith("fresh")


# ---- files ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["home", "host_tmp", "project", "canary_dir"])
def test_writing_outside_the_temp_dir(sb, host_ok, canary, target):
    path = {
        "home": os.path.join(os.path.expanduser("~"), "genprm_sandbox_escape.txt"),
        "host_tmp": os.path.join(tempfile.gettempdir(), "genprm_sandbox_escape.txt"),
        "project": os.path.join(PROJECT, "genprm_sandbox_escape.txt"),
        "canary_dir": os.path.join(canary[0], "escape.txt"),
    }[target]
    r = run_fresh(sb, f"open({path!r}, 'w').write('pwned')\nprint('written')")
    assert not r.ok and "written" not in r.output
    assert not os.path.exists(path)


def test_deleting_files(sb, host_ok, canary):
    code = (f"import os, shutil\nerrors = 0\n"
            f"for p in [{canary[1]!r}, {os.path.join(PROJECT, 'CMakeLists.txt')!r}]:\n"
            f"    try:\n        os.remove(p)\n    except OSError:\n        errors += 1\n"
            f"shutil.rmtree({os.path.join(PROJECT, 'tests', 'python')!r}, ignore_errors=True)\n"
            f"print(errors)")
    r = run_fresh(sb, code)
    assert r.output == "2"
    assert os.path.exists(canary[1])
    assert os.path.exists(os.path.join(PROJECT, "CMakeLists.txt"))
    assert os.path.exists(os.path.abspath(__file__))


def test_writing_a_huge_file(sb, host_ok):
    r = run_fresh(sb, "open('big.bin', 'wb').write(b'0' * (64 << 20))")
    assert r.output == "Code execute Error: OSError: [Errno 27] File too large"


def test_exhausting_file_descriptors(sb, host_ok):
    r = run_fresh(sb, "fs = [open('f%d' % i, 'w') for i in range(10000)]")
    assert r.output.startswith("Code execute Error: OSError: [Errno 24] Too many open files")


# ---- other sessions, processes, the parent -----------------------------------------------------

def test_reading_another_sessions_state(sb, host_ok):
    with sb.session() as a, sb.session() as b:
        a.run("secret_value = 'alpha-%d' % (6 * 7 * 1000)")
        a_pid = sb.pool.session_worker_pid(a.id)
        spy = (
            "import os, gc\nfound = []\n"
            "found += [k for k in globals() if k == 'secret_value']\n"
            "for p in os.listdir('/proc'):\n"
            "    if p.isdigit():\n"
            "        for f in ('environ', 'cmdline', 'mem'):\n"
            "            try:\n"
            "                with open('/proc/%s/%s' % (p, f), 'rb') as fh:\n"
            "                    if b'alpha-42000' in fh.read(1 << 20): found.append(p)\n"
            "            except (OSError, ValueError):\n"
            "                pass\n"
            f"for f in ('mem', 'environ', 'maps'):\n"
            f"    try:\n"
            f"        with open('/proc/{a_pid}/' + f, 'rb') as fh: fh.read(100); found.append(f)\n"
            f"    except OSError:\n"
            f"        pass\n"
            "print(found)")
        assert b.run(spy) == "[]"
        assert a.run("print(secret_value)") == "alpha-42000"


def test_killing_the_parent_and_other_processes(sb, host_ok):
    with sb.session() as victim, sb.session() as attacker:
        victim.run("still_here = True")
        vpid = sb.pool.session_worker_pid(victim.id)
        code = (
            "import os, signal\nresults = []\n"
            f"for pid in [os.getppid(), {os.getpid()}, {vpid}, -1]:\n"
            "    try:\n        os.kill(pid, signal.SIGKILL); results.append('sent')\n"
            "    except OSError as e:\n        results.append(type(e).__name__)\n"
            "print(results)")
        attacker.run(code)
        assert victim.run("print(still_here)") == "True"
        assert os.path.exists(f"/proc/{vpid}")


def test_reading_environment_secrets(sb, host_ok):
    r = run_fresh(sb, "import os\nprint(sorted(os.environ))\n"
                      "for p in ['/proc/self/environ', '/proc/1/environ', "
                      f"'/proc/{os.getpid()}/environ']:\n"
                      "    try:\n        print(open(p, 'rb').read())\n"
                      "    except OSError as e:\n        print(type(e).__name__)")
    assert SECRET not in r.output
    assert "GENPRM_TEST_SECRET_TOKEN" not in r.output


def test_reading_stdin(sb, host_ok):
    r = run_fresh(sb, "print(input())")
    assert r.output == "Code execute Error: EOFError: EOF when reading a line"
    r = run_fresh(sb, "import sys, os\nprint(repr(sys.stdin.read()), repr(os.read(0, 10)))")
    assert r.output == "'' b''"


def test_raising_limits_back_up(sb, host_ok):
    code = ("import resource\nout = []\n"
            "for name in ['RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_CPU', 'RLIMIT_FSIZE', "
            "'RLIMIT_NOFILE']:\n"
            "    lim = getattr(resource, name)\n"
            "    try:\n"
            "        resource.setrlimit(lim, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
            "        out.append(name)\n"
            "    except (ValueError, OSError):\n        pass\n"
            "print(out)")
    assert run_fresh(sb, code).output == "[]"


def test_spawning_a_shell(sb, host_ok, canary):
    marker = os.path.join(canary[0], "shell-was-here")
    r = run_fresh(sb, f"import subprocess\nsubprocess.run(['/bin/sh', '-c', 'touch {marker}'])")
    assert r.output.startswith("Code execute Error: PermissionError")
    r = run_fresh(sb, f"import os\nprint(os.system('touch {marker}'))")
    assert r.output != "0"
    r = run_fresh(sb, "import os\nos.execv('/bin/sh', ['sh', '-c', 'echo escaped'])")
    assert r.output.startswith("Code execute Error: PermissionError")
    assert not os.path.exists(marker)


def test_background_process_does_not_outlive_the_block(sb, host_ok):
    with sb.session() as s:
        s.run("import os, time")
        wpid = sb.pool.session_worker_pid(s.id)
        r = s.run_result("pid = os.fork()\nif pid == 0:\n    os.setsid()\n"
                         "    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
                         "print('parent done')")
        # no new processes at all where the worker's filter is active; else reaped after it
        assert r.output in ("parent done",
                            "Code execute Error: PermissionError: [Errno 1] Operation not "
                            "permitted"), r.output
        assert host_pids_with_parent(wpid) == []
        if sb.pool.isolation["mount_proc"]:
            assert s.run("print([p for p in os.listdir('/proc') if p.isdigit()])") == "['1']"


def test_connecting_to_a_loopback_port_the_test_opened(sb, host_ok):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        r = run_fresh(sb, f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), "
                          "timeout=0.5)\ns.sendall(b'hello')\nprint('connected')")
        assert not r.ok and "connected" not in r.output
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_forging_protocol_frames(sb, host_ok):
    with sb.session() as s:
        s.run("kept = 1")
        r = s.run_result("import os\nos.write(4, b'\\xff\\xff\\xff\\x7f' + b'junk' * 10)")
        # reported in-band as this block's error; the worker is replaced
        assert not r.ok and "malformed reply (protocol violation)" in r.output, r.output
        nxt = s.run_result("print('kept' in globals())")
        assert nxt.state_reset and nxt.output.endswith("False")


def test_exiting_the_interpreter(sb, host_ok):
    with sb.session() as s:
        assert s.run("import sys\nsys.exit(3)") == "Code execute Error: SystemExit: 3"
        r = s.run_result("import os\nos._exit(0)")
        assert r.output.startswith("Code execute Error: SandboxCrash:")
        assert s.run_result("print(2)").state_reset


def test_signalling_the_sandbox_itself(sb, host_ok):
    with sb.session() as s:
        r = s.run_result("import os, signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                         "signal.setitimer(signal.ITIMER_REAL, 0)\nwhile True: pass")
        assert r.timed_out
        check_time(r)


# ---- memory across processes, host IPC, survivors (issue 18) ---------------------------------

def alive(pid):
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def sysv_keys(kind):
    """Keys of the host's SysV objects of `kind` ('shm', 'msg', 'sem'), from the host's view."""
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            next(f)
            return {int(line.split()[0]) for line in f if line.strip()}
    except OSError:
        return set()


def test_no_new_processes_one_memory_limit(sb, host_ok):
    # The attack: children each under the per-process limit add up to several times it.
    with sb.session() as s:
        s.run("import os")
        wpid = sb.pool.session_worker_pid(s.id)
        r = s.run_result("kids = []\nfor i in range(4):\n    pid = os.fork()\n"
                         "    if pid == 0:\n        x = bytearray(400 << 20)\n"
                         "        import time; time.sleep(5); os._exit(0)\n"
                         "    kids.append(pid)\nprint(kids)")
        assert r.output.startswith("Code execute Error: PermissionError"), r.output
        assert host_pids_with_parent(wpid) == []
        for code in ("import os\nos.posix_spawn('/bin/true', ['true'], {})",
                     "import multiprocessing\np = multiprocessing.Process(target=print)\n"
                     "p.start()\np.join()"):
            r = s.run_result(code)
            assert not r.ok and ("PermissionError" in r.output or "OSError" in r.output), r.output
        assert host_pids_with_parent(wpid) == []
        # threads still work, inside the one process
        assert s.run("import threading\nout = []\nt = threading.Thread(target=out.append, "
                     "args=(7,))\nt.start(); t.join()\nprint(out)") == "[7]"


def test_sysv_ipc_does_not_reach_the_host(sb, host_ok):
    key = 0x67707236
    before = {k: sysv_keys(k) for k in ("shm", "msg", "sem")}
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nres = []\n"
            f"for fn, args in [('shmget', ({key}, 64 << 20, 0o1666)), "
            f"('msgget', ({key}, 0o1666)), ('semget', ({key}, 1, 0o1666))]:\n"
            "    r = getattr(libc, fn)(*[ctypes.c_long(a) for a in args])\n"
            "    res.append((fn, r, ctypes.get_errno() if r < 0 else 0))\n"
            "print(res)")
    r = run_fresh(sb, code)
    assert r.ok, r.output
    for kind in ("shm", "msg", "sem"):
        assert key not in sysv_keys(kind) - before[kind]
        assert key not in sysv_keys(kind)
    # and a second session cannot find what the first one left (none created anywhere it sees)
    r2 = run_fresh(sb, "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                       f"print(libc.msgget(ctypes.c_long({key}), 0), libc.shmget("
                       f"ctypes.c_long({key}), 0, 0))")
    assert r2.output == "-1 -1"


def test_unix_socket_by_path_is_unreachable(sb, host_ok, canary):
    path = os.path.join(canary[0], "host.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    server.settimeout(0.3)
    try:
        r = run_fresh(sb, f"import socket\ns = socket.socket(socket.AF_UNIX)\n"
                          f"s.connect({path!r})\ns.sendall(b'hi')\nprint('connected')")
        assert not r.ok and "connected" not in r.output
        with pytest.raises(socket.timeout):
            server.accept()
        # socketpair (asyncio's self-pipe) still works: it reaches only itself
        assert run_fresh(sb, "import socket\na, b = socket.socketpair()\na.send(b'x')\n"
                             "print(b.recv(1))").output == "b'x'"
    finally:
        server.close()
        os.remove(path)


def test_io_uring_is_denied(sb, host_ok):
    r = run_fresh(sb, "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                      "params = ctypes.create_string_buffer(120)\n"
                      "fd = libc.syscall(425, 8, params)\n"
                      "print(fd, os.strerror(ctypes.get_errno()) if fd < 0 else 'ring')")
    assert r.output == "-1 Operation not permitted"


def test_file_locks_cannot_block_the_host(sb, host_ok, canary):
    import fcntl
    target = canary[1]
    code = (f"import fcntl, os, time\nfd = os.open({target!r}, os.O_RDONLY)\nres = []\n"
            "for how in [lambda: fcntl.flock(fd, fcntl.LOCK_SH), "
            "lambda: fcntl.lockf(fd, fcntl.LOCK_SH), "
            "lambda: fcntl.fcntl(fd, fcntl.F_SETLK, b'\\0' * 32)]:\n"
            "    try:\n        how(); res.append('locked')\n"
            "    except OSError as e:\n        res.append(e.errno)\n"
            "time.sleep(0.4)\nprint(res)")
    done = []
    with sb.session() as s:
        s.submit(code, done.append)
        time.sleep(0.2)
        with open(target) as f:  # the host takes its lock without waiting
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        while not done:
            sb.wait_and_poll(1.0)
    assert "locked" not in done[0].output, done[0].output


def test_thread_that_forks_after_the_block_returned(sb, host_ok):
    with sb.session() as s:
        s.run("kept = 1")
        wpid = sb.pool.session_worker_pid(s.id)
        r = s.run_result("import os, threading, time\n"
                         "def later():\n    time.sleep(0.3)\n"
                         "    for _ in range(4):\n"
                         "        try:\n            if os.fork() == 0:\n"
                         "                while True: pass\n"
                         "        except OSError:\n            pass\n    while True: pass\n"
                         "threading.Thread(target=later, daemon=True).start()\nprint('returned')")
        assert r.output == "returned"
        # the block's thread is ended with its worker before the next block can start
        assert not alive(wpid)
        time.sleep(0.5)
        assert host_pids_with_parent(wpid) == []
        r = s.run_result("print('kept' in globals())")
        assert r.state_reset and "thread" in r.output and r.output.endswith("False")
        # a joined thread is not a leftover: the namespace stays
        s.run("import threading\nt = threading.Thread(target=sum, args=([1],))\nt.start()\n"
              "t.join()\nkept = 2")
        assert s.run("print(kept)") == "2"


@pytest.fixture
def shared_tmp():
    """A temporary root the unprivileged worker can enter (pytest's tmp_path sits under a 0700
    directory of the host user)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="genprm-test-root-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_workers_die_with_a_killed_engine_and_dirs_are_cleaned(shared_tmp):
    import subprocess
    import sys
    root = shared_tmp
    engine = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom genprm import Sandbox\n"
         f"sb = Sandbox(workers=1, temp_root={root!r})\ns = sb.session()\n"
         "s.run('x = 1')\nprint(sb.pool.session_worker_pid(s.id), flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        wpid = int(engine.stdout.readline())
        assert os.path.exists(f"/proc/{wpid}")
        assert any(n.startswith("genprm-sandbox-") for n in os.listdir(root))
    finally:
        engine.kill()
        engine.wait()
    deadline = time.time() + 5
    while alive(wpid) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(wpid)  # PR_SET_PDEATHSIG
    left = [n for n in os.listdir(root) if n.startswith("genprm-")]
    assert left  # what the SIGKILLed engine could not remove ...
    decoy = os.path.join(root, "genprm-sandbox-1.1.1-abcdef")  # not of this PID namespace
    os.mkdir(decoy)
    with Sandbox(workers=1, warm_workers=0, temp_root=root) as sb:  # ... the next start does
        assert "removed at start (%d" % len(left) in sb.isolation
        assert sb.run("print(2)") == "2"
    assert [n for n in os.listdir(root) if n.startswith("genprm-")] == [os.path.basename(decoy)]
    os.rmdir(decoy)


def test_forged_reply_with_invalid_utf8(sb, host_ok):
    with sb.session() as s:
        s.run("kept = 1")
        # a frame without the request's token is a protocol violation of this block
        r = s.run_result("import os, struct\nbody = bytes(8) + b'O' + b'\\xff\\xfe bad'\n"
                         "os.write(4, struct.pack('<I', len(body)) + body)\n"
                         "import time; time.sleep(0.2)")
        assert not r.ok and "protocol violation" in r.output, r.output
        nxt = s.run_result("print('next')")
        assert nxt.state_reset and nxt.output.endswith("next")
        # one with the token (read from the worker's frame) is this block's own output: valid
        # text (U+FFFD), and the worker's real reply, now unsolicited, replaces the worker
        r = s.run_result("import os, struct, sys\ntok = sys._getframe(1).f_locals['token']\n"
                         "body = tok + b'O' + b'forged \\xff\\xfe \\xed\\xa0\\x80 end'\n"
                         "os.write(4, struct.pack('<I', len(body)) + body)")
        assert isinstance(r.output, str) and r.output.startswith("forged \ufffd"), r.output
        assert r.output.endswith(" end")
        time.sleep(0.2)  # the worker's real reply, now unsolicited, arrives
        nxt = s.run_result("print('after')")
        assert nxt.output.endswith("after") and nxt.state_reset
        assert s.run("print('again')") == "again"


def test_wedged_request_channel_cannot_hang_the_host(sb, host_ok):
    import threading
    with sb.session() as s:
        r = s.run_result("import os\nkeep = os.dup(3)\nr, w = os.pipe()\nos.dup2(r, 3)\n"
                         "print('wedged')")
        assert r.output == "wedged"
        out = []
        big = "x = 1\n#" + "a" * (8 << 20)
        t = threading.Thread(target=lambda: out.append(s.run_result(big)), daemon=True)
        t.start()
        t.join(TIMEOUT + GRACE + SLACK + 5)
        assert not t.is_alive(), "the host hung writing to a worker that does not read"
        assert not out[0].ok and out[0].timed_out
        check_time(out[0])
        assert s.run_result("print('free')").output.endswith("free")


def test_partial_forged_frame_costs_one_deadline(sb, host_ok):
    # A header announcing more bytes than follow: the host's read has the block's deadline.
    with sb.session() as s:
        r = s.run_result("import os, struct, time\nos.write(4, struct.pack('<I', 100) + b'x' * 10)"
                         "\ntime.sleep(60)")
        assert not r.ok and r.timed_out, r.output
        check_time(r)
        assert s.run_result("print('after')").output.endswith("after")


# ---- minimal root, whole-tree memory, thread limit, work directories (issue 18) ---------------

def worker_status(pid):
    """Fields of the host's /proc/<pid>/status of a worker, as text."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def need_minimal_root(sb):
    if not sb.pool.isolation["mount_ns"]:
        pytest.skip("no mount namespace on this machine")
    # where a mount namespace is permitted the minimal root must be active, not silently off
    assert sb.pool.isolation["minimal_root"], sb.isolation


def test_host_files_are_not_visible(sb, host_ok, canary):
    import json
    need_minimal_root(sb)
    with open(canary[1]) as f:
        assert f.read() == "intact"  # world-readable on the host
    with sb.session() as other:
        other_dir = other.run("import os\nopen('note', 'w').write('other-session-note')\n"
                              "print(os.getcwd())")
        on_host = ["/etc/passwd", "/root", "/home", os.path.join(PROJECT, "CMakeLists.txt"),
                   canary[1], other_dir, os.path.expanduser("~")]
        assert all(os.path.lexists(t) for t in on_host)  # host side: they are there
        targets = on_host + ["/etc/shadow", "/etc/hostname", os.path.join(other_dir, "note")]
        code = (f"import json, os\nseen = []\nfor p in {targets!r}:\n"
                "    try:\n"
                "        seen.append(os.listdir(p) if os.path.isdir(p) else open(p).read())\n"
                "    except OSError as e:\n        seen.append(type(e).__name__)\n"
                "print(json.dumps([seen, os.listdir('/'), os.listdir('/etc'), "
                "os.listdir(os.path.dirname(os.getcwd())), os.path.basename(os.getcwd())]))")
        with sb.session() as s:
            out = s.run(code)
    seen, top, etc, tmp, mine = json.loads(out)
    assert seen == ["FileNotFoundError"] * len(targets), out
    assert "intact" not in out and "other-session-note" not in out and "root:" not in out
    # the root holds only what the interpreter needs: no home, root, var, the project's files.
    # The interpreter may live anywhere (a CI clone's venv under /check, /work, /opt ...), so the
    # top-level folders of its own paths are allowed beside the system ones.
    import sys, sysconfig
    own = [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)]
    own += list(sysconfig.get_paths().values())
    own_tops = {os.path.realpath(p).split(os.sep)[1] for p in own if p and os.path.isabs(p)}
    own_tops |= {p.split(os.sep)[1] for p in own if p and os.path.isabs(p)}
    assert set(top) <= {"dev", "etc", "proc", "tmp", "usr", "lib", "lib32", "lib64", "libx32",
                        "bin", "opt"} | own_tops, (top, own_tops)
    assert not {"home", "root", "var", "srv", "mnt"} & set(top), top
    assert etc == ["ld.so.cache"] and tmp == [mine], out


def test_minimal_root_is_read_only(sb, host_ok):
    need_minimal_root(sb)
    import sysconfig
    site = sysconfig.get_paths()["purelib"]  # the interpreter's site-packages, bound in
    name = "genprm-escape-%d.txt" % os.getpid()
    targets = ["/" + name, "/etc/" + name, "/usr/lib/" + name, os.path.join(site, name),
               "/tmp/" + name, "/proc/" + name]
    assert not any(os.path.exists(t) for t in targets)
    code = (f"import os\nres = []\nfor p in {targets!r}:\n"
            "    try:\n        open(p, 'w').write('pwned'); res.append('written')\n"
            "    except OSError as e:\n        res.append(e.errno)\n"
            "for d in ('/usr/lib', '/etc'):\n"
            "    try:\n        os.chmod(d, 0o777); res.append('chmod')\n"
            "    except OSError as e:\n        res.append(e.errno)\n"
            "open('/dev/null', 'w').write('x')\n"
            "print(res, len(open('/dev/urandom', 'rb').read(4)), open('mine', 'w').write('ok'))")
    r = run_fresh(sb, code)
    assert r.ok, r.output
    assert "written" not in r.output and "chmod" not in r.output and r.output.endswith(" 4 2")
    for t in targets:
        assert not os.path.exists(t) or t.startswith("/proc"), t  # host side: nothing appeared
    assert oct(os.stat("/usr/lib").st_mode & 0o777) != "0o777"


def test_fallback_without_minimal_root_is_reported(sb, host_ok):
    with Sandbox(workers=1, warm_workers=0, minimal_root=False) as whole:
        if whole.pool.isolation["mount_ns"]:
            assert not whole.pool.isolation["minimal_root"]
            assert "the host's whole tree, read-only" in whole.isolation
            # what the report says holds: host files are readable, not writable
            with open("/etc/passwd") as f:
                first = f.readline().strip()
            assert whole.run("print(open('/etc/passwd').readline().strip())") == first
        else:
            assert "the host's whole tree (no mount namespace" in whole.isolation
    if sb.pool.isolation["minimal_root"]:
        assert "filesystem view: minimal root, read-only" in sb.isolation


# A Docker-like seccomp profile: clone with namespace flags and unshare are refused.
_DENY_NAMESPACES = r"""
import ctypes, struct
NS = 0x00020000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x08000000 | 0x04000000 | 0x02000000
def stmt(code, k): return struct.pack('HBBI', code, 0, 0, k)
def jump(code, k, jt, jf): return struct.pack('HBBI', code, jt, jf, k)
EPERM, ENOSYS, ALLOW = 0x00050001, 0x00050026, 0x7fff0000
prog = b''.join([
    stmt(0x20, 0), jump(0x15, 56, 0, 4), stmt(0x20, 16), jump(0x45, NS, 0, 1),
    stmt(0x06, EPERM), stmt(0x06, ALLOW),
    jump(0x15, 272, 0, 1), stmt(0x06, EPERM),
    jump(0x15, 435, 0, 1), stmt(0x06, ENOSYS), stmt(0x06, ALLOW)])
class Prog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_char_p)]
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0  # no_new_privs
assert libc.prctl(22, 2, ctypes.byref(Prog(len(prog) // 8, prog)), 0, 0) == 0
"""


def test_namespaces_refused_fallback_is_reported_and_still_contains(shared_tmp):
    import json
    import subprocess
    import sys
    probe = _DENY_NAMESPACES + (
        "import json, os\nfrom genprm import Sandbox\n"
        f"with Sandbox(workers=1, warm_workers=0, temp_root={shared_tmp!r}) as sb:\n"
        "    out = dict(iso=sb.pool.isolation, text=sb.isolation, runs=sb.run('print(6 * 7)'),\n"
        "               fork=sb.run('import os\\nos.fork()'),\n"
        "               sock=sb.run('import socket\\nsocket.socket()'),\n"
        "               write=sb.run(\"open('/root/escape.txt', 'w')\"))\n"
        "print(json.dumps(out))")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ))
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    iso, text = out["iso"], out["text"]
    assert not iso["user_ns"] and not iso["mount_ns"] and not iso["minimal_root"], text
    assert "mount namespace: no" in text and "the host's whole tree (no mount namespace" in text
    assert "refused at probe: user+mount+pid+net+ipc namespaces + minimal root" in text
    assert out["runs"] == "42"
    # what still holds: no processes, no sockets, the uid drop (as root) or the caller's rights
    assert out["fork"].startswith("Code execute Error: PermissionError"), out
    assert out["sock"].startswith("Code execute Error: PermissionError"), out
    assert out["write"].startswith("Code execute Error: PermissionError"), out
    assert not os.path.exists("/root/escape.txt")


def test_threads_share_one_memory_limit(sb, host_ok):
    # The attack of issue 18 with threads: each under the limit, together several times it.
    with sb.session() as s:
        s.run("import threading")
        wpid = sb.pool.session_worker_pid(s.id)
        r = s.run_result(
            "held, errs = [], []\n"
            "def grab():\n    try:\n        held.append(bytearray(200 << 20))\n"
            "    except MemoryError:\n        errs.append(1)\n"
            "ts = [threading.Thread(target=grab) for _ in range(6)]\n"
            "for t in ts: t.start()\nfor t in ts: t.join()\n"
            "print(len(held), len(errs))\ndel held")
        assert r.ok, r.output
        held, errs = map(int, r.output.split())
        assert held + errs == 6 and held <= 2 and errs >= 4, r.output
        # host side: the one process never had more address space than the limit
        peak_kib = int(worker_status(wpid)["VmPeak"].split()[0])
        assert peak_kib * 1024 <= 512 << 20, peak_kib
        assert host_pids_with_parent(wpid) == []


def test_memory_outside_the_address_space_is_denied(sb, host_ok):
    with sb.session() as s:
        s.run("import os")
        wpid = sb.pool.session_worker_pid(s.id)
        # memfd: shared memory that counts against no rlimit until mapped
        r = s.run_result("fds = []\nfor i in range(8):\n    fd = os.memfd_create('m%d' % i)\n"
                         "    os.write(fd, b'x' * (8 << 20))\n    fds.append(fd)")
        assert r.output == "Code execute Error: PermissionError: [Errno 1] Operation not permitted"
        links = [os.readlink(f"/proc/{wpid}/fd/{n}") for n in os.listdir(f"/proc/{wpid}/fd")]
        assert not [lk for lk in links if "memfd:" in lk], links
        # files in the work dir are memory too (tmpfs): bounded by its size
        if sb.pool.isolation["mount_ns"]:
            r = s.run_result("for i in range(8):\n"
                             "    open('f%d' % i, 'wb').write(b'x' * (15 << 20))")
            assert r.output == "Code execute Error: OSError: [Errno 28] No space left on device"


def test_thread_limit_holds(sb, host_ok):
    # max_processes=16 in the fixture: every thread counts, the worker's main thread included.
    with sb.session() as s:
        s.run("import threading, time")
        wpid = sb.pool.session_worker_pid(s.id)
        done, seen = [], []
        s.submit("stop = threading.Event()\nts = []\ntry:\n    while len(ts) < 100:\n"
                 "        t = threading.Thread(target=stop.wait, daemon=True)\n"
                 "        t.start(); ts.append(t)\nexcept RuntimeError:\n    pass\n"
                 "time.sleep(0.5)\nstop.set()\nfor t in ts: t.join()\nprint(len(ts))", done.append)
        while not done:
            try:
                seen.append(int(worker_status(wpid)["Threads"]))
            except (OSError, KeyError, ValueError):
                pass
            sb.poll()
            time.sleep(0.02)
        started = int(done[0].output)
        assert 8 <= started < 16, done[0].output
        assert max(seen) <= 16, seen  # host side: the kernel never allowed more


def test_work_dirs_are_removed_on_every_exit_path(shared_tmp):
    def dirs():
        return sorted(n for n in os.listdir(shared_tmp) if n.startswith("genprm-"))
    with Sandbox(workers=1, warm_workers=0, timeout=TIMEOUT, kill_grace=GRACE,
                 temp_root=shared_tmp) as box:
        for code in ("import os\nos._exit(3)",                      # crash
                     "import time\nwhile True:\n    try:\n        time.sleep(9)\n"
                     "    except BaseException:\n        pass",        # killed at the deadline
                     "import os\nos.write(4, b'\\xff' * 12)",          # protocol violation
                     "import threading, time\n"
                     "threading.Thread(target=time.sleep, args=(9,), daemon=True).start()"):
            with box.session() as s:
                s.run("open('junk', 'w').write('x')")
                r = s.run_result(code)
                assert not r.ok or "thread" not in r.output
                # the lost worker's directory went with it
                assert len(dirs()) <= 1, dirs()
        with box.session() as s:
            s.run("print(1)")
            assert len(dirs()) == 1
        assert dirs() == []  # closed sessions leave nothing
    assert dirs() == []
