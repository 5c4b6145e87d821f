"""The matmul models of chapter 03: a fixed overhead plus the work at the peak, the useful fraction
of a padded tile, the spec-sheet peak a JAX matmul runs at, and the rounding error of a dtype.

One call of a square n × n matmul (``F = 2·n³`` FLOP) on a device with per-call overhead ``t0``
and sustained rate ``P``:

    t(F) = t0 + F / P          achieved rate F / t(F), half of P at F = t0 · P

:func:`fit_overhead_model` fits ``t0`` and ``P`` to measured times; :func:`chip_model` predicts them
for a chip of the spec database. Pure NumPy: the probes that time matmuls are in
:mod:`accelbook.measure`. Taught in: "The same matmul on every device" (chapter 03); the overhead
model is used again in "Overheads: launch, sync and Python" (05).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from accelbook import checks
from accelbook.checks import positive_int
from accelbook.specs import as_chip, check_dtype


MANTISSA_BITS = {"fp64": 52, "fp32": 23, "tf32": 10, "fp16": 10, "bf16": 7}
"""Explicitly stored mantissa (fraction) bits of each floating-point format (IEEE 754; TF32 and
bfloat16 as their designers define them). Taught in: "The same matmul on every device"."""


def unit_roundoff(dtype: str) -> float:
    """``2**-(mantissa bits + 1)``: the largest relative error of rounding one real number to
    ``dtype`` (round to nearest). bf16: 2**-8 ≈ 3.9e-3; fp32: 2**-24 ≈ 6.0e-8.

    Taught in: "The same matmul on every device" (the error each matmul precision gives).
    """
    check_dtype(dtype)
    if dtype not in MANTISSA_BITS:
        raise ValueError(f"dtype={dtype!r} is not a floating-point format; allowed: "
                         f"{', '.join(MANTISSA_BITS)}")
    return 2.0 ** -(MANTISSA_BITS[dtype] + 1)


def peak_dtype(chip, dtype: str, precision: str = "default") -> str | None:
    """Which spec-sheet peak of ``chip`` (a :class:`accelbook.specs.Chip`, or ``None`` for a chip
    the database does not know) a JAX matmul of ``dtype`` inputs runs at.

    JAX's documented precision rules (``jax.lax.Precision``): with 'default' precision, float32
    matmuls use TensorFloat-32 on NVIDIA GPUs that have it (Ampere and newer) and one bfloat16
    pass on TPUs. 'highest' asks for true fp32: the GPU's fp32 (SIMT) peak; a TPU emulates it
    with several bf16 passes and has no spec-sheet peak for it (returns None).
    Taught in: "The same matmul on every device" (chapter 03).
    """
    check_dtype(dtype)
    if precision not in ("default", "high", "highest"):
        raise ValueError(f"precision={precision!r} is not allowed; allowed: default, high, highest")
    chip = as_chip("chip", chip, none=True)
    if dtype != "fp32" or chip is None:
        return dtype
    if chip.kind == "tpu":
        return "bf16" if precision == "default" else None
    if chip.kind == "gpu" and precision != "highest" and "tf32" in chip.peak_flops:
        return "tf32"
    return "fp32"


@dataclasses.dataclass(frozen=True)
class OverheadModel:
    """Run time of one call: a fixed overhead plus the work at a constant rate,
    ``t(F) = t0 + F / peak`` (for a square matmul ``F = 2·n³``).

    ``t0`` (seconds) lumps dispatch, launch and synchronisation; ``peak`` (FLOP/s) is the rate
    the large calls approach. Taught in: "The same matmul on every device".
    """

    t0: float
    peak: float

    def __post_init__(self):
        checks.real("t0", self.t0, nonnegative=True)
        checks.real("peak", self.peak, positive=True)

    def seconds(self, flops):
        """Predicted seconds for calls of ``flops`` FLOP (scalar or array)."""
        return self.t0 + checks.real("flops", flops, nonnegative=True, allow_array=True) / self.peak

    def rate(self, flops):
        """Predicted achieved FLOP/s: ``F / (t0 + F / peak)``; half the peak at ``F = t0·peak``."""
        f = checks.real("flops", flops, nonnegative=True, allow_array=True)
        return f / self.seconds(f)

    @property
    def half_peak_flops(self) -> float:
        """FLOP per call at which the overhead equals the compute time (rate = peak / 2)."""
        return self.t0 * self.peak

    @property
    def n_half(self) -> float:
        """Square-matmul size n at which ``t0 = 2·n³ / peak``: ``(t0·peak / 2) ** (1/3)``."""
        return (self.half_peak_flops / 2.0) ** (1.0 / 3.0)


def fit_overhead_model(flops: Any, seconds: Any) -> OverheadModel:
    """Least-squares fit of ``t = t0 + F / peak`` to measured (FLOP, median seconds) pairs.

    The residuals are relative, ``(model − t) / t``, so the microsecond calls (which set t0)
    count as much as the long ones (which set the peak); the model is linear in (t0, 1/peak),
    so this is one weighted linear least-squares solve. If the best t0 would be negative, it is
    fixed at 0 and only the peak is fitted. Taught in: "The same matmul on every device".
    """
    f = checks.real("flops", flops, positive=True, allow_array=True)
    t = checks.real("seconds", seconds, positive=True, allow_array=True)
    if f.ndim != 1 or t.ndim != 1:
        raise ValueError(f"flops and seconds must be 1-D (got shapes {f.shape} and {t.shape})")
    if f.shape != t.shape or f.size < 2:
        raise ValueError(f"flops and seconds must have the same length >= 2 (got {f.size} and {t.size})")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(t)) and np.all(f > 0) and np.all(t > 0)):
        raise ValueError("flops and seconds must be finite and > 0")
    if np.unique(f).size < 2:
        raise ValueError(f"flops={checks.show(flops)} needs two different FLOP counts: t0 and the peak cannot be told apart")
    if not (np.all(np.isfinite(f / t)) and np.all(np.isfinite(1.0 / t))):
        raise ValueError("flops and seconds: the values are too extreme to fit (f/t or 1/t overflows)")
    design = np.column_stack([1.0 / t, f / t])
    (t0, inv_peak), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    if t0 < 0:
        t0, inv_peak = 0.0, float(np.sum(f / t) / np.sum((f / t) ** 2))
    if not inv_peak > 0:
        raise ValueError("the fit found no rate: run times do not grow with the FLOP count")
    return OverheadModel(float(t0), float(1.0 / inv_peak))


def padding_efficiency(m: int, n: int, k: int, tile: int) -> float:
    """Useful fraction of the work when every dimension of an (m, k) @ (k, n) matmul is padded up
    to a multiple of ``tile``: ``m·n·k / (⌈m/T⌉T · ⌈n/T⌉T · ⌈k/T⌉T)``.

    A systolic array or tensor-core tile of T × T does a whole tile of work even when the matrix
    edge fills only part of it: n = T + 1 costs as much as n = 2T. Taught in: "The same matmul on
    every device" (odd shapes).
    """
    dims = [positive_int(name, v) for name, v in (("m", m), ("n", n), ("k", k))]
    t = positive_int("tile", tile)
    padded = [-(-d // t) * t for d in dims]
    return float(np.prod(np.array(dims, float) / np.array(padded, float)))


@dataclasses.dataclass(frozen=True)
class Waves:
    """Wave quantization of a tiled GPU matmul: the (m, n) output cut into ``tiles`` tiles, one
    thread block (CTA) each, run ``sm_count`` at a time. ``waves`` is ``tiles / sm_count``; the
    last wave is partial unless it is a whole number, and costs as long as a full one.
    Taught in: "The same matmul on every device" (odd shapes on a GPU)."""

    tiles: int
    sm_count: int
    waves: float

    def __post_init__(self):
        checks.positive_int("tiles", self.tiles)
        checks.positive_int("sm_count", self.sm_count)
        checks.real("waves", self.waves, positive=True)

    @property
    def whole_waves(self) -> int:
        """``⌈tiles / sm_count⌉``: the waves the GPU really runs."""
        return -(-self.tiles // self.sm_count)

    @property
    def efficiency(self) -> float:
        """``waves / ⌈waves⌉``: the fraction of the SMs' time in the waves that does work."""
        return self.waves / self.whole_waves


def waves(m: int, n: int, sm_count: int, tile: tuple[int, int] = (128, 128)) -> Waves:
    """Tiles and waves of an (m, k) @ (k, n) matmul on a GPU with ``sm_count`` SMs, assuming one
    output tile of ``tile`` = (rows, columns) per thread block and one block per SM at a time:
    ``tiles = ⌈m/Tm⌉·⌈n/Tn⌉``, ``waves = tiles / sm_count``, run as ``⌈waves⌉`` whole waves.

    The tile is an assumption (cuBLAS picks one per shape); NVIDIA's matmul guide works the same
    example with 128 × 128 tiles. Taught in: "The same matmul on every device" (odd shapes).
    """
    m, n, sms = positive_int("m", m), positive_int("n", n), positive_int("sm_count", sm_count)
    if not (isinstance(tile, tuple) and len(tile) == 2):
        raise ValueError(f"tile={tile!r} must be a (rows, columns) pair of positive integers")
    tm, tn = positive_int("tile[0]", tile[0]), positive_int("tile[1]", tile[1])
    tiles = (-(-m // tm)) * (-(-n // tn))
    return Waves(tiles, sms, tiles / sms)


def chip_model(chip, dtype: str, *, t0: float, utilization: float = 1.0,
               precision: str = "default") -> OverheadModel | None:
    """The overhead model of a square matmul on a chip from the spec database (a prediction).

    The rate is ``utilization`` times the spec-sheet peak that a JAX matmul with ``dtype`` inputs
    and ``precision`` runs at (:func:`peak_dtype`: TF32 for fp32 on NVIDIA Ampere and newer, one
    bf16 pass on TPUs); ``t0`` (seconds) is an assumed per-call overhead. Returns ``None`` when the
    spec sheet has no such peak (fp32 at 'highest' on a TPU, bf16 on a T4). Taught in: "The same
    matmul on every device".
    """
    chip = as_chip("chip", chip)
    t0 = checks.real("t0", t0, nonnegative=True)
    utilization = checks.real("utilization", utilization, positive=True, maximum=1)
    runs_at = peak_dtype(chip, dtype, precision)
    if runs_at not in chip.peak_flops:
        return None
    return OverheadModel(float(t0), utilization * chip.peak_flops[runs_at])


__all__ = ["MANTISSA_BITS", "OverheadModel", "chip_model", "fit_overhead_model",
           "padding_efficiency", "peak_dtype", "unit_roundoff", "Waves", "waves"]
