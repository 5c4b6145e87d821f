"""Figures of chapter 03: measured matmul rates against the overhead model and a chip's prediction.

The records drawn come from :mod:`accelbook.measure` (``matmul``, :mod:`~accelbook.measure.sweeps`),
the models from :mod:`accelbook.models.matmul`; this module only draws them.
Taught in: "The same matmul on every device" (chapter 03).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from accelbook.plots.style import CYCLE, MARKERS, log_axes
from accelbook.units import fmt


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
    ``fit`` and ``pred``: :class:`accelbook.models.matmul.OverheadModel` (``pred`` None when the chip's
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


__all__ = ["matmul_vs_model", "measured_rates"]
