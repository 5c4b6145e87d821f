"""One house style for every figure, and the figure helpers the chapters share.

Style: the Okabe–Ito colour-blind-safe palette; units in every axis label; log axes where values
span decades; an opaque light background with dark text, so a figure stays legible when the page
around it switches to the dark theme.

Taught in: every chapter (the roofline figure: "The roofline"; the matmul figure: "The same
matmul on every device").
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterable, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.backends.backend_agg import RendererAgg

from accelbook import roofline, specs
from accelbook.units import fmt

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
# deficiency. Black is kept for measured data.
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
    """Apply the house style to every later figure (call once at the top of a chapter)."""
    mpl.rcParams.update(RC)


@contextlib.contextmanager
def style():
    """The house style for the figures made inside a ``with`` block."""
    with mpl.rc_context(RC):
        yield


def si_formatter(unit: str) -> mticker.FuncFormatter:
    """Tick labels with metric prefixes: 1e12 with unit 'FLOP/s' reads '1 TFLOP/s'."""
    return mticker.FuncFormatter(lambda v, _pos: fmt(v, unit, digits=3) if v > 0 else "0")


def log_axes(ax, x_unit: str | None = None, y_unit: str | None = None) -> None:
    """Log-scale both axes; label ticks with metric prefixes in the given units."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    if x_unit:
        ax.xaxis.set_major_formatter(si_formatter(x_unit))
    if y_unit:
        ax.yaxis.set_major_formatter(si_formatter(y_unit))


def roofline_plot(ax, ceilings: Sequence[tuple[str, float, float]],
                  points: Iterable[tuple[str, float, float]] = (),
                  intensity_range: tuple[float, float] = (0.05, 5000.0),
                  title: str | None = None):
    """Draw rooflines and measured points on ``ax``.

    ``ceilings``: (label, peak FLOP/s, bandwidth bytes/s) for each chip, drawn as
    ``min(peak, bandwidth · I)`` with the ridge point marked. ``points``: (label, intensity
    FLOP/byte, achieved FLOP/s) for each measured kernel, drawn as black markers.
    """
    lo, hi = intensity_range
    if not 0 < lo < hi:
        raise ValueError(f"intensity_range={intensity_range!r} must satisfy 0 < low < high")
    x = np.geomspace(lo, hi, 400)
    for i, (label, peak, bw) in enumerate(ceilings):
        color = CYCLE[i % len(CYCLE)]
        ax.plot(x, roofline.attainable(x, peak, bw), color=color, label=label)
        ridge = roofline.ridge_point(peak, bw)
        if lo <= ridge <= hi:
            ax.plot([ridge], [peak], marker="o", color=color, markersize=5)
    for j, (label, intensity, achieved) in enumerate(points):
        ax.plot([intensity], [achieved], linestyle="none", marker=MARKERS[j % len(MARKERS)],
                color="black", markerfacecolor="white", markeredgewidth=1.5, label=label)
    log_axes(ax, y_unit="FLOP/s")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of memory traffic)")
    ax.set_ylabel("attainable throughput (FLOP/s)")
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _p: f"{v:g}"))
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8.5, loc="lower right")
    return ax


__all__ = ["CYCLE", "MARKERS", "PALETTE", "RC", "log_axes", "roofline_plot",
           "si_formatter", "style", "use_style"]


# ---------------------------------------------------------------------------------------------
# Added for the chapter "The roofline: compute versus bandwidth" (02_roofline).


def intensity_markers(ax, items: Sequence[tuple[str, float]], color: str = "#555555") -> None:
    """Vertical dotted lines at the intensities (FLOP/byte) of named operations, each labelled
    at the bottom of the axes on a white background (so a roof line behind it stays readable).

    ``items``: (label, intensity) pairs, e.g. the closed-form intensities of an elementwise add,
    a matrix-vector product and a large matmul. Taught in: "The roofline" (chapter 02).
    """
    for label, intensity in items:
        ax.axvline(intensity, color=color, linestyle=":", linewidth=1.2, zorder=1)
        ax.annotate(label, (intensity, 0.0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                    textcoords="offset points", rotation=90, ha="center", va="bottom", fontsize=8.5,
                    color=color, bbox=dict(boxstyle="square,pad=0.15", facecolor="white", edgecolor="none"))


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
    offsets = offsets or {}
    bold = set(bold)
    points = list(points)
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
    points = list(points)
    for _label, intensity, achieved in points:
        ax.plot([intensity], [achieved], linestyle="none", marker="o", color="black",
                markerfacecolor="white", markeredgewidth=1.5, zorder=4)
    ax.autoscale_view()
    place_labels(ax, points, offsets=offsets)


def ridge_lines(ax, ridges: Sequence[float] = (30, 100, 300, 1000)) -> None:
    """Dotted lines P = ridge · W across log-log (bandwidth, peak) axes, labelled along their slope.

    Set the axis limits first. Taught in: "Introduction" (the chip map).
    """
    w = np.geomspace(*ax.get_xlim(), 50)
    for ridge in ridges:
        ax.plot(w, ridge * w, ":", color="#888888", lw=1, zorder=1)
        x = min(w[-1], ax.get_ylim()[1] / ridge) / 1.5
        p0, p1 = ax.transData.transform([(x, ridge * x), (2 * x, 2 * ridge * x)])
        angle = np.degrees(np.arctan2(p1[1] - p0[1], p1[0] - p0[0]))
        ax.annotate(f"{ridge:g} FLOP/B", (x, ridge * x), fontsize=7.5, color="#666666",
                    ha="center", va="bottom", rotation=angle, rotation_mode="anchor")


def chip_label(chip) -> str:
    """A short label for charts: 'NVIDIA A100 SXM4 40GB' -> 'A100 40GB', 'Google TPU v6e
    (Trillium)' -> 'TPU v6e' (no vendor, form factor or nickname)."""
    return re.sub(r"\s*\(.*\)|\s*SXM\d?", "", short_name(chip.name))


def chip_map(ax, rows: Sequence["roofline.RidgeRow"], highlight=None, main_dtype: str = "bf16") -> None:
    """Dense peak against memory bandwidth for each row (log-log), with lines of constant ridge.

    Colours mark vendors, squares TPUs; a hollow marker means the row uses another dtype's peak
    because the chip has no ``main_dtype`` (T4 and V100 have fp16 but no bf16). ``highlight``
    (one of ``rows``) is drawn large and labelled in bold. Taught in: "Introduction".
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows must not be empty")
    colors = vendor_colors(r.chip.vendor for r in rows)
    bw, peak = np.array([r.bandwidth for r in rows]), np.array([r.peak_flops for r in rows])
    ax.set(xscale="log", yscale="log", xlim=(bw.min() / 1.6, bw.max() * 1.6),
           ylim=(peak.min() / 2.5, peak.max() * 2.5))
    ridge_lines(ax)
    for r in rows:
        color = colors[r.chip.vendor]
        ax.plot(r.bandwidth, r.peak_flops, "s" if r.chip.kind == "tpu" else "o", color=color,
                mfc=color if r.dtype == main_dtype else "white", mew=1.5,
                ms=12 if r is highlight else 6, zorder=3 if r.dtype == main_dtype else 4)
    place_labels(ax, [(chip_label(r.chip), r.bandwidth, r.peak_flops) for r in rows], fontsize=7.5,
                 bold=[chip_label(highlight.chip)] if highlight is not None else ())
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


def vendor_colors(vendors: Iterable[str]) -> dict[str, str]:
    """One :data:`CYCLE` colour per vendor name, assigned in sorted order (stable across figures)."""
    return {v: CYCLE[i % len(CYCLE)] for i, v in enumerate(sorted(set(vendors)))}


def ridge_bars(ax, rows: Sequence["roofline.RidgeRow"], main_dtype: str = "bf16") -> None:
    """Horizontal bars of ridge points (FLOP/byte), one per :class:`accelbook.roofline.RidgeRow`,
    in the order given (pass them sorted), coloured by vendor; a hatched bar used another dtype
    than ``main_dtype`` (say fp16 on a chip without bf16). Taught in: "The roofline" (chapter 02).
    """
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


def short_name(name: str) -> str:
    """A chip name without its vendor prefix: 'NVIDIA H100 SXM' -> 'H100 SXM'."""
    for prefix in ("NVIDIA ", "AMD Instinct ", "AMD ", "Google Cloud ", "Google "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def roofline_explorer(fig, chip, dtype: str, batch: int, width: int = 4096,
                      batches: Sequence[int] = tuple(2**i for i in range(15))):
    """Draw, on ``fig``, where one layer ``(batch, width) @ (width, width)`` lands on ``chip``.

    Left: the chip's roofline for ``dtype`` with every batch in ``batches`` on it (grey) and
    ``batch`` highlighted. Right: predicted time per call against batch, with the memory and
    compute lower bounds and the smallest compute-bound batch. All numbers come from
    :mod:`accelbook.roofline` and the spec database. Taught in: "The roofline" (chapter 02),
    in its explorable figure.
    """

    fig.clear()
    left, right = fig.subplots(1, 2)
    if dtype not in chip.peak_flops or not chip.memory_bandwidth:
        have = ", ".join(d for d in chip.peak_flops) or "none"
        for ax in (left, right):
            ax.axis("off")
        fig.text(0.5, 0.5, f"{chip.name} has no {dtype} peak in the spec database (it has: {have}).",
                 ha="center", va="center", fontsize=11)
        return fig
    peak, bw, b = chip.peak_flops[dtype], chip.memory_bandwidth, specs.itemsize(dtype)
    batches = sorted(set(batches) | {batch})
    preds = [roofline.predict(2.0 * m * width * width, b * (m * width + width * width + m * width), peak, bw)
             for m in batches]
    now = preds[batches.index(batch)]
    roofline_plot(left, [(f"{short_name(chip.name)}, {dtype}", peak, bw)],
                  intensity_range=(0.3, max(4000.0, 4 * preds[-1].intensity)))
    left.plot([p.intensity for p in preds], [p.attainable for p in preds], "o", color="#aaaaaa",
              markersize=4, zorder=3)
    left.plot([now.intensity], [now.attainable], "o", color=PALETTE["vermillion"], markersize=9, zorder=4,
              label=f"batch {batch}: {now.intensity:.3g} FLOP/B")
    left.annotate(f"ridge {peak / bw:.3g} FLOP/B", (peak / bw, peak), xytext=(0, 6), textcoords="offset points",
                  ha="center", fontsize=8.5)
    left.legend(fontsize=8.5, loc="lower right")
    times = np.array([p.time for p in preds])
    right.plot(batches, times, color=PALETTE["blue"], linewidth=5, alpha=0.35, label="roofline time (the larger)")
    right.plot(batches, [p.memory_time for p in preds], ":", color=PALETTE["orange"], label="bytes / bandwidth")
    right.plot(batches, [p.compute_time for p in preds], "--", color=PALETTE["green"], label="FLOP / peak")
    right.plot([batch], [now.time], "o", color=PALETTE["vermillion"], markersize=9, zorder=4)
    m_star = roofline.min_batch_for_compute_bound(width, width, peak, bw, b)
    if m_star is not None and m_star <= batches[-1]:
        right.axvline(m_star, color="#555555", linewidth=1)
        to_right = m_star < np.sqrt(batches[0] * batches[-1])  # keep the label inside the axes
        right.annotate(f"compute-bound from\nbatch {m_star}", (m_star, 0.97), xycoords=("data", "axes fraction"),
                       xytext=(4 if to_right else -4, 0), textcoords="offset points",
                       ha="left" if to_right else "right", va="top", fontsize=8.5)
    else:
        why = ("no batch makes this layer compute-bound" if m_star is None
               else f"compute-bound only from batch {m_star}")
        right.text(0.03, 0.97, why, transform=right.transAxes, ha="left", va="top", fontsize=8.5)
    log_axes(right, y_unit="s")
    right.set_ylim(times.min() / 3, times.max() * 3)
    right.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _p: f"{v:g}"))
    right.set_xlabel(f"batch (rows multiplying a {width} × {width} weight)")
    right.set_ylabel("predicted time per call (s)")
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
    fig.suptitle(f"{chip.name}, {dtype}, batch {batch}: {fmt(now.time, 's')}, {now.bound}-bound, "
                 f"{100 * now.fraction_of_peak:.3g} % of peak", fontsize=11)
    return fig


__all__ += ["chip_label", "chip_map", "intensity_markers", "labelled_points", "place_labels",
            "ridge_bars", "ridge_lines", "roofline_explorer", "short_name", "vendor_colors"]


# ---------------------------------------------------------------------------------------------
# Added for the chapter "Inside a GPU streaming multiprocessor" (04_gpu_sm): the SM and chip
# diagrams drawn from the spec database, the occupancy staircase and explorer, the latency-hiding
# figure, and the tensor-versus-SIMT table. Figures only: every number comes from accelbook.gpu.

_SM_COLORS = {"scheduler": PALETTE["sky"], "registers": PALETTE["orange"], "fp32": PALETTE["blue"],
              "tensor": PALETTE["green"], "l1": PALETTE["purple"], "l2": PALETTE["yellow"],
              "memory": "#999999"}


def _box(ax, x, y, w, h, color, text="", fontsize=8.0, alpha=0.35, weight="normal"):
    ax.add_patch(mpl.patches.FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.8",
                                            facecolor=mpl.colors.to_rgba(color, alpha),
                                            edgecolor="#333333", linewidth=0.8))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color="#111111", fontweight=weight, linespacing=1.15)


def _anatomy(chip_or_anatomy):
    from accelbook import gpu

    if isinstance(chip_or_anatomy, gpu.SMAnatomy):
        return chip_or_anatomy
    return gpu.sm_anatomy(chip_or_anatomy)


def _kib(value: float) -> str:
    return fmt(value, "B", binary=True)


def sm_diagram(ax, chip) -> None:
    """Draw one SM of ``chip`` (a key, a :class:`~accelbook.specs.Chip` or an
    :class:`accelbook.gpu.SMAnatomy`) as labelled boxes on ``ax``.

    Four (``partitions``) sub-partitions, each with its warp scheduler, its slice of the register
    file, its FP32 lanes and its tensor cores; below them the L1 data cache / shared memory; every
    label carries the spec database's number (:func:`accelbook.gpu.sm_anatomy`). Taught in:
    "Inside a GPU SM" (chapter 04).
    """
    a = _anatomy(chip)
    ax.set(xlim=(0, 100), ylim=(0, 100))
    ax.axis("off")
    _box(ax, 1, 12, 98, 80, "#ffffff", alpha=0.0)
    gap, left = 2.0, 3.0
    w = (94 - gap * (a.partitions - 1)) / a.partitions
    regs = a.registers_per_sm // a.partitions
    for p in range(a.partitions):
        x = left + p * (w + gap)
        _box(ax, x, 34, w, 56, "#eeeeee", alpha=1.0)
        ax.text(x + w / 2, 88, f"sub-partition {p}", ha="center", va="center", fontsize=8, color="#444444")
        _box(ax, x + 1, 76, w - 2, 9, _SM_COLORS["scheduler"],
             f"warp scheduler\n≤ {a.max_warps_per_scheduler} warps", fontsize=8.5)
        _box(ax, x + 1, 56, w - 2, 18, _SM_COLORS["registers"],
             f"register file\n{_kib(a.register_file_per_partition)}\n({regs:,} × 32-bit)", fontsize=8.5)
        half = (w - 3) / 2
        _box(ax, x + 1, 36, half, 18, _SM_COLORS["fp32"], f"FP32\nlanes\n× {a.fp32_lanes_per_partition}",
             fontsize=8.5)
        _box(ax, x + 2 + half, 36, half, 18, _SM_COLORS["tensor"],
             f"tensor\ncore{'s' if a.tensor_cores_per_partition > 1 else ''}\n× {a.tensor_cores_per_partition}",
             fontsize=8.5)
    _box(ax, left, 15, 94, 16, _SM_COLORS["l1"],
         f"L1 data cache / shared memory: {_kib(a.l1_smem_per_sm)} per SM "
         f"(up to {_kib(a.shared_mem_per_sm)} as shared memory)", fontsize=9.5)
    ax.annotate("", xy=(50, 1.5), xytext=(50, 12), arrowprops=dict(arrowstyle="<->", color="#333333", lw=1))
    ax.text(52, 6, f"to L2 ({fmt(a.l2_cache, 'B')}, shared by all {a.sm_count} SMs) and "
            f"{a.memory_type} ({fmt(a.memory_bandwidth, 'B/s')})", ha="left", va="center", fontsize=9)
    ax.set_title(f"One SM of the {short_name(a.chip.name)} (CC {a.compute_capability}): "
                 f"{a.max_threads_per_sm:,} threads = {a.max_warps_per_sm} warps resident at most",
                 fontsize=10)


def chip_diagram(ax, chip, highlight: int = 0) -> None:
    """Draw the whole GPU: a grid of its ``sm_count`` SMs, the L2 cache they share and the device
    memory, labelled with the spec database's capacities and bandwidth. SM number ``highlight`` is
    filled darker (the one :func:`sm_diagram` zooms into). Taught in: "Inside a GPU SM" (chapter 04).
    """
    a = _anatomy(chip)
    ax.set(xlim=(0, 100), ylim=(0, 100))
    ax.axis("off")
    n = a.sm_count
    # Choose the grid so that the SM boxes come out roughly square in this axes' shape.
    box = ax.get_position()
    fig_w, fig_h = ax.figure.get_size_inches()
    aspect = (0.94 * box.width * fig_w) / (0.5 * box.height * fig_h)
    cols = max(1, int(np.ceil(np.sqrt(n * aspect))))
    rows = int(np.ceil(n / cols))
    cell_w, cell_h = 94 / cols, 50 / rows
    for i in range(n):
        r, c = divmod(i, cols)
        alpha = 0.9 if i == highlight else 0.3
        ax.add_patch(mpl.patches.Rectangle((3 + c * cell_w + 0.3, 92 - (r + 1) * cell_h + 0.3),
                                           cell_w - 0.6, cell_h - 0.6, linewidth=0.4,
                                           facecolor=mpl.colors.to_rgba(PALETTE["blue"], alpha),
                                           edgecolor="#333333"))
    ax.text(50, 95.5, f"{n} SMs: {_kib(a.register_file_total)} of registers and "
            f"{_kib(a.l1_smem_total)} of L1 / shared memory in all", ha="center", va="center", fontsize=9.5)
    _box(ax, 3, 23, 94, 10, _SM_COLORS["l2"], f"L2 cache: {fmt(a.l2_cache, 'B')}, shared by all SMs",
         fontsize=9.5, alpha=0.6)
    _box(ax, 3, 2, 94, 13, _SM_COLORS["memory"],
         f"device memory ({a.memory_type}): {fmt(a.memory_capacity, 'B')} at {fmt(a.memory_bandwidth, 'B/s')}",
         fontsize=9.5, alpha=0.35)
    for y0, y1 in ((33, 41), (15, 23)):
        ax.annotate("", xy=(50, y1), xytext=(50, y0), arrowprops=dict(arrowstyle="<->", color="#333333", lw=1))
    ax.set_title(f"{a.chip.name}: the whole chip (dark: SM {highlight})", fontsize=10)


def occupancy_staircase(ax, compute_capability, block_sizes: Sequence[int] = (128, 256, 512, 1024),
                        shared_mem_per_block: int = 0, mark: tuple[int, int] | None = None) -> None:
    """Theoretical occupancy against registers per thread (1..255), one step line per block size.

    ``mark`` = (threads per block, registers per thread) draws a ring on that configuration.
    Curves from :func:`accelbook.gpu.occupancy_vs_registers`. Taught in: "Inside a GPU SM" (chapter 04).
    """
    from accelbook import gpu

    a = gpu.arch(compute_capability)
    block_sizes = list(block_sizes)
    # Wider lines first, so a curve that coincides with another shows as a stripe inside it.
    for i in reversed(range(len(block_sizes))):
        threads = block_sizes[i]
        curve = gpu.occupancy_vs_registers(a.compute_capability, threads, shared_mem_per_block)
        ax.step(curve.registers, 100 * curve.occupancy, where="post", color=CYCLE[i % len(CYCLE)],
                label=f"{threads} threads per block", lw=1.4 + 1.1 * i, zorder=2 + len(block_sizes) - i)
        if mark is not None and mark[0] == threads:
            k = int(np.searchsorted(curve.registers, mark[1]))
            ax.plot([mark[1]], [100 * curve.occupancy[k]], "o", ms=11, mfc="none", mec="black", mew=2,
                    zorder=10)
    handles, labels = ax.get_legend_handles_labels()
    ax.set(xlim=(0, 256), ylim=(-3, 105), xlabel="registers per thread",
           ylabel=f"occupancy (% of {a.max_warps_per_sm} warps per SM)")
    ax.xaxis.set_major_locator(mticker.MultipleLocator(32))
    smem = f", {_kib(shared_mem_per_block)} shared memory per block" if shared_mem_per_block else ""
    ax.set_title(f"CC {a.compute_capability}, {a.name}{smem}", fontsize=10)
    ax.legend(handles[::-1], labels[::-1], fontsize=8, loc="upper right")


_RESOURCE_LABELS = {"warps": "warp slots", "blocks": "block slots", "registers": "registers",
                    "shared_memory": "shared memory"}


def occupancy_limits(ax, occ) -> None:
    """Horizontal bars: the blocks per SM each resource allows for one :class:`accelbook.gpu.Occupancy`;
    the limiting resources in vermillion, a resource the kernel does not use marked 'no limit'.
    Taught in: "Inside a GPU SM" (chapter 04).
    """
    limits = occ.block_limits
    names = list(limits)
    # No resource can allow more blocks than the block slots, so the axis ends a little past them;
    # a longer bar is cut there and its value printed.
    top = 1.3 * occ.blocks_limit_blocks
    for i, k in enumerate(names):
        v = limits[k]
        if v is None:
            ax.text(0.5, i, "no limit (uses none)", va="center", fontsize=8, color="#555555")
            continue
        color = PALETTE["vermillion"] if k in occ.limiting else PALETTE["sky"]
        ax.barh(i, min(v, top), color=color, height=0.6)
        text = f"{v}" + (" (off scale)" if v > top else "") + (": cannot launch" if v == 0 else "")
        ax.annotate(text, (min(v, top), i), xytext=(3 if v <= top else -3, 0), textcoords="offset points",
                    va="center", ha="left" if v <= top else "right", fontsize=8.5)
    ax.set_yticks(range(len(names)), [_RESOURCE_LABELS[k] for k in names])
    ax.invert_yaxis()
    ax.set_xlim(0, top)
    ax.set_xlabel("blocks per SM this resource allows")
    ax.grid(axis="y", visible=False)


def occupancy_explorer(fig, compute_capability, threads_per_block: int, registers_per_thread: int,
                       shared_mem_per_block: int, shared_mem_carveout: int | None = None):
    """Draw, on ``fig``, the occupancy of one launch configuration: the blocks per SM each
    resource allows (left, :func:`occupancy_limits`) and the occupancy staircase of this block
    size and shared memory with the configuration marked (right). The title states blocks per SM,
    warps, occupancy and the limiting resource, or why the block cannot launch.
    Taught in: "Inside a GPU SM" (chapter 04), in its explorable figure.
    """
    import textwrap

    from accelbook import gpu

    occ = gpu.occupancy(compute_capability, threads_per_block, registers_per_thread,
                        shared_mem_per_block, shared_mem_carveout=shared_mem_carveout)
    fig.clear()
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 3]})
    occupancy_limits(left, occ)
    occupancy_staircase(right, compute_capability, (threads_per_block,), shared_mem_per_block,
                        mark=(threads_per_block, registers_per_thread))
    right.get_legend().remove()
    config = (f"CC {occ.compute_capability}: {threads_per_block} threads × {registers_per_thread} registers, "
              f"{_kib(shared_mem_per_block)} shared memory per block (carveout {_kib(occ.shared_mem_carveout)})")
    if occ.blocks_per_sm == 0:
        result = "cannot launch: " + textwrap.shorten(occ.reason, 300, placeholder=" …")
    else:
        limit = " and ".join(_RESOURCE_LABELS[k] for k in occ.limiting)
        result = (f"{occ.blocks_per_sm} blocks/SM = {occ.warps_per_sm} of {occ.max_warps_per_sm} warps: "
                  f"occupancy {100 * occ.occupancy:.0f} %, limited by {limit}")
    fig.suptitle("\n".join(textwrap.wrap(config, 110) + textwrap.wrap(result, 110)), fontsize=9.5)
    return fig


def latency_hiding_plot(ax, curve, max_warps: int | None = None, label: str | None = None,
                        color: str | None = None) -> None:
    """Issue rate of one warp scheduler against its resident warps, for one
    :class:`accelbook.gpu.IssueRateCurve`: the Little's-law bound ``min(1, n(A+1)/(A·L_alu + L_mem))``
    as a line (labelled ``label``) and the simulated steady-state rate as circles (unlabelled: say
    so in the title). A dotted line marks the knee (:func:`accelbook.gpu.warps_to_saturate`); with
    ``max_warps``, the warp counts one scheduler cannot hold are shaded. Linear axes, so the bound
    is a straight ramp up to the knee. Taught in: "Inside a GPU SM" (chapter 04).
    """
    from accelbook import gpu

    color = color or CYCLE[0]
    label = label or f"{curve.alu_per_mem} arithmetic per load, load latency {curve.mem_latency} cycles"
    w = np.arange(1, int(curve.warps.max()) + 1)
    bound = [gpu.issue_rate_bound(int(n), curve.alu_per_mem, curve.alu_latency, curve.mem_latency) for n in w]
    ax.plot(w, bound, color=color, lw=1.5, label=label)
    ax.plot(curve.warps, curve.simulated, "o", color=color, mfc="white", mew=1.5, label="_nolegend_")
    if curve.knee <= w[-1]:
        ax.axvline(curve.knee, color=color, ls=":", lw=1.2)
        ax.annotate(f"knee: {curve.knee} warps", (curve.knee, 0.03), xytext=(-3, 0), textcoords="offset points",
                    fontsize=8, color=color, rotation=90, va="bottom", ha="right")
    if max_warps is not None and max_warps < w[-1]:
        ax.axvspan(max_warps, w[-1] + 2, color="#bbbbbb", alpha=0.2, lw=0)
        ax.annotate(f"more warps than one scheduler\ncan hold ({max_warps})", (max_warps, 1.12),
                    xytext=(4, 0), textcoords="offset points", fontsize=8, color="#444444", va="top")
    ax.xaxis.set_major_locator(mticker.MultipleLocator(8))
    ax.set(xlim=(0, w[-1] + 2), ylim=(0, 1.15), xlabel="resident warps on one scheduler",
           ylabel="instructions issued per cycle")


def ratio_table(ax, chips: Sequence, dtypes: Sequence[str] = ("tf32", "bf16", "fp16", "fp8", "int8")) -> None:
    """A heat-map table: for each GPU (rows) and dtype (columns), the dense peak of that dtype
    divided by the chip's FP32 peak (:func:`accelbook.gpu.tensor_vs_simt`), printed in each cell;
    '—' where the chip has no such mode. Log colour scale (cividis). Taught in: "Inside a GPU SM"
    (chapter 04).
    """
    from accelbook import gpu

    chips = list(chips)
    if not chips:
        raise ValueError("chips must not be empty")
    values = np.full((len(chips), len(dtypes)), np.nan)
    for i, c in enumerate(chips):
        r = gpu.tensor_vs_simt(c)
        for j, d in enumerate(dtypes):
            if d in r:
                values[i, j] = r[d]
    finite = values[np.isfinite(values)]
    norm = mpl.colors.LogNorm(vmin=max(finite.min(), 1.0), vmax=finite.max())
    cmap = mpl.colormaps["cividis"]
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for i in range(len(chips)):
        for j in range(len(dtypes)):
            v = values[i, j]
            if np.isfinite(v):
                r, g, b, _ = cmap(norm(v))
                dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5
                ax.text(j, i, f"{v:.3g}×", ha="center", va="center", fontsize=8.5,
                        color="white" if dark else "#111111")
            else:
                ax.text(j, i, "—", ha="center", va="center", fontsize=9, color="#777777")
    ax.set_xticks(range(len(dtypes)), [f"{d}\n/ fp32" for d in dtypes])
    ax.set_yticks(range(len(chips)), [f"{short_name(c.name)} ({c.year})" for c in chips], fontsize=8.5)
    ax.tick_params(axis="x", top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)


__all__ += ["chip_diagram", "latency_hiding_plot", "occupancy_explorer", "occupancy_limits",
            "occupancy_staircase", "ratio_table", "sm_diagram"]


# ---------------------------------------------------------------------------------------------
# Chapter "The same matmul on every device" (03): measured rates against the overhead model.
# ---------------------------------------------------------------------------------------------

def measured_rates(ax, records: Sequence, *, color: str, marker: str, label: str) -> None:
    """Median achieved FLOP/s of matmul ``records`` against n, with p10–p90 error bars.

    The bars come from the timing percentiles: the slowest runs (p90 time) give the lowest rate.
    Taught in: "The same matmul on every device".
    """
    rate = np.array([r.flop_per_s for r in records])
    lo = np.array([r.flops / r.timing.p90 for r in records])
    hi = np.array([r.flops / r.timing.p10 for r in records])
    ax.errorbar([r.n for r in records], rate, yerr=[rate - lo, hi - rate], color=color, marker=marker,
                capsize=3, label=label)


def matmul_vs_model(ax, records: Sequence, fit, n: int, *, device_label: str, chip_name: str,
                    pred=None, utilization: float = 1.0, color: str = CYCLE[0], marker: str = MARKERS[0],
                    n_axis=None) -> None:
    """This device's measured matmul rates, their fitted overhead model and a chip's predicted curve.

    ``records``: one dtype/precision sweep (each with ``n``, ``flops``, ``flop_per_s``, ``timing``);
    ``fit`` and ``pred``: :class:`accelbook.measure.OverheadModel` (``pred`` None when the chip's
    spec sheet has no peak for that dtype and precision). ``n`` rings the measured point of that
    size. Taught in: "The same matmul on every device", in its explorable figure.
    """
    here = next((r for r in records if r.n == n), None)
    if here is None:
        raise ValueError(f"n={n!r} is not one of the measured sizes {[r.n for r in records]}")
    n_axis = np.geomspace(16, 32768, 200) if n_axis is None else np.asarray(n_axis, dtype=float)
    dtype, precision = here.dtype, here.precision
    measured_rates(ax, records, color=color, marker=marker, label=f"{dtype} ({precision}), measured on {device_label}")
    ax.plot(n_axis, fit.rate(2 * n_axis**3), color=color, ls=":", label="its fitted model")
    ax.plot([n], [here.flop_per_s], "o", ms=14, mfc="none", mec="black", mew=2, label=f"n = {n}")
    title = f"{device_label}, n = {n}: {fmt(here.timing.median, 's')} measured\n"
    if pred is None:
        title += f"{chip_name}: no spec-sheet peak for {dtype} at precision '{precision}'"
    else:
        ax.plot(n_axis, pred.rate(2 * n_axis**3), "k--", label=f"{chip_name}: MODEL, {100 * utilization:.0f} % of peak")
        ax.axhline(pred.peak / utilization, color="black", lw=0.8, label=f"{chip_name}: spec-sheet peak")
        title += f"{chip_name}, predicted by the model: {fmt(float(pred.seconds(2 * n**3)), 's')}"
    log_axes(ax, y_unit="FLOP/s")
    ax.set(xlabel="matrix size n", ylabel="rate (FLOP/s)", title=title)
    ax.legend(fontsize=7.5, loc="lower right")


__all__ += ["matmul_vs_model", "measured_rates"]
