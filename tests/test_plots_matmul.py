"""The figures of chapter 03 (accelbook.plots.matmul): measured rates against the overhead model, and
the explorable view that sets them next to a chip's prediction."""


import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from accelbook import explore, plots, specs  # noqa: E402
from accelbook.models.matmul import OverheadModel, chip_model  # noqa: E402
from accelbook.units import fmt  # noqa: E402


def _record(n, median, p10, p90, dtype="fp32", precision="default"):
    from types import SimpleNamespace

    flops = 2.0 * n**3
    return SimpleNamespace(n=n, flops=flops, flop_per_s=flops / median, dtype=dtype, precision=precision,
                           timing=SimpleNamespace(median=median, p10=p10, p90=p90))


def test_measured_rates_bars_span_the_p10_p90_rates():
    recs = [_record(64, 1e-4, 0.8e-4, 1.5e-4), _record(128, 5e-4, 4e-4, 1e-3)]
    fig, ax = plt.subplots()
    bars = plots.matmul.measured_rates(ax, recs, color="k", marker="o", label="m")
    assert bars is ax.containers[0]
    np.testing.assert_allclose(bars.lines[0].get_ydata(), [r.flop_per_s for r in recs])
    segs = bars.lines[2][0].get_segments()
    for seg, r in zip(segs, recs):
        # from the slowest run's rate (flops / p90) to the fastest's (flops / p10)
        np.testing.assert_allclose(sorted(seg[:, 1]), [r.flops / r.timing.p90, r.flops / r.timing.p10])
    plt.close(fig)


# -- the explorable view ----------------------------------------------------------------------------
SIZES = [64, 256, 1024]
RUNS = [("fp32", "default"), ("bf16", "default"), ("fp32", "highest")]
T0S = [1e-6, 1e-5, 1e-3]
UTILS = [0.25, 0.5, 1.0]
CHIPS = ["a100-40gb", "t4", "tpu-v5e"]


def _runs():
    runs, fits = {}, {}
    for k, (d, p) in enumerate(RUNS):
        fit = OverheadModel(2e-5 * (k + 1), 5e10 / (k + 1))
        runs[d, p] = [_record(n, float(fit.seconds(2.0 * n**3)), 0.9 * float(fit.seconds(2.0 * n**3)),
                              1.3 * float(fit.seconds(2.0 * n**3)), d, p) for n in SIZES]
        fits[d, p] = fit
    return runs, fits


def _view():
    runs, fits = _runs()
    return plots.matmul.MatmulModelView(runs, fits, [specs.get_chip(k) for k in CHIPS], device_label="this CPU",
                                        t0_values=T0S, utilizations=UTILS)


def _explorable():
    return explore.Explorable(_view, [
        explore.choice("run", [(f"{d} {p}", (d, p)) for d, p in RUNS]),
        explore.slider("n", SIZES, value=1024, static=[64, 1024]),
        explore.choice("chip", CHIPS, static=["a100-40gb", "tpu-v5e"]),
        explore.slider("utilization", UTILS, value=1.0, static=[0.5, 1.0]),
        explore.slider("t0", T0S, value=1e-5, static=[1e-5])], name="mm-model-test", dpi=60)


def test_the_view_matches_a_full_redraw_at_the_checked_settings():
    assert _explorable().check() >= 8


def test_the_view_shows_the_measured_point_the_fit_and_the_chips_prediction():
    view = _view()
    runs, fits = _runs()
    view.update(run=("fp32", "default"), n=1024, chip="a100-40gb", utilization=0.5, t0=1e-5)
    here, a100 = runs["fp32", "default"][2], specs.get_chip("a100-40gb")
    pred = chip_model(a100, "fp32", t0=1e-5, utilization=0.5)
    assert pred.peak == 0.5 * a100.peak_flops["tf32"]  # fp32 at the default precision runs as TF32
    predicted = fmt(float(pred.seconds(2 * 1024**3)), "s")
    assert view.title.get_text() == (f"this CPU, n = 1024: {fmt(here.timing.median, 's')} measured\n"
                                     f"{a100.name}, predicted by the model: {predicted}")
    np.testing.assert_allclose(view.ring.get_xydata(), [[1024, here.flop_per_s]])
    flops = 2 * view.n_axis**3
    np.testing.assert_allclose(view.pred_line.get_ydata(), pred.rate(flops))
    np.testing.assert_allclose(view.fit_line.get_ydata(), fits["fp32", "default"].rate(flops))
    assert view.peak_line.get_ydata()[0] == pytest.approx(a100.peak_flops["tf32"])  # the peak before utilization
    labels = [t.get_text() for t in view.legend.get_texts()]
    assert labels == ["its fitted model", "n = 1024", f"{a100.name}: model, 50 % of peak",
                      f"{a100.name}: spec-sheet peak", "fp32 (default), measured on this CPU"]
    shown = [run for run, (_bars, arts) in view.measured.items() if arts[0].get_visible()]
    assert shown == [("fp32", "default")]
    # no spec-sheet peak: fp32 at 'highest' on a TPU
    view.update(run=("fp32", "highest"), n=64, chip="tpu-v5e", utilization=1.0, t0=1e-5)
    v5e = specs.get_chip("tpu-v5e")
    assert view.title.get_text().endswith(f"{v5e.name}: no spec-sheet peak for fp32 at precision 'highest'")
    assert not view.pred_line.get_visible() and not view.peak_line.get_visible()
    assert len(view.legend.get_texts()) == 3
    with pytest.raises(ValueError, match="n=100"):
        view.update(run=("fp32", "default"), n=100, chip="t4", utilization=1.0, t0=1e-5)


def test_the_axes_are_fixed_and_hold_every_setting():
    view = _view()
    view.update(run=("fp32", "default"), n=64, chip="t4", utilization=1.0, t0=1e-5)
    xlim, ylim = view.ax.get_xlim(), view.ax.get_ylim()
    for run in RUNS:
        for key in CHIPS:
            for u in UTILS:
                for t0 in T0S:
                    view.update(run=run, n=256, chip=key, utilization=u, t0=t0)
                    assert view.ax.get_xlim() == xlim and view.ax.get_ylim() == ylim
                    for line in (view.pred_line, view.peak_line, view.fit_line):
                        if line.get_visible():
                            y = line.get_ydata()
                            assert ylim[0] <= np.min(y) and np.max(y) <= ylim[1]
                    assert ylim[0] <= view.ring.get_ydata()[0] <= ylim[1]


def test_random_moves_never_need_a_full_draw():
    assert _explorable().random_walk(24, seed=1) == 1


def test_the_caption_leads_with_the_comparison_it_computes():
    view = _view()
    runs, _fits = _runs()
    a100 = specs.get_chip("a100-40gb")
    # n = 64, t0 = 1 ms: the A100's model time is t0 + 2n³/P, about 1 ms; measured here: the fit's time
    cap = view.update(run=("fp32", "default"), n=64, chip="a100-40gb", utilization=1.0, t0=1e-3)
    pred = chip_model(a100, "fp32", t0=1e-3)
    ratio = runs["fp32", "default"][0].timing.median / float(pred.seconds(2.0 * 64**3))
    assert ratio < 1  # the chip's assumed t0 (1 ms) exceeds this device's whole call
    assert cap.startswith("At n = 64 and t0 = 1 ms")
    assert f"{1 / ratio:.1f}× slower" in cap
    assert f"half its peak at n ≈ {pred.n_half:.0f}" in cap
    cap = view.update(run=("fp32", "default"), n=1024, chip="a100-40gb", utilization=1.0, t0=1e-6)
    pred = chip_model(a100, "fp32", t0=1e-6)
    ratio = runs["fp32", "default"][2].timing.median / float(pred.seconds(2.0 * 1024**3))
    assert ratio >= 2 and f"{ratio:.0f}× faster" in cap
    cap = view.update(run=("fp32", "highest"), n=64, chip="tpu-v5e", utilization=1.0, t0=1e-5)
    assert "no spec-sheet peak" in cap


def test_the_caption_blames_the_term_that_sets_each_time():
    """At a small n the chip's model time is all t0; a gap to this device is then this device's own work
    (past its n½) or its own overhead, never the chip's peak."""
    view = _view()
    runs, fits = _runs()
    fit = fits["fp32", "default"]
    a100 = specs.get_chip("a100-40gb")
    n = 1024
    work_a100 = 2.0 * n**3 / chip_model(a100, "fp32", t0=fit.t0).peak
    assert work_a100 < fit.t0 < 2.0 * n**3 / fit.peak  # t0 sets the chip's time, work sets this device's
    cap = view.update(run=("fp32", "default"), n=n, chip="a100-40gb", utilization=1.0, t0=fit.t0)
    assert "faster" in cap and "its peak, not t0" not in cap
    assert "this device's own work" in cap and f"n½ ≈ {fit.n_half:.0f}" in cap
    # a tiny assumed t0 at the same n: the chip's work sets its time, and the caption says so
    cap = view.update(run=("fp32", "default"), n=n, chip="a100-40gb", utilization=1.0, t0=min(T0S))
    assert min(T0S) < work_a100 and "its peak, not t0" in cap
