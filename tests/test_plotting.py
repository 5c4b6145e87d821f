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
