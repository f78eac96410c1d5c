"""Writing files that a crash cannot leave half-written, and what they are checked by.

The bottom of the package: it imports nothing of ``avgreward`` but its
``__version__`` (the package's ``__init__`` imports nothing of it at module
level), so that a saved result (:mod:`avgreward.result`) and an experiment's
records (:mod:`avgreward.runner.records`) share these helpers without an
import circle.  Internal API: none of it is in ``__all__``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import json
import os
import platform
from pathlib import Path

import numpy as np

__all__: list[str] = []

# The packages whose versions a record names (besides avgreward and Python).
DEPENDENCIES = ("numpy", "numba", "gymnasium", "matplotlib", "tqdm")


def package_versions() -> dict:
    """The versions a record carries: avgreward, Python, :data:`DEPENDENCIES`, the platform.

    A dependency that is not installed is None.  Read once a process: the
    versions of the packages it imported, which a later ``pip install`` does
    not change (reading the installed metadata costs 10 ms a call).
    """
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict:
    import avgreward

    versions = {"avgreward": avgreward.__version__, "python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["platform"] = platform.platform()
    return versions


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a power loss could undo it otherwise)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` under a temporary name, sync it, rename, sync the directory."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)


def write_json(path: Path, data: dict) -> None:
    """:func:`atomic_write` of ``data`` as indented JSON with a final newline."""
    atomic_write(path, (json.dumps(data, indent=1) + "\n").encode())


def npz_bytes(arrays: dict) -> bytes:
    """The bytes of an uncompressed ``.npz`` of ``arrays`` (name -> array)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    """The sha256 of ``data`` as hexadecimal digits (what records carry)."""
    return hashlib.sha256(data).hexdigest()
