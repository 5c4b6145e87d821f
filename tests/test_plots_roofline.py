"""The roofline figures (accelbook.plots.roofline) draw what the model says."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from accelbook import models, plots, specs  # noqa: E402

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


def test_chip_map_draws_every_chip_and_marks_other_dtypes_hollow():
    rows = models.roofline.ridge_table(specs.chips(), ("bf16", "fp16"))
    fig, ax = plt.subplots()
    plots.roofline.chip_map(ax, rows, highlight=rows[0])
    markers = [l for l in ax.get_lines() if l.get_linestyle() in ("None", "none", "")]
    chip_markers = [l for l in markers if len(l.get_xdata()) == 1 and l.get_label().startswith("_")]
    assert len(chip_markers) == len(rows)
    hollow = [l for l in chip_markers if l.get_markerfacecolor() in ("white", (1.0, 1.0, 1.0, 1.0))]
    assert len(hollow) == sum(r.dtype != "bf16" for r in rows) > 0
    assert {t.get_text() for t in ax.texts} >= {plots.style.chip_label(r.chip) for r in rows}
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


def test_roofline_explorer_reports_the_prediction_in_its_title():
    fig = plt.figure()
    chip = specs.get_chip("h100-sxm")
    plots.roofline.roofline_explorer(fig, chip, "bf16", 64, 4096)
    title = fig._suptitle.get_text()
    assert "bandwidth-bound" in title and "H100" in title
    plots.roofline.roofline_explorer(fig, chip, "bf16", 8192, 4096)
    assert "compute-bound" in fig._suptitle.get_text()
    assert "100 % of peak" in fig._suptitle.get_text()
    plt.close(fig)


def test_roofline_explorer_says_when_a_chip_lacks_the_dtype():
    fig = plt.figure()
    chip = next(c for c in specs.chips() if c.memory_bandwidth and "bf16" not in c.peak_flops
                and c.peak_flops)
    plots.roofline.roofline_explorer(fig, chip, "bf16", 1)
    assert any("has no bf16 peak" in t.get_text() for t in fig.texts)
    plt.close(fig)
