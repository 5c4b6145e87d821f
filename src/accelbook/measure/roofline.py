"""What XLA says a JAX program costs: the ``F`` (FLOP) and ``Q`` (bytes) of the roofline model.

:func:`xla_cost` reads the counts of the compiled program (after fusion), :func:`unfused_cost` those
of the program before XLA optimizes it; set side by side they show what fusion saves. Both import
JAX when called. The model they feed is :mod:`accelbook.models.roofline`.

Taught in: "The roofline" (chapter 02); used again in "Overheads: launch, sync and Python" (05).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from accelbook import checks
from accelbook.checks import positive_int


@dataclasses.dataclass(frozen=True)
class Cost:
    """XLA's static cost of one compiled program (per device for sharded programs)."""

    flops: float
    bytes_accessed: float
    transcendentals: float

    def __post_init__(self):
        for name in ("flops", "bytes_accessed", "transcendentals"):
            checks.real(name, getattr(self, name), nonnegative=True)

    @property
    def intensity(self) -> float:
        """FLOP per byte accessed; transcendental operations are not counted as FLOP."""
        if self.bytes_accessed <= 0:
            raise ValueError(f"bytes_accessed={self.bytes_accessed!r}: the program accesses no memory, "
                             "intensity is undefined")
        return self.flops / self.bytes_accessed


def _cost(analysis) -> Cost | None:
    """A :class:`Cost` from XLA's cost-analysis dict, or None when XLA does not know the counts.

    XLA reports a count it could not work out as -1 (jax 0.4.26 to 0.4.31 do so for every program
    on the CPU): that is "unknown", not a count, so no Cost is made from it. A missing 'flops' entry
    is a real 0 (pure data movement, transcendentals only)."""
    if isinstance(analysis, (list, tuple)):  # older JAX returned one dict per device
        analysis = analysis[0] if analysis else None
    if not analysis:
        return None
    counts = [float(analysis.get(key, 0.0)) for key in ("flops", "bytes accessed", "transcendentals")]
    if any(c < 0 for c in counts):
        return None
    return Cost(*counts)


def xla_cost(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Cost | None:
    """FLOP and byte counts XLA assigns to ``jax.jit(fn)(*args, **kwargs)`` after compilation.

    ``bytes accessed`` counts each operand read and each result written by the compiled program
    (after fusion), so it is the traffic a roofline needs. Operations without a 'flops' entry
    (pure data movement, transcendentals) count 0 FLOP. JAX documents cost analysis as best
    effort: returns ``None`` when the backend reports no counts or reports them as unknown (-1),
    and a chapter then says so instead of computing with them.
    """
    import jax

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    return _cost(jitted.lower(*args, **kwargs).compile().cost_analysis())


def unfused_cost(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Cost | None:
    """XLA's FLOP and byte counts for ``fn`` *before* XLA optimizes it (no fusion).

    Every HLO operation of the traced program is costed as if it read its operands from memory
    and wrote its result back, including broadcasts of constants. Set next to :func:`xla_cost`
    (the compiled program), it shows what fusion saves: the bytes shrink, the FLOP mostly stay.
    JAX documents cost analysis as best effort: returns ``None`` when the backend offers none or
    reports the counts as unknown (-1).
    Taught in: "The roofline" (chapter 02).
    """
    import jax

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    return _cost(jitted.lower(*args, **kwargs).cost_analysis())


CPU_CACHED_ELEMENTS = 2 ** 18
"""float32 elements of each array of the cache-sized add on a CPU (and on a GPU whose L2 size the
database lacks): three arrays of 1 MiB, 3.1 MB in all, which a typical last-level cache holds."""


def cache_resident_elements(info) -> int | None:
    """float32 elements per array for an ``x + y`` whose three arrays stay in the last cache level
    between repetitions on the device ``info`` (a :class:`accelbook.device.DeviceInfo`), or None.

    * CPU: :data:`CPU_CACHED_ELEMENTS` (3.1 MB in all).
    * GPU: the largest power of two whose three arrays fill at most half of the chip's L2 cache
      (``l2_cache`` in the spec database), so the other half is left to whatever else is there;
      :data:`CPU_CACHED_ELEMENTS` when the database has no L2 size for the chip.
    * TPU: None. Its HBM has no hardware-managed cache in front of it that would keep an array
      between two operations (on-chip vector memory is filled by the compiler, per program).

    Taught in: "The roofline" (chapter 02), the point above the roof.
    """
    backend = getattr(info, "backend", None)
    if backend not in ("cpu", "gpu", "tpu"):
        raise TypeError(f"info={info!r} must be a DeviceInfo (accelbook.device.current())")
    if backend == "tpu":
        return None
    l2 = info.chip.value("l2_cache") if backend == "gpu" and info.chip is not None else None
    if not l2:
        return CPU_CACHED_ELEMENTS
    return 2 ** int(math.floor(math.log2(l2 / 2 / (3 * 4))))


def repeated_add(steps: int) -> Callable[[Any, Any], Any]:
    """A jitted ``f(x, y)`` that adds ``y`` to ``x`` ``steps`` times in one loop (``lax.fori_loop``).

    One call launches the whole loop, so the fixed cost of a call (dispatch, launch, wait) is paid
    once for ``steps`` adds. Each step reads ``x`` and ``y`` and writes ``x``: the traffic and FLOP of
    one ``x + y``. The steps depend on each other, so none can be skipped, and XLA fuses nothing
    across them. Divide the call's time by ``steps`` for the time of one add.
    Taught in: "The roofline" (chapter 02), the point above the roof.
    """
    import jax

    steps = positive_int("steps", steps)

    @jax.jit
    def add_repeatedly(x, y):
        return jax.lax.fori_loop(0, steps, lambda _i, acc: acc + y, x)

    return add_repeatedly


__all__ = ["CPU_CACHED_ELEMENTS", "Cost", "cache_resident_elements", "repeated_add", "unfused_cost",
           "xla_cost"]
