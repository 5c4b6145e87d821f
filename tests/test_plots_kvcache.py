"""plots.kvcache: the memory-map view (checked against a fresh drawing, against the KV-cache model's
formulas worked by hand, and for full draws), the bars, the capacity curves and the measured sweep.
Chapter 09."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from accelbook import explore, specs
from accelbook.models import decoder
from accelbook.plots import kvcache as pk


def _explorable():
    return explore.Explorable(pk.MemoryMapView, [
        explore.choice("model", ["llama-3-8b", "llama-3-70b"], static=["llama-3-8b", "llama-3-70b"]),
        explore.choice("chip", ["h100-sxm", "l4"]),
        explore.slider("context", [1024, 8192, 32768], value=8192, static=[1024, 32768, 8192]),
        explore.slider("batch", [1, 8, 64], value=8, static=[1, 8]),
        explore.choice("kv_dtype", ["bf16", "fp8"])], name="kv-memory-map-test")


def test_memory_map_matches_a_fresh_drawing():
    _explorable().check()


def test_memory_map_needs_no_full_draw_after_the_first():
    assert _explorable().random_walk(25) == 1


def test_memory_map_shares_are_the_bytes_worked_by_hand():
    # Llama-3-8B on an H100 SXM, 8 sequences of 8,192 tokens, bf16 everywhere: per token
    # 2 (K, V) * 32 layers * 8 KV heads * 128 * 2 bytes; 8,192 tokens are 512 whole blocks of 16.
    view = pk.MemoryMapView()
    caption = view.update(model="llama-3-8b", chip="h100-sxm", context=8192, batch=8, kv_dtype="bf16")
    chip = specs.get_chip("h100-sxm")
    cap = chip.value("memory_capacity_visible")
    weights = 2 * decoder.model_params(decoder.get_model("llama-3-8b"))
    kv = 8 * 8192 * (2 * 32 * 8 * 128 * 2)
    w, k = (seg.get_width() for seg in view.segments[:2])
    assert w == pytest.approx(weights / cap)
    assert k == pytest.approx(kv / cap)
    assert view.segments[2].get_x() + view.segments[2].get_width() == pytest.approx(0.9)  # free ends at the usable line
    assert view.segments[4].get_width() == 0  # nothing overflows
    # the step reads weights and cache once over the bandwidth; compute at the bf16 peak is far smaller
    t_mem = (weights + kv) / chip.memory_bandwidth
    assert view.t_weights.get_width() + view.t_kv.get_width() == pytest.approx(1.0)
    assert view.t_kv.get_width() == pytest.approx(kv / chip.memory_bandwidth / t_mem)
    assert view.t_flops.get_width() < 0.2
    # the budget holds floor((0.9 cap - weights) / block) blocks; each sequence needs 512
    block = 16 * 2 * 32 * 8 * 128 * 2
    max_b = math.floor((0.9 * cap - weights) / block) // 512
    assert f"At most {max_b} sequences" in caption
    assert f"≤ {8 / t_mem:,.0f} tokens/s" in caption and "memory bandwidth" in caption


def test_memory_map_says_when_the_weights_do_not_fit():
    view = pk.MemoryMapView()
    caption = view.update(model="llama-3-70b", chip="l4", context=1024, batch=1, kv_dtype="bf16")
    assert "do not fit" in caption and "capacity" in caption
    assert view.segments[4].get_width() > 0  # the overflow is drawn, up to the edge
    assert view.segments[4].get_x() + view.segments[4].get_width() == pytest.approx(pk.MemoryMapView.XMAX)


def test_memory_map_says_when_the_weights_alone_do_not_fit():
    # Llama-3-70B in bf16 is 2 bytes per parameter, more than 0.9 of an H100's device-visible memory
    chip = specs.get_chip("h100-sxm")
    weights = 2 * decoder.model_params(decoder.get_model("llama-3-70b"))
    assert weights > 0.9 * chip.value("memory_capacity_visible")
    view = pk.MemoryMapView()
    caption = view.update(model="llama-3-70b", chip="h100-sxm", context=4096, batch=1, kv_dtype="bf16")
    assert "weights alone do not fit" in caption and "Step ≥" not in caption and "at most 0" not in caption.lower()
    assert "weights alone" in view.status.get_text()


def test_memory_map_says_not_one_sequence_when_none_fits():
    # Llama-3-8B on an L4: the bf16 weights fit, but one sequence of 131,072 tokens needs
    # 131,072 * 2 * 32 * 8 * 128 * 2 bytes = 16 GiB, more than the usable room left
    chip = specs.get_chip("l4")
    cap = chip.value("memory_capacity_visible")
    weights = 2 * decoder.model_params(decoder.get_model("llama-3-8b"))
    assert weights < 0.9 * cap < weights + 131072 * 2 * 32 * 8 * 128 * 2
    view = pk.MemoryMapView()
    caption = view.update(model="llama-3-8b", chip="l4", context=131072, batch=1, kv_dtype="bf16")
    assert "Not one sequence" in caption and "at most 0" not in caption.lower()
    assert "capacity binds" in caption


def test_memory_map_gives_every_size_in_gib():
    caption = pk.MemoryMapView().update(model="llama-3-8b", chip="h100-sxm", context=4096, batch=8, kv_dtype="bf16")
    assert "GiB" in caption and " GB" not in caption


def test_memory_map_text_stays_inside_the_figure():
    view = pk.MemoryMapView()
    view.update(model="llama-3-70b", chip="l4", context=32768, batch=64, kv_dtype="fp8")
    fig = view.figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    for t in [view.mem_text, *view.t_text, view.status]:
        box = t.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height, t.get_text()


def test_bars_draw_one_bar_per_row_with_its_value():
    fig = Figure()
    ax = fig.add_subplot()
    pk.bars(ax, [("a", 1000.0, "GQA"), ("b", 4000.0, "MHA"), ("c", 250.0, "GQA")], xlabel="bytes per token")
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == [250.0, 1000.0, 4000.0]
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert ticks["a"] > ticks["b"] > ticks["c"]  # first row on top
    assert len(ax.get_legend().get_texts()) == 2
    with pytest.raises(ValueError, match="rows"):
        pk.bars(ax, [("a", -1.0, "x")])
    assert ax.get_xscale() == "log"


def test_bars_on_a_linear_axis_keep_the_ratios_and_given_colours():
    fig = Figure()
    ax = fig.add_subplot()
    pk.bars(ax, [("a", 1000.0, "GQA"), ("b", 8000.0, "MHA")], log=False, colors={"MHA": "#123456"})
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    mha = [p for p in ax.patches if p.get_width() == 8000.0][0]
    gqa = [p for p in ax.patches if p.get_width() == 1000.0][0]
    assert matplotlib.colors.to_hex(mha.get_facecolor()) == "#123456"
    assert matplotlib.colors.to_hex(gqa.get_facecolor()) != "#123456"
    with pytest.raises(ValueError, match="log"):
        pk.bars(ax, [("a", 1.0, "x")], log=1)
    with pytest.raises(ValueError, match="colors"):
        pk.bars(ax, [("a", 1.0, "x")], colors=["red"])


def test_capacity_curves_skip_batches_that_do_not_fit():
    fig = Figure()
    ax = fig.add_subplot()
    pk.capacity_curves(ax, {"chip A": ([1, 2, 4], [8, 4, 0]), "chip B": ([1, 2], [0, 0])})
    (line,) = [l for l in ax.lines if len(l.get_xdata())]
    assert list(line.get_xdata()) == [1, 2] and list(line.get_ydata()) == [8, 4]
    assert any("weights do not fit" in t.get_text() for t in ax.get_legend().get_texts())



def test_capacity_curves_alternate_solid_and_dashed_lines():
    fig = Figure()
    ax = fig.add_subplot()
    pk.capacity_curves(ax, {"A": ([1, 2], [8, 4]), "B": ([1, 2], [8, 4])})
    assert [l.get_linestyle() for l in ax.lines] == ["-", "--"]


def test_measured_sweep_draws_median_band_and_prediction():
    fig = Figure()
    ax = fig.add_subplot()
    x = [128, 256, 512]
    pk.measured_sweep(ax, x, [1e-3, 2e-3, 4e-3], [0.9e-3, 1.8e-3, 3.6e-3], [1.1e-3, 2.2e-3, 4.4e-3], [1e-3, 2e-3, 4e-3])
    assert np.allclose(ax.lines[0].get_ydata(), [1e-3, 2e-3, 4e-3])
    with pytest.raises(ValueError, match="same length"):
        pk.measured_sweep(ax, x, [1e-3], [1e-3], [1e-3], [1e-3])


def test_step_curves_are_solid_where_the_batch_fits_and_dotted_beyond():
    fig = Figure()
    ax = fig.add_subplot()
    x = [1024, 2048, 4096, 8192]
    t = [1e-3, 2e-3, 4e-3, 8e-3]
    pk.step_curves(ax, x, {"batch 8": (t, [True, True, False, False])}, reference=("compute", [1e-4] * 4))
    solid, dotted, ref = ax.lines
    assert np.allclose(solid.get_ydata(), [1e-3, 2e-3, np.nan, np.nan], equal_nan=True)
    # the dotted part starts at the last point that fits, so the line is unbroken
    assert np.allclose(dotted.get_ydata(), [np.nan, 2e-3, 4e-3, 8e-3], equal_nan=True)
    assert dotted.get_linestyle() == ":" and np.allclose(ref.get_ydata(), 1e-4)
    with pytest.raises(ValueError, match="fits"):
        pk.step_curves(ax, x, {"b": (t, [1, 1, 0, 0])})
    with pytest.raises(ValueError, match="one value per context"):
        pk.step_curves(ax, x, {"b": (t[:2], [True, True])})
