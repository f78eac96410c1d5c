"""The package's import graph: no circle, and no module borrows another's private names.

The graph is built with :mod:`ast` from the sources of ``avgreward/``, never by
importing them, so it sees every import: module-level and inside functions
(``if TYPE_CHECKING:`` blocks are skipped, they never run).  The rules:

- ``import a.b`` is an edge to ``a.b`` (``a/b/__init__.py`` if it is a package);
- ``from pkg import name`` is an edge to the module ``pkg.name`` if there is
  one (and then not to ``pkg``'s ``__init__``), else to ``pkg``;
- relative imports are resolved against the importing module;
- ``importlib.import_module`` calls are no edges (``avgreward/__init__.py``'s
  lazy ``__getattr__`` imports that way, and the package ``__init__`` imports
  nothing of the package at module level).

A private name is one with a leading underscore that is not a dunder.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "avgreward"
ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / PACKAGE

# Allowed by rule, not listed (see private_imports):
# - public names of private modules (``avgreward._pcg64``, ``avgreward._vec4``,
#   ``avgreward.envs._common``): the module is private, its names are its API;
# - a private module imported by a module of its own package
#   (``from avgreward.envs import _draw`` in the environment modules).
# Listed exceptions, (importing module, imported module, name): why.  None are
# needed today; keep it that way: a name another module needs is public (no
# underscore, out of ``__all__`` if it is internal API) or lives where it is used.
ALLOWED_PRIVATE: dict[tuple[str, str, str], str] = {}


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> source file, for every ``.py`` file of the package."""
    modules = {}
    for file in sorted((root / PACKAGE).rglob("*.py")):
        if "__pycache__" in file.parts:
            continue
        parts = file.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node that can run (``if TYPE_CHECKING:`` bodies skipped)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _base(module: str, file: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if file.name != "__init__.py":
        parts = parts[:-1]  # a module's package
    parts = parts[: len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def _own(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, by the rules of this file's docstring."""
    modules = _modules() if modules is None else modules
    graph = {m: set() for m in modules}
    for module, file in modules.items():
        for node in _imports(ast.parse(file.read_text(), str(file))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(module, file, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if not _own(target):
                    continue
                assert target in modules, f"{file}: imports {target}, which is no module"
                if target != module:
                    graph[module].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, successors = work[-1]
            for w in successors:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_module(module: str) -> bool:
    """``avgreward._pcg64``, ``avgreward.envs._draw``: a module private as a whole."""
    return any(_private(part) for part in module.split("."))


def private_imports(modules: dict[str, Path] | None = None) -> list[tuple[str, str, str]]:
    """``(importing module, module, private name)`` for every use of another module's
    private name: ``from avgreward.X import _name`` and ``avgreward.X._name`` /
    ``alias._name`` where the module was bound by an import.

    Names of private modules (``avgreward._pcg64``) are not counted, and
    neither is a private submodule imported by a module of its own package.
    """
    modules = _modules() if modules is None else modules
    found = []
    for module, file in modules.items():
        tree = ast.parse(file.read_text(), str(file))
        bound = {}  # local name -> module, for ``module._name`` attribute uses
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _own(alias.name):
                        if alias.asname:
                            bound[alias.asname] = alias.name
                        else:
                            bound[alias.name.partition(".")[0]] = alias.name.partition(".")[0]
                continue
            base = _base(module, file, node)
            if not _own(base):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    bound[alias.asname or alias.name] = sub
                    package = sub.rpartition(".")[0]
                    if (_private(alias.name) and not module.startswith(package + ".")
                            and module != package):
                        found.append((module, base, alias.name))
                elif _private(alias.name) and base != module and not _private_module(base):
                    found.append((module, base, alias.name))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if not (isinstance(value, ast.Name) and value.id in bound):
                continue
            target = ".".join([bound[value.id], *reversed(chain)])
            if target in modules and target != module and not _private_module(target):
                found.append((module, target, node.attr))
    return sorted(set(found))


def test_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles in the package (strongly connected components):\n" + \
        "\n".join(" <-> ".join(component) for component in found)


def test_no_private_imports_across_modules():
    found = [hit for hit in private_imports() if hit not in ALLOWED_PRIVATE]
    assert not found, (f"{len(found)} private names used outside their module "
                       "(make them public, or move them where they are used):\n" +
                       "\n".join(f"{m}: {t}.{n}" for m, t, n in found))


def test_allowed_private_imports_are_still_used():
    stale = set(ALLOWED_PRIVATE) - set(private_imports())
    assert not stale, f"drop these from ALLOWED_PRIVATE, they are gone: {sorted(stale)}"


def test_the_graph_rules():
    """The builder's rules on a made-up package."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = {
            "__init__.py": "import importlib\n",
            "a.py": "from avgreward import b\nfrom avgreward.pkg import name\n",
            "b.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from avgreward import a\n"
                     "def f():\n    from .pkg import sub\n    return sub._x\n"),
            "pkg/__init__.py": "name = 1\n",
            "pkg/sub.py": "import avgreward\n",
            "c.py": "from avgreward.a import _hidden\nfrom avgreward.pkg import _sub_private\n",
            "pkg/_sub_private.py": "from avgreward.pkg import _sub_private as again\n",
        }
        for name, text in files.items():
            (root / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
            (root / PACKAGE / name).write_text(text)
        modules = _modules(root)
        graph = import_graph(modules)
        assert graph == {"avgreward": set(), "avgreward.a": {"avgreward.b", "avgreward.pkg"},
                         "avgreward.b": {"avgreward.pkg.sub"},
                         "avgreward.c": {"avgreward.a", "avgreward.pkg._sub_private"},
                         "avgreward.pkg": set(), "avgreward.pkg._sub_private": set(),
                         "avgreward.pkg.sub": {"avgreward"}}
        assert circles(graph) == []
        graph["avgreward.pkg.sub"].add("avgreward.a")
        assert circles(graph) == [["avgreward.a", "avgreward.b", "avgreward.pkg.sub"]]
        # A private module is private to its package: c (outside avgreward.pkg) may not
        # import it, its own package's modules may.
        assert private_imports(modules) == [("avgreward.b", "avgreward.pkg.sub", "_x"),
                                            ("avgreward.c", "avgreward.a", "_hidden"),
                                            ("avgreward.c", "avgreward.pkg", "_sub_private")]
