"""The house style and the roofline figure draw what the model says."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from accelbook import plotting, roofline  # noqa: E402


def _luminance(hex_color):
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_palette_is_okabe_ito_and_readable_on_the_white_figure_background():
    assert plotting.CYCLE[0] == "#0072B2" and len(set(plotting.CYCLE)) == len(plotting.CYCLE)
    assert plotting.RC["figure.facecolor"] == "white"
    # WCAG contrast of text on the figure background is at least 7:1 (AAA).
    text = plotting.RC["text.color"]
    assert (1.05) / (_luminance(text) + 0.05) >= 7


def test_roofline_plot_draws_the_model_and_the_points():
    with plotting.style():
        fig, ax = plt.subplots()
        plotting.roofline_plot(ax, [("chip A", 1e12, 1e11), ("chip B", 4e12, 2e11)],
                               points=[("measured", 3.0, 2e11)], intensity_range=(0.1, 1000))
    lines = ax.get_lines()
    a_line = next(l for l in lines if l.get_label() == "chip A")
    x, y = a_line.get_data()
    np.testing.assert_allclose(y, roofline.attainable(x, 1e12, 1e11))
    point = next(l for l in lines if l.get_label() == "measured")
    assert list(point.get_xdata()) == [3.0] and list(point.get_ydata()) == [2e11]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "FLOP/s" in ax.get_ylabel() and "FLOP per byte" in ax.get_xlabel()
    plt.close(fig)


def test_roofline_plot_rejects_a_bad_range():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="intensity_range"):
        plotting.roofline_plot(ax, [("a", 1e12, 1e11)], intensity_range=(10, 1))
    plt.close(fig)


def test_si_formatter_labels_ticks_with_prefixes():
    f = plotting.si_formatter("FLOP/s")
    assert f(1e12, 0) == "1 TFLOP/s" and f(2.5e9, 0) == "2.5 GFLOP/s" and f(0, 0) == "0"


def test_use_style_sets_the_house_rc():
    with plotting.style():
        assert matplotlib.rcParams["axes.spines.top"] is False
    plotting.use_style()
    assert matplotlib.rcParams["figure.facecolor"] == "white"


def test_chip_label_drops_vendor_form_factor_and_nickname():
    from accelbook import specs

    assert plotting.chip_label(specs.get_chip("a100-40gb")) == "A100 40GB"
    assert plotting.chip_label(specs.get_chip("tpu-v6e")) == "TPU v6e"
    assert plotting.chip_label(specs.get_chip("h100-pcie")) == "H100 PCIe"


def test_place_labels_keeps_labels_of_crowded_points_apart():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.set(xlim=(0, 10), ylim=(0, 10))
    points = [("first label", 5.0, 5.0), ("second label", 5.0, 5.3), ("third label", 5.2, 4.7)]
    plotting.place_labels(ax, points, fontsize=8)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert len(boxes) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert not boxes[i].overlaps(boxes[j]), (ax.texts[i].get_text(), ax.texts[j].get_text())
    plt.close(fig)


def test_chip_map_draws_every_chip_and_marks_other_dtypes_hollow():
    from accelbook import roofline, specs

    rows = roofline.ridge_table(specs.chips(), ("bf16", "fp16"))
    fig, ax = plt.subplots()
    plotting.chip_map(ax, rows, highlight=rows[0])
    markers = [l for l in ax.get_lines() if l.get_linestyle() in ("None", "none", "")]
    chip_markers = [l for l in markers if len(l.get_xdata()) == 1 and l.get_label().startswith("_")]
    assert len(chip_markers) == len(rows)
    hollow = [l for l in chip_markers if l.get_markerfacecolor() in ("white", (1.0, 1.0, 1.0, 1.0))]
    assert len(hollow) == sum(r.dtype != "bf16" for r in rows) > 0
    assert {t.get_text() for t in ax.texts} >= {plotting.chip_label(r.chip) for r in rows}
    with pytest.raises(ValueError, match="rows"):
        plotting.chip_map(ax, [])
    plt.close(fig)


def test_place_labels_works_on_a_bare_figure_without_a_pyplot_canvas():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.add_subplot()
    ax.set(xlim=(0, 10), ylim=(0, 10))
    plotting.place_labels(ax, [("alpha label", 5.0, 5.0), ("beta label", 5.05, 5.0)], bold=["alpha label"])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    a, b = (t.get_window_extent() for t in ax.texts)
    assert not a.overlaps(b)
    assert ax.texts[0].get_fontweight() == "bold"
