"""Keep numba's on-disk cache consistent with the sources of ``envs`` and ``avgreward``.

Numba invalidates a cached function only when its own file changes, not when
a jitted function it calls (and has compiled in) changes in another module:
after editing the pendulum's physics, the cached fused loop of
``avgreward.loop`` would silently keep the old physics.  So on import we hash
every source file of both packages and, when the hash differs from the one
the cache was built with, delete both packages' numba cache files.
"""

import hashlib
import importlib.util
import os
from pathlib import Path

_PACKAGES = ("envs", "avgreward")
_STAMP = "numba-sources.sha256"


def _package_dirs():
    dirs = []
    for name in _PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs.append(Path(next(iter(spec.submodule_search_locations))))
    return dirs


def _sources_hash(dirs) -> str:
    digest = hashlib.sha256()
    for directory in dirs:
        for path in sorted(directory.rglob("*.py")):
            if "__pycache__" in path.parts:  # avgreward.specialize's generated copies
                continue
            digest.update(str(path.relative_to(directory.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


_current_hash = None


def sources_hash() -> str:
    """The sha256 of every source file of both packages, as this process found them."""
    global _current_hash
    if _current_hash is None:
        _current_hash = _sources_hash(_package_dirs())
    return _current_hash


def ensure_fresh_cache() -> None:
    """Delete stale numba cache files of both packages (cheap when nothing changed)."""
    try:
        dirs = _package_dirs()
        current = sources_hash()
        stamp = dirs[0] / "__pycache__" / _STAMP
        if stamp.is_file() and stamp.read_text() == current:
            return
        for directory in dirs:
            for cached in (directory / "__pycache__").glob("*.nb[ci]"):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(current)
        os.replace(tmp, stamp)
    except OSError:
        # A read-only install cannot hold a numba cache either: nothing to keep fresh.
        pass
