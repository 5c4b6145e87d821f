"""The roofline model: attainable throughput as a function of arithmetic intensity.

A kernel that performs ``F`` FLOP and moves ``Q`` bytes to and from device memory has arithmetic
intensity ``I = F / Q`` (FLOP per byte). On a chip with peak compute ``P`` (FLOP/s) and memory
bandwidth ``W`` (bytes/s) it cannot run faster than

    attainable(I) = min(P, W · I)          time ≥ max(F / P, Q / W)

The ridge point ``I* = P / W`` separates bandwidth-bound (I < I*) from compute-bound kernels.
Reference: Williams, Waterman and Patterson, "Roofline", CACM 2009.

Pure NumPy. What XLA says a JAX program's ``F`` and ``Q`` are lives in
:mod:`accelbook.measure.roofline`. Taught in: "The roofline" (chapter 02).
"""

from __future__ import annotations

import dataclasses
import fractions
import math
from typing import Any

import numpy as np

from accelbook import checks
from accelbook.checks import positive_int


def _positive(name: str, value: Any) -> np.ndarray:
    return checks.real(name, value, positive=True, allow_array=True)


def _scalar(name: str, value: Any, **bounds) -> float:
    return checks.real(name, value, **bounds)


def _dtype(name: str, value: Any) -> str:
    from accelbook.specs import DTYPES

    return checks.one_of(name, value, DTYPES)


def attainable(intensity, peak_flops: float, bandwidth: float):
    """``min(peak_flops, bandwidth · intensity)`` in FLOP/s, elementwise over ``intensity``.

    ``intensity`` in FLOP/byte (scalar or array, > 0), ``peak_flops`` in FLOP/s, ``bandwidth``
    in bytes/s.
    """
    i = _positive("intensity", intensity)
    p = _scalar("peak_flops", peak_flops, positive=True)
    w = _scalar("bandwidth", bandwidth, positive=True)
    out = np.minimum(p, w * i)
    return float(out) if out.ndim == 0 else out


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """``peak_flops / bandwidth``: the intensity (FLOP/byte) where the two ceilings meet."""
    p, w = _scalar("peak_flops", peak_flops, positive=True), _scalar("bandwidth", bandwidth, positive=True)
    return checks.finite_result({"peak_flops": peak_flops, "bandwidth": bandwidth}, p / w)


def min_time(flops: float, bytes_moved: float, peak_flops: float, bandwidth: float) -> float:
    """Roofline lower bound on run time, seconds: ``max(flops / peak_flops, bytes / bandwidth)``."""
    f = _scalar("flops", flops, nonnegative=True)
    q = _scalar("bytes_moved", bytes_moved, nonnegative=True)
    if f == 0 and q == 0:
        raise ValueError("flops=0 and bytes_moved=0: they cannot both be 0")
    p, w = _scalar("peak_flops", peak_flops, positive=True), _scalar("bandwidth", bandwidth, positive=True)
    return checks.finite_result({"flops": flops, "bytes_moved": bytes_moved, "peak_flops": peak_flops,
                                 "bandwidth": bandwidth}, max(f / p, q / w))


def matmul_intensity(m: int, n: int, k: int, bytes_per_element: float = 4) -> float:
    """Intensity of C = A @ B with A (m, k), B (k, n), each matrix read or written once:

    ``2·m·n·k / (bytes_per_element · (m·k + k·n + m·n))``. For square n × n this is
    ``n · 2 / (3 · bytes_per_element)``: it grows with n, which is why big matmuls are compute-bound.
    """
    m, n, k = (positive_int(name, v) for name, v in (("m", m), ("n", n), ("k", k)))
    b = _scalar("bytes_per_element", bytes_per_element, positive=True)
    return 2.0 * m * n * k / (b * (m * k + k * n + m * n))


def elementwise_intensity(flops_per_element: float, inputs: int = 2, outputs: int = 1,
                          bytes_per_element: float = 4) -> float:
    """Intensity of an elementwise op: ``flops_per_element / (bytes · (inputs + outputs))``.

    ``x + y`` in float32 is 1 / 12 FLOP/byte: far below every chip's ridge point.
    """
    flops_per_element = _scalar("flops_per_element", flops_per_element, nonnegative=True)
    inputs, outputs = checks.nonneg_int("inputs", inputs), checks.nonneg_int("outputs", outputs)
    if inputs + outputs == 0:
        raise ValueError("inputs=0 and outputs=0: inputs + outputs must be at least 1")
    return flops_per_element / (_scalar("bytes_per_element", bytes_per_element, positive=True) * (inputs + outputs))


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The roofline's verdict on one kernel (``flops`` FLOP, ``bytes_moved`` bytes) on one chip.

    Taught in: "The roofline" (chapter 02).
    """

    flops: float
    bytes_moved: float
    peak_flops: float  # FLOP/s
    bandwidth: float  # bytes/s

    def __post_init__(self):
        for name in ("flops", "bytes_moved"):
            _scalar(name, getattr(self, name), nonnegative=True)
        for name in ("peak_flops", "bandwidth"):
            _scalar(name, getattr(self, name), positive=True)
        if self.flops == 0 and self.bytes_moved == 0:
            raise ValueError("flops=0 and bytes_moved=0: they cannot both be 0")

    @property
    def compute_time(self) -> float:
        """``flops / peak_flops``, seconds: the time if bandwidth were infinite."""
        return self.flops / self.peak_flops

    @property
    def memory_time(self) -> float:
        """``bytes_moved / bandwidth``, seconds: the time if compute were infinite."""
        return self.bytes_moved / self.bandwidth

    @property
    def time(self) -> float:
        """Lower bound on run time, seconds: ``max(compute_time, memory_time)``."""
        return max(self.compute_time, self.memory_time)

    @property
    def intensity(self) -> float:
        """FLOP per byte; ``ValueError`` for a kernel that moves no bytes (its intensity is undefined)."""
        if self.bytes_moved <= 0:
            raise ValueError(f"bytes_moved={self.bytes_moved!r}: the kernel moves no memory, "
                             "its intensity is undefined")
        return self.flops / self.bytes_moved

    @property
    def bound(self) -> str:
        """``'compute'`` if ``compute_time >= memory_time``, else ``'bandwidth'``."""
        return "compute" if self.compute_time >= self.memory_time else "bandwidth"

    @property
    def attainable(self) -> float:
        """Throughput at the bound, FLOP/s: ``flops / time`` = ``min(peak, bandwidth · I)``."""
        return self.flops / self.time

    @property
    def fraction_of_peak(self) -> float:
        """``attainable / peak_flops``: the best utilization this kernel can reach on this chip."""
        return self.attainable / self.peak_flops


def predict(flops: float, bytes_moved: float, peak_flops: float, bandwidth: float) -> Prediction:
    """Roofline prediction (time, bound, attainable FLOP/s) for one kernel on one chip.

    ``flops`` in FLOP and ``bytes_moved`` in bytes (both >= 0, not both 0), ``peak_flops`` in
    FLOP/s, ``bandwidth`` in bytes/s. Taught in: "The roofline" (chapter 02).
    """
    min_time(flops, bytes_moved, peak_flops, bandwidth)  # validates every argument
    return Prediction(float(flops), float(bytes_moved), float(peak_flops), float(bandwidth))


def min_batch_for_compute_bound(d_in: int, d_out: int, peak_flops: float, bandwidth: float,
                                bytes_per_element: float = 2) -> int | None:
    """Smallest batch ``m`` for which ``(m, d_in) @ (d_in, d_out)`` is compute-bound on a chip.

    The matmul's intensity ``2·m·d_in·d_out / (b·(m·d_in + d_in·d_out + m·d_out))`` reaches the
    ridge ``R = peak_flops / bandwidth`` when

        m ≥ b·R·d_in·d_out / (2·d_in·d_out − b·R·(d_in + d_out)).

    As m grows the intensity approaches ``2·d_in·d_out / (b·(d_in + d_out))``; if that limit is
    not above ``R``, no batch is large enough and the function returns ``None``.
    Taught in: "The roofline" (chapter 02); used again where batching is taught.
    """
    d_in, d_out = positive_int("d_in", d_in), positive_int("d_out", d_out)
    b = _scalar("bytes_per_element", bytes_per_element, positive=True)
    br = b * ridge_point(peak_flops, bandwidth)
    if not math.isfinite(br):
        raise ValueError(f"bytes_per_element={bytes_per_element!r}, peak_flops={peak_flops!r}, "
                         f"bandwidth={bandwidth!r}: b·P/W overflows")
    # Exact rational arithmetic on the float inputs: m·(2·d_in·d_out − bR·(d_in + d_out)) ≥ bR·d_in·d_out
    exact = fractions.Fraction(br)
    denominator = 2 * d_in * d_out - exact * (d_in + d_out)
    if denominator <= 0:
        return None
    m = max(1, math.ceil(exact * d_in * d_out / denominator))
    if m > checks.MAX_INT:
        raise ValueError(f"d_in={d_in}, d_out={d_out}, peak_flops={peak_flops!r}, bandwidth={bandwidth!r}: "
                         f"the batch needed ({m:.3g}) is above 2**53")
    return m


def square_matmul_crossover(peak_flops: float, bandwidth: float, bytes_per_element: float = 2) -> float:
    """Size ``n`` at which a square n × n matmul reaches the ridge: ``n* = 1.5 · b · P / W``.

    From ``2n / (3b) = P / W`` (each matrix read or written once). Smaller squares are
    bandwidth-bound on this chip, larger ones compute-bound. Taught in: "The roofline" (chapter 02).
    """
    b = _scalar("bytes_per_element", bytes_per_element, positive=True)
    return checks.finite_result({"bytes_per_element": bytes_per_element, "peak_flops": peak_flops,
                                 "bandwidth": bandwidth}, 1.5 * b * ridge_point(peak_flops, bandwidth))


@dataclasses.dataclass(frozen=True)
class RidgeRow:
    """One chip's ceilings for one dtype (a row of the ridge-point table in chapter 02)."""

    chip: Any  # an accelbook.specs.Chip
    dtype: str
    peak_flops: float  # FLOP/s
    bandwidth: float  # bytes/s

    def __post_init__(self):
        if self.chip is None or isinstance(self.chip, (str, int, float)):  # a Chip or a stand-in with its fields
            raise TypeError(f"chip={self.chip!r} must be an accelbook.specs.Chip")
        _dtype("dtype", self.dtype)
        _scalar("peak_flops", self.peak_flops, positive=True)
        _scalar("bandwidth", self.bandwidth, positive=True)

    @property
    def ridge(self) -> float:
        """``peak_flops / bandwidth`` in FLOP/byte."""
        return self.peak_flops / self.bandwidth


def ridge_table(chip_list: Any, dtypes: tuple[str, ...] = ("bf16",)) -> list[RidgeRow]:
    """Ridge points of every chip in ``chip_list`` that has a memory bandwidth and a peak for one
    of ``dtypes`` (the first one it has is used), sorted by ridge point, lowest first.

    ``dtypes=("bf16", "fp16")`` lets a chip without bfloat16 (the T4, the V100) enter with its
    fp16 peak; the row's ``dtype`` says which was used. Taught in: "The roofline" (chapter 02).
    """
    from accelbook.specs import Chip

    if isinstance(dtypes, str) or not dtypes:
        raise ValueError(f"dtypes={dtypes!r} must be a non-empty tuple of dtype names")
    checks.sequence("dtypes", dtypes, of=_dtype)
    chip_list = checks.sequence("chip_list", chip_list, nonempty=False,
                                of=lambda name, c: checks.instance(name, c, Chip))
    rows = []
    for chip in chip_list:
        bandwidth = chip.memory_bandwidth
        dtype = next((d for d in dtypes if d in chip.peak_flops), None)
        if bandwidth and dtype is not None:
            rows.append(RidgeRow(chip, dtype, chip.peak_flops[dtype], bandwidth))
    return sorted(rows, key=lambda r: (r.ridge, r.chip.name))


def group_ops(ops: Any) -> list[tuple[str, Any, int]]:
    """Ops with the same kind, shape, FLOP and bytes merged into one row: ``(names, op, how many)``.

    ``ops`` are records with ``name``, ``kind``, ``shape``, ``flops`` and ``bytes`` (say the ops
    of :func:`accelbook.models.decoder.layer_ops`); the rows keep the order in which each group
    first appears and ``names`` joins the names with " + ". A layer's two norms or its two residual
    adds become one row each. Taught in: "The roofline" (chapter 02), the running example.
    """
    groups: dict[tuple, list] = {}
    for i, op in enumerate(checks.sequence("ops", ops, nonempty=False)):
        try:
            key = (op.kind, op.shape, op.flops, op.bytes)
        except AttributeError:
            raise TypeError(f"ops[{i}]={op!r} must have kind, shape, flops and bytes "
                            "(an op of accelbook.models.decoder.layer_ops)") from None
        groups.setdefault(key, []).append(op)
    return [(" + ".join(o.name for o in same), same[0], len(same)) for same in groups.values()]


def above_roof_reason(intensity: float, achieved: float, peak_flops: float, bandwidth: float,
                      measured: bool, computed_peak: float | None = None) -> str | None:
    """Why a measured point lies above the roofline, in words, or None when it does not.

    ``achieved`` FLOP/s at ``intensity`` FLOP/byte against ``min(peak_flops, bandwidth · I)``.
    Below the ridge the memory roof is the one exceeded: part of the data came from a cache
    (and, for ``measured`` ceilings, the load may have changed since the roof was measured).
    Above it the compute roof is: a measured peak came from an earlier run under another load; a
    spec-sheet peak cannot be beaten, so the kernel did less work than the count says. Every
    utilization above 100 % in chapter 02 is shown with this reason beside it.

    ``computed_peak`` (FLOP/s, optional, with ``measured``): a CPU's peak computed from its cores,
    FMA units, lanes and clock. A measured peak is only a lower bound (the best of a few rounds),
    so a point above it but not above ``computed_peak`` is possible; one above ``computed_peak``
    too is timing noise (or cores running faster than the clock assumed).
    Taught in: "The roofline" (chapter 02), its measured operations.
    """
    if not checks.is_bool(measured):
        raise TypeError(f"measured={measured!r} must be True (measured ceilings) or False (spec sheet)")
    intensity = _scalar("intensity", intensity, positive=True)
    achieved = _scalar("achieved", achieved, positive=True)
    if achieved <= attainable(intensity, peak_flops, bandwidth):
        return None
    if intensity < ridge_point(peak_flops, bandwidth):
        return ("part of its data came from a cache, or the load changed since the roof was measured"
                if measured else "part of its data came from the on-chip cache")
    if not measured:
        return "XLA counts more FLOP than the kernel does"
    if computed_peak is not None:
        computed_peak = _scalar("computed_peak", computed_peak, positive=True)
        if achieved <= computed_peak:
            return (f"the measured peak is only a lower bound, the best of a few rounds; the point is "
                    f"{100 * achieved / computed_peak:.0f} % of the computed peak")
        return "it is above even the computed peak: timing noise, or cores running faster than the clock assumed"
    return "the peak was measured in an earlier run, under another load"


PRODUCT_LINES: dict[str, tuple[str, ...]] = {
    "NVIDIA data-center flagships": ("v100-sxm2", "a100-80gb", "h100-sxm", "b200"),
    "NVIDIA low-power inference cards": ("t4", "l4"),
    "Google TPU flagships": ("tpu-v2", "tpu-v3", "tpu-v4", "tpu-v5p"),
    "Google efficiency TPUs": ("tpu-v5e", "tpu-v6e"),
}
"""Product lines of the spec database (chip keys, oldest first): growth is compared like for like
within one line, flagship to flagship, never from a training flagship to a cost-optimized part."""


def generation_growth(rows: list[RidgeRow], lines: dict[str, Any] | None = None
                      ) -> list[tuple[str, RidgeRow, RidgeRow]]:
    """(line, its oldest row, its newest row) for each product line with rows from two years or more.

    ``lines`` maps a line's name to the chip keys it holds (default :data:`PRODUCT_LINES`); the
    result keeps its order. Oldest and newest go by the chip's year; within a year the higher peak
    counts as newer (the flagship). A line with fewer than two years among ``rows`` is left out:
    it shows no growth. ``lines={}`` gives nothing; pass ``lines=None`` for the default.
    Taught in: "The roofline" (chapter 02), where peak and bandwidth growth are compared.
    """
    rows = checks.sequence("rows", rows, nonempty=False)
    for i, r in enumerate(rows):
        if not isinstance(r, RidgeRow):
            raise TypeError(f"rows[{i}]={r!r} must be a RidgeRow (from ridge_table)")
    lines = PRODUCT_LINES if lines is None else lines
    if not isinstance(lines, dict):
        raise TypeError(f"lines={lines!r} must be a dict of line name -> chip keys")
    out = []
    for name, keys in lines.items():
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"lines[{name!r}]={keys!r} must be a sequence of chip keys")
        mine = sorted((r for r in rows if r.chip.key in set(keys)), key=lambda r: (r.chip.year, r.peak_flops))
        if mine and mine[-1].chip.year > mine[0].chip.year:
            out.append((name, mine[0], mine[-1]))
    return out


__all__ = ["PRODUCT_LINES", "Prediction", "RidgeRow", "above_roof_reason", "attainable", "elementwise_intensity", "generation_growth",
           "group_ops",
           "matmul_intensity", "min_batch_for_compute_bound", "min_time", "predict", "ridge_point",
           "ridge_table", "square_matmul_crossover"]
