"""Writing TOML: the small, exact writer an experiment's config file needs.

The standard library reads TOML (:mod:`tomllib`, Python 3.11; ``tomli`` before)
but cannot write it.  This writer covers the shape of JSON data: tables
(dicts with string keys), strings, integers (64-bit, as TOML has them),
floats, bools and arrays of these; an array whose items are all tables is an
array of tables (``[[name]]``), tables inside other arrays are inline.
Floats are written by ``repr`` (``inf``, ``-inf`` and ``nan`` as TOML spells
them), so reading the text back gives the very same numbers.  ``None`` has
no TOML form and is refused, as is anything else.

Internal API (imported by :mod:`avgreward.config_file`); it imports nothing.
"""

from __future__ import annotations

import math
import re

__all__: list[str] = []

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# TOML integers are signed 64-bit.
_INT_RANGE = (-(2**63), 2**63 - 1)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def dumps(data: dict) -> str:
    """``data`` (a dict with string keys) as a TOML document.

    Raises
    ------
    ValueError
        If a value has no TOML form (``None``, an integer beyond 64 bits, a
        key that is not a string, an object of another type); the message
        names the key.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a TOML document is a table (dict), got {type(data).__name__}")
    lines: list[str] = []
    _table(data, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(table: dict, path: tuple, lines: list) -> None:
    """Write a table's key/value pairs, then its sub-tables and arrays of tables."""
    nested = []
    for key, value in table.items():
        where = (*path, _check_key(key, path))
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((where, value))  # TOML: plain keys first, then the tables
        else:
            lines.append(f"{_key(key)} = {_value(value, where)}")
    for where, value in nested:
        header = ".".join(_key(k) for k in where)
        if isinstance(value, dict):
            lines.extend(["", f"[{header}]"])
            _table(value, where, lines)
        else:
            for item in value:
                lines.extend(["", f"[[{header}]]"])
                _table(item, where, lines)


def _check_key(key, path: tuple) -> str:
    if not isinstance(key, str):
        raise ValueError(f"{_name(path) or 'the document'}: key {key!r} is not a string")
    return key


def _name(path: tuple) -> str:
    return ".".join(str(k) for k in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:  # other control characters
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _value(value, path: tuple) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise ValueError(f"{_name(path)}: {value} is beyond TOML's 64-bit integers")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"  # TOML has no NaN payloads or signs to keep
        return repr(value)  # 'inf', '-inf', '1e-05', '0.1': TOML floats, read back exactly
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, (*path, i)) for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        pairs = (f"{_key(_check_key(k, path))} = {_value(v, (*path, k))}"
                 for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if value is None:
        raise ValueError(f"{_name(path)}: None has no TOML form (leave the key out)")
    raise ValueError(f"{_name(path)}: cannot write a {type(value).__name__} in TOML")
