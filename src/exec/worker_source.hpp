#pragma once
// The Python side of a sandbox worker, a string compiled into the library so that an install
// needs no data files. It is passed to `python -I -B -c <source> <args...>` by sandbox.cpp.
//
// Protocol (fd 3: requests from the host, fd 4: replies to the host; 0 is /dev/null, 1 and 2 are
// /dev/null, so stray C-level output never reaches the protocol stream):
//   request = u32 little-endian length + 8-byte token + UTF-8 code
//   reply   = u32 little-endian length + the request's token + one status byte + UTF-8 text
//     'R' ready (sent once after start-up and preloads, token 0), 'O' ran, 'E' exception,
//     'T' soft timeout
// The host trusts none of it: a block can write to fd 4 too. The host checks length, token and
// status, replaces invalid UTF-8, and treats a frame it did not ask for as a protocol violation.
// argv: timeout_s cpu_s max_output_bytes preload_csv worker_filter_hex
// At start-up the worker exits at once when its reply pipe has no reader (the host died before
// the parent-death signal was armed), marks itself non-dumpable (no /proc/<pid>/mem or ptrace by
// another process of the same uid) and, when a filter is given (the BPF program of
// worker_seccomp_program(), as hex), installs it: execve/execveat and fork/vfork/clone of a new
// process fail with EPERM. The 'R' frame's text says which of these took effect
// ("dumpable=0 noexec=1 nofork=1").
//
// Semantics follow GenPRM's CodeExecutor: one namespace dict for the whole session, stdout of
// the block captured through sys.stdout into an io.StringIO (a capped subclass that carries
// io.StringIO's name, so error texts naming stdout's type are the reference's) and stripped, `Code execute Error: {Type}: {message}`
// on an exception (the block's stdout is then dropped), `Code execute time out: {e}` when the
// SIGALRM timer fires (message "Code execution timed out"). The namespace survives a soft
// timeout exactly as in the reference; the host kills the worker only when the block ignores it.

namespace genprm::exec_detail {

inline const char* worker_python_source() {
  return R"PY(
import os, sys, signal, struct, resource, io
_RFD, _WFD = 3, 4
_timeout = float(sys.argv[1]); _cpu = float(sys.argv[2]); _cap = int(sys.argv[3])
_preload = [m for m in sys.argv[4].split(',') if m]
_filter = bytes.fromhex(sys.argv[5])
_write, _read, _getpid = os.write, os.read, os.getpid
_me = _getpid()

def _harden():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    done = []
    if libc.prctl(4, 0, 0, 0, 0) == 0:  # PR_SET_DUMPABLE
        done.append('dumpable=0')
    if _filter:
        class P(ctypes.Structure):
            _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
        buf = ctypes.create_string_buffer(_filter, len(_filter))
        fp = P(len(_filter) // 8, ctypes.addressof(buf))  # struct sock_filter: 8 bytes
        if libc.prctl(22, 2, ctypes.byref(fp), 0, 0) == 0:  # PR_SET_SECCOMP, FILTER
            done.append('noexec=1 nofork=1')
    return ' '.join(done)

def _read_exact(n):
    buf = b''
    while len(buf) < n:
        chunk = _read(_RFD, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf

def _send(token, kind, text):
    data = token + kind + text.encode('utf-8', 'replace')
    data = struct.pack('<I', len(data)) + data
    while data:
        data = data[_write(_WFD, data):]

_kept = [0, 0]  # characters of the running block's stdout kept, and dropped past the cap

# The reference's io.StringIO (its redirect_stdout target) with a cap: keeps the first _cap
# characters written and counts the rest. Named like io.StringIO, so that every text naming
# stdout's type is the reference's ("'_io.StringIO' object has no attribute 'buffer'",
# "<_io.StringIO object at ...>"); everything but write() is io.StringIO's.
class _Stdout(io.StringIO):
    __slots__ = ()
    def write(self, s):
        if not isinstance(s, str):
            return io.StringIO.write(self, s)  # io.StringIO's own TypeError
        room = max(_cap - _kept[0], 0)
        io.StringIO.write(self, s[:room])  # also io.StringIO's error on a closed stdout
        _kept[0] += min(room, len(s))
        if len(s) > room:
            _kept[1] += len(s) - room
        return len(s)
_Stdout.__name__, _Stdout.__qualname__, _Stdout.__module__ = '_io.StringIO', 'StringIO', '_io'

def _cap_text(text, dropped):
    raw = text.encode('utf-8', 'replace')
    if len(raw) > _cap:
        dropped += len(raw) - _cap
        text = raw[:_cap].decode('utf-8', 'ignore')
    if dropped:
        text = text.rstrip() + '\n[output truncated: %d more characters not shown]' % dropped
    return text

def _on_alarm(signum, frame):
    raise TimeoutError('Code execution timed out')

def _describe(e):
    try:
        return 'Code execute Error: %s: %s' % (type(e).__name__, e)
    except BaseException:
        return 'Code execute Error: %s: <unprintable message>' % type(e).__name__

def _reap_leftovers():
    # As init of its own PID namespace the worker ends every process the block left behind.
    init = _getpid() == 1
    if init:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if init else os.WNOHANG)
        except OSError:
            break
        if pid == 0:
            break

def _cpu_used():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def _host_gone():
    import select
    p = select.poll()
    p.register(_WFD, select.POLLOUT)
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(0))

def _main():
    if _host_gone():
        os._exit(0)
    for name in _preload:
        try:
            __import__(name)
        except BaseException:
            pass
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        ready = _harden()
    except BaseException:
        ready = ''
    namespace = {}
    _send(bytes(8), b'R', ready)
    real_stdout = sys.stdout
    while True:
        header = _read_exact(4)
        if header is None:
            return
        body = _read_exact(struct.unpack('<I', header)[0])
        if body is None or len(body) < 8:
            return
        token = body[:8]
        code = body[8:].decode('utf-8', 'replace')
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            want = int(_cpu_used() + _cpu) + 1
            if hard != resource.RLIM_INFINITY:
                want = min(want, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
        except (ValueError, OSError):
            pass
        out = _Stdout()
        _kept[0] = _kept[1] = 0
        kind, text = b'O', ''
        try:
            try:
                sys.stdout = out
                signal.signal(signal.SIGALRM, _on_alarm)  # a block may have replaced it
                signal.setitimer(signal.ITIMER_REAL, _timeout)
                exec(compile(code, '<string>', 'exec'), namespace)
                signal.setitimer(signal.ITIMER_REAL, 0)
                sys.stdout = real_stdout
                kind, text = b'O', _cap_text(out.getvalue().strip(), _kept[1])
            except TimeoutError as te:
                signal.setitimer(signal.ITIMER_REAL, 0)
                sys.stdout = real_stdout
                kind, text = b'T', 'Code execute time out: %s' % (te,)
            except BaseException as e:
                signal.setitimer(signal.ITIMER_REAL, 0)
                sys.stdout = real_stdout
                kind, text = b'E', _cap_text(_describe(e), 0)
        except TimeoutError as te:
            # the timer fired between the block and the handler: still a timeout of this block
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout = real_stdout
            kind, text = b'T', 'Code execute time out: %s' % (te,)
        if _getpid() != _me:
            os._exit(0)  # a process the block forked must never speak the protocol
        e = None
        _reap_leftovers()
        _send(token, kind, text)

_main()
)PY";
}

}  // namespace genprm::exec_detail
