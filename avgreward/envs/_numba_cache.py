"""Keep numba's on-disk cache consistent with the sources of ``avgreward``.

Numba invalidates a cached function only when its own file changes, not when
a jitted function it calls (and has compiled in) changes in another module:
after editing the pendulum's physics, the cached fused loop of
``avgreward.loop`` would silently keep the old physics.  So on import we hash
every source file of the package (its subpackages, ``avgreward.envs`` among
them, included) and, when the hash differs from the one the cache was built
with, delete the package's numba cache files.
"""

import enum
import functools
import hashlib
import inspect
import os
import sysconfig
import types
from pathlib import Path

import numpy as np

_STAMP = "numba-sources.sha256"


def _package_dirs():
    # The directory of avgreward itself (this file is avgreward/envs/_numba_cache.py),
    # not whatever a search of sys.path for the name would find first.
    return [Path(__file__).parent.parent]


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
    """The sha256 of every source file of the package, as this process found them."""
    global _current_hash
    if _current_hash is None:
        _current_hash = _sources_hash(_package_dirs())
    return _current_hash


def ensure_fresh_cache() -> None:
    """Delete the package's stale numba cache files (cheap when nothing changed)."""
    try:
        dirs = _package_dirs()
        current = sources_hash()
        stamp = dirs[0] / "__pycache__" / _STAMP
        if stamp.is_file() and stamp.read_text() == current:
            return
        for directory in dirs:
            # Subpackages (avgreward.envs, avgreward.learners) and the loop's compiled
            # copies too.
            for cached in directory.rglob("__pycache__/*.nb[ci]"):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(current)
        os.replace(tmp, stamp)
    except OSError:
        # A read-only install cannot hold a numba cache either: nothing to keep fresh.
        pass


# --- the caches of functions outside the package (an environment of the user's) --------


def _code_names(code) -> set[str]:
    """Global names a code object (and the code nested in it) may read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _referenced(func):
    """``(name, value)`` of every global, closure variable and user-module attribute ``func`` reads.

    An attribute read from a module that is not installed (``params.G``,
    ``helpers.bonus``) counts as read: its name is among the code's names.
    """
    names = sorted(_code_names(func.__code__))
    for name in names:
        if name not in func.__globals__:
            continue
        value = func.__globals__[name]
        yield name, value
        path = getattr(value, "__file__", None)
        if isinstance(value, types.ModuleType) and path and not _is_installed(path):
            attributes = vars(value)
            for attr in names:
                if attr in attributes:
                    yield f"{name}.{attr}", attributes[attr]
    for name, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
        try:
            yield name, cell.cell_contents
        except ValueError:  # an empty cell
            pass


def _hash_value(digest, name, value, seen) -> None:
    """Add what ``value`` (a global or closure variable named ``name``) contributes.

    Functions are followed; user modules hashed by file; numbers, strings,
    arrays, numpy scalars, enums and tuples of them by their exact value;
    anything else by its type and address-free repr.
    """
    if hasattr(value, "py_func"):  # a jitted function: follow it
        digest.update(repr(sorted(getattr(value, "targetoptions", {}).items())).encode())
        hash_function(digest, value.py_func, seen)
    elif isinstance(getattr(value, "_defn", None), types.FunctionType):  # numba @intrinsic
        hash_function(digest, value._defn, seen)
    elif isinstance(value, types.FunctionType):
        hash_function(digest, value, seen)
    elif isinstance(value, types.ModuleType):
        path = getattr(value, "__file__", None)
        if path and not _is_installed(path):
            _hash_file(digest, path, seen)
    else:
        digest.update(name.encode())
        _hash_constant(digest, value)


def _hash_constant(digest, value) -> None:
    if isinstance(value, np.ndarray):
        digest.update(f"array {value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, np.generic):
        digest.update(f"{value.dtype.str} ".encode() + value.tobytes())
    elif isinstance(value, (tuple, list, frozenset)):
        digest.update(f"{type(value).__name__}{len(value)}(".encode())
        for item in value:
            _hash_constant(digest, item)
        digest.update(b")")
    elif isinstance(value, enum.Enum):
        digest.update(f"{type(value).__qualname__}.{value.name}=".encode())
        _hash_constant(digest, value.value)
    elif isinstance(value, type) and issubclass(value, enum.Enum):
        digest.update(f"enum {value.__qualname__}".encode())
        for member in value:
            _hash_constant(digest, member)
    elif isinstance(value, float):
        digest.update(float(value).hex().encode())
    elif isinstance(value, (bool, int, complex, str, bytes, type(None))):
        digest.update(repr(value).encode())
    elif isinstance(value, types.CodeType):
        _hash_code(digest, value)
    elif isinstance(value, type):
        digest.update(f"class {value.__module__}.{value.__qualname__}"
                      f"{getattr(value, '_fields', '')}".encode())
    else:
        # Anything else (a numba intrinsic, an object numba knows how to type): its
        # type, and its repr unless that holds a memory address (it would differ in
        # every process).  A user's object with a meaningful repr is covered; one
        # without is named by its type only.
        digest.update(f"<{type(value).__module__}.{type(value).__qualname__}>".encode())
        text = repr(value)
        if " at 0x" not in text:
            digest.update(text.encode())


def _hash_code(digest, code) -> None:
    """A code object without its file name and line numbers: what it computes, and names."""
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
                        code.co_argcount, code.co_flags)).encode())
    for const in code.co_consts:
        _hash_constant(digest, const)


@functools.lru_cache(maxsize=1)
def _installed_dirs():
    # numpy, numba, math... cannot change under a run: their files are not ours to hash.
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    return tuple(os.path.realpath(d) for d in dirs)


def _is_installed(path) -> bool:
    path = os.path.realpath(path)
    return any(path.startswith(d + os.sep) for d in _installed_dirs())


def _hash_file(digest, path, seen) -> None:
    if path in seen:
        return
    seen.add(path)
    digest.update(path.encode())
    try:
        digest.update(Path(path).read_bytes())
    except OSError:
        digest.update(b"<unreadable>")


def hash_function(digest, func, seen) -> None:
    """Add ``func``'s code, its file, and all it reads (followed through functions) to ``digest``.

    ``seen`` holds the files and functions already added.
    """
    if func in seen:
        return
    seen.add(func)
    digest.update(f"{func.__module__}.{func.__qualname__}".encode())
    path = inspect.getsourcefile(func)
    if path and os.path.isfile(path):
        _hash_file(digest, path, seen)
    # Always the code itself too: a function typed into a notebook has no file,
    # and the file alone would not see a function rebuilt with new values.
    _hash_code(digest, func.__code__)
    _hash_constant(digest, func.__defaults__)
    for name, value in _referenced(func):
        _hash_value(digest, name, value, seen)


def _dispatchers(func, seen, found) -> None:
    """The jitted functions ``func`` reaches (itself included), callees before callers."""
    if id(func) in seen:
        return
    seen.add(id(func))
    py_func = getattr(func, "py_func", func)
    if not isinstance(py_func, types.FunctionType):
        return
    for _, value in _referenced(py_func):
        if hasattr(value, "py_func") or isinstance(value, types.FunctionType):
            _dispatchers(value, seen, found)
    if hasattr(func, "py_func"):
        found.append(func)


def _ours(path) -> bool:
    path = os.path.realpath(path)
    return any(path.startswith(os.path.realpath(d) + os.sep) for d in _package_dirs())


def refresh_function_caches(functions) -> None:
    """Drop the numba cache of any function reached from ``functions`` whose sources changed.

    numba keys a function's cache on its own file only: a user's cached
    ``step`` that calls a helper in another file keeps the old helper compiled
    in after the helper is edited, in the gymnasium class and in the fused
    loop alike.  So each cached function outside this package (and outside
    installed packages) gets a stamp beside numba's index holding the hash of
    all it reaches (:func:`hash_function`); when the hash differs, its cache is
    emptied (and the function recompiled if this process already compiled it).
    """
    found: list = []
    seen: set = set()
    for func in functions:
        _dispatchers(func, seen, found)
    for dispatcher in found:
        cache = getattr(dispatcher, "_cache", None)
        index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
        source = dispatcher.py_func.__code__.co_filename
        if index is None or not os.path.isfile(source) or _ours(source) or _is_installed(source):
            continue
        digest = hashlib.sha256()
        hash_function(digest, dispatcher.py_func, set())
        stamp = Path(index + ".sources")
        try:
            if stamp.read_text() == digest.hexdigest():
                continue
        except OSError:
            pass
        try:
            cache.flush()
            if dispatcher.overloads:
                dispatcher.recompile()
            tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(digest.hexdigest())
            os.replace(tmp, stamp)
        except OSError:
            # Nowhere to keep a cache: numba cannot have kept a stale one either.
            pass

