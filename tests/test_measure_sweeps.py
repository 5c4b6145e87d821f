"""Chapter 03's probes (accelbook.measure.sweeps): matmul sweeps over sizes and dtypes, nearby sizes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelbook import measure
from accelbook.measure import sweeps


def test_sweep_dtypes_by_backend():
    assert measure.sweeps.sweep_dtypes("cpu") == ["fp32", "bf16"]
    assert measure.sweeps.sweep_dtypes("tpu") == ["fp32", "bf16"]
    assert "fp16" in measure.sweeps.sweep_dtypes("gpu")
    with pytest.raises(ValueError, match="backend='metal'"):
        measure.sweeps.sweep_dtypes("metal")


def test_matmul_sweep_returns_one_checked_record_per_pair_with_all_rounds():
    rs = measure.sweeps.matmul_sweep([32, 48], ["fp32", "bf16", ("fp32", "highest")], rounds=2, warmup=0,
                                     min_repeats=2, max_repeats=2, min_time=0)
    assert [(r.dtype, r.precision, r.n) for r in rs] == [
        ("fp32", "default", 32), ("fp32", "default", 48), ("bf16", "default", 32),
        ("bf16", "default", 48), ("fp32", "highest", 32), ("fp32", "highest", 48)]
    assert all(r.timing.n == 4 for r in rs)  # 2 rounds x 2 samples
    assert all(r.flops == 2 * r.n**3 for r in rs)
    assert max(r.rel_error for r in rs if r.dtype == "fp32") < 1e-5


@pytest.mark.parametrize("kwargs, match", [
    ({"sizes": [], "cases": ["fp32"]}, "must not be empty"),
    ({"sizes": [8], "cases": []}, "must not be empty"),
    ({"sizes": [0], "cases": ["fp32"]}, "sizes"),
    ({"sizes": [8], "cases": [("fp32", "default", 1)]}, "pair"),
    ({"sizes": [8], "cases": ["fp32"], "rounds": 0}, "rounds=0")])
def test_matmul_sweep_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure.sweeps.matmul_sweep(**kwargs)


def test_nearby_sizes_around_powers_of_two():
    assert measure.sweeps.nearby_sizes(1024) == [1000, 1021, 1023, 1024, 1025]
    assert measure.sweeps.nearby_sizes(4096) == [4000, 4093, 4095, 4096, 4097]
    with pytest.raises(ValueError, match="n=3"):
        measure.sweeps.nearby_sizes(3)


@given(st.integers(4, 20000))
def test_nearby_sizes_are_sorted_unique_and_hold_n(n):
    s = measure.sweeps.nearby_sizes(n)
    assert s == sorted(set(s)) and {n - 1, n, n + 1} <= set(s)
    assert any(measure.sweeps._is_prime(p) and p < n - 1 for p in s)


# -- precision errors split by cause ------------------------------------------------------------------

def test_precision_errors_fp32_has_no_input_rounding():
    r = sweeps.precision_errors(64, "fp32", precision="highest")
    assert r.inputs == 0.0  # float32 sources rounded to float32: unchanged
    assert r.total == pytest.approx(r.output)
    assert r.output < 1e-5


def test_precision_errors_bf16_split_is_consistent():
    from accelbook.models.matmul import unit_roundoff

    r = sweeps.precision_errors(128, "bf16")
    u = unit_roundoff("bf16")
    # rounding each input costs up to u per entry; the relative error of the product is of order u
    assert u / 20 < r.inputs < 4 * u
    assert r.output < 4 * u
    # triangle inequality: C - AB_src = (C - AB_rounded) + (AB_rounded - AB_src), all relative to ~the same norm
    assert r.total <= 1.05 * (r.inputs + r.output)
    assert r.total >= 0.5 * max(r.inputs, r.output)


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=8, dtype="tf32"), dict(n=8, precision="fast")])
def test_precision_errors_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        sweeps.precision_errors(**kwargs)


# -- shapes of a layer, interleaved ---------------------------------------------------------------------

def test_shapes_sweep_times_each_shape_and_checks_it():
    shapes = [(1, 64, 96), (8, 64, 96), (8, 96, 64)]
    rs = sweeps.shapes_sweep(shapes, "fp32", rounds=2, warmup=1, min_repeats=2, min_time=0)
    assert [(r.m, r.k, r.n) for r in rs] == shapes
    for r in rs:
        assert r.timing.n == 4  # two rounds of two samples
        assert r.rel_error < 1e-5
        assert r.flops == 2 * r.m * r.k * r.n


@pytest.mark.parametrize("shapes", [[], [(1, 2)], [(0, 4, 4)], "abc"])
def test_shapes_sweep_rejects_bad_shapes(shapes):
    with pytest.raises(ValueError):
        sweeps.shapes_sweep(shapes)


def test_shapes_sweep_rejects_bad_rounds_and_dtype():
    with pytest.raises(ValueError):
        sweeps.shapes_sweep([(1, 4, 4)], rounds=0)
    with pytest.raises(ValueError):
        sweeps.shapes_sweep([(1, 4, 4)], "tf32")


def test_sweep_arguments_are_checked_by_name():
    import pytest

    from accelbook.measure import sweeps

    with pytest.raises(ValueError, match="^n=.* must be a positive integer <= 2147483648"):
        sweeps.nearby_sizes(2**63)  # the prime below it was searched by trial division for ever
    with pytest.raises(ValueError, match="^sizes='64' must be a sequence"):
        sweeps.matmul_sweep("64")
    with pytest.raises(ValueError, match=r"^cases\[0\]=None"):
        sweeps.matmul_sweep([8], [None])
    with pytest.raises(ValueError, match="^shapes=None"):
        sweeps.shapes_sweep(None)
    with pytest.raises(ValueError, match="^seed=-1"):
        sweeps.precision_errors(8, seed=-1)
