"""Explorable figures: declare a figure and its controls once, drive it anywhere.

A chapter declares an explorable with a drawing function and its parameters::

    explore.show(draw, explore.choice("chip", [("H100", "h100-sxm"), ...]),
                 explore.slider("batch", [1, 2, 4, ..., 16384], value=64),
                 name="roofline-batch")

``draw(**values)`` returns a Matplotlib figure, or a ``(figure, caption)`` pair whose caption is
Markdown. What the reader gets depends on where the notebook runs:

- **live** (Jupyter, Colab; the default): ipywidgets controls; every change calls ``draw`` again
  and replaces the figure in place.
- **static** (the built book; the book's Sphinx extension sets ``ACCELBOOK_EXPLORE=static``): the
  figure is drawn ahead of time for every combination of the parameters' *static* values. The page
  holds those frames as compressed PNGs (identical frames stored once) and a few lines of inline
  JavaScript that switch between them, so the controls work with no kernel, no network and no
  JavaScript library.

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
import html
import io
import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Callable, Sequence

MODE_ENV = "ACCELBOOK_EXPLORE"
CHECK_ENV = "ACCELBOOK_EXPLORE_CHECK"  # "1": static builds also draw every live range's ends
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


def _param(name, kind, values, labels, value, label, static) -> Param:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name={name!r} must be a Python identifier (it is passed to draw as a keyword)")
    values = tuple(values)
    if not values:
        raise ValueError(f"{name}: values must not be empty")
    if len(set(map(repr, values))) != len(values):
        raise ValueError(f"{name}: values must be distinct, got {values!r}")
    if value is None:
        value = values[0]
    if value not in values:
        raise ValueError(f"{name}: value={value!r} is not one of the values {values!r}")
    if static is None:
        static_idx = tuple(range(len(values)))
    else:
        static = tuple(static)
        missing = [v for v in static if v not in values]
        if missing or not static:
            raise ValueError(f"{name}: static={static!r} must be a non-empty subset of the values {values!r}")
        if value not in static:
            raise ValueError(f"{name}: static={static!r} must include the starting value {value!r}")
        static_idx = tuple(sorted({values.index(v) for v in static}))
    return Param(name, kind, values, tuple(labels), value, label or name.replace("_", " "), static_idx)


def choice(name: str, options: Sequence, *, value: Any = None, label: str | None = None,
           static: Sequence | None = None) -> Param:
    """A drop-down menu. ``options`` are values, or ``(label, value)`` pairs."""
    options = list(options)
    pairs = [o if isinstance(o, tuple) and len(o) == 2 else (_label(o), o) for o in options]
    return _param(name, "dropdown", [v for _, v in pairs], [str(t) for t, _ in pairs], value, label, static)


def slider(name: str, values: Sequence[Real], *, value: Real | None = None, label: str | None = None,
           static: Sequence[Real] | None = None, format: Callable[[Any], str] | None = None) -> Param:
    """A slider over ``values``: real numbers in strictly increasing order (say powers of two)."""
    values = list(values)
    if not values or not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name}: values must be a non-empty sequence of real numbers, got {values!r}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"{name}: values must be strictly increasing, got {values!r}")
    labels = [(format or _label)(v) for v in values]
    return _param(name, "slider", values, labels, value, label, static)


def toggle(name: str, *, value: bool = False, label: str | None = None) -> Param:
    """A check box: ``draw`` receives False or True."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: value={value!r} must be True or False")
    return _param(name, "toggle", [False, True], ["off", "on"], value, label, None)


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
    draw_seconds: list = field(default_factory=list)  # per frame: draw + PNG encode


class Explorable:
    """A figure ``draw(**values)`` and the parameters that drive it. See the module docstring."""

    def __init__(self, draw: Callable[..., Any], params: Sequence[Param], *, name: str,
                 description: str = "Interactive figure", dpi: int = 96, colors: int = 128,
                 max_frames: int = 160, max_bytes: int = 1_500_000):
        if not callable(draw):
            raise TypeError(f"draw must be callable, got {type(draw).__name__}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name={name!r} must be lower-case letters, digits and hyphens, starting "
                             "with a letter (it becomes the HTML id)")
        params = list(params)
        if not params or not all(isinstance(p, Param) for p in params):
            raise ValueError("params must be a non-empty sequence of explore.choice/slider/toggle")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"params: names must be distinct, got {names}")
        for arg, v, lo, hi in (("dpi", dpi, 30, 300), ("colors", colors, 2, 256),
                               ("max_frames", max_frames, 1, 10_000), ("max_bytes", max_bytes, 1, 50_000_000)):
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{arg}={v!r} must be an integer from {lo} to {hi}")
        self.draw, self.params, self.name, self.description = draw, params, name, description
        self.dpi, self.colors, self.max_frames, self.max_bytes = dpi, colors, max_frames, max_bytes

    # -- the model of the controls -------------------------------------------------------------
    @property
    def start(self) -> dict:
        return {p.name: p.value for p in self.params}

    def grid(self) -> list[dict]:
        """Every combination of static values, in the order the page indexes them (last fastest)."""
        return [dict(zip((p.name for p in self.params), combo))
                for combo in itertools.product(*(p.static_values for p in self.params))]

    def index(self, values: dict) -> int:
        """Position of ``values`` in :meth:`grid` (mixed radix over the static values)."""
        k = 0
        for p in self.params:
            sv = p.static_values
            if values[p.name] not in sv:
                raise ValueError(f"{p.name}={values[p.name]!r} is not among its static values {sv!r}")
            k = k * len(sv) + sv.index(values[p.name])
        return k

    def figure(self, **values):
        """Call ``draw`` with ``values`` (defaults: the starting values); return (figure, caption)."""
        unknown = set(values) - {p.name for p in self.params}
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; allowed: {[p.name for p in self.params]}")
        kwargs = {**self.start, **values}
        for p in self.params:
            if kwargs[p.name] not in p.values:
                raise ValueError(f"{p.name}={kwargs[p.name]!r} is not one of {p.values!r}")
        return _split(self.draw(**kwargs))

    def alt(self, values: dict) -> str:
        parts = [f"{p.label} = {p.labels[p.values.index(values[p.name])]}" for p in self.params]
        return f"{self.description}: " + ", ".join(parts)

    # -- static -----------------------------------------------------------------------------------
    def png(self, fig) -> bytes:
        """Encode ``fig`` as a palette PNG (``colors`` colours), cropped like the inline backend
        (``bbox_inches="tight"``: labels that stick out of the figure are kept)."""
        from PIL import Image

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi, bbox_inches="tight", pad_inches=0.08, facecolor="white")
        return _palette_png(Image.open(io.BytesIO(buf.getvalue())), self.colors)

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
        for values in self.grid():
            data, cap, seconds = self._render(values)
            index.append(frames.setdefault(data, len(frames)))
            cindex.append(captions.setdefault(cap, len(captions)))
            per_frame.append(seconds)
        frames = _pad_to_common_size(list(frames), self.colors)
        page = self._html(frames, index, list(captions), cindex)
        size = len(page.encode())
        if size > self.max_bytes:
            raise ValueError(f"explorable {self.name!r} weighs {size / 1e6:.2f} MB with {len(frames)} distinct "
                             f"frames; max_bytes={self.max_bytes}. Offer fewer static values, or lower dpi.")
        return Static(page, n, len(frames), size, per_frame)

    def _render(self, values: dict) -> tuple[bytes, str, float]:
        t0 = time.perf_counter()
        fig, caption = self.figure(**values)
        data = self.png(fig)
        _release(fig)
        return data, (_markdown_html(caption) if caption is not None else ""), time.perf_counter() - t0

    def _html(self, frames, index, captions, cindex) -> str:
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
            elif p.kind == "slider":
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
        }
        payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        caption = captions[cindex[start]]
        return (
            f'<div class="accelbook-explore" id="{uid}" data-frame="{index[start]}">'
            f'<div class="accelbook-explore-controls">{"".join(controls)}</div>'
            f'<img class="accelbook-explore-figure" width="{width}" height="{height}" '
            f'alt="{html.escape(self.alt(self.start))}" '
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

    def show_live(self) -> list:
        """Display the controls and the figure; each change redraws. Returns the widgets."""
        import ipywidgets as w
        from IPython.display import DisplayHandle, Markdown, display

        controls = self.widgets()
        display(w.HBox(controls, layout=w.Layout(flex_flow="row wrap")))
        fig, caption = self.figure()
        fig_handle, cap_handle = DisplayHandle(), DisplayHandle()
        fig_handle.display(fig)
        _release(fig)
        cap_handle.display(Markdown(caption or ""))

        def redraw(_change=None):
            values = {p.name: c.value for p, c in zip(self.params, controls)}
            try:
                fig, caption = self.figure(**values)
            except Exception as err:  # show the reader what went wrong instead of failing silently
                cap_handle.update(Markdown(f"**Could not draw this combination:** `{err}`"))
                return
            fig_handle.update(fig)
            _release(fig)
            cap_handle.update(Markdown(caption or ""))

        for c in controls:
            c.observe(redraw, names="value")
        return controls

    def check_extremes(self) -> int:
        """Draw each parameter at the ends of its *live* range (the others at their start).

        The website only shows the static grid; this catches a value a live reader can pick that
        the drawing function cannot handle. Returns the number of figures drawn. The test suite's
        book build runs it for every explorable (``ACCELBOOK_EXPLORE_CHECK=1``).
        """
        drawn = 0
        for p in self.params:
            for v in dict.fromkeys((p.values[0], p.values[-1])):
                if v == p.value:
                    continue
                try:
                    fig, _ = self.figure(**{p.name: v})
                except Exception as err:
                    raise RuntimeError(f"explorable {self.name!r} cannot draw {p.name}={v!r}, a value its "
                                       f"live control offers: {err}") from err
                _release(fig)
                drawn += 1
        return drawn

    def show(self, mode_: str | None = None):
        """Display the explorable live or static (default: :func:`mode`)."""
        m = mode() if mode_ is None else mode_
        if m not in MODES:
            raise ValueError(f"mode_={m!r}: allowed values are {MODES}")
        if m == "live":
            self.show_live()
        else:
            from IPython.display import HTML, display

            if os.environ.get(CHECK_ENV) == "1":
                self.check_extremes()
            display(HTML(self.render_static().html))


def show(draw: Callable[..., Any], *params: Param, name: str, **options) -> None:
    """Declare an explorable and display it (live in a kernel, static in the built book)."""
    Explorable(draw, params, name=name, **options).show()


def _markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def _pad_to_common_size(frames: list[bytes], colors: int) -> list[bytes]:
    """Put every frame on a white canvas of the largest frame's size, so the page does not jump."""
    from PIL import Image

    images = [Image.open(io.BytesIO(f)) for f in frames]
    w, h = max(i.size[0] for i in images), max(i.size[1] for i in images)
    out = []
    for data, img in zip(frames, images):
        if img.size == (w, h):
            out.append(data)
            continue
        canvas = Image.new("RGB", (w, h), "white")
        canvas.paste(img.convert("RGB"), (0, 0))
        out.append(_palette_png(canvas, colors))
    return out


def _palette_png(img, colors: int) -> bytes:
    """``img`` as a PNG of at most ``colors`` colours. MAXCOVERAGE keeps black black and light tints
    distinct from white, which the faster octree method does not."""
    from PIL import Image

    out = io.BytesIO()
    img.convert("RGB").quantize(colors=colors, method=Image.Quantize.MAXCOVERAGE,
                                dither=Image.Dither.NONE).save(out, format="PNG", optimize=True)
    return out.getvalue()


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
var f=d.index[k];img.src='data:image/png;base64,'+d.frames[f];img.alt=d.description+': '+alt.join(', ');
root.setAttribute('data-frame',f);var c=d.captions[d.cindex[k]];
if(cap.innerHTML!==c){cap.innerHTML=c;if(window.MathJax&&MathJax.typesetPromise)MathJax.typesetPromise([cap]);}}
var inputs=root.querySelectorAll('[data-param]');
for(var i=0;i<inputs.length;i++){inputs[i].addEventListener('input',update);inputs[i].addEventListener('change',update);}
})();"""
