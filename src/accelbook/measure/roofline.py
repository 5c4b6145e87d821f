"""What XLA says a JAX program costs: the ``F`` (FLOP) and ``Q`` (bytes) of the roofline model.

:func:`xla_cost` reads the counts of the compiled program (after fusion), :func:`unfused_cost` those
of the program before XLA optimizes it; set side by side they show what fusion saves. Both import
JAX when called. The model they feed is :mod:`accelbook.models.roofline`.

Taught in: "The roofline" (chapter 02); used again in "Overheads: launch, sync and Python" (05).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Cost:
    """XLA's static cost of one compiled program (per device for sharded programs)."""

    flops: float
    bytes_accessed: float
    transcendentals: float

    @property
    def intensity(self) -> float:
        """FLOP per byte accessed; transcendental operations are not counted as FLOP."""
        if self.bytes_accessed <= 0:
            raise ValueError("the program accesses no memory: intensity is undefined")
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


__all__ = ["Cost", "unfused_cost", "xla_cost"]
