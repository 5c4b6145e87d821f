"""Figures of the roofline model: rooflines with measured points, intensity markers, the chip map
(peak against bandwidth), ridge-point bars, and two explorable views (:class:`accelbook.explore.View`):
the chip map with one chip highlighted (:class:`ChipMapView`) and one layer on a chip's roofline
(:class:`RooflineView`).

Every number drawn comes from :mod:`accelbook.models.roofline` and the spec database.
Taught in: "The roofline" (chapter 02) and "Introduction" (the chip map).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib as mpl
import matplotlib.ticker as mticker
import matplotlib.transforms as mtransforms
import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from accelbook import explore, specs
from accelbook.models import roofline
from accelbook.notebook import spec_table
from accelbook import checks
from accelbook.plots.style import (CYCLE, MARKERS, PALETTE, _axes, _points, chip_label, log_axes, place_labels,
                                   short_name, si_formatter, vendor_colors)


def _rows(rows) -> list:
    return checks.sequence("rows", rows, of=lambda name, r: checks.instance(name, r, roofline.RidgeRow))


def _ceilings(ceilings) -> list:
    def one(name, c):
        if not (isinstance(c, (tuple, list)) and len(c) == 3):
            raise ValueError(f"{name}={checks.show(c)} must be a (label, peak FLOP/s, bandwidth B/s) triple")
        return (c[0], checks.real(f"{name}[1]", c[1], positive=True), checks.real(f"{name}[2]", c[2], positive=True))
    return checks.sequence("ceilings", ceilings, of=one)
from accelbook.units import fmt


def roofline_plot(ax, ceilings: Sequence[tuple[str, float, float]],
                  points: Iterable[tuple[str, float, float]] = (),
                  intensity_range: tuple[float, float] = (0.05, 5000.0),
                  title: str | None = None, *, styles: Sequence[dict] | None = None,
                  ridge_labels: bool = False, ylabel: str = "attainable throughput (FLOP/s)",
                  fontsize: float = 8.5):
    """Draw rooflines and measured points on ``ax``.

    ``ceilings``: (label, peak FLOP/s, bandwidth bytes/s) for each chip, drawn as
    ``min(peak, bandwidth · I)`` with the ridge point marked. ``points``: (label, intensity
    FLOP/byte, achieved FLOP/s) for each measured kernel, drawn as black markers. ``styles``: one
    dict of line properties per ceiling (``color``, ``linestyle``...), instead of the colour cycle.
    ``ridge_labels`` writes each ridge point's value beside its marker; ``fontsize`` sets the
    legend and those labels.
    """
    _axes("ax", ax)
    bounds = checks.sequence("intensity_range", intensity_range,
                             of=lambda name, v: checks.real(name, v, positive=True))
    if len(bounds) != 2:
        raise ValueError(f"intensity_range={checks.show(intensity_range)} must be a (low, high) pair")
    lo, hi = bounds
    points = _points("points", points)
    if not 0 < lo < hi:
        raise ValueError(f"intensity_range={intensity_range!r} must satisfy 0 < low < high")
    ceilings = _ceilings(ceilings)
    if styles is not None and len(styles) != len(ceilings):
        raise ValueError(f"styles has {len(styles)} entries; ceilings has {len(ceilings)}")
    x = np.geomspace(lo, hi, 400)
    for i, (label, peak, bw) in enumerate(ceilings):
        style = {"color": CYCLE[i % len(CYCLE)], **(styles[i] if styles is not None else {})}
        (line,) = ax.plot(x, roofline.attainable(x, peak, bw), label=label, **style)
        ridge = roofline.ridge_point(peak, bw)
        if lo <= ridge <= hi:
            ax.plot([ridge], [peak], marker="o", color=line.get_color(), markersize=5)
            if ridge_labels:
                ax.annotate(f"{ridge:.0f}", (ridge, peak), xytext=(0, 4), textcoords="offset points",
                            ha="right", va="bottom", fontsize=fontsize, color=line.get_color(),
                            fontweight="bold")
    for j, (label, intensity, achieved) in enumerate(points):
        ax.plot([intensity], [achieved], linestyle="none", marker=MARKERS[j % len(MARKERS)],
                color="black", markerfacecolor="white", markeredgewidth=1.5, label=label)
    log_axes(ax, y_unit="FLOP/s")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of memory traffic)")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _p: f"{v:g}"))
    if title:
        ax.set_title(title)
    ax.legend(fontsize=fontsize, loc="lower right")
    return ax


def measured_points(ax, points: Sequence[tuple[str, float, float, float, float]], *,
                    fontsize: float = 8.5) -> None:
    """Measured kernels as black open circles with vertical error bars, each labelled beside it.

    ``points``: (label, intensity FLOP/byte, achieved FLOP/s at the median time, low, high): the
    bar runs from ``low`` to ``high`` (say the rates at the p90 and p10 times). Labels are placed
    by :func:`accelbook.plots.style.place_labels`, clear of every other label and marker, inside
    the axes, on a light box that keeps them legible over a roof or a bar; set the axis limits first. Taught in: "The roofline" (chapter 02), its measured operations.
    """
    _axes("ax", ax)

    def one(name, p):
        if not (isinstance(p, (tuple, list)) and len(p) == 5):
            raise ValueError(f"{name}={checks.show(p)} must be a (label, intensity, achieved, low, high) tuple")
        return (p[0], *(checks.real(f"{name}[{i}]", v, positive=True) for i, v in enumerate(p[1:], 1)))
    points = checks.sequence("points", points, nonempty=False, of=one)
    for label, intensity, achieved, low, high in points:
        if not low <= achieved <= high:
            raise ValueError(f"point {label!r}: achieved={achieved!r} must lie within low={low!r} "
                             f"and high={high!r}")
        ax.errorbar([intensity], [achieved], yerr=[[achieved - low], [high - achieved]], fmt="o",
                    color="black", markerfacecolor="white", markeredgewidth=1.5, elinewidth=1.2,
                    capsize=3, zorder=4)
    before = len(ax.texts)
    place_labels(ax, [(label, i, a) for label, i, a, _lo, _hi in points], fontsize=fontsize)
    renderer = RendererAgg(*ax.figure.canvas.get_width_height(), ax.figure.dpi)
    inside = ax.get_window_extent(renderer)
    for text in ax.texts[before:]:  # a label pushed out of the axes goes to the other side of its point
        text.set_bbox({"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.75, "edgecolor": "none"})
        box = text.get_window_extent(renderer)
        if box.x0 < inside.x0 or box.x1 > inside.x1:
            dx, dy = text.xyann
            text.xyann = (-dx, dy)
            text.set_ha({"left": "right", "right": "left"}.get(text.get_ha(), text.get_ha()))


def op_points(ax, series: Sequence[tuple[str, Sequence[float], dict]], peak_flops: float,
              bandwidth: float, moves: Sequence[tuple[float, float, str]] = (), fontsize: float = 8.5) -> None:
    """Ops placed on one chip's roofline: each intensity (FLOP/byte) at ``min(P, W · I)``.

    ``series``: (legend label, intensities, marker properties such as ``marker``, ``color``,
    ``markerfacecolor``) for each group of ops, say the projections at batch 1. The points are the
    model's verdict, not measurements. ``moves``: (from intensity, to intensity, label) arrows
    drawn just below the roof, say where a larger batch takes the projections.
    Taught in: "The roofline" (chapter 02), the running example.
    """
    for label, intensities, style in series:
        i = np.asarray(list(intensities), dtype=float)
        ax.plot(i, roofline.attainable(i, peak_flops, bandwidth), linestyle="none", label=label,
                **{"markersize": 8, "markeredgewidth": 1.5, "zorder": 4, **style})
    for start, end, label in moves:
        y0, y1 = (roofline.attainable(v, peak_flops, bandwidth) / 2.5 for v in (start, end))
        ax.annotate("", xy=(end, y1), xytext=(start, y0), zorder=3,
                    arrowprops={"arrowstyle": "->", "color": "#555555", "linewidth": 1.2})
        mid = np.sqrt(start * end)
        ax.annotate(label, (mid, roofline.attainable(mid, peak_flops, bandwidth) / 2.5), xytext=(4, -4),
                    textcoords="offset points", ha="left", va="top", fontsize=fontsize, color="#333333")


def intensity_markers(ax, items: Sequence[tuple[str, float]], color: str = "#555555") -> None:
    """Vertical dotted lines at the intensities (FLOP/byte) of named operations, each labelled
    at the bottom of the axes on a white background (so a roof line behind it stays readable).

    ``items``: (label, intensity) pairs, e.g. the closed-form intensities of an elementwise add,
    a matrix-vector product and a large matmul. Taught in: "The roofline" (chapter 02).
    """
    _axes("ax", ax)
    checks.text("color", color)

    def one(name, item):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"{name}={checks.show(item)} must be a (label, intensity) pair")
        return item[0], checks.real(f"{name}[1]", item[1], positive=True)
    for label, intensity in checks.sequence("items", items, nonempty=False, of=one):
        ax.axvline(intensity, color=color, linestyle=":", linewidth=1.2, zorder=1)
        ax.annotate(label, (intensity, 0.0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                    textcoords="offset points", rotation=90, ha="center", va="bottom", fontsize=8.5,
                    color=color, bbox=dict(boxstyle="square,pad=0.15", facecolor="white", edgecolor="none"))


def ridge_lines(ax, ridges: Sequence[float] = (30, 100, 300, 1000)) -> None:
    """Dotted lines P = ridge · W across log-log (bandwidth, peak) axes, labelled along their slope.

    Set the axis limits first. Taught in: "Introduction" (the chip map).
    """
    _axes("ax", ax)
    ridges = checks.sequence("ridges", ridges, nonempty=False, of=lambda name, v: checks.real(name, v, positive=True))
    if not (ax.get_xlim()[0] > 0 and ax.get_ylim()[0] > 0):
        raise ValueError(f"ax has limits {ax.get_xlim()}, {ax.get_ylim()}: set positive (log) limits first")
    w = np.geomspace(*ax.get_xlim(), 50)
    for ridge in ridges:
        ax.plot(w, ridge * w, ":", color="#888888", lw=1, zorder=1)
        x = min(w[-1], ax.get_ylim()[1] / ridge) / 1.5
        p0, p1 = ax.transData.transform([(x, ridge * x), (2 * x, 2 * ridge * x)])
        angle = np.degrees(np.arctan2(p1[1] - p0[1], p1[0] - p0[0]))
        ax.annotate(f"{ridge:g} FLOP/B", (x, ridge * x), fontsize=7.5, color="#666666",
                    ha="center", va="bottom", rotation=angle, rotation_mode="anchor")


def chip_map(ax, rows: Sequence["roofline.RidgeRow"], highlight=None, main_dtype: str = "bf16",
             marker_radius: float = 5.0) -> list:
    """Dense peak against memory bandwidth for each row (log-log), with lines of constant ridge.

    Colours mark vendors, squares TPUs; a hollow marker means the row uses another dtype's peak
    because the chip has no ``main_dtype`` (T4 and V100 have fp16 but no bf16). ``highlight``
    (one of ``rows``) is drawn large and labelled in bold. Labels keep clear of a marker of
    ``marker_radius`` points (see :func:`accelbook.plots.style.place_labels`). Returns the chips'
    label artists, in the order of ``rows``. Taught in: "Introduction".
    """
    _axes("ax", ax)
    rows = _rows(rows)
    if highlight is not None and not any(highlight is r for r in rows):
        raise ValueError(f"highlight={checks.show(highlight)} must be None or one of rows")
    checks.one_of("main_dtype", main_dtype, specs.DTYPES)
    marker_radius = checks.real("marker_radius", marker_radius, nonnegative=True)
    colors = vendor_colors(r.chip.vendor for r in rows)
    bw, peak = np.array([r.bandwidth for r in rows]), np.array([r.peak_flops for r in rows])
    ax.set(xscale="log", yscale="log", xlim=(bw.min() / 1.6, bw.max() * 1.6),
           ylim=(peak.min() / 2.5, peak.max() * 2.5))
    ridge_lines(ax)
    for r in rows:
        color = colors[r.chip.vendor]
        ax.plot(r.bandwidth, r.peak_flops, "s" if r.chip.kind == "tpu" else "o", color=color,
                mfc=color if r.dtype == main_dtype else "none", mew=1.5,  # hollow: a chip beneath shows through
                ms=12 if r is highlight else 6, zorder=3 if r.dtype == main_dtype else 4)
    before = len(ax.texts)
    place_labels(ax, [(chip_label(r.chip), r.bandwidth, r.peak_flops) for r in rows], fontsize=7.5,
                 bold=[chip_label(highlight.chip)] if highlight is not None else (), marker_radius=marker_radius)
    labels = list(ax.texts[before:])  # place_labels keeps one annotation per point, in order
    log_axes(ax, "B/s", "FLOP/s")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(mticker.LogLocator(subs=(1, 3)))
    others = sorted({r.dtype for r in rows if r.dtype != main_dtype})
    ax.set(xlabel="memory bandwidth W (bytes/s)",
           ylabel=f"dense {'peak' if others else main_dtype + ' peak'} P (FLOP/s)")
    marks = [("o", v, c, c) for v, c in colors.items()] + [("o", "GPU", "k", "k"), ("s", "TPU", "k", "k")]
    if others:
        marks.append(("o", f"{', '.join(others)} peak (no {main_dtype})", "k", "w"))
    ax.legend(handles=[mpl.lines.Line2D([], [], ls="", marker=m, label=lab, color=c, mfc=mfc)
                       for m, lab, c, mfc in marks], loc="upper left", fontsize=8)
    return labels


def ridge_bars(ax, rows: Sequence["roofline.RidgeRow"], main_dtype: str = "bf16") -> None:
    """Horizontal bars of ridge points (FLOP/byte), one per :class:`accelbook.models.roofline.RidgeRow`,
    in the order given (pass them sorted), coloured by vendor; a hatched bar used another dtype
    than ``main_dtype`` (say fp16 on a chip without bf16). Taught in: "The roofline" (chapter 02).
    """
    _axes("ax", ax)
    rows = _rows(rows)
    checks.one_of("main_dtype", main_dtype, specs.DTYPES)
    colors = vendor_colors(r.chip.vendor for r in rows)
    y = np.arange(len(rows))
    for i, r in enumerate(rows):
        ax.barh(i, r.ridge, color=colors[r.chip.vendor], hatch="///" if r.dtype != main_dtype else None,
                edgecolor="white", linewidth=0.5)
        ax.annotate(f"{r.ridge:.0f}", (r.ridge, i), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(y, [f"{r.chip.name}, {r.chip.year}" + ("" if r.dtype == main_dtype else f" ({r.dtype})")
                      for r in rows], fontsize=8.5)
    ax.set_xlabel(f"ridge point, {main_dtype} (FLOP per byte)")
    ax.grid(axis="y", visible=False)
    handles = [mpl.patches.Patch(color=c, label=v) for v, c in colors.items()]
    others = sorted({r.dtype for r in rows if r.dtype != main_dtype})
    if others:
        handles.append(mpl.patches.Patch(facecolor="white", edgecolor="#555555", hatch="///",
                                         label=f"no {main_dtype}: {', '.join(others)} peak"))
    ax.legend(handles=handles, fontsize=8, loc="lower right")


CHIP_FIELDS = ("bf16", "fp16", "memory_capacity", "memory_bandwidth", "scaleup_bandwidth")


class ChipMapView(explore.View):
    """The chip map (:func:`chip_map`) with one chip highlighted: ``update(chip=key)``.

    The map (axes, ridge lines, every chip's marker and label, the legend) is drawn once. What the
    chip changes is dynamic: a large marker over the chip's own, its label in bold over the plain
    one (on a white box that hides it), and the title with its ridge point. Every label is placed
    clear of a marker as large as the highlight's, so the bold label never touches it. The caption
    is the chip's spec table (``fields``, each value linked to its source) and where its ridge
    point ranks. ``rows``: :func:`accelbook.models.roofline.ridge_table` rows, one per chip offered.
    Taught in: "Introduction" (chapter 01), its explorable chip map.
    """

    def __init__(self, rows: Sequence["roofline.RidgeRow"], main_dtype: str = "bf16",
                 figsize: tuple[float, float] = (8, 5.5), fields: Sequence[str] = CHIP_FIELDS):
        self.rows, self.main_dtype, self.fields = list(rows), main_dtype, tuple(fields)
        if not self.rows:
            raise ValueError("rows must not be empty")
        self.index = {r.chip.key: i for i, r in enumerate(self.rows)}
        self.colors = vendor_colors(r.chip.vendor for r in self.rows)
        self.figure = Figure(figsize=figsize)
        # matplotlib's default axes size, moved right so that the tick labels stay in the figure
        self.figure.subplots_adjust(left=0.16, right=0.935)
        ax = self.ax = self.figure.add_subplot()
        self.labels = chip_map(ax, self.rows, main_dtype=main_dtype, marker_radius=8.0)
        # over every label and marker, so that reference and blitted frames agree where they meet
        (self.marker,) = ax.plot([], [], linestyle="none", mew=1.5, ms=12, zorder=5.5)
        self.label = ax.annotate(" ", (1.0, 1.0), xytext=(0, 0), textcoords="offset points",
                                 fontsize=self.labels[0].get_fontsize(),
                                 fontweight="bold", color=self.labels[0].get_color(), zorder=6,
                                 bbox=dict(boxstyle="square,pad=0.03", facecolor="white", edgecolor="none"))
        self.title = ax.set_title(" ")
        self.dynamic = [self.marker, self.label, self.title]

    def update(self, chip: str) -> str:
        row = self.rows[self.index[chip]]
        plain = self.labels[self.index[chip]]
        self.label.xy, self.label.xyann = plain.xy, plain.xyann
        self.label.set(text=plain.get_text(), ha=plain.get_ha(), va=plain.get_va())
        color = self.colors[row.chip.vendor]
        self.marker.set_data([row.bandwidth], [row.peak_flops])
        self.marker.set(marker="s" if row.chip.kind == "tpu" else "o", color=color,
                        mfc=color if row.dtype == self.main_dtype else "white")
        self.title.set_text(f"{row.chip.name}: {row.dtype} ridge point {row.ridge:.0f} FLOP/byte")
        lower = sum(r.ridge < row.ridge for r in self.rows)
        return (f"{spec_table([row.chip], self.fields)}\n\nIts ridge point, {row.ridge:.0f} FLOP/byte, is "
                f"higher than that of {lower} of the other {len(self.rows) - 1} chips: a kernel needs at "
                "least that many FLOP per byte to reach its peak.")


def _layer(m, width: int, itemsize: float):
    """FLOP and bytes of ``(m, width) @ (width, width)``, each matrix read or written once."""
    m = np.asarray(m, dtype=float)
    return 2.0 * m * width * width, itemsize * (m * width + width * width + m * width)


def _point_label(batch: int, intensity: float) -> str:
    return f"batch {batch}: {intensity:.3g} FLOP/B" if intensity < 1000 else f"batch {batch}: {intensity:.0f} FLOP/B"


def _log_margins(lo: float, hi: float, margin: float = 0.05) -> tuple[float, float]:
    """``(lo, hi)`` widened by ``margin`` of its log range on each side (matplotlib's autoscale)."""
    f = (hi / lo) ** margin
    return lo / f, hi * f


class RooflineView(explore.View):
    """Where one layer ``(batch, width) @ (width, width)`` lands on a chip's roofline:
    ``update(chip=key, dtype=..., batch=..., width=...)``.

    Top ("left" panel): the chip's roofline for ``dtype`` with every batch of ``batches`` on it
    (grey) and ``batch`` highlighted. Bottom ("right" panel): predicted time per call against
    batch, with the memory and
    compute lower bounds and the smallest compute-bound batch. The title gives the time, the bound
    and the fraction of peak; for a chip without a ``dtype`` peak it says so over empty axes.

    The axes are fixed, chosen once to hold every value the controls offer (``chips`` × ``dtypes``
    × ``batches`` × ``widths``), so settings compare at a glance and only the data is redrawn:
    the roof, the points, the curves, the compute-bound marker, the left panel's legend (keys and
    labels), the right x label and the title are dynamic. All numbers come from :mod:`accelbook.models.roofline` and
    the spec database. Taught in: "The roofline" (chapter 02), in its explorable figure.
    """

    def __init__(self, chips: Sequence[str], dtypes: Sequence[str], batches: Sequence[int],
                 widths: Sequence[int], figsize: tuple[float, float] = (6.6, 6.8)):
        self.chips = {key: specs.get_chip(key) for key in chips}
        self.batches = sorted(batches)
        ceilings_named = {f"{short_name(c.name)}, {d}": (c.peak_flops[d], c.memory_bandwidth, specs.itemsize(d))
                          for c in self.chips.values() for d in dtypes if d in c.peak_flops and c.memory_bandwidth}
        ceilings = list(ceilings_named.values())
        if not ceilings or not widths or not self.batches:
            raise ValueError("no chip offered has a peak for a dtype offered and a memory bandwidth")
        intensity, times = [], []
        for width in widths:
            for peak, bw, b in ceilings:
                flops, nbytes = _layer(self.batches, width, b)
                intensity.append(flops / nbytes)
                times.append(np.maximum(flops / peak, nbytes / bw))
        point_labels = {_point_label(m, i) for row in intensity for m, i in zip(self.batches, row)}
        intensity, times = np.concatenate(intensity), np.concatenate(times)
        # every roof spans the intensities of every setting (with roofline_plot's margins)
        self.span = (min(0.3, intensity.min() / 2), max(4000.0, 4 * intensity.max()))
        lowest = min(bw * self.span[0] for _p, bw, _b in ceilings)
        highest = max(p for p, _bw, _b in ceilings)

        fig = self.figure = Figure(figsize=figsize)
        # the title sits where constrained layout puts a suptitle; the layout keeps its room free
        pad = mpl.rcParams["figure.constrained_layout.h_pad"] / figsize[1]
        self.title = fig.text(0.5, 1 - pad, "Ag", ha="center", va="top", fontsize=10.5)
        box = self.title.get_window_extent(RendererAgg(*fig.canvas.get_width_height(), fig.dpi))
        self.title.set_text(" ")
        fig.set_layout_engine(ConstrainedLayoutEngine(rect=(0, 0, 1, 1 - 2 * pad - box.height / fig.bbox.height)))
        # stacked, so that the figure fits the text column at full size and its text stays legible
        left, right = self.left, self.right = fig.subplots(2, 1)
        # left: the roofline
        (self.roof,) = left.plot([], [], color=CYCLE[0], zorder=2)
        (self.ridge,) = left.plot([], [], "o", color=CYCLE[0], markersize=5, zorder=2)
        (self.grey,) = left.plot([], [], "o", color="#aaaaaa", markersize=4, zorder=3)
        self.ridge_text = left.annotate(" ", (1.0, 1.0), xytext=(0, 6), textcoords="offset points",
                                        ha="center", fontsize=8.5, zorder=3)
        (self.point,) = left.plot([], [], "o", color=PALETTE["vermillion"], markersize=9, zorder=4)
        self.keys, self.key_labels = self._legend(left, [*ceilings_named, *point_labels])
        log_axes(left, y_unit="FLOP/s")
        left.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _p: f"{v:g}"))
        left.set(xlim=_log_margins(*self.span), ylim=(_log_margins(lowest, highest)[0], 4 * highest),
                 xlabel="arithmetic intensity (FLOP per byte of memory traffic)",
                 ylabel="attainable throughput (FLOP/s)")
        # right: time per call against batch
        (self.time,) = right.plot([], [], color=PALETTE["blue"], linewidth=5, alpha=0.35,
                                  label="roofline time (the larger)", zorder=2)
        (self.memory,) = right.plot([], [], ":", color=PALETTE["orange"], label="bytes / bandwidth", zorder=2)
        (self.compute,) = right.plot([], [], "--", color=PALETTE["green"], label="FLOP / peak", zorder=2)
        self.m_star = right.axvline(1.0, color="#555555", linewidth=1, zorder=2)
        self.m_star_text = right.annotate(" ", (1.0, 0.97), xycoords=("data", "axes fraction"),
                                          xytext=(4, 0), textcoords="offset points", va="top", fontsize=8.5,
                                          zorder=3)
        self.why = right.text(0.03, 0.97, " ", transform=right.transAxes, ha="left", va="top",
                              fontsize=8.5, zorder=3)
        (self.now,) = right.plot([], [], "o", color=PALETTE["vermillion"], markersize=9, zorder=4)
        log_axes(right, y_unit="s")
        right.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _p: f"{v:g}"))
        # the fixed ranges span many decades: a grid line per decade, a tick label every other one
        # on the right, and no minor ticks on either y axis (each static frame weighs less)
        seconds = si_formatter("s")
        right.yaxis.set_major_formatter(mticker.FuncFormatter(
            lambda v, pos: seconds(v, pos) if round(np.log10(v)) % 2 == 0 else ""))
        for ax in (left, right):
            ax.yaxis.set_minor_locator(mticker.NullLocator())
        right.set(xlim=_log_margins(self.batches[0], self.batches[-1]),
                  ylim=(times.min() / 3, times.max() * 3), ylabel="predicted time per call (s)")
        xlabel = right.set_xlabel(" ")  # holds the place of the x label, which names the width
        self.xlabel = right.annotate(" ", (0.5, 1.0), xycoords=xlabel, ha="center", va="top",
                                     fontsize=xlabel.get_fontsize(), color=xlabel.get_color())
        right.legend(handles=[self.time, self.memory, self.compute], fontsize=8, loc="upper center",
                     bbox_to_anchor=(0.5, -0.16), ncol=3)
        self.data = [self.roof, self.ridge, self.grey, self.ridge_text, self.point, *self.keys, *self.key_labels,
                     self.time, self.memory, self.compute, self.m_star, self.m_star_text, self.why, self.now]
        self.dynamic = [*self.data, self.xlabel, self.title]  # in z-order: each over what it may cover

    def _legend(self, ax, labels: Sequence[str], fontsize: float = 8.5) -> tuple[list, list]:
        """The left panel's legend (the roof, the highlighted batch) as plain artists, placed where
        ``ax.legend(loc="lower right")`` would put it with the widest of ``labels`` (every label it
        may show). Its labels change with every setting, and a :class:`matplotlib.legend.Legend`
        costs twice as much to redraw as its texts alone. Returns the two keys and the two labels
        (texts, set by :meth:`update`)."""
        fig = ax.figure
        renderer = RendererAgg(*fig.canvas.get_width_height(), fig.dpi)
        longest = sorted(labels, key=len)[-10:]  # the widest is among the longest
        probe = ax.text(0, 0, "", fontsize=fontsize)
        sizes = []
        for text in longest:
            probe.set_text(text)
            box = probe.get_window_extent(renderer)
            sizes.append((box.width * 72 / fig.dpi, box.height * 72 / fig.dpi))
        probe.remove()
        width, height = max(w for w, _h in sizes), max(h for _w, h in sizes)
        # matplotlib's legend geometry, in points from the axes' lower right corner
        pad = (0.5 + 0.4) * fontsize  # borderaxespad + borderpad
        x_text = -pad - width
        x_key = (x_text - 2.8 * fontsize, x_text - 0.8 * fontsize)  # handlelength 2, handletextpad 0.8
        y_point = pad + height / 2
        y_roof = y_point + height + 0.5 * fontsize  # labelspacing 0.5
        points_from_corner = (mtransforms.Affine2D().scale(1 / 72) + fig.dpi_scale_trans
                              + mtransforms.ScaledTranslation(1, 0, ax.transAxes))
        keys = [mpl.lines.Line2D(x_key, [y_roof, y_roof], color=self.roof.get_color(),
                                 linewidth=self.roof.get_linewidth(), transform=points_from_corner, zorder=5),
                mpl.lines.Line2D([sum(x_key) / 2], [y_point], linestyle="none", marker="o",
                                 color=self.point.get_color(), markersize=self.point.get_markersize(),
                                 transform=points_from_corner, zorder=5)]
        for key in keys:
            ax.add_artist(key)
        labels = [ax.annotate(" ", (1, 0), xycoords="axes fraction", xytext=(x_text, y), textcoords="offset points",
                              ha="left", va="center", fontsize=fontsize, zorder=5) for y in (y_roof, y_point)]
        return keys, labels

    def update(self, chip: str, dtype: str, batch: int, width: int) -> None:
        c = self.chips[chip]
        ok = dtype in c.peak_flops and bool(c.memory_bandwidth)
        for a in (*self.data, self.xlabel):
            a.set_visible(ok)
        self.xlabel.set_text(f"batch (rows multiplying a {width} × {width} weight)")
        if not ok:  # empty axes (the same for every width), and the title says why
            have = ", ".join(c.peak_flops) or "none"
            self.title.set_text(f"{c.name} has no {dtype} peak in the spec database (it has: {have}).")
            return None
        peak, bw, b = c.peak_flops[dtype], c.memory_bandwidth, specs.itemsize(dtype)
        batches = sorted(set(self.batches) | {batch})
        preds = [roofline.predict(*_layer(m, width, b), peak, bw) for m in batches]
        now = preds[batches.index(batch)]
        # left
        ridge = roofline.ridge_point(peak, bw)
        lo, hi = self.span
        x = [lo, *([ridge] if lo < ridge < hi else []), hi]
        self.roof.set_data(x, roofline.attainable(np.array(x), peak, bw))
        self.ridge.set_data([ridge], [peak])
        self.ridge.set_visible(lo <= ridge <= hi)
        self.grey.set_data([p.intensity for p in preds], [p.attainable for p in preds])
        self.point.set_data([now.intensity], [now.attainable])
        self.ridge_text.xy = (ridge, peak)
        self.ridge_text.set_text(f"ridge {ridge:.3g} FLOP/B")
        roof_label, point_label = self.key_labels
        roof_label.set_text(f"{short_name(c.name)}, {dtype}")
        point_label.set_text(_point_label(batch, now.intensity))
        # right
        self.time.set_data(batches, [p.time for p in preds])
        self.memory.set_data(batches, [p.memory_time for p in preds])
        self.compute.set_data(batches, [p.compute_time for p in preds])
        self.now.set_data([batch], [now.time])
        m_star = roofline.min_batch_for_compute_bound(width, width, peak, bw, b)
        shown = m_star is not None and m_star <= batches[-1]
        for a in (self.m_star, self.m_star_text):
            a.set_visible(shown)
        self.why.set_visible(not shown)
        if shown:
            to_right = m_star < np.sqrt(batches[0] * batches[-1])  # keep the label inside the axes
            self.m_star.set_xdata([m_star, m_star])
            self.m_star_text.xy = (m_star, 0.97)
            self.m_star_text.xyann = (4 if to_right else -4, 0)
            self.m_star_text.set(text=f"compute-bound from\nbatch {m_star}", ha="left" if to_right else "right")
        else:
            self.why.set_text("no batch makes this layer compute-bound" if m_star is None
                              else f"compute-bound only from batch {m_star}")
        self.title.set_text(f"{c.name}, {dtype}, batch {batch}: {fmt(now.time, 's')}, {now.bound}-bound, "
                            f"{100 * now.fraction_of_peak:.3g} % of peak")
        return None


__all__ = ["CHIP_FIELDS", "ChipMapView", "RooflineView", "chip_map", "intensity_markers", "measured_points", "op_points",
           "ridge_bars", "ridge_lines", "roofline_plot"]
