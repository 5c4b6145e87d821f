"""The house style and the shared figure helpers (accelbook.plots.style)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from accelbook import plots  # noqa: E402


def _luminance(hex_color):
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_palette_is_okabe_ito_and_readable_on_the_white_figure_background():
    assert plots.style.CYCLE[0] == "#0072B2" and len(set(plots.style.CYCLE)) == len(plots.style.CYCLE)
    assert plots.style.RC["figure.facecolor"] == "white"
    # WCAG contrast of text on the figure background is at least 7:1 (AAA).
    text = plots.style.RC["text.color"]
    assert (1.05) / (_luminance(text) + 0.05) >= 7


def test_si_formatter_labels_ticks_with_prefixes():
    f = plots.style.si_formatter("FLOP/s")
    assert f(1e12, 0) == "1 TFLOP/s" and f(2.5e9, 0) == "2.5 GFLOP/s" and f(0, 0) == "0"


def test_use_style_sets_the_house_rc():
    with plots.style.style():
        assert matplotlib.rcParams["axes.spines.top"] is False
    plots.style.use_style()
    assert matplotlib.rcParams["figure.facecolor"] == "white"


def test_chip_label_drops_vendor_form_factor_and_nickname():
    from accelbook import specs

    assert plots.style.chip_label(specs.get_chip("a100-40gb")) == "A100 40GB"
    assert plots.style.chip_label(specs.get_chip("tpu-v6e")) == "TPU v6e"
    assert plots.style.chip_label(specs.get_chip("h100-pcie")) == "H100 PCIe"


def test_place_labels_keeps_labels_of_crowded_points_apart():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.set(xlim=(0, 10), ylim=(0, 10))
    points = [("first label", 5.0, 5.0), ("second label", 5.0, 5.3), ("third label", 5.2, 4.7)]
    plots.style.place_labels(ax, points, fontsize=8)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert len(boxes) == 3
    for i in range(3):
        for j in range(i + 1, 3):
            assert not boxes[i].overlaps(boxes[j]), (ax.texts[i].get_text(), ax.texts[j].get_text())
    plt.close(fig)


def test_place_labels_works_on_a_bare_figure_without_a_pyplot_canvas():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.add_subplot()
    ax.set(xlim=(0, 10), ylim=(0, 10))
    plots.style.place_labels(ax, [("alpha label", 5.0, 5.0), ("beta label", 5.05, 5.0)], bold=["alpha label"])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    a, b = (t.get_window_extent() for t in ax.texts)
    assert not a.overlaps(b)
    assert ax.texts[0].get_fontweight() == "bold"


def test_short_name_and_vendor_colors():
    assert plots.style.short_name("NVIDIA H100 SXM") == "H100 SXM"
    assert plots.style.short_name("Something else") == "Something else"
    colors = plots.style.vendor_colors(["b", "a", "b"])
    assert colors == {"a": plots.style.CYCLE[0], "b": plots.style.CYCLE[1]}


def test_style_helpers_name_bad_axes_points_and_sizes():
    import pytest

    from accelbook.plots import style

    with pytest.raises(TypeError, match="^ax=None must be a matplotlib.axes"):
        style.log_axes(None)
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"^points\[0\]\[1\]=0 must be"):
        style.place_labels(ax, [("a", 0, 1.0)])
    with pytest.raises(ValueError, match="^vendors='NVIDIA' must be a sequence"):
        style.vendor_colors("NVIDIA")
    with pytest.raises(ValueError, match="^figsize="):
        style.standalone_figure((3,))
    with pytest.raises(ValueError, match="^dpi=nan"):
        style.standalone_figure((3, 2), dpi=float("nan"))
    plt.close(fig)
