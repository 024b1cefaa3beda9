"""Sandboxed execution of model-written Python, with GenPRM's in-band output texts.

    >>> from genprm import Sandbox
    >>> with Sandbox(timeout=5.0) as sb:
    ...     sb.run("x = 2\\nprint(x + 1)")          # default session
    '3'
    ...     with sb.session() as s:                 # a separate namespace, closed on exit
    ...         s.run("print(1/0)")
    'Code execute Error: ZeroDivisionError: division by zero'

Each session is a separate, isolated Python process (see docs/security.md); its namespace
persists across blocks like GenPRM's CodeExecutor. ``run`` returns exactly the text GenPRM appends
after ``[Code Output]``; ``run_result`` returns the full ``CodeResult``.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Iterable, Optional

from . import _core

CodeResult = _core.CodeResult
SandboxOptions = _core.SandboxOptions
_D = SandboxOptions()  # the defaults, defined once in C++
SandboxPool = _core.SandboxPool
last_python_block = _core.last_python_block

__all__ = ["Sandbox", "SandboxSession", "CodeResult", "SandboxOptions", "SandboxPool",
           "last_python_block"]


class SandboxSession:
    """One persistent Python namespace in a Sandbox. Use as a context manager."""

    def __init__(self, pool: SandboxPool):
        self._pool = pool
        self._id: Optional[int] = pool.open_session()

    @property
    def id(self) -> int:
        if self._id is None:
            raise ValueError("SandboxSession: the session is closed")
        return self._id

    def run(self, code: str) -> str:
        """Runs one block and returns GenPRM's in-band text (stdout stripped, or the error)."""
        return self._pool.run(self.id, code).output

    def run_result(self, code: str) -> CodeResult:
        return self._pool.run(self.id, code)

    def submit(self, code: str, on_done: Callable[[CodeResult], None]) -> None:
        """Queues a block; ``on_done`` runs inside a later ``Sandbox.poll()``."""
        self._pool.submit(self.id, code, on_done)

    def close(self) -> None:
        if self._id is not None:
            self._pool.close_session(self._id)
            self._id = None

    def __enter__(self) -> "SandboxSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Sandbox:
    """A pool of sandboxed Python workers.

    Args:
        timeout: wall-clock seconds per block (the block gets TimeoutError, then the worker's
            process group is killed ``kill_grace`` seconds later).
        cpu: CPU seconds per block. memory: address-space bytes. file_size: largest file.
        max_processes: processes + threads. max_open_files. max_output: stdout bytes kept.
        workers: blocks running at once. preload: modules imported ahead in warm workers.
        python: interpreter; default ``$GENPRM_SANDBOX_PYTHON`` or this interpreter.
        namespaces / drop_privileges / seccomp: isolation switches (used where permitted).
        minimal_root: with a mount namespace, blocks see only the interpreter, what it imports
            and their work dir (False: the host's whole tree, read-only).
        allow_subprocess: let blocks run other programs (execve); off by default.
        max_live_workers: most session workers alive at once (0: one per open session); the
            least recently used idle session then restarts fresh, with the reset note.
    """

    def __init__(self, timeout: float = _D.timeout_s, *, cpu: float = _D.cpu_s, memory: int = _D.memory_bytes,
                 file_size: int = _D.file_size_bytes, max_processes: int = _D.max_processes,
                 max_open_files: int = _D.max_open_files, max_output: int = _D.max_output_bytes,
                 workers: int = _D.workers, warm_workers: int = _D.warm_workers, preload: Iterable[str] = tuple(_D.preload),
                 python: Optional[str] = None, kill_grace: float = _D.kill_grace_s,
                 namespaces: bool = _D.use_namespaces, drop_privileges: bool = _D.drop_privileges,
                 seccomp: bool = _D.use_seccomp, minimal_root: bool = _D.minimal_root,
                 announce_reset: bool = _D.announce_reset,
                 allow_subprocess: bool = _D.allow_subprocess, max_live_workers: int = _D.max_live_workers,
                 temp_root: str = _D.temp_root):
        o = SandboxOptions(
            python=python or os.environ.get("GENPRM_SANDBOX_PYTHON") or sys.executable, timeout_s=float(timeout),
            kill_grace_s=float(kill_grace), cpu_s=float(cpu), memory_bytes=int(memory),
            file_size_bytes=int(file_size), max_processes=int(max_processes), max_open_files=int(max_open_files),
            max_output_bytes=int(max_output), workers=int(workers), warm_workers=int(warm_workers),
            preload=list(preload), use_namespaces=bool(namespaces), drop_privileges=bool(drop_privileges),
            use_seccomp=bool(seccomp), minimal_root=bool(minimal_root), announce_reset=bool(announce_reset),
            allow_subprocess=bool(allow_subprocess), max_live_workers=int(max_live_workers), temp_root=temp_root)
        self.pool: Optional[SandboxPool] = SandboxPool(o)
        self._default: Optional[SandboxSession] = None

    def _live_pool(self) -> SandboxPool:
        if self.pool is None:
            raise ValueError("Sandbox: closed")
        return self.pool

    def session(self) -> SandboxSession:
        """A new namespace; ``with sb.session() as s: s.run(code)``."""
        return SandboxSession(self._live_pool())

    def run(self, code: str) -> str:
        """Runs ``code`` in the default session (namespace kept across calls)."""
        return self.run_result(code).output

    def run_result(self, code: str) -> CodeResult:
        if self._default is None:
            self._default = self.session()
        return self._default.run_result(code)

    def reset(self) -> None:
        """Forgets the default session's namespace."""
        if self._default is not None:
            self._default.close()
            self._default = None

    def poll(self) -> int:
        return self._live_pool().poll()

    def wait_and_poll(self, timeout: float = 1.0) -> int:
        return self._live_pool().wait_and_poll(timeout)

    def idle(self) -> bool:
        return self._live_pool().idle()

    @property
    def isolation(self) -> str:
        """Which mechanisms are active, one per line."""
        return self._live_pool().describe_isolation()

    def close(self) -> None:
        """Ends every worker (running blocks are killed). Idempotent."""
        self._default = None
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
