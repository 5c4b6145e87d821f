"""The roofline figures (accelbook.plots.roofline) draw what the model says."""

import matplotlib

matplotlib.use("Agg")

import random  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from accelbook import explore, models, plots, specs  # noqa: E402
from accelbook.units import fmt  # noqa: E402

P, W = 989.5e12, 3.35e12  # a made-up chip with H100-like ceilings


def test_roofline_plot_draws_the_model_and_the_points():
    with plots.style.style():
        fig, ax = plt.subplots()
        plots.roofline.roofline_plot(ax, [("chip A", 1e12, 1e11), ("chip B", 4e12, 2e11)],
                                     points=[("measured", 3.0, 2e11)], intensity_range=(0.1, 1000))
    lines = ax.get_lines()
    a_line = next(l for l in lines if l.get_label() == "chip A")
    x, y = a_line.get_data()
    np.testing.assert_allclose(y, models.roofline.attainable(x, 1e12, 1e11))
    point = next(l for l in lines if l.get_label() == "measured")
    assert list(point.get_xdata()) == [3.0] and list(point.get_ydata()) == [2e11]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "FLOP/s" in ax.get_ylabel() and "FLOP per byte" in ax.get_xlabel()
    plt.close(fig)


def test_roofline_plot_rejects_a_bad_range():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="intensity_range"):
        plots.roofline.roofline_plot(ax, [("a", 1e12, 1e11)], intensity_range=(10, 1))
    plt.close(fig)


def test_roofline_plot_styles_and_ridge_labels():
    fig, ax = plt.subplots()
    styles = [{"color": "#123456", "linestyle": "--"}, {"color": "#654321", "linestyle": ":"}]
    plots.roofline.roofline_plot(ax, [("A", 1e12, 1e11), ("B", 4e12, 1e10)], intensity_range=(0.1, 1000),
                                 styles=styles, ridge_labels=True, ylabel="achieved throughput (FLOP/s)")
    for label, style in zip("AB", styles):
        line = next(l for l in ax.get_lines() if l.get_label() == label)
        assert line.get_color() == style["color"] and line.get_linestyle() == style["linestyle"]
    # each ridge value written once, at its ridge point (P / W = 10 and 400 FLOP/byte)
    ridges = {t.get_text(): t.xy for t in ax.texts}
    assert ridges == {"10": (10.0, 1e12), "400": (400.0, 4e12)}
    assert ax.get_ylabel() == "achieved throughput (FLOP/s)"
    with pytest.raises(ValueError, match="styles"):
        plots.roofline.roofline_plot(ax, [("A", 1e12, 1e11)], styles=[])
    plt.close(fig)


def test_measured_points_draw_error_bars_from_low_to_high_and_label_each_point():
    fig, ax = plt.subplots()
    ax.set(xscale="log", yscale="log", xlim=(0.01, 1000), ylim=(1e8, 1e13))
    pts = [("add", 0.08, 3e9, 2e9, 4e9), ("matmul", 100.0, 5e11, 4.5e11, 5.2e11)]
    plots.roofline.measured_points(ax, pts)
    segments = [seg for c in ax.collections for seg in c.get_segments()]
    spans = sorted((float(s[0][0]), *sorted((float(s[0][1]), float(s[1][1])))) for s in segments)
    assert spans == sorted((i, lo, hi) for _n, i, _a, lo, hi in pts)
    assert sorted(t.get_text() for t in ax.texts) == ["add", "matmul"]
    for t in ax.texts:  # each label sits at its own point
        assert t.xy == next((i, a) for n, i, a, _lo, _hi in pts if n == t.get_text())
    with pytest.raises(ValueError, match="within low"):
        plots.roofline.measured_points(ax, [("bad", 1.0, 5.0, 6.0, 7.0)])
    plt.close(fig)


def test_measured_points_keep_their_labels_inside_the_axes():
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.set(xscale="log", yscale="log", xlim=(0.05, 1000), ylim=(1e8, 1e13))
    # the right of the first point is taken by the second and its label, so the first label would go left,
    # out of the axes (its point is near the left edge)
    pts = [("a rather long label for this point", 0.07, 1e10, 9e9, 1.1e10), ("blocker", 0.3, 1e10, 9e9, 1.1e10)]
    plots.roofline.measured_points(ax, pts)
    fig.canvas.draw()
    inside = ax.get_window_extent()
    for t in ax.texts:
        box = t.get_window_extent()
        assert box.x0 >= inside.x0 - 1 and box.x1 <= inside.x1 + 1, t.get_text()
    plt.close(fig)


def test_op_points_sit_on_the_roof():
    fig, ax = plt.subplots()
    plots.roofline.op_points(ax, [("low", [0.5, 2.0], {"marker": "o"}), ("high", [50.0], {"marker": "s"})], 1e12, 1e11)
    low, high = ax.get_lines()
    assert low.get_label() == "low" and list(low.get_ydata()) == [0.5e11, 2e11]  # W · I below the ridge
    assert list(high.get_ydata()) == [1e12] and high.get_marker() == "s"  # P above it
    plots.roofline.op_points(ax, [], 1e12, 1e11, moves=[(1.0, 100.0, "batching")])
    arrow, label = ax.texts[-2:]
    # from below the roof at I = 1 (W · 1 = 1e11) to below it at I = 100 (P = 1e12), labelled midway
    assert arrow.xyann == (1.0, 1e11 / 2.5) and arrow.xy == (100.0, 1e12 / 2.5)
    assert label.get_text() == "batching" and label.xy[0] == pytest.approx(10.0)
    plt.close(fig)


def test_chip_map_draws_every_chip_and_marks_other_dtypes_hollow():
    rows = models.roofline.ridge_table(specs.chips(), ("bf16", "fp16"))
    fig, ax = plt.subplots()
    labels = plots.roofline.chip_map(ax, rows, highlight=rows[0])
    markers = [l for l in ax.get_lines() if l.get_linestyle() in ("None", "none", "")]
    chip_markers = [l for l in markers if len(l.get_xdata()) == 1 and l.get_label().startswith("_")]
    assert len(chip_markers) == len(rows)
    hollow = [l for l in chip_markers if l.get_markerfacecolor() in ("none", (0.0, 0.0, 0.0, 0.0))]
    assert len(hollow) == sum(r.dtype != "bf16" for r in rows) > 0
    assert [t.get_text() for t in labels] == [plots.style.chip_label(r.chip) for r in rows]
    assert [t.get_fontweight() for t in labels] == ["bold"] + ["normal"] * (len(rows) - 1)
    with pytest.raises(ValueError, match="rows"):
        plots.roofline.chip_map(ax, [])
    plt.close(fig)


def test_plot_helpers_draw_without_error():
    rows = models.roofline.ridge_table(specs.chips(), ("bf16", "fp16"))
    fig, (a, b) = plt.subplots(1, 2)
    plots.roofline.ridge_bars(a, rows)
    assert len(a.patches) == len(rows)
    plots.roofline.roofline_plot(b, [("chip", P, W)])
    plots.roofline.intensity_markers(b, [("add", 1 / 6), ("matmul", 1365.0)])
    plots.style.labelled_points(b, [("p", 1.0, 1e12)], offsets={"p": (0, 5)})
    assert [t.get_text() for t in b.texts][-1] == "p"
    plt.close(fig)


# -- chapter 01's explorable: the chip map with one chip highlighted ------------------------------
MAP = models.roofline.ridge_table(specs.chips(), ("bf16", "fp16"))


def styled(view, *args):
    """A view factory that builds the view in the house style, as a chapter does."""
    def make():
        with plots.style.style():
            return view(*args)
    return make


def chip_map_explorable(value="h100-sxm"):
    return explore.Explorable(styled(plots.roofline.ChipMapView, MAP),
                              [explore.choice("chip", [(r.chip.name, r.chip.key) for r in MAP], value=value)],
                              name="intro-chip-map", dpi=60)


@pytest.mark.parametrize("start", ["h100-sxm", "t4"])  # a filled and a hollow (fp16) highlight
def test_chip_map_view_updates_match_a_full_redraw(start):
    assert chip_map_explorable(start).check() >= 5


def test_chip_map_view_marks_the_chip_and_ranks_its_ridge_point():
    ex = chip_map_explorable()
    for row in (MAP[0], MAP[-1], next(r for r in MAP if r.dtype == "fp16")):
        _rgb, caption = ex.frame(chip=row.chip.key)
        view = ex._renderer.view
        assert list(view.marker.get_xdata()) == [row.bandwidth] and list(view.marker.get_ydata()) == [row.peak_flops]
        assert (view.marker.get_markerfacecolor() == "white") == (row.dtype != "bf16")
        assert view.marker.get_marker() == ("s" if row.chip.kind == "tpu" else "o")
        plain = view.labels[MAP.index(row)]
        assert view.label.get_text() == plain.get_text() == plots.style.chip_label(row.chip)
        assert view.label.get_fontweight() == "bold" and view.label.xyann == plain.xyann
        assert view.title.get_text() == f"{row.chip.name}: {row.dtype} ridge point {row.ridge:.0f} FLOP/byte"
        lower = sum(r.ridge < row.ridge for r in MAP)
        assert f"higher than that of {lower} of the other {len(MAP) - 1} chips" in caption
        assert row.chip.name in caption and fmt(row.bandwidth, "B/s") in caption and "](http" in caption
    assert "higher than that of 0 of" in ex.frame(chip=MAP[0].chip.key)[1]


def test_chip_map_view_never_redraws_the_map():
    ex = chip_map_explorable()
    rng = random.Random(1)
    for _ in range(25):
        ex.frame(chip=rng.choice(MAP).chip.key)
    assert ex._renderer.full_draws == 1


def test_chip_map_view_refuses_no_rows():
    with pytest.raises(ValueError, match="rows"):
        plots.roofline.ChipMapView([])


# -- chapter 02's explorable: one layer on a chip's roofline ------------------------------------------
CHIPS = ["t4", "h100-sxm", "tpu-v1", "b200"]  # tpu-v1 has no float peak at all; t4 no bf16 or fp8
DTYPES = ["fp32", "bf16", "fp8"]
BATCHES = [2**i for i in range(15)]
WIDTHS = [1024, 4096, 16384]


def roofline_explorable(**start):
    start = {"chip": "h100-sxm", "dtype": "bf16", "batch": 64, "width": 4096, **start}
    params = [explore.choice("chip", CHIPS, value=start["chip"]),
              explore.choice("dtype", DTYPES, value=start["dtype"]),
              explore.slider("batch", BATCHES, value=start["batch"], static=sorted({1, 64, 16384, start["batch"]})),
              explore.choice("width", WIDTHS, value=start["width"], static=sorted({1024, 16384, start["width"]}))]
    return explore.Explorable(styled(plots.roofline.RooflineView, CHIPS, DTYPES, BATCHES, WIDTHS), params,
                              name="roof-layer", dpi=60)


def test_roofline_view_updates_match_a_full_redraw():
    # the check visits every chip end (t4 without bf16, b200), every dtype end, batch 1 and 16384
    assert roofline_explorable().check() >= 8


def layer(chip, dtype, m, width):
    c = specs.get_chip(chip)
    b = specs.itemsize(dtype)
    return models.roofline.predict(2.0 * m * width * width, b * (2 * m * width + width * width),
                                   c.peak_flops[dtype], c.memory_bandwidth)


@pytest.mark.parametrize("chip, dtype, batch, width", [("h100-sxm", "bf16", 64, 4096), ("h100-sxm", "bf16", 8192, 4096),
                                                      ("t4", "fp32", 1, 16384), ("b200", "fp8", 16384, 1024)])
def test_roofline_view_draws_the_model(chip, dtype, batch, width):
    ex = roofline_explorable()
    ex.frame(chip=chip, dtype=dtype, batch=batch, width=width)
    view = ex._renderer.view
    now, c = layer(chip, dtype, batch, width), specs.get_chip(chip)
    np.testing.assert_allclose([*view.point.get_xdata(), *view.point.get_ydata()], [now.intensity, now.attainable])
    np.testing.assert_allclose([*view.now.get_xdata(), *view.now.get_ydata()], [batch, now.time])
    x, y = view.roof.get_data()
    np.testing.assert_allclose(y, models.roofline.attainable(np.asarray(x), c.peak_flops[dtype], c.memory_bandwidth))
    np.testing.assert_allclose(view.time.get_ydata(), [layer(chip, dtype, m, width).time for m in BATCHES])
    title = view.title.get_text()
    assert title.startswith(f"{c.name}, {dtype}, batch {batch}: {fmt(now.time, 's')}, {now.bound}-bound")
    m_star = models.roofline.min_batch_for_compute_bound(width, width, c.peak_flops[dtype], c.memory_bandwidth,
                                                         specs.itemsize(dtype))
    if view.m_star.get_visible():
        assert list(view.m_star.get_xdata()) == [m_star, m_star]
        assert view.m_star_text.get_text().endswith(f"batch {m_star}")
    else:
        assert m_star is None or m_star > BATCHES[-1]
    assert f"{width} × {width}" in view.xlabel.get_text()
    assert [t.get_text() for t in view.key_labels] == [f"{plots.style.short_name(c.name)}, {dtype}",
                                                      plots.roofline._point_label(batch, now.intensity)]
    assert plots.roofline._point_label(64, 62.06) == "batch 64: 62.1 FLOP/B"
    assert plots.roofline._point_label(4096, 1365.3) == "batch 4096: 1365 FLOP/B"


def test_roofline_view_reports_the_bound_and_the_fraction_of_peak():
    ex = roofline_explorable()
    ex.frame(batch=64)
    title = ex._renderer.view.title.get_text()
    assert "bandwidth-bound" in title and "H100" in title
    ex.frame(batch=8192)
    assert "compute-bound" in ex._renderer.view.title.get_text()
    assert "100 % of peak" in ex._renderer.view.title.get_text()


def test_roofline_view_says_when_a_chip_lacks_the_dtype():
    ex = roofline_explorable()
    ex.frame(chip="t4", dtype="bf16")
    view = ex._renderer.view
    assert "NVIDIA T4 has no bf16 peak" in view.title.get_text()
    assert not any(a.get_visible() for a in view.data) and not view.xlabel.get_visible()
    ex.frame(chip="t4", dtype="fp32")
    assert view.point.get_visible() and "has no" not in view.title.get_text()


def test_roofline_view_axes_hold_every_setting_and_never_move():
    ex = roofline_explorable()
    ex.frame()
    view = ex._renderer.view
    limits = (view.left.get_xlim(), view.left.get_ylim(), view.right.get_xlim(), view.right.get_ylim())
    for chip in CHIPS:
        for dtype in DTYPES:
            if dtype not in specs.get_chip(chip).peak_flops:
                continue
            for width in (WIDTHS[0], WIDTHS[-1]):
                for batch in (BATCHES[0], BATCHES[-1]):
                    ex.frame(chip=chip, dtype=dtype, batch=batch, width=width)
                    for ax, line in ((view.left, view.grey), (view.right, view.time)):
                        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
                        x, y = map(np.asarray, line.get_data())
                        assert (x0 < x).all() and (x < x1).all() and (y0 < y).all() and (y < y1).all()
    assert (view.left.get_xlim(), view.left.get_ylim(), view.right.get_xlim(), view.right.get_ylim()) == limits


def test_roofline_view_blits_every_update():
    ex = roofline_explorable()
    rng = random.Random(2)
    for _ in range(30):
        ex.frame(**{p.name: rng.choice(p.values) for p in ex.params})
    assert ex._renderer.full_draws == 1


def test_roofline_view_needs_a_ceiling_to_draw():
    with pytest.raises(ValueError, match="no chip"):
        plots.roofline.RooflineView(["tpu-v1"], ["bf16"], BATCHES, WIDTHS)
