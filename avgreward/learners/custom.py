"""A user's own learner through the package's one door: :class:`Custom`.

``Custom(learner, params)`` wraps a :class:`~avgreward.learners.FusedLearner`
and its initial bundle so that it goes where the built-in learners' settings
go: :func:`avgreward.train` (each run starts from a copy of ``params``),
``train(..., init=...)``, :meth:`Result.save <avgreward.result.Result.save>`
and :func:`avgreward.load_result`, and
:func:`avgreward.experiment.run_experiment`.

Records name the learner by ``module:attr`` (found by looking the learner up
in the module that defines its functions, or given as ``ref=``), and hold its
initial bundle as JSON: scalars as they are, arrays by dtype, shape and
values (a constant array by its one value).  Reading a record imports
nothing: a :class:`Custom` read from disk holds the ``module:attr`` string
and the bundle as a dict until it is run, and running it (the user passing
it to ``train`` or ``run_experiment``) imports the module and checks that
the name is a ``FusedLearner`` whose bundle has the recorded fields.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Mapping

import numpy as np

from avgreward.learners.fused import FusedLearner
from avgreward.learners.driver import Built, Driver

__all__ = ["Custom", "CUSTOM_DRIVER"]

_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _ref_of(learner) -> str | None:
    """``module:attr`` under which ``learner`` is defined at module level, or None."""
    names = []
    for candidate in (learner.learn, learner.act, learner.begin):
        module = getattr(getattr(candidate, "py_func", None), "__module__", None)
        if module and module not in names:
            names.append(module)
    names.append(getattr(learner.params_type, "__module__", None))
    for name in names:
        module = sys.modules.get(name) if name else None
        for attr, value in vars(module).items() if module is not None else ():
            if value is learner and not attr.startswith("__"):
                return f"{name}:{attr}"
    return None


def _encode(name, value):
    """One field of the bundle as JSON data (exact: floats are written by repr)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValueError(f"params.{name}: an array of {value.dtype} cannot be recorded "
                             "(numbers and booleans only)")
        flat = value.ravel()
        entry = {"dtype": value.dtype.str, "shape": list(value.shape)}
        if flat.size and bool((flat == flat[0]).all()) and not np.isnan(flat[0]):
            entry["fill"] = flat[0].item()
        else:
            entry["data"] = flat.tolist()
        return entry
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float)):
        return value
    raise ValueError(f"params.{name}: {value!r} ({type(value).__name__}) cannot be recorded; "
                     "a bundle's fields are arrays of numbers, numbers or booleans")


def _decode(name, value):
    if isinstance(value, Mapping):
        try:
            dtype, shape = np.dtype(value["dtype"]), tuple(int(n) for n in value["shape"])
            if "fill" in value:
                return np.full(shape, value["fill"], dtype=dtype)
            return np.asarray(value["data"], dtype=dtype).reshape(shape)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"params.{name}: not a recorded array ({error})") from None
    if isinstance(value, (bool, int, float)):
        return value
    raise ValueError(f"params.{name}: {value!r} is not a recorded value")


def _copy(params):
    return type(params)(*(v.copy() if isinstance(v, np.ndarray) else v for v in params))


class Custom:
    """A learner of your own (a :class:`~avgreward.learners.FusedLearner`) as agent settings.

    Parameters
    ----------
    learner : FusedLearner or str
        The learner, or its ``"module:attr"`` (imported when it is run).
    params : learner.params_type or mapping
        Its bundle at the start of a run (copied: every run starts from it);
        a mapping of field to value when ``learner`` is a string.
    ref : str, optional
        ``"module:attr"`` under which the learner can be imported, for
        records (saved results, experiments).  By default the learner is
        looked up in the module that defines its functions; a learner defined
        in the script being run (``__main__``) has no name another process
        can import, so it can be trained but not recorded.

    Raises
    ------
    ValueError
        If ``learner`` is neither, ``params`` is not its ``params_type``, or
        ``ref`` is not of the form ``module:attr``.

    Examples
    --------
    >>> import numpy as np, avgreward
    >>> from avgreward.learners import Custom
    >>> from avgreward.learners.actor_critic import SOFTMAX, SoftmaxParams
    >>> n = avgreward.default_features("avgreward/LoopMDP-v0").n_features
    >>> params = SoftmaxParams(np.zeros(n), np.zeros((n, 2)), np.zeros(0), np.zeros((0, 2)),
    ...                        np.zeros(2), np.zeros(2), 0.1, 0.1, 0.01, 1.0, 0.0, 0.0, 0.0)
    >>> result = avgreward.train("avgreward/LoopMDP-v0", Custom(SOFTMAX, params), 1_000, seed=0)
    >>> sorted(result.weights)
    ['coef', 'probs', 'theta', 'w', 'z_theta', 'z_w']
    """

    kind = "custom"
    __slots__ = ("_learner", "_params", "_ref")

    def __init__(self, learner, params, ref: str | None = None):
        if ref is not None and not (isinstance(ref, str) and _REF.fullmatch(ref)):
            raise ValueError(f"ref must be 'module:attr' (e.g. 'my_learners:TD0'), got {ref!r}")
        if isinstance(learner, FusedLearner):
            if not isinstance(params, learner.params_type):
                raise ValueError(f"params must be a {learner.params_type.__name__} (the "
                                 f"learner's params_type), got {type(params).__name__}")
            params = _copy(params)
        elif isinstance(learner, str):
            if not _REF.fullmatch(learner):
                raise ValueError(f"learner must be 'module:attr' (e.g. 'my_learners:TD0'), "
                                 f"got {learner!r}")
            if not isinstance(params, Mapping):
                raise ValueError(f"params: with a learner named by a string, give the bundle "
                                 f"as a mapping of field to value, got {type(params).__name__}")
            params = {str(k): v for k, v in params.items()}
            ref = learner if ref is None else ref
        else:
            raise ValueError(f"learner must be an avgreward.learners.FusedLearner or "
                             f"'module:attr', got {learner!r}")
        object.__setattr__(self, "_learner", learner)
        object.__setattr__(self, "_params", params)
        object.__setattr__(self, "_ref", ref)

    def __setattr__(self, name, value):
        raise AttributeError("Custom settings are frozen")

    @property
    def learner(self):
        """The :class:`FusedLearner`, or its ``module:attr`` if not imported yet."""
        return self._learner

    @property
    def params(self):
        """The initial bundle (a mapping of field to value if not imported yet)."""
        return self._params

    @property
    def ref(self) -> str | None:
        """``module:attr`` naming the learner, or None if it has no importable name."""
        if self._ref is not None:
            return self._ref
        ref = _ref_of(self._learner)
        return None if ref is None or ref.startswith("__main__:") else ref

    @property
    def resolved(self) -> bool:
        """Whether the learner is the object itself (imported)."""
        return isinstance(self._learner, FusedLearner)

    def resolve(self) -> Custom:
        """This learner with its module imported and its bundle built (running it does this).

        Raises
        ------
        ValueError
            If ``module:attr`` does not import, is not a FusedLearner, or the
            recorded bundle's fields are not those of its ``params_type``.
        """
        if self.resolved:
            return self
        module, attr = self._learner.split(":")
        try:
            learner = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"learner {self._learner!r} cannot be imported: {error}") from None
        if not isinstance(learner, FusedLearner):
            raise ValueError(f"learner {self._learner!r} is a {type(learner).__name__}, not an "
                             "avgreward.learners.FusedLearner")
        fields = learner.params_type._fields
        if set(fields) != set(self._params):
            raise ValueError(
                f"learner {self._learner!r}: the recorded bundle has the fields "
                f"{sorted(self._params)}, its {learner.params_type.__name__} "
                f"{sorted(fields)}")
        params = learner.params_type(*(_decode(f, self._params[f]) for f in fields))
        return Custom(learner, params, ref=self._ref)

    def new_params(self):
        """A fresh copy of the initial bundle, for one run."""
        return _copy(self.resolve()._params)

    def to_dict(self, complete: bool = False) -> dict:
        """``{"kind": "custom", "learner": "module:attr", "params": {...}}``, JSON-ready.

        Raises
        ------
        ValueError
            If the learner has no importable name (see ``ref``) or a field
            of the bundle is not numbers.
        """
        ref = self.ref
        if ref is None:
            raise ValueError(
                f"agent: the learner {self._learner.name!r} has no importable name, so a "
                "record cannot name it: define it at the top level of a module (not the "
                "script being run) or give Custom(..., ref='module:attr')")
        if self.resolved:
            params = {f: _encode(f, v) for f, v in self._params._asdict().items()}
        else:
            params = {f: (v if isinstance(v, Mapping) else _encode(f, v))
                      for f, v in self._params.items()}
        return {"kind": self.kind, "learner": ref, "params": params}

    @classmethod
    def from_dict(cls, d: Mapping) -> Custom:
        """The settings of :meth:`to_dict`, not imported (see :meth:`resolve`)."""
        d = dict(d)
        unknown = set(d) - {"learner", "params"}
        if unknown or "learner" not in d or not isinstance(d.get("params"), Mapping):
            raise ValueError(f"a custom agent's record has 'learner' and 'params', got "
                             f"{sorted(d)}")
        return cls(d["learner"], d["params"])

    def _key(self):
        ref = self.ref
        learner = ref if ref is not None else ("object", id(self._learner))
        try:
            params = json.dumps(self.to_dict()["params"] if ref is not None else
                                {f: _encode(f, v) for f, v in self._params._asdict().items()},
                                sort_keys=True)
        except ValueError:
            params = ("object", id(self))
        return learner, params

    def __eq__(self, other):
        return isinstance(other, Custom) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        name = self._learner.name if self.resolved else self._learner
        shown = self._ref is not None and self._ref != self._learner
        return f"Custom({name!r}{', ref=' + repr(self._ref) if shown else ''})"


def _build(agent, task):
    resolved = agent.resolve()
    return Built(resolved.learner, resolved.new_params(),
                 np.int64 if task.fused.n_actions else np.float64)


def custom_weights(agent, params):
    """``Result.weights``: every array of the bundle, by field name."""
    return {name: value for name, value in params._asdict().items()
            if isinstance(value, np.ndarray)}


# Which actions it takes is the learner's own business: nothing to check here.
CUSTOM_DRIVER = Driver(Custom, _build, custom_weights, continuous=lambda agent: None)
