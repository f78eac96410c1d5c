"""A learner's per-step functions written into the fused loop's source, not called from it.

Why: numba binds the arrays a jitted function receives to variables of its
own, with a reference count taken on entry and given back on every exit.
LLVM inlines the call, but numba's pruning of those counts fails when the
function branches around a loop (an early ``return`` on a non-finite TD
error, a traced and an untraced update): the counts then run on every step,
as atomic operations, and the loop measured five times slower.  Written into
the loop's own body, the same code uses the loop's variables directly, as the
hand-fused kernels did, and costs nothing.

:func:`inline_call` turns ``targets = f(a, b)`` into ``f``'s body with its
parameters replaced by the given expressions (plain names of the loop), its
local variables renamed apart, the globals it reads renamed to names the
caller injects into the generated module, and its ``return`` statements
turned into assignments to ``targets`` (an ``if`` whose body returns has the
rest of the function as its ``else``).  It accepts the Python that numba
compiles in such functions: statements, ``if``/``for``/``while``, with
``return`` only at the top or inside ``if`` (not in a loop, ``with``, ``try``
or ``match``), no nested functions, comprehensions or ``global``; and refuses
a function whose file was edited after it was imported.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dis
import inspect
import textwrap
import types

__all__ = ["inline_call"]


class _Refuse(ValueError):
    pass


def _function_def(func) -> ast.FunctionDef:
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as error:
        raise _Refuse(f"{func.__qualname__}: its source is not available ({error})") from None
    tree = ast.parse(source)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise _Refuse(f"{func.__qualname__}: expected a plain function definition")
    return node


def _assigned_names(body) -> set[str]:
    names = set()
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
                               ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
                               ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await)):
            raise _Refuse(f"{type(node).__name__} is not supported in an inlined function")
    return names


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        new = self.mapping.get(node.id)
        if new is None:
            return node
        return ast.copy_location(ast.Name(id=new, ctx=node.ctx), node)


def _ends_in_return(body) -> bool:
    return bool(body) and isinstance(body[-1], ast.Return)


def _contains_return(body) -> bool:
    return any(isinstance(node, ast.Return)
               for node in ast.walk(ast.Module(body=body, type_ignores=[])))


def _returns_to_assignments(body, targets, flag):
    """The statements of ``body`` with each ``return`` an assignment to ``targets``.

    An ``if`` whose branches either end in a ``return`` or contain none takes
    the rest of the function into the branches that go on (the common guard
    ``if not finite: return ...`` becomes ``if ...: ... else: <rest>``);
    otherwise a return also sets ``flag`` and the rest runs under ``if not
    flag``, so that the code grows linearly, never by copies.  A ``return``
    inside anything but ``if`` is refused.
    """
    out = []
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.Return):
            if stmt.value is not None and targets is not None:
                out.append(ast.Assign(targets=[targets], value=stmt.value))
            out.append(ast.Assign(targets=[ast.Name(id=flag, ctx=ast.Store())],
                                  value=ast.Constant(True)))
            return out  # anything after a return is unreachable
        if isinstance(stmt, ast.If) and _contains_return([stmt]):
            rest = body[i + 1:]
            clean = all(_ends_in_return(b) or not _contains_return(b)
                        for b in (stmt.body, stmt.orelse))
            if clean:
                then = stmt.body if _ends_in_return(stmt.body) else stmt.body + rest
                other = stmt.orelse if _ends_in_return(stmt.orelse) else stmt.orelse + rest
                out.append(ast.If(test=stmt.test,
                                  body=_returns_to_assignments(then, targets, flag) or [ast.Pass()],
                                  orelse=_returns_to_assignments(other, targets, flag)))
                return out
            out.append(ast.If(test=stmt.test,
                              body=_returns_to_assignments(stmt.body, targets, flag) or [ast.Pass()],
                              orelse=_returns_to_assignments(stmt.orelse, targets, flag)))
            after = _returns_to_assignments(rest, targets, flag)
            if after:
                out.append(ast.If(test=ast.UnaryOp(op=ast.Not(), operand=ast.Name(id=flag,
                                                                                  ctx=ast.Load())),
                                  body=after, orelse=[]))
            return out
        if _contains_return([stmt]):
            raise _Refuse(f"a return inside {type(stmt).__name__.lower()} cannot be inlined "
                          "(only inside if)")
        out.append(stmt)
    return out


def _same_code(node, py_func) -> bool:
    """Whether the source read from disk compiles to the function in memory.

    ``inspect.getsource`` reads the file now: an edit since the import would be
    inlined while the globals come from the old module.
    """
    bare = copy.copy(node)
    bare.decorator_list = []
    module = ast.fix_missing_locations(ast.Module(body=[bare], type_ignores=[]))
    try:
        compiled = compile(module, "<inline check>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    mine = py_func.__code__

    def plain(consts):
        return [c for c in consts if not isinstance(c, types.CodeType)]

    if plain(code.co_consts) != plain(mine.co_consts) or code.co_varnames != mine.co_varnames:
        return False
    # A closure's free variables compile to other instructions on their own.
    return bool(mine.co_freevars) or _instructions(code) == _instructions(mine)


# The compiler picks these by context (an attribute of a module imported in the
# same file is loaded with LOAD_ATTR, elsewhere with LOAD_METHOD): not a difference.
_SAME_OP = {"LOAD_METHOD": "LOAD_ATTR"}
_NO_OP = {"NOP", "CACHE", "RESUME", "PUSH_NULL", "PRECALL", "EXTENDED_ARG"}


def _instructions(code):
    return [(_SAME_OP.get(i.opname, i.opname), repr(i.argval) if not i.opname.startswith(
             ("JUMP", "POP_JUMP", "FOR_ITER")) else None)
            for i in dis.get_instructions(code) if i.opname not in _NO_OP]


def inline_call(func, arguments, targets, prefix):
    """Source lines that do ``targets = func(*arguments)`` inline; and the globals they need.

    Parameters
    ----------
    func : numba dispatcher or function
    arguments : list of str
        A plain name (a variable of the caller) for each parameter, in order.
    targets : str or None
        What the call's result is assigned to (``"ok, rbar"``), or None.
    prefix : str
        Prepended to the names of ``func``'s locals and globals, to keep them apart.

    Returns
    -------
    (list of str, dict)
        The lines (unindented) and the globals to inject: ``{new name: value}``.

    Raises
    ------
    ValueError
        If ``func`` uses something that cannot be inlined (named in the message).
    """
    py_func = getattr(func, "py_func", func)
    try:
        node = _function_def(py_func)
        params = [a.arg for a in node.args.args]
        if (node.args.vararg or node.args.kwarg or node.args.kwonlyargs
                or node.args.posonlyargs or node.args.defaults):
            raise _Refuse("only plain positional parameters (no defaults, *args, **kw)")
        if len(params) != len(arguments):
            raise _Refuse(f"{len(params)} parameters but {len(arguments)} arguments")
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # the docstring
        assigned = _assigned_names(body)
        if not _same_code(node, py_func):
            raise _Refuse("its source file changed since it was imported (the source would "
                          "not be the code that runs): restart Python")
    except _Refuse as error:
        raise ValueError(f"{py_func.__module__}.{py_func.__qualname__}: {error}") from None
    mapping, injected, preamble = {}, {}, []
    for param, argument in zip(params, arguments):
        if param in assigned:
            # Rebinding a parameter must not rebind the caller's variable.
            local = f"{prefix}L_{param}"
            preamble.append(f"{local} = {argument}")
            mapping[param] = local
        else:
            mapping[param] = argument
    closure = dict(zip(py_func.__code__.co_freevars,
                       (c.cell_contents for c in py_func.__closure__ or ())))
    for name in {n.id for n in ast.walk(ast.Module(body=body, type_ignores=[]))
                 if isinstance(n, ast.Name)}:
        if name in mapping:
            continue
        if name in assigned:
            mapping[name] = f"{prefix}L_{name}"
        elif name in closure or name in py_func.__globals__:
            new = f"{prefix}G_{name}"
            mapping[name] = new
            injected[new] = closure[name] if name in closure else py_func.__globals__[name]
        elif not hasattr(builtins, name):
            raise ValueError(f"{py_func.__module__}.{py_func.__qualname__}: the name {name!r} "
                             "is not defined")
    renamed = [_Rename(mapping).visit(stmt) for stmt in body]
    target_node = ast.parse(targets, mode="eval").body if targets else None
    if target_node is not None:
        target_node = _as_store(target_node)
    flag = f"{prefix}F_returned"
    try:
        statements = _returns_to_assignments(renamed, target_node, flag)
    except _Refuse as error:
        raise ValueError(f"{py_func.__module__}.{py_func.__qualname__}: {error}") from None
    module = ast.fix_missing_locations(ast.Module(body=statements, type_ignores=[]))
    lines = preamble + [f"{flag} = False"] + ast.unparse(module).splitlines()
    return lines or ["pass"], injected


def _as_store(node):
    if isinstance(node, ast.Tuple):
        return ast.Tuple(elts=[_as_store(e) for e in node.elts], ctx=ast.Store())
    if isinstance(node, ast.Name):
        return ast.Name(id=node.id, ctx=ast.Store())
    raise ValueError(f"targets must be names, got {ast.unparse(node)!r}")
