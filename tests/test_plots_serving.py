"""plots.serving: the throughput curves, the measured step figure, latency against throughput and the
batching view (checked against hand-traced queues, closed forms, a fresh drawing, and for full
draws and text that leaves the figure). Chapter 08."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from accelbook import explore
from accelbook.models import serving as S
from accelbook.plots import serving as ps
from accelbook.units import fmt

# made-up step times: 1 ms plus 0.1 ms per sequence (or prompt token), batches 1 to 256
TABLE = S.StepTable(np.arange(1, 257), 1e-3 + 1e-4 * np.arange(1, 257))
FLAT = S.StepTable([1, 256], [1e-3, 1e-3])  # every batch takes 1 ms


def _view(table=TABLE, n=400, mean_output=8, **kw):
    return ps.BatchingView(table, table, n=n, prompt=4, mean_output=mean_output, latency_range=(1e-4, 1e2),
                           max_batch_limit=32, seed=3, **kw)


def _explorable():
    return explore.Explorable(lambda: _view(title="test"),
                              [explore.slider("rate", [50.0, 200.0, 800.0], value=200.0, static=[50.0, 200.0]),
                               explore.slider("max_batch", [1, 8, 32], value=8, static=[8, 32]),
                               explore.slider("max_wait", [0.0, 0.01], value=0.01, static=[0.0, 0.01]),
                               explore.choice("policy", list(S.POLICIES), value="dynamic")],
                              name="bat-server-test")


def test_batching_view_matches_a_fresh_drawing():
    _explorable().check()


def test_batching_view_needs_no_full_draw_after_the_first():
    assert _explorable().random_walk(20) == 1


def test_one_request_at_a_time_at_a_trickle_takes_one_step():
    # a batch of one, one-token outputs, gaps of about 1000 s: no queue, each request is its prefill, T(1) = 1 ms
    view = _view(FLAT, n=200, mean_output=1)
    caption = view.update(rate=1e-3, max_batch=1, max_wait=0.0, policy="fixed")
    assert f"p50 latency {fmt(1e-3, 's')}, p99 {fmt(1e-3, 's')}" in caption
    assert view.p50.get_xdata()[0] == pytest.approx(1e-3)
    assert view.p99.get_xdata()[0] == pytest.approx(1e-3)


def test_the_curve_is_the_fraction_of_requests_slower():
    view = _view()
    view.update(rate=200.0, max_batch=8, max_wait=0.01, policy="continuous")
    x, y = view.ccdf.get_xdata(), view.ccdf.get_ydata()
    n = 400
    assert np.allclose(y, 1 - np.arange(1, n) / n)  # the slowest request has none slower: left out of a log axis
    assert np.all(np.diff(x) >= 0)
    # the curve crosses 0.5 at the median latency
    assert x[n // 2 - 1] <= view.p50.get_xdata()[0] <= x[n // 2]


def test_full_fixed_batches_run_every_decode_step_at_the_maximum_batch():
    view = _view(n=400, mean_output=8)  # 400 requests, batches of 8: every batch full
    view.update(rate=1e4, max_batch=8, max_wait=0.0, policy="fixed")
    shares = view.hist.get_ydata()
    assert shares[7] == pytest.approx(1.0) and shares.sum() == pytest.approx(1.0)


def test_the_caption_counts_latencies_off_the_axis():
    view = ps.BatchingView(FLAT, FLAT, n=100, prompt=4, mean_output=1, latency_range=(1e-2, 1e2), max_batch_limit=8)
    caption = view.update(rate=1e-3, max_batch=1, max_wait=0.0, policy="fixed")  # every latency is 1 ms < 10 ms
    assert "100 of 100 latencies fall outside the axis" in caption


def test_the_status_text_stays_inside_the_figure():
    view = _view(title="a title of some length, as the chapter writes it for this device")
    view.update(rate=800.0, max_batch=32, max_wait=0.01, policy="dynamic")
    fig = view.figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    box = fig.bbox
    for text in fig.texts:
        ext = text.get_window_extent(renderer)
        assert box.x0 <= ext.x0 and ext.x1 <= box.x1 and box.y0 <= ext.y0 and ext.y1 <= box.y1, text.get_text()


def test_batching_view_names_bad_arguments():
    with pytest.raises(ValueError, match="latency_range"):
        ps.BatchingView(TABLE, latency_range=(1.0, 0.1), max_batch_limit=8)
    view = _view()
    with pytest.raises(ValueError, match="max_batch"):
        view.run(rate=10.0, max_batch=33, max_wait=0.0, policy="fixed")
    with pytest.raises(ValueError, match="policy"):
        view.run(rate=10.0, max_batch=8, max_wait=0.0, policy="greedy")


STEP = S.RooflineStep(flops_per_seq=2e9, flops_per_context=0.0, weight_bytes=2e9, bytes_per_seq=0.0,
                      bytes_per_context=0.0, peak_flops=1e14, bandwidth=1e12)  # b* = 2e9/1e12 / (2e9/1e14) = 100


def test_throughput_curves_draw_b_over_t_and_mark_the_limits():
    lim = S.BatchLimits(context=1.0, compute_batch=STEP.compute_bound_batch(), kv_batch=300)
    assert lim.compute_batch == 100
    fig = Figure()
    ax = fig.add_subplot()
    b = np.array([1, 10, 100, 1000], float)
    ps.throughput_curves(ax, {"chip": STEP}, {"chip": lim}, b)
    solid, dotted, compute, kv = ax.lines
    expected = b / np.maximum(2e9 * b / 1e14, 2e9 / 1e12)  # closed form of the roofline
    assert np.allclose(solid.get_ydata(), expected[:3]) and solid.get_linestyle() == "-"
    assert np.allclose(dotted.get_xdata(), [100, 1000]) and dotted.get_linestyle() == ":"
    assert compute.get_xdata()[0] == 100 and compute.get_ydata()[0] == pytest.approx(100 / 2e-3)
    assert kv.get_xdata()[0] == 300
    with pytest.raises(ValueError, match="limits"):
        ps.throughput_curves(ax, {"chip": STEP}, {"other": lim}, b)


def test_measured_steps_draw_the_medians_and_the_prediction():
    fig = Figure()
    ax = fig.add_subplot()
    ps.measured_steps(ax, [1, 2, 4], [1e-3, 1.1e-3, 1.5e-3], [0.9e-3, 1e-3, 1.4e-3], [1.2e-3, 1.2e-3, 1.7e-3],
                      [1e-3, 1e-3, 1.2e-3], label="test")
    assert np.allclose(ax.lines[0].get_ydata(), [1e-3, 1.1e-3, 1.5e-3])
    assert np.allclose(ax.lines[-1].get_ydata(), [1e-3, 1e-3, 1.2e-3])
    with pytest.raises(ValueError, match="low"):
        ps.measured_steps(ax, [1, 2], [1e-3, 1e-3], [2e-3, 1e-3], [2e-3, 2e-3], [1e-3, 1e-3], label="x")


def test_latency_vs_throughput_draws_each_runs_percentiles():
    # M/M/1 runs at two loads: each point is the run's throughput and its p99 / p50 latency
    runs = []
    for rate in (300.0, 600.0):
        req = S.make_requests(S.arrival_times(2000, rate, seed=1), service=lambda rng, n: rng.exponential(1e-3, n))
        runs.append(S.simulate(req, policy="fixed", max_batch=1))
    fig = Figure()
    ax = fig.add_subplot()
    ps.latency_vs_throughput(ax, {"M/M/1": runs})
    p99_line, p50_line = ax.lines
    assert np.allclose(p99_line.get_xdata(), [r.n / r.duration for r in runs])
    assert np.allclose(p99_line.get_ydata(), [np.percentile(r.end - r.arrival, 99) for r in runs])
    assert np.allclose(p50_line.get_ydata(), [np.median(r.end - r.arrival) for r in runs])
    with pytest.raises(ValueError, match="unit"):
        ps.latency_vs_throughput(ax, {"M/M/1": runs}, unit="bytes")


def test_batching_view_runs_the_documented_arrivals_and_outputs():
    # the docstring's draw, done by hand: a chapter that draws the same gets the same run
    view = _view(n=300, mean_output=6)
    outputs = np.random.default_rng([3, 7]).geometric(1 / 6, 300)
    arrivals = S.arrival_times(300, 1.0, seed=3) / 150.0
    req = S.make_requests(arrivals, prompt=4, output=outputs)
    expected = S.simulate(req, TABLE, policy="dynamic", max_batch=8, max_wait=0.01, prefill_time=TABLE)
    got = view.run(150.0, 8, 0.01, "dynamic")
    assert np.array_equal(got.output, outputs)
    assert np.allclose(got.latency, expected.latency)


def test_second_labels_use_whole_seconds_from_a_thousand_on():
    assert ps._seconds(1e4) == "10,000 s"
    assert ps._seconds(1000.0) == "1,000 s"
    assert ps._seconds(0.02) == fmt(0.02, "s", digits=3)
    # minor ticks: only 2 and 5 times a power of ten carry a label
    assert ps._minor_2_5(0.02) == fmt(0.02, "s", digits=3) and ps._minor_2_5(500.0) == fmt(500.0, "s", digits=3)
    assert ps._minor_2_5(0.09) == "" and ps._minor_2_5(0.007) == "" and ps._minor_2_5(3.0) == ""


def test_throughput_curves_of_neighbouring_chips_differ_in_colour():
    # the second and fourth curves (A100 and TPU v6e in chapter 08) must not share a hue family
    steps = {f"chip {i}": S.RooflineStep(2e9, 1e3, 1e9, 1e6, 1e3, 1e14 * (i + 1), 1e12) for i in range(4)}
    lims = {k: S.batch_limits(v, 1e11, 1e9, 1e5, context=128) for k, v in steps.items()}
    fig = Figure()
    ax = fig.add_subplot()
    ps.throughput_curves(ax, steps, lims, [1, 10, 100])
    colours = [ln.get_color() for ln in ax.lines if ln.get_linestyle() == "-"]
    assert len(set(colours)) == 4


def test_the_caption_gives_throughput_to_three_significant_figures():
    assert ps._sig3(0.95312) == "0.953" and ps._sig3(12.345) == "12.3" and ps._sig3(1234.5) == "1,230"
