"""Figures of chapter 03: measured matmul rates against the overhead model and a chip's prediction.

The records drawn come from :mod:`accelbook.measure` (``matmul``, :mod:`~accelbook.measure.sweeps`),
the models from :mod:`accelbook.models.matmul`; this module only draws them. Taught in: "The same matmul on every device" (chapter 03).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from accelbook import explore
from accelbook.models import matmul
from accelbook import checks
from accelbook.plots.style import CYCLE, MARKERS, _axes, log_axes


def _record(name, r):
    """A matmul result: ``n``, ``flops`` and ``flop_per_s`` > 0 and a ``timing`` with p10/p90."""
    try:
        for field in (r.n, r.flops, r.flop_per_s, r.timing.p10, r.timing.p90):
            checks.real(name, field, positive=True)
    except AttributeError:
        raise TypeError(f"{name}={checks.show(r)} must be a matmul result (n, flops, flop_per_s, timing)") from None
    return r
from accelbook.units import fmt


def measured_rates(ax, records: Sequence, *, color: str, marker: str, label: str):
    """Median achieved FLOP/s of matmul ``records`` against n, with p10–p90 error bars; returns
    matplotlib's ``ErrorbarContainer``.

    The bars come from the timing percentiles: the slowest runs (p90 time) give the lowest rate.
    Taught in: "The same matmul on every device".
    """
    _axes("ax", ax)
    records = checks.sequence("records", records, of=_record)
    for name, value in (("color", color), ("marker", marker), ("label", label)):
        checks.text(name, value)
    rate = np.array([r.flop_per_s for r in records])
    lo = np.array([r.flops / r.timing.p90 for r in records])
    hi = np.array([r.flops / r.timing.p10 for r in records])
    return ax.errorbar([r.n for r in records], rate, yerr=[rate - lo, hi - rate], color=color, marker=marker,
                       capsize=3, label=label)


def _log_margins(lo: float, hi: float, fraction: float = 0.05) -> tuple[float, float]:
    """``(lo, hi)`` widened by ``fraction`` of their log range on each side (matplotlib's margins)."""
    pad = (hi / lo) ** fraction
    return lo / pad, hi * pad


def _draw_order(ax, artists) -> list:
    """``artists`` in the order ``ax`` draws them (by z-order, then as added): the blitting order
    that reproduces a full drawing."""
    place = {id(a): i for i, a in enumerate(ax.get_children())}
    return sorted(artists, key=lambda a: (a.get_zorder(), place.get(id(a), len(place))))


class MatmulModelView(explore.View):
    """This device's measured matmul rates, their fitted overhead model and a chip's predicted curve,
    for the explorable ``mm-model``; ``update(run, n, chip, utilization, t0)``.

    ``runs``: ``{(dtype, precision): records}`` (each record with ``n``, ``flops``, ``flop_per_s``,
    ``timing``); ``fits``: the fitted :class:`~accelbook.models.matmul.OverheadModel` per run;
    ``chips``: the spec-database chips on offer (``chip`` is a key). The chip's curve is
    :func:`accelbook.models.matmul.chip_model`: its spec-sheet peak for the run's dtype and
    precision times ``utilization``, plus ``t0`` (seconds) per call. ``n`` rings the measured point
    of that size. A run's colour and marker follow its dtype's first appearance in ``runs``.

    The axes are fixed: they hold every run's measurements and fit, and every chip's peak and curve
    for every ``t0`` in ``t0_values`` and utilization in ``utilizations`` (the values the controls
    offer), so the picture behind the data never changes and frames compare at a glance. Every
    data artist, the legend and the title are dynamic. Taught in: "The same matmul on every
    device", its explorable figure.
    """

    def __init__(self, runs: Mapping[tuple[str, str], Sequence], fits: Mapping, chips: Sequence, *,
                 device_label: str, t0_values: Sequence[float], utilizations: Sequence[float] = (1.0,),
                 n_axis: Sequence[float] | None = None, figsize: tuple[float, float] = (7.0, 4.2)):
        self.runs = {run: list(records) for run, records in runs.items()}
        missing = [run for run in self.runs if run not in fits]
        if not self.runs or missing:
            raise ValueError(f"every run needs records and a fit; no fit for {missing}")
        self.fits, self.chips, self.device_label = fits, {c.key: c for c in chips}, device_label
        self.n_axis = np.geomspace(16, 32768, 200) if n_axis is None else np.asarray(n_axis, dtype=float)
        flops = 2 * self.n_axis**3
        dtypes = list(dict.fromkeys(d for d, _p in self.runs))
        self.figure = Figure(figsize=figsize, layout="constrained")
        ax = self.ax = self.figure.add_subplot()
        self.measured = {}  # run -> (its ErrorbarContainer, the artists drawn for it)
        for (dtype, precision), records in self.runs.items():
            i = dtypes.index(dtype)
            bars = measured_rates(ax, records, color=CYCLE[i % len(CYCLE)], marker=MARKERS[i % len(MARKERS)],
                                  label=f"{dtype} ({precision}), measured on {device_label}")
            self.measured[dtype, precision] = (bars, [a for a in bars.get_children() if a is not None])
        (self.fit_line,) = ax.plot(self.n_axis, np.ones_like(self.n_axis), ls=":", label="its fitted model")
        (self.ring,) = ax.plot([1], [1], "o", ms=14, mfc="none", mec="black", mew=2)
        (self.pred_line,) = ax.plot(self.n_axis, np.ones_like(self.n_axis), "k--")
        self.peak_line = ax.axhline(1, color="black", lw=0.8)
        # fixed limits: everything any setting of the controls can show
        t0_max, u_min = max(t0_values), min(utilizations)
        lows, highs = [], []
        for run, records in self.runs.items():
            lows += [r.flops / r.timing.p90 for r in records] + [float(fits[run].rate(flops[0]))]
            highs += [r.flops / r.timing.p10 for r in records] + [float(fits[run].rate(flops[-1]))]
            for chip in self.chips.values():
                slowest = matmul.chip_model(chip, run[0], t0=t0_max, utilization=u_min, precision=run[1])
                if slowest is not None:
                    lows.append(float(slowest.rate(flops[0])))
                    highs.append(slowest.peak / u_min)  # the spec-sheet peak
        x_lo, x_hi = _log_margins(self.n_axis[0], self.n_axis[-1])
        log_axes(ax, y_unit="FLOP/s")
        ax.set(xlim=(x_lo, x_hi), ylim=_log_margins(min(lows), max(highs)),
               xlabel="matrix size n", ylabel="rate (FLOP/s)")
        # The title is dynamic, so it takes no part in the layout: a blank axes title of two lines
        # holds its place, and the title is drawn at its height, centred on the figure (the longest
        # chip names fit in the figure's width, not in the axes').
        ax.set_title("Mg(|)\nMg(|)", color="none")
        where = blended_transform_factory(self.figure.transFigure, ax.title.get_transform())
        self.title = self.figure.text(0.5, 1.0, " \n ", transform=where, ha="center", va="baseline",
                                      fontsize=mpl.rcParams["axes.titlesize"])
        self.stamps = explore.TextStamps()  # the title and legend are redrawn on every frame: keep their lines
        self.stamps.attach(self.title)
        self.legend = None
        self._legend_key = None

    def update(self, run, n, chip, utilization, t0):
        run = tuple(run)
        records, fit = self.runs[run], self.fits[run]
        here = next((r for r in records if r.n == n), None)
        if here is None:
            raise ValueError(f"n={n!r} is not one of the measured sizes {[r.n for r in records]}")
        dtype, precision = run
        chip = self.chips[chip]
        pred = matmul.chip_model(chip, dtype, t0=t0, utilization=utilization, precision=precision)
        bars = self.measured[run][0]
        for other, (_b, arts) in self.measured.items():
            for a in arts:
                a.set_visible(other == run)
        flops = 2 * self.n_axis**3
        self.fit_line.set_ydata(fit.rate(flops))
        self.fit_line.set_color(bars.lines[0].get_color())
        self.ring.set_data([n], [here.flop_per_s])
        self.ring.set_label(f"n = {n}")
        title = f"{self.device_label}, n = {n}: {fmt(here.timing.median, 's')} measured\n"
        handles = [self.fit_line, self.ring]
        self.pred_line.set_visible(pred is not None)
        self.peak_line.set_visible(pred is not None)
        if pred is None:
            title += f"{chip.name}: no spec-sheet peak for {dtype} at precision '{precision}'"
        else:
            self.pred_line.set_ydata(pred.rate(flops))
            self.pred_line.set_label(f"{chip.name}: model, {100 * utilization:.0f} % of peak")
            self.peak_line.set_ydata([pred.peak / utilization] * 2)
            self.peak_line.set_label(f"{chip.name}: spec-sheet peak")
            title += f"{chip.name}, predicted by the model: {fmt(float(pred.seconds(2 * n**3)), 's')}"
            handles += [self.pred_line, self.peak_line]
        self.title.set_text(title)
        handles.append(bars)
        key = (run, n, chip.key, utilization, pred is None)
        if key != self._legend_key:  # entries (or colours) changed: a new legend
            self.legend = self.stamps.attach(self.ax.legend(handles, [h.get_label() for h in handles],
                                                            fontsize=9, loc="lower right"), frozen=True)
            self._legend_key = key
        drawn = [a for arts in (a for _b, a in self.measured.values()) for a in arts]
        self.dynamic = _draw_order(self.ax, drawn + [self.fit_line, self.ring, self.pred_line, self.peak_line,
                                                     self.legend]) + [self.title]
        return self.caption(here, chip, pred, t0, fit)

    def caption(self, here, chip, pred, t0, fit) -> str:
        """The lesson of the current setting, first: how much faster the chip's model is than the
        time measured here at this n, which term sets each time, and where the chip's model reaches
        half its peak.

        The reason given is decided term by term, not by the ratio alone: the chip's time is set
        by ``t0`` when ``t0`` is at least its work ``F / (U·P)``, and this device's by its fitted
        ``t0`` or its fitted work ``F / P`` (``fit``, the run's fitted overhead model), whichever
        is larger."""
        n, measured = here.n, here.timing.median
        if pred is None:
            return (f"{chip.name} has no spec-sheet peak for {here.dtype} at precision '{here.precision}', so "
                    f"only what {self.device_label} measured is drawn.")
        predicted = float(pred.seconds(2.0 * n**3))
        ratio = measured / predicted
        head = (f"At n = {n} and t0 = {fmt(t0, 's')}, the model puts the {chip.name} at {fmt(predicted, 's')} per "
                f"call against {fmt(measured, 's')} measured on {self.device_label}: ")
        flops = 2.0 * n**3
        chip_work, here_work = flops / pred.peak, flops / fit.peak
        chip_t0_sets = t0 >= chip_work  # the chip's time is mostly its overhead
        here_t0_sets = fit.t0 >= here_work
        if ratio < 1:
            head += (f"the {chip.name} would be {1 / ratio:.1f}× slower than this device, because the assumed t0 "
                     f"is longer than this device's whole call.")
        elif ratio < 2:
            head += (f"the {chip.name} is hardly faster ({ratio:.1f}×)" + (
                ": overhead sets both times." if chip_t0_sets and here_t0_sets else
                ": t0 sets the chip's time." if chip_t0_sets else "."))
        elif chip_t0_sets:
            head += (f"the {chip.name} would be {ratio:.0f}× faster, although t0 is almost all of its time (its "
                     f"work takes {fmt(chip_work, 's')}): the gap is " + (
                         f"this device's own overhead, a fitted t0 of {fmt(fit.t0, 's')}, longer than the assumed one."
                         if here_t0_sets else
                         f"this device's own work, {fmt(here_work, 's')} at its fitted rate (n = {n} is past its "
                         f"n½ ≈ {fit.n_half:.0f})."))
        else:
            head += (f"the {chip.name} would be {ratio:.0f}× faster, because at this size its peak, not t0, sets "
                     f"its time ({fmt(chip_work, 's')} of work).")
        return head + f" Its model reaches half its peak at n ≈ {pred.n_half:.0f}."


__all__ = ["MatmulModelView", "measured_rates"]
