"""Explorable figures: declare a figure and its controls once, drive it anywhere.

A chapter declares an explorable with a view and its parameters::

    explore.show(RooflineView, explore.choice("chip", [("H100", "h100-sxm"), ...]),
                 explore.slider("batch", [1, 2, 4, ..., 16384], value=64),
                 name="roofline-batch")

A :class:`View` builds its figure once and, in ``update(**values)``, changes only what the values
change (artists' data, texts, limits), returning a Markdown caption or None. Artists listed in
``view.dynamic`` are drawn over a cached picture of the rest (blitting), so most updates cost a few
milliseconds instead of a full draw. What the reader gets depends on where the notebook runs:

- **live** (Jupyter, Colab; the default): ipywidgets controls; every change updates the view and
  replaces the picture in place. :func:`live` lists what this kernel shows (the tests drive it).
- **static** (the built book; the book's Sphinx extension sets ``ACCELBOOK_EXPLORE=static``): the
  figure is drawn ahead of time for every combination of the parameters' *static* values by
  updating the same view. The page holds those frames as compressed PNGs (identical frames stored
  once) and a few lines of inline JavaScript that switch between them, so the controls work with no
  kernel, no network and no JavaScript library.

Why frames and not a chart drawn in the browser: the figure on the website is the very figure a
reader gets in Colab, drawn by the same Python code; no second drawing in a chart grammar to keep in
step; no chart library to ship. The price is that the website offers a grid of values (declared per
parameter with ``static=``) rather than a continuum, and a frame costs about 10–25 kB, so grids stay
in the tens to low hundreds of frames. :func:`render_static` refuses grids above ``max_frames`` and
pages above ``max_bytes``.

Taught in: every chapter's "Explore it" section.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from accelbook import checks

MODE_ENV = "ACCELBOOK_EXPLORE"
CHECK_ENV = "ACCELBOOK_EXPLORE_CHECK"  # "1": static builds also run Explorable.check()
FIGURES_ENV = "ACCELBOOK_FIGURES_DIR"  # a folder: each explorable also writes its figure there
MODES = ("live", "static")
KINDS = ("dropdown", "slider", "toggle")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def mode() -> str:
    """Where explorables render: ``"live"`` (default) or ``"static"`` (set by the book build)."""
    value = os.environ.get(MODE_ENV, "live").strip().lower() or "live"
    if value not in MODES:
        raise ValueError(f"environment variable {MODE_ENV}={value!r}: allowed values are {MODES}")
    return value


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Real):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Param:
    """One control of an explorable. Build it with :func:`choice`, :func:`slider` or :func:`toggle`."""

    name: str
    kind: str
    values: tuple
    labels: tuple
    value: Any
    label: str
    static: tuple  # indices into ``values`` offered on the static website

    @property
    def start(self) -> int:
        """Index of the starting value."""
        return self.values.index(self.value)

    @property
    def static_values(self) -> tuple:
        return tuple(self.values[i] for i in self.static)


def _member(value: Any, values: Sequence) -> bool:
    """``value in values``, except that a bool only matches a bool (True == 1 in Python)."""
    for v in values:
        if checks.is_bool(v) != checks.is_bool(value):
            continue
        try:
            if bool(v == value):
                return True
        except Exception:  # an array or an odd type: not equal
            continue
    return False


def _param(name, kind, values, labels, value, label, static, values_name="values") -> Param:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name={name!r} must be a Python identifier (it is passed to draw as a keyword)")
    if label is not None and not isinstance(label, str):
        raise ValueError(f"{name}: label={checks.show(label)} must be a string or None")
    values = tuple(checks.sequence(values_name, values, nonempty=False))
    if not values:
        raise ValueError(f"{name}: {values_name} must not be empty")
    if len(set(map(repr, values))) != len(values) or \
            any(_member(v, values[i + 1:]) for i, v in enumerate(values)):
        raise ValueError(f"{name}: {values_name} must be distinct, got {values!r}")
    if value is None:
        value = values[0]
    if not _member(value, values):
        raise ValueError(f"{name}: value={value!r} is not one of the {values_name} {values!r}")
    if static is None:
        static_idx = tuple(range(len(values)))
    else:
        static = tuple(checks.sequence("static", static, nonempty=False))
        missing = [v for v in static if not _member(v, values)]
        if missing or not static:
            raise ValueError(f"{name}: static={static!r} must be a non-empty subset of the values {values!r}")
        if value not in static:
            raise ValueError(f"{name}: static={static!r} must include the starting value {value!r}")
        static_idx = tuple(sorted({values.index(v) for v in static}))
    return Param(name, kind, values, tuple(labels), value, label or name.replace("_", " "), static_idx)


def choice(name: str, options: Sequence, *, value: Any = None, label: str | None = None,
           static: Sequence | None = None) -> Param:
    """A drop-down menu. ``options`` are values, or ``(label, value)`` pairs."""
    options = checks.sequence("options", options, nonempty=False)
    pairs = [o if isinstance(o, tuple) and len(o) == 2 else (_label(o), o) for o in options]
    return _param(name, "dropdown", [v for _, v in pairs], [str(t) for t, _ in pairs], value, label, static,
                  values_name="options")


def slider(name: str, values: Sequence[Real], *, value: Real | None = None, label: str | None = None,
           static: Sequence[Real] | None = None, format: Callable[[Any], str] | None = None) -> Param:
    """A slider over ``values``: real numbers in strictly increasing order (say powers of two)."""
    values = checks.sequence("values", values, nonempty=False)
    if not values or not all(checks.is_real(v) and math.isfinite(v) for v in values):
        raise ValueError(f"{name}: values must be a non-empty sequence of finite real numbers, got {values!r}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"{name}: values must be strictly increasing, got {values!r}")
    if value is not None and not checks.is_real(value):
        raise ValueError(f"{name}: value={checks.show(value)} must be one of the values (a number)")
    if format is not None:
        checks.callable_("format", format)
    labels = [(format or _label)(v) for v in values]
    if not all(isinstance(t, str) for t in labels):
        raise ValueError(f"{name}: format={format!r} must return a string for every value")
    return _param(name, "slider", values, labels, value, label, static)


def toggle(name: str, *, value: bool = False, label: str | None = None) -> Param:
    """A check box: ``draw`` receives False or True."""
    if not checks.is_bool(value):
        raise ValueError(f"{name}: value={value!r} must be True or False")
    return _param(name, "toggle", [False, True], ["off", "on"], bool(value), label, None)

# ---------------------------------------------------------------------------------------------
# Views: a figure drawn once and updated
# ---------------------------------------------------------------------------------------------
class View:
    """An explorable's figure, built once and then updated for each setting of its controls.

    Subclass it: build ``self.figure`` (a :class:`matplotlib.figure.Figure`, not a pyplot figure)
    and every artist in ``__init__``; in :meth:`update` set what depends on the values (artists'
    data, texts, visibility) and return the Markdown caption, or None.

    Two optional attributes make updates cost a fraction of a draw:

    - ``dynamic``: the artists that :meth:`update` changes. They are drawn over a cached picture
      of everything else (blitting), so they must sit on top of the static artists. They take no
      part in the layout (the figure is laid out once, at the starting values).
    - :meth:`background`: a key of the values that change anything *outside* ``dynamic`` (say an
      axis limit). The picture of the static artists is cached per key; a new key redraws it.

    A view that sets neither is still drawn once per update without being rebuilt. The book's
    build checks every explorable: each frame it makes by updating must equal, pixel for pixel
    within :data:`TOLERANCE`, the same settings drawn from scratch by a fresh view.
    """

    figure: Any = None
    dynamic: Sequence = ()

    def update(self, **values) -> str | None:
        raise NotImplementedError("a View subclass must define update(**values)")

    def background(self, **values) -> Hashable:
        return None


class Redraw(View):
    """Adapter for a plain drawing function ``draw(**values) -> Figure or (Figure, caption)``:
    every update builds a new figure. Convenient for tests and sketches; a chapter's explorable
    should be a :class:`View` that updates its artists."""

    def __init__(self, draw: Callable[..., Any]):
        if not callable(draw):
            raise TypeError(f"draw must be callable, got {type(draw).__name__}")
        self._draw = draw

    def update(self, **values):
        fig, caption = _split(self._draw(**values))
        _release(fig)
        self.figure = fig
        return caption


# A frame made by updating passes the check when at most this fraction of its pixels differs from
# a fresh view's full drawing by more than this many levels (of 255) in some channel.
TOLERANCE = {"levels": 48, "fraction": 0.002}


def _agg(fig):
    """``fig``'s Agg canvas (attached if the figure has none)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"a View's figure must be a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas


class Renderer:
    """Turns a view and a sequence of settings into RGB frames, redrawing as little as it can.

    The figure is laid out once, at ``start`` (the explorable's starting values), and the layout is
    then frozen, so every frame shares it. ``blit=False`` draws every frame in full: the reference
    that :meth:`Explorable.check` compares against."""

    def __init__(self, make: Callable[[], View], dpi: int, start: dict, *, blit: bool = True, cache: int = 32,
                 layout_from: "Renderer | None" = None):
        view = make()
        if not isinstance(view, View):
            raise TypeError(f"the explorable's view factory must return an explore.View, got "
                            f"{type(view).__name__} (wrap a plain drawing function in explore.Redraw)")
        self.view, self.dpi, self.start, self.blit, self.size = view, dpi, start, blit, cache
        self.fig, self.backgrounds, self.full_draws = None, OrderedDict(), 0
        self._layout_from, self.stamps = layout_from, TextStamps()
        self._update(start)

    def _update(self, values: dict):
        caption = self.view.update(**values)
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"the caption returned by update must be a Markdown string; got {type(caption).__name__}")
        for a in self.view.dynamic:
            a.set_in_layout(False)
            a.set_animated(self.blit)
        fig = self.view.figure
        if fig is not self.fig:  # a new figure (the first, or a view that rebuilds): lay it out once
            _agg(fig)
            fig.set_dpi(self.dpi)
            engine, other = fig.get_layout_engine(), self._layout_from
            if other is not None and len(other.fig.axes) == len(fig.axes):  # the same layout, no engine run
                for mine, theirs in zip(fig.axes, other.fig.axes):
                    mine.set_position(theirs.get_position(original=True), which="original")
                    mine.set_position(theirs.get_position(original=False), which="active")
                for attr in ("_suptitle", "_supxlabel", "_supylabel"):  # the layout may move these too
                    mine, theirs = getattr(fig, attr, None), getattr(other.fig, attr, None)
                    if mine is not None and theirs is not None:
                        mine.set_position(theirs.get_position())
            elif engine is not None:
                engine.execute(fig)
            fig.set_layout_engine("none")
            self.fig = fig
            self.backgrounds.clear()
        return caption

    def frame(self, values: dict) -> tuple[np.ndarray, str | None]:
        """Update the view to ``values``; return the whole canvas (an (H, W, 4) RGBA array, opaque) and
        the caption."""
        caption = self._update(values)
        fig, canvas = self.fig, self.fig.canvas
        key = self.view.background(**values) if self.blit else object()
        if key in self.backgrounds:
            canvas.restore_region(self.backgrounds[key])
            self.backgrounds.move_to_end(key)
        else:
            canvas.draw()
            self.full_draws += 1
            if self.blit:
                self.backgrounds[key] = canvas.copy_from_bbox(fig.bbox)
                while len(self.backgrounds) > self.size:
                    self.backgrounds.popitem(last=False)
        if self.blit:
            renderer = self.stamps.wrap(canvas.get_renderer())  # dynamic text: rendered once per line
            for a in self.view.dynamic:
                if a.get_visible():
                    a.draw(renderer)
        return np.array(canvas.buffer_rgba(), copy=True), caption


class TextStamps:
    """The pixels of rendered lines of text, drawn again as images when the same line comes back.

    Matplotlib's Agg backend renders text one glyph at a time on every draw, and in an explorable
    view that updates its title and legend on every frame, the text takes most of the time (about
    0.3 ms of CPU per glyph here, against 0.01 ms for the same line stamped from this cache).
    ``attach(artist)`` routes the text that ``artist`` (a Text, a Legend) draws on an Agg canvas
    through the cache: a line is rendered once onto a scratch canvas at the same sub-pixel offset,
    cropped to its ink and kept, keyed by its string, font, colour and sub-pixel offset; each later
    draw of that line composites the kept pixels, which gives the same pixels as rendering it again.
    Other renderers (SVG, PDF), math, rotated and translucent text draw as usual. The ``size`` most
    recently used lines are kept. Every :class:`Renderer` draws its view's dynamic artists through
    one, so :meth:`Explorable.check` compares stamped text with text rendered afresh.
    """

    def __init__(self, size: int = 256):
        size = checks.positive_int("size", size, maximum=10**6)
        self.size, self.stamps, self._proxy = size, OrderedDict(), None

    def attach(self, artist, *, frozen: bool = False):
        """Make ``artist`` draw its text through the cache; returns ``artist``.

        ``frozen=True`` is for an artist that does not change once made (a legend that is rebuilt,
        not edited, when its entries change): its whole drawing on an Agg canvas is kept as one
        image, made on its first drawing on a canvas of that size, and drawn again from there."""
        draw = artist.draw
        if not frozen:
            artist.draw = lambda renderer, *args, **kwargs: draw(self.wrap(renderer), *args, **kwargs)
            return artist

        def draw_frozen(renderer, *args, **kwargs):
            from matplotlib.backends.backend_agg import RendererAgg

            if isinstance(renderer, _StampingRenderer):  # handed the stamping proxy: keep the picture anyway
                renderer = renderer._renderer
            if not isinstance(renderer, RendererAgg):
                return draw(renderer, *args, **kwargs)
            size = (renderer.width, renderer.height, renderer.dpi)
            kept = getattr(artist, "_accelbook_stamp", None)
            if kept is None or kept[0] != size:
                scratch = RendererAgg(int(renderer.width), int(renderer.height), renderer.dpi)
                draw(_StampingRenderer(scratch, self), *args, **kwargs)
                rgba = np.asarray(scratch.buffer_rgba())
                ink = rgba[..., 3] > 0
                rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
                image = None if rows.size == 0 else rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1][::-1].copy()
                kept = (size, image, cols[0] if image is not None else 0,
                        renderer.height - rows[-1] - 1 if image is not None else 0)
                artist._accelbook_stamp = kept
            _size, image, x0, y0 = kept
            if image is not None:
                gc = renderer.new_gc()
                renderer.draw_image(gc, x0, y0, image)
                gc.restore()

        artist.draw = draw_frozen
        return artist

    def wrap(self, renderer):
        """``renderer`` with its ``draw_text`` going through this cache (any other renderer as is)."""
        from matplotlib.backends.backend_agg import RendererAgg

        if not isinstance(renderer, RendererAgg):
            return renderer
        if self._proxy is None or self._proxy._renderer is not renderer:  # one proxy per canvas:
            self._proxy = _StampingRenderer(renderer, self)  # matplotlib caches text metrics per renderer
        return self._proxy

    def _stamp(self, renderer, gc, x, y, s, prop, ismath, mtext):
        """The line ``s`` as Agg's ``draw_text`` draws it at (x, y) (pixels from the top left), unclipped:
        (its ink, bottom row first; the ink's offset from ``floor(x), floor(y)``), or None if blank."""
        ix, iy = math.floor(x), math.floor(y)
        key = (s, hash(prop), tuple(gc.get_rgb()), gc.get_alpha(), gc.get_antialiased(), renderer.dpi,
               round(64 * (x - ix)), round(64 * (y - iy)))  # FreeType places glyphs in 1/64 pixels
        if key in self.stamps:
            self.stamps.move_to_end(key)
            return self.stamps[key]
        from matplotlib.backends.backend_agg import RendererAgg

        w, h, _d = renderer.get_text_width_height_descent(s, prop, ismath)
        pad, top = int(h) + 8, int(2 * h) + 8
        scratch = RendererAgg(int(w) + 2 * pad, int(h) + 2 * top, renderer.dpi)
        plain = scratch.new_gc()
        plain.copy_properties(gc)
        plain.set_clip_rectangle(None)  # the real canvas clips when the stamp is drawn
        plain.set_clip_path(None)
        scratch.draw_text(plain, x - ix + pad, y - iy + top, s, prop, 0, ismath, mtext)  # whole-pixel shift
        plain.restore()
        rgba = np.asarray(scratch.buffer_rgba())
        ink = rgba[..., 3] > 0
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        stamp = None if rows.size == 0 else (
            rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1][::-1].copy(), cols[0] - pad, rows[0] - top)
        self.stamps[key] = stamp
        while len(self.stamps) > self.size:
            self.stamps.popitem(last=False)
        return stamp


class _StampingRenderer:
    """An Agg renderer whose ``draw_text`` goes through a :class:`TextStamps`; all else is forwarded."""

    def __init__(self, renderer, owner: TextStamps):
        self._renderer, self._owner = renderer, owner

    def __getattr__(self, name):
        return getattr(self._renderer, name)

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        r = self._renderer
        if ismath or angle or gc.get_alpha() != 1:  # math, turned or translucent text: drawn as usual
            return r.draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        stamp = self._owner._stamp(r, gc, x, y, s, prop, ismath, mtext)
        if stamp is not None:
            image, dx, dy = stamp  # image rows bottom-up, as draw_image wants them
            r.draw_image(gc, math.floor(x) + dx, r.height - (math.floor(y) + dy + image.shape[0]), image)


def _crop(img: np.ndarray, pad: int) -> np.ndarray:
    """The drawing without its white margin, plus ``pad`` white pixels (like ``bbox_inches="tight"``).

    ``img`` is RGB or RGBA (an opaque canvas: alpha 255 counts as white). Comparing whole rows as
    one flat run of bytes keeps this well under a millisecond for a full figure."""
    h, w = img.shape[:2]
    rows = np.flatnonzero((img.reshape(h, -1) != 255).any(axis=1))
    if rows.size == 0:
        return img
    cols = np.flatnonzero((img[rows[0]:rows[-1] + 1] != 255).any(axis=0).any(axis=1))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + 1 + pad, h)
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + 1 + pad, w)
    return img[r0:r1, c0:c1]


def _frame(name: str, img: Any) -> np.ndarray:
    """An RGB or RGBA frame: a uint8 array of shape (height, width, 3 or 4), not empty."""
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3
            and img.shape[2] in (3, 4) and img.size):
        raise ValueError(f"{name}={checks.show(img)} must be a non-empty uint8 RGB or RGBA array "
                         "of shape (height, width, 3 or 4)")
    return img


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels where two frames (RGB or RGBA) differ by more than ``TOLERANCE["levels"]``
    in a colour channel."""
    a, b = _frame("a", a), _frame("b", b)
    if a.shape != b.shape:
        return 1.0
    diff = np.abs(a[..., :3].astype(np.int16) - b[..., :3].astype(np.int16)).max(axis=2)
    return float((diff > TOLERANCE["levels"]).mean())


class Palette:
    """One palette for all the frames of an explorable, so that most frames skip quantizing.

    The first frame is quantized as usual (:func:`_palette_png`) and its palette kept, with a lookup
    table from every colour (5 bits a channel) to the nearest palette entry. Each later frame is
    mapped through the table, a few milliseconds instead of a quantization; where that could move
    more than :attr:`max_off` of its pixels by more than :attr:`levels` (a colour the first frame
    did not have; judged by a per-bin bound, never by a sample), the frame is quantized on its own. Taught in: how the site's frames are
    made (the explorables of every chapter)."""

    levels, max_off = 24, 0.0005

    def __init__(self, colors: int):
        colors = checks.integer("colors", colors, minimum=2, maximum=256)
        self.colors, self.rgb, self.lut = colors, None, None
        self.mapped = self.quantized = 0

    @staticmethod
    def _bins(rgb: np.ndarray) -> np.ndarray:
        c = rgb >> 3  # uint8
        return (c[..., 0].astype(np.uint16) << 10) | (c[..., 1].astype(np.uint16) << 5) | c[..., 2]

    def png(self, img) -> bytes:
        from PIL import Image

        checks.instance("img", img, Image.Image)
        rgb = np.asarray(img)
        if self.lut is None:
            q = _quantize(img, self.colors)
            self.rgb = np.array(q.getpalette()[: 3 * self.colors], dtype=np.int16).reshape(-1, 3)
            centres = np.arange(4, 256, 8, dtype=np.int32)
            grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), axis=-1).reshape(-1, 1, 3)
            self.lut = np.concatenate([((chunk - self.rgb[None].astype(np.int32)) ** 2).sum(axis=2).argmin(axis=1)
                                       for chunk in np.array_split(grid, 8)]).astype(np.uint8)
            # A palette colour maps to itself, not to the entry nearest its bin's centre; where two share
            # a bin, the more frequent one wins (the background stays exactly white).
            for _count, i in sorted(q.getcolors(256) or []):
                self.lut[self._bins(self.rgb[i].astype(np.uint8).reshape(1, 1, 3))[0, 0]] = i
            # The most any colour of a bin can be off after mapping (a bin spans 8 levels a channel).
            low = (grid.reshape(-1, 3) - 4).astype(np.int16)
            entry = self.rgb[self.lut]
            worst = np.maximum(np.abs(low - entry), np.abs(low + 7 - entry)).max(axis=1)
            self.bad = worst > self.levels
            self.quantized += 1
            return _save_png(q)
        bins = self._bins(rgb)
        if np.count_nonzero(self.bad[bins]) > self.max_off * bins.size:  # bound: no pixel is off by more
            self.quantized += 1
            return _save_png(_quantize(img, self.colors))
        index = self.lut[bins]
        self.mapped += 1
        out = Image.frombytes("P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index).tobytes())
        out.putpalette(self.rgb.astype(np.uint8).ravel().tolist())
        return _save_png(out)


def _encode(rgb: np.ndarray, colors: int | None, palette: Palette | None = None) -> bytes:
    """PNG bytes: a ``colors``-colour palette image (the site; through ``palette`` when given), or
    RGB at low compression (live, ``colors=None``)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb))
    if img.mode != "RGB":
        img = img.convert("RGB")
    if colors is None:
        out = io.BytesIO()
        img.save(out, format="PNG", compress_level=1)
        return out.getvalue()
    return palette.png(img) if palette is not None else _palette_png(img, colors)


def _split(result) -> tuple[Any, str | None]:
    from matplotlib.figure import Figure

    fig, caption = (result if isinstance(result, tuple) else (result, None))
    if not isinstance(fig, Figure):
        raise TypeError(f"draw must return a matplotlib Figure or (Figure, caption); got {type(fig).__name__}")
    if caption is not None and not isinstance(caption, str):
        raise TypeError(f"the caption returned by draw must be a Markdown string; got {type(caption).__name__}")
    return fig, caption


def _release(fig) -> None:
    """Close a pyplot-managed figure so the inline backend does not show it a second time."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


@dataclass
class Static:
    """The kernel-free rendering of an explorable, with what it cost."""

    html: str
    frames: int           # combinations of static values
    unique_frames: int    # distinct images stored
    bytes: int            # size of ``html`` (UTF-8)
    draw_seconds: list = field(default_factory=list)  # per frame: update + draw + PNG encode
    full_draws: int = 0   # frames for which the whole figure was drawn (the rest were blitted)


@dataclass
class Live:
    """An explorable shown live in this kernel: its controls and what it shows now."""

    explorable: "Explorable"
    controls: list
    png: bytes = b""
    caption: str = ""
    error: str | None = None
    seconds: list = field(default_factory=list)  # per update: update + draw + encode

    @property
    def name(self) -> str:
        return self.explorable.name


_LIVE: list[Live] = []


def live() -> list[Live]:
    """The live explorables displayed so far in this kernel, in display order."""
    return list(_LIVE)


class Explorable:
    """A figure (a :class:`View`) and the parameters that drive it. See the module docstring."""

    def __init__(self, make: Callable[[], View], params: Sequence[Param], *, name: str,
                 description: str = "Interactive figure", dpi: int = 96, colors: int = 128,
                 max_frames: int = 160, max_bytes: int = 1_500_000):
        if not callable(make):
            raise TypeError(f"make must be a View class or a function returning a View, got {type(make).__name__}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name={name!r} must be lower-case letters, digits and hyphens, starting "
                             "with a letter (it becomes the HTML id)")
        params = checks.sequence("params", params, nonempty=False)
        if not params or not all(isinstance(p, Param) for p in params):
            raise ValueError("params must be a non-empty sequence of explore.choice/slider/toggle")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"params: names must be distinct, got {names}")
        for arg, v, lo, hi in (("dpi", dpi, 30, 300), ("colors", colors, 2, 256),
                               ("max_frames", max_frames, 1, 10_000), ("max_bytes", max_bytes, 1, 50_000_000)):
            if not isinstance(v, (int, np.integer)) or checks.is_bool(v) or not lo <= v <= hi:
                raise ValueError(f"{arg}={v!r} must be an integer from {lo} to {hi}")
        checks.text("description", description)
        dpi, colors, max_frames, max_bytes = int(dpi), int(colors), int(max_frames), int(max_bytes)
        self.make, self.params, self.name, self.description = make, params, name, description
        self.dpi, self.colors, self.max_frames, self.max_bytes = dpi, colors, max_frames, max_bytes
        self._renderer: Renderer | None = None

    # -- the model of the controls -------------------------------------------------------------
    @property
    def start(self) -> dict:
        return {p.name: p.value for p in self.params}

    def grid(self) -> list[dict]:
        """Every combination of static values, in the order the page indexes them (last fastest)."""
        return [dict(zip((p.name for p in self.params), combo))
                for combo in itertools.product(*(p.static_values for p in self.params))]

    def _named(self, values: Any) -> None:
        checks.instance("values", values, dict)
        missing = [p.name for p in self.params if p.name not in values]
        if missing:
            raise ValueError(f"values={checks.show(values)} lacks {missing}; it needs a value for each of "
                             f"{[p.name for p in self.params]}")

    def index(self, values: dict) -> int:
        """Position of ``values`` in :meth:`grid` (mixed radix over the static values)."""
        self._named(values)
        k = 0
        for p in self.params:
            sv = p.static_values
            if not _member(values[p.name], sv):
                raise ValueError(f"{p.name}={values[p.name]!r} is not among its static values {sv!r}")
            k = k * len(sv) + sv.index(values[p.name])
        return k

    def values(self, **values) -> dict:
        """``values`` completed with the starting values, each checked against its parameter."""
        unknown = set(values) - {p.name for p in self.params}
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; allowed: {[p.name for p in self.params]}")
        kwargs = {**self.start, **values}
        for p in self.params:
            if not _member(kwargs[p.name], p.values):
                raise ValueError(f"{p.name}={kwargs[p.name]!r} is not one of {p.values!r}")
        return kwargs

    def alt(self, values: dict) -> str:
        self._named(values)
        for p in self.params:
            if not _member(values[p.name], p.values):
                raise ValueError(f"values[{p.name!r}]={values[p.name]!r} is not one of {p.values!r}")
        parts = [f"{p.label} = {p.labels[p.values.index(values[p.name])]}" for p in self.params]
        return f"{self.description}: " + ", ".join(parts)

    # -- drawing ----------------------------------------------------------------------------------
    def renderer(self, *, blit: bool = True) -> Renderer:
        """A new renderer whose view is laid out at the starting values (as every frame is)."""
        return Renderer(self.make, self.dpi, self.start, blit=blit)

    def frame(self, **values) -> tuple[np.ndarray, str | None]:
        """The canvas (RGBA array) and caption for ``values``, updating this explorable's one view."""
        values = self.values(**values)
        if self._renderer is None:
            self._renderer = self.renderer()
        return self._renderer.frame(values)

    def random_walk(self, moves: int, seed: int = 0) -> int:
        """Move one control at a time to a random value ``moves`` times, as a reader might, drawing
        each frame; return how many full draws this explorable's view has needed (1: every update
        after the first drawing was blitted). The tests and the benchmark use it."""
        import random

        rng = random.Random(seed)
        values = dict(self.start)
        self.frame(**values)
        for _ in range(moves):
            p = rng.choice(self.params)
            values[p.name] = rng.choice(p.values)
            self.frame(**values)
        return self._renderer.full_draws

    def reference(self, **values) -> tuple[np.ndarray, str | None]:
        """The same, drawn from scratch by a fresh view updated straight to ``values``, with nothing
        cached and every artist drawn in z-order (the layout is copied, not recomputed): what
        :meth:`frame` must equal."""
        values = self.values(**values)
        if self._renderer is None:
            self._renderer = self.renderer()
        return Renderer(self.make, self.dpi, values, blit=False, layout_from=self._renderer).frame(values)

    def png(self, rgb: np.ndarray, *, colors: int | None = -1, palette: Palette | None = None) -> bytes:
        """A frame (RGB or RGBA array) as PNG, cropped to its drawing: a palette of ``self.colors``
        colours by default, RGB at low compression with ``colors=None`` (the live path)."""
        rgb = _frame("rgb", rgb)
        if colors is not None and not (checks.is_real(colors) and colors == -1):
            colors = checks.integer("colors", colors, minimum=2, maximum=256)
        if palette is not None:
            checks.instance("palette", palette, Palette)
        return _encode(_crop(rgb, round(0.08 * self.dpi)), self.colors if colors == -1 else colors, palette)

    def start_figure(self):
        """A fresh view's figure at the starting values, every artist drawn normally (for export)."""
        r = self.renderer(blit=False)
        r.frame(self.start)
        return r.view.figure

    # -- static -----------------------------------------------------------------------------------
    def render_static(self) -> Static:
        """Draw every frame of the static grid and build the kernel-free HTML."""
        n = 1
        for p in self.params:
            n *= len(p.static)
        if n > self.max_frames:
            sizes = ", ".join(f"{p.name}: {len(p.static)}" for p in self.params)
            raise ValueError(f"explorable {self.name!r}: its static grid has {n} frames ({sizes}); "
                             f"max_frames={self.max_frames}. Offer fewer values with static=...")
        frames, captions, index, cindex, per_frame = {}, {}, [], [], []  # dicts: distinct items, in order
        details, dindex = {}, []  # each frame's text description (its alternative text), distinct ones once
        palette, seen = Palette(self.colors), {}  # seen: a digest of each distinct canvas -> its PNG
        for values in self.grid():
            t0 = time.perf_counter()
            try:
                rgb, cap = self.frame(**values)
            except Exception as err:
                raise RuntimeError(f"explorable {self.name!r} cannot draw {values!r}: "
                                   f"{type(err).__name__}: {err}") from err
            digest = hashlib.blake2b(rgb.data, digest_size=16).digest()
            if digest not in seen:  # an identical canvas is encoded once
                seen[digest] = self.png(rgb, palette=palette)
            data = seen[digest]
            per_frame.append(time.perf_counter() - t0)
            index.append(frames.setdefault(data, len(frames)))
            cindex.append(captions.setdefault(_markdown_html(cap) if cap is not None else "", len(captions)))
            dindex.append(details.setdefault(_describe(self._renderer.fig), len(details)))
        frames = _pad_to_common_size(list(frames), self.colors)
        page = self._html(frames, index, list(captions), cindex, list(details), dindex)
        size = len(page.encode())
        if size > self.max_bytes:
            raise ValueError(f"explorable {self.name!r} weighs {size / 1e6:.2f} MB with {len(frames)} distinct "
                             f"frames; max_bytes={self.max_bytes}. Offer fewer static values, or lower dpi.")
        return Static(page, n, len(frames), size, per_frame, self._renderer.full_draws)

    def _html(self, frames, index, captions, cindex, details=None, dindex=None) -> str:
        from PIL import Image

        uid = f"accelbook-explore-{self.name}"
        start = self.index(self.start)
        width, height = Image.open(io.BytesIO(frames[0])).size
        controls = []
        for i, p in enumerate(self.params):
            cid = f"{uid}-{p.name}"
            j0 = p.static.index(p.start)
            if len(p.static) == 1:  # one value drawn for the website: say so, offer no dead control
                control = (f'<span class="accelbook-explore-fixed" title="the only value drawn for this '
                           f'page; every value is on offer in Jupyter or Colab">{html.escape(p.label)} = '
                           f'{html.escape(p.labels[p.start])}</span>')
            elif p.kind == "toggle":
                checked = " checked" if p.value else ""
                control = (f'<label for="{cid}"><input type="checkbox" id="{cid}" data-param="{i}"{checked}> '
                           f'{html.escape(p.label)}</label>')
            elif p.kind == "slider" and len(p.static) > 2:  # two stops read better as a menu
                control = (f'<label for="{cid}">{html.escape(p.label)}</label>'
                           f'<input type="range" id="{cid}" data-param="{i}" min="0" max="{len(p.static) - 1}" '
                           f'step="1" value="{j0}"><output for="{cid}">{html.escape(p.labels[p.start])}</output>')
            else:
                opts = "".join(f'<option value="{j}"{" selected" if j == j0 else ""}>'
                               f'{html.escape(p.labels[k])}</option>' for j, k in enumerate(p.static))
                control = (f'<label for="{cid}">{html.escape(p.label)}</label>'
                           f'<select id="{cid}" data-param="{i}">{opts}</select>')
            controls.append(f'<span class="accelbook-explore-control">{control}</span>')
        subset = any(len(p.static) < len(p.values) for p in self.params)
        note = ("On this page each control offers the values drawn when the book was built; run the chapter "
                "in Jupyter or Colab to explore every value." if subset else
                "Every frame was drawn when the book was built; run the chapter in Jupyter or Colab to change the code.")
        data = {
            "sizes": [len(p.static) for p in self.params],
            "labels": [[p.labels[k] for k in p.static] for p in self.params],
            "names": [p.label for p in self.params],
            "description": self.description,
            "frames": [base64.b64encode(f).decode() for f in frames],
            "index": index, "captions": captions, "cindex": cindex,
            "details": details or [""], "dindex": dindex or [0] * len(index),
        }
        payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        caption = captions[cindex[start]]
        return (
            f'<div class="accelbook-explore" id="{uid}" data-frame="{index[start]}">'
            f'<div class="accelbook-explore-controls">{"".join(controls)}</div>'
            f'<img class="accelbook-explore-figure" width="{width}" height="{height}" '
            f'alt="{html.escape(_alt_text(self.alt(self.start), data["details"][data["dindex"][start]]))}" '
            f'src="data:image/png;base64,{data["frames"][index[start]]}">'
            f'<div class="accelbook-explore-caption" aria-live="polite">{caption}</div>'
            f'<p class="accelbook-explore-note">{note}</p>'
            f'<script type="application/json" class="accelbook-explore-data">{payload}</script>'
            f"<script>{_JS.replace('@UID@', uid)}</script></div>"
        )

    # -- live -------------------------------------------------------------------------------------
    def widgets(self) -> list:
        """One ipywidget per parameter, holding every value (not only the static ones)."""
        import ipywidgets as w

        style, out = {"description_width": "initial"}, []
        for p in self.params:
            if p.kind == "toggle":
                out.append(w.Checkbox(value=p.value, description=p.label, style=style, indent=False))
            elif p.kind == "slider":
                out.append(w.SelectionSlider(options=list(zip(p.labels, p.values)), value=p.value,
                                             description=p.label, style=style, continuous_update=False))
            else:
                out.append(w.Dropdown(options=list(zip(p.labels, p.values)), value=p.value,
                                      description=p.label, style=style))
        return out

    def show_live(self) -> Live:
        """Display the controls and the figure; each change updates the one figure. Returns the
        :class:`Live` record (also listed by :func:`live`)."""
        import ipywidgets as w
        from IPython.display import DisplayHandle, Image, Markdown

        state = Live(self, self.widgets())
        fig_handle, cap_handle = DisplayHandle(), DisplayHandle()

        def render(values: dict):
            t0 = time.perf_counter()
            rgb, caption = self.frame(**values)
            state.png, state.caption = self.png(rgb, colors=None), caption or ""
            state.seconds.append(time.perf_counter() - t0)

        from IPython.display import display

        display(w.HBox(state.controls, layout=w.Layout(flex_flow="row wrap")))
        try:
            render(self.start)
        except Exception as err:
            raise RuntimeError(f"explorable {self.name!r} cannot draw its starting values {self.start!r}: "
                               f"{type(err).__name__}: {err}") from err
        fig_handle.display(Image(data=state.png, format="png"))
        cap_handle.display(Markdown(state.caption))

        def changed(_change=None):
            values = {p.name: c.value for p, c in zip(self.params, state.controls)}
            try:
                render(values)
            except Exception as err:  # show the reader what went wrong instead of failing silently
                state.error = f"{type(err).__name__}: {err}"
                cap_handle.update(Markdown(f"**Could not draw this combination:** `{err}`"))
                return
            state.error = None
            fig_handle.update(Image(data=state.png, format="png"))
            cap_handle.update(Markdown(state.caption))

        for c in state.controls:
            c.observe(changed, names="value")
        _LIVE.append(state)
        return state

    # -- checks -----------------------------------------------------------------------------------
    def check_settings(self) -> list[dict]:
        """The settings the build checks: each parameter at the ends of its *live* range (the
        others at their start), then up to four frames of the static grid spread across it."""
        out = [self.start]
        for p in self.params:
            for v in dict.fromkeys((p.values[0], p.values[-1])):
                if v != p.value:
                    out.append({**self.start, p.name: v})
        grid = self.grid()
        out += [grid[i] for i in sorted({round(k * (len(grid) - 1) / 3) for k in range(4)})]
        return list({repr(sorted(v.items())): v for v in out}.values())

    def check(self) -> int:
        """Draw every :meth:`check_settings` setting by updating one view, and each again from
        scratch with a fresh view; they must agree within :data:`TOLERANCE`, and no drawing may
        leave the canvas. Catches a live value the drawing cannot handle and an update that
        forgets something. Returns the number of settings checked. The test suite's book build
        runs it for every explorable (``ACCELBOOK_EXPLORE_CHECK=1``)."""
        settings = self.check_settings()
        for values in settings:
            try:
                got, cap = self.frame(**values)
                want, want_cap = self.reference(**values)
            except Exception as err:
                raise RuntimeError(f"explorable {self.name!r} cannot draw {values!r}: {err}") from err
            diff = difference(got, want)
            if diff > TOLERANCE["fraction"] or cap != want_cap:
                raise RuntimeError(
                    f"explorable {self.name!r} at {values!r}: the updated figure differs from a full "
                    f"redraw in {100 * diff:.2f} % of its pixels (allowed {100 * TOLERANCE['fraction']:.2f} %)"
                    + ("" if cap == want_cap else "; the captions differ too")
                    + ". The view's update misses something, or a dynamic artist is not on top.")
            self._check_inside(values, dynamic_only=values is not settings[0])
        return len(settings)

    def _check_inside(self, values: dict, dynamic_only: bool) -> None:
        """Raise if anything drawn (only the dynamic artists, after the first setting) leaves the figure."""
        from matplotlib.transforms import Bbox

        fig = self._renderer.fig
        renderer = fig.canvas.get_renderer()
        if dynamic_only:
            boxes = [a.get_window_extent(renderer) for a in self._renderer.view.dynamic if a.get_visible()]
            boxes = [b for b in boxes if b.width > 0 or b.height > 0]
            if not boxes:
                return
            box = Bbox.union(boxes).transformed(fig.dpi_scale_trans.inverted())
        else:
            box = fig.get_tightbbox(renderer)
        w, h = fig.get_size_inches()
        if box.x0 < -0.01 or box.y0 < -0.01 or box.x1 > w + 0.01 or box.y1 > h + 0.01:
            raise RuntimeError(f"explorable {self.name!r} at {values!r}: the drawing leaves the figure "
                               f"(extent {box.x0:.2f}..{box.x1:.2f} × {box.y0:.2f}..{box.y1:.2f} in, "
                               f"figure {w:.2f} × {h:.2f} in): it would be cut off")

    def export(self, stem) -> list:
        """Write the figure at its starting values as ``stem.svg`` and ``stem.png``; return the paths."""
        import pathlib

        fig, paths = self.start_figure(), []
        for ext in ("svg", "png"):
            path = pathlib.Path(f"{stem}.{ext}")
            fig.savefig(path, format=ext, dpi=self.dpi, bbox_inches="tight", pad_inches=0.08, facecolor="white")
            paths.append(path)
        return paths

    def show(self, mode_: str | None = None):
        """Display the explorable live or static (default: :func:`mode`)."""
        m = mode() if mode_ is None else mode_
        if m not in MODES:
            raise ValueError(f"mode_={m!r}: allowed values are {MODES}")
        target = os.environ.get(FIGURES_ENV)
        if target:
            self.export(os.path.join(target, self.name))
        if m == "live":
            return self.show_live()
        from IPython.display import HTML, display

        if os.environ.get(CHECK_ENV) == "1":
            self.check()
        display(HTML(self.render_static().html))


def show(make: Callable[[], View], *params: Param, name: str, **options) -> None:
    """Declare an explorable and display it (live in a kernel, static in the built book).

    ``make`` is a :class:`View` subclass or a function returning a View."""
    Explorable(make, params, name=name, **options).show()


def _describe(fig) -> str:
    """What the figure shows, in words (:func:`accelbook.plots.style.describe`), without its
    "Figure: " lead; empty if it cannot be described."""
    from accelbook.plots.style import describe

    try:
        text = describe(fig)
    except Exception:  # a description is a courtesy: it never stops a figure from being drawn
        return ""
    return text.removeprefix("Figure: ") if text.startswith("Figure: ") else ""


def _alt_text(settings: str, detail: str) -> str:
    """A frame's alternative text: the explorable's description and settings, then what it shows
    (the same joining as the page's JavaScript)."""
    return settings + (". " + detail if detail else "")


def _markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def _pad_to_common_size(frames: list[bytes], colors: int) -> list[bytes]:
    """Put every frame on a white canvas of the largest frame's size, so the page does not jump.
    A palette frame keeps its palette (padded with its own white); any other is quantized."""
    from PIL import Image

    images = [Image.open(io.BytesIO(f)) for f in frames]
    w, h = max(i.size[0] for i in images), max(i.size[1] for i in images)
    out = []
    for data, img in zip(frames, images):
        if img.size == (w, h):
            out.append(data)
            continue
        palette = img.getpalette() if img.mode == "P" else None
        entries = [tuple(palette[i:i + 3]) for i in range(0, len(palette), 3)] if palette else []
        if (255, 255, 255) in entries:
            canvas = Image.new("P", (w, h), entries.index((255, 255, 255)))
            canvas.putpalette(palette)
            canvas.paste(img, (0, 0))
            out.append(_save_png(canvas))
        else:
            canvas = Image.new("RGB", (w, h), "white")
            canvas.paste(img.convert("RGB"), (0, 0))
            out.append(_palette_png(canvas, colors))
    return out


def _quantize(img, colors: int):
    """``img`` reduced to at most ``colors`` colours. MAXCOVERAGE keeps black black and light tints
    distinct from white, which the faster octree method does not."""
    from PIL import Image

    return img.convert("RGB").quantize(colors=colors, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)


def _save_png(img) -> bytes:
    """PNG bytes at zlib level 8: files within 2 % of level 9 (or ``optimize``) at half the time."""
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=8)
    return out.getvalue()


def _palette_png(img, colors: int) -> bytes:
    """``img`` as a PNG of at most ``colors`` colours."""
    return _save_png(_quantize(img, colors))


# Switches frames in the browser; ES5, no library. @UID@ is the explorable's element id.
_JS = """(function(){
var root=document.getElementById('@UID@');if(!root)return;
var d=JSON.parse(root.querySelector('script.accelbook-explore-data').textContent);
var img=root.querySelector('img.accelbook-explore-figure');
var cap=root.querySelector('.accelbook-explore-caption');
function update(){var k=0,alt=[];
for(var i=0;i<d.sizes.length;i++){var el=root.querySelector('[data-param="'+i+'"]');
var j=!el?0:(el.type==='checkbox'?(el.checked?1:0):(+el.value));k=k*d.sizes[i]+j;
alt.push(d.names[i]+' = '+d.labels[i][j]);
var o=el&&el.nextElementSibling;if(o&&o.tagName==='OUTPUT')o.textContent=d.labels[i][j];}
var f=d.index[k],t=d.details[d.dindex[k]];img.src='data:image/png;base64,'+d.frames[f];
img.alt=d.description+': '+alt.join(', ')+(t?'. '+t:'');
root.setAttribute('data-frame',f);var c=d.captions[d.cindex[k]];
if(cap.innerHTML!==c){cap.innerHTML=c;if(window.MathJax&&MathJax.typesetPromise)MathJax.typesetPromise([cap]);}}
var inputs=root.querySelectorAll('[data-param]');
for(var i=0;i<inputs.length;i++){inputs[i].addEventListener('input',update);inputs[i].addEventListener('change',update);}
})();"""
