"""Functions added to accelbook.roofline and accelbook.plotting for chapter 02 ("The roofline")."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from accelbook import plotting, roofline, specs  # noqa: E402

P, W = 989.5e12, 3.35e12  # a made-up chip with H100-like ceilings


def test_predict_picks_the_larger_of_the_two_times():
    bw_bound = roofline.predict(1e9, 1e9, P, W)
    assert bw_bound.bound == "bandwidth"
    assert bw_bound.time == pytest.approx(1e9 / W)
    assert bw_bound.attainable == pytest.approx(W * 1.0)  # intensity 1 FLOP/byte
    cb = roofline.predict(1e15, 1e9, P, W)
    assert cb.bound == "compute" and cb.time == pytest.approx(1e15 / P)
    assert cb.fraction_of_peak == pytest.approx(1.0)


@given(st.floats(1e3, 1e18), st.floats(1e3, 1e15), st.floats(1e9, 1e16), st.floats(1e8, 1e14))
def test_predict_agrees_with_min_time_and_attainable(flops, q, peak, bw):
    p = roofline.predict(flops, q, peak, bw)
    assert p.time == pytest.approx(roofline.min_time(flops, q, peak, bw))
    assert p.attainable == pytest.approx(roofline.attainable(flops / q, peak, bw), rel=1e-9)
    assert p.intensity == pytest.approx(flops / q)
    assert p.bound == ("compute" if flops / peak >= q / bw else "bandwidth")


def test_predict_of_a_kernel_that_moves_no_bytes():
    p = roofline.predict(1e9, 0, P, W)
    assert p.intensity == math.inf and p.bound == "compute"


@pytest.mark.parametrize("args", [(-1, 1, P, W), (1, -1, P, W), (0, 0, P, W), (1, 1, 0, W), (1, 1, P, -W)])
def test_predict_rejects_bad_input(args):
    with pytest.raises(ValueError):
        roofline.predict(*args)


@given(st.integers(1, 20000), st.integers(1, 20000), st.sampled_from([1, 2, 4]),
       st.floats(10.0, 2000.0))
def test_min_batch_is_the_first_compute_bound_batch(d_in, d_out, b, ridge):
    m = roofline.min_batch_for_compute_bound(d_in, d_out, ridge * 1e12, 1e12, b)
    limit = 2.0 * d_in * d_out / (b * (d_in + d_out))  # intensity as the batch grows without bound
    if m is None:
        assert limit <= ridge * (1 + 1e-9)
    else:
        assert roofline.matmul_intensity(m, d_out, d_in, b) >= ridge * (1 - 1e-12)
        assert m == 1 or roofline.matmul_intensity(m - 1, d_out, d_in, b) < ridge


def test_min_batch_on_an_h100_like_chip():
    # b·R·d² / (2d² − 2·b·R·d) with b = 2, R = P / W, d = 4096
    br = 2 * P / W
    expected = math.ceil(br * 4096**2 / (2 * 4096**2 - br * 2 * 4096))
    assert roofline.min_batch_for_compute_bound(4096, 4096, P, W, 2) == expected


def test_min_batch_is_none_when_no_batch_is_enough():
    # a 64-wide layer in bf16 never exceeds 2·64·64 / (2·128) = 32 FLOP/byte
    assert roofline.min_batch_for_compute_bound(64, 64, 100e12, 1e12, 2) is None


def test_min_batch_does_not_change_when_peak_and_element_size_scale_together():
    # fp8 on the same chip: twice the peak, half the bytes per element
    assert (roofline.min_batch_for_compute_bound(4096, 4096, 2 * P, W, 1)
            == roofline.min_batch_for_compute_bound(4096, 4096, P, W, 2))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_min_batch_rejects_bad_widths(bad):
    with pytest.raises(ValueError):
        roofline.min_batch_for_compute_bound(bad, 16, P, W)


def test_square_crossover_is_where_square_matmuls_meet_the_ridge():
    n = roofline.square_matmul_crossover(P, W, 2)
    assert n == pytest.approx(1.5 * 2 * P / W)
    assert roofline.matmul_intensity(int(np.ceil(n)), int(np.ceil(n)), int(np.ceil(n)), 2) >= P / W
    assert roofline.matmul_intensity(int(n) - 1, int(n) - 1, int(n) - 1, 2) < P / W
    with pytest.raises(ValueError):
        roofline.square_matmul_crossover(P, W, 0)


def test_ridge_table_uses_the_first_dtype_a_chip_has_and_sorts():
    chips = specs.chips()
    rows = roofline.ridge_table(chips, ("bf16", "fp16"))
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
        roofline.ridge_table(specs.chips(), "bf16")


def test_unfused_cost_counts_more_bytes_than_the_fused_program():
    import jax.numpy as jnp

    x = jnp.ones(1 << 16, jnp.float32)
    f = lambda a: jnp.exp(a * 2 + 1)  # noqa: E731
    fused, unfused = roofline.xla_cost(f, x), roofline.unfused_cost(f, x)
    assert unfused is not None
    assert fused.bytes_accessed == pytest.approx(2 * 4 * x.size, rel=0.01)  # read x, write the result
    assert unfused.bytes_accessed > 2 * fused.bytes_accessed
    assert unfused.flops == fused.flops == 2 * x.size
    with pytest.raises(TypeError):
        roofline.unfused_cost(3)


def test_plot_helpers_draw_without_error():
    rows = roofline.ridge_table(specs.chips(), ("bf16", "fp16"))
    fig, (a, b) = plt.subplots(1, 2)
    plotting.ridge_bars(a, rows)
    assert len(a.patches) == len(rows)
    plotting.roofline_plot(b, [("chip", P, W)])
    plotting.intensity_markers(b, [("add", 1 / 6), ("matmul", 1365.0)])
    plotting.labelled_points(b, [("p", 1.0, 1e12)], offsets={"p": (0, 5)})
    assert [t.get_text() for t in b.texts][-1] == "p"
    plt.close(fig)


def test_roofline_explorer_reports_the_prediction_in_its_title():
    fig = plt.figure()
    chip = specs.get_chip("h100-sxm")
    plotting.roofline_explorer(fig, chip, "bf16", 64, 4096)
    title = fig._suptitle.get_text()
    assert "bandwidth-bound" in title and "H100" in title
    plotting.roofline_explorer(fig, chip, "bf16", 8192, 4096)
    assert "compute-bound" in fig._suptitle.get_text()
    assert "100 % of peak" in fig._suptitle.get_text()
    plt.close(fig)


def test_roofline_explorer_says_when_a_chip_lacks_the_dtype():
    fig = plt.figure()
    chip = next(c for c in specs.chips() if c.memory_bandwidth and "bf16" not in c.peak_flops
                and c.peak_flops)
    plotting.roofline_explorer(fig, chip, "bf16", 1)
    assert any("has no bf16 peak" in t.get_text() for t in fig.texts)
    plt.close(fig)


def test_short_name_and_vendor_colors():
    assert plotting.short_name("NVIDIA H100 SXM") == "H100 SXM"
    assert plotting.short_name("Something else") == "Something else"
    colors = plotting.vendor_colors(["b", "a", "b"])
    assert colors == {"a": plotting.CYCLE[0], "b": plotting.CYCLE[1]}


def test_generation_growth_pairs_each_vendors_oldest_and_newest_chip():
    rows = roofline.ridge_table(specs.chips(), ("bf16", "fp16"))
    growth = roofline.generation_growth(rows)
    assert [v for v, _f, _l in growth] == sorted(v for v, _f, _l in growth)
    for vendor, first, last in growth:
        mine = [r for r in rows if r.chip.vendor == vendor]
        assert first.chip.year == min(r.chip.year for r in mine) < last.chip.year
        assert last.chip.year == max(r.chip.year for r in mine)
        newest = [r for r in mine if r.chip.year == last.chip.year]
        assert last.peak_flops == max(r.peak_flops for r in newest)
    single_year = {r.chip.vendor for r in rows} - {v for v, _f, _l in growth}
    for vendor in single_year:
        assert len({r.chip.year for r in rows if r.chip.vendor == vendor}) == 1
