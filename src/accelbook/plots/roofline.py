"""Figures of the roofline model: rooflines with measured points, intensity markers, the chip map
(peak against bandwidth), ridge-point bars and the chapter's explorable layer-on-a-chip figure.

Every number drawn comes from :mod:`accelbook.models.roofline` and the spec database.
Taught in: "The roofline" (chapter 02) and "Introduction" (the chip map).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np

from accelbook import specs
from accelbook.models import roofline
from accelbook.plots.style import (CYCLE, MARKERS, PALETTE, chip_label, log_axes, place_labels, short_name,
                                   vendor_colors)
from accelbook.units import fmt


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


def ridge_bars(ax, rows: Sequence["roofline.RidgeRow"], main_dtype: str = "bf16") -> None:
    """Horizontal bars of ridge points (FLOP/byte), one per :class:`accelbook.models.roofline.RidgeRow`,
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


def roofline_explorer(fig, chip, dtype: str, batch: int, width: int = 4096,
                      batches: Sequence[int] = tuple(2**i for i in range(15))):
    """Draw, on ``fig``, where one layer ``(batch, width) @ (width, width)`` lands on ``chip``.

    Left: the chip's roofline for ``dtype`` with every batch in ``batches`` on it (grey) and
    ``batch`` highlighted. Right: predicted time per call against batch, with the memory and
    compute lower bounds and the smallest compute-bound batch. All numbers come from
    :mod:`accelbook.models.roofline` and the spec database. Taught in: "The roofline" (chapter 02),
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


__all__ = ["chip_map", "intensity_markers", "ridge_bars", "ridge_lines", "roofline_explorer",
           "roofline_plot"]
