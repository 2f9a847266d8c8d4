"""Files that are either whole or absent: write to a temporary name, then rename.

    atomic_write_bytes(path, data)                       # bytes
    atomic_write_json(path, {"n": np.int64(3)})          # indented JSON (numpy values as plain)
    with atomic_writer(path, "w") as handle: ...         # a file object; renamed on success

A run that is killed while writing leaves at most a temporary file beside the target
(``.NAME.tmp-HOST-PID``, which readers ignore), never a truncated file under the target's
name: the rename (`os.replace`) is atomic on every operating system Python supports, as long
as both names are in the same folder. The command line's overlays, the shards and manifest of
`camutils.dataset` and the benchmarks' results files are written this way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_writer", "json_default",
           "temporary_name", "is_temporary"]

_MARK = ".tmp-"


def temporary_name(path) -> Path:
    """The temporary name ``path`` is written under before it is renamed: hidden, in the
    same folder, unique to this machine and process (two writers never share one)."""
    path = Path(path)
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-_")[:32] or "host"
    return path.with_name(f".{path.name}{_MARK}{host}-{os.getpid()}")


def is_temporary(path) -> bool:
    """Whether ``path`` is a temporary file of `atomic_writer` (to be ignored by readers)."""
    name = Path(path).name
    return name.startswith(".") and _MARK in name


@contextlib.contextmanager
def atomic_writer(path, mode: str = "wb", durable: bool = False, **kwargs):
    """Open a temporary file for ``path``; on success rename it to ``path``, on an exception
    remove it (``path`` is then untouched).

    ``durable``: also flush the file to the disk before the rename (``os.fsync``), so that it
    survives a crash of the machine, not only of the process (a few milliseconds a file: the
    shards of `camutils.dataset` are written so; overlays are not)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        with open(temporary, mode, **kwargs) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file (see the module's docstring)."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_json(path, data, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` as JSON (indented, one trailing newline; numpy numbers and
    arrays and paths as plain JSON values, see `json_default`) through a temporary file."""
    with atomic_writer(path, "w", durable=durable, encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, default=json_default)
        handle.write("\n")
    return Path(path)


def json_default(value):
    """``json.dump``'s ``default=``: a numpy number or array, or a path, as plain JSON."""
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Cannot write {type(value).__name__} as JSON.")
