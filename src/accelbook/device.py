"""What is running this notebook: backend, device kind, device count and its spec sheet.

Detection only: it reads what JAX reports (importing JAX inside :func:`current`) and finds the chip
in the spec database; it imports no measurement. The device's ceilings, from the spec sheet or
measured when there is none, are :func:`accelbook.measure.ceilings`.

Taught in: "Introduction" (what is this machine?) and every chapter's measurement section.
"""

from __future__ import annotations

import dataclasses
import functools

from accelbook import specs
from accelbook.checks import positive_int
from accelbook.models.matmul import peak_dtype
from accelbook.specs import Chip


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
    """Which spec-sheet peak a JAX matmul of ``dtype`` inputs runs at on the device ``info``.

    JAX's documented precision rules (``jax.lax.Precision``): with 'default' precision, float32
    matmuls use TensorFloat-32 on NVIDIA GPUs that have it (Ampere and newer) and one bfloat16
    pass on TPUs. 'highest' asks for true fp32: the GPU's fp32 (SIMT) peak; a TPU emulates it
    with several bf16 passes and has no spec-sheet peak for it (returns None). The rule is
    :func:`accelbook.models.matmul.peak_dtype`, applied to the device's chip.
    """
    return peak_dtype(info.chip, dtype, precision)


__all__ = ["DeviceInfo", "current", "describe", "matmul_peak_dtype"]
