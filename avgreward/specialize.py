"""The fused loop compiled for one environment, never stale.

numba caches a compiled function under its own source file and notices only
changes to that file: a loop that takes an environment's functions as
arguments would either miss the cache in every new process (numba 0.6x
caches first-class functions per process) or, compiled against a module of
the environment's functions, keep the old dynamics after the user edits
them.  So each declared environment (:class:`envs.declare.FusedEnv`) gets its
own copy of the kernel template :mod:`avgreward.kernels`, a small module file
whose name holds a fingerprint of

* every source file the environment's jitted functions come from, followed
  through the jitted functions they call (in any file), and the values of the
  plain constants they read (numbers, tuples, arrays);
* its declared flags and sizes;
* this package's own sources (the template and the helpers compiled into it).

numba caches the copy's kernels across processes like any other module;
editing the environment changes the fingerprint, so the next run compiles a
new copy (and the old one is deleted).

The copies live in ``avgreward/__pycache__/fused`` when the package
directory is writable, else in ``$AVGREWARD_CACHE_DIR`` (which takes
precedence when set) or ``~/.cache/avgreward/fused``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

from envs._numba_cache import sources_hash
from envs.declare import FusedEnv

__all__ = ["kernels_for", "fingerprint", "kernel_dir"]

_TEMPLATE = Path(__file__).with_name("kernels.py")
_loaded: dict[tuple, types.ModuleType] = {}


def _code_names(code) -> set[str]:
    """Global names a code object (and the code nested in it) may read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _hash_value(digest, name, value, seen) -> None:
    """Add what ``value`` (a global or closure variable named ``name``) contributes."""
    if hasattr(value, "py_func"):  # a jitted function: follow it
        _hash_function(digest, value.py_func, seen)
    elif isinstance(value, types.FunctionType):
        _hash_function(digest, value, seen)
    elif isinstance(value, types.ModuleType):
        path = getattr(value, "__file__", None)
        # Attributes read from a module of the user's (``params.G``) live in its file.
        if path and not _is_installed(path):
            _hash_file(digest, path, seen)
    elif isinstance(value, np.ndarray):
        digest.update(f"{name}={value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (bool, int, float, complex, str, bytes, tuple, type(None))):
        digest.update(f"{name}={value!r}".encode())


def _is_installed(path) -> bool:
    # numpy, numba, math... cannot change under a run; their files are not ours to hash.
    path = os.path.realpath(path)
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return any(path.startswith(p + os.sep) for p in prefixes)


def _hash_file(digest, path, seen) -> None:
    if path in seen:
        return
    seen.add(path)
    digest.update(path.encode())
    try:
        digest.update(Path(path).read_bytes())
    except OSError:
        digest.update(b"<unreadable>")


def _hash_function(digest, func, seen) -> None:
    if func in seen:
        return
    seen.add(func)
    digest.update(f"{func.__module__}.{func.__qualname__}".encode())
    path = inspect.getsourcefile(func)
    if path and os.path.isfile(path):
        _hash_file(digest, path, seen)
    # Always the code itself too: a function typed into a notebook has no file,
    # and the file alone would not see a function rebuilt with new values.
    digest.update(func.__code__.co_code)
    digest.update(repr(func.__code__.co_consts).encode())
    for name in sorted(_code_names(func.__code__)):
        if name in func.__globals__:
            _hash_value(digest, name, func.__globals__[name], seen)
    for name, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
        try:
            _hash_value(digest, name, cell.cell_contents, seen)
        except ValueError:  # an empty cell
            pass


def fingerprint(fused: FusedEnv) -> str:
    """The sha256 (hex) that names ``fused``'s compiled loop: see the module docstring."""
    digest = hashlib.sha256()
    digest.update(sources_hash().encode())
    digest.update(_TEMPLATE.read_bytes())
    flags = (fused.state_size, fused.obs_size, fused.n_actions, fused.random_reset,
             fused.random_step, fused.episodic)
    digest.update(repr(flags).encode())
    seen: set = set()
    for role in ("reset", "step", "observe"):
        digest.update(role.encode())
        _hash_function(digest, getattr(fused, role).py_func, seen)
    return digest.hexdigest()


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def kernel_dir() -> Path:
    """Where the compiled copies live (see the module docstring); created if needed."""
    candidates = []
    if os.environ.get("AVGREWARD_CACHE_DIR"):
        candidates.append(Path(os.environ["AVGREWARD_CACHE_DIR"]) / "fused")
    candidates.append(Path(__file__).parent / "__pycache__" / "fused")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates.append(Path(xdg) / "avgreward" / "fused")
    for path in candidates:
        if _writable_dir(path):
            return path
    # Nowhere to keep a cache: compile in a directory of this process's own.
    return Path(tempfile.mkdtemp(prefix="avgreward-fused-"))


def _slug(fused: FusedEnv) -> str:
    """The file-name stem of ``fused``'s copies: its name and where its step is defined."""
    step = fused.step.py_func
    where = hashlib.sha256(f"{step.__module__}.{step.__qualname__}".encode()).hexdigest()[:8]
    name = re.sub(r"[^0-9A-Za-z]+", "_", fused.name).strip("_").lower() or "env"
    return f"{name}_{where}"


def _write_copy(directory: Path, slug: str, digest: str) -> Path:
    path = directory / f"{slug}_{digest[:20]}.py"
    text = (f"# avgreward.kernels compiled for one environment; fingerprint {digest}\n"
            "# Generated by avgreward.specialize: do not edit (an edit is lost, not used).\n"
            + _TEMPLATE.read_text())
    if path.is_file() and path.read_text() == text:
        return path  # rewriting would change its time stamp and void numba's cache
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    # The environment's older copies (and their numba caches) can never be used again.
    for old in directory.glob(f"{slug}_*.py"):
        if old != path:
            old.unlink(missing_ok=True)
    for old in (directory / "__pycache__").glob(f"{slug}_*"):
        if not old.name.startswith(path.stem):
            old.unlink(missing_ok=True)
    return path


def kernels_for(fused: FusedEnv) -> types.ModuleType:
    """The kernel module (a copy of :mod:`avgreward.kernels`) compiled for ``fused``.

    Loaded once per process and declaration; the first call of each kernel
    compiles it or loads it from numba's cache.
    """
    if not isinstance(fused, FusedEnv):
        raise ValueError(f"env: expected an envs.declare.FusedEnv, got {fused!r}")
    key = fused
    module = _loaded.get(key)
    if module is not None:
        return module
    digest = fingerprint(fused)
    path = _write_copy(kernel_dir(), _slug(fused), digest)
    name = f"_avgreward_fused_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # numba's cache finds a compiled function's module by name when it loads it.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # The placeholders, before any kernel of the copy is compiled (numba reads
    # globals when it compiles and freezes the flags as constants).
    module.env_reset = fused.reset
    module.env_step = fused.step
    module.env_observe = fused.observe
    module.env_transition = fused.step if fused.episodic else module.continuing_transition
    module.RANDOM_RESET = fused.random_reset
    module.RANDOM_STEP = fused.random_step
    module.EPISODIC = fused.episodic
    _loaded[key] = module
    return module
