"""Figures of chapter 05: the predicted time of a chain of elementwise operations, run eagerly (one
call per operation) or fused into one jitted call, against the number of operations and the array
size, on this device or a chip from the spec database.

The times come from :func:`accelbook.models.overhead.chain_times` and the measurements drawn from
:mod:`accelbook.measure`; this module only draws them.
Taught in: "Overheads: launch, sync and Python" (chapter 05), its explorable figure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from accelbook import explore
from accelbook.models import overhead
from accelbook.plots.style import CYCLE, PALETTE, log_axes, si_formatter
from accelbook.plots.systolic import by_word
from accelbook.units import fmt


def _elements(n: float) -> str:
    """5.58e6 -> '5.58 M elements'."""
    return fmt(n, "").strip() + " elements"


REGIME_COLORS = {"overhead": PALETTE["vermillion"], "bandwidth": PALETTE["blue"], "compute": PALETTE["green"]}
"""Colour of each regime of :data:`accelbook.models.overhead.REGIMES` in the chapter's figures."""


def draw_regimes(ax, families: Mapping, t0, peak: float, bandwidth: float, bytes_per_element: float, N) -> None:
    """Model time ``t0 + max(F/P, Q/W)`` of each family of calls against the array size ``N``, each
    stretch coloured by the term that sets it (:data:`REGIME_COLORS`), with ``t0`` dotted.

    ``families``: ``{name: (linestyle, cost)}`` where ``cost(N, b)`` returns ``(F, Q)`` arrays;
    ``t0``: seconds, or ``{name: seconds}`` when the families have different fixed costs.
    Taught in: "Overheads: launch, sync and Python" (chapter 05), See it.
    """
    N = np.asarray(N, dtype=float)
    for name, (ls, cost) in families.items():
        t0_f = t0[name] if isinstance(t0, Mapping) else t0
        f, q = cost(N, bytes_per_element)
        t = overhead.call_time(f, q, t0_f, peak, bandwidth)
        for reg, lo, hi in overhead.spans(N, overhead.regime(f, q, t0_f, peak, bandwidth)):
            keep = (N >= lo) & (N <= hi)
            ax.plot(N[keep], t[keep], ls, color=REGIME_COLORS[reg], lw=2.2)
        ax.axhline(t0_f, color="grey", lw=0.8, ls=":")
    log_axes(ax, y_unit="s")
    ax.set(xlabel="elements per array N (matmul: n × n with n = √N)", ylabel="time per call (s)")


def regime_legend(ax, families: Mapping, loc: str = "upper left"):
    """Legend of :func:`draw_regimes`: the regime colours, the families' line styles, and any
    labelled markers already drawn on ``ax``. Returns the legend. Taught in: "Overheads" (05)."""
    marks, _ = ax.get_legend_handles_labels()
    patches = [mpl.patches.Patch(color=c, label=f"{r}-bound") for r, c in REGIME_COLORS.items()]
    lines = [mpl.lines.Line2D([], [], color="k", ls=ls, label=name) for name, (ls, _f) in families.items()]
    return ax.legend(handles=patches + lines + marks, fontsize=9, loc=loc)


TRACE_COLORS = {"dispatch": PALETTE["blue"], "kernel": PALETTE["vermillion"]}
"""Colour of each kind of trace event in :func:`trace_timeline`."""


def trace_timeline(trace, *, width: float = 7.0, panel_height: float = 1.55) -> Figure:
    """A profiler trace drawn as one timeline panel per annotated region, stacked: a row per lane
    (thread or stream) that has events in the region, a bar per event (blue: a call being dispatched
    on the Python thread, a jitted function or one eager operation, which JAX also runs as a jitted
    call; vermillion: an XLA kernel executing), time from the start of the region. The panel's
    title gives the region's name and the fraction of its time during which some kernel ran.
    ``trace`` is an :class:`accelbook.measure.overhead.Trace` (any object with ``regions()``,
    ``within(region)`` and ``busy_fraction(region)``).
    Taught in: "Overheads: launch, sync and Python" (chapter 05), reading a trace.
    """
    regions = trace.regions()
    if not regions:
        raise ValueError("trace has no annotated regions to draw")
    fig = Figure(figsize=(width, panel_height * len(regions) + 0.6), layout="constrained")
    axes = fig.subplots(len(regions), 1, squeeze=False)[:, 0]
    for ax, (name, (lo, hi)) in zip(axes, regions.items()):
        events = trace.within(name)
        lanes = list(dict.fromkeys(e.lane for e in sorted(events, key=lambda e: (e.kind != "dispatch", e.lane))))
        scale, unit = (1e3, "ms") if hi - lo >= 2e-3 else (1e6, "µs")
        for row, lane in enumerate(lanes):
            for kind in ("dispatch", "kernel"):
                bars = [((e.start - lo) * scale, max(e.duration * scale, (hi - lo) * scale / 800))
                        for e in events if e.lane == lane and e.kind == kind]
                if bars:
                    ax.broken_barh(bars, (row - 0.35 + (0.1 if kind == "kernel" else 0), 0.7 - (0.2 if kind == "kernel" else 0)),
                                   color=TRACE_COLORS[kind])
        ax.set_yticks(range(len(lanes)), [lane.replace("host: ", "") for lane in lanes], fontsize=9.5)
        ax.set_ylim(len(lanes) - 0.5, -0.5)
        ax.set_xlim(0, (hi - lo) * scale)
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="x", labelsize=9.5)
        busy = trace.busy_fraction(name)
        ax.set_title(f"{name}: a kernel runs {100 * busy:.1f} % of the time" if busy < 0.1 else
                     f"{name}: a kernel runs {100 * busy:.0f} % of the time",
                     fontsize=10.5, loc="left")
        ax.set_xlabel(f"time from the start of the region ({unit})", fontsize=9.5)
    handles = [mpl.patches.Patch(color=c, label=label) for c, label in
               ((TRACE_COLORS["dispatch"], "call dispatched on the Python thread (jitted or eager)"),
                (TRACE_COLORS["kernel"], "XLA kernel running"))]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9.5)
    return fig


class ChainView(explore.View):
    """Model time of a chain of ``n`` elementwise operations on arrays of ``N`` elements, eager and
    fused, for the explorable ``overhead-chain``; ``update(n, N, chip)``.

    Top panel ("left" in the code): time against the number of operations at this ``N``; bottom panel
    ("right"): against the array size at this ``n``; a dot on each curve marks the choice. ``chips`` maps a key to
    ``(name, memory bandwidth in bytes/s)``; ``t_op`` is the cost of one eager operation and ``t0``
    that of one jitted call (seconds), both measured on this device and used for every chip.
    ``ops`` and ``sizes`` are the values the controls offer: the axes span them. ``measured``
    (``{label: (counts, seconds)}``) are chains timed on this device, drawn as crosses on the left
    panel when ``(chip, N)`` is ``measured_at``. The right panel's dotted line is the size at which
    one eager operation's memory time, ``2bN/W``, equals ``t_op``.

    The axes are fixed: the time axis, whole decades, holds every curve for every chip and setting
    and every measurement, so frames compare at a glance and the picture behind the data never
    changes. Curves, dots, crosses, the dotted line, the legends and the title are dynamic.
    Taught in: "Overheads: launch, sync and Python" (chapter 05), its explorable figure.
    """

    def __init__(self, chips: Mapping[str, tuple[str, float]], *, t_op: float, t0: float,
                 ops: Sequence[int], sizes: Sequence[float],
                 measured: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
                 measured_at: tuple[str, float] | None = None, bytes_per_element: float = 4):
        self.chips, self.t_op, self.t0, self.b = dict(chips), t_op, t0, bytes_per_element
        self.ops, self.sizes = list(ops), list(sizes)
        self.measured, self.measured_at = dict(measured or {}), measured_at
        self.dense_n = np.unique(np.geomspace(1, self.ops[-1], 60).astype(int))
        self.dense_N = np.geomspace(self.sizes[0], self.sizes[-1], 60)
        # one time axis, whole decades, for every chip and setting
        t_lo = min([t_op, t0] + [t for _c, ts in self.measured.values() for t in ts])
        t_hi = self._times(self.ops[-1], self.sizes[-1], min(w for _n, w in self.chips.values()))[0]
        t_range = (10 ** np.floor(np.log10(0.8 * t_lo)), 10 ** np.ceil(np.log10(1.2 * t_hi)))

        self.figure = fig = Figure(figsize=(7.0, 7.6))  # stacked: legible at the text column's width
        # left: room for tick labels as wide as "100 µs" and the y label, whatever range the data set
        fig.subplots_adjust(left=0.145, right=0.97, bottom=0.075, top=0.9, hspace=0.32)
        self.left, self.right = fig.subplots(2, 1)
        self.curves, self.dots = {}, {}  # (panel, "eager" | "fused") -> Line2D
        for ax, xs in ((self.left, self.dense_n), (self.right, self.dense_N)):
            for i, label in enumerate(("eager", "fused")):
                (self.curves[ax, label],) = ax.plot(xs, np.ones(len(xs)), color=CYCLE[i], label=f"{label}, model")
                (self.dots[ax, label],) = ax.plot([xs[0]], [1.0], "o", color=CYCLE[i], ms=8)
            log_axes(ax, y_unit="s")
            ax.xaxis.set_major_formatter(si_formatter(""))
            ax.minorticks_off()  # quick to draw
            ax.set_xlim(xs[0] / 1.5, xs[-1] * 1.5)
        self.crosses = [self.left.plot(counts, seconds, "X", color=CYCLE[i % len(CYCLE)], ms=10, mec="black",
                                       mew=0.8, ls="none", label=f"measured, {way}")[0]
                        for i, (way, (counts, seconds)) in enumerate(self.measured.items())]
        self.crossover = self.right.axvline(self.sizes[0], color="grey", ls=":", lw=1.2)
        self.left.set(xlabel="operations in the chain, n", ylabel="predicted time (s)", ylim=t_range)
        self.right.set(xlabel="elements per array, N", ylabel="predicted time (s)", ylim=t_range)
        self.title = fig.suptitle(" ", fontsize=11)
        self.stamps = explore.TextStamps()  # the legends are redrawn on every frame: keep their pictures
        by_word(self.title)  # words at whole pixels: the renderer's TextStamps keeps each word once
        self.legends, self._legend_keys, self._kept = {}, {}, {}  # _kept: (axes, entries) -> Legend

    def _times(self, n, N, w):
        return overhead.chain_times(n, N, t_op=self.t_op, t0=self.t0, bandwidth=w, bytes_per_element=self.b)

    def _legend(self, ax, handles) -> None:
        """Show ``ax``'s legend for ``handles`` (none when empty). Each distinct legend is built once
        and kept with its picture (frozen in :class:`~accelbook.explore.TextStamps`): a legend seen
        before is put back, not built and rendered again."""
        key = tuple((id(h), h.get_label()) for h in handles)
        if self._legend_keys.get(ax) == key:
            return
        if key and (ax, key) not in self._kept:
            ax.legend_ = None
            self._kept[ax, key] = self.stamps.attach(ax.legend(handles=handles, fontsize=9.5, loc="upper left"),
                                                     frozen=True)
        ax.legend_ = self._kept[ax, key] if key else None  # what ax.legend() sets; the axes draw it
        self.legends[ax], self._legend_keys[ax] = ax.legend_, key

    def update(self, n, N, chip):
        name, w = self.chips[chip]
        now = dict(zip(("eager", "fused"), self._times(n, N, w)))
        for ax, xs, curves, x_now in ((self.left, self.dense_n, self._times(self.dense_n, N, w), n),
                                      (self.right, self.dense_N, self._times(n, self.dense_N, w), N)):
            for label, t in zip(("eager", "fused"), curves):
                self.curves[ax, label].set_ydata(t)
                self.dots[ax, label].set_data([x_now], [now[label]])
        show_measured = (chip, N) == self.measured_at
        for line in self.crosses:
            line.set_visible(show_measured)
        n_half = overhead.overhead_crossover_bytes(self.t_op, w) / (2 * self.b)  # 2bN/W = t_op
        inside = self.sizes[0] <= n_half <= self.sizes[-1]
        self.crossover.set_visible(inside)
        self.crossover.set_xdata([n_half, n_half])
        self.crossover.set_label(f"2bN/W = t_op: N = {_elements(n_half)}")
        model = [self.curves[self.left, "eager"], self.curves[self.left, "fused"]]
        self._legend(self.left, model + (self.crosses if show_measured else []))
        self._legend(self.right, model + [self.crossover] if inside else [])
        e, f = now["eager"], now["fused"]
        self.title.set_text(f"{name}\nn = {n}, N = {N:,}: eager {fmt(e, 's')}, fused {fmt(f, 's')} "
                            f"({f'{e / f:.1f}× less' if e >= f else f'{f / e:.1f}× more'})")
        self.dynamic = ([self.curves[self.left, "eager"], self.dots[self.left, "eager"],
                         self.curves[self.left, "fused"], self.dots[self.left, "fused"], *self.crosses]
                        + [a for a in (self.legends[self.left],) if a is not None]
                        + [self.curves[self.right, "eager"], self.dots[self.right, "eager"],
                           self.curves[self.right, "fused"], self.dots[self.right, "fused"], self.crossover]
                        + [a for a in (self.legends[self.right],) if a is not None] + [self.title])
        memory = overhead.chain_bytes(1, int(N), self.b, fused=True) / w
        return (f"Each eager operation pays {fmt(self.t_op, 's')} of overhead and {fmt(memory, 's')} of memory "
                f"time: it is {'overhead' if self.t_op >= memory else 'bandwidth'}-bound.")


__all__ = ["ChainView", "REGIME_COLORS", "TRACE_COLORS", "draw_regimes", "regime_legend", "trace_timeline"]
