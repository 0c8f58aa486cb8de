"""Python values a notebook hands to ``Workbench.set``, turned into what a TOML spec can hold.

NumPy scalars and arrays are their Python values (``np.array([32, 16])`` is ``[32, 16]``,
``np.float32(0.1)`` is ``0.1``), tuples are lists; anything a TOML file cannot say — a set (no
order), a key that is not text, a list that contains itself, an object — is a
:class:`aebench.SpecError` naming the field, as a bad spec file is.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from aebench.errors import SpecError

#: deeper than any spec nests: a value this deep is a mistake (or a structure that contains itself)
MAX_DEPTH = 32
_PLAIN = (bool, int, float, str, _dt.datetime, _dt.date, _dt.time)


def toml_value(value: Any, field: str) -> Any:
    """``value`` as plain TOML data (lists, dicts with text keys, numbers, text, booleans, dates);
    ``None`` is left as it is, for the spec's own validation to judge."""
    return None if value is None else _convert(value, field, 0, set())


def _convert(value: Any, field: str, depth: int, seen: set[int]) -> Any:
    import numpy as np

    if depth > MAX_DEPTH:
        raise SpecError(f"{field}: nested more than {MAX_DEPTH} levels deep; a spec value is never that deep.")
    if isinstance(value, np.ndarray):
        value = value.tolist()  # numbers become Python numbers, at every depth
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _PLAIN):
        return type(value)(value) if type(value) in (bool, int, float, str) else value  # no subclasses (np.str_)
    if isinstance(value, (list, tuple, Mapping)):
        if id(value) in seen:
            raise SpecError(f"{field}: the value contains itself; give plain lists and tables.")
        seen = seen | {id(value)}
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                if isinstance(key, np.str_):
                    key = str(key)
                if not isinstance(key, str):
                    raise SpecError(f"{field}: the key {key!r} is {type(key).__name__}; keys of a table are text.")
                out[key] = _convert(item, f"{field}.{key}", depth + 1, seen)
            return out
        return [_convert(item, f"{field}[{k}]", depth + 1, seen) for k, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        raise SpecError(f"{field}: a set has no order; give a list, e.g. {sorted(value, key=repr)!r:.80}.")
    raise SpecError(
        f"{field}: {type(value).__name__} {value!r:.60} is not a spec value (numbers, text, booleans, lists and "
        "tables are)."
    )
