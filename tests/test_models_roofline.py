"""The roofline model against its closed forms, and the chapter 02 additions: predictions, the
smallest compute-bound batch, the square-matmul crossover and the ridge-point table."""

import math
import types

import numpy as np
import pytest
from hypothesis import given, strategies as st

from accelbook import models, specs

P, W = 989.5e12, 3.35e12  # a made-up chip with H100-like ceilings
pos = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(i=pos, p=pos, w=pos)
def test_attainable_is_the_lower_of_the_two_roofs(i, p, w):
    a = models.roofline.attainable(i, p * 1e9, w * 1e9)
    assert a <= p * 1e9 * (1 + 1e-12) and a <= w * 1e9 * i * (1 + 1e-12)
    assert a == pytest.approx(min(p, w * i) * 1e9)


@given(p=pos, w=pos)
def test_ridge_point_is_where_the_roofs_meet(p, w):
    ridge = models.roofline.ridge_point(p, w)
    assert ridge == pytest.approx(p / w)
    assert models.roofline.attainable(ridge, p, w) == pytest.approx(p)
    assert models.roofline.attainable(ridge / 2, p, w) == pytest.approx(p / 2)


def test_attainable_is_vectorised_and_monotone():
    i = np.geomspace(0.01, 1e4, 200)
    a = models.roofline.attainable(i, 1e12, 1e11)
    assert a.shape == i.shape and np.all(np.diff(a) >= 0) and a.max() == 1e12


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), [1, -1]])
def test_attainable_rejects_non_positive_input(bad):
    with pytest.raises(ValueError, match="intensity="):
        models.roofline.attainable(bad, 1e12, 1e11)
    with pytest.raises(ValueError, match="peak_flops="):
        models.roofline.attainable(1.0, bad, 1e11)


def test_min_time_is_the_slower_of_compute_and_memory():
    assert models.roofline.min_time(1e12, 1e9, 1e12, 1e11) == pytest.approx(1.0)  # compute-bound
    assert models.roofline.min_time(1e9, 1e12, 1e12, 1e11) == pytest.approx(10.0)  # memory-bound
    with pytest.raises(ValueError, match="flops=-1"):
        models.roofline.min_time(-1, 1, 1, 1)
    with pytest.raises(ValueError, match="both be 0"):
        models.roofline.min_time(0, 0, 1, 1)


@given(n=st.integers(1, 10**5), b=st.sampled_from([1, 2, 4, 8]))
def test_square_matmul_intensity_closed_form(n, b):
    assert models.roofline.matmul_intensity(n, n, n, b) == pytest.approx(2 * n / (3 * b))


def test_matmul_intensity_rejects_bad_shapes():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="must be a positive integer"):
            models.roofline.matmul_intensity(bad, 4, 4)


def test_elementwise_intensity():
    assert models.roofline.elementwise_intensity(1, 2, 1, 4) == pytest.approx(1 / 12)
    with pytest.raises(ValueError, match="inputs"):
        models.roofline.elementwise_intensity(1, 0, 0)


def test_predict_picks_the_larger_of_the_two_times():
    bw_bound = models.roofline.predict(1e9, 1e9, P, W)
    assert bw_bound.bound == "bandwidth"
    assert bw_bound.time == pytest.approx(1e9 / W)
    assert bw_bound.attainable == pytest.approx(W * 1.0)  # intensity 1 FLOP/byte
    cb = models.roofline.predict(1e15, 1e9, P, W)
    assert cb.bound == "compute" and cb.time == pytest.approx(1e15 / P)
    assert cb.fraction_of_peak == pytest.approx(1.0)


@given(st.floats(1e3, 1e18), st.floats(1e3, 1e15), st.floats(1e9, 1e16), st.floats(1e8, 1e14))
def test_predict_agrees_with_min_time_and_attainable(flops, q, peak, bw):
    p = models.roofline.predict(flops, q, peak, bw)
    assert p.time == pytest.approx(models.roofline.min_time(flops, q, peak, bw))
    assert p.attainable == pytest.approx(models.roofline.attainable(flops / q, peak, bw), rel=1e-9)
    assert p.intensity == pytest.approx(flops / q)
    assert p.bound == ("compute" if flops / peak >= q / bw else "bandwidth")


def test_predict_of_a_kernel_that_moves_no_bytes():
    p = models.roofline.predict(1e9, 0, P, W)
    assert p.bound == "compute" and p.time == pytest.approx(1e9 / P)
    with pytest.raises(ValueError, match="bytes_moved=0.0: the kernel moves no memory"):
        p.intensity  # undefined, not inf: an inf would print as 'inf' on the page


@pytest.mark.parametrize("args", [(-1, 1, P, W), (1, -1, P, W), (0, 0, P, W), (1, 1, 0, W), (1, 1, P, -W)])
def test_predict_rejects_bad_input(args):
    with pytest.raises(ValueError):
        models.roofline.predict(*args)


@given(st.integers(1, 20000), st.integers(1, 20000), st.sampled_from([1, 2, 4]),
       st.floats(10.0, 2000.0))
def test_min_batch_is_the_first_compute_bound_batch(d_in, d_out, b, ridge):
    m = models.roofline.min_batch_for_compute_bound(d_in, d_out, ridge * 1e12, 1e12, b)
    limit = 2.0 * d_in * d_out / (b * (d_in + d_out))  # intensity as the batch grows without bound
    if m is None:
        assert limit <= ridge * (1 + 1e-9)
    else:
        assert models.roofline.matmul_intensity(m, d_out, d_in, b) >= ridge * (1 - 1e-12)
        assert m == 1 or models.roofline.matmul_intensity(m - 1, d_out, d_in, b) < ridge


def test_min_batch_on_an_h100_like_chip():
    # b·R·d² / (2d² − 2·b·R·d) with b = 2, R = P / W, d = 4096
    br = 2 * P / W
    expected = math.ceil(br * 4096**2 / (2 * 4096**2 - br * 2 * 4096))
    assert models.roofline.min_batch_for_compute_bound(4096, 4096, P, W, 2) == expected


def test_min_batch_is_none_when_no_batch_is_enough():
    # a 64-wide layer in bf16 never exceeds 2·64·64 / (2·128) = 32 FLOP/byte
    assert models.roofline.min_batch_for_compute_bound(64, 64, 100e12, 1e12, 2) is None


def test_min_batch_does_not_change_when_peak_and_element_size_scale_together():
    # fp8 on the same chip: twice the peak, half the bytes per element
    assert (models.roofline.min_batch_for_compute_bound(4096, 4096, 2 * P, W, 1)
            == models.roofline.min_batch_for_compute_bound(4096, 4096, P, W, 2))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_min_batch_rejects_bad_widths(bad):
    with pytest.raises(ValueError):
        models.roofline.min_batch_for_compute_bound(bad, 16, P, W)


def test_square_crossover_is_where_square_matmuls_meet_the_ridge():
    n = models.roofline.square_matmul_crossover(P, W, 2)
    assert n == pytest.approx(1.5 * 2 * P / W)
    assert models.roofline.matmul_intensity(int(np.ceil(n)), int(np.ceil(n)), int(np.ceil(n)), 2) >= P / W
    assert models.roofline.matmul_intensity(int(n) - 1, int(n) - 1, int(n) - 1, 2) < P / W
    with pytest.raises(ValueError):
        models.roofline.square_matmul_crossover(P, W, 0)


def test_ridge_table_uses_the_first_dtype_a_chip_has_and_sorts():
    chips = specs.chips()
    rows = models.roofline.ridge_table(chips, ("bf16", "fp16"))
    ridges = [r.ridge for r in rows]
    assert ridges == sorted(ridges)
    for r in rows:
        assert r.dtype == ("bf16" if "bf16" in r.chip.peak_flops else "fp16")
        assert r.ridge == pytest.approx(r.chip.ridge_point(r.dtype))
    keys = {r.chip.key for r in rows}
    for c in chips:  # every chip with bandwidth and a 16-bit peak is in, and nothing else
        assert (c.key in keys) == bool(c.memory_bandwidth and ({"bf16", "fp16"} & set(c.peak_flops)))


def test_ridge_table_rejects_a_bare_string():
    with pytest.raises(ValueError):
        models.roofline.ridge_table(specs.chips(), "bf16")


def _row(key, year, peak, bandwidth=1e12):
    chip = types.SimpleNamespace(key=key, name=key.upper(), vendor="V", year=year)
    return models.roofline.RidgeRow(chip, "bf16", peak, bandwidth)


def test_generation_growth_pairs_the_oldest_and_newest_chip_of_each_line():
    rows = [_row("a", 2017, 10.0), _row("b", 2020, 30.0), _row("c", 2024, 50.0), _row("c2", 2024, 70.0),
            _row("x", 2019, 5.0), _row("y", 2019, 9.0), _row("lonely", 2018, 1.0)]
    lines = {"big": ("c", "a", "b", "c2"), "same year": ("x", "y"), "one chip": ("lonely",), "absent": ("zz",)}
    growth = models.roofline.generation_growth(rows, lines)
    # hand-traced: 'big' runs from a (2017) to c2 (2024, the higher of the two 2024 peaks); 'same
    # year' shows no growth, 'one chip' and 'absent' have nothing to compare
    assert [(n, f.chip.key, l.chip.key) for n, f, l in growth] == [("big", "a", "c2")]
    assert models.roofline.generation_growth(rows, {}) == []


def test_generation_growth_compares_like_for_like_in_the_database():
    rows = models.roofline.ridge_table(specs.chips(), ("bf16", "fp16"))
    growth = models.roofline.generation_growth(rows)
    assert [n for n, _f, _l in growth] == list(models.roofline.PRODUCT_LINES)
    by_key = {r.chip.key: r for r in rows}
    for name, first, last in growth:
        keys = models.roofline.PRODUCT_LINES[name]
        assert all(k in by_key for k in keys), f"{name}: a chip of the line lost its 16-bit peak"
        years = [by_key[k].chip.year for k in keys]
        assert years == sorted(years), f"{name}: the line is listed oldest first"
        assert first.chip.key == keys[0] and last.chip.key == keys[-1]
        assert len({by_key[k].chip.vendor for k in keys}) == 1 and len({by_key[k].chip.kind for k in keys}) == 1
    lines_of = [n for n, keys in models.roofline.PRODUCT_LINES.items() for k in keys]
    assert len(lines_of) == len(set(k for keys in models.roofline.PRODUCT_LINES.values() for k in keys))


def test_generation_growth_rejects_bad_input():
    rows = models.roofline.ridge_table(specs.chips(), ("bf16",))
    with pytest.raises(TypeError, match="lines="):
        models.roofline.generation_growth(rows, [("a", "b")])
    with pytest.raises(ValueError, match="lines\\['x'\\]"):
        models.roofline.generation_growth(rows, {"x": "tpu-v2"})
    with pytest.raises(TypeError, match="rows\\[0\\]"):
        models.roofline.generation_growth([1.0])


def test_group_ops_merges_identical_ops_in_order():
    Op = types.SimpleNamespace
    ops = [Op(name="norm1", kind="elementwise", shape=None, flops=4, bytes=8.0),
           Op(name="proj", kind="matmul", shape=(1, 2, 3), flops=12, bytes=20.0),
           Op(name="norm2", kind="elementwise", shape=None, flops=4, bytes=8.0),
           Op(name="proj2", kind="matmul", shape=(1, 3, 2), flops=12, bytes=20.0)]  # same counts, other shape
    rows = models.roofline.group_ops(ops)
    assert [(names, n) for names, _op, n in rows] == [("norm1 + norm2", 2), ("proj", 1), ("proj2", 1)]
    assert rows[0][1] is ops[0]
    with pytest.raises(TypeError, match=r"ops\[0\]"):
        models.roofline.group_ops([1.0])


def test_group_ops_on_the_running_example_keeps_every_flop_and_byte():
    from accelbook.models import decoder
    ops = decoder.layer_ops(decoder.LLAMA2_7B, batch=4, context=64)
    rows = models.roofline.group_ops(ops)
    assert sum(op.flops * n for _names, op, n in rows) == decoder.totals(ops)[0]
    assert sum(op.bytes * n for _names, op, n in rows) == pytest.approx(decoder.totals(ops)[1])
    assert sorted(name for names, _op, _n in rows for name in names.split(" + ")) == sorted(o.name for o in ops)


def test_min_batch_returns_next_to_the_asymptotic_ridge():
    # the ridge just below the limit 2·d·d / (b·2d) = d / 2: the old correction loop never returned
    m = models.roofline.min_batch_for_compute_bound(1024, 1024, 511.999999999488, 1.0, 2)
    assert m is not None and m > 10**11
    assert models.roofline.matmul_intensity(m, 1024, 1024, 2) >= 511.999999999488 * (1 - 1e-12)


def test_min_batch_above_2_53_is_an_error():
    with pytest.raises(ValueError, match="above 2\\*\\*53"):
        models.roofline.min_batch_for_compute_bound(2**40, 2**40, 2**40 - 1e-3, 1.0, 1)


@pytest.mark.parametrize("bad", [True, "1e12", float("nan"), float("inf"), [1e12]])
def test_roofline_numbers_reject_bools_strings_nan_inf_and_lists(bad):
    for fn, args, name in ((models.roofline.min_time, (bad, 1.0, P, W), "flops"),
                           (models.roofline.ridge_point, (bad, W), "peak_flops"),
                           (models.roofline.elementwise_intensity, (bad,), "flops_per_element")):
        with pytest.raises(ValueError, match=f"^{name}="):
            fn(*args)


def test_roofline_accepts_numpy_scalars_and_refuses_overflow():
    assert models.roofline.elementwise_intensity(1.0, np.int64(2), np.int64(1)) == pytest.approx(1 / 12)
    with pytest.raises(ValueError, match="not finite"):
        models.roofline.ridge_point(1e300, 1e-300)


@pytest.mark.parametrize("measured", [True, False])
def test_above_roof_reason_names_the_roof_that_was_exceeded(measured):
    p, w = 1e12, 1e11  # ridge at 10 FLOP/byte
    reason = models.roofline.above_roof_reason
    assert reason(1.0, 1e11, p, w, measured) is None  # on the memory roof: W · I
    assert reason(100.0, 1e12, p, w, measured) is None  # on the compute roof
    memory, compute = reason(1.0, 1.5e11, p, w, measured), reason(100.0, 1.2e12, p, w, measured)
    assert "cache" in memory and ("load" in memory) == measured
    assert ("earlier run" in compute) == measured and ("counts more FLOP" in compute) == (not measured)
    with pytest.raises(TypeError, match="measured="):
        reason(1.0, 1.0, p, w, "yes")


def test_above_roof_reason_judges_a_measured_peak_against_the_computed_one():
    """A measured peak is a lower bound: a point above it but below the computed peak is possible (its
    share of the computed peak is given); one above the computed peak too is not."""
    p, w = 1e12, 1e11
    reason = models.roofline.above_roof_reason
    possible = reason(100.0, 1.2e12, p, w, True, computed_peak=1.5e12)
    assert "lower bound" in possible and f"{100 * 1.2e12 / 1.5e12:.0f} % of the computed peak" in possible
    assert "above even the computed peak" in reason(100.0, 2e12, p, w, True, computed_peak=1.5e12)
    assert reason(100.0, 1e12, p, w, True, computed_peak=1.5e12) is None  # on the roof: nothing to explain
    assert "cache" in reason(1.0, 1.5e11, p, w, True, computed_peak=1.5e12)  # the memory roof is unaffected
    with pytest.raises(ValueError, match="computed_peak"):
        reason(100.0, 1.2e12, p, w, True, computed_peak=-1.0)
