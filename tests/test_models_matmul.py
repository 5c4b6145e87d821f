"""Chapter 03's models (accelbook.models.matmul): unit roundoff, the overhead model t = t0 + F / peak
and its fit, padding to whole tiles, and a chip's predicted matmul rate."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelbook import models


def test_unit_roundoff_of_the_book_formats():
    assert models.matmul.unit_roundoff("bf16") == 2.0**-8
    assert models.matmul.unit_roundoff("fp32") == 2.0**-24
    assert models.matmul.unit_roundoff("tf32") == models.matmul.unit_roundoff("fp16") == 2.0**-11
    assert models.matmul.unit_roundoff("fp32") == np.finfo(np.float32).eps / 2


@pytest.mark.parametrize("dtype, err", [("int8", ValueError), ("fp7", ValueError)])
def test_unit_roundoff_rejects_non_float_formats(dtype, err):
    with pytest.raises(err, match="dtype="):
        models.matmul.unit_roundoff(dtype)


@given(st.floats(1e-7, 1e-2), st.floats(1e8, 1e15))
def test_fit_recovers_exact_model(t0, peak):
    flops = 2.0 * np.array([64, 128, 256, 512, 1024, 2048, 4096], dtype=float) ** 3
    model = models.matmul.fit_overhead_model(flops, t0 + flops / peak)
    assert model.t0 == pytest.approx(t0, rel=1e-6, abs=1e-12)
    assert model.peak == pytest.approx(peak, rel=1e-6)


def test_overhead_model_half_peak_point():
    m = models.matmul.OverheadModel(t0=1e-5, peak=1e12)
    assert m.half_peak_flops == pytest.approx(1e7)
    assert float(m.rate(m.half_peak_flops)) == pytest.approx(0.5e12)
    assert 2 * m.n_half**3 / m.peak == pytest.approx(m.t0)
    assert np.allclose(m.seconds([0.0, 1e12]), [1e-5, 1.00001])


def test_fit_clamps_negative_overhead_to_zero():
    flops = np.array([1e6, 1e9, 1e12])
    model = models.matmul.fit_overhead_model(flops, flops / 1e11 * np.array([0.5, 1.0, 1.0]))
    assert model.t0 == 0.0 and model.peak > 0


@pytest.mark.parametrize("flops, seconds, match", [
    ([1.0], [1.0], "length"), ([1.0, 2.0], [1.0], "length"),
    ([1.0, -2.0], [1.0, 2.0], "> 0"), ([1.0, 2.0], [1.0, np.nan], "> 0"),
    ([1e6, 1e9], [1.0, 1e-3], "no rate")])
def test_fit_rejects_bad_data(flops, seconds, match):
    with pytest.raises(ValueError, match=match):
        models.matmul.fit_overhead_model(flops, seconds)


def test_padding_efficiency_counts_whole_tiles():
    assert models.matmul.padding_efficiency(1024, 1024, 1024, 128) == 1.0
    assert models.matmul.padding_efficiency(129, 128, 128, 128) == pytest.approx(129 / 256)
    assert models.matmul.padding_efficiency(1025, 1025, 1025, 128) == pytest.approx((1025 / 1152) ** 3)
    with pytest.raises(ValueError, match="tile=0"):
        models.matmul.padding_efficiency(8, 8, 8, 0)


@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([8, 16, 128, 256]))
def test_padding_efficiency_is_a_fraction_and_exact_on_multiples(m, n, k, tile):
    e = models.matmul.padding_efficiency(m, n, k, tile)
    assert 0 < e <= 1
    assert models.matmul.padding_efficiency(m * tile, n * tile, k * tile, tile) == 1.0


def _chip(kind, peaks):
    from accelbook import specs

    return specs.Chip(key="x", name="X", vendor="v", kind=kind, architecture="", year=2020,
                      device_kinds=(), peak={d: specs.Spec(d, v, "FLOP/s", v, "FLOP/s", None)
                                             for d, v in peaks.items()}, specs={})


def test_chip_model_uses_the_peak_the_precision_runs_at():
    gpu = _chip("gpu", {"fp32": 20e12, "tf32": 150e12, "bf16": 300e12})
    assert models.matmul.chip_model(gpu, "fp32", t0=1e-5).peak == 150e12  # TF32 by default
    assert models.matmul.chip_model(gpu, "fp32", t0=1e-5, precision="highest").peak == 20e12
    m = models.matmul.chip_model(gpu, "bf16", t0=2e-5, utilization=0.6)
    assert m.peak == pytest.approx(180e12) and m.t0 == 2e-5
    assert models.matmul.chip_model(gpu, "fp16", t0=0.0) is None  # no fp16 peak on this made-up chip


def test_chip_model_on_a_tpu():
    tpu = _chip("tpu", {"bf16": 197e12})
    assert models.matmul.chip_model(tpu, "fp32", t0=1e-5).peak == 197e12  # one bf16 pass
    assert models.matmul.chip_model(tpu, "fp32", t0=1e-5, precision="highest") is None


@pytest.mark.parametrize("kwargs, match", [({"t0": -1.0}, "t0=-1.0"), ({"t0": 1e-5, "utilization": 0}, "utilization=0"),
                                           ({"t0": 1e-5, "utilization": 1.5}, "utilization=1.5")])
def test_chip_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.matmul.chip_model(_chip("gpu", {"bf16": 1e12}), "bf16", **kwargs)


# -- waves: NVIDIA's worked example (matmul guide: 108 SMs, 128 x 128 tiles), traced by hand ------------

def test_waves_a100_example_by_hand():
    from accelbook.models.matmul import waves

    w = waves(4096, 4096, 108)  # 32 x 32 tiles = 1024; 1024 / 108 = 9.48 -> 10 waves
    assert (w.tiles, w.whole_waves) == (1024, 10)
    assert w.waves == pytest.approx(1024 / 108)
    w1 = waves(4097, 4097, 108)  # 33 x 33 = 1089 tiles -> 10.08 -> 11 waves, ~10 % slower
    assert (w1.tiles, w1.whole_waves) == (1089, 11)
    assert w1.whole_waves / w.whole_waves == pytest.approx(1.1)
    assert w.efficiency == pytest.approx((1024 / 108) / 10)


def test_waves_whole_wave_is_fully_efficient_and_tile_shape_counts():
    from accelbook.models.matmul import waves

    assert waves(128 * 4, 128 * 27, 108).efficiency == 1.0  # 108 tiles: exactly one wave
    assert waves(256, 64, 1, tile=(128, 64)).tiles == 2
    assert waves(1, 1, 1).tiles == 1


@pytest.mark.parametrize("kwargs", [dict(m=0, n=1, sm_count=1), dict(m=1, n=1, sm_count=0),
                                    dict(m=1, n=1, sm_count=1, tile=(128,)), dict(m=1, n=1, sm_count=1, tile=(0, 8)),
                                    dict(m=1.5, n=1, sm_count=1)])
def test_waves_rejects_bad_input(kwargs):
    from accelbook.models.matmul import waves

    with pytest.raises(ValueError):
        waves(**kwargs)


def test_chip_model_takes_a_chip_or_its_key_and_checks_the_numbers():
    from accelbook import specs
    from accelbook.models.matmul import chip_model

    assert chip_model("h100-sxm", "bf16", t0=1e-5) == chip_model(specs.get_chip("h100-sxm"), "bf16", t0=1e-5)
    with pytest.raises(TypeError, match="chip=None"):
        chip_model(None, "bf16", t0=1e-5)
    with pytest.raises(ValueError, match="t0=True"):
        chip_model("h100-sxm", "bf16", t0=True)
    assert chip_model("h100-sxm", "bf16", t0=np.float32(1e-5), utilization=np.float64(0.5)) is not None


def test_fit_overhead_model_needs_two_flop_counts_of_one_dimension():
    from accelbook.models.matmul import fit_overhead_model

    with pytest.raises(ValueError, match="two different FLOP counts"):
        fit_overhead_model([1e6, 1e6], [1e-5, 2e-5])
    with pytest.raises(ValueError, match="1-D"):
        fit_overhead_model([[1e6, 1e8]], [[1e-5, 1e-3]])
    with pytest.raises(ValueError, match="^flops="):
        fit_overhead_model("ab", [1e-5, 2e-5])
