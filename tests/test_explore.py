"""accelbook.explore: parameters, the static grid, the kernel-free HTML and the live widgets."""

import base64
import io
import itertools
import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from accelbook import explore


def line_plot(a, b, flip=False):
    """A tiny figure whose pixels depend on a and b (and flip), with a Markdown caption."""
    fig = Figure(figsize=(2.0, 1.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, a * b] if not flip else [a * b, 0], color="tab:red")
    ax.set_ylim(0, 40)
    ax.set_title(f"a={a} b={b}")
    return fig, f"**product** {a * b}"


def make(**kw):
    params = [explore.choice("a", [1, 2, 3]), explore.slider("b", [1, 2, 4, 8], value=2),
              explore.toggle("flip")]
    return explore.Explorable(line_plot, params, name="demo", **kw)


def payload(html):
    m = re.search(r'<script type="application/json" class="accelbook-explore-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# -- mode ------------------------------------------------------------------------------------------
def test_mode_defaults_to_live_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(explore.MODE_ENV, raising=False)
    assert explore.mode() == "live"
    monkeypatch.setenv(explore.MODE_ENV, "static")
    assert explore.mode() == "static"
    monkeypatch.setenv(explore.MODE_ENV, "Static ")
    assert explore.mode() == "static"


def test_bad_mode_names_the_variable(monkeypatch):
    monkeypatch.setenv(explore.MODE_ENV, "browser")
    with pytest.raises(ValueError, match=explore.MODE_ENV):
        explore.mode()


# -- parameters ------------------------------------------------------------------------------------
def test_choice_accepts_values_or_label_value_pairs():
    p = explore.choice("chip", [("NVIDIA H100", "h100"), ("TPU v5e", "v5e")], value="v5e")
    assert p.values == ("h100", "v5e") and p.labels == ("NVIDIA H100", "TPU v5e")
    assert p.start == 1 and p.static == (0, 1) and p.label == "chip"
    assert explore.choice("dtype", ["fp32", "bf16"]).labels == ("fp32", "bf16")


def test_slider_labels_and_static_subset():
    p = explore.slider("n", [1, 2, 4, 8, 16], value=4, static=[16, 1, 4])
    assert p.labels == ("1", "2", "4", "8", "16")
    assert p.static == (0, 2, 4) and p.static_values == (1, 4, 16)


@pytest.mark.parametrize("call, match", [
    (lambda: explore.slider("n", [4, 2]), "strictly increasing"),
    (lambda: explore.slider("n", ["a", "b"]), "real numbers"),
    (lambda: explore.slider("n", [1, 2], value=3), "value=3"),
    (lambda: explore.slider("n", [1, 2, 4], value=1, static=[2, 4]), "starting value"),
    (lambda: explore.slider("n", [1, 2, 4], static=[5]), "subset"),
    (lambda: explore.choice("bad name", [1]), "identifier"),
    (lambda: explore.choice("x", []), "empty"),
    (lambda: explore.choice("x", [1, 1]), "distinct"),
    (lambda: explore.toggle("t", value=1), "True or False"),
])
def test_bad_parameters_name_what_is_wrong(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("kw, match", [
    ({"name": "Has Space"}, "name="), ({"dpi": 10}, "dpi="), ({"colors": 1}, "colors="),
    ({"max_frames": 0}, "max_frames="),
])
def test_bad_explorable_options_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        explore.Explorable(line_plot, [explore.choice("a", [1])], **{"name": "ok", **kw})


def test_duplicate_parameter_names_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        explore.Explorable(line_plot, [explore.choice("a", [1]), explore.choice("a", [2])], name="x")


def test_draw_must_return_a_figure():
    ex = explore.Explorable(lambda a: "not a figure", [explore.choice("a", [1])], name="x")
    with pytest.raises(TypeError, match="Figure"):
        ex.figure()


def test_figure_rejects_values_outside_the_parameter():
    with pytest.raises(ValueError, match="b=3"):
        make().figure(b=3)
    with pytest.raises(ValueError, match="unknown"):
        make().figure(c=1)


# -- the grid --------------------------------------------------------------------------------------
def test_grid_is_the_cartesian_product_last_parameter_fastest():
    ex = make()
    expected = [dict(a=a, b=b, flip=f) for a, b, f in itertools.product([1, 2, 3], [1, 2, 4, 8], [False, True])]
    assert ex.grid() == expected
    assert [ex.index(v) for v in expected] == list(range(len(expected)))


def test_grid_uses_only_static_values():
    params = [explore.slider("a", [1, 2, 3, 4], static=[1, 4]), explore.choice("b", [1, 2])]
    ex = explore.Explorable(line_plot, params, name="x")
    assert [(v["a"], v["b"]) for v in ex.grid()] == [(1, 1), (1, 2), (4, 1), (4, 2)]
    with pytest.raises(ValueError, match="static values"):
        ex.index({"a": 2, "b": 1})


# -- static rendering ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def static():
    return make().render_static()


def test_every_frame_is_the_figure_draw_makes_for_its_values(static):
    ex, data = make(), payload(static.html)
    assert data["sizes"] == [3, 4, 2] and static.frames == 24
    for values in ex.grid():
        k = ex.index(values)
        stored = base64.b64decode(data["frames"][data["index"][k]])
        fig, caption = ex.figure(**values)
        np.testing.assert_array_equal(pixels(stored), pixels(ex.png(fig)))
        assert "<strong>product</strong> " + str(values["a"] * values["b"]) in data["captions"][data["cindex"][k]]


def test_identical_frames_are_stored_once():
    # draw ignores c, so the grid has 3 x 2 combinations but only 3 distinct images
    params = [explore.choice("a", [1, 2, 3]), explore.choice("c", ["x", "y"])]
    st = explore.Explorable(lambda a, c: line_plot(a, 1)[0], params, name="dedupe").render_static()
    data = payload(st.html)
    assert st.frames == 6 and st.unique_frames == 3 == len(data["frames"])
    assert data["index"] == [0, 0, 1, 1, 2, 2]
    assert data["captions"] == [""]


def test_frames_share_one_size_so_the_page_does_not_jump():
    def draw(width):
        fig = Figure(figsize=(width, 1.5))
        fig.add_subplot().plot([0, 1])
        return fig
    st = explore.Explorable(draw, [explore.choice("width", [2.0, 3.0])], name="sizes").render_static()
    sizes = {Image.open(io.BytesIO(base64.b64decode(f))).size for f in payload(st.html)["frames"]}
    assert len(sizes) == 1


def test_static_html_starts_at_the_starting_values(static):
    html, data = static.html, payload(static.html)
    ex = make()
    start = data["index"][ex.index(ex.start)]
    assert f'data-frame="{start}"' in html
    assert f'src="data:image/png;base64,{data["frames"][start]}"' in html
    assert 'id="accelbook-explore-demo"' in html
    assert 'type="range"' in html and "<select" in html and 'type="checkbox"' in html
    assert 'value="1" selected' not in html and '<option value="0" selected>1</option>' in html
    assert "a = 1, b = 2, flip = off" in html  # alt text names the values shown
    assert "http" not in html  # nothing to fetch


def test_static_html_reports_its_weight(static):
    assert static.bytes == len(static.html.encode())
    assert len(static.draw_seconds) == static.frames and min(static.draw_seconds) > 0


def test_too_many_frames_is_refused_before_drawing():
    calls = []
    params = [explore.slider("a", list(range(1, 21))), explore.slider("b", list(range(1, 21)))]
    ex = explore.Explorable(lambda a, b: calls.append(1), params, name="big", max_frames=100)
    with pytest.raises(ValueError, match=r"400 frames \(a: 20, b: 20\); max_frames=100"):
        ex.render_static()
    assert calls == []


def test_too_heavy_is_refused():
    with pytest.raises(ValueError, match="max_bytes=1000"):
        make(max_bytes=1000).render_static()


def test_markdown_caption_becomes_html():
    assert explore._markdown_html("| a |\n|---|\n| 1 |").count("<td>1</td>") == 1


# -- live widgets ------------------------------------------------------------------------------------
def test_widgets_offer_every_value_not_only_the_static_ones():
    params = [explore.slider("n", [1, 2, 4, 8], static=[1, 8]), explore.choice("c", [("X", "x"), ("Y", "y")]),
              explore.toggle("t", value=True)]
    ex = explore.Explorable(line_plot, params, name="w")
    n, c, t = ex.widgets()
    assert [v for _, v in n.options] == [1, 2, 4, 8] and n.value == 1
    assert c.options == (("X", "x"), ("Y", "y")) and t.value is True


def test_live_controls_redraw_with_the_new_values():
    seen = []

    def draw(a, b, flip):
        seen.append((a, b, flip))
        return line_plot(a, b, flip)

    params = [explore.choice("a", [1, 2, 3]), explore.slider("b", [1, 2, 4, 8], value=2), explore.toggle("flip")]
    controls = explore.Explorable(draw, params, name="live").show_live()
    assert seen == [(1, 2, False)]
    controls[1].value = 8
    controls[0].value = 3
    controls[2].value = True
    assert seen == [(1, 2, False), (1, 8, False), (3, 8, False), (3, 8, True)]


def test_show_picks_the_mode(monkeypatch):
    called = []
    monkeypatch.setattr(explore.Explorable, "show_live", lambda self: called.append(("live", self.name)))
    monkeypatch.setattr(explore.Explorable, "render_static",
                        lambda self: called.append(("static", self.name)) or explore.Static("", 1, 1, 0))
    monkeypatch.setenv(explore.MODE_ENV, "static")
    explore.show(lambda a: line_plot(a, 1), explore.choice("a", [1, 2]), name="one")
    monkeypatch.setenv(explore.MODE_ENV, "live")
    explore.show(lambda a: line_plot(a, 1), explore.choice("a", [1, 2]), name="two")
    assert called == [("static", "one"), ("live", "two")]
    with pytest.raises(ValueError, match="mode_="):
        make().show("web")


def test_png_is_cropped_to_the_drawing_like_the_inline_backend():
    fig = Figure(figsize=(4, 4))
    fig.patches.append(__import__("matplotlib").patches.Rectangle((0.25, 0.25), 0.5, 0.5, transform=fig.transFigure,
                                                                   color="black"))
    img = pixels(explore.Explorable(line_plot, [explore.choice("a", [1])], name="c", dpi=50).png(fig))
    # a 2 x 2 inch black square at 50 dpi (100 px, +1 for an anti-aliased edge), plus a margin of
    # 0.08 inch = 4 px each side
    assert 108 <= img.shape[0] <= 109 and 108 <= img.shape[1] <= 109
    assert (img[5:-5, 5:-5] < 10).all() and (img[:3] > 245).all() and (img[:, :3] > 245).all()


def test_png_keeps_labels_that_stick_out_of_the_figure():
    fig = Figure(figsize=(2, 2))
    fig.add_axes([0, 0, 1, 1]).set_ylabel("a label left of the figure", fontsize=12)
    img = pixels(explore.Explorable(line_plot, [explore.choice("a", [1])], name="c", dpi=50).png(fig))
    assert img.shape[1] > 100 + 8  # wider than the 2-inch figure: the label was kept


def test_a_parameter_with_one_static_value_is_shown_not_offered():
    params = [explore.choice("a", [1, 2, 3], static=[1]), explore.slider("b", [1, 2, 4], value=2)]
    st = explore.Explorable(line_plot, params, name="fixed").render_static()
    assert 'data-param="0"' not in st.html and 'data-param="1"' in st.html
    assert "a = 1</span>" in st.html and payload(st.html)["sizes"] == [1, 3]


def test_check_extremes_draws_the_ends_of_every_live_range():
    seen = []

    def draw(a, b, flip):
        seen.append((a, b, flip))
        return line_plot(a, b, flip)

    params = [explore.choice("a", [1, 2, 3]), explore.slider("b", [1, 2, 4, 8], value=2, static=[2]),
              explore.toggle("flip")]
    assert explore.Explorable(draw, params, name="ends").check_extremes() == 4
    assert seen == [(3, 2, False), (1, 1, False), (1, 8, False), (1, 2, True)]


def test_check_extremes_names_the_value_that_fails():
    def draw(n):
        if n > 100:
            raise ZeroDivisionError("too big")
        return line_plot(1, 1)[0]

    ex = explore.Explorable(draw, [explore.slider("n", [1, 10, 1000], value=10, static=[10])], name="ends")
    with pytest.raises(RuntimeError, match="cannot draw n=1000, a value its live control offers: too big"):
        ex.check_extremes()
