"""Argument checks shared by the library: bad input gets an error naming the argument.

Every public function of :mod:`accelbook` checks its arguments with these helpers, so that the
rules are the same everywhere:

* ``bool``/``np.bool_`` and ``str`` are never numbers; numpy scalars (``np.int64``, ``np.float32``)
  are numbers like the Python ones.
* an array (or list) where a scalar is expected is rejected; functions that take arrays say so
  (``allow_array=True``) and then require a non-empty numeric array.
* integers above :data:`MAX_INT` (2**53, the largest a float holds exactly) are rejected, so that
  later float arithmetic cannot overflow or round a count.
* a result that overflows to inf is a ``ValueError`` naming the inputs (:func:`finite_result`).
* every message names the argument, its value (``repr``, shortened) and what is allowed.

Wrong values raise ``ValueError``; a wrong kind of object (an axes, a record, a callable)
raises ``TypeError`` (:func:`instance`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable

import numpy as np

MAX_INT = 2 ** 53
"""The largest integer the checks accept by default: every integer up to it is exact as a float."""

_SHOW = 80


def show(value: Any) -> str:
    """``repr(value)``, shortened to about 80 characters for error messages."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOW else text[:_SHOW - 3] + "..."


def is_bool(value: Any) -> bool:
    """True for ``bool`` and ``np.bool_`` (which are not numbers here)."""
    return isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for a real scalar number: Python or numpy int/float, not bool, str or an array."""
    if is_bool(value) or isinstance(value, (str, bytes)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "iuf"
    return isinstance(value, (numbers.Real, np.integer, np.floating))


def _bounds(positive: bool, nonnegative: bool, minimum, maximum) -> str:
    parts = []
    if positive:
        parts.append("> 0")
    elif nonnegative:
        parts.append(">= 0")
    if minimum is not None:
        parts.append(f">= {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    return " and ".join(parts)


def real(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False,
         finite: bool = True, minimum: float | None = None, maximum: float | None = None,
         allow_array: bool = False):
    """Check a real number (or, with ``allow_array``, a non-empty array of them) and return it.

    Returns a ``float`` for a scalar; with ``allow_array=True`` returns a float ``np.ndarray``
    (0-d for a scalar). Rejects bools, strings, None, complex, NaN, inf (unless
    ``finite=False``; NaN is always rejected), integers above :data:`MAX_INT`, values that are
    not > 0 (``positive``) or >= 0 (``nonnegative``) or outside ``minimum``/``maximum``.
    """
    bounds = _bounds(positive, nonnegative, minimum, maximum)
    what = ("a finite real number" if finite else "a real number") + (f" {bounds}" if bounds else "")
    if allow_array and not is_real(value):
        if is_bool(value) or isinstance(value, (str, bytes)) or value is None:
            raise ValueError(f"{name}={show(value)} must be {what} or an array of them")
        try:
            arr = np.asarray(value)
        except Exception:
            raise ValueError(f"{name}={show(value)} must be {what} or an array of them") from None
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{name}={show(value)} must be {what} or an array of them "
                             f"(got dtype {arr.dtype})")
        if arr.size == 0:
            raise ValueError(f"{name}={show(value)} must not be empty")
        if arr.dtype.kind in "iu" and arr.size and (np.max(np.abs(arr.astype(object))) > MAX_INT):
            raise ValueError(f"{name}={show(value)} has integers above 2**53; allowed: {what}")
        out = arr.astype(float)
        _check_values(name, value, out, positive, nonnegative, finite, minimum, maximum, what)
        return out
    if not is_real(value):
        extra = " (an array is not allowed here)" if isinstance(value, (list, tuple, np.ndarray)) else ""
        raise ValueError(f"{name}={show(value)} must be {what}{extra}")
    if isinstance(value, (numbers.Integral, np.integer)) and abs(int(value)) > MAX_INT:
        raise ValueError(f"{name}={show(value)} is too large; allowed: {what} up to 2**53")
    try:
        x = float(value)
    except (OverflowError, ValueError, TypeError):
        raise ValueError(f"{name}={show(value)} must be {what}") from None
    _check_values(name, value, np.asarray(x), positive, nonnegative, finite, minimum, maximum, what)
    return np.asarray(x) if allow_array else x


def _check_values(name, value, arr, positive, nonnegative, finite, minimum, maximum, what):
    bad = np.isnan(arr)
    if finite:
        bad = bad | np.isinf(arr)
    if positive:
        bad = bad | (arr <= 0)
    if nonnegative:
        bad = bad | (arr < 0)
    if minimum is not None:
        bad = bad | (arr < minimum)
    if maximum is not None:
        bad = bad | (arr > maximum)
    if np.any(bad):
        raise ValueError(f"{name}={show(value)} must be {what}")


def integer(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = MAX_INT) -> int:
    """Check an integer (Python or numpy, not bool, not a float such as 2.0) in
    ``[minimum, maximum]`` and return it as ``int``."""
    rng = " and ".join(p for p in ((f">= {minimum}" if minimum is not None else ""),
                                   (f"<= {_power(maximum)}" if maximum is not None else "")) if p)
    what = "an integer" + (f" {rng}" if rng else "")
    if is_bool(value) or not isinstance(value, (numbers.Integral, np.integer)):
        extra = " (an array is not allowed here)" if isinstance(value, (list, tuple, np.ndarray)) else ""
        raise ValueError(f"{name}={show(value)} must be {what}{extra}")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name}={show(value)} is out of range; allowed: {what}")
    return v


def _power(n: int) -> str:
    return "2**53" if n == MAX_INT else str(n)


def positive_int(name: str, value: Any, *, maximum: int = MAX_INT) -> int:
    """Return ``value`` as an ``int`` if it is an integer from 1 to ``maximum`` (not a bool),
    else raise ``ValueError("name=value must be a positive integer ...")``."""
    if is_bool(value) or not isinstance(value, (numbers.Integral, np.integer)) or value < 1:
        extra = " (an array is not allowed here)" if isinstance(value, (list, tuple, np.ndarray)) else ""
        raise ValueError(f"{name}={show(value)} must be a positive integer{extra}")
    if value > maximum:
        raise ValueError(f"{name}={show(value)} must be a positive integer <= {_power(maximum)}")
    return int(value)


def nonneg_int(name: str, value: Any, *, maximum: int = MAX_INT) -> int:
    """An integer from 0 to ``maximum`` (not a bool), returned as ``int``."""
    return integer(name, value, minimum=0, maximum=maximum)


def boolean(name: str, value: Any) -> bool:
    """``True``/``False`` (or ``np.bool_``) only; 0, 1, "yes" and None are rejected."""
    if not is_bool(value):
        raise ValueError(f"{name}={show(value)} must be True or False")
    return bool(value)


def text(name: str, value: Any, *, empty: bool = True) -> str:
    """A ``str`` (non-empty unless ``empty``)."""
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(f"{name}={show(value)} must be a {'non-empty ' if not empty else ''}string")
    return value


def one_of(name: str, value: Any, allowed: Iterable) -> Any:
    """``value`` if it is one of ``allowed`` (compared with ==, bools never equal to 0/1), else
    ``ValueError`` listing what is allowed."""
    allowed = tuple(allowed)
    ok = False
    for a in allowed:
        try:
            ok = _same_kind(value, a) and bool(value == a)
        except Exception:
            ok = False
        if ok:
            break
    if not ok:
        raise ValueError(f"{name}={show(value)} is not allowed; allowed: "
                         + ", ".join(repr(a) for a in allowed))
    return value


def _same_kind(value, allowed) -> bool:
    if is_bool(value) != is_bool(allowed):
        return False
    if isinstance(value, str) != isinstance(allowed, str):
        return False
    return not isinstance(value, (list, dict, set, np.ndarray))


def sequence(name: str, value: Any, *, of: Callable[[str, Any], Any] | None = None,
             nonempty: bool = True) -> list:
    """A non-string iterable (list, tuple, array, generator...) as a ``list``; ``of(name, item)``
    checks each element (its name is ``name[i]``). Rejects a bare str, None, a number, a dict,
    and (if ``nonempty``) an empty sequence."""
    if isinstance(value, (str, bytes, dict)) or value is None or is_real(value) or is_bool(value):
        raise ValueError(f"{name}={show(value)} must be a sequence (list or tuple)"
                         + (" of values, not a string" if isinstance(value, str) else ""))
    if isinstance(value, np.ndarray) and value.ndim == 0:
        raise ValueError(f"{name}={show(value)} must be a sequence, not a 0-d array")
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"{name}={show(value)} must be a sequence (list or tuple)") from None
    if nonempty and not items:
        raise ValueError(f"{name}={show(value)} must not be empty")
    if of is not None:
        items = [of(f"{name}[{i}]", item) for i, item in enumerate(items)]
    return items


def instance(name: str, value: Any, cls: type | tuple[type, ...]) -> Any:
    """``value`` if ``isinstance(value, cls)``, else ``TypeError`` naming the expected class."""
    if not isinstance(value, cls):
        classes = cls if isinstance(cls, tuple) else (cls,)
        names = " or ".join(f"{c.__module__}.{c.__qualname__}" if c.__module__ != "builtins"
                            else c.__qualname__ for c in classes)
        raise TypeError(f"{name}={show(value)} must be a {names} (got {type(value).__name__})")
    return value


def callable_(name: str, value: Any) -> Any:
    """``value`` if it is callable, else ``TypeError`` naming it."""
    if not callable(value):
        raise TypeError(f"{name}={show(value)} must be callable (got {type(value).__name__})")
    return value


def finite_result(names: dict[str, Any] | str, value: Any) -> Any:
    """``value`` if it is finite (every element, for an array), else ``ValueError`` naming the
    inputs (``names``: a dict ``{argument: value}`` or a description) whose values overflowed."""
    try:
        ok = bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError, OverflowError):
        ok = isinstance(value, int)
    if not ok:
        inputs = names if isinstance(names, str) else ", ".join(f"{k}={show(v)}" for k, v in names.items())
        raise ValueError(f"{inputs}: the result is not finite ({show(value)}); "
                         "the values are too extreme to compute with")
    return value


def size_limit(name: str, value: Any, needed: float, limit: float, what: str) -> None:
    """Raise ``ValueError`` if ``needed`` (for example bytes to allocate or steps to run) exceeds
    ``limit``: the message names the argument, its value and the documented limit."""
    if not (math.isfinite(needed) and needed <= limit):
        raise ValueError(f"{name}={show(value)} is too large: it needs {needed:.3g} {what}, "
                         f"above the limit of {limit:.3g}")


__all__ = ["MAX_INT", "boolean", "callable_", "finite_result", "instance", "integer", "is_bool",
           "is_real", "nonneg_int", "one_of", "positive_int", "real", "sequence", "show",
           "size_limit", "text"]
