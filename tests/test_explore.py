"""accelbook.explore: parameters, views drawn once and updated, the static grid, the kernel-free HTML
and the live widgets."""

import base64
import io
import itertools
import json
import random
import re

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from accelbook import explore


class LineView(explore.View):
    """A tiny figure whose pixels depend on a and b (and flip), with a Markdown caption. The line
    and the title are dynamic; the axes are drawn once."""

    instances = 0

    def __init__(self):
        LineView.instances += 1
        self.figure = Figure(figsize=(2.0, 1.5), layout="constrained")
        self.ax = self.figure.add_subplot()
        self.ax.set(ylim=(0, 40), xlabel="x", ylabel="y")
        (self.line,) = self.ax.plot([0, 1], [0, 0], color="tab:red")
        self.title = self.ax.set_title(" ")
        self.dynamic = [self.line, self.title]
        self.updates = []

    def update(self, a, b, flip=False):
        self.updates.append((a, b, flip))
        self.line.set_ydata([0, a * b] if not flip else [a * b, 0])
        self.title.set_text(f"a={a} b={b}")
        return f"**product** {a * b}"


def line_plot(a, b, flip=False):
    """The same picture drawn from scratch by a plain function (for explore.Redraw)."""
    fig = Figure(figsize=(2.0, 1.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set(ylim=(0, 40), xlabel="x", ylabel="y")
    ax.plot([0, 1], [0, a * b] if not flip else [a * b, 0], color="tab:red")
    ax.set_title(f"a={a} b={b}")
    return fig, f"**product** {a * b}"


def make(view=LineView, **kw):
    params = [explore.choice("a", [1, 2, 3]), explore.slider("b", [1, 2, 4, 8], value=2),
              explore.toggle("flip")]
    return explore.Explorable(view, params, name="demo", **kw)


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
        explore.Explorable(LineView, [explore.choice("a", [1])], **{"name": "ok", **kw})


def test_duplicate_parameter_names_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        explore.Explorable(LineView, [explore.choice("a", [1]), explore.choice("a", [2])], name="x")


def test_the_factory_must_make_a_view():
    ex = explore.Explorable(lambda: "not a view", [explore.choice("a", [1])], name="x")
    with pytest.raises(TypeError, match="explore.View"):
        ex.frame()
    with pytest.raises(TypeError, match="Figure"):
        explore.Explorable(lambda: explore.Redraw(lambda a: "no figure"), [explore.choice("a", [1])], name="y").frame()


def test_values_outside_the_parameter_are_refused():
    with pytest.raises(ValueError, match="b=3"):
        make().frame(b=3)
    with pytest.raises(ValueError, match="unknown"):
        make().frame(c=1)


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


# -- drawn once, updated ------------------------------------------------------------------------------
def test_one_view_serves_every_frame_and_the_axes_are_drawn_once():
    LineView.instances = 0
    ex = make()
    for values in ex.grid():
        ex.frame(**values)
    assert LineView.instances == 1
    assert ex._renderer.full_draws == 1  # every other frame was blitted over the cached axes


@pytest.mark.parametrize("values", [dict(a=1, b=2), dict(a=3, b=8, flip=True), dict(a=2, b=1)])
def test_an_updated_frame_equals_a_full_redraw_and_the_plain_function(values):
    ex = make()
    for v in ex.grid():  # go through every other setting first
        ex.frame(**v)
    got, caption = ex.frame(**values)
    want, want_caption = ex.reference(**values)
    assert caption == want_caption == f"**product** {values['a'] * values['b']}"
    assert explore.difference(got, want) <= explore.TOLERANCE["fraction"]
    plain, _ = explore.Explorable(lambda: explore.Redraw(line_plot), ex.params, name="plain").frame(**values)
    assert explore.difference(got, plain) <= explore.TOLERANCE["fraction"]
    # and the frames of two different settings do differ
    other, _ = ex.frame(a=3 if values["a"] != 3 else 1, b=values["b"])
    assert explore.difference(got, other) > explore.TOLERANCE["fraction"]


class ForgetfulView(LineView):
    """Moves the y limit with b but does not say so (no background key): stale axes."""

    def update(self, a, b, flip=False):
        self.ax.set_ylim(0, 5 * b)
        return super().update(a, b, flip)


class HonestView(ForgetfulView):
    def background(self, a, b, flip=False):
        return b


def test_check_catches_an_update_that_leaves_the_background_stale():
    with pytest.raises(RuntimeError, match="differs from a full redraw"):
        make(ForgetfulView).check()
    assert make(HonestView).check() >= 5


def test_a_new_background_key_redraws_and_a_known_one_is_reused():
    ex = make(HonestView)
    for b in (2, 4, 2, 4, 8):
        ex.frame(b=b)
    assert ex._renderer.full_draws == 3  # b = 2, 4, 8


def test_check_settings_are_the_start_the_live_ends_and_some_of_the_grid():
    params = [explore.choice("a", [1, 2, 3]), explore.slider("b", [1, 2, 4, 8], value=2, static=[2]),
              explore.toggle("flip")]
    ex = explore.Explorable(LineView, params, name="ends")
    settings = ex.check_settings()
    assert settings[:5] == [dict(a=1, b=2, flip=False), dict(a=3, b=2, flip=False), dict(a=1, b=1, flip=False),
                            dict(a=1, b=8, flip=False), dict(a=1, b=2, flip=True)]
    assert len(settings) == len({repr(sorted(s.items())) for s in settings})  # no setting twice
    assert ex.check() == len(settings)


def test_check_names_the_value_that_fails():
    class Fragile(LineView):
        def update(self, n):
            if n > 100:
                raise ZeroDivisionError("too big")
            return super().update(1, 1)

    ex = explore.Explorable(Fragile, [explore.slider("n", [1, 10, 1000], value=10, static=[10])], name="ends")
    with pytest.raises(RuntimeError, match=r"cannot draw \{'n': 1000\}: too big"):
        ex.check()


def test_check_refuses_a_drawing_that_leaves_the_figure():
    class Overflowing(LineView):
        def update(self, a):
            self.title.set_text("a title far too long for a two-inch figure " * a)
            return None

    with pytest.raises(RuntimeError, match="leaves the figure"):
        explore.Explorable(Overflowing, [explore.choice("a", [1, 3])], name="wide").check()


# -- static rendering ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def static():
    return make().render_static()


def test_every_frame_is_the_frame_for_its_values(static):
    ex, data = make(), payload(static.html)
    assert data["sizes"] == [3, 4, 2] and static.frames == 24
    for values in ex.grid():
        k = ex.index(values)
        stored = pixels(base64.b64decode(data["frames"][data["index"][k]]))
        want = pixels(ex.png(ex.frame(**values)[0], colors=None))  # the frame itself, lossless
        got = stored[: want.shape[0], : want.shape[1]]
        assert explore.difference(got, want) <= explore.Palette.max_off  # the palette moves no colour far
        assert "<strong>product</strong> " + str(values["a"] * values["b"]) in data["captions"][data["cindex"][k]]


def test_identical_frames_are_stored_once():
    # the view ignores c, so the grid has 3 x 2 combinations but only 3 distinct images
    class IgnoresC(LineView):
        def update(self, a, c):
            super().update(a, 1)

    params = [explore.choice("a", [1, 2, 3]), explore.choice("c", ["x", "y"])]
    st = explore.Explorable(IgnoresC, params, name="dedupe").render_static()
    data = payload(st.html)
    assert st.frames == 6 and st.unique_frames == 3 == len(data["frames"])
    assert data["index"] == [0, 0, 1, 1, 2, 2]
    assert data["captions"] == [""]


def test_frames_share_one_size_so_the_page_does_not_jump():
    def draw(width):
        fig = Figure(figsize=(width, 1.5))
        fig.add_subplot().plot([0, 1])
        return fig
    st = explore.Explorable(lambda: explore.Redraw(draw), [explore.choice("width", [2.0, 3.0])],
                            name="sizes").render_static()
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


def test_a_slider_with_two_values_on_the_site_is_a_menu():
    # A range input with two stops sits pegged at one end and reads like a broken control.
    params = [explore.choice("a", [1]), explore.slider("b", [1, 2, 4, 8], value=2, static=[2, 8]),
              explore.toggle("flip")]
    html = explore.Explorable(LineView, params, name="two-stops").render_static().html
    assert 'type="range"' not in html and "<select" in html
    assert '<option value="0" selected>2</option><option value="1">8</option>' in html
    assert "http" not in html  # nothing to fetch


def test_static_html_reports_its_weight_and_cost(static):
    assert static.bytes == len(static.html.encode())
    assert len(static.draw_seconds) == static.frames and min(static.draw_seconds) > 0
    assert static.full_draws == 1


def test_too_many_frames_is_refused_before_drawing():
    LineView.instances = 0
    params = [explore.slider("a", list(range(1, 21))), explore.slider("b", list(range(1, 21)))]
    ex = explore.Explorable(LineView, params, name="big", max_frames=100)
    with pytest.raises(ValueError, match=r"400 frames \(a: 20, b: 20\); max_frames=100"):
        ex.render_static()
    assert LineView.instances == 0


def test_too_heavy_is_refused():
    with pytest.raises(ValueError, match="max_bytes=1000"):
        make(max_bytes=1000).render_static()


def test_markdown_caption_becomes_html():
    assert explore._markdown_html("| a |\n|---|\n| 1 |").count("<td>1</td>") == 1


def test_png_is_cropped_to_the_drawing_like_the_inline_backend():
    rgb = np.full((200, 200, 3), 255, np.uint8)
    rgb[50:150, 60:160] = 0  # a 100 x 100 px black square
    img = pixels(explore.Explorable(LineView, [explore.choice("a", [1])], name="c", dpi=50).png(rgb))
    # plus a margin of 0.08 inch = 4 px at 50 dpi on each side
    assert img.shape[:2] == (108, 108)
    assert (img[4:-4, 4:-4] < 10).all() and (img[:4] > 245).all() and (img[:, :4] > 245).all()


def test_a_parameter_with_one_static_value_is_shown_not_offered():
    params = [explore.choice("a", [1, 2, 3], static=[1]), explore.slider("b", [1, 2, 4], value=2)]
    st = explore.Explorable(LineView, params, name="fixed").render_static()
    assert 'data-param="0"' not in st.html and 'data-param="1"' in st.html
    assert "a = 1</span>" in st.html and payload(st.html)["sizes"] == [1, 3]


def test_export_writes_svg_and_png_of_the_starting_figure(tmp_path):
    paths = make().export(tmp_path / "demo")
    assert [p.name for p in paths] == ["demo.svg", "demo.png"]
    assert "a=1 b=2" in paths[0].read_text()  # the title of the starting values, as SVG text
    assert Image.open(paths[1]).size[0] > 100


# -- live widgets ------------------------------------------------------------------------------------
def test_widgets_offer_every_value_not_only_the_static_ones():
    params = [explore.slider("n", [1, 2, 4, 8], static=[1, 8]), explore.choice("c", [("X", "x"), ("Y", "y")]),
              explore.toggle("t", value=True)]
    ex = explore.Explorable(LineView, params, name="w")
    n, c, t = ex.widgets()
    assert [v for _, v in n.options] == [1, 2, 4, 8] and n.value == 1
    assert c.options == (("X", "x"), ("Y", "y")) and t.value is True


def test_live_controls_update_the_one_view():
    LineView.instances = 0
    ex = make()
    state = ex.show_live()
    assert explore.live()[-1] is state and state.name == "demo"
    view = ex._renderer.view
    first = state.png
    state.controls[1].value = 8
    state.controls[0].value = 3
    state.controls[2].value = True
    assert LineView.instances == 1
    assert view.updates[-4:] == [(1, 2, False), (1, 8, False), (3, 8, False), (3, 8, True)]
    assert state.caption == "**product** 24" and state.error is None and state.png != first
    assert len(state.seconds) == 4
    want = pixels(ex.png(ex.reference(a=3, b=8, flip=True)[0], colors=None))
    assert explore.difference(pixels(state.png), want) <= explore.TOLERANCE["fraction"]


def test_a_failing_update_is_shown_not_swallowed():
    class Fragile(LineView):
        def update(self, a, b, flip=False):
            if a == 3:
                raise ValueError("three is too many")
            return super().update(a, b, flip)

    state = make(Fragile).show_live()
    state.controls[0].value = 3
    assert state.error == "ValueError: three is too many"
    state.controls[0].value = 2
    assert state.error is None and state.caption == "**product** 4"


def test_show_picks_the_mode(monkeypatch):
    called = []
    monkeypatch.setattr(explore.Explorable, "show_live", lambda self: called.append(("live", self.name)))
    monkeypatch.setattr(explore.Explorable, "render_static",
                        lambda self: called.append(("static", self.name)) or explore.Static("", 1, 1, 0))
    monkeypatch.setenv(explore.MODE_ENV, "static")
    explore.show(LineView, explore.choice("a", [1, 2]), name="one")
    monkeypatch.setenv(explore.MODE_ENV, "live")
    explore.show(LineView, explore.choice("a", [1, 2]), name="two")
    assert called == [("static", "one"), ("live", "two")]
    with pytest.raises(ValueError, match="mode_="):
        make().show("web")


def test_show_exports_the_figure_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv(explore.FIGURES_ENV, str(tmp_path))
    monkeypatch.setattr(explore.Explorable, "show_live", lambda self: None)
    explore.show(LineView, explore.choice("a", [1, 2]), explore.choice("b", [1]), name="exported")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported.png", "exported.svg"]


def test_the_reference_takes_the_layout_of_the_figure_title_too():
    class Titled(LineView):
        def __init__(self):
            super().__init__()
            self.sup = self.figure.suptitle("a figure title the layout places")  # static, in the layout

    ex = make(Titled)
    got, _ = ex.frame(a=2, b=4)
    ref = explore.Renderer(Titled, ex.dpi, ex.values(a=2, b=4), blit=False, layout_from=ex._renderer)
    assert ref.view.sup.get_position() == ex._renderer.view.sup.get_position()
    assert explore.difference(got, ref.frame(ex.values(a=2, b=4))[0]) <= explore.TOLERANCE["fraction"]


# -- text stamps ------------------------------------------------------------------------------------
def _text_figure(stamped: bool, frozen_legend: bool = False):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3), dpi=83)  # an odd dpi: text lands at fractional pixel offsets
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="tab:blue", lw=4, label="a line, µs ×")
    arts = [fig.suptitle("Two lines, µs ×\nof a centred title", fontsize=10.5),
            ax.legend(loc="upper left", fontsize=7.5),
            ax.text(0.41, 0.47, "over the line: gjq", fontsize=13, color="red"),
            ax.text(0.8, 0.2, "clipped by the axes", fontsize=12, clip_on=True)]
    stamps = explore.TextStamps()
    if stamped:
        for a in arts:
            stamps.attach(a, frozen=frozen_legend and a is ax.get_legend())
    fig.canvas.draw()
    return fig, stamps


def test_text_stamps_draw_the_same_pixels_and_reuse_them():
    direct, _ = _text_figure(False)
    fig, stamps = _text_figure(True)
    want = np.asarray(direct.canvas.buffer_rgba()).copy()
    got = np.asarray(fig.canvas.buffer_rgba()).copy()
    assert np.abs(want.astype(int) - got.astype(int)).max() <= 2  # compositing rounding at most
    lines = len(stamps.stamps)
    assert lines == 5  # the title's two lines, the legend's entry, the two texts
    fig.canvas.draw()  # the second drawing reuses every line
    assert len(stamps.stamps) == lines
    assert np.array_equal(np.asarray(fig.canvas.buffer_rgba()), got)
    fig.texts[0].set_text("Two lines, µs ×\nanother second line")
    fig.canvas.draw()
    assert len(stamps.stamps) == lines + 1  # only the new line is rendered


def test_a_frozen_legend_is_drawn_once_then_stamped():
    direct, _ = _text_figure(False)
    fig, stamps = _text_figure(True, frozen_legend=True)
    want = np.asarray(direct.canvas.buffer_rgba()).astype(int)
    legend = fig.axes[0].get_legend()
    kept = legend._accelbook_stamp
    assert np.abs(want - np.asarray(fig.canvas.buffer_rgba()).astype(int)).max() <= 2
    fig.canvas.draw()
    assert legend._accelbook_stamp is kept  # drawn from the kept image
    assert np.abs(want - np.asarray(fig.canvas.buffer_rgba()).astype(int)).max() <= 2


def test_text_stamps_leave_other_renderers_alone(tmp_path):
    fig, stamps = _text_figure(True)
    n = len(stamps.stamps)
    fig.savefig(tmp_path / "f.svg")  # the SVG renderer draws its own text: nothing stamped
    assert len(stamps.stamps) == n and (tmp_path / "f.svg").stat().st_size > 1000


def test_blitted_dynamic_text_goes_through_the_renderers_stamps():
    ex = make()
    ex.frame(a=1, b=2)
    ex.frame(a=2, b=2)
    stamps = ex._renderer.stamps
    n = len(stamps.stamps)
    assert n >= 2  # the two titles drawn so far
    ex.frame(a=1, b=2)  # a title seen before: nothing new is rendered
    assert len(stamps.stamps) == n


def test_a_shared_palette_maps_later_frames_and_quantizes_a_new_colour_afresh():
    rng = np.random.default_rng(0)
    base = np.full((60, 80, 3), 255, np.uint8)
    base[10:50, 10:40] = (31, 119, 180)
    base[10:50, 45:70] = (20, 20, 20)
    palette = explore.Palette(16)
    first = pixels(palette.png(Image.fromarray(base)))
    again = base.copy()
    again[20:30, 12:38] = (20, 20, 20)  # colours the first frame had, elsewhere
    second = pixels(palette.png(Image.fromarray(again)))
    assert palette.quantized == 1 and palette.mapped == 1
    assert np.abs(first.astype(int) - base).max() <= 8 and np.abs(second.astype(int) - again).max() <= 8
    red = base.copy()
    red[0:30, 0:30] = (230, 30, 30)  # a colour far from every palette entry
    third = pixels(palette.png(Image.fromarray(red)))
    assert palette.quantized == 2  # quantized on its own, not forced onto the old palette
    assert np.abs(third.astype(int) - red).max() <= 8
    noise = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)  # anything: within the fallback's reach
    assert pixels(palette.png(Image.fromarray(noise))).shape == noise.shape


def test_padding_keeps_a_palette_frame_exact():
    small = np.full((30, 40, 3), 255, np.uint8)
    small[5:25, 5:35] = (31, 119, 180)
    big = np.full((50, 60, 3), 255, np.uint8)
    big[5:45, 5:55] = (20, 20, 20)
    frames = [explore._palette_png(Image.fromarray(a), 8) for a in (small, big)]
    padded = explore._pad_to_common_size(frames, 8)
    out = pixels(padded[0])
    assert out.shape == (50, 60, 3) and (out[30:, :] == 255).all() and (out[:, 40:] == 255).all()
    np.testing.assert_array_equal(out[:30, :40], pixels(frames[0]))


def test_a_random_walk_reports_the_full_draws():
    assert make().random_walk(20, seed=1) == 1        # the axes never change: drawn once
    ex = make(HonestView)
    rng, seen = random.Random(1), {ex.start["b"]}  # the same walk: which y limits does it reach?
    for _ in range(20):
        p = rng.choice(ex.params)
        value = rng.choice(p.values)
        seen |= {value} if p.name == "b" else set()
    assert len(seen) >= 2
    assert ex.random_walk(20, seed=1) == len(seen)  # one drawing per background key (y limit) reached


def test_controls_and_explorables_name_their_bad_arguments():
    import numpy as np
    import pytest

    from accelbook import explore

    with pytest.raises(ValueError, match="values must be a non-empty sequence of finite"):
        explore.slider("x", [1.0, float("nan")])
    with pytest.raises(ValueError, match="label=3"):
        explore.slider("x", [1, 2], label=3)
    with pytest.raises(ValueError, match="options must be distinct"):
        explore.choice("c", [1, 1.0])  # equal under == though their reprs differ
    with pytest.raises(ValueError, match="value=True must be one of the values"):
        explore.slider("x", [1, 2], value=True)  # True == 1 in Python
    with pytest.raises(ValueError, match="format=.* must return a string"):
        explore.slider("x", [1, 2], format=lambda v: v)
    assert explore.toggle("t", value=np.bool_(True)).value is True
    e = explore.Explorable(lambda: None, [explore.slider("x", [1, 2])], name="e", dpi=np.int64(40))
    with pytest.raises(ValueError, match="lacks"):
        e.alt({})
    with pytest.raises(TypeError, match="^values=None"):
        e.index(None)
    with pytest.raises(ValueError, match="^description="):
        explore.Explorable(lambda: None, [explore.slider("x", [1, 2])], name="e", description=None)


def test_a_failing_draw_names_the_explorable_and_the_values(monkeypatch):
    import pytest

    from accelbook import explore

    def draw(x):
        raise ZeroDivisionError("boom")
    e = explore.Explorable(lambda: explore.Redraw(draw), [explore.slider("x", [1, 2])], name="broken", dpi=30)
    with pytest.raises(RuntimeError, match=r"explorable 'broken' cannot draw \{'x': 1\}: ZeroDivisionError: boom"):
        e.render_static()


def test_each_frames_alternative_text_says_what_that_frame_shows():
    """The page's alt text is the explorable's description and settings, then the frame's own
    titles and axes (plots.style.describe): each distinct text stored once, indexed per frame."""
    def draw(unit):
        fig = Figure(figsize=(2, 1.5))
        ax = fig.add_subplot()
        ax.plot([0, 1])
        ax.set(xlabel="size (B)", ylabel=f"time ({unit})", title="A made-up figure")
        return fig
    st = explore.Explorable(lambda: explore.Redraw(draw), [explore.choice("unit", ["s", "ms"])],
                            name="alts", description="Time against size").render_static()
    data = payload(st.html)
    texts = [data["details"][i] for i in data["dindex"]]
    assert texts == ["A made-up figure. Plots time (s) against size (B).",
                     "A made-up figure. Plots time (ms) against size (B)."]
    assert 'alt="Time against size: unit = s. A made-up figure. Plots time (s) against size (B)."' in st.html
