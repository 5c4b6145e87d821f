"""Figures of the KV cache: bytes per token as bars, the largest batch against context on several
chips, the bound on the decode step against context (solid where the batch fits, dotted where it
does not), the measured decode step against context with its bandwidth-bound prediction, and the
explorable memory map of a chip (weights, cache, reserve, free) with the decode step's time.

Taught in: "The KV cache: why long-context decode is bandwidth and capacity, not FLOPs" (chapter 09).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from accelbook import checks, explore, specs
from accelbook.models import kvcache
from accelbook.plots.style import CYCLE, MARKERS, PALETTE, _axes, log_axes, si_formatter
from accelbook.units import fmt

_GREY = "#9a9a9a"
_FREE = "#e8f3ec"


def _rows(name: str, rows) -> list:
    def one(item, r):
        if not (isinstance(r, (tuple, list)) and len(r) == 3):
            raise ValueError(f"{item}={checks.show(r)} must be a (label, value, group) triple")
        return (checks.text(f"{item}[0]", r[0]), checks.real(f"{item}[1]", r[1], positive=True),
                checks.text(f"{item}[2]", r[2]))
    return checks.sequence(name, rows, of=one)


def bars(ax, rows: Sequence[tuple[str, float, str]], *, unit: str = "B", xlabel: str = "", log: bool = True,
         colors: Mapping[str, str] | None = None) -> None:
    """Horizontal bars, one per ``(label, value, group)`` row (top to bottom in the given order),
    coloured by group (one legend entry per group), each with its value written at its end in
    ``unit`` (say bytes, 'B'). ``log`` (default True) puts the x-axis on a log scale; with
    ``log=False`` it is linear from 0, so bar lengths compare as ratios. ``colors`` optionally maps
    a group to a matplotlib colour (the others take the colour cycle in order), so that a group keeps
    its colour across panels. Values must be positive. ``ValueError`` for a bad row, a ``log``
    that is not True/False or a ``colors`` that is not a mapping of text to text; ``TypeError`` for
    an ``ax`` that is not an Axes."""
    _axes("ax", ax)
    rows = _rows("rows", rows)
    checks.text("unit", unit)
    checks.text("xlabel", xlabel)
    log = checks.boolean("log", log)
    if colors is not None:
        if not isinstance(colors, Mapping):
            raise ValueError(f"colors={checks.show(colors)} must be None or a mapping of group -> colour")
        for g, c in colors.items():
            checks.text("colors' groups", g)
            checks.text(f"colors[{g!r}]", c)
    groups = list(dict.fromkeys(g for _, _, g in rows))
    given = dict(colors or {})
    free = [c for c in CYCLE if c not in given.values()] or list(CYCLE)
    rest = [g for g in groups if g not in given]
    palette = {g: given[g] for g in groups if g in given}
    palette.update({g: free[i % len(free)] for i, g in enumerate(rest)})
    y = np.arange(len(rows))[::-1]
    values = np.array([v for _, v, _ in rows])
    if log:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(si_formatter(unit))
    for g in groups:
        idx = [i for i, r in enumerate(rows) if r[2] == g]
        ax.barh(y[idx], values[idx], color=palette[g], height=0.7, label=g)
    for yi, v in zip(y, values):
        ax.text(v * 1.08 if log else v + 0.015 * values.max(), yi, fmt(v, unit), va="center", ha="left", fontsize=10)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set_xlim(*((values.min() / 3, values.max() * 6) if log else (0, values.max() * 1.3)))
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="y", visible=False)
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=10, loc="lower right")


def capacity_curves(ax, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                    xlabel: str = "context (tokens per sequence)",
                    ylabel: str = "largest batch that fits (sequences)") -> None:
    """The largest batch against context, one line per label: ``curves`` maps a label to
    ``(contexts, batches)``, on log-log axes. Points with a batch of 0 (nothing fits) are not
    drawn; a label with no point left is listed in the legend as "(weights do not fit)". Every
    second line is dashed, so a line that lies on another stays visible.
    ``ValueError`` for an empty mapping or mismatched lengths."""
    _axes("ax", ax)
    checks.text("xlabel", xlabel)
    checks.text("ylabel", ylabel)
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves={checks.show(curves)} must be a non-empty mapping of label -> (contexts, batches)")
    pairs = {}
    for label, pair in curves.items():
        checks.text("curves' labels", label)
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"curves[{label!r}]={checks.show(pair)} must be a (contexts, batches) pair")
        x = checks.sequence(f"curves[{label!r}] contexts", pair[0], of=lambda n, v: checks.real(n, v, positive=True))
        b = checks.sequence(f"curves[{label!r}] batches", pair[1], of=lambda n, v: checks.real(n, v, nonnegative=True))
        if len(x) != len(b):
            raise ValueError(f"curves[{label!r}]: contexts and batches must have one length, got {len(x)} and {len(b)}")
        pairs[label] = (np.asarray(x, float), np.asarray(b, float))
    log_axes(ax)
    ax.xaxis.set_major_formatter(si_formatter(""))
    for i, (label, (x, b)) in enumerate(pairs.items()):
        keep = b > 0
        style = MARKERS[i % len(MARKERS)] + ("-" if i % 2 == 0 else "--")
        if keep.any():  # dashed lines on top, so one that lies on a solid line shows through its gaps
            ax.plot(x[keep], b[keep], style, color=CYCLE[i % len(CYCLE)], ms=5, label=label, zorder=2 + i % 2)
        else:
            ax.plot([], [], style, color=CYCLE[i % len(CYCLE)],
                    label=f"{label} (weights do not fit)")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.minorticks_off()
    ax.legend(fontsize=9, loc="upper right")


def measured_sweep(ax, contexts: Sequence[float], median: Sequence[float], p10: Sequence[float],
                   p90: Sequence[float], predicted: Sequence[float], *, label: str = "measured",
                   predicted_label: str = "bandwidth-bound prediction") -> None:
    """Measured seconds per step against context (median line, p10–p90 band) and the predicted
    seconds on the same log-log axes. All sequences must have one length; times positive."""
    _axes("ax", ax)
    checks.text("label", label)
    checks.text("predicted_label", predicted_label)
    arrays = [np.asarray(checks.sequence(n, v, of=lambda k, x: checks.real(k, x, positive=True)), float)
              for n, v in (("contexts", contexts), ("median", median), ("p10", p10), ("p90", p90),
                           ("predicted", predicted))]
    if len({a.size for a in arrays}) != 1:
        raise ValueError("contexts, median, p10, p90 and predicted must have the same length, got "
                         f"{[a.size for a in arrays]}")
    x, med, lo, hi, pred = arrays
    log_axes(ax, None, "s")
    ax.xaxis.set_major_formatter(si_formatter(""))
    ax.fill_between(x, lo, hi, color=CYCLE[0], alpha=0.2, lw=0)
    ax.plot(x, med, "o-", color=CYCLE[0], ms=5, label=label)
    ax.plot(x, pred, "--", color="#333333", lw=1.6, label=predicted_label)
    ys = np.concatenate([lo, hi, pred])
    ax.set_ylim(ys.min() / 2, ys.max() * 2)
    ax.set(xlabel="context (tokens each sequence attends to)", ylabel="seconds per decode step")
    ax.minorticks_off()
    ax.set_xticks(x, [f"{v:,.0f}" for v in x])  # one tick per measured context
    ax.legend(fontsize=9, loc="upper left")


def step_curves(ax, contexts: Sequence[float], curves: Mapping[str, tuple[Sequence[float], Sequence[bool]]], *,
                reference: tuple[str, Sequence[float]] | None = None) -> None:
    """Seconds per decode step against context, one line per label, on log-log axes: ``curves``
    maps a label to ``(seconds, fits)``, one value per context; the line is solid where ``fits``
    is True (the batch fits in memory) and dotted where it does not. ``reference`` is an optional
    ``(label, seconds)`` line drawn dashed in grey (say the compute time). Times must be positive,
    every sequence as long as ``contexts``; ``fits`` holds True/False."""
    _axes("ax", ax)
    x = np.asarray(checks.sequence("contexts", contexts, of=lambda n, v: checks.real(n, v, positive=True)), float)
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves={checks.show(curves)} must be a non-empty mapping of label -> (seconds, fits)")
    series = {}
    for label, pair in curves.items():
        checks.text("curves' labels", label)
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"curves[{label!r}]={checks.show(pair)} must be a (seconds, fits) pair")
        t = checks.sequence(f"curves[{label!r}] seconds", pair[0], of=lambda n, v: checks.real(n, v, positive=True))
        fits = checks.sequence(f"curves[{label!r}] fits", pair[1], of=checks.boolean)
        if not len(t) == len(fits) == x.size:
            raise ValueError(f"curves[{label!r}]: seconds and fits must have one value per context ({x.size})")
        series[label] = (np.asarray(t, float), np.asarray(fits, bool))
    ref = None
    if reference is not None:
        if not (isinstance(reference, (tuple, list)) and len(reference) == 2):
            raise ValueError(f"reference={checks.show(reference)} must be None or a (label, seconds) pair")
        checks.text("reference label", reference[0])
        rt = checks.sequence("reference seconds", reference[1], of=lambda n, v: checks.real(n, v, positive=True))
        if len(rt) != x.size:
            raise ValueError(f"reference: one time per context ({x.size}), got {len(rt)}")
        ref = (reference[0], np.asarray(rt, float))
    log_axes(ax, None, "s")
    ax.xaxis.set_major_formatter(si_formatter(""))
    for i, (label, (t, fits)) in enumerate(series.items()):
        color = CYCLE[i % len(CYCLE)]
        ax.plot(x, np.where(fits, t, np.nan), MARKERS[i % len(MARKERS)] + "-", color=color, ms=5, label=label)
        # dotted from the last fitting point on, so the two pieces join
        last = int(np.flatnonzero(fits)[-1]) if fits.any() else 0
        tail = np.where(np.arange(x.size) >= last, t, np.nan) if not fits.all() else np.full(x.size, np.nan)
        ax.plot(x, tail, ":", color=color, lw=1.8)
    if ref is not None:
        ax.plot(x, ref[1], "--", color="#555555", lw=1.4, label=ref[0])
    ax.set(xlabel="context (tokens per sequence)", ylabel="seconds per decode step (bound)")
    ax.minorticks_off()
    ax.legend(fontsize=9, loc="upper left")


class MemoryMapView(explore.View):
    """The memory map of a chip serving a model, and the decode step that map implies.

    ``update(model, chip, context, batch, kv_dtype)``. Top: one bar, as a share of the memory the
    device offers (:func:`accelbook.models.kvcache.device_memory`): the weights (``weight_dtype``),
    the paged KV cache of ``batch`` sequences of ``context`` tokens (whole blocks of
    ``block_size`` tokens), the free part of the usable ``memory_fraction`` and the reserve
    ``1 − memory_fraction``; what does not fit runs past the end of the device (drawn up to
    1.35 and said in the text). Bottom: the bandwidth-bound decode step
    (:func:`accelbook.models.kvcache.decode_step`): the time to read the weights and the cache,
    against the time of its FLOP at the chip's dense bf16 peak, as shares of the step. The caption
    gives the sizes (GiB), the largest batch at this context, the step time and the tokens/s bound,
    and which limit binds: capacity, memory bandwidth or compute; when the weights alone exceed the
    usable memory it says so (several chips or fewer bits), and gives no step time. Axes are fixed; bars and texts are
    dynamic. Taught in: "The KV cache" (chapter 09).
    """

    XMAX = 1.35  # shares of device memory drawn; more is said in the text

    def __init__(self, *, weight_dtype: str = "bf16", memory_fraction: float = kvcache.VLLM_GPU_MEMORY_UTILIZATION,
                 block_size: int = kvcache.VLLM_BLOCK_SIZE):
        self.weight_dtype = checks.one_of("weight_dtype", weight_dtype, kvcache.STORAGE_DTYPES)
        self.fraction = checks.real("memory_fraction", memory_fraction, positive=True, maximum=1.0)
        self.block_size = checks.positive_int("block_size", block_size, maximum=2 ** 24)
        self.figure = fig = Figure(figsize=(7.0, 4.6))
        fig.subplots_adjust(left=0.17, right=0.97, bottom=0.11, top=0.83, hspace=0.95)
        self.ax, self.tax = fig.subplots(2, 1, height_ratios=[1, 1.5])
        ax = self.ax
        ax.set(xlim=(0, self.XMAX), ylim=(-0.5, 0.8), xlabel="share of the device's memory")
        ax.set_yticks([0], ["memory"])
        ax.grid(axis="y", visible=False)
        ax.set_axisbelow(True)  # grid under the bars, as the bars are drawn over the cached background
        lines = [ax.axvline(1.0, color="black", lw=1.4), ax.axvline(self.fraction, color="#555555", lw=1.0, ls=":")]
        ax.text(1.01, 0.44, "device", ha="left", va="bottom", fontsize=9)
        ax.text(self.fraction - 0.01, 0.44, f"usable: {self.fraction:g}", ha="right", va="bottom", fontsize=9)
        colors = [CYCLE[0], CYCLE[1], _FREE, _GREY, PALETTE["vermillion"]]
        names = ["weights", "KV cache", "free", "reserve", "does not fit"]
        self.segments = [ax.barh([0], [0.0], left=[0.0], height=0.8, fc=c if i < 4 else "none",
                                 ec="white" if i < 4 else c, hatch=None if i < 4 else "///", lw=1.0, label=n)[0]
                         for i, (c, n) in enumerate(zip(colors, names))]
        ax.legend(self.segments, names, fontsize=9, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.22),
                  handlelength=1.2, columnspacing=1.0)
        tax = self.tax
        tax.set(xlim=(0, 1.3), ylim=(-0.6, 1.6), xlabel="share of the decode step's time")
        tax.set_yticks([1, 0], ["memory\n(bytes / BW)", "compute\n(FLOP / peak)"])
        tax.grid(axis="y", visible=False)
        tax.set_axisbelow(True)
        self.t_weights = tax.barh([1], [0.0], height=0.7, color=CYCLE[0])[0]
        self.t_kv = tax.barh([1], [0.0], height=0.7, color=CYCLE[1])[0]
        self.t_flops = tax.barh([0], [0.0], height=0.7, color=CYCLE[2])[0]
        self.mem_text = ax.text(0.0, 1.02, " ", transform=ax.transAxes, fontsize=9.5, va="bottom", ha="left")
        self.t_text = [tax.text(0.01, y, " ", fontsize=9, va="center", ha="left") for y in (1, 0)]
        self.status = tax.text(0.0, 1.03, " ", transform=tax.transAxes, fontsize=9.5, va="bottom", ha="left")
        lines.append(tax.axvline(1.0, color="black", lw=1.0, ls=":"))
        # the reference lines go on top of the bars, so they are dynamic too
        self.dynamic = [*self.segments, self.t_weights, self.t_kv, self.t_flops, *lines, self.mem_text, *self.t_text,
                        self.status]

    def values(self, model: str, chip: str, context: int, batch: int, kv_dtype: str) -> dict:
        """The numbers the view draws: bytes (``capacity``, ``weights``, ``kv``: paged, ``reserve``,
        ``free``: negative if over), ``fits``, ``max_batch`` at this context, the decode step
        (:class:`accelbook.models.kvcache.DecodeStep`) as ``step``, and ``limit``: 'capacity',
        'memory bandwidth' or 'compute'."""
        step = kvcache.decode_step(model, chip, batch, context, dtype=self.weight_dtype, kv_dtype=kv_dtype)
        fit = kvcache.max_batch(model, chip, context, dtype=self.weight_dtype, kv_dtype=kv_dtype,
                                memory_fraction=self.fraction, block_size=self.block_size)
        kv = step.batch * fit.blocks_per_sequence * fit.block_bytes
        cap = fit.capacity
        free = cap * self.fraction - fit.weight_bytes - kv
        fits = free >= 0
        limit = "capacity" if not fits else ("memory bandwidth" if step.bound == "memory" else "compute")
        return {"capacity": cap, "visible": fit.capacity_visible, "weights": fit.weight_bytes, "kv": float(kv),
                "reserve": cap * (1 - self.fraction), "free": free, "fits": fits, "max_batch": fit.batch,
                "step": step, "limit": limit, "name": fit.model}

    def update(self, model: str, chip: str, context: int, batch: int, kv_dtype: str):
        """Draw the map and the step for these values (see :meth:`values`); returns the caption.
        Errors as :func:`accelbook.models.kvcache.decode_step` and :func:`~accelbook.models.kvcache.max_batch`."""
        v = self.values(model, chip, context, batch, kv_dtype)
        batch, context = v["step"].batch, v["step"].context
        cap, step = v["capacity"], v["step"]
        w, k = v["weights"] / cap, v["kv"] / cap
        usable = self.fraction
        used = w + k
        # weights and cache from 0; free up to the usable line; reserve to the device line; overflow past it
        spans = [(0.0, min(w, self.XMAX)), (min(w, self.XMAX), min(used, self.XMAX)),
                 (min(used, usable), usable), (min(max(used, usable), 1.0), 1.0),
                 (usable, min(max(used, usable), self.XMAX))]
        for seg, (a, b) in zip(self.segments, spans):
            seg.set_x(a)
            seg.set_width(max(0.0, b - a))
        t = step.time
        self.t_weights.set_width(step.weight_bytes / step.bandwidth / t)
        self.t_kv.set_x(step.weight_bytes / step.bandwidth / t)
        self.t_kv.set_width(step.kv_bytes / step.bandwidth / t)
        self.t_flops.set_width(step.t_compute / t)
        over = f" = {used / usable:.1f}× the usable part" if not v["fits"] else ""
        self.mem_text.set_text(f"{fmt(cap, 'B', binary=True)} {'device-visible' if v['visible'] else 'as marketed'}: "
                               f"weights {fmt(v['weights'], 'B', binary=True)} + KV {fmt(v['kv'], 'B', binary=True)}{over}")
        self.t_text[0].set_text(f"{fmt(step.t_memory, 's')} (weights {fmt(step.weight_bytes / step.bandwidth, 's')}, "
                                f"KV {fmt(step.kv_bytes / step.bandwidth, 's')})")
        self.t_text[1].set_text(fmt(step.t_compute, "s"))
        for txt, width in zip(self.t_text, (step.t_memory / t, step.t_compute / t)):
            inside = width >= 0.45
            txt.set_x(0.015 if inside else min(width, 1.0) + 0.015)
            # on a bar the text gets a pale box, legible over both the weights' and the cache's colours
            txt.set_bbox(dict(facecolor="white", alpha=0.85, edgecolor="none", pad=1.5) if inside else None)
        gib = lambda x: fmt(x, "B", binary=True)  # noqa: E731 - one unit (GiB) for every size in the view
        weights_alone = v["weights"] > cap * usable
        if v["fits"]:
            bound = f"≤ {step.tokens_per_s:,.0f} tokens/s, {v['limit']}-bound"
        elif weights_alone:
            bound = "the weights alone do not fit"
        elif v["max_batch"] == 0:
            bound = "not one sequence of this length fits"
        else:
            bound = f"does not fit (at most {v['max_batch']} sequences of this length)"
        self.status.set_text(f"no decode step on one chip: {bound}" if weights_alone else
                             f"decode step ≥ {fmt(t, 's')}{' if it fitted' if not v['fits'] else ''}: {bound}")
        head = (f"{v['name']} on {specs.as_chip('chip', chip).name}, {batch} × {context:,} tokens, KV cache in "
                f"{kv_dtype}: weights {gib(v['weights'])}, KV cache {gib(v['kv'])}, of {gib(cap)} "
                f"({gib(cap * usable)} usable). ")
        if v["fits"]:
            return (head + f"At most {v['max_batch']} sequences fit at this context. Step ≥ {fmt(t, 's')} "
                    f"(memory {fmt(step.t_memory, 's')}, compute {fmt(step.t_compute, 's')}); "
                    f"≤ {step.tokens_per_s:,.0f} tokens/s. Binding limit: {v['limit']}.")
        if weights_alone:
            return (head + "The weights alone do not fit in the usable memory: capacity binds before any cache. "
                    "This model needs several chips or fewer bits per weight; no step time applies on one chip.")
        fit_text = ("Not one sequence of this length fits beside the weights" if v["max_batch"] == 0 else
                    f"At most {v['max_batch']} sequences of this length fit")
        return (head + f"{fit_text}: the batch does not fit, capacity binds. Were it to fit, the step would take "
                f"≥ {fmt(t, 's')} (memory {fmt(step.t_memory, 's')}, compute {fmt(step.t_compute, 's')}).")


__all__ = ["MemoryMapView", "bars", "capacity_curves", "measured_sweep", "step_curves"]
