"""One house style for every figure, and the figure helpers the chapters share.

Style: the Okabe–Ito colour-blind-safe palette; units in every axis label; log axes where values
span decades; an opaque light background with dark text, so a figure stays legible when the page
around it switches to the dark theme.

Taught in: every chapter (the roofline figure: "The roofline"; the matmul figure: "The same
matmul on every device").
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from accelbook import roofline
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
    """Vertical dotted lines at the intensities (FLOP/byte) of named operations, labelled at the top.

    ``items``: (label, intensity) pairs, e.g. the closed-form intensities of an elementwise add,
    a matrix-vector product and a large matmul. Taught in: "The roofline" (chapter 02).
    """
    for label, intensity in items:
        ax.axvline(intensity, color=color, linestyle=":", linewidth=1.2, zorder=1)
        ax.annotate(label, (intensity, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -4),
                    textcoords="offset points", rotation=90, ha="left", va="top", fontsize=8.5,
                    color=color)


def labelled_points(ax, points: Iterable[tuple[str, float, float]],
                    offsets: dict[str, tuple[float, float]] | None = None) -> None:
    """Measured points (label, intensity FLOP/byte, achieved FLOP/s) as black open circles,
    each with its label written beside it (no legend entry).

    ``offsets`` maps a label to a text offset in points, to move a label off a neighbour.
    Taught in: "The roofline" (chapter 02).
    """
    offsets = offsets or {}
    for label, intensity, achieved in points:
        ax.plot([intensity], [achieved], linestyle="none", marker="o", color="black",
                markerfacecolor="white", markeredgewidth=1.5, zorder=4)
        ax.annotate(label, (intensity, achieved), xytext=offsets.get(label, (5, 3)),
                    textcoords="offset points", fontsize=8, color="#111111", zorder=5)


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
    ax.set_yticks(y, [f"{r.chip.name} ({r.chip.year})" + ("" if r.dtype == main_dtype else f", {r.dtype}")
                      for r in rows], fontsize=8.5)
    ax.set_xlabel(f"ridge point, {main_dtype} (FLOP per byte)")
    ax.grid(axis="y", visible=False)
    handles = [mpl.patches.Patch(color=c, label=v) for v, c in colors.items()]
    if any(r.dtype != main_dtype for r in rows):
        handles.append(mpl.patches.Patch(facecolor="white", edgecolor="#555555", hatch="///",
                                         label=f"no {main_dtype}: 16-bit peak of another dtype"))
    ax.legend(handles=handles, fontsize=8, loc="lower right")


def balance_scatter(ax, rows: Sequence["roofline.RidgeRow"], ridges: Sequence[float] = (50, 100, 200, 400, 800)) -> None:
    """Peak FLOP/s against memory bandwidth for each row, log-log, with dashed diagonals of
    constant ridge point; each vendor's chips are joined in order of year.

    A chip above a diagonal needs more FLOP per byte than that diagonal's value to be
    compute-bound. Taught in: "The roofline" (chapter 02).
    """
    colors = vendor_colors(r.chip.vendor for r in rows)
    bws = np.array([r.bandwidth for r in rows])
    x = np.geomspace(bws.min() / 1.6, bws.max() * 1.6, 50)
    for ridge in ridges:
        ax.plot(x, ridge * x, color="#999999", linestyle="--", linewidth=0.8, zorder=1)
        ax.annotate(f"{ridge:g} FLOP/B", (x[-1], ridge * x[-1]), xytext=(2, 0), textcoords="offset points",
                    fontsize=7.5, color="#777777", va="center")
    for vendor, color in colors.items():
        mine = sorted((r for r in rows if r.chip.vendor == vendor), key=lambda r: (r.chip.year, r.peak_flops))
        ax.plot([r.bandwidth for r in mine], [r.peak_flops for r in mine], color=color, linewidth=1,
                alpha=0.5, marker="o", markersize=5, label=vendor)
        for r in mine:
            ax.annotate(short_name(r.chip.name), (r.bandwidth, r.peak_flops), xytext=(4, -3),
                        textcoords="offset points", fontsize=7.5, color=color)
    log_axes(ax, x_unit="B/s", y_unit="FLOP/s")
    ax.set_xlabel("memory bandwidth (bytes/s)")
    ax.set_ylabel("dense peak (FLOP/s)")
    ax.legend(fontsize=8, loc="upper left")


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
    from accelbook.measure import _itemsize

    fig.clear()
    left, right = fig.subplots(1, 2)
    if dtype not in chip.peak_flops or not chip.memory_bandwidth:
        have = ", ".join(d for d in chip.peak_flops) or "none"
        for ax in (left, right):
            ax.axis("off")
        left.text(0.0, 0.5, f"{chip.name} has no {dtype} peak in the spec database (it has: {have}).",
                  transform=left.transAxes, fontsize=11)
        return fig
    peak, bw, b = chip.peak_flops[dtype], chip.memory_bandwidth, _itemsize(dtype)
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
    left.legend(fontsize=8.5, loc="lower right")
    times = np.array([p.time for p in preds])
    right.plot(batches, times, color=PALETTE["blue"], label="roofline time")
    right.plot(batches, [p.memory_time for p in preds], ":", color=PALETTE["orange"], label="bytes / bandwidth")
    right.plot(batches, [p.compute_time for p in preds], "--", color=PALETTE["green"], label="FLOP / peak")
    right.plot([batch], [now.time], "o", color=PALETTE["vermillion"], markersize=9, zorder=4)
    m_star = roofline.min_batch_for_compute_bound(width, width, peak, bw, b)
    if m_star is not None and m_star <= batches[-1]:
        right.axvline(m_star, color="#555555", linewidth=1)
        right.annotate(f"compute-bound from\nbatch {m_star}", (m_star, 0.97), xycoords=("data", "axes fraction"),
                       xytext=(-4, 0), textcoords="offset points", ha="right", va="top", fontsize=8.5)
    log_axes(right, y_unit="s")
    right.set_ylim(times.min() / 3, times.max() * 3)
    right.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _p: f"{v:g}"))
    right.set_xlabel(f"batch (rows multiplying a {width} × {width} weight)")
    right.set_ylabel("predicted time per call (s)")
    right.legend(fontsize=8.5, loc="lower right")
    fig.suptitle(f"{chip.name}, {dtype}, batch {batch}: {fmt(now.time, 's')}, {now.bound}-bound, "
                 f"{now.fraction_of_peak:.0%} of peak", fontsize=11)
    return fig


__all__ += ["balance_scatter", "intensity_markers", "labelled_points", "ridge_bars", "roofline_explorer",
            "short_name", "vendor_colors"]
