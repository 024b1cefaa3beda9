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
        allow_subprocess: let blocks run other programs (execve); off by default.
        max_live_workers: most session workers alive at once (0: one per open session); the
            least recently used idle session then restarts fresh, with the reset note.
    """

    def __init__(self, timeout: float = 5.0, *, cpu: float = 10.0, memory: int = 2 << 30,
                 file_size: int = 16 << 20, max_processes: int = 32, max_open_files: int = 64,
                 max_output: int = 64 * 1024, workers: int = 4, warm_workers: int = -1,
                 preload: Iterable[str] = (), python: Optional[str] = None,
                 kill_grace: float = 0.5, namespaces: bool = True,
                 drop_privileges: bool = True, seccomp: bool = True,
                 announce_reset: bool = True, allow_subprocess: bool = False,
                 max_live_workers: int = 0, temp_root: str = ""):
        o = SandboxOptions()
        o.python = python or os.environ.get("GENPRM_SANDBOX_PYTHON") or sys.executable
        o.timeout_s = float(timeout)
        o.kill_grace_s = float(kill_grace)
        o.cpu_s = float(cpu)
        o.memory_bytes = int(memory)
        o.file_size_bytes = int(file_size)
        o.max_processes = int(max_processes)
        o.max_open_files = int(max_open_files)
        o.max_output_bytes = int(max_output)
        o.workers = int(workers)
        o.warm_workers = int(warm_workers)
        o.preload = list(preload)
        o.use_namespaces = bool(namespaces)
        o.drop_privileges = bool(drop_privileges)
        o.use_seccomp = bool(seccomp)
        o.announce_reset = bool(announce_reset)
        o.allow_subprocess = bool(allow_subprocess)
        o.max_live_workers = int(max_live_workers)
        o.temp_root = temp_root
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
