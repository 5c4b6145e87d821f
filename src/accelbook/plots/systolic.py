"""Pictures of a systolic array at work: one cycle, a few cycles, an animation, activity over time.

Everything here draws a :class:`accelbook.models.systolic.SystolicRun` (the record of
:func:`accelbook.models.systolic.simulate`) and what :func:`accelbook.models.systolic.mac_schedule` says each
processing element (PE) did in each cycle. Nothing here computes a cycle count of its own: the
pictures show the simulator's run.

Taught in: "TPUs and systolic arrays" (chapter 06).
"""

from __future__ import annotations

import re

import matplotlib as mpl
import matplotlib.animation
import matplotlib.collections
import matplotlib.colors
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from accelbook import explore, specs
from accelbook.models import systolic
from accelbook import checks
from accelbook.plots.style import CYCLE, PALETTE, _axes, _figure, chip_label, standalone_figure
from accelbook.units import fmt

# What stays in a PE and what moves, per dataflow: (stationary symbol, its two indices from
# (m, n, k)), and the moving operands' (symbol, indices). Indices: 0 = m, 1 = n, 2 = k.
_STATIONARY = {"ws": ("w", (2, 1)), "is": ("a", (0, 2)), "os": ("c", (0, 1))}
_MOVING = {"ws": [("a", (0, 2))], "is": [("b", (2, 1))], "os": [("a", (0, 2)), ("b", (2, 1))]}
_BUSY = PALETTE["sky"]
_GREY = "#777777"


def _label(operand, mnk) -> str:
    """'$a_{m,k}$' for operand ('a', (0, 2)) and a schedule entry mnk = (m, n, k)."""
    symbol, (i, j) = operand
    return f"${symbol}_{{{mnk[i]},{mnk[j]}}}$"


def _check(run, t=None):
    if not isinstance(run, systolic.SystolicRun):
        raise ValueError(f"run={type(run).__name__} is not allowed; pass the SystolicRun that "
                         f"accelbook.models.systolic.simulate() returned")
    if t is not None and (checks.is_bool(t) or not isinstance(t, (int, np.integer))
                          or not 0 <= t < run.cycles):
        raise ValueError(f"t={t!r} is not allowed; t must be a cycle number in 0..{run.cycles - 1}")


def stationary_tile(run, t: int) -> np.ndarray:
    """What each PE holds as its stationary operand in cycle ``t``, as (row, column) indices.

    For 'ws' the indices are (k, n) into B, for 'is' (m, k) into A, for 'os' (m, n) into C;
    -1 where a PE holds nothing of the problem. The fold shown is the one whose tile the PEs'
    visible registers hold: with single buffering the tile being shifted in from the top (one
    row per cycle, bottom tile row first, as :func:`accelbook.models.systolic.simulate` loads it), then
    the fold that computes; with double buffering the first tile while it loads, then the fold
    that computes (later tiles shift into shadow registers, not drawn); with pipelined folds
    each PE holds the tile of the last fold whose wavefront has reached it.
    Taught in: "TPUs and systolic arrays".
    """
    _check(run, t)
    out = np.full((run.rows, run.cols, 2), -1, dtype=np.int64)
    load = _loading(run, t)
    if run.pipelined and load is None and run.folds[0].stream_start <= t:
        # pipelined folds: a PE takes the next fold's operand when that fold's first streamed
        # operand reaches it, at stream_start + r + c (rows the fold does not use keep theirs)
        r, c = np.ogrid[:run.rows, :run.cols]
        for n, f in enumerate(run.folds):
            if f.stream_start > t:
                break
            # the first tile is in every PE once loaded; later ones arrive with their wavefront
            reached = (r < f.rows_used) & ((f.stream_start + r + c <= t) | (n == 0))
            out[reached] = -1
            for i, j in zip(*np.nonzero(reached & (c < f.cols_used))):
                out[i, j] = _tile_entry(run, f, int(i), int(j))
        return out
    if load is not None:               # row i holds tile row kr-1-step+i once it has entered
        f, step = load
        held = {i: f.rows_used - 1 - step + i for i in range(step + 1)}
    else:
        key = (lambda g: g.stream_start) if run.double_buffer else (lambda g: g.load_start)
        f = ([g for g in run.folds if key(g) <= t] or [run.folds[0]])[-1]
        held = {i: i for i in range(f.rows_used)}
    for i, tile_row in held.items():
        for c in range(f.cols_used):
            out[i, c] = _tile_entry(run, f, tile_row, c)
    return out


def _tile_entry(run, fold, tile_row: int, col: int) -> tuple[int, int]:
    """Indices into the stationary matrix of one element of ``fold``'s tile: (k, n) into B for
    'ws', (m, k) into A for 'is' (the tile is A transposed), (m, n) into C for 'os'."""
    a, b = fold.row_span[0] + tile_row, fold.col_span[0] + col
    return (b, a) if run.dataflow == "is" else (a, b)


def _loading(run, t):
    """(fold, step) while a tile is being shifted into the visible registers in cycle ``t``
    (every fold's load with single buffering, only the first with double buffering), else None."""
    if run.dataflow == "os":
        return None
    folds = run.folds[:1] if run.double_buffer else run.folds
    started = [f for f in folds if f.load_start <= t]
    f = started[-1] if started else None
    return (f, t - f.load_start) if f is not None and t < f.stream_start else None


def draw_cycle(ax, run, t: int, *, queue: int = 2, schedule: np.ndarray | None = None,
               fontsize: float = 7.5) -> None:
    """Draw the array in cycle ``t`` of ``run``: busy PEs shaded, their operands written in.

    Each square is a PE (row 0 at the top). A busy PE shows the streamed operand it multiplies
    this cycle in its centre ('ws': a = A[m, k]; 'is': b = B[k, n]; 'os': a and b); the small
    grey label in its corner is its stationary operand (w = B[k, n], a = A[m, k], or the
    accumulator c = C[m, n]). Up to ``queue`` operands waiting to enter are drawn beyond the
    left (and, for 'os', the top) edge, skewed as the hardware feeds them; partial sums that left
    the bottom row in the last ``queue`` cycles are drawn below it ('ws', 'is'). ``schedule`` is
    :func:`accelbook.models.systolic.mac_schedule` of ``run`` (computed if not given).
    Taught in: "TPUs and systolic arrays".
    """
    _axes("ax", ax)
    _check(run, t)
    queue = checks.nonneg_int("queue", queue, maximum=10**4)
    fontsize = checks.real("fontsize", fontsize, positive=True, maximum=200)
    if schedule is not None and (not isinstance(schedule, np.ndarray)
                                 or schedule.shape != (run.cycles, run.rows, run.cols, 3)):
        raise ValueError(f"schedule={checks.show(schedule)} must be mac_schedule(run), an array of shape "
                         f"{(run.cycles, run.rows, run.cols, 3)}")
    sched = systolic.mac_schedule(run) if schedule is None else schedule
    R, C, df = run.rows, run.cols, run.dataflow
    stat = stationary_tile(run, t)
    st_sym, _ = _STATIONARY[df]
    ax.clear()
    for r in range(R):
        for c in range(C):
            mnk = sched[t, r, c]
            busy = mnk[0] >= 0
            ax.add_patch(mpl.patches.Rectangle((c - 0.45, -r - 0.45), 0.9, 0.9, lw=1,
                                               ec="#333333", fc=_BUSY if busy else "white"))
            if stat[r, c, 0] >= 0:
                ax.text(c - 0.41, -r + 0.41, f"${st_sym}_{{{stat[r, c, 0]},{stat[r, c, 1]}}}$",
                        ha="left", va="top", fontsize=fontsize * 0.8, color=_GREY)
            if busy:
                text = "".join(_label(op, mnk) for op in _MOVING[df])
                ax.text(c, -r - 0.08, text, ha="center", va="center", fontsize=fontsize,
                        color="black", fontweight="bold")
    for d in range(1, queue + 1):
        if t + d < run.cycles:
            for r in range(R):                 # waiting at the left edge, d cycles away
                if sched[t + d, r, 0, 0] >= 0:
                    ax.text(-d, -r, _label(_MOVING[df][0], sched[t + d, r, 0]), ha="center",
                            va="center", fontsize=fontsize, color=CYCLE[0])
            if df == "os":
                for c in range(C):             # B waiting above the top edge
                    if sched[t + d, 0, c, 0] >= 0:
                        ax.text(c, d, _label(_MOVING[df][1], sched[t + d, 0, c]), ha="center",
                                va="center", fontsize=fontsize, color=CYCLE[1])
        if df != "os" and t - d >= 0:
            for c in range(C):                 # partial sums that left the bottom row d cycles ago
                mnk = sched[t - d, R - 1, c]
                if mnk[0] >= 0:
                    ax.text(c, -R + 1 - d, f"$c_{{{mnk[0]},{mnk[1]}}}$", ha="center",
                            va="center", fontsize=fontsize, color=CYCLE[2])
    load = _loading(run, t)
    if load is not None:                       # tile rows still waiting above the top edge
        f, step = load
        for d in range(1, min(queue, f.rows_used - 1 - step) + 1):
            for c in range(f.cols_used):
                i, j = _tile_entry(run, f, f.rows_used - 1 - step - d, c)
                ax.text(c, d, f"${st_sym}_{{{i},{j}}}$", ha="center", va="center",
                        fontsize=fontsize, color=_GREY)
    ax.set_xlim(-queue - 0.6, C - 0.4)
    ax.set_ylim(-R + 1 - (0 if df == "os" else queue) - 0.6, queue + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    if load is not None:
        what = f"loading the tile, {load[1] + 1} of {load[0].rows_used} rows in"
    else:
        what = f"{int((sched[t, :, :, 0] >= 0).sum())} of {R * C} PEs busy"
    ax.set_title(f"cycle {t}: {what}", fontsize=fontsize + 1.5)


def snapshots(fig, run, cycles, *, ncols: int | None = None, queue: int = 2,
              fontsize: float = 7.5):
    """:func:`draw_cycle` panels on ``fig``, one per cycle in ``cycles``, ``ncols`` to a row (default:
    all in one row); returns the axes that were drawn, in order.

    Taught in: "TPUs and systolic arrays".
    """
    _figure("fig", fig)
    _check(run)
    cycles = checks.sequence("cycles", cycles, of=lambda name, t: checks.integer(name, t, minimum=0,
                                                                                  maximum=run.cycles - 1))
    queue = checks.nonneg_int("queue", queue, maximum=10**4)
    fontsize = checks.real("fontsize", fontsize, positive=True, maximum=200)
    ncols = len(cycles) if ncols is None else ncols
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols={ncols!r} is not allowed; it must be a positive integer")
    sched = systolic.mac_schedule(run)
    nrows = -(-len(cycles) // ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(cycles):]:
        ax.axis("off")
    for ax, t in zip(axes, cycles):
        draw_cycle(ax, run, t, queue=queue, schedule=sched, fontsize=fontsize)
    return list(axes[:len(cycles)])


def animation_html(run, *, figsize=(4.2, 5.0), dpi: int = 80, interval_ms: int = 800,
                   queue: int = 2, max_frames: int = 40, fontsize: float = 10.5) -> str:
    """The whole run as a self-contained HTML/JavaScript player (matplotlib's ``to_jshtml``).

    One frame per cycle, each a PNG embedded in the page, with its own slider and play buttons:
    it works on a static web page without a Python kernel. Keep runs short (``max_frames``
    cycles at most; a ValueError says so otherwise): each frame costs roughly 10-30 KB of page.
    Taught in: "TPUs and systolic arrays".
    """
    _check(run)
    size = checks.sequence("figsize", figsize, of=lambda n, v: checks.real(n, v, positive=True, maximum=100))
    if len(size) != 2:
        raise ValueError(f"figsize={checks.show(figsize)} must be a (width, height) pair of inches")
    dpi = checks.real("dpi", dpi, positive=True, maximum=1000)
    interval_ms = checks.real("interval_ms", interval_ms, positive=True)
    queue = checks.nonneg_int("queue", queue, maximum=10**4)
    max_frames = checks.positive_int("max_frames", max_frames)
    fontsize = checks.real("fontsize", fontsize, positive=True, maximum=200)
    if run.cycles > max_frames:
        raise ValueError(f"run has {run.cycles} cycles; an animation of more than "
                         f"max_frames={max_frames} frames makes the page heavy: use a smaller "
                         f"problem or raise max_frames")
    sched = systolic.mac_schedule(run)
    fig = Figure(figsize=figsize, dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.93))
    anim = matplotlib.animation.FuncAnimation(
        fig, lambda t: draw_cycle(ax, run, int(t), queue=queue, schedule=sched, fontsize=fontsize),
        frames=range(run.cycles), interval=interval_ms, blit=False, repeat=False)
    with mpl.rc_context({"savefig.dpi": dpi, "savefig.facecolor": "white"}):
        return self_contained_player(anim.to_jshtml(fps=1000 / interval_ms, default_mode="once"))


# to_jshtml's buttons use Font Awesome 4 icons loaded from a CDN; a page of the book must not fetch
# anything from elsewhere, so the icons become Unicode symbols with the same meaning.
_PLAYER_ICONS = {
    "fa fa-minus": "\u2212", "fa fa-fast-backward": "\u21e4", "fa fa-step-backward": "\u25c2",
    "fa fa-play fa-flip-horizontal": "\u25c0", "fa fa-pause": "\u275a\u275a", "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u25b8", "fa fa-fast-forward": "\u21e5", "fa fa-plus": "+",
}


def self_contained_player(html: str) -> str:
    """``html`` from ``FuncAnimation.to_jshtml`` without its external Font Awesome stylesheet.

    Taught in: "TPUs and systolic arrays" (its animation works offline).
    """
    checks.text("html", html)
    out, n = re.subn(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    if n != 1:
        raise ValueError(f"html has {n} Font Awesome stylesheet links, not one: it is not matplotlib's "
                         "to_jshtml player, or the to_jshtml template changed")
    for cls, symbol in _PLAYER_ICONS.items():
        out = out.replace(f'<i class="{cls}"></i>', f'<span aria-hidden="true">{symbol}</span>')
    if '<i class="fa' in out:
        raise ValueError("the player HTML uses a Font Awesome icon without a replacement symbol")
    return out


def busy_timeline(ax, run, *, color=None, label=None, fraction: bool = False) -> None:
    """Busy PEs in every cycle of ``run`` as a step line (``fraction=True``: as a fraction).

    Taught in: "TPUs and systolic arrays".
    """
    _axes("ax", ax)
    _check(run)
    fraction = checks.boolean("fraction", fraction)
    busy = run.activity.sum(axis=(1, 2)).astype(float)
    if fraction:
        busy /= run.rows * run.cols
    ax.step(np.arange(run.cycles), busy, where="mid", color=color, label=label, lw=1.6)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


_WORDS: dict = {}  # (word, hash of the font, dpi) -> Agg's (width, height, descent): ~0.1 ms a glyph to measure


def _word_metrics(renderer, word: str, prop, font: int | None = None) -> tuple:
    """Agg's measurement of ``word``; ``font`` is ``hash(prop)`` (hashing a font costs more than
    the look-up, so a caller measuring many words hashes it once)."""
    key = (word, hash(prop) if font is None else font, renderer.dpi)
    try:
        return _WORDS[key]
    except KeyError:
        if len(_WORDS) > 4096:
            _WORDS.clear()
        _WORDS[key] = renderer.get_text_width_height_descent(word, prop, False)
        return _WORDS[key]


class _WordMeasure:
    """A renderer whose text measurements add up its words' (kept) measurements: a line is as wide
    as its words and their spaces, as high as its highest word and as deep as its deepest, exactly as
    Agg measures the whole line (it lays glyphs on whole advances). All else is the renderer's."""

    def __init__(self, renderer):
        self._renderer = renderer

    def __getattr__(self, name):
        return getattr(self._renderer, name)

    def get_text_width_height_descent(self, s, prop, ismath):
        if ismath:
            return self._renderer.get_text_width_height_descent(s, prop, ismath)
        font = hash(prop)
        words = [_word_metrics(self._renderer, w, prop, font) for w in s.split(" ") if w]
        space = _word_metrics(self._renderer, " ", prop, font)[0] * s.count(" ")
        if not words:
            return space, 0.0, 0.0
        ascent, descent = max(h - d for _w, h, d in words), max(d for _w, _h, d in words)
        return sum(w for w, _h, _d in words) + space, ascent + descent, descent


# by_word reads how Matplotlib lays out a text (Text._get_layout), which is private and changed in
# 3.11 -- the release that also began rendering text glyph by glyph, the cost by_word avoids. On
# older Matplotlib (Colab's 3.10, the floor 3.7) texts are drawn as Matplotlib draws them.
_WORDWISE = tuple(int(v) for v in re.findall(r"\d+", mpl.__version__)[:2]) >= (3, 11)


def by_word(text):
    """Make ``text`` (a horizontal :class:`~matplotlib.text.Text` without math) draw each word of
    each line at a whole pixel, where matplotlib's layout places it; returns ``text``.

    Matplotlib places a line at a fraction of a pixel, so the same word in a new place is a new
    picture to :class:`accelbook.explore.TextStamps`, which keys the lines it keeps by their
    sub-pixel offset. Drawn at whole pixels, a tick label that comes back at another tick, or a word
    of a title that comes back in another sentence, is stamped from the cache instead of rendered
    glyph by glyph; and a new line is measured from its words' kept measurements. Each word moves
    by less than a pixel from where the whole line would put it.
    Taught in: "TPUs and systolic arrays" and "Overheads" (their explorables' titles and ticks).
    """
    from matplotlib.text import Text

    checks.instance("text", text, Text)
    if text.get_rotation() or text.get_usetex() or text.get_bbox_patch() is not None:
        raise ValueError("by_word draws horizontal text without a box or TeX")
    from matplotlib.backends.backend_agg import RendererAgg

    layouts, measures = {}, {}   # per string: matplotlib's layout of it; per renderer: its _WordMeasure
    plain = text.draw

    def layout(renderer, string: str):
        key = (string, renderer.dpi, text.get_horizontalalignment(), text.get_verticalalignment())
        if key not in layouts:
            if len(layouts) > 512:
                layouts.clear()
            if measures.get("renderer") is not renderer:  # one per renderer: matplotlib caches by it
                measures.update(renderer=renderer, measure=_WordMeasure(renderer))
            layouts[key] = text._get_layout(measures["measure"])[1]
        return layouts[key]

    def draw(renderer, *args, **kwargs):
        if not _WORDWISE or (not isinstance(getattr(renderer, "_renderer", None), RendererAgg)
                             and not isinstance(renderer, RendererAgg)):
            return plain(renderer, *args, **kwargs)   # SVG, PDF, older Matplotlib: as matplotlib draws it
        string = text.get_text()
        if not text.get_visible() or not string:
            return
        if "$" in string:
            raise ValueError(f"by_word draws no math: {string!r}")
        renderer.open_group("text", text.get_gid())
        lines = layout(renderer, string)
        posx, posy = text.get_transform().transform(text.get_unitless_position())
        height = renderer.get_canvas_width_height()[1]
        gc = renderer.new_gc()
        gc.set_foreground(mpl.colors.to_rgba(text.get_color()), isRGBA=True)
        gc.set_alpha(text.get_alpha())
        gc.set_antialiased(text._antialiased)
        text._set_gc_clip(gc)
        prop = text.get_fontproperties()
        font = hash(prop)
        space = _word_metrics(renderer, " ", prop, font)[0]
        for line, _wad, (x, y) in lines:
            x, y = x + posx, y + posy
            y = round(height - y if renderer.flipy() else y)
            for word in line.split(" "):
                if word:
                    renderer.draw_text(gc, round(x), y, word, prop, 0, ismath=False, mtext=None)
                    x += _word_metrics(renderer, word, prop, font)[0]
                x += space
        gc.restore()
        renderer.close_group("text")
        text.stale = False

    text.draw = draw
    return text


class _NearestImage(mpl.image.AxesImage):
    """An image of RGBA bytes, scaled to the canvas by nearest neighbour with NumPy indexing: each
    pixel shows the cell under its centre, as ``interpolation="nearest"`` does, without Agg's
    resampling machinery (a third of an update's drawing). Other data, renderers that scale
    images themselves (SVG, PDF) and magnified drawing go the usual way."""

    @classmethod
    def add(cls, ax) -> "_NearestImage":
        """An empty image on ``ax``, clipped to it, as :meth:`~matplotlib.axes.Axes.imshow` adds one."""
        image = cls(ax, interpolation="nearest")
        image.set_data(np.zeros((1, 1, 4), dtype=np.uint8))
        image.set_clip_path(ax.patch)
        ax.add_image(image)
        return image

    def make_image(self, renderer, magnification=1.0, unsampled=False):
        A = self._A
        if unsampled or magnification != 1 or A is None or A.dtype != np.uint8 or A.ndim != 3:
            return super().make_image(renderer, magnification, unsampled)
        A = np.ma.getdata(A)             # plain bytes: indexing a masked array costs more than the rest
        x1, x2, y1, y2 = self.get_extent()
        (u1, v1), (u2, v2) = self.get_transform().transform([(x1, y1), (x2, y2)])
        if self.origin == "upper":       # row 0 at the extent's top (y2)
            v1, v2 = v2, v1
        clip = ((self.get_clip_box() or self.axes.bbox) if self.get_clip_on()
                else self.axes.figure.bbox)
        l, r = max(min(u1, u2), clip.x0), min(max(u1, u2), clip.x1)
        b, t = max(min(v1, v2), clip.y0), min(max(v1, v2), clip.y1)
        l, b, r, t = int(np.floor(l)), int(np.floor(b)), int(np.ceil(r)), int(np.ceil(t))
        if r <= l or t <= b or u1 == u2 or v1 == v2:
            return None, 0, 0, None
        ny, nx = A.shape[:2]
        cols = np.floor((np.arange(l, r) + 0.5 - u1) / (u2 - u1) * nx).astype(int).clip(0, nx - 1)
        rows = np.floor((np.arange(b, t) + 0.5 - v1) / (v2 - v1) * ny).astype(int).clip(0, ny - 1)
        pixels = np.ascontiguousarray(A).view(np.uint32)[..., 0]   # one 4-byte word per cell: quick to index
        out = pixels.take(rows, axis=0).take(cols, axis=1)
        return out.view(np.uint8).reshape(*out.shape, 4), l, b, mpl.transforms.IdentityTransform()


class _Ticks:
    """Tick marks, tick labels and (optionally) grid lines along one axis of ``ax``, drawn by the
    artists listed in ``artists`` instead of by the axis itself, so that they can follow a run.
    ``grid``: the span of the grid lines in the other axis's data coordinates, or None for none.

    They look like the house style's ticks (size, pad, colours and font from ``mpl.rcParams`` at
    construction). The axis keeps its label but no ticks of its own; ``labelpad`` leaves room for
    tick labels of up to ``digits`` digits. :meth:`set` places ticks from ``locator`` over the
    view interval ``(lo, hi)``; ``most`` tick labels at most are shown.
    """

    def __init__(self, ax, which: str, locator, *, labels: bool = True, grid: tuple | None = None,
                 digits: int = 2, most: int = 12):
        from matplotlib.markers import TICKDOWN, TICKLEFT
        from matplotlib.transforms import ScaledTranslation

        rc, x = mpl.rcParams, which == "x"
        axis = ax.xaxis if x else ax.yaxis
        axis.set_major_locator(matplotlib.ticker.NullLocator())
        size, pad = rc[f"{which}tick.major.size"], rc[f"{which}tick.major.pad"]
        fontsize = mpl.font_manager.FontProperties(size=rc[f"{which}tick.labelsize"]).get_size_in_points()
        label_color = rc[f"{which}tick.labelcolor"]
        label_color = rc[f"{which}tick.color"] if label_color == "inherit" else label_color
        if labels:     # the axis label sits beyond the widest (y) or tallest (x) tick label
            room = fontsize * (1.2 if x else 0.64 * digits)
            axis.labelpad = size + pad + room + rc["axes.labelpad"]
        self.ax, self.x, self.locator = ax, x, locator
        trans = ax.get_xaxis_transform() if x else ax.get_yaxis_transform()
        self.marks = mpl.lines.Line2D([], [], ls="none", marker=TICKDOWN if x else TICKLEFT, ms=size,
                                      mew=rc[f"{which}tick.major.width"], color=rc[f"{which}tick.color"],
                                      transform=trans, clip_on=False, zorder=2.6)
        ax.add_artist(self.marks)
        shift = (size + pad) / 72
        offset = ScaledTranslation(0, -shift, ax.figure.dpi_scale_trans) if x else \
            ScaledTranslation(-shift, 0, ax.figure.dpi_scale_trans)
        self.labels = [ax.text(0, 0, "", transform=trans + offset, fontsize=fontsize, color=label_color,
                               ha="center" if x else "right", va="top" if x else "center_baseline",
                               clip_on=False, visible=False) for _ in range(most if labels else 0)]
        for text in self.labels:     # whole pixels: a label drawn before is stamped, not rendered
            by_word(text)
        self.grid, self.span = None, grid
        if grid is not None:
            self.grid = mpl.collections.LineCollection([], colors=rc["grid.color"], zorder=1.6,
                                                       linewidths=rc["grid.linewidth"], transform=ax.transData)
            ax.add_collection(self.grid, autolim=False)
        self.artists = ([self.grid] if grid is not None else []) + [self.marks] + self.labels

    def set(self, lo: float, hi: float) -> np.ndarray:
        """Ticks for the view interval ``lo..hi``; returns their positions."""
        a, b = min(lo, hi), max(lo, hi)
        ticks = [t for t in self.locator.tick_values(a, b) if a - 1e-9 <= t <= b + 1e-9 and t == round(t)]
        ticks = np.asarray(ticks[:len(self.labels)] if self.labels else ticks, dtype=float)
        zeros = np.zeros_like(ticks)
        self.marks.set_data((ticks, zeros) if self.x else (zeros, ticks))
        for i, text in enumerate(self.labels):
            text.set_visible(i < len(ticks))
            if i < len(ticks):
                text.set_position((ticks[i], 0) if self.x else (0, ticks[i]))
                text.set_text(f"{ticks[i]:g}")
        if self.grid is not None:
            a, b = self.span
            self.grid.set_segments([[(t, a), (t, b)] if self.x else [(a, t), (b, t)] for t in ticks])
        return ticks


class _ActivityPanels:
    """The artists of :func:`activity_figure`, built once on ``fig``; :meth:`show` sets them for a run.

    The axes follow the run: cycles along the time axes, the array's rows and columns on the others.
    So everything that depends on the run is an artist of its own, listed in ``dynamic`` in the
    order the figure draws them: the two images, the busy line, the mean, the fold boundaries, the
    title, the ticks, tick labels and vertical grid lines of those axes (:class:`_Ticks`), and the
    spines, which must be drawn over the images. The rest never changes: the axes' backgrounds and
    labels, the busy fraction's axis, the colour bar, the PE panel's title and the legend (which
    sits above a fully busy array, where no dynamic artist reaches).

    Kept quick to redraw: the images hold colours, not fractions, and scale them by indexing
    (:class:`_NearestImage`); the title and tick labels are drawn word by word at whole pixels
    (:func:`by_word`), so a word drawn before is pasted, not rendered again.
    """

    def __init__(self, fig):
        fig.set_layout_engine("none")      # fixed positions: a redraw must be quick (the explorer)
        heat, line = fig.add_axes((0.13, 0.43, 0.49, 0.38)), fig.add_axes((0.13, 0.11, 0.49, 0.25))
        pe = fig.add_axes((0.81, 0.11, 0.17, 0.62))
        self.heat_image = _NearestImage.add(heat)          # colours: _rgba, the colour bar's scale
        heat.set_ylabel("array row")
        heat.grid(False)
        scale = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap="Blues")
        fig.colorbar(scale, cax=fig.add_axes((0.635, 0.43, 0.015, 0.38)), label="busy fraction")
        # fold boundaries and the vertical grid stop at a fully busy array: above it is the legend
        self.folds = mpl.collections.LineCollection([], colors="#aaaaaa", linewidths=0.6, zorder=1.7)
        line.add_collection(self.folds, autolim=False)
        (self.busy,) = line.step([0, 1], [0, 0], where="post", color=CYCLE[0], lw=1.6)
        self.mean = line.axhline(0, color=CYCLE[1], ls="--", lw=1.2, label="mean = utilization")
        # headroom above a fully busy array, so that the legend never covers the curve
        line.set(ylim=(0, 1.45), yticks=(0, 0.5, 1), xlabel="cycle", ylabel="busy PEs\n(fraction)")
        line.legend(fontsize=9, loc="upper right")           # the title gives the value
        self.pe_image = _NearestImage.add(pe)
        pe.set_aspect("equal")                                # as imshow sets it: square PEs
        pe.set(title="busy fraction\nof each PE", xlabel="array column",
               ylabel="array row")
        pe.grid(False)
        whole = lambda n: matplotlib.ticker.MaxNLocator(n, integer=True)   # cycles, rows, columns
        self.cycle_ticks = [_Ticks(heat, "x", whole(6), labels=False),
                            _Ticks(line, "x", whole(6), grid=(0, 1))]
        self.array_ticks = [_Ticks(heat, "y", whole(5)), _Ticks(pe, "x", whole(5)), _Ticks(pe, "y", whole(5))]
        self.title = by_word(fig.suptitle(" ", fontsize=10.5))   # its words recur from run to run
        self.heat, self.line, self.pe = heat, line, pe
        spines = lambda ax: [s for s in ax.spines.values() if s.get_visible()]
        ticks = lambda *ts: [a for t in ts for a in t.artists]
        self.dynamic = [self.heat_image, *spines(heat), *ticks(self.cycle_ticks[0], self.array_ticks[0]),
                        *ticks(self.cycle_ticks[1])[:1], self.folds, self.busy, self.mean, *spines(line),
                        *ticks(self.cycle_ticks[1])[1:],
                        self.pe_image, *spines(pe), *ticks(*self.array_ticks[1:]), self.title]

    _CMAP = mpl.colormaps["Blues"]

    @classmethod
    def _rgba(cls, fraction: np.ndarray) -> np.ndarray:
        """Busy fractions in the images' colours (the colour bar's), as bytes: :class:`_NearestImage`
        then only copies pixels, with no colour mapping of the scaled picture."""
        return cls._CMAP(np.clip(fraction, 0, 1), bytes=True)

    def show(self, run) -> None:
        """Set every dynamic artist for ``run`` (a :class:`~accelbook.models.systolic.SystolicRun`)."""
        M, N = run.C.shape
        K = run.macs // (M * N)
        if run.pipelined:
            closed = systolic.cycles_pipelined(M, N, K, run.rows, run.cols, run.dataflow)
        else:
            closed = (systolic.cycles_double_buffered if run.double_buffer else systolic.cycles)(
                M, N, K, run.rows, run.cols, run.dataflow)
        eff = systolic.shape_efficiency(M, N, K, run.rows, run.cols, run.dataflow)
        cycles, rows, cols = (-0.5, run.cycles - 0.5), (run.rows - 0.5, -0.5), (-0.5, run.cols - 0.5)
        self.heat_image.set_data(self._rgba(run.activity.mean(axis=2).T))  # (rows, cycles): busy fraction of a row
        self.heat_image.set_extent((*cycles, *rows))
        self.heat.set(xlim=cycles, ylim=rows)
        busy = run.activity.mean(axis=(1, 2))                  # cycle t spans t - 0.5 .. t + 0.5
        self.busy.set_data(np.arange(run.cycles + 1) - 0.5, np.append(busy, busy[-1]))
        self.mean.set_ydata([run.utilization, run.utilization])
        starts = [f.stream_start - 0.5 for f in run.folds[1:]]
        self.folds.set_segments([[(x, 0), (x, 1)] for x in starts])
        self.line.set_xlim(cycles)
        self.pe_image.set_data(self._rgba(run.activity.mean(axis=0)))
        self.pe_image.set_extent((*cols, *rows))
        self.pe.set(xlim=cols, ylim=rows)
        for ticks, span in zip((*self.cycle_ticks, *self.array_ticks), (cycles, cycles, rows, cols, rows)):
            ticks.set(*span)
        agree = "=" if closed == run.cycles else "≠"
        self.title.set_text(
            f"{run.rows} × {run.cols} {systolic.DATAFLOWS[run.dataflow]}"
            f"{', pipelined folds' if run.pipelined else ', double-buffered' if run.double_buffer else ''}"
            f"; M={M}, N={N}, K={K}, "
            f"{_count(len(run.folds), 'fold')}\n{_count(run.cycles, 'cycle')} simulated {agree} {closed} "
            f"closed form; utilization {100 * run.utilization:.1f} %, shape efficiency {100 * eff:.0f} %")


def activity_figure(fig, run):
    """The explorer's picture of one run: activity by array row over time, utilization per cycle,
    and how busy each PE was over the whole run; the title compares the simulated cycle count
    with the closed form (:func:`accelbook.models.systolic.cycles`, or
    :func:`~accelbook.models.systolic.cycles_double_buffered`). Clears ``fig``; returns it.
    :class:`ActivityView` draws the same figure and updates it from run to run.
    Taught in: "TPUs and systolic arrays".
    """
    _figure("fig", fig)
    _check(run)
    fig.clear()
    _ActivityPanels(fig).show(run)
    return fig


class ActivityView(explore.View):
    """:func:`activity_figure` as an explorable: simulate ``(M, K) @ (K, N)`` on an ``R x R`` array
    with a dataflow and a fold schedule (one fold at a time, double-buffered weights, or pipelined
    folds: ``schedule`` is a key of :attr:`SCHEDULES`), and show the run; the caption is
    :func:`activity_caption`.

    The figure is built once. Its axes follow the run, as :func:`activity_figure`'s always did: the
    cycle axis spans the run's own cycles and the row and column axes the array. (One cycle axis for
    every setting the controls offer would have to reach 5504 cycles, an 8 × 8 array and
    M = N = K = 64, and would squeeze the starting run's 344 cycles into 6 % of the width.) So the
    ticks and tick labels of those axes are dynamic artists like the data, and no setting redraws
    the background.

    Each update simulates its setting with :func:`accelbook.models.systolic.simulate`, on the
    matrices the chapter has always used (standard normal, seeds 0 and 1; the values change the
    product, not the activity). At the controls' sizes (M, N, K up to 64, R up to 32) a simulation
    takes a few milliseconds, a small part of an update, so runs are not cached.
    Taught in: "TPUs and systolic arrays".
    """

    def __init__(self, figsize=(6.6, 4.65)):
        self.figure = standalone_figure(figsize)
        self._panels = _ActivityPanels(self.figure)
        self.dynamic = self._panels.dynamic
        self.run = None

    SCHEDULES = {"single": "one fold at a time", "double": "double-buffered weights",
                 "pipelined": "pipelined folds"}
    """The ``schedule`` values: what overlaps between folds (see :func:`simulate`)."""

    @classmethod
    def simulate(cls, R: int, dataflow: str, M: int, N: int, K: int, schedule: str):
        """The run the view shows for one setting."""
        if not isinstance(schedule, str) or schedule not in cls.SCHEDULES:
            raise ValueError(f"schedule={schedule!r} is not allowed; allowed: "
                             f"{', '.join(map(repr, cls.SCHEDULES))}")
        R, M, N, K = (checks.positive_int(name, v, maximum=4096) for name, v in (("R", R), ("M", M), ("N", N), ("K", K)))
        A = np.random.default_rng(0).standard_normal((M, K))
        B = np.random.default_rng(1).standard_normal((K, N))
        return systolic.simulate(A, B, R, R, dataflow, double_buffer=schedule == "double",
                                 pipelined=schedule == "pipelined")

    def update(self, R, dataflow, M, N, K, schedule):
        self.run = self.simulate(R, dataflow, M, N, K, schedule)
        self._panels.show(self.run)
        return activity_caption(self.run)


def activity_caption(run) -> str:
    """One or two sentences (Markdown) to go under :func:`activity_figure`: which dimension streams,
    which map onto the array's rows and columns, in how many folds, and what padding to whole
    tiles costs (:func:`accelbook.models.systolic.padded_shape`). For ``(5, 3) @ (3, 4)`` on a 2 × 2
    weight-stationary array: "M = 5 streams through the array; K maps onto its rows and N onto its
    columns, in 4 folds. Padded to whole tiles of 2 × 2: K = 3 → 4."
    Taught in: "TPUs and systolic arrays".
    """
    _check(run)
    M, N = run.C.shape
    dims = {"M": M, "N": N, "K": run.macs // (M * N)}
    on_rows, on_cols, streamed = systolic.MAPPINGS[run.dataflow]
    padded = dict(zip("MNK", systolic.padded_shape(dims["M"], dims["N"], dims["K"], run.rows, run.cols,
                                                   run.dataflow)))
    folds = len(run.folds)
    text = (f"{streamed} = {dims[streamed]} streams through the array; {on_rows} maps onto its rows and "
            f"{on_cols} onto its columns, in {folds} fold{'' if folds == 1 else 's'}. ")
    grown = [f"{d} = {dims[d]} → {padded[d]}" for d in (on_rows, on_cols) if padded[d] != dims[d]]
    if grown:
        text += f"Padded to whole tiles of {run.rows} × {run.cols}: {', '.join(grown)}."
    else:
        text += f"{on_rows} and {on_cols} fill whole tiles of {run.rows} × {run.cols}: nothing is padded."
    if run.pipelined:
        text += (" Pipelined folds: each fold's wavefront follows the previous one through the "
                 "array, so fill and drain are paid once.")
    elif run.dataflow == "os" and run.double_buffer:
        text += " Output-stationary has no stationary tile to load, so double buffering changes nothing."
    return text


def _box(ax, x, y, w, h, color, text, *, alpha=0.35, fontsize=9.5, weight="normal"):
    """A rounded box with centred text, in the axes' 0-100 data units."""
    ax.add_patch(mpl.patches.FancyBboxPatch(
        (x, y), w, h, boxstyle="round,pad=0,rounding_size=0.8", linewidth=0.8, edgecolor="#333333",
        facecolor=mpl.colors.to_rgba(color, alpha)))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
            color="#111111", linespacing=1.2, fontweight=weight)


def _arrow(ax, xy, xytext, both=True):
    ax.annotate("", xy=xy, xytext=xytext,
                arrowprops=dict(arrowstyle="<->" if both else "->", color="#333333", lw=1.1))


def tensorcore_diagram(ax, chip) -> None:
    """Draw one TensorCore of a TPU (a :class:`~accelbook.specs.Chip` or its key) on ``ax``.

    From the top: HBM (capacity and bandwidth, shared by the chip's TensorCores), the on-chip
    vector memory VMEM (the database's ``on_chip_memory`` divided among the TensorCores), the
    vector registers ((8, 128) words of 32 bits, :data:`accelbook.models.systolic.LAYOUT_TILE_32BIT`),
    the vector unit (VPU) that runs every operation that is not a matmul, the scalar unit that
    runs the control, and the ``mxus_per_tensorcore`` MXUs of ``mxu_rows x mxu_cols``. Every
    number comes from the spec database; a missing one is said, not guessed.
    Taught in: "TPUs and systolic arrays" (chapter 06), section "Inside a TensorCore".
    """
    _axes("ax", ax)
    if isinstance(chip, str):
        chip = specs.get_chip(chip)
    if not isinstance(chip, specs.Chip) or chip.kind != "tpu":
        raise ValueError(f"chip={chip!r} is not allowed; pass a TPU's Chip or key from the spec database")
    cores = chip.value("tensorcores_per_chip")
    mxus, rows, cols = (chip.value(f) for f in ("mxus_per_tensorcore", "mxu_rows", "mxu_cols"))
    vmem = chip.value("on_chip_memory")
    sub, lanes = systolic.LAYOUT_TILE_32BIT
    ax.set(xlim=(0, 100), ylim=(0, 100))
    ax.axis("off")
    mem = (f"{chip.value('memory_type') or 'memory'}: {fmt(chip.memory_bytes, 'B')} at "
           f"{fmt(chip.memory_bandwidth, 'B/s')}" if chip.memory_bytes and chip.memory_bandwidth
           else "off-chip memory (not in the database)")
    shared = f", shared by {int(cores)} TensorCores" if cores and cores > 1 else ""
    _box(ax, 2, 87, 96, 11, "#999999", mem + shared)
    ax.add_patch(mpl.patches.FancyBboxPatch((1, 1), 98, 80, boxstyle="round,pad=0,rounding_size=1.2",
                                            facecolor="none", edgecolor="#333333", linewidth=1.2))
    ax.text(3, 78.5, "one TensorCore", ha="left", va="top", fontsize=9.5, color="#444444",
            fontstyle="italic")
    vm = (f"VMEM (vector memory): {fmt(vmem / (cores or 1), 'B', binary=True)}" if vmem
          else "VMEM (size not in the database)")
    _box(ax, 4, 61, 92, 12, PALETTE["purple"], vm + "\nevery operand of a kernel is staged here")
    _box(ax, 4, 41, 44, 13, PALETTE["orange"],
         f"vector registers\n{sub} sublanes × {lanes} lanes × 32 bit")
    _box(ax, 4, 22, 44, 13, PALETTE["sky"], "VPU (vector unit): every\nop that is not a matmul")
    _box(ax, 4, 4, 44, 12, PALETTE["yellow"], "scalar unit: control flow,\naddresses, loop counts")
    feed = "bf16 in, fp32 accumulate" if "bf16" in chip.peak_flops else "int8 in, int32 accumulate"
    n = int(mxus or 0)
    if n and rows and cols:
        gap = 2.0
        h = (50 - gap * (n - 1)) / n          # the MXUs fill y = 4 .. 54
        for i in range(n):
            y = 4 + i * (h + gap)
            label = f"MXU {int(rows)} × {int(cols)}" + (f"\n{feed}" if h >= 11 else "")
            _box(ax, 52, y, 44, h, PALETTE["green"], label, fontsize=9.5 if h >= 7 else 9)
    else:
        _box(ax, 52, 4, 44, 50, PALETTE["green"], "MXUs\n(count or size\nnot in the database)")
    _arrow(ax, (50, 73), (50, 87))              # HBM <-> VMEM
    _arrow(ax, (26, 54), (26, 61))              # VMEM <-> vector registers
    _arrow(ax, (26, 35), (26, 41))              # registers <-> VPU
    _arrow(ax, (52.5, 47.5), (47.5, 47.5))      # registers <-> MXUs
    count = f"{n} MXU{'s' if n != 1 else ''}" if n else "MXUs"
    ax.set_title(f"{chip_label(chip)}: {int(cores or 1)} TensorCore{'s' if (cores or 1) > 1 else ''} "
                 f"per chip, {count} each", fontsize=10.5)


__all__ = ["ActivityView", "activity_caption", "activity_figure", "animation_html", "busy_timeline",
           "draw_cycle", "snapshots", "stationary_tile", "tensorcore_diagram"]
