"""Units: converting spec-sheet quantities to SI, and formatting SI values for display.

Inside the library every quantity is in SI base units (seconds, bytes, FLOP, FLOP/s, bytes/s,
hertz, watts). Spec sheets print other units (TFLOP/s, GB/s, GiB, MHz); :func:`to_si` converts
them when the spec database is loaded, and :func:`fmt` converts back only for display.

Taught in: every chapter (the appendix "Spec tables" lists the units the database uses).
"""

from __future__ import annotations

import math

import numpy as np

from accelbook import checks

# unit string -> (SI unit, factor). Decimal prefixes are powers of 1000, binary ones powers of 1024,
# exactly as the vendors mean them (HBM capacity is usually GiB, bandwidth always decimal GB/s).
UNITS: dict[str, tuple[str, float]] = {
    # throughput
    "FLOP/s": ("FLOP/s", 1.0),
    "GFLOP/s": ("FLOP/s", 1e9),
    "TFLOP/s": ("FLOP/s", 1e12),
    "PFLOP/s": ("FLOP/s", 1e15),
    "TOP/s": ("OP/s", 1e12),  # integer operations per second (int8 tensor math)
    "OP/s": ("OP/s", 1.0),
    # memory and link bandwidth
    "B/s": ("B/s", 1.0),
    "GB/s": ("B/s", 1e9),
    "TB/s": ("B/s", 1e12),
    "Gbit/s": ("B/s", 1e9 / 8),
    # capacities
    "B": ("B", 1.0),
    "KiB": ("B", 2.0**10),
    "MiB": ("B", 2.0**20),
    "GiB": ("B", 2.0**30),
    "KB": ("B", 1e3),
    "MB": ("B", 1e6),
    "GB": ("B", 1e9),
    # frequency, power, time
    "Hz": ("Hz", 1.0),
    "MHz": ("Hz", 1e6),
    "GHz": ("Hz", 1e9),
    "W": ("W", 1.0),
    "s": ("s", 1.0),
    "ns": ("s", 1e-9),
    "us": ("s", 1e-6),
    # plain counts and text
    "count": ("count", 1.0),
    "year": ("year", 1.0),
    "text": ("text", 1.0),
}


def to_si(value, unit: str):
    """Convert ``value`` given in ``unit`` (a key of :data:`UNITS`) to SI; return (value, si_unit).

    >>> to_si(3350, "GB/s")
    (3350000000000.0, 'B/s')
    """
    if not isinstance(unit, str) or unit not in UNITS:
        raise ValueError(f"unit={checks.show(unit)} is not a known unit; allowed: {sorted(UNITS)}")
    si_unit, factor = UNITS[unit]
    if si_unit == "text":
        if not isinstance(value, str):
            raise ValueError(f"value={value!r} with unit 'text' must be a string")
        return value, si_unit
    if not checks.is_real(value):
        raise ValueError(f"value={checks.show(value)} in unit {unit!r} must be a number")
    if isinstance(value, (int, np.integer)) and abs(int(value)) > checks.MAX_INT:
        raise ValueError(f"value={value!r} in unit {unit!r} is too large (above 2**53)")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"value={value!r} in unit {unit!r} must be finite and >= 0")
    if si_unit in ("count", "year"):
        if value != int(value):
            raise ValueError(f"value={value!r} in unit {unit!r} must be a whole number")
        return value, si_unit
    return checks.finite_result({"value": value, "unit": unit}, float(value) * factor), si_unit


_PREFIXES = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
             (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")]
_BINARY = [(2.0**40, "Ti"), (2.0**30, "Gi"), (2.0**20, "Mi"), (2.0**10, "Ki"), (1.0, "")]


def fmt(value: float, unit: str, digits: int = 3, binary: bool = False) -> str:
    """Format an SI ``value`` with a metric prefix: ``fmt(3.35e12, "B/s") == "3.35 TB/s"``.

    ``digits`` is the number of significant digits; ``binary=True`` uses 1024-based prefixes
    (for capacities: ``fmt(80 * 2**30, "B", binary=True) == "80 GiB"``).
    """
    digits = checks.positive_int("digits", digits, maximum=17)
    value = checks.real("value", value)
    unit = checks.text("unit", unit)
    binary = checks.boolean("binary", binary)
    if value == 0:
        return f"0 {unit}"
    table = _BINARY if binary else _PREFIXES
    mag = abs(value)
    scale, prefix = table[-1]
    if binary:  # 1000 to 1023 of a binary prefix already need four digits: round up early
        for s, p in table:
            if mag >= s * (1 - 0.5 * 10.0 ** (1 - digits)):
                scale, prefix = s, p
                break
    else:  # the largest prefix the value reaches; the next one if rounding brings it to 1000
        i = next((k for k, (s, _p) in enumerate(table) if mag >= s), len(table) - 1)
        rounded = float(f"{value / table[i][0]:.{digits}g}")
        if i > 0 and abs(rounded) >= 1000:  # with 3 digits 999.6 is "1 k"; 996 stays "996", never "0.996 k"
            i -= 1
            rounded /= 1000  # the rounded number itself, so a tie cannot round back down below 1
        scale, prefix = table[i]
        text = f"{rounded:.{digits}g}"
        return f"{text} {prefix}{unit}" if "e" not in text else f"{value / scale:.{digits - 1}e} {prefix}{unit}"
    scaled = value / scale
    text = f"{scaled:.{digits}g}"
    if "e" in text:  # only when value is far outside the prefix table
        text = f"{scaled:.{digits - 1}e}"
    return f"{text} {prefix}{unit}"
