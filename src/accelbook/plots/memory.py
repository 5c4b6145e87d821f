"""Figures of the memory hierarchy: a chip's levels (capacity against bandwidth, with latency), the
working-set sweep measured on this device, the cache simulator's traces, and the explorable view
of tiling (cache capacity and tile size → bytes moved, intensity and roofline position).

Taught in: "The memory hierarchy" (chapter 07).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from accelbook import checks, explore
from accelbook.models import memory
from accelbook.plots.style import CYCLE, MARKERS, PALETTE, _axes, _figure, log_axes, si_formatter


def _levels(name: str, levels) -> list:
    return checks.sequence(name, levels, of=lambda n, lv: checks.instance(n, lv, memory.Level))
from accelbook.units import fmt


def _short(level: memory.Level) -> str:
    return {"smem_l1": "SMEM / L1", "l2": "L2", "hbm": "HBM", "registers": "registers",
            "vregs": "vector regs", "vmem": "VMEM"}.get(level.key, level.name.replace("host over ", "host: "))


_STYLE_ORDER = ("registers", "smem_l1", "l2", "hbm", "host", "vregs", "vmem")  # one colour and marker per level


def _style(i: int, key: str) -> tuple[str, str]:
    j = _STYLE_ORDER.index(key) if key in _STYLE_ORDER else i
    j = {"vregs": 0, "vmem": 1}.get(key, j)  # a TPU's registers and VMEM look like a GPU's registers and SMEM
    return CYCLE[j % len(CYCLE)], MARKERS[j % len(MARKERS)]


def hierarchy(ax, chip_name: str, levels: Sequence[memory.Level], *, xlim=None, ylim=None) -> None:
    """One chip's levels on log-log axes: capacity (x) against bandwidth (y), one marker per level
    labelled with its name and measured latency. A level with no published bandwidth sits on the
    bottom edge as an open marker; the host link (its capacity is the host's memory) on the right
    edge. Datasheet bandwidths are filled markers, measured ones crosses."""
    _axes("ax", ax)
    checks.text("chip_name", chip_name)
    levels = _levels("levels", levels)
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if lim is not None:
            pair = checks.sequence(name, lim, of=lambda n, v: checks.real(n, v, positive=True))
            if len(pair) != 2 or not pair[0] < pair[1]:
                raise ValueError(f"{name}={checks.show(lim)} must be None or a (low, high) pair, 0 < low < high")
    caps = [lv.capacity for lv in levels if lv.capacity]
    bws = [b for lv in levels for b in (lv.bandwidth, lv.measured_bandwidth) if b]
    xlim = xlim or (min(caps) / 8, max(caps) * 64)
    ylim = ylim or (min(bws) / 8, max(bws) * 4)
    log_axes(ax, "B", "B/s")
    ax.set(xlim=xlim, ylim=ylim, xlabel="capacity (whole chip)", ylabel="bandwidth")
    ax.minorticks_off()
    for i, lv in enumerate(levels):
        if not lv.capacity and lv.key != "host":
            continue  # neither capacity nor bandwidth published: nothing to place
        x = lv.capacity if lv.capacity else xlim[1] / 1.6
        color, marker = _style(i, lv.key)
        bw = lv.bandwidth or lv.measured_bandwidth
        y = bw if bw else ylim[0] * 1.4
        if lv.bandwidth:
            ax.plot([x], [lv.bandwidth], marker, color=color, ms=9)
        if lv.measured_bandwidth:
            ax.plot([x], [lv.measured_bandwidth], "X", color=color, ms=10, mec="black", mew=0.6)
        if not bw:
            ax.plot([x], [y], marker, color=color, ms=9, mfc="white", mew=1.5)
        text = _short(lv) + (" (host memory →)" if lv.key == "host" else "")
        if lv.latency_cycles:
            text += f"\n{lv.latency_cycles:.0f} cycles"
            if lv.latency_s:
                text += f" ≈ {fmt(lv.latency_s, 's')}"
        ha = "right" if lv.key == "host" else "left"
        ax.annotate(text, (x, y), xytext=(-8 if ha == "right" else 8, 4), textcoords="offset points",
                    fontsize=9, ha=ha, va="bottom", color="#111111")
    ax.set_title(chip_name, fontsize=11)


def hierarchy_figure(chips: Mapping[str, Sequence[memory.Level]], fig=None) -> Figure:
    """:func:`hierarchy` for each chip (name → levels), stacked, on common axes; drawn on ``fig``
    (say a pyplot figure, to show it inline) or on a new figure."""
    if not isinstance(chips, Mapping) or not chips:
        raise ValueError(f"chips={checks.show(chips)} must be a non-empty mapping of chip name -> levels")
    chips = {name: _levels(f"chips[{name!r}]", levels) for name, levels in chips.items()}
    if fig is not None:
        _figure("fig", fig)
    caps = [lv.capacity for lvs in chips.values() for lv in lvs if lv.capacity]
    bws = [b for lvs in chips.values() for lv in lvs for b in (lv.bandwidth, lv.measured_bandwidth) if b]
    xlim, ylim = (min(caps) / 8, max(caps) * 64), (min(bws) / 10, max(bws) * 4)
    fig = fig if fig is not None else Figure(figsize=(7.0, 3.6 * len(chips)), layout="constrained")
    for ax, (name, levels) in zip(np.atleast_1d(fig.subplots(len(chips), 1)), chips.items()):
        hierarchy(ax, name, levels, xlim=xlim, ylim=ylim)
    return fig


def sweep(ax, points, caches: Sequence[tuple[str, float]] = (), transfers=(), label: str = "") -> None:
    """Measured bandwidth against working-set size (median line, p10–p90 band), the cache
    capacities as vertical lines, and host ↔ device copies (bandwidth against copy size) on the
    same axes; a direction whose "copy" returned a view of the same memory (a CPU backend) is not
    drawn: it moved nothing."""
    x = np.array([p.nbytes for p in points], float)
    y = np.array([p.bytes_per_s for p in points])
    lo, hi = np.array([p.p10_p90 for p in points]).T
    log_axes(ax, "B", "B/s")
    ax.fill_between(x, lo, hi, color=CYCLE[0], alpha=0.2, lw=0)
    ax.plot(x, y, "o-", color=CYCLE[0], ms=4, label=f"scale y ← a·y + b, {label}".rstrip(", "))
    if transfers:
        tx = np.array([t.nbytes for t in transfers], float)
        if all(t.to_device_copies for t in transfers):
            ax.plot(tx, [t.to_device_bytes_per_s for t in transfers], "s--", color=CYCLE[1], ms=5,
                    label="host → device copy (jax.device_put)")
        if all(t.to_host_copies for t in transfers):
            ax.plot(tx, [t.to_host_bytes_per_s for t in transfers], "^--", color=CYCLE[3], ms=5,
                    label="device → host copy (np.asarray)")
    ys = [v for v in np.concatenate([lo, hi]) if v > 0] + [l.get_ydata() for l in ax.lines[1:]]
    flat = np.concatenate([np.ravel(v) for v in ys]).astype(float)
    ax.set_ylim(10 ** np.floor(np.log10(flat.min())), 10 ** np.ceil(np.log10(flat.max())))
    top = ax.get_xaxis_transform()  # x in data, y in axes coordinates: labels just above the frame
    for name, size in caches:
        ax.axvline(size, color="grey", ls=":", lw=1.2)
        ax.text(size, 1.01, name, transform=top, fontsize=9, color="#333333", ha="center", va="bottom")
    copied = len(ax.lines) > 1 + len(caches)  # a copy curve was drawn
    ax.set(xlabel="working set / copy size" if copied else "working set",
           ylabel="bandwidth (median; band: p10–p90)")
    ax.minorticks_off()
    ax.legend(fontsize=9, loc="lower left")


def trace_panels(fig, runs: Sequence[tuple[str, memory.Trace, np.ndarray]], n: int, first: int) -> None:
    """Each run (label, trace, hit mask) as address against access number for the first ``first``
    accesses: misses orange (vermillion), hits grey; the bands are A, B and C."""
    axes = np.atleast_1d(fig.subplots(len(runs), 1, sharex=True))
    for ax, (label, trace, hit) in zip(axes, runs):
        t = np.arange(min(first, len(trace)))
        a, h = trace.addresses[t], hit[t]
        ax.scatter(t[h], a[h], s=5, color="#888888", lw=0, label="hit", rasterized=True)
        ax.scatter(t[~h], a[~h], s=9, color=PALETTE["vermillion"], lw=0, label="miss", rasterized=True)
        ax.set_yticks([n * n / 2, 1.5 * n * n, 2.5 * n * n], ["A", "B", "C"])
        ax.set_ylim(0, 3 * n * n)
        ax.grid(False)
        ax.set_title(f"{label}: {np.count_nonzero(~h[: len(t)])} misses in the first {len(t)} accesses",
                     fontsize=10)
    for ax in axes:
        ax.set_ylabel("address")
    axes[0].legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=3)
    axes[-1].set_xlabel("access number")


class TilingView(explore.View):
    """Words moved from the next level against cache capacity, for naive, reordered and tiled loop
    orders of an ``n × n`` matmul in a fully associative LRU cache (the cache simulator), next to the
    I/O lower bound; below, each order's intensity and where it sits on a roofline. ``update(tile, capacity)``.

    ``curves`` maps a label to words moved at each capacity of ``capacities`` (lines); the tiled
    orders are keyed ``("tiled", T)``. ``peak`` and ``bandwidth`` (FLOP/s, bytes/s) draw the roofline
    of the level below the cache. The axes are fixed; the tiled curve, the capacity line, the
    markers and the status text are dynamic. Taught in: "The memory hierarchy" (chapter 07).
    """

    def __init__(self, curves: Mapping, capacities: Sequence[int], *, n: int, line_words: int,
                 bytes_per_word: int = 4, peak: float, bandwidth: float, roof_label: str = ""):
        self.curves, self.caps = dict(curves), np.array(capacities, float)
        self.n, self.lw, self.b, self.peak, self.bw = n, line_words, bytes_per_word, peak, bandwidth
        self.flops = 2.0 * n**3
        kib = self.caps * line_words * bytes_per_word  # capacity in bytes
        self.kib = kib
        bound = np.array([memory.io_lower_bound(n, n, n, c * line_words) for c in self.caps])
        allq = np.concatenate([np.asarray(v, float) for v in self.curves.values()] + [bound])
        self.figure = fig = Figure(figsize=(7.0, 7.4))
        fig.subplots_adjust(left=0.17, right=0.95, bottom=0.08, top=0.89, hspace=0.36)
        self.ax, self.roof = fig.subplots(2, 1)
        ax = self.ax
        log_axes(ax)
        ax.minorticks_off()
        ax.set(xlim=(kib[0] / 1.3, kib[-1] * 1.3), ylim=(allq.min() / 1.6, allq.max() * 1.6),
               xlabel="cache capacity", ylabel=f"words moved ({bytes_per_word}-byte words)")
        ax.xaxis.set_major_formatter(si_formatter("B"))
        ax.plot(kib, self.curves["ijk"], "o-", color=CYCLE[3], ms=4, label="naive (ijk)")
        ax.plot(kib, self.curves["ikj"], "s-", color=CYCLE[1], ms=4, label="reordered (ikj)")
        ax.plot(kib, bound, "k--", lw=1.4, label="I/O lower bound")
        first_tile = next(k for k in self.curves if isinstance(k, tuple))
        (self.tiled,) = ax.plot(kib, self.curves[first_tile], "D-", color=CYCLE[2], ms=4, label="tiled (tile below)")
        ax.legend(fontsize=9, loc="lower center", bbox_to_anchor=(0.5, 1.01), ncol=2)
        self.vline = ax.axvline(kib[0], color="grey", ls=":", lw=1.4)
        # decreasing sizes, so that a marker hidden under an equal one still shows as a ring
        self.dots = [ax.plot([kib[0]], [1.0], "o", color=c, ms=ms, mec="black", mew=0.8)[0]
                     for c, ms in ((CYCLE[3], 13), (CYCLE[1], 10), (CYCLE[2], 7))]
        self.status = ax.text(0.98, 0.96, " ", transform=ax.transAxes, ha="right", va="top", fontsize=9.5)
        # the roofline of the level below
        rx = np.geomspace(self.flops / (bytes_per_word * allq.max()) / 2, self.flops / (bytes_per_word * allq.min()) * 2, 100)
        self.roof.plot(rx, np.minimum(peak, rx * bandwidth), color="#333333", lw=1.8, label=roof_label or "roofline")
        log_axes(self.roof, None, "FLOP/s")
        self.roof.minorticks_off()
        self.roof.set(xlim=(rx[0], rx[-1]), ylim=(min(rx[0] * bandwidth, peak) / 2, peak * 2.5),
                      xlabel="arithmetic intensity from the cache's next level (FLOP/byte)")
        self.roof.set_title("attainable FLOP/s on the roofline of the level below", fontsize=10)
        self.roof.legend(fontsize=9, loc="lower right")
        self.roof_dots = [self.roof.plot([rx[0]], [peak], MARKERS[i], color=c, ms=ms, mec="black", mew=0.8)[0]
                          for i, (c, ms) in enumerate(((CYCLE[3], 14), (CYCLE[1], 10), (CYCLE[2], 8)))]
        self.dynamic = [self.tiled, self.vline, *self.dots, self.status, *self.roof_dots]

    def values(self, tile: int, capacity: int) -> dict[str, float]:
        """Words moved by each order at this capacity (lines): keys naive, reordered, tiled."""
        i = int(np.searchsorted(self.caps, capacity))
        return {"naive": float(self.curves["ijk"][i]), "reordered": float(self.curves["ikj"][i]),
                "tiled": float(self.curves["tiled", tile][i])}

    def update(self, tile: int, capacity: int):
        i = int(np.searchsorted(self.caps, capacity))
        x = self.kib[i]
        self.tiled.set_ydata(self.curves["tiled", tile])
        self.vline.set_xdata([x, x])
        words = self.values(tile, capacity)
        for dot, rdot, q in zip(self.dots, self.roof_dots, words.values()):
            dot.set_data([x], [q])
            intensity = self.flops / (self.b * q)
            rdot.set_data([intensity], [min(self.peak, intensity * self.bw)])
        best = min(words, key=words.get)
        self.status.set_text(f"cache {fmt(capacity * self.lw * self.b, 'B', binary=True)}, tile {tile}×{tile}")
        parts = [f"{k} {fmt(q * self.b, 'B')} ({self.flops / (self.b * q):.2f} FLOP/byte)" for k, q in words.items()]
        return (f"n = {self.n}, cache of {fmt(capacity * self.lw * self.b, 'B', binary=True)} "
                f"({capacity} lines of {self.lw * self.b} bytes), tile {tile}×{tile}: " + "; ".join(parts)
                + f". Fewest bytes: {best}.")


__all__ = ["TilingView", "hierarchy", "hierarchy_figure", "sweep", "trace_panels"]
