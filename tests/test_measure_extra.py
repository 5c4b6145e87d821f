"""The additions to the harness for "The same matmul on every device": first call, dispatch,
sweeps, nearby sizes and the overhead model t = t0 + F / peak."""

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelbook import measure


def test_unit_roundoff_of_the_book_formats():
    assert measure.unit_roundoff("bf16") == 2.0**-8
    assert measure.unit_roundoff("fp32") == 2.0**-24
    assert measure.unit_roundoff("tf32") == measure.unit_roundoff("fp16") == 2.0**-11
    assert measure.unit_roundoff("fp32") == np.finfo(np.float32).eps / 2


@pytest.mark.parametrize("dtype, err", [("int8", ValueError), ("fp7", ValueError)])
def test_unit_roundoff_rejects_non_float_formats(dtype, err):
    with pytest.raises(err, match="dtype="):
        measure.unit_roundoff(dtype)


def test_first_call_time_includes_compilation():
    import jax
    import jax.numpy as jnp

    x = jnp.ones((64, 64))
    f = jax.jit(lambda a: jnp.tanh(a @ a) + 1.0)
    first = measure.first_call_time(f, x)
    steady = measure.time_call(f, x, min_repeats=5, min_time=0)
    assert first > steady.median  # the first call traced and compiled


def test_first_call_time_waits_for_the_work():
    assert measure.first_call_time(lambda: time.sleep(0.01)) >= 0.01


def test_dispatch_time_counts_calls_and_rejects_bad_repeats():
    calls = []
    t = measure.dispatch_time(lambda: calls.append(1), repeats=7)
    assert t.n == 7 and len(calls) == 7
    with pytest.raises(ValueError, match="repeats=0"):
        measure.dispatch_time(lambda: None, repeats=0)
    with pytest.raises(TypeError):
        measure.first_call_time(3)


def test_sweep_dtypes_by_backend():
    assert measure.sweep_dtypes("cpu") == ["fp32", "bf16"]
    assert measure.sweep_dtypes("tpu") == ["fp32", "bf16"]
    assert "fp16" in measure.sweep_dtypes("gpu")
    with pytest.raises(ValueError, match="backend='metal'"):
        measure.sweep_dtypes("metal")


def test_matmul_sweep_returns_one_checked_record_per_pair_with_all_rounds():
    rs = measure.matmul_sweep([32, 48], ["fp32", "bf16", ("fp32", "highest")], rounds=2, warmup=0,
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
        measure.matmul_sweep(**kwargs)


def test_nearby_sizes_around_powers_of_two():
    assert measure.nearby_sizes(1024) == [1000, 1021, 1023, 1024, 1025]
    assert measure.nearby_sizes(4096) == [4000, 4093, 4095, 4096, 4097]
    with pytest.raises(ValueError, match="n=3"):
        measure.nearby_sizes(3)


@given(st.integers(4, 20000))
def test_nearby_sizes_are_sorted_unique_and_hold_n(n):
    s = measure.nearby_sizes(n)
    assert s == sorted(set(s)) and {n - 1, n, n + 1} <= set(s)
    assert any(measure._is_prime(p) and p < n - 1 for p in s)


@given(st.floats(1e-7, 1e-2), st.floats(1e8, 1e15))
def test_fit_recovers_exact_model(t0, peak):
    flops = 2.0 * np.array([64, 128, 256, 512, 1024, 2048, 4096], dtype=float) ** 3
    model = measure.fit_overhead_model(flops, t0 + flops / peak)
    assert model.t0 == pytest.approx(t0, rel=1e-6, abs=1e-12)
    assert model.peak == pytest.approx(peak, rel=1e-6)


def test_overhead_model_half_peak_point():
    m = measure.OverheadModel(t0=1e-5, peak=1e12)
    assert m.half_peak_flops == pytest.approx(1e7)
    assert float(m.rate(m.half_peak_flops)) == pytest.approx(0.5e12)
    assert 2 * m.n_half**3 / m.peak == pytest.approx(m.t0)
    assert np.allclose(m.seconds([0.0, 1e12]), [1e-5, 1.00001])


def test_fit_clamps_negative_overhead_to_zero():
    flops = np.array([1e6, 1e9, 1e12])
    model = measure.fit_overhead_model(flops, flops / 1e11 * np.array([0.5, 1.0, 1.0]))
    assert model.t0 == 0.0 and model.peak > 0


@pytest.mark.parametrize("flops, seconds, match", [
    ([1.0], [1.0], "length"), ([1.0, 2.0], [1.0], "length"),
    ([1.0, -2.0], [1.0, 2.0], "> 0"), ([1.0, 2.0], [1.0, np.nan], "> 0"),
    ([1e6, 1e9], [1.0, 1e-3], "no rate")])
def test_fit_rejects_bad_data(flops, seconds, match):
    with pytest.raises(ValueError, match=match):
        measure.fit_overhead_model(flops, seconds)


def test_padding_efficiency_counts_whole_tiles():
    assert measure.padding_efficiency(1024, 1024, 1024, 128) == 1.0
    assert measure.padding_efficiency(129, 128, 128, 128) == pytest.approx(129 / 256)
    assert measure.padding_efficiency(1025, 1025, 1025, 128) == pytest.approx((1025 / 1152) ** 3)
    with pytest.raises(ValueError, match="tile=0"):
        measure.padding_efficiency(8, 8, 8, 0)


@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([8, 16, 128, 256]))
def test_padding_efficiency_is_a_fraction_and_exact_on_multiples(m, n, k, tile):
    e = measure.padding_efficiency(m, n, k, tile)
    assert 0 < e <= 1
    assert measure.padding_efficiency(m * tile, n * tile, k * tile, tile) == 1.0


def _chip(kind, peaks):
    from accelbook import specs

    return specs.Chip(key="x", name="X", vendor="v", kind=kind, architecture="", year=2020,
                      device_kinds=(), peak={d: specs.Spec(d, v, "FLOP/s", v, "FLOP/s", None)
                                             for d, v in peaks.items()}, specs={})


def test_chip_model_uses_the_peak_the_precision_runs_at():
    gpu = _chip("gpu", {"fp32": 20e12, "tf32": 150e12, "bf16": 300e12})
    assert measure.chip_model(gpu, "fp32", t0=1e-5).peak == 150e12  # TF32 by default
    assert measure.chip_model(gpu, "fp32", t0=1e-5, precision="highest").peak == 20e12
    m = measure.chip_model(gpu, "bf16", t0=2e-5, utilization=0.6)
    assert m.peak == pytest.approx(180e12) and m.t0 == 2e-5
    assert measure.chip_model(gpu, "fp16", t0=0.0) is None  # no fp16 peak on this made-up chip


def test_chip_model_on_a_tpu():
    tpu = _chip("tpu", {"bf16": 197e12})
    assert measure.chip_model(tpu, "fp32", t0=1e-5).peak == 197e12  # one bf16 pass
    assert measure.chip_model(tpu, "fp32", t0=1e-5, precision="highest") is None


@pytest.mark.parametrize("kwargs, match", [({"t0": -1.0}, "t0=-1.0"), ({"t0": 1e-5, "utilization": 0}, "utilization=0"),
                                           ({"t0": 1e-5, "utilization": 1.5}, "utilization=1.5")])
def test_chip_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure.chip_model(_chip("gpu", {"bf16": 1e12}), "bf16", **kwargs)
