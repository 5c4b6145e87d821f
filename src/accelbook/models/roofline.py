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
from typing import Any

import numpy as np

from accelbook.checks import positive_int


def _positive(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name}={value!r} must be finite and > 0")
    return arr


def attainable(intensity, peak_flops: float, bandwidth: float):
    """``min(peak_flops, bandwidth · intensity)`` in FLOP/s, elementwise over ``intensity``.

    ``intensity`` in FLOP/byte (scalar or array, > 0), ``peak_flops`` in FLOP/s, ``bandwidth``
    in bytes/s.
    """
    i = _positive("intensity", intensity)
    p = _positive("peak_flops", peak_flops)
    w = _positive("bandwidth", bandwidth)
    out = np.minimum(p, w * i)
    return float(out) if out.ndim == 0 else out


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """``peak_flops / bandwidth``: the intensity (FLOP/byte) where the two ceilings meet."""
    return float(_positive("peak_flops", peak_flops) / _positive("bandwidth", bandwidth))


def min_time(flops: float, bytes_moved: float, peak_flops: float, bandwidth: float) -> float:
    """Roofline lower bound on run time, seconds: ``max(flops / peak_flops, bytes / bandwidth)``."""
    if flops < 0 or bytes_moved < 0:
        raise ValueError(f"flops={flops!r} and bytes_moved={bytes_moved!r} must be >= 0")
    if flops == 0 and bytes_moved == 0:
        raise ValueError("flops and bytes_moved cannot both be 0")
    return max(flops / float(_positive("peak_flops", peak_flops)),
               bytes_moved / float(_positive("bandwidth", bandwidth)))


def matmul_intensity(m: int, n: int, k: int, bytes_per_element: float = 4) -> float:
    """Intensity of C = A @ B with A (m, k), B (k, n), each matrix read or written once:

    ``2·m·n·k / (bytes_per_element · (m·k + k·n + m·n))``. For square n × n this is
    ``n · 2 / (3 · bytes_per_element)``: it grows with n, which is why big matmuls are compute-bound.
    """
    for name, v in (("m", m), ("n", n), ("k", k)):
        positive_int(name, v)
    b = float(_positive("bytes_per_element", bytes_per_element))
    return 2.0 * m * n * k / (b * (m * k + k * n + m * n))


def elementwise_intensity(flops_per_element: float, inputs: int = 2, outputs: int = 1,
                          bytes_per_element: float = 4) -> float:
    """Intensity of an elementwise op: ``flops_per_element / (bytes · (inputs + outputs))``.

    ``x + y`` in float32 is 1 / 12 FLOP/byte: far below every chip's ridge point.
    """
    if flops_per_element < 0:
        raise ValueError(f"flops_per_element={flops_per_element!r} must be >= 0")
    for name, v in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(v, int) or v < 0:
            raise ValueError(f"{name}={v!r} must be an integer >= 0")
    if inputs + outputs == 0:
        raise ValueError("inputs + outputs must be at least 1")
    return flops_per_element / (float(_positive("bytes_per_element", bytes_per_element)) * (inputs + outputs))


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The roofline's verdict on one kernel (``flops`` FLOP, ``bytes_moved`` bytes) on one chip.

    Taught in: "The roofline" (chapter 02).
    """

    flops: float
    bytes_moved: float
    peak_flops: float  # FLOP/s
    bandwidth: float  # bytes/s

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
        """FLOP per byte (``inf`` for a kernel that moves no bytes)."""
        return self.flops / self.bytes_moved if self.bytes_moved > 0 else float("inf")

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
    for name, v in (("d_in", d_in), ("d_out", d_out)):
        positive_int(name, v)
    b = float(_positive("bytes_per_element", bytes_per_element))
    br = b * ridge_point(peak_flops, bandwidth)
    denominator = 2.0 * d_in * d_out - br * (d_in + d_out)
    if denominator <= 0:
        return None
    m = max(1, int(np.ceil(br * d_in * d_out / denominator)))
    while m > 1 and matmul_intensity(m - 1, d_out, d_in, b) >= br / b:  # guard against rounding
        m -= 1
    while matmul_intensity(m, d_out, d_in, b) < br / b:
        m += 1
    return m


def square_matmul_crossover(peak_flops: float, bandwidth: float, bytes_per_element: float = 2) -> float:
    """Size ``n`` at which a square n × n matmul reaches the ridge: ``n* = 1.5 · b · P / W``.

    From ``2n / (3b) = P / W`` (each matrix read or written once). Smaller squares are
    bandwidth-bound on this chip, larger ones compute-bound. Taught in: "The roofline" (chapter 02).
    """
    b = float(_positive("bytes_per_element", bytes_per_element))
    return 1.5 * b * ridge_point(peak_flops, bandwidth)


@dataclasses.dataclass(frozen=True)
class RidgeRow:
    """One chip's ceilings for one dtype (a row of the ridge-point table in chapter 02)."""

    chip: Any  # an accelbook.specs.Chip
    dtype: str
    peak_flops: float  # FLOP/s
    bandwidth: float  # bytes/s

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
    if isinstance(dtypes, str) or not dtypes:
        raise ValueError(f"dtypes={dtypes!r} must be a non-empty tuple of dtype names")
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
    for i, op in enumerate(ops):
        try:
            key = (op.kind, op.shape, op.flops, op.bytes)
        except AttributeError:
            raise TypeError(f"ops[{i}]={op!r} must have kind, shape, flops and bytes "
                            "(an op of accelbook.models.decoder.layer_ops)") from None
        groups.setdefault(key, []).append(op)
    return [(" + ".join(o.name for o in same), same[0], len(same)) for same in groups.values()]


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
    rows = list(rows)
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


__all__ = ["PRODUCT_LINES", "Prediction", "RidgeRow", "attainable", "elementwise_intensity", "generation_growth",
           "group_ops",
           "matmul_intensity", "min_batch_for_compute_bound", "min_time", "predict", "ridge_point",
           "ridge_table", "square_matmul_crossover"]
