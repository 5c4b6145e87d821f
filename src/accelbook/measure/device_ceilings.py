"""This device's two roofline ceilings (peak FLOP/s and memory bandwidth): from the spec sheet, or
measured.

On a GPU or TPU the ceilings come from the chip's cited spec sheet in the database
(:mod:`accelbook.device` finds the chip). On a CPU, or on a device the database does not know, no
spec sheet applies: the ceilings are measured with the harness (:mod:`accelbook.measure.harness`)
and labelled as measured. :mod:`accelbook.measure` re-exports everything here, so a chapter writes
``measure.ceilings("fp32")``.

Taught in: "Introduction" (what is this machine?) and every chapter's measurement section.
"""

from __future__ import annotations

import dataclasses
import functools

from accelbook.device import DeviceInfo, current, matmul_peak_dtype
from accelbook.measure.harness import default_matmul_sizes, default_triad_elements, matmul, triad
from accelbook.specs import check_dtype


@dataclasses.dataclass(frozen=True)
class Ceilings:
    """The two roofline ceilings of one device for one dtype."""

    peak_flops: float  # FLOP/s
    memory_bandwidth: float  # bytes/s
    dtype: str
    source: str  # 'spec sheet' or 'measured'
    label: str  # e.g. 'NVIDIA L4 (spec sheet, tf32)' or 'this CPU (measured, fp32)'

    @property
    def ridge_point(self) -> float:
        """FLOP per byte where the two ceilings meet."""
        return self.peak_flops / self.memory_bandwidth


def ceilings(dtype: str = "fp32", info: DeviceInfo | None = None, precision: str = "default") -> Ceilings:
    """Peak FLOP/s and memory bandwidth for matmuls of ``dtype`` on ``info`` (default: this device).

    From the spec sheet when the database has the chip; otherwise measured on this device with
    :func:`measured_peak` (the best of a few large matmuls at ``precision``) and
    :func:`measured_bandwidth` (a STREAM triad). An unknown GPU is measured at its real default
    precision, so an Ampere-or-newer GPU missing from the database reports its TF32 rate.
    """
    info = current() if info is None else info
    check_dtype(dtype)
    peak_dtype = matmul_peak_dtype(info, dtype, precision)
    if info.has_spec_sheet and peak_dtype in info.chip.peak_flops:
        return Ceilings(info.chip.peak_flops[peak_dtype], info.chip.memory_bandwidth, peak_dtype,
                        "spec sheet", f"{info.chip.name} (spec sheet, {peak_dtype})")
    if info != current():
        raise ValueError(f"no spec-sheet {dtype} ceilings for {info.device_kind!r}, and only the "
                         "device running this process can be measured")
    peak = measured_peak(dtype, precision)
    return Ceilings(peak, measured_bandwidth(), dtype, "measured",
                    f"{info.label} (measured, {dtype}{'' if precision == 'default' else ', ' + precision})")


@functools.lru_cache(maxsize=None)
def measured_peak(dtype: str = "fp32", precision: str = "default") -> float:
    """This device's matmul ceiling in FLOP/s for ``dtype`` inputs, measured once per process.

    The best median rate of square matmuls at the two largest default sizes for the backend.
    """
    sizes = default_matmul_sizes(current().backend)[-2:]
    return max(matmul(n, dtype, precision=precision).flop_per_s for n in sizes)


@functools.lru_cache(maxsize=1)
def measured_bandwidth() -> float:
    """This device's memory bandwidth in bytes/s: a STREAM-style triad far larger than the caches.

    Measured once per process (bandwidth does not depend on the dtype of a later matmul).
    """
    info = current()
    memory = info.chip.memory_bytes if info.chip is not None else None
    return triad(default_triad_elements(info.backend, memory)).bytes_per_s


__all__ = ["Ceilings", "ceilings", "measured_bandwidth", "measured_peak"]
