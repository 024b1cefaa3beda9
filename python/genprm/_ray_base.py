"""Ray connection and Parquet reading for genprm.ray and the command line's jobs (genprm.cli.jobs):
the part of the Ray support that knows nothing of the commands, so the jobs can use it without
importing the distributed driver. Ray is imported only when used."""
from __future__ import annotations

from typing import Any, Dict, Iterator, Optional

INSTALL = "pip install 'genprm[ray]' (or: pip install 'ray[data]')"


def message(e: BaseException) -> str:
    """An exception as one line: its type and the last line of its text."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[-1] if text else ''}"


def require() -> Any:
    """The ``ray`` module, or ImportError saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"Ray is not installed ({e}); install it with {INSTALL}") from None
    return ray


_connected_here = False  # whether connect() made this process's Ray connection (disconnect ends it)


def connect(address: Optional[str]) -> None:
    """Connects this process to Ray (address ""/None: a new local instance, or $RAY_ADDRESS;
    'auto', HOST:PORT, ray://HOST:PORT: that cluster) unless it already is."""
    global _connected_here
    ray = require()
    if ray.is_initialized():
        return
    import logging
    ray.init(address=address or None, include_dashboard=False, logging_level=logging.WARNING)
    _connected_here = True


def disconnect() -> None:
    """Ends the Ray connection connect() made in this process (one that was already there stays)."""
    global _connected_here
    if _connected_here:
        require().shutdown()
        _connected_here = False


def parquet_rows(path: str) -> Iterator[Dict[str, Any]]:
    """The rows of a Parquet file or folder, as dicts: through Ray Data when this process is
    connected to Ray (any storage it reads, s3:// included), else pyarrow. OSError when it
    cannot be read; ImportError saying how to install pyarrow when it is missing."""
    try:
        ray = require()
        use_ray = ray.is_initialized()
    except ImportError:
        use_ray = False
    try:
        if use_ray:
            ctx = ray.data.DataContext.get_current()
            ctx.execution_options.preserve_order = True  # row numbers in the messages
            for batch in ray.data.read_parquet(path).iter_batches(batch_format="pyarrow"):
                yield from batch.to_pylist()
            return
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"reading Parquet needs pyarrow: {INSTALL}") from None
        yield from pq.read_table(path).to_pylist()
    except (ImportError, OSError):
        raise
    except Exception as e:  # noqa: BLE001  pyarrow's and Ray's read errors, as the CLI reports them
        raise OSError(message(e)) from None
