"""One house style for every figure, and the figure helpers the chapters share.

Style: the Okabe–Ito colour-blind-safe palette; units in every axis label; log axes where values
span decades; an opaque light background with dark text, so a figure stays legible when the page
around it switches to the dark theme. Shared helpers: tick labels with metric prefixes, labels
placed beside crowded points, short chip names, one colour per vendor, figures not registered with
pyplot. A topic's own figures live in its module of :mod:`accelbook.plots`.

Taught in: every chapter.
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterable

import matplotlib as mpl
import matplotlib.ticker as mticker
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure

from accelbook import checks
from accelbook.units import fmt


def _axes(name: str, ax):
    """``ax`` if it is a Matplotlib Axes, else ``TypeError`` naming the argument."""
    from matplotlib.axes import Axes

    return checks.instance(name, ax, Axes)


def _figure(name: str, fig):
    """``fig`` if it is a Matplotlib Figure (or SubFigure), else ``TypeError`` naming the argument."""
    from matplotlib.figure import FigureBase

    return checks.instance(name, fig, FigureBase)


def _points(name: str, points) -> list:
    """``(label, x, y)`` triples with finite x, y > 0 (they go on log axes)."""
    def one(item_name, p):
        if not (isinstance(p, (tuple, list)) and len(p) == 3):
            raise ValueError(f"{item_name}={checks.show(p)} must be a (label, x, y) triple")
        return (p[0], checks.real(f"{item_name}[1]", p[1], positive=True),
                checks.real(f"{item_name}[2]", p[2], positive=True))
    return checks.sequence(name, points, nonempty=False, of=one)


def _offsets(offsets):
    if offsets is not None and not isinstance(offsets, dict):
        raise ValueError(f"offsets={checks.show(offsets)} must be None or a dict of label -> (dx, dy)")
    return offsets


PALETTE = {
    "blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
    "purple": "#CC79A7", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000",
}


CYCLE = [PALETTE[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky", "yellow")]


MARKERS = ["o", "s", "^", "D", "v", "P", "X"]

RC = {
    "figure.figsize": (7.0, 4.2),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.labelcolor": "#111111",
    "text.color": "#111111",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=CYCLE),
    "font.size": 10.5,
    "axes.titlesize": 11.5,
    "legend.frameon": False,
    "lines.linewidth": 2.0,
    "lines.markersize": 6,
}


def use_style() -> None:
    """Apply the house style to every later figure (call once at the top of a chapter). In an
    IPython kernel it also gives every figure a text description (:func:`describe_figures`)."""
    mpl.rcParams.update(RC)
    describe_figures()


@contextlib.contextmanager
def style():
    """The house style for the figures made inside a ``with`` block."""
    with mpl.rc_context(RC):
        yield


def si_formatter(unit: str) -> mticker.FuncFormatter:
    """Tick labels with metric prefixes: 1e12 with unit 'FLOP/s' reads '1 TFLOP/s'."""
    checks.text("unit", unit)
    return mticker.FuncFormatter(lambda v, _pos: fmt(v, unit, digits=3) if v > 0 else "0")


def log_axes(ax, x_unit: str | None = None, y_unit: str | None = None) -> None:
    """Log-scale both axes; label ticks with metric prefixes in the given units."""
    _axes("ax", ax)
    for name, unit in (("x_unit", x_unit), ("y_unit", y_unit)):
        if unit is not None:
            checks.text(name, unit)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if x_unit:
        ax.xaxis.set_major_formatter(si_formatter(x_unit))
    if y_unit:
        ax.yaxis.set_major_formatter(si_formatter(y_unit))


def place_labels(ax, points: Iterable[tuple[str, float, float]], *, fontsize: float = 8,
                 bold: Iterable[str] = (), offsets: dict[str, tuple[float, float]] | None = None,
                 marker_radius: float = 5.0) -> None:
    """Write each (label, x, y) beside its point where it hides no other label or point.

    Each label goes to the first of six places (right, upper right, lower right, left, upper left,
    lower left of its point) where it overlaps no label placed before it and no other point; if
    none is free, to the place with the least overlap (labels count ten times more than points).
    ``offsets`` maps a label to a fixed text offset in points instead; labels in ``bold`` are set
    in bold and kept clear of a marker twice as large. ``marker_radius`` (points) is the size of
    the markers to keep clear of. Set the axis
    limits before calling: placement is computed for the limits at that moment.
    Taught in: "Introduction" and "The roofline" (their scatter charts).
    """
    _axes("ax", ax)
    offsets = _offsets(offsets) or {}
    bold = set(checks.sequence("bold", bold, nonempty=False, of=checks.text))
    points = _points("points", points)
    fontsize = checks.real("fontsize", fontsize, positive=True)
    marker_radius = checks.real("marker_radius", marker_radius, nonnegative=True)
    fig = ax.figure
    # Text extents need a renderer; a bare Figure (no pyplot canvas) has none, so measure with Agg.
    renderer = RendererAgg(*fig.canvas.get_width_height(), fig.dpi)
    centres = ax.transData.transform([(x, y) for _l, x, y in points])
    radii = [(2 if label in bold else 1) * marker_radius for label, _x, _y in points]  # points
    markers = [mpl.transforms.Bbox.from_extents(x - r * fig.dpi / 72, y - r * fig.dpi / 72,
                                                x + r * fig.dpi / 72, y + r * fig.dpi / 72)
               for (x, y), r in zip(centres, radii)]

    def places(r):
        d = r + 1
        return [((d, 0), "left", "center"), ((d, 2), "left", "bottom"), ((d, -2), "left", "top"),
                ((-d, 0), "right", "center"), ((-d, 2), "right", "bottom"), ((-d, -2), "right", "top")]

    def area(a, b):
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        return max(w, 0.0) * max(h, 0.0)

    taken: list = []
    for k, (label, x, y) in enumerate(points):
        choices = [(offsets[label], "left", "bottom")] if label in offsets else places(radii[k])
        others = markers[:k] + markers[k + 1:]
        best = None
        for xy, ha, va in choices:
            text = ax.annotate(label, (x, y), xytext=xy, textcoords="offset points", ha=ha, va=va,
                               fontsize=fontsize, color="#111111", zorder=5,
                               fontweight="bold" if label in bold else "normal")
            box = text.get_window_extent(renderer)
            cost = 10 * sum(area(box, t) for t in taken) + sum(area(box, m) for m in others)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        if best is not None:
            taken.append(best[2])


def labelled_points(ax, points: Iterable[tuple[str, float, float]],
                    offsets: dict[str, tuple[float, float]] | None = None) -> None:
    """Measured points (label, intensity FLOP/byte, achieved FLOP/s) as black open circles,
    each labelled beside it by :func:`place_labels` (no legend entry).

    Taught in: "The roofline" (chapter 02).
    """
    _axes("ax", ax)
    _offsets(offsets)
    points = _points("points", points)
    for _label, intensity, achieved in points:
        ax.plot([intensity], [achieved], linestyle="none", marker="o", color="black",
                markerfacecolor="white", markeredgewidth=1.5, zorder=4)
    ax.autoscale_view()
    place_labels(ax, points, offsets=offsets)


def chip_label(chip) -> str:
    """A short label for charts: 'NVIDIA A100 SXM4 40GB' -> 'A100 40GB', 'Google TPU v6e
    (Trillium)' -> 'TPU v6e' (no vendor, form factor or nickname)."""
    if not isinstance(getattr(chip, "name", None), str):
        raise TypeError(f"chip={checks.show(chip)} must be an accelbook.specs.Chip")
    return re.sub(r"\s*\(.*\)|\s*SXM\d?", "", short_name(chip.name))


def vendor_colors(vendors: Iterable[str]) -> dict[str, str]:
    """One :data:`CYCLE` colour per vendor name, assigned in sorted order (stable across figures)."""
    vendors = checks.sequence("vendors", vendors, nonempty=False, of=checks.text)
    return {v: CYCLE[i % len(CYCLE)] for i, v in enumerate(sorted(set(vendors)))}


def short_name(name: str) -> str:
    """A chip name without its vendor prefix: 'NVIDIA H100 SXM' -> 'H100 SXM'."""
    checks.text("name", name)
    for prefix in ("NVIDIA ", "AMD Instinct ", "AMD ", "Google Cloud ", "Google "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def standalone_figure(figsize, dpi: int | None = None) -> Figure:
    """A :class:`matplotlib.figure.Figure` that is not registered with pyplot (so it is shown only
    when displayed explicitly: an explorable draws on one for every setting). Taught in: "TPUs and
    systolic arrays" (chapter 06), whose explorable draws on one."""
    size = checks.sequence("figsize", figsize, of=lambda n, v: checks.real(n, v, positive=True, maximum=100))
    if len(size) != 2:
        raise ValueError(f"figsize={checks.show(figsize)} must be a (width, height) pair of inches")
    if dpi is not None:
        dpi = checks.real("dpi", dpi, positive=True, maximum=2000)
    return Figure(figsize=tuple(size), dpi=dpi, layout="constrained")


# ---------------------------------------------------------------------------------------------
# Text descriptions of figures (alternative text on the website)
# ---------------------------------------------------------------------------------------------
_LINESTYLES = {"--": "dashed", "-.": "dash-dotted", ":": "dotted"}
_MAX_ITEMS = 10  # legend entries, categories or diagram labels named in a description
UNDESCRIBED = "Figure without titles, axis labels or legend."  # what describe says of a bare figure


_TEX = {"\\approx": "≈", "\\times": "×", "\\cdot": "·", "\\leq": "≤", "\\geq": "≥",
        "\\;": " ", "\\,": " ", "\\!": "", "\\ ": " "}  # mathtext commands read as text


def _clean(text: str) -> str:
    """``text`` on one line, with Matplotlib's mathtext markers removed."""
    text = re.sub(r"\\(mathrm|mathit|mathbf|text)\{([^}]*)\}", r"\2", text or "")
    for tex, plain in _TEX.items():
        text = text.replace(tex, plain)
    text = text.replace("$", "").replace("\\", "")
    return " ".join(text.split())


def _colour_name(color) -> str | None:
    """The house palette's name of ``color`` (for example 'vermillion'), or None."""
    try:
        rgb = mpl.colors.to_hex(color, keep_alpha=False).lower()
    except (TypeError, ValueError):
        return None
    return next((name for name, value in PALETTE.items() if value.lower() == rgb), None)


def _listed(items: list[str]) -> str:
    items = list(dict.fromkeys(i for i in items if i))
    more = len(items) - _MAX_ITEMS
    items = items[:_MAX_ITEMS] + ([f"{more} more"] if more > 0 else [])
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _key(handle, label: str) -> str:
    """A legend entry: its label, then its colour and line style where the palette names them."""
    color = None
    for getter in ("get_color", "get_facecolor", "get_edgecolor"):
        if hasattr(handle, getter):
            try:
                color = getattr(handle, getter)()
            except Exception:  # a handle kind without that colour
                continue
            if hasattr(color, "ndim") and getattr(color, "ndim", 0) == 2:
                color = color[0] if len(color) else None
            if color is not None:
                break
    looks = [_colour_name(color)] if color is not None else []
    style = getattr(handle, "get_linestyle", lambda: None)()
    looks.append(_LINESTYLES.get(style) if isinstance(style, str) else None)
    looks = [x for x in looks if x]
    return f"{label} ({', '.join(looks)})" if looks else label


def _axis(ax, which: str) -> str | None:
    axis = ax.xaxis if which == "x" else ax.yaxis
    label = _clean(axis.get_label().get_text()) if axis.get_visible() else ""
    if not label:
        return None
    scale = ax.get_xscale() if which == "x" else ax.get_yscale()
    return label + (", log scale" if scale in ("log", "symlog") else "")


def _categories(ax, which: str) -> list[str]:
    """Tick labels of an axis that names categories (text, not numbers)."""
    from matplotlib.category import StrCategoryFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    fmt = axis.get_major_formatter()
    # set_ticks(ticks, labels) on fixed ticks makes a FuncFormatter over a dict of the labels
    # (Matplotlib 3.5 and later); any other FuncFormatter formats numbers
    labelled = isinstance(fmt, mticker.FuncFormatter) and getattr(getattr(fmt.func, "func", None), "__name__",
                                                                  "") == "_format_with_dict"
    if not axis.get_visible() or not (labelled or isinstance(fmt, (mticker.FixedFormatter, StrCategoryFormatter))):
        return []
    return [_clean(t.get_text()) for t in axis.get_majorticklabels() if _clean(t.get_text())]


def _panel(ax, twin_of=None) -> str:
    """One sentence (or a few) about one Axes: its title, what it plots against what, its key."""
    parts = []
    title = " ".join(_clean(ax.get_title(loc)) for loc in ("left", "center", "right") if ax.get_title(loc))
    if title:
        parts.append(title.rstrip(".") + ".")
    x, y = _axis(ax, "x"), _axis(ax, "y")
    if twin_of is not None:
        if y and y != _axis(twin_of, "y"):
            parts.append(f"Second vertical axis: {y}.")
        if x and x != _axis(twin_of, "x"):
            parts.append(f"Second horizontal axis: {x}.")
    elif x and y:
        parts.append(f"Plots {y} against {x}.")
    elif x or y:
        parts.append(f"Axis: {x or y}.")
    for which in ("y", "x"):
        cats = _categories(ax, which)
        if len(cats) > 1:
            parts.append(f"One row per {'category' if which == 'y' else 'column'}: {_listed(cats)}.")
            break
    legend = ax.get_legend()
    if legend is not None and legend.get_visible():
        entries = [_key(h, _clean(t.get_text())) for h, t in zip(legend.legend_handles, legend.get_texts())
                   if _clean(t.get_text())]
        heading = _clean(legend.get_title().get_text())
        if entries:
            parts.append(f"Key{' (' + heading + ')' if heading else ''}: {_listed(entries)}.")
    elif not (x or y):  # a diagram: the words written on it
        words = [_clean(t.get_text()) for t in ax.texts if t.get_visible()]
        if words:
            parts.append(f"Labels on it: {_listed(words)}.")
    return " ".join(parts)


def describe(fig) -> str:
    """A text description of a Matplotlib figure, made from what the figure itself says: its
    title, each panel's title, what each panel plots against what (axis labels with their units,
    log scales), the categories of a bar chart, the legend's entries with their colours (named from
    :data:`PALETTE`) and line styles, and for a diagram without axes the words written on it. The
    book's pages use it as the figure's alternative text. Numbers appear only where the figure
    shows them. Raises TypeError if ``fig`` is not a Matplotlib figure."""
    fig = _figure("fig", fig)
    parts = []
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and _clean(sup.get_text()):
        parts.append(_clean(sup.get_text()).rstrip(".") + ".")
    axes = [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]
    colorbars = [ax for ax in fig.axes if hasattr(ax, "_colorbar") and ax.get_visible()]
    main = [ax for ax in axes if not any(ax is not o and ax.get_position().bounds == o.get_position().bounds
                                         and axes.index(o) < axes.index(ax) for o in axes)]
    for i, ax in enumerate(main):
        text = _panel(ax)
        for twin in axes:
            if twin not in main and twin.get_position().bounds == ax.get_position().bounds:
                text = (text + " " + _panel(twin, twin_of=ax)).strip()
        if text:
            parts.append(f"Panel {i + 1} of {len(main)}: {text}" if len(main) > 1 else text)
    for cb in colorbars:
        label = _clean(cb.yaxis.get_label().get_text() or cb.xaxis.get_label().get_text())
        if label:
            parts.append(f"Colour scale: {label}.")
    text = " ".join(parts)
    return ("Figure: " + text) if text else UNDESCRIBED


def describe_figures() -> bool:
    """In an IPython kernel, make :func:`describe` the plain-text form of every Matplotlib figure
    it displays, beside the PNG: screen readers in Jupyter get it, and the book's Sphinx extension
    (book/_ext/accelbook_site.py) turns it into the image's alternative text on the website.
    Returns True when a kernel took it, False outside IPython. Called by :func:`use_style`."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    # IPython's inline backend drops every formatter of Figure when it is set up (at its first use,
    # or by %matplotlib): set it up first, and register again before and after every cell.
    backend = str(dict.get(mpl.rcParams, "backend", ""))  # without resolving it
    if "matplotlib_inline" in backend:
        import importlib

        importlib.import_module("matplotlib_inline.backend_inline")
    _register_description(shell)
    if not getattr(shell, "_accelbook_describes_figures", False):
        for event in ("pre_execute", "post_execute"):
            shell.events.register(event, lambda: _register_description(shell))
        shell._accelbook_describes_figures = True
    return True


def _plain_figure(fig, printer, cycle) -> None:
    printer.text(describe(fig))


def _register_description(shell) -> None:
    shell.display_formatter.formatters["text/plain"].for_type(Figure, _plain_figure)

__all__ = ["CYCLE", "MARKERS", "PALETTE", "RC", "chip_label", "describe", "describe_figures", "labelled_points", "log_axes",
           "place_labels", "short_name", "si_formatter", "standalone_figure", "style", "use_style",
           "vendor_colors"]
