"""Chapter 03's probes: square matmuls swept over sizes and dtypes, and sizes near a power of two.

Every timing goes through :func:`accelbook.measure.harness.matmul` (so through the one harness,
:func:`~accelbook.measure.harness.time_call`). The module is named ``sweeps``, not ``matmul``, so that
``measure.matmul`` stays the harness's matmul probe. The models the sweeps are compared with are in
:mod:`accelbook.models.matmul`.

Taught in: "The same matmul on every device" (chapter 03).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from accelbook.checks import positive_int
from accelbook.measure.harness import MatmulResult, Timing, matmul


def sweep_dtypes(backend: str) -> list[str]:
    """The dtypes the matmul sweep runs on ``backend``: fp32 and bf16 everywhere, fp16 on GPUs
    (whose tensor cores had fp16 before bf16). Taught in: "The same matmul on every device"."""
    if backend not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"backend={backend!r} is not known; allowed: cpu, gpu, tpu")
    return ["fp32", "bf16", "fp16"] if backend == "gpu" else ["fp32", "bf16"]


def matmul_sweep(sizes: Any, cases: Any = ("fp32",), *, rounds: int = 1,
                 **timing: Any) -> list[MatmulResult]:
    """Time square matmuls for every case and size with :func:`matmul`; one record per pair.

    ``cases`` lists dtypes ('fp32', 'bf16', ...) or (dtype, precision) pairs such as
    ``("fp32", "highest")``; a bare dtype means precision 'default'. The cases of one size run back
    to back, so they are compared under the same load. With ``rounds > 1`` the whole grid is
    measured ``rounds`` times, interleaved (every size and case once, then again), and each record
    holds the samples of all rounds and the largest error seen: a burst of load from other users of
    a shared machine then hits all cases alike instead of making one look slow. Records come back
    ordered by case, then by n. Extra keyword arguments go to :func:`time_call`.
    Taught in: "The same matmul on every device".
    """
    sizes = [positive_int("sizes[...]", n) for n in sizes]
    cases = list(dict.fromkeys((c, "default") if isinstance(c, str) else tuple(c) for c in cases))
    if not sizes or not cases:
        raise ValueError(f"sizes={sizes!r} and cases={cases!r} must not be empty")
    if any(len(c) != 2 for c in cases):
        raise ValueError(f"cases={cases!r}: each case is a dtype or a (dtype, precision) pair")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds={rounds!r} must be an integer >= 1")
    runs: dict[tuple[str, str, int], list[MatmulResult]] = {}
    for _ in range(rounds):
        for n in sizes:
            for dtype, precision in cases:
                runs.setdefault((dtype, precision, n), []).append(
                    matmul(n, dtype, precision=precision, **timing))
    out = []
    for key in [(d, p, n) for d, p in cases for n in sizes]:
        rs = runs[key]
        samples = tuple(s for r in rs for s in r.timing.samples)
        out.append(dataclasses.replace(rs[0], timing=Timing(samples),
                                       rel_error=max(r.rel_error for r in rs)))
    return out


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    f = 2
    while f * f <= n:
        if n % f == 0:
            return False
        f += 1
    return True


def nearby_sizes(n: int) -> list[int]:
    """Sizes near ``n`` that a tiled matmul treats differently: ``n`` rounded to one significant
    decimal digit (1024 -> 1000), the largest prime below ``n - 1``, ``n - 1``, ``n``, ``n + 1``.

    Sorted, without duplicates. Taught in: "The same matmul on every device" (odd shapes).
    """
    n = positive_int("n", n)
    if n < 4:
        raise ValueError(f"n={n} must be >= 4")
    digits = 10 ** (len(str(n)) - 1)
    prime = next(p for p in range(n - 2, 1, -1) if _is_prime(p))
    return sorted({max(1, round(n / digits) * digits), prime, n - 1, n, n + 1})


__all__ = ["matmul_sweep", "nearby_sizes", "sweep_dtypes"]
