"""Figures of batching for serving: decode throughput against batch size on several chips (with the
batch where each limit takes over), a measured step time against its roofline prediction, latency
percentiles against throughput for a family of batching policies, and the explorable view of one
server (arrival rate, maximum batch, time cap and policy → latency distribution and batch sizes).

Taught in: "Batching: the utilization lever (and the latency tax)" (chapter 08).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from accelbook import checks, explore
from accelbook.models import serving
from accelbook.plots.style import CYCLE, MARKERS, _axes, log_axes
from accelbook.units import fmt


def _seconds(v, _pos=None) -> str:
    """A tick label in seconds: metric prefixes below 1,000 s ('10 ms'), whole seconds with
    thousands separators from there on ('10,000 s', not '10 ks')."""
    if v <= 0:
        return "0"
    return f"{v:,.0f} s" if v >= 1000 else fmt(v, "s", digits=3)


def _minor_2_5(v, _pos=None) -> str:
    """A minor tick label on a log axis in seconds, only at 2 and 5 times a power of ten, so that
    the labels of a two-decade axis do not crowd."""
    if v <= 0:
        return ""
    mantissa = v / 10.0 ** np.floor(np.log10(v) + 1e-9)
    return _seconds(v) if min(abs(mantissa - 2), abs(mantissa - 5)) < 1e-6 else ""


# Curve colours for throughput_curves: neighbours in the list differ in hue and lightness (the
# style's orange and vermillion, adjacent in CYCLE, are hard to tell apart as thin lines).
_CURVE_COLORS = [CYCLE[i] for i in (0, 1, 2, 4, 5, 3, 6)]


def _batches(name: str, batches) -> np.ndarray:
    b = checks.real(name, batches, positive=True, allow_array=True)
    if b.ndim != 1 or b.size < 2 or np.any(np.diff(b) <= 0):
        raise ValueError(f"{name}={checks.show(batches)} must be a 1-D, strictly increasing sequence of at "
                         "least two batch sizes (> 0)")
    return b


def throughput_curves(ax, steps: Mapping[str, serving.RooflineStep], limits: Mapping[str, serving.BatchLimits],
                      batches, *, legend: bool = True) -> None:
    """Decode throughput (tokens/s, ``b / T(b)``) against batch size (sequences) on log-log axes, one
    curve per entry of ``steps`` (a label → :class:`~accelbook.models.serving.RooflineStep`).

    Each curve is solid where the batch fits the KV capacity and dotted beyond it
    (``limits[label].kv_batch``); a filled marker sits at the first compute-bound batch
    (``limits[label].compute_batch``) and an open one at the largest batch that fits
    (``limits[label].kv_batch``), each when it lies within ``batches``. ``batches``: increasing
    batch sizes (> 0). ``limits`` must have the same labels
    as ``steps`` (``ValueError`` otherwise); ``TypeError`` for an ``ax`` that is not an Axes.
    ``legend``: draw the legend (False for the second of two panels that share it).
    """
    _axes("ax", ax)
    b = _batches("batches", batches)
    if not isinstance(steps, Mapping) or not steps:
        raise ValueError(f"steps={checks.show(steps)} must be a non-empty mapping of label → RooflineStep")
    if not isinstance(limits, Mapping) or set(limits) != set(steps):
        raise ValueError(f"limits={checks.show(limits)} must map the same labels as steps ({sorted(steps)})")
    log_axes(ax, None, "tokens/s")
    ax.set(xlabel="decode batch (sequences)", ylabel="decode throughput")
    for i, (label, step) in enumerate(steps.items()):
        checks.instance(f"steps[{label!r}]", step, serving.RooflineStep)
        lim = checks.instance(f"limits[{label!r}]", limits[label], serving.BatchLimits)
        color, marker = _CURVE_COLORS[i % len(_CURVE_COLORS)], MARKERS[i % len(MARKERS)]
        tps = serving.throughput(step, b, lim.context)
        fits = b <= lim.kv_batch
        ax.plot(b[fits], tps[fits], "-", color=color, lw=2, label=label)
        beyond = b >= (b[fits][-1] if fits.any() else b[0])
        ax.plot(b[beyond], tps[beyond], ":", color=color, lw=1.6)
        if lim.compute_batch is not None and b[0] <= lim.compute_batch <= b[-1]:
            ax.plot([lim.compute_batch], [serving.throughput(step, lim.compute_batch, lim.context)], marker,
                    color=color, ms=9, mec="black", mew=0.8)
        if b[0] <= lim.kv_batch <= b[-1]:
            kb = lim.kv_batch
            ax.plot([kb], [serving.throughput(step, kb, lim.context)], marker, color="white", ms=9, mec=color, mew=2)
    ax.set_xlim(b[0], b[-1])
    if checks.boolean("legend", legend):
        ax.legend(fontsize=9, loc="lower right")


def measured_steps(ax, batch, median, low, high, predicted, *, label: str) -> None:
    """A measured step time against batch size (log-log): the ``median`` (seconds) with error bars
    from ``low`` to ``high`` (seconds, say the 10th and 90th percentiles), and the ``predicted``
    times (seconds) as a line. All five are 1-D of the same length; ``batch`` increasing (> 0).
    ``label`` names the device. ``ValueError`` naming an argument of the wrong length or range.
    """
    _axes("ax", ax)
    b = _batches("batch", batch)
    arrays = {}
    for name, value in (("median", median), ("low", low), ("high", high), ("predicted", predicted)):
        arr = checks.real(name, value, positive=True, allow_array=True)
        if arr.shape != b.shape:
            raise ValueError(f"{name}={checks.show(value)} must have one value per batch ({b.size})")
        arrays[name] = arr
    if np.any(arrays["low"] > arrays["median"]) or np.any(arrays["high"] < arrays["median"]):
        raise ValueError("low <= median <= high must hold at every batch")
    checks.text("label", label)
    log_axes(ax, None, "s")
    m = arrays["median"]
    ax.errorbar(b, m, yerr=[m - arrays["low"], arrays["high"] - m], fmt="o", color=CYCLE[0], ms=6, capsize=3,
                label=f"measured ({label})")
    ax.plot(b, arrays["predicted"], "-", color="#333333", lw=1.8, label="roofline prediction")
    ax.set(xlabel="batch (sequences)", ylabel="time per step")
    ax.set_xticks(b, [f"{v:g}" for v in b])  # the measured batch sizes themselves
    ax.xaxis.set_minor_formatter(NullFormatter())
    values = np.concatenate([arrays["low"], arrays["high"], arrays["predicted"]])
    ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
    if values.max() / values.min() < 100:  # within two decades, label the minor ticks at 2 and 5 too
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_2_5))
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=9, loc="upper left")


def latency_vs_throughput(ax, series: Mapping[str, Sequence[serving.ServingRun]], *, unit: str = "requests") -> None:
    """Latency percentiles against throughput: for each label of ``series`` (a sequence of
    :class:`~accelbook.models.serving.ServingRun`, say one per arrival rate), the p99 latency as a
    solid line with markers and the p50 as a dashed line of the same colour, against each run's
    throughput (requests/s, or output tokens/s with ``unit="tokens"``). Log-scaled latency axis in
    seconds. ``ValueError`` for an empty series or an unknown ``unit``.
    """
    _axes("ax", ax)
    checks.one_of("unit", unit, ("requests", "tokens"))
    if not isinstance(series, Mapping) or not series:
        raise ValueError(f"series={checks.show(series)} must be a non-empty mapping of label → runs")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
    for i, (label, runs) in enumerate(series.items()):
        runs = checks.sequence(f"series[{label!r}]", runs,
                               of=lambda n, r: checks.instance(n, r, serving.ServingRun))
        x = [r.throughput if unit == "requests" else r.token_throughput for r in runs]
        lat = np.array([np.percentile(r.latency, [50, 99]) for r in runs])
        color, marker = CYCLE[i % len(CYCLE)], MARKERS[i % len(MARKERS)]
        ax.plot(x, lat[:, 1], "-" + marker, color=color, ms=5, lw=1.8, label=f"{label}: p99")
        ax.plot(x, lat[:, 0], "--", color=color, lw=1.2)
    ax.set(xlabel=f"throughput ({unit}/s)", ylabel="latency (solid p99, dashed p50)")
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)  # below the axes, off the curves


def _sig3(x: float) -> str:
    """``x`` to three significant figures with thousands separators: 0.953, 12.3, 1,230."""
    return f"{float(f'{x:.3g}'):,g}"


class BatchingView(explore.View):
    """One server, live: ``update(rate, max_batch, max_wait, policy)`` simulates ``n`` requests
    arriving as a Poisson stream of ``rate`` requests/s and draws, on the left, the fraction of
    requests slower than each latency (log-log: p50 where the curve crosses 0.5, p99 where it
    crosses 0.01) and, on the right, the share of decode steps run at each batch size.

    ``step_time``: a :class:`~accelbook.models.serving.StepTable` or a step-time callable ``T(b)``
    (seconds) covering batches 1 to the largest ``max_batch`` offered; ``prefill_time`` likewise for
    prompt tokens, or None. ``prompt`` (tokens per request) is fixed; output lengths are geometric
    with mean ``mean_output`` tokens, drawn once as ``np.random.default_rng([seed, 7]).geometric(1 /
    mean_output, n)`` (:attr:`output`), and the arrivals are ``serving.arrival_times(n, 1.0,
    seed=seed) / rate`` (:attr:`unit` scaled): a chapter that draws the same reproduces its runs. ``latency_range`` (seconds, low < high)
    and ``max_batch_limit`` fix the axes, so every update changes only the curves, the percentile
    markers and the text. ``max_wait`` is used by the ``dynamic`` policy only (seconds). Latencies
    outside the axis are counted in the caption, not hidden. ``ValueError`` (``TypeError`` for a
    step time that is not callable) naming the argument that is out of range; :meth:`run` and
    :meth:`update` raise what :func:`~accelbook.models.serving.simulate` raises, naming the
    argument. Taught in: "Batching" (chapter 08).
    """

    def __init__(self, step_time, prefill_time=None, *, n: int = 2000, prompt: int = 32, mean_output: float = 32,
                 latency_range: Sequence[float], max_batch_limit: int, seed: int = 0, title: str = ""):
        self.step = checks.callable_("step_time", step_time)
        self.prefill = None if prefill_time is None else checks.callable_("prefill_time", prefill_time)
        self.n = checks.positive_int("n", n, maximum=100_000)
        self.prompt = checks.positive_int("prompt", prompt)
        mean_output = checks.real("mean_output", mean_output, minimum=1.0)
        self.seed = checks.nonneg_int("seed", seed)
        lo_hi = checks.sequence("latency_range", latency_range, of=lambda nm, v: checks.real(nm, v, positive=True))
        if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise ValueError(f"latency_range={checks.show(latency_range)} must be (low, high), 0 < low < high seconds")
        self.lo, self.hi = float(lo_hi[0]), float(lo_hi[1])
        self.kmax = checks.positive_int("max_batch_limit", max_batch_limit)
        self.unit = serving.arrival_times(self.n, 1.0, seed=self.seed)  # a rate-1 stream, scaled per update
        self.output = np.random.default_rng([self.seed, 7]).geometric(1.0 / mean_output, self.n)
        self.figure = fig = Figure(figsize=(7.0, 4.4))
        fig.subplots_adjust(left=0.11, right=0.97, bottom=0.14, top=0.80, wspace=0.32)
        self.ax, self.bax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        ax = self.ax
        log_axes(ax, "s", None)
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))  # '10,000 s', not '10 ks'
        ax.minorticks_off()
        ax.xaxis.set_major_locator(LogLocator(base=100.0))  # a label every two decades, so they do not touch
        ax.set(xlim=(self.lo, self.hi), ylim=(0.5 / self.n, 1.5), xlabel="latency, arrival to last token",
               ylabel="fraction of requests slower")
        for q in (0.5, 0.01):
            ax.axhline(q, color="grey", lw=0.8, ls=":")
            ax.text(self.lo * 1.1, q * 1.15, f"p{100 - 100 * q:g}", fontsize=10, color="grey")
        self.bax.set(xlim=(0.5, self.kmax + 0.5), ylim=(0, 1.05), xlabel="decode batch (sequences)",
                     ylabel="share of decode steps")
        (self.ccdf,) = ax.plot([self.lo], [1.0], "-", color=CYCLE[0], lw=2)
        (self.p50,) = ax.plot([self.lo], [0.5], "o", color=CYCLE[1], ms=7, mec="black", mew=0.8)
        (self.p99,) = ax.plot([self.lo], [0.01], "s", color=CYCLE[3], ms=7, mec="black", mew=0.8)
        (self.hist,) = self.bax.plot([1], [0], "-", color=CYCLE[2], lw=2, drawstyle="steps-mid")
        self.status = fig.text(0.5, 0.97, " ", ha="center", va="top", fontsize=10)
        if title:
            fig.text(0.5, 0.885, title, ha="center", va="top", fontsize=10, color="#444444")
        self.dynamic = [self.ccdf, self.p50, self.p99, self.hist, self.status]

    def run(self, rate: float, max_batch: int, max_wait: float, policy: str) -> serving.ServingRun:
        """The simulated run for these settings (``rate`` requests/s, ``max_wait`` seconds)."""
        rate = checks.real("rate", rate, positive=True)
        max_batch = checks.positive_int("max_batch", max_batch, maximum=self.kmax)
        checks.one_of("policy", policy, serving.POLICIES)
        req = serving.make_requests(self.unit / rate, prompt=self.prompt, output=self.output, seed=self.seed)
        extra = {"max_wait": max_wait} if policy == "dynamic" else {}
        return serving.simulate(req, self.step, policy=policy, max_batch=max_batch, prefill_time=self.prefill, **extra)

    def update(self, rate: float, max_batch: int, max_wait: float, policy: str):
        r = self.run(rate, max_batch, max_wait, policy)
        lat = np.sort(r.latency)
        slower = 1.0 - np.arange(1, lat.size + 1) / lat.size
        keep = slower > 0
        self.ccdf.set_data(np.clip(lat[keep], self.lo, self.hi), slower[keep])
        p50, p99 = np.percentile(r.latency, [50, 99])
        self.p50.set_data([min(max(p50, self.lo), self.hi)], [0.5])
        self.p99.set_data([min(max(p99, self.lo), self.hi)], [0.01])
        shares = np.bincount(r.batch_size, weights=r.batch_steps, minlength=self.kmax + 1)[1:self.kmax + 1]
        total = shares.sum()
        self.hist.set_data(np.arange(1, self.kmax + 1), shares / total if total > 0 else shares)
        wait = f", cap {fmt(max_wait, 's')}" if policy == "dynamic" else ""
        self.status.set_text(f"{policy}, {rate:g} requests/s, max batch {max_batch}{wait}\n"
                             f"p50 {fmt(p50, 's')}, p99 {fmt(p99, 's')}, "
                             f"{r.token_throughput:,.0f} tokens/s, mean batch {r.mean_batch:.1f}")
        outside = int(np.count_nonzero((r.latency < self.lo) | (r.latency > self.hi)))
        note = f" {outside} of {r.n} latencies fall outside the axis and are drawn at its edge." if outside else ""
        return (f"{policy} batching, {rate:g} requests/s, at most {max_batch} per batch{wait}: "
                f"p50 latency {fmt(p50, 's')}, p99 {fmt(p99, 's')}; throughput {_sig3(r.throughput)} requests/s "
                f"({r.token_throughput:,.0f} tokens/s); mean decode batch {r.mean_batch:.1f}; the server was busy "
                f"{100 * r.utilization:.0f} % of the time.{note}")


__all__ = ["BatchingView", "latency_vs_throughput", "measured_steps", "throughput_curves"]
