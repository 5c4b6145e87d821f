"""Figures of interconnects and collectives: the bandwidth ladder from HBM to the data-centre network
(one way, from the data), the ring all-reduce's schedule, alpha-beta costs of the all-reduce
algorithms with their crossovers, measured collectives with the fitted model, the cost of tensor
parallelism against its degree, the time split of serving plans, and the explorable collective
calculator (collective, algorithm, ranks, message size, link → time, algbw and busbw).

Taught in: "Interconnects — when one chip is not enough" (chapter 10).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator

from accelbook import checks, explore
from accelbook.models import collectives as C
from accelbook.plots.style import CYCLE, MARKERS, PALETTE, _axes, _figure, log_axes, si_formatter
from accelbook.units import fmt

GROUPS = ("memory", "scale-up", "host", "scale-out")
"""Bar groups of :func:`bandwidth_ladder`: a chip's own memory, a scale-up link between chips
(NVLink, ICI), a host link (PCIe) and a scale-out network (InfiniBand, Ethernet, DCN)."""

_GROUP_COLOR = {"memory": PALETTE["green"], "scale-up": PALETTE["blue"], "host": PALETTE["orange"],
                "scale-out": PALETTE["vermillion"]}
_GROUP_LABEL = {"memory": "a chip's own memory (HBM)", "scale-up": "chip to chip (NVLink, ICI)",
                "host": "host link (PCIe)", "scale-out": "network between hosts"}


OP_NAMES = {"allreduce": "all-reduce", "allgather": "all-gather", "reducescatter": "reduce-scatter",
            "alltoall": "all-to-all", "broadcast": "broadcast", "permute": "permute", "reduce": "reduce"}
"""How the figures write each collective."""


ALG_COLORS = {"ring": CYCLE[0], "tree": CYCLE[1], "recursive_doubling": CYCLE[2], "rabenseifner": CYCLE[3],
              "recursive_halving": CYCLE[4], "pairwise": CYCLE[5]}
"""One colour per algorithm, the same in every figure of the chapter."""

VIEW_OPS = ("allreduce", "allgather", "reducescatter", "alltoall")
"""The collectives :class:`CollectiveView` offers."""


def _bar(name: str, item: Any) -> tuple:
    if not (isinstance(item, (tuple, list)) and len(item) == 5):
        raise ValueError(f"{name}={checks.show(item)} must be a (label, bytes_per_s, group, note, extra) tuple")
    label, bw, group, note, extra = item
    checks.text(f"{name}[0]", label)
    checks.one_of(f"{name}[2]", group, GROUPS)
    checks.text(f"{name}[3]", note)
    checks.text(f"{name}[4]", extra)
    return label, checks.real(f"{name}[1]", bw, positive=True), group, note, extra


def bandwidth_ladder(ax, bars: Sequence[tuple]) -> None:
    """Horizontal bars of ONE-WAY bandwidth (bytes/s, log scale), one per ``(label, bytes_per_s,
    group, note, extra)`` in the order given (top to bottom), coloured by ``group``
    (:data:`GROUPS`). ``note`` goes on a second line under the label (say what the datasheet
    quotes); the bar's value, "one way" ("read + write" for the ``"memory"`` group: a chip's memory
    is one bus shared by reads and writes, not a duplex link), and ``extra`` (say a measured
    latency, on a second line) go after the bar. Major ticks every factor of 100. Empty strings
    leave a line out. ``ValueError`` names a malformed bar."""
    _axes("ax", ax)
    bars = checks.sequence("bars", bars, of=_bar)
    y = np.arange(len(bars))[::-1]
    bw = np.array([b[1] for b in bars])
    ax.barh(y, bw, color=[_GROUP_COLOR[b[2]] for b in bars], height=0.72)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=100))
    ax.xaxis.set_major_formatter(si_formatter("B/s"))
    ax.set_xlim(bw.min() / 3, bw.max() * 30)
    ax.set_yticks(y, [b[0] + (f"\n{b[3]}" if b[3] else "") for b in bars], fontsize=9)
    ax.set_ylim(-0.6, len(bars) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.minorticks_off()
    for yi, (label, v, group, note, extra) in zip(y, bars):
        text = f"{fmt(v, 'B/s')} " + ("read + write" if group == "memory" else "one way") + (f"\n{extra}" if extra else "")
        ax.text(v * 1.12, yi, text, va="center", ha="left", fontsize=9, color="#111111", linespacing=1.1)
    present = [g for g in GROUPS if any(b[2] == g for b in bars)]
    ax.legend([Patch(color=_GROUP_COLOR[g]) for g in present], [_GROUP_LABEL[g] for g in present],
              fontsize=9, loc="lower center", bbox_to_anchor=(0.4, 1.0), ncol=2)
    ax.set_xlabel("bandwidth (log scale): ONE way; memory: read + write")


def ring_schedule(ax, p: int) -> None:
    """The ring all-reduce on ``p`` ranks as a grid: one row per rank, one column per step
    (``p − 1`` reduce-scatter steps, then ``p − 1`` all-gather steps); a cell names the chunk
    (``n/p`` bytes) the rank sends to its right-hand neighbour at that step, coloured by chunk.
    In reduce-scatter step ``s`` rank ``r`` sends chunk ``(r − s) mod p`` (a partial sum the
    receiver adds to); in all-gather step ``s`` it sends chunk ``(r + 1 − s) mod p`` (complete).
    ``ValueError`` for ``p`` not an integer from 2 to 8 (a larger grid is not legible)."""
    _axes("ax", ax)
    p = checks.positive_int("p", p, maximum=8)
    if p < 2:
        raise ValueError(f"p={p}: a ring needs at least 2 ranks")
    steps = 2 * (p - 1)
    chunk = np.array([[(r - s) % p if s < p - 1 else (r + 1 - (s - (p - 1))) % p for s in range(steps)]
                      for r in range(p)])
    colors = np.array([[int(c) for c in np.asarray(_hex(CYCLE[k % len(CYCLE)]))] for k in range(p)]) / 255
    img = colors[chunk]
    img[:, p - 1:] = 0.55 * img[:, p - 1:] + 0.45  # all-gather steps lighter: complete chunks, copied
    ax.imshow(img, aspect="auto", extent=(-0.5, steps - 0.5, p - 0.5, -0.5))
    for r in range(p):
        for s in range(steps):
            ax.text(s, r, f"c{chunk[r, s]}" + ("+" if s < p - 1 else ""), ha="center", va="center",
                    fontsize=10, color="white" if s < p - 1 else "#111111", fontweight="bold")
    ax.axvline(p - 1.5, color="black", lw=2)
    ax.set_xticks(range(steps), [str(s + 1) for s in range(steps)])
    ax.set_yticks(range(p), [f"rank {r} → {(r + 1) % p}" for r in range(p)])
    ax.set_xlabel(f"step (each sends one chunk of n/{p} bytes)")
    ax.grid(False)
    top = ax.get_xaxis_transform()
    # one title per panel, on two lines each, so the two never run together
    ax.text((p - 2) / 2, 1.02, "reduce-scatter\nc+: a partial sum, added on arrival",
            transform=top, ha="center", va="bottom", fontsize=9.5, linespacing=1.3)
    ax.text(p - 1 + (p - 2) / 2, 1.02, "all-gather\ncomplete chunks, copied", transform=top,
            ha="center", va="bottom", fontsize=9.5, linespacing=1.3)


def _hex(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _sizes(name: str, sizes) -> np.ndarray:
    n = np.asarray(checks.sequence(name, sizes, of=lambda k, v: checks.real(k, v, positive=True)), float)
    if n.size < 2 or np.any(np.diff(n) <= 0):
        raise ValueError(f"{name}={checks.show(sizes)} must hold at least two increasing sizes (bytes)")
    return n


def alg_name(algorithm: str) -> str:
    """How the figures write an algorithm: its display name in
    :data:`accelbook.models.collectives.ALGORITHM_NAMES` ('tree' -> 'binomial tree',
    'rabenseifner' -> 'Rabenseifner'); any other name with its underscores as spaces
    ('recursive_doubling' -> 'recursive doubling'). ``TypeError`` if ``algorithm`` is not text."""
    checks.text("algorithm", algorithm)
    return C.ALGORITHM_NAMES.get(algorithm, algorithm.replace("_", " "))


def alpha_beta(ax_time, ax_bus, op: str, p: int, alpha: float, beta: float, sizes, *,
               published=None, link_label: str = "", pairs: Mapping[str, str] | None = None) -> dict:
    """Every algorithm of ``op`` on ``p`` ranks (:func:`accelbook.models.collectives.collective_time`
    with ``alpha`` s per message and ``beta`` s/byte, γ = 0) against message size ``sizes``
    (bytes, increasing): time on ``ax_time`` with the lower bound dashed and a circle where each
    algorithm of ``pairs`` (latency-optimal → its bandwidth-optimal rival; default: every other
    algorithm → the first of the op, the ring) crosses its rival; nccl-tests busbw on ``ax_bus``
    with ``1/beta`` (the link, one way, ``beta`` > 0) dotted. ``published``: a
    :class:`~accelbook.models.collectives.Sweep` of the same op drawn as measured markers.
    Returns ``{(algorithm, rival): crossover bytes or None}``. ``ValueError`` names a bad
    argument."""
    _axes("ax_time", ax_time)
    _axes("ax_bus", ax_bus)
    n = _sizes("sizes", sizes)
    algs = C.ALGORITHMS[checks.one_of("op", op, C.OPS)]
    p = checks.positive_int("p", p, maximum=2**20)
    if p < 2:
        raise ValueError(f"p={p}: one rank moves nothing; draw at least 2")
    alpha = checks.real("alpha", alpha, nonnegative=True)
    beta = checks.real("beta", beta, positive=True)
    checks.text("link_label", link_label)
    if published is not None:
        checks.instance("published", published, C.Sweep)
    log_axes(ax_time, "B", "s")
    log_axes(ax_bus, "B", "B/s")
    usable = [a for a in algs if not ((op, a) in C.POWER_OF_TWO and p & (p - 1))]
    if pairs is None:
        pairs = {a: algs[0] for a in usable if a != algs[0]}
    if not isinstance(pairs, Mapping):
        raise ValueError(f"pairs={checks.show(pairs)} must be None or a mapping of algorithm -> rival")
    for a, b in pairs.items():
        checks.one_of("pairs key", a, tuple(usable))
        checks.one_of(f"pairs[{a!r}]", b, tuple(usable))
    for i, alg in enumerate(algs):
        if alg not in usable:
            continue
        t = C.collective_time(op, alg, n, p, alpha, beta)
        style = dict(color=ALG_COLORS.get(alg, CYCLE[i]), lw=2.4 if alg == algs[0] else 1.8)
        ax_time.plot(n, t, label=alg_name(alg), **style)
        ax_bus.plot(n, C.bus_bandwidth(op, n, t, p) if op in C.NCCL_OPS else n / t, **style)
    crossings = {}
    for a, b in pairs.items():
        x = C.crossover_bytes(op, a, b, p, alpha, beta)
        crossings[(a, b)] = x
        if x is not None and n[0] <= x <= n[-1]:
            ax_time.plot([x], [C.collective_time(op, a, x, p, alpha, beta)], "o", color=ALG_COLORS.get(a, "black"),
                         ms=9, mec="black", mew=0.8)
    lb = np.array([C.lower_bound(op, v, p, alpha, beta).total for v in n])
    ax_time.plot(n, lb, "k--", lw=1.3, label="lower bound")
    ax_bus.axhline(1 / beta, color="#333333", ls=":", lw=1.5,
                   label=f"link {fmt(1 / beta, 'B/s')} one way" + (f" ({link_label})" if link_label else ""))
    if published is not None:
        ax_time.plot(published.n_bytes, published.seconds, "X", color="#333333", ms=7,
                     label=f"measured: {published.system}"[:60])
        ax_bus.plot(published.n_bytes, published.busbw, "X", color="#333333", ms=7, label="measured busbw")
    ax_time.set(ylabel="time per call (s)")
    ax_bus.set(xlabel="message size n (bytes per rank, nccl-tests' S)", ylabel="busbw (bytes/s)")
    ax_bus.set_ylim(top=2.5 / beta)
    for ax in (ax_time, ax_bus):
        ax.minorticks_off()
        ax.set_xlim(n[0], n[-1])
    ax_time.legend(fontsize=9, loc="upper left")
    ax_bus.legend(fontsize=9, loc="lower right")
    return crossings


def _sweep_like(name: str, s: Any):
    for attr in ("op", "p", "n_bytes", "seconds", "algbw", "busbw"):
        if not hasattr(s, attr):
            raise TypeError(f"{name}={checks.show(s)} must be a measured sweep with .{attr} "
                            "(accelbook.measure.collectives.CollectiveSweep)")
    return s


def measured_collectives(ax_time, ax_bw, sweeps: Sequence, fits: Sequence, *, algorithms=None,
                         label: str = "") -> None:
    """Measured collectives (``sweeps``: each with ``op``, ``p``, and arrays ``n_bytes``,
    ``seconds``, ``algbw``, ``busbw``) as markers, each with its alpha-beta fit (``fits``: objects
    with ``alpha`` s and ``beta`` s/byte, one per sweep; ``algorithms`` names the schedule each
    fit assumed, default the first of :data:`~accelbook.models.collectives.ALGORITHMS` for the op)
    drawn as a line over the data: time on ``ax_time``, one legend entry per collective with its
    fitted α and 1/β; busbw on ``ax_bw`` (algbw is busbw over nccl-tests' factor, so it is left to
    the tables). ``label`` names the device. ``ValueError`` if the lists differ in length."""
    _axes("ax_time", ax_time)
    _axes("ax_bw", ax_bw)
    sweeps = [_sweep_like(f"sweeps[{i}]", s) for i, s in enumerate(checks.sequence("sweeps", sweeps))]
    fits = checks.sequence("fits", fits)
    algorithms = checks.sequence("algorithms", algorithms) if algorithms is not None else \
        [C.ALGORITHMS[s.op][0] for s in sweeps]
    if not len(fits) == len(algorithms) == len(sweeps):
        raise ValueError(f"sweeps ({len(sweeps)}), fits ({len(fits)}) and algorithms ({len(algorithms)}) "
                         "must have the same length")
    log_axes(ax_time, "B", "s")
    log_axes(ax_bw, "B", "B/s")
    for i, (s, f, alg) in enumerate(zip(sweeps, fits, algorithms)):
        color, marker = CYCLE[i % len(CYCLE)], MARKERS[i % len(MARKERS)]
        n = np.asarray(s.n_bytes, float)
        name = OP_NAMES.get(s.op, s.op)
        fitted = f"α {fmt(f.alpha, 's')}, 1/β {fmt(1 / f.beta, 'B/s') if f.beta > 0 else '∞'}"
        ax_time.plot(n, s.seconds, marker, color=color, ms=6, label=f"{name} ({fitted})")
        grid = np.geomspace(n.min(), n.max(), 60)
        model = C.cost_terms(s.op, alg, s.p).time(grid, f.alpha, f.beta)
        ax_time.plot(grid, model, "-", color=color, lw=1.6, label="_fit")
        ax_bw.plot(n, s.busbw, marker + "-", color=color, ms=6, lw=1.2, label=name)
    ax_time.set(ylabel="time per call (median, s)")
    ax_bw.set(xlabel="message size n (bytes, nccl-tests' S)", ylabel="busbw (bytes/s)")
    for ax in (ax_time, ax_bw):
        ax.minorticks_off()
    ax_time.legend(fontsize=9, loc="upper left", title="measured (markers) and fitted (lines)", title_fontsize=9)
    ax_bw.legend(fontsize=9, loc="lower right", ncol=2)
    if label:
        ax_time.set_title(label, fontsize=10)


def degree_curves(ax, degrees: Sequence[int], curves: Mapping[str, Sequence[float]], *,
                  ylabel: str = "communication / compute per layer", threshold: float | None = 1.0) -> None:
    """Ratios (or any positive quantity) against a parallel degree, one line per ``curves`` entry
    (label → values at ``degrees``), log-log, with a horizontal line at ``threshold`` (None: no
    line). ``ValueError`` if a curve's length differs from ``degrees``."""
    _axes("ax", ax)
    checks.text("ylabel", ylabel)
    d = np.asarray(checks.sequence("degrees", degrees, of=lambda k, v: checks.positive_int(k, v)), float)
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves={checks.show(curves)} must be a non-empty mapping of label -> values")
    for i, (label, ys) in enumerate(curves.items()):
        ys = np.asarray(checks.sequence(f"curves[{label!r}]", ys, of=lambda k, v: checks.real(k, v, positive=True)))
        if ys.size != d.size:
            raise ValueError(f"curves[{label!r}] has {ys.size} values for {d.size} degrees")
        ax.plot(d, ys, MARKERS[i % len(MARKERS)] + "-", color=CYCLE[i % len(CYCLE)], ms=6, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(d, [f"{v:.0f}" for v in d])
    ax.minorticks_off()
    if threshold is not None:
        ax.axhline(checks.real("threshold", threshold, positive=True), color="#333333", ls="--", lw=1.2)
    ax.set(ylabel=ylabel)
    ax.legend(fontsize=9)


def plan_bars(ax, plans: Sequence[tuple]) -> None:
    """Time per step of serving plans as stacked horizontal bars: ``(label, busy_seconds,
    comm_seconds, note)`` each, the device's own time (the larger of compute and memory) then the
    communication on top, with ``note`` (say tokens/s) after the bar; top to bottom in the order
    given. ``ValueError`` names a malformed plan."""
    _axes("ax", ax)

    def one(name, item):
        if not (isinstance(item, (tuple, list)) and len(item) == 4):
            raise ValueError(f"{name}={checks.show(item)} must be a (label, busy_s, comm_s, note) tuple")
        return (checks.text(f"{name}[0]", item[0]), checks.real(f"{name}[1]", item[1], nonnegative=True),
                checks.real(f"{name}[2]", item[2], nonnegative=True), checks.text(f"{name}[3]", item[3]))

    plans = checks.sequence("plans", plans, of=one)
    y = np.arange(len(plans))[::-1]
    busy = np.array([p[1] for p in plans]) * 1e3
    comm = np.array([p[2] for p in plans]) * 1e3
    ax.barh(y, busy, color=PALETTE["blue"], height=0.65, label="on the device (max of compute, memory)")
    ax.barh(y, comm, left=busy, color=PALETTE["vermillion"], height=0.65, label="all-reduces between devices")
    total = busy + comm
    for yi, t, (_, _, _, note) in zip(y, total, plans):
        ax.text(t + total.max() * 0.015, yi, note, va="center", fontsize=9)
    ax.set_yticks(y, [p[0] for p in plans], fontsize=9)
    ax.set_xlim(0, total.max() * 1.55)
    ax.set_xlabel("time per decode step (ms)")
    ax.grid(axis="y", visible=False)
    ax.legend(fontsize=9, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)


def _percent(share: float) -> str:
    """A share as a percentage with at least one significant digit: 0.5 -> '50 %', 0.0007 -> '0.07 %'."""
    pct = 100 * share
    return f"{pct:.0f} %" if pct >= 1 or pct == 0 else f"{pct:.1g} %"


class CollectiveView(explore.View):
    """An explorable alpha-beta calculator: ``update(collective, ranks, size, link)``.

    ``collective`` is an ``(op, algorithm)`` pair of
    :data:`~accelbook.models.collectives.ALGORITHMS`; ``ranks`` the number of ranks; ``size`` the
    message size in bytes (nccl-tests' S); ``link`` a key of ``links`` (label → one-way bytes/s).
    Top: time against message size for every algorithm of the op (the chosen one thick), the lower
    bound dashed, a marker at ``size``; bottom: busbw of the chosen algorithm against the link's
    one-way rate. ``alpha`` (s per message) is the same for every link. The axes are fixed over
    ``sizes`` (bytes) and the whole range of links and ranks; lines and markers are dynamic.
    ``ValueError`` names a bad argument. Taught in: chapter 10.
    """

    def __init__(self, links: Mapping[str, float], alpha: float, sizes: Sequence[float], *,
                 max_ranks: int = 256, alpha_label: str = ""):
        if not isinstance(links, Mapping) or not links:
            raise ValueError(f"links={checks.show(links)} must be a non-empty mapping of label -> bytes/s")
        self.links = {checks.text("links key", k): checks.real(f"links[{k!r}]", v, positive=True)
                      for k, v in links.items()}
        self.alpha = checks.real("alpha", alpha, nonnegative=True)
        self.n = _sizes("sizes", sizes)
        max_ranks = checks.positive_int("max_ranks", max_ranks, maximum=2**16)
        b_lo, b_hi = min(self.links.values()), max(self.links.values())
        self.alpha_label = checks.text("alpha_label", alpha_label)
        t_lo = self.alpha / 2 if self.alpha > 0 else self.n[0] / b_hi / 3
        lg = max(1, (max_ranks - 1).bit_length())
        t_hi = 2 * max(lg, max_ranks) * self.alpha + 2 * lg * self.n[-1] / b_lo
        self.figure = fig = Figure(figsize=(7.0, 6.8))
        fig.subplots_adjust(left=0.16, right=0.97, bottom=0.09, top=0.86, hspace=0.3)
        self.ax, self.bus = fig.subplots(2, 1, sharex=True)
        log_axes(self.ax, "B", "s")
        log_axes(self.bus, "B", "B/s")
        for ax in (self.ax, self.bus):
            ax.minorticks_off()
            ax.set_xlim(self.n[0], self.n[-1])
        self.ax.set_ylim(t_lo, t_hi * 3)
        self.ax.set_ylabel("time per call (s)", fontsize=10)
        self.bus.set_ylim(b_lo * self.n[0] / (self.n[0] + 4 * max_ranks * self.alpha * b_lo) / 3 if self.alpha else b_lo / 100,
                          b_hi * 2.5)
        self.bus.set_ylabel("busbw (bytes/s)", fontsize=10)
        self.bus.set_xlabel("message size n (bytes per rank)", fontsize=10)
        algs = list(dict.fromkeys(a for op in VIEW_OPS for a in C.ALGORITHMS[op]))
        self.lines = {a: self.ax.plot(self.n, self.n, color=ALG_COLORS[a], lw=1.6,
                                      label=alg_name(a))[0] for a in algs}
        # under the algorithms' lines (an algorithm that meets the bound hides it, not the other way round)
        (self.bound,) = self.ax.plot(self.n, self.n, "k--", lw=1.3, label="lower bound", zorder=1.9)
        # one legend per set of drawn algorithms (an op, on a power of two of ranks or not): only the
        # legend of the lines on show is visible, so it never names a line that is not drawn
        self.legends = {}
        for op in VIEW_OPS:
            for pow2 in (True, False):
                shown = self._drawn(op, 2 if pow2 else 3)
                if shown not in self.legends:
                    handles = [self.lines[a] for a in shown] + [self.bound]
                    leg = Legend(self.ax, handles, [h.get_label() for h in handles], fontsize=9.5,
                                 loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3 if len(handles) > 4 else len(handles))
                    leg.set_visible(False)
                    self.ax.add_artist(leg)
                    self.legends[shown] = leg
        (self.dot,) = self.ax.plot([self.n[0]], [t_lo], "o", color="black", ms=9)
        (self.busline,) = self.bus.plot(self.n, self.n, color=CYCLE[0], lw=2.4)
        (self.linkline,) = self.bus.plot(self.n[[0, -1]], [b_lo, b_lo], ":", color="#333333", lw=1.6)
        (self.busdot,) = self.bus.plot([self.n[0]], [b_lo], "o", color="black", ms=9)
        self.status = self.ax.text(0.99, 0.04, " ", transform=self.ax.transAxes, ha="right", va="bottom",
                                   fontsize=10, bbox=dict(facecolor="white", edgecolor="#cccccc", alpha=0.9))
        self.busnote = self.bus.text(0.99, 0.04, " ", transform=self.bus.transAxes, ha="right", va="bottom",
                                     fontsize=10, bbox=dict(facecolor="white", edgecolor="#cccccc", alpha=0.9))
        self.dynamic = [self.bound, *self.lines.values(), self.dot, self.busline, self.linkline, self.busdot,
                        self.status, self.busnote, *self.legends.values()]

    @staticmethod
    def _drawn(op: str, p: int) -> tuple[str, ...]:
        """The algorithms of ``op`` drawn on ``p`` ranks: all of them, less those that need a power of two."""
        return tuple(a for a in C.ALGORITHMS[op] if not ((op, a) in C.POWER_OF_TWO and p & (p - 1)))

    def values(self, collective, ranks: int, size: float, link: str) -> dict[str, float]:
        """Seconds, algbw and busbw (bytes/s) of the chosen collective at ``size`` bytes, and its
        latency and bandwidth terms (s)."""
        op, alg = collective
        beta = 1 / self.links[checks.one_of("link", link, tuple(self.links))]
        terms = C.cost_terms(op, alg, ranks)
        t = terms.time(size, self.alpha, beta)
        return {"seconds": t, "latency_term": terms.messages * self.alpha, "bandwidth_term": terms.bytes_factor * size * beta,
                "algbw": size / t if t > 0 else 0.0,
                "busbw": C.bus_bandwidth(op, size, t, ranks) if t > 0 else 0.0}

    def update(self, collective, ranks: int, size: float, link: str):
        if not (isinstance(collective, tuple) and len(collective) == 2):
            raise ValueError(f"collective={checks.show(collective)} must be an (op, algorithm) pair")
        op, alg = collective
        algs = C.ALGORITHMS[checks.one_of("op", op, VIEW_OPS)]
        checks.one_of("algorithm", alg, algs)
        p = checks.positive_int("ranks", ranks, maximum=2**20)
        if p < 2:
            raise ValueError(f"ranks={p}: a collective needs at least 2 ranks")
        size = checks.real("size", size, positive=True)
        beta = 1 / self.links[checks.one_of("link", link, tuple(self.links))]
        if (op, alg) in C.POWER_OF_TWO and p & (p - 1):
            raise ValueError(f"ranks={p}: algorithm={alg!r} needs a power of two")
        shown = self._drawn(op, p)
        for key, leg in self.legends.items():
            leg.set_visible(key == shown)
        for a, line in self.lines.items():
            ok = a in shown
            line.set_visible(ok)
            if ok:
                line.set_ydata(C.collective_time(op, a, self.n, p, self.alpha, beta))
                line.set_linewidth(3.4 if a == alg else 1.4)
        self.bound.set_ydata([C.lower_bound(op, v, p, self.alpha, beta).total for v in self.n])
        floor = C.lower_bound(op, size, p, self.alpha, beta).total
        v = self.values(collective, p, size, link)
        self.dot.set_data([size], [v["seconds"]])
        t = C.collective_time(op, alg, self.n, p, self.alpha, beta)
        self.busline.set_ydata(C.bus_bandwidth(op, self.n, t, p))
        self.busline.set_color(ALG_COLORS[alg])
        self.linkline.set_ydata([1 / beta, 1 / beta])
        self.busdot.set_data([size], [v["busbw"]])
        share = v["latency_term"] / v["seconds"] if v["seconds"] > 0 else 0.0
        self.status.set_text(f"{alg_name(alg)}, n = {fmt(size, 'B', binary=True)}: {fmt(v['seconds'], 's')}\n"
                             f"latency {_percent(share)}, bandwidth {_percent(1 - share)}")
        self.busnote.set_text(f"busbw {fmt(v['busbw'], 'B/s')} = {_percent(v['busbw'] * beta)} "
                              f"of the link's {fmt(1 / beta, 'B/s')} one way")
        best = min((a for a in algs if not ((op, a) in C.POWER_OF_TWO and p & (p - 1))),
                   key=lambda a: C.collective_time(op, a, size, p, self.alpha, beta))
        return (f"{OP_NAMES[op]} by {alg_name(alg)} on {p} ranks over {link} ({fmt(1 / beta, 'B/s')} one way, "
                f"α = {fmt(self.alpha, 's')}{' ' + self.alpha_label if self.alpha_label else ''}), "
                f"n = {fmt(size, 'B', binary=True)}: {fmt(v['seconds'], 's')} "
                f"(latency term {fmt(v['latency_term'], 's')}, bandwidth term {fmt(v['bandwidth_term'], 's')}); "
                f"algbw {fmt(v['algbw'], 'B/s')}, busbw {fmt(v['busbw'], 'B/s')}. "
                f"Fastest algorithm at this size: {alg_name(best)}."
                + (" It meets the lower bound." if v["seconds"] <= floor * (1 + 1e-9) else
                   f" The lower bound is {fmt(floor, 's')}."))


__all__ = ["ALG_COLORS", "GROUPS", "OP_NAMES", "VIEW_OPS", "CollectiveView", "alg_name", "alpha_beta", "bandwidth_ladder", "degree_curves",
           "measured_collectives", "plan_bars", "ring_schedule"]
