"""plots.collectives: the collective calculator view (checked against a fresh drawing, against
alpha-beta costs worked by hand, and for full draws), the bandwidth ladder, the ring schedule
(replayed on NumPy ranks), the alpha-beta figure, the measured-sweep figure, the degree curves and
the plan bars. Chapter 10."""

import types

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from accelbook import explore
from accelbook.models import collectives as C
from accelbook.plots import collectives as pc

LINKS = {"fast": 400e9, "slow": 50e9}
ALPHA = 5e-6
SIZES = [4.0**k for k in range(5, 14)]


def _view():
    return pc.CollectiveView(LINKS, ALPHA, SIZES, max_ranks=64)


def _explorable():
    return explore.Explorable(_view, [
        explore.choice("collective", [("ring", ("allreduce", "ring")), ("rd", ("allreduce", "recursive_doubling")),
                                      ("ag", ("allgather", "ring")), ("a2a", ("alltoall", "pairwise"))],
                       static=[("allreduce", "ring"), ("allgather", "ring"), ("alltoall", "pairwise")]),
        explore.slider("ranks", [2, 4, 8, 16, 64], value=8, static=[8, 64]),
        explore.slider("size", SIZES, value=4.0**9, static=[4.0**9, 4.0**13]),
        explore.choice("link", list(LINKS), static=list(LINKS))], name="ic-collectives-test")


def _ax():
    return Figure().add_subplot()


def test_view_matches_a_fresh_drawing():
    _explorable().check()


def test_view_needs_no_full_draw_after_the_first():
    assert _explorable().random_walk(25) == 1


def test_view_shows_the_ring_cost_worked_by_hand():
    # ring all-reduce of 1 MiB on 8 ranks over 50 GB/s: 14 messages of alpha, 2·7/8 of the bytes
    view = _view()
    n = 4.0**10
    caption = view.update(collective=("allreduce", "ring"), ranks=8, size=n, link="slow")
    t = 14 * ALPHA + 1.75 * n / 50e9
    assert view.dot.get_ydata()[0] == pytest.approx(t)
    busbw = n / t * 1.75
    assert view.busdot.get_ydata()[0] == pytest.approx(busbw)
    assert view.linkline.get_ydata()[0] == pytest.approx(50e9)
    ring = view.lines["ring"]
    assert ring.get_visible() and ring.get_linewidth() > view.lines["tree"].get_linewidth()
    assert ring.get_ydata()[-1] == pytest.approx(14 * ALPHA + 1.75 * SIZES[-1] / 50e9)
    assert not view.lines["pairwise"].get_visible()  # not an all-reduce algorithm
    assert "all-reduce by ring on 8 ranks" in caption and "slow" in caption
    # the lower bound: ⌈lg p⌉ α + 2(p−1)/p n β
    assert view.bound.get_ydata()[0] == pytest.approx(3 * ALPHA + 1.75 * SIZES[0] / 50e9)
    # the caption names the fastest of the four all-reduce algorithms, costed by hand
    rd = 3 * ALPHA + 3 * n / 50e9
    rab = 6 * ALPHA + 1.75 * n / 50e9
    best = min({"ring": t, "recursive doubling": rd, "Rabenseifner": rab, "binomial tree": 6 * ALPHA + 6 * n / 50e9}.items(),
               key=lambda kv: kv[1])[0]
    assert f"Fastest algorithm at this size: {best}." in caption


def test_view_hides_power_of_two_algorithms_and_rejects_them_on_other_counts():
    view = _view()
    view.update(collective=("allreduce", "ring"), ranks=6, size=SIZES[0], link="fast")
    assert not view.lines["recursive_doubling"].get_visible() and not view.lines["rabenseifner"].get_visible()
    with pytest.raises(ValueError, match="ranks=6"):
        view.update(collective=("allreduce", "rabenseifner"), ranks=6, size=SIZES[0], link="fast")
    with pytest.raises(ValueError, match="op"):
        view.update(collective=("broadcast", "tree"), ranks=8, size=SIZES[0], link="fast")
    with pytest.raises(ValueError, match="link"):
        view.update(collective=("allreduce", "ring"), ranks=8, size=SIZES[0], link="pcie")


def test_view_text_fits_in_the_figure():
    view = _view()
    view.update(collective=("alltoall", "pairwise"), ranks=64, size=SIZES[-1], link="slow")
    fig = view.figure
    fig.canvas.draw()
    box = fig.bbox
    for text in (view.status, view.busnote):
        bb = text.get_window_extent()
        assert box.x0 <= bb.x0 and bb.x1 <= box.x1 and box.y0 <= bb.y0 and bb.y1 <= box.y1


def test_ring_schedule_replayed_on_numpy_ranks_gives_the_sum():
    # the chunks the grid names, replayed: reduce-scatter adds, all-gather copies
    p = 5
    ax = _ax()
    pc.ring_schedule(ax, p)
    labels = {}
    for t in ax.texts:
        x, y = t.get_position()
        if t.get_text().startswith("c"):
            labels[(int(round(y)), int(round(x)))] = t.get_text()
    assert len(labels) == p * 2 * (p - 1)
    x = np.arange(p * p, dtype=float).reshape(p, p) ** 2  # x[rank, chunk]
    buf = x.copy()
    for s in range(2 * (p - 1)):
        msgs = []
        for r in range(p):
            text = labels[(r, s)]
            assert text.endswith("+") == (s < p - 1)
            c = int(text.strip("c+"))
            msgs.append((r, c, buf[r, c]))
        for r, c, v in msgs:
            d = (r + 1) % p
            buf[d, c] = buf[d, c] + v if s < p - 1 else v
    assert np.allclose(buf, x.sum(axis=0))


def test_ring_schedule_first_step_sends_own_chunk_and_titles_stay_apart():
    # the rule the chapter states: in step 1 rank r sends chunk r; then it forwards what it received
    p = 4
    fig = Figure(figsize=(7.0, 3.0), layout="constrained")
    ax = fig.add_subplot()
    pc.ring_schedule(ax, p)
    cells = {(int(round(t.get_position()[1])), int(round(t.get_position()[0]))): t.get_text()
             for t in ax.texts if t.get_text().startswith("c")}
    for r in range(p):
        assert cells[(r, 0)] == f"c{r}+"
        for s in range(1, p - 1):  # forwards the chunk its left-hand neighbour sent the step before
            assert cells[(r, s)] == cells[((r - 1) % p, s - 1)]
    titles = [t for t in ax.texts if not t.get_text().startswith("c")]
    assert len(titles) == 2
    fig.canvas.draw()
    a, b = sorted((t.get_window_extent() for t in titles), key=lambda bb: bb.x0)
    assert a.x1 < b.x0  # the two panel titles do not run together


def test_view_legend_names_only_the_drawn_lines():
    view = _view()
    for collective, ranks, expect in ((("allreduce", "ring"), 8, {"ring", "binomial tree", "recursive doubling",
                                                                  "Rabenseifner", "lower bound"}),
                                      (("allreduce", "ring"), 6, {"ring", "binomial tree", "lower bound"}),
                                      (("allgather", "ring"), 8, {"ring", "recursive doubling", "lower bound"}),
                                      (("alltoall", "pairwise"), 8, {"pairwise", "lower bound"})):
        view.update(collective=collective, ranks=ranks, size=SIZES[0], link="fast")
        shown = [leg for leg in view.legends.values() if leg.get_visible()]
        assert len(shown) == 1
        assert {t.get_text() for t in shown[0].get_texts()} == expect
        drawn = {pc.alg_name(a) for a, line in view.lines.items() if line.get_visible()} | {"lower bound"}
        assert drawn == expect


def test_alg_name_writes_display_names():
    assert pc.alg_name("tree") == "binomial tree"
    assert pc.alg_name("recursive_doubling") == "recursive doubling"
    assert pc.alg_name("rabenseifner") == "Rabenseifner"


def test_ring_schedule_rejects_rings_it_cannot_draw():
    with pytest.raises(ValueError, match="p=1"):
        pc.ring_schedule(_ax(), 1)
    with pytest.raises(ValueError, match="p"):
        pc.ring_schedule(_ax(), 9)


def test_bandwidth_ladder_draws_one_way_bars_in_order():
    bars = [("HBM", 3e12, "memory", "", ""), ("NVLink", 450e9, "scale-up", "quoted 900 GB/s, both ways", "measured: 2 µs"),
            ("PCIe", 63e9, "host", "", "")]
    ax = _ax()
    pc.bandwidth_ladder(ax, bars)
    widths = [patch.get_width() for patch in ax.patches]
    assert widths == pytest.approx([3e12, 450e9, 63e9])
    ys = [patch.get_y() + patch.get_height() / 2 for patch in ax.patches]
    assert ys == sorted(ys, reverse=True)  # first bar on top
    texts = [t.get_text() for t in ax.texts]
    assert texts[1] == "450 GB/s one way\nmeasured: 2 µs"
    assert all("one way" in t for t in texts[1:])
    assert texts[0].endswith("read + write")  # memory is a shared bus, not a duplex link
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "NVLink\nquoted 900 GB/s, both ways" in ticks
    with pytest.raises(ValueError, match="bars"):
        pc.bandwidth_ladder(_ax(), [("x", 1e9, "memory", "")])
    with pytest.raises(ValueError, match=r"bars\[0\]\[2\]"):
        pc.bandwidth_ladder(_ax(), [("x", 1e9, "wires", "", "")])


def test_alpha_beta_draws_the_models_and_marks_the_crossings():
    fig = Figure()
    ax_t, ax_b = fig.subplots(2, 1)
    n = np.geomspace(8, 2**30, 50)
    beta = 1 / 100e9
    got = pc.alpha_beta(ax_t, ax_b, "allreduce", 8, ALPHA, beta, n,
                        pairs={"tree": "ring", "recursive_doubling": "rabenseifner"})
    # tree 6α + 6nβ vs ring 14α + 1.75nβ: n* = 8α / (4.25β)
    assert got[("tree", "ring")] == pytest.approx(8 * ALPHA / (4.25 * beta))
    # recursive doubling 3α + 3nβ vs Rabenseifner 6α + 1.75nβ: n* = 3α / (1.25β)
    assert got[("recursive_doubling", "rabenseifner")] == pytest.approx(3 * ALPHA / (1.25 * beta))
    ring = next(line for line in ax_t.lines if line.get_label() == "ring")
    assert ring.get_ydata() == pytest.approx(14 * ALPHA + 1.75 * n * beta)
    bound = next(line for line in ax_t.lines if line.get_label() == "lower bound")
    assert bound.get_ydata() == pytest.approx(3 * ALPHA + 1.75 * n * beta)
    # busbw of the ring tends to the link's one-way rate
    assert ax_b.lines[0].get_ydata()[-1] == pytest.approx(100e9, rel=0.01)
    with pytest.raises(ValueError, match="p=1"):
        pc.alpha_beta(ax_t, ax_b, "allreduce", 1, ALPHA, beta, n)
    with pytest.raises(ValueError, match="sizes"):
        pc.alpha_beta(ax_t, ax_b, "allreduce", 8, ALPHA, beta, [10, 5])


def test_alpha_beta_draws_a_published_sweep_as_measured_points():
    sweep = C.get_sweep("a100-allreduce-8")
    fig = Figure()
    ax_t, ax_b = fig.subplots(2, 1)
    pc.alpha_beta(ax_t, ax_b, "allreduce", 8, ALPHA, 1 / 300e9, np.geomspace(8, 2**34, 20), published=sweep)
    measured = [line for line in ax_t.lines if line.get_label().startswith("measured")]
    assert len(measured) == 1 and list(measured[0].get_xdata()) == list(sweep.n_bytes)


def _fake_sweep(op, p, alpha, beta, alg):
    n = np.array([1e3, 1e4, 1e5, 1e6])
    t = C.collective_time(op, alg, n, p, alpha, beta)
    return types.SimpleNamespace(op=op, p=p, n_bytes=n, seconds=t, algbw=n / t, busbw=C.bus_bandwidth(op, n, t, p))


def test_measured_collectives_draws_points_fits_and_busbw():
    sweeps = [_fake_sweep("allreduce", 8, 1e-4, 1e-9, "ring"), _fake_sweep("permute", 8, 2e-4, 2e-9, "direct")]
    fits = [types.SimpleNamespace(alpha=1e-4, beta=1e-9), types.SimpleNamespace(alpha=2e-4, beta=2e-9)]
    fig = Figure()
    ax_t, ax_b = fig.subplots(2, 1)
    pc.measured_collectives(ax_t, ax_b, sweeps, fits, label="test")
    assert len(ax_t.lines) == 4 and len(ax_b.lines) == 2
    fit_line = ax_t.lines[1]
    x = fit_line.get_xdata()
    assert fit_line.get_ydata() == pytest.approx(14e-4 + 1.75 * x * 1e-9)  # the ring model with the fit
    assert ax_t.lines[3].get_ydata() == pytest.approx(2e-4 + ax_t.lines[3].get_xdata() * 2e-9)  # permute: α + nβ
    assert ax_b.lines[0].get_ydata() == pytest.approx(sweeps[0].busbw)
    assert ax_b.lines[1].get_ydata() == pytest.approx(sweeps[1].busbw)
    # one legend entry per collective, naming its fit
    labels = [t.get_text() for t in ax_t.get_legend().get_texts()]
    assert len(labels) == 2 and "all-reduce" in labels[0] and "permute" in labels[1]
    assert "1/β 1 GB/s" in labels[0] and "α 100 µs" in labels[0]
    with pytest.raises(ValueError, match="same length"):
        pc.measured_collectives(ax_t, ax_b, sweeps, fits[:1])
    with pytest.raises(TypeError, match="sweeps"):
        pc.measured_collectives(ax_t, ax_b, [object()], fits[:1])


def test_degree_curves_and_plan_bars():
    ax = _ax()
    pc.degree_curves(ax, [2, 4, 8], {"a": [0.1, 0.5, 2.0], "b": [1, 2, 4]})
    assert list(ax.lines[0].get_ydata()) == [0.1, 0.5, 2.0]
    assert ax.lines[-1].get_ydata()[0] == 1.0  # the threshold line
    with pytest.raises(ValueError, match="curves"):
        pc.degree_curves(_ax(), [2, 4], {"a": [1.0]})
    ax = _ax()
    pc.plan_bars(ax, [("one", 0.010, 0.002, "100 tokens/s"), ("two", 0.004, 0.003, "200 tokens/s")])
    busy, comm = ax.patches[:2], ax.patches[2:]
    assert [b.get_width() for b in busy] == pytest.approx([10.0, 4.0])  # milliseconds
    assert [c.get_x() for c in comm] == pytest.approx([10.0, 4.0])  # stacked on the busy time
    assert [t.get_text() for t in ax.texts] == ["100 tokens/s", "200 tokens/s"]
    with pytest.raises(ValueError, match=r"plans\[0\]\[1\]"):
        pc.plan_bars(_ax(), [("one", -1.0, 0.0, "")])


def test_view_says_when_the_chosen_algorithm_meets_the_lower_bound():
    # all-gather by recursive doubling: lg p α + (p−1)/p n β, exactly the lower bound
    view = _view()
    caption = view.update(collective=("allgather", "recursive_doubling"), ranks=16, size=SIZES[3], link="fast")
    assert "It meets the lower bound." in caption
    caption = view.update(collective=("allgather", "ring"), ranks=16, size=SIZES[3], link="fast")
    floor = 4 * ALPHA + 15 / 16 * SIZES[3] / 400e9
    assert "The lower bound is" in caption and view.bound.get_ydata()[3] == pytest.approx(floor)
