"""Argument checks shared by the library: bad input gets a ValueError naming the argument.

Used by every module that takes sizes (measure, roofline, systolic, device).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1 (not a bool), else raise
    ``ValueError("name=value must be a positive integer")``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


__all__ = ["positive_int"]
