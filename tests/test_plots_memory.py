"""plots.memory: the hierarchy figure, the sweep figure, the trace panels and the tiling view
(checked against a fresh drawing, against the cache simulator, and for full draws). Chapter 07."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from accelbook import explore
from accelbook.measure.harness import Timing
from accelbook.measure.memory import SweepPoint
from accelbook.models import memory as M
from accelbook.plots import memory as pm

N, LINE, CAPS, TILES = 16, 4, [2, 4, 8, 16, 32, 64, 128, 192], [2, 4, 8]


@pytest.fixture(scope="module")
def curves():
    sds = {"ijk": M.StackDistances(M.matmul_trace(N, "ijk"), LINE),
           "ikj": M.StackDistances(M.matmul_trace(N, "ikj"), LINE)}
    sds.update({("tiled", t): M.StackDistances(M.matmul_trace(N, "tiled", t), LINE) for t in TILES})
    return {k: sd.curve(CAPS) for k, sd in sds.items()}


def _explorable(curves):
    make = lambda: pm.TilingView(curves, CAPS, n=N, line_words=LINE, peak=1e11, bandwidth=1e10, roof_label="test")
    return explore.Explorable(make, [explore.slider("tile", TILES, value=4, static=[2, 4, 8]),
                                     explore.slider("capacity", CAPS, value=16, static=[2, 16, 192])],
                              name="mem-tiling-test")


def test_tiling_view_matches_a_fresh_drawing(curves):
    _explorable(curves).check()


def test_tiling_view_shows_the_simulators_words_and_the_roofline(curves):
    view = pm.TilingView(curves, CAPS, n=N, line_words=LINE, peak=1e11, bandwidth=1e10)
    caption = view.update(tile=8, capacity=32)
    i = CAPS.index(32)
    expected = [curves["ijk"][i], curves["ikj"][i], curves["tiled", 8][i]]
    assert [d.get_ydata()[0] for d in view.dots] == pytest.approx(expected)
    for rdot, q in zip(view.roof_dots, expected):
        intensity = 2 * N**3 / (4 * q)
        assert rdot.get_xdata()[0] == pytest.approx(intensity)
        assert rdot.get_ydata()[0] == pytest.approx(min(1e11, intensity * 1e10))
    assert np.array_equal(view.tiled.get_ydata(), curves["tiled", 8])
    assert "tile 8×8" in caption and f"{32} lines" in caption


def test_tiling_view_needs_no_full_draw_after_the_first(curves):
    ex = _explorable(curves)
    assert ex.random_walk(25) == 1


def test_hierarchy_figure_draws_every_level_of_each_chip():
    chips = {"H100": M.hierarchy("h100-sxm"), "v5e": M.hierarchy("tpu-v5e")}
    fig = pm.hierarchy_figure(chips)
    axes = fig.axes
    assert len(axes) == 2
    for ax, levels in zip(axes, chips.values()):
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == len([lv for lv in levels if lv.capacity or lv.key == "host"])
        assert any("HBM" in t for t in texts)
    h100_texts = " ".join(t.get_text() for t in axes[0].texts)
    assert "700 cycles" in h100_texts  # the measured HBM latency is drawn


def test_sweep_draws_the_points_the_bands_and_the_cache_lines():
    pts = [SweepPoint(s, 2, Timing((1e-3, 2e-3, 3e-3))) for s in (4096, 65536, 2**20)]
    fig = Figure()
    ax = fig.add_subplot()
    pm.sweep(ax, pts, [("L1d", 32768), ("L2", 2**19)], label="test")
    line = ax.lines[0]
    assert np.allclose(line.get_ydata(), [p.bytes_per_s for p in pts])
    assert [t.get_text() for t in ax.texts] == ["L1d", "L2"]


def test_trace_panels_count_misses():
    trace = M.matmul_trace(4, "ijk")
    sd = M.StackDistances(trace, 1)
    hit = (sd.distances >= 0) & (sd.distances < 4)
    fig = Figure()
    pm.trace_panels(fig, [("naive", trace, hit)], 4, 100)
    assert f"{np.count_nonzero(~hit[:100])} misses" in fig.axes[0].get_title()
