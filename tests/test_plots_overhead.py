"""The figures of chapter 05 (accelbook.plots.overhead): the explorable view of an eager and a fused
chain of elementwise operations."""


import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from accelbook import explore, plots  # noqa: E402
from accelbook.models import overhead  # noqa: E402
from accelbook.units import fmt  # noqa: E402

T_OP, T0 = 20e-6, 12e-6
OPS, SIZES = [1, 2, 4, 16, 64, 256], [10**2, 10**4, 10**6, 10**9]
CHIPS = {"this": ("this CPU (measured above)", 1e10), "fast": ("Fast chip", 3e12),
         "slow": ("Slow chip", 3e7)}  # the slow chip's dotted line falls off the axis
COUNTS = [1, 4, 16, 64]
MEASURED = {"JAX, eager": (COUNTS, [25e-6 * n for n in COUNTS]), "JAX, jax.jit": (COUNTS, [14e-6] * 4)}


def _view():
    return plots.overhead.ChainView(CHIPS, t_op=T_OP, t0=T0, ops=OPS, sizes=SIZES, measured=MEASURED,
                                    measured_at=("this", 100))


def _explorable():
    return explore.Explorable(_view, [
        explore.slider("n", OPS, value=16, static=[1, 16]),
        explore.slider("N", SIZES, value=100, static=[100, 10**9]),
        explore.choice("chip", list(CHIPS), value="this", static=["this", "fast"])], name="chain-test", dpi=60)


def test_the_view_matches_a_full_redraw_at_the_checked_settings():
    assert _explorable().check() >= 5


@pytest.mark.parametrize("n, N, chip", [(16, 100, "this"), (256, 10**9, "fast"), (1, 10**4, "slow")])
def test_the_dots_title_and_caption_are_the_models(n, N, chip):
    view = _view()
    caption = view.update(n=n, N=N, chip=chip)
    name, w = CHIPS[chip]
    eager = overhead.chain_time(n, N, t_op=T_OP, t0=T0, bandwidth=w, fused=False)
    fused = overhead.chain_time(n, N, t_op=T_OP, t0=T0, bandwidth=w, fused=True)
    for ax, x in ((view.left, n), (view.right, N)):
        np.testing.assert_allclose(view.dots[ax, "eager"].get_xydata(), [[x, eager]])
        np.testing.assert_allclose(view.dots[ax, "fused"].get_xydata(), [[x, fused]])
    # the left curve passes through the dot at n, the right one at N
    left = dict(zip(view.dense_n, view.curves[view.left, "eager"].get_ydata()))
    if n in left:
        assert left[n] == pytest.approx(eager)
    title = view.title.get_text()
    assert title.startswith(f"{name}\nn = {n}, N = {N:,}: eager {fmt(eager, 's')}, fused {fmt(fused, 's')}")
    memory = 8 * N / w  # one pass over float32: read and write
    assert caption.endswith(f"{'overhead' if T_OP >= memory else 'bandwidth'}-bound.")
    # the measured chain (100 elements on this device) appears only there, with its legend entries
    shown = (chip, N) == ("this", 100)
    assert all(line.get_visible() == shown for line in view.crosses)
    labels = [t.get_text() for t in view.legends[view.left].get_texts()]
    measured = ["measured, JAX, eager", "measured, JAX, jax.jit"]
    assert labels == ["eager, model", "fused, model"] + (measured if shown else [])
    # the dotted line: where one eager operation's memory time equals t_op
    x_half = T_OP * w / 8
    assert view.crossover.get_visible() == (SIZES[0] <= x_half <= SIZES[-1])
    if view.crossover.get_visible():
        assert view.crossover.get_xdata()[0] == pytest.approx(x_half)
        label = view.legends[view.right].get_texts()[-1].get_text()
        assert label == f"2bN/W = t_op: N = {fmt(x_half, '').strip()} elements"
    else:
        assert view.legends[view.right] is None


def test_the_time_axis_is_fixed_and_holds_every_setting():
    view = _view()
    view.update(n=1, N=100, chip="this")
    ylim = view.left.get_ylim()
    assert ylim[0] <= min(T_OP, T0, *MEASURED["JAX, eager"][1])
    for chip in CHIPS:
        for n in OPS:
            for N in SIZES:
                view.update(n=n, N=N, chip=chip)
                assert view.left.get_ylim() == ylim == view.right.get_ylim()
                for line in view.curves.values():
                    assert ylim[0] <= line.get_ydata().min() and line.get_ydata().max() <= ylim[1]
    assert np.log10(ylim).tolist() == [round(v) for v in np.log10(ylim)]  # whole decades


def test_random_moves_never_need_a_full_draw():
    assert _explorable().random_walk(24, seed=2) == 1


def test_legends_are_built_once_and_drawn_from_their_kept_picture():
    """A legend seen before is put back, not rebuilt; its picture is kept (frozen in the view's
    TextStamps) also when the explorable's renderer draws it, and the frames still equal a full
    redraw."""
    ex = _explorable()
    ex.frame(n=16, N=100, chip="this")               # the measured chains: four entries on the left
    view = ex._renderer.view
    first = view.legends[view.left], view.legends[view.right]
    assert all(hasattr(legend, "_accelbook_stamp") for legend in first)
    ex.frame(n=16, N=10**4, chip="fast")
    assert view.legends[view.left] is not first[0]
    assert view.left.get_legend() is view.legends[view.left]   # the axes draw the current one only
    got, _ = ex.frame(n=4, N=100, chip="this")
    assert (view.legends[view.left], view.legends[view.right]) == first
    assert view.left.get_legend() is first[0]
    want, _ = ex.reference(n=4, N=100, chip="this")
    assert explore.difference(got, want) <= explore.TOLERANCE["fraction"]
    assert ex._renderer.full_draws == 1


def test_the_title_is_drawn_word_by_word_at_whole_pixels():
    ex = _explorable()
    for n in (1, 16, 256):
        ex.frame(n=n)
    keys = list(ex._renderer.stamps.stamps)
    assert any(key[0] == "eager" for key in keys)           # a word of the title, kept once
    assert all(key[-2:] == (0, 0) for key in keys if key[0] in ("eager", "fused"))


def test_trace_timeline_one_panel_per_region_and_bars_per_kind():
    from accelbook.measure.overhead import Trace, TraceEvent

    ev = (TraceEvent("host: Python thread", "A", 0.0, 1e-3, "region"),
          TraceEvent("host: Python thread", "PjitFunction(f)", 1e-4, 1e-4, "dispatch"),
          TraceEvent("host: XLA CPU executor", "fusion", 2e-4, 5e-4, "kernel"),
          TraceEvent("host: Python thread", "B", 2e-3, 1e-2, "region"),
          TraceEvent("/device:GPU:0: Stream #1", "gemm", 3e-3, 4e-3, "kernel"))
    fig = plots.overhead.trace_timeline(Trace(ev))
    axes = fig.get_axes()
    assert len(axes) == 2
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["Python thread", "XLA CPU executor"]
    assert "50 %" in axes[0].get_title(loc="left") and "40 %" in axes[1].get_title(loc="left")
    assert len(axes[0].collections) == 2 and len(axes[1].collections) == 1
    with pytest.raises(ValueError):
        plots.overhead.trace_timeline(Trace(()))


def test_draw_regimes_colours_each_stretch_by_the_term_that_sets_it():
    import matplotlib.pyplot as plt

    # a triad F = 2N, Q = 12N with t0 = 1e-5 s, W = 1.2e9 B/s: overhead-bound below N = t0·W/12 = 1000
    families = {"triad": ("-", lambda N, b: (2 * N, 3 * b * N))}
    fig, ax = plt.subplots()
    N = np.geomspace(10, 1e6, 200)
    plots.overhead.draw_regimes(ax, families, 1e-5, 1e15, 1.2e9, 4, N)
    segments = [(line.get_color(), line.get_xdata()) for line in ax.get_lines() if len(line.get_xdata()) > 2]
    colors = {c: x for c, x in segments}
    assert set(colors) == {plots.overhead.REGIME_COLORS["overhead"], plots.overhead.REGIME_COLORS["bandwidth"]}
    assert colors[plots.overhead.REGIME_COLORS["overhead"]].max() <= 1000 * 1.06
    assert colors[plots.overhead.REGIME_COLORS["bandwidth"]].min() >= 1000 / 1.06
    leg = plots.overhead.regime_legend(ax, families)
    assert [t.get_text() for t in leg.get_texts()] == ["overhead-bound", "bandwidth-bound", "compute-bound", "triad"]
    plt.close(fig)
