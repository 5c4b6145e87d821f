"""accelbook.plots.intro: the hardware picture carries the database's numbers and stays legible."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from accelbook import specs
from accelbook.plots import intro
from accelbook.units import fmt


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize("key", ["h100-sxm", "t4", "tpu-v5e", "a100-40gb", "l4", "tpu-v6e"])
def test_the_picture_shows_each_term_with_the_chips_numbers(key):
    chip = specs.get_chip(key)
    fig = intro.hardware_picture(chip)
    words = "\n".join(texts(fig))
    dtype = "bf16" if "bf16" in chip.peak else "fp16"
    assert fmt(chip.peak[dtype].value, "FLOP/s") in words
    assert fmt(chip.memory_bandwidth, "B/s") in words
    assert fmt(chip.value("host_link_bandwidth"), "B/s") in words
    peer = chip.value("scaleup_peer_bandwidth")
    if peer is not None:
        assert fmt(peer, "B/s") in words and "one direction" in words
    else:
        assert "no scale-up link" in words
    for chapters in intro.TERM_CHAPTERS.values():
        assert chapters in words
    assert chip.name in words


def test_text_is_at_least_nine_points_and_inside_the_figure():
    fig = intro.hardware_picture(specs.get_chip("h100-sxm"))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    for t in fig.axes[0].texts:
        assert t.get_fontsize() >= 9, t.get_text()
        box = t.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, t.get_text()
    # legible in the 730 px text column: 9 pt at the figure's width scaled to the column is >= 12 px
    w_in = fig.get_figwidth()
    for dpi in (100, 110, 150):
        px = 9 * dpi / 72 * min(1.0, 730 / (w_in * dpi))
        assert px >= 12, dpi


def test_the_link_to_a_neighbour_says_how_much_one_peer_gets():
    bw, what, link = intro.link_summary(specs.get_chip("tpu-v5e"))
    # one ICI port of four, one direction: the chip total both ways / 4 / 2
    chip = specs.get_chip("tpu-v5e")
    assert bw == pytest.approx(chip.value("scaleup_bandwidth") / chip.value("scaleup_links") / 2)
    assert "one peer" in what and "one direction" in what
    bw, what, _ = intro.link_summary(specs.get_chip("h100-sxm"))
    assert bw == pytest.approx(specs.get_chip("h100-sxm").value("scaleup_bandwidth") / 2)
    assert intro.link_summary(specs.get_chip("t4"))[0] is None


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="chip='h100'"):
        intro.hardware_picture("h100")
    with pytest.raises(TypeError, match="chip=None"):
        intro.link_summary(None)
    with pytest.raises(ValueError, match="dtype='bf17'"):
        intro.hardware_picture(specs.get_chip("h100-sxm"), dtype="bf17")


def test_it_draws_into_a_given_figure():
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7.3, 4.6))
    assert intro.hardware_picture(specs.get_chip("l4"), fig=fig) is fig and len(fig.axes) == 1
    with pytest.raises(TypeError, match="fig="):
        intro.hardware_picture(specs.get_chip("l4"), fig="figure")


@pytest.mark.parametrize("figsize", [(0, 4), (7.3,), "7x4", (float("nan"), 4)])
def test_a_bad_figsize_is_named(figsize):
    with pytest.raises(ValueError, match="figsize"):
        intro.hardware_picture(specs.get_chip("h100-sxm"), figsize=figsize)
