"""The fused loop compiled for one environment, never stale.

numba caches a compiled function under its own source file and notices only
changes to that file: a loop that takes an environment's functions as
arguments would either miss the cache in every new process (numba 0.6x
caches first-class functions per process) or, compiled against a module of
the environment's functions, keep the old dynamics after the user edits
them.  So each declared environment (:class:`avgreward.envs.declare.FusedEnv`) gets its
own copy of the kernel template :mod:`avgreward.kernels` for each learner
(:class:`avgreward.learners.FusedLearner`) it runs with, a small module file
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
import os
import re
import sys
import tempfile
import time
import types
from pathlib import Path

from numba.core.caching import NullCache

from avgreward.inlining import inline_call
from avgreward.learners import FusedLearner
from avgreward.envs._numba_cache import hash_function, refresh_function_caches, sources_hash
from avgreward.envs.declare import FusedEnv, check_step_returns

__all__ = ["kernels_for", "fingerprint", "kernel_dir"]

_TEMPLATE = Path(__file__).with_name("kernels.py")
_loaded: dict[tuple, types.ModuleType] = {}


def fingerprint(fused: FusedEnv, learner: FusedLearner | None = None) -> str:
    """The sha256 (hex) that names the loop compiled for ``fused`` and ``learner``.

    See the module docstring.
    """
    digest = hashlib.sha256()
    digest.update(sources_hash().encode())
    digest.update(_TEMPLATE.read_bytes())
    flags = (fused.state_size, fused.obs_size, fused.n_actions, fused.random_reset,
             fused.random_step, fused.episodic)
    digest.update(repr(flags).encode())
    seen: set = set()
    for role in ("reset", "step", "observe"):
        digest.update(role.encode())
        hash_function(digest, getattr(fused, role).py_func, seen)
    if learner is not None:
        digest.update(b"learner td" if learner.td_error else b"learner")
        for kind in (learner.params_type, learner.work_type):
            digest.update(repr((kind.__name__, kind._fields)).encode())
        for function in learner.functions():
            hash_function(digest, function.py_func, seen)
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


def _slug(fused: FusedEnv, learner: FusedLearner) -> str:
    """The file-name stem of a pair's copies: their names, and where and how they are declared."""
    where = hashlib.sha256()
    for function in (fused.reset, fused.step, fused.observe, *learner.functions()):
        where.update(f"{function.py_func.__module__}.{function.py_func.__qualname__};".encode())
    where.update(repr((fused.state_size, fused.obs_size, fused.n_actions, fused.random_reset,
                       fused.random_step, fused.episodic)).encode())
    name = re.sub(r"[^0-9A-Za-z]+", "_", f"{fused.name} {learner.name}").strip("_").lower()
    return f"{name}_{where.hexdigest()[:8]}"


_MARKED = re.compile(r"^(?P<indent>\s*)(?P<head>.*?)(?P<call>\w+)\((?P<args>[^()]*)\)"
                     r"\s*# <(?P<what>unpack|args) (?P<role>\w+)>$")


def _source(learner: FusedLearner) -> tuple[str, dict]:
    """The template with its marked lines written out for ``learner``; and the globals to inject.

    ``x = params  # <unpack params>`` becomes ``p_a, p_b, ... = params`` (the
    fields of ``params_type``), likewise for ``work``; a call marked
    ``# <args ROLE>`` is replaced by the body of the learner's function for
    that role, with the arguments :meth:`FusedLearner.arguments` names
    (:func:`avgreward.inlining.inline_call`).  The template's learn returns
    ``ok, rbar, td``; for a learner whose ``td_error`` is False its learn
    returns ``ok, rbar`` and ``td`` is NaN.
    """
    out, injected = [], {}
    for line in _TEMPLATE.read_text().splitlines():
        unpack = re.match(r"^(\s*)\w+ = (params|work)  # <unpack (params|work)>$", line)
        call = _MARKED.match(line)
        if unpack:
            indent, bundle = unpack.group(1), unpack.group(2)
            kind = learner.params_type if bundle == "params" else learner.work_type
            prefix = "p_" if bundle == "params" else "w_"
            if not kind._fields:
                continue  # nothing to take out
            names = ", ".join(prefix + field for field in kind._fields)
            line = f"{indent}({names},) = {bundle}"
        elif call and call.group("what") == "args":
            role = call.group("role")
            head = call.group("head").strip()
            targets = head[:-1].strip() if head.endswith("=") else None
            no_td = role == "learn" and not learner.td_error
            if no_td:
                # The template's ``ok, rbar, td``: this learn returns (ok, rbar) only.
                targets = targets.rsplit(",", 1)[0].strip()
            function = getattr(learner, role)
            lines, names = inline_call(function, learner.arguments(role), targets, f"_{role}_")
            injected.update(names)
            indent = call.group("indent")
            where = f"{function.py_func.__module__}.{function.py_func.__qualname__}"
            out.append(f"{indent}# {role}: {where}, written in (avgreward.inlining)")
            out.extend(indent + text for text in lines)
            if no_td:
                out.append(f"{indent}td = math.nan")
            continue
        out.append(line)
    return "\n".join(out) + "\n", injected


# Copies of a declaration older than this, other than the current one, are deleted:
# an edited environment's old copies go, while processes running another variant
# of it (a factory's, or an older checkout's) are not pulled from under them.
_KEEP_SECONDS = 24 * 3600


def _write_copy(directory: Path, slug: str, digest: str, source: str) -> Path:
    path = directory / f"{slug}_{digest[:20]}.py"
    text = (f"# avgreward.kernels compiled for one environment and learner; fingerprint "
            f"{digest}\n"
            "# Generated by avgreward.specialize: do not edit (an edit is lost, not used).\n"
            + source)
    try:
        if path.read_text() == text:
            return path  # rewriting would change its time stamp and void numba's cache
    except OSError:
        pass
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    now = time.time()
    for old in [*directory.glob(f"{slug}_*.py"), *(directory / "__pycache__").glob(f"{slug}_*")]:
        if old.name.startswith(path.stem):
            continue
        try:
            if now - old.stat().st_mtime > _KEEP_SECONDS:
                old.unlink()
        except OSError:  # gone already: another process pruned it
            pass
    return path


def kernels_for(fused: FusedEnv, learner: FusedLearner) -> types.ModuleType:
    """The kernel module (a copy of :mod:`avgreward.kernels`) compiled for a pair.

    Loaded once per process, environment and learner; the first call of each
    kernel compiles it or loads it from numba's cache.
    """
    if not isinstance(fused, FusedEnv):
        raise ValueError(f"env: expected an avgreward.envs.declare.FusedEnv, got {fused!r}")
    if not isinstance(learner, FusedLearner):
        raise ValueError(f"learner: expected an avgreward.learners.FusedLearner, got {learner!r}")
    key = (fused, learner)
    module = _loaded.get(key)
    if module is not None:
        return module
    refresh_function_caches((fused.reset, fused.step, fused.observe, *learner.functions()))
    check_step_returns(fused)
    digest = fingerprint(fused, learner)
    source, injected = _source(learner)
    path = _write_copy(kernel_dir(), _slug(fused, learner), digest, source)
    name = f"_avgreward_fused_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # numba's cache finds a compiled function's module by name when it loads it.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError:  # pruned by another process between writing and reading
        path = _write_copy(path.parent, _slug(fused, learner), digest, source)
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
    (module.learner_begin, module.learner_act, module.learner_learn, module.learner_episode_end,
     module.learner_finish) = learner.functions()
    for name, value in injected.items():  # what the written-in learner code reads
        setattr(module, name, value)
    functions = (fused.reset, fused.step, fused.observe, *learner.functions())
    if not all(f.py_func.__module__ in sys.modules for f in functions):
        # A module imported by path and never put in sys.modules: numba's cache would
        # save the copy but fail to find that module again in the next process, so
        # this copy compiles in each process instead.
        for attr in ("reset", "start_features", "run_chunk"):
            getattr(module, attr)._cache = NullCache()
    _loaded[key] = module
    return module
