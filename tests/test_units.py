import math

import pytest
from hypothesis import given, strategies as st

from accelbook.units import UNITS, fmt, to_si


@pytest.mark.parametrize("value, unit, expected, si", [
    (3350, "GB/s", 3.35e12, "B/s"),
    (80, "GiB", 80 * 1024**3, "B"),
    (80, "GB", 80e9, "B"),
    (228, "KiB", 228 * 1024, "B"),
    (989.5, "TFLOP/s", 989.5e12, "FLOP/s"),
    (1979, "TOP/s", 1.979e15, "OP/s"),
    (1980, "MHz", 1.98e9, "Hz"),
    (100, "Gbit/s", 12.5e9, "B/s"),
    (132, "count", 132, "count"),
])
def test_to_si_matches_the_unit_definitions(value, unit, expected, si):
    got, got_unit = to_si(value, unit)
    assert got_unit == si
    assert got == pytest.approx(expected, rel=1e-12)


def test_to_si_text_passes_strings_through():
    assert to_si("HBM3", "text") == ("HBM3", "text")


@pytest.mark.parametrize("value, unit, match", [
    (1, "furlong/s", "unit='furlong/s'"),
    (-1, "GB/s", "must be finite and >= 0"),
    (float("nan"), "GB/s", "finite"),
    ("fast", "GB/s", "must be a number"),
    (True, "GB/s", "must be a number"),
    (3, "text", "must be a string"),
])
def test_to_si_rejects_bad_input(value, unit, match):
    with pytest.raises(ValueError, match=match):
        to_si(value, unit)


@pytest.mark.parametrize("value, unit, kwargs, text", [
    (3.35e12, "B/s", {}, "3.35 TB/s"),
    (989.5e12, "FLOP/s", {}, "990 TFLOP/s"),
    (989.5e12, "FLOP/s", {"digits": 4}, "989.5 TFLOP/s"),
    (80 * 2**30, "B", {"binary": True}, "80 GiB"),
    (999.96e9, "B/s", {}, "1 TB/s"),
    (2.5e-6, "s", {}, "2.5 µs"),
    (0, "s", {}, "0 s"),
    (12, "FLOP", {}, "12 FLOP"),
])
def test_fmt_examples(value, unit, kwargs, text):
    assert fmt(value, unit, **kwargs) == text


@given(st.floats(min_value=1e-9, max_value=1e18, allow_nan=False))
def test_fmt_round_trips_through_its_prefix(value):
    text = fmt(value, "B/s", digits=6)
    number, unit = text.split(" ")
    prefix = unit[:-3]
    scale = {"E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3, "": 1.0,
             "m": 1e-3, "µ": 1e-6, "n": 1e-9}[prefix]
    assert float(number) * scale == pytest.approx(value, rel=1e-5)
    assert 1 <= abs(float(number)) < 1000 or prefix in ("E", "n")


@pytest.mark.parametrize("value, digits, text", [
    (996, 3, "996 B"), (999.4, 3, "999 B"), (999.6, 3, "1 kB"),       # rounds up only when it must
    (0.999999, 6, "999.999 mB"), (0.9999996, 6, "1 B"),               # the case hypothesis found
])
def test_fmt_moves_to_the_next_prefix_only_when_rounding_reaches_1000(value, digits, text):
    assert fmt(value, "B", digits=digits) == text


def test_fmt_rejects_bad_digits():
    with pytest.raises(ValueError, match="digits"):
        fmt(1.0, "s", digits=0)


def test_every_unit_maps_to_a_known_si_unit():
    si_units = {"FLOP/s", "OP/s", "B/s", "B", "Hz", "W", "s", "count", "year", "text"}
    for unit, (si, factor) in UNITS.items():
        assert si in si_units, unit
        assert factor > 0 and math.isfinite(factor)


def test_fmt_refuses_what_would_print_as_nan_none_or_true():
    import math

    import numpy as np

    from accelbook.units import fmt, to_si

    for bad in (None, math.nan, math.inf, True, "3"):
        with pytest.raises(ValueError, match="^value="):
            fmt(bad, "B/s")
    with pytest.raises(ValueError, match="^binary="):
        fmt(1e9, "B/s", binary=1)
    assert fmt(np.float32(2.5e9), "B/s", digits=np.int64(2)) == fmt(2.5e9, "B/s", digits=2)
    with pytest.raises(ValueError, match="whole number"):
        to_si(2.5, "count")
    with pytest.raises(ValueError, match="not finite"):
        to_si(1e300, "PFLOP/s")
