"""What is running this notebook: backend, device kind, device count, its spec sheet and ceilings.

On a GPU or TPU the ceilings (peak FLOP/s, memory bandwidth) come from the chip's cited spec
sheet in the database. On a CPU, or on a device the database does not know, no spec sheet
applies: the ceilings are measured with :mod:`accelbook.measure` and labelled as measured.

Taught in: "Introduction" (what is this machine?) and every chapter's measurement section.
"""

from __future__ import annotations

import dataclasses
import functools

from accelbook import specs
from accelbook.checks import positive_int
from accelbook.specs import Chip, check_dtype


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """The accelerator JAX will use by default."""

    backend: str  # 'cpu', 'gpu' or 'tpu'
    device_kind: str  # as JAX reports it, e.g. 'NVIDIA A100-SXM4-40GB', 'TPU v5 lite', 'cpu'
    device_count: int
    chip: Chip | None  # None when the database does not know device_kind

    @property
    def has_spec_sheet(self) -> bool:
        """True when the chip's ceilings come from a cited spec sheet (not the host CPU)."""
        return self.chip is not None and bool(self.chip.peak_flops) and bool(self.chip.memory_bandwidth)

    @property
    def label(self) -> str:
        """Short name for figure legends: the chip's name, or the raw device kind."""
        if self.chip is not None and self.chip.kind != "cpu":
            return self.chip.name
        return "this CPU" if self.backend == "cpu" else self.device_kind


_BACKENDS = ("cpu", "gpu", "tpu")


def describe(backend: str, device_kind: str, device_count: int = 1) -> DeviceInfo:
    """Build a :class:`DeviceInfo` from the strings JAX reports (testable with made-up strings).

    ``backend`` is ``jax.default_backend()`` ('cpu', 'gpu', 'tpu'; 'cuda' and 'rocm' are read as
    'gpu'). An unknown ``device_kind`` gives ``chip=None`` and a warning, never an error.
    """
    backend = {"cuda": "gpu", "rocm": "gpu"}.get(backend, backend)
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r} is not known; allowed: {', '.join(_BACKENDS)}")
    positive_int("device_count", device_count)
    return DeviceInfo(backend, device_kind, device_count, specs.chip_for_device_kind(device_kind))


@functools.lru_cache(maxsize=1)
def current() -> DeviceInfo:
    """Describe JAX's default device (cached: JAX's backend cannot change in a process)."""
    import jax

    devices = jax.devices()
    return describe(jax.default_backend(), devices[0].device_kind, len(devices))


def matmul_peak_dtype(info: DeviceInfo, dtype: str, precision: str = "default") -> str | None:
    """Which spec-sheet peak a JAX matmul of ``dtype`` inputs runs at.

    JAX's documented precision rules (``jax.lax.Precision``): with 'default' precision, float32
    matmuls use TensorFloat-32 on NVIDIA GPUs that have it (Ampere and newer) and one bfloat16
    pass on TPUs. 'highest' asks for true fp32: the GPU's fp32 (SIMT) peak; a TPU emulates it
    with several bf16 passes and has no spec-sheet peak for it (returns None).
    """
    check_dtype(dtype)
    if precision not in ("default", "high", "highest"):
        raise ValueError(f"precision={precision!r} is not allowed; allowed: default, high, highest")
    chip = info.chip
    if dtype != "fp32" or chip is None:
        return dtype
    if chip.kind == "tpu":
        return "bf16" if precision == "default" else None
    if chip.kind == "gpu" and precision != "highest" and "tf32" in chip.peak_flops:
        return "tf32"
    return "fp32"


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
    from accelbook import measure

    sizes = measure.default_matmul_sizes(current().backend)[-2:]
    return max(measure.matmul(n, dtype, precision=precision).flop_per_s for n in sizes)


@functools.lru_cache(maxsize=1)
def measured_bandwidth() -> float:
    """This device's memory bandwidth in bytes/s: a STREAM-style triad far larger than the caches.

    Measured once per process (bandwidth does not depend on the dtype of a later matmul).
    """
    from accelbook import measure

    info = current()
    memory = info.chip.memory_bytes if info.chip is not None else None
    return measure.triad(measure.default_triad_elements(info.backend, memory)).bytes_per_s


__all__ = ["Ceilings", "DeviceInfo", "ceilings", "current", "describe", "matmul_peak_dtype",
           "measured_bandwidth", "measured_peak"]
