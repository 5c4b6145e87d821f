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

from accelbook import checks
from accelbook.checks import positive_int
import numpy as np

from accelbook.measure.harness import _JAX_DTYPES, MAX_REPEATS, PROBE_BYTES_LIMIT, MatmulResult, Timing, matmul


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
    sizes = checks.sequence("sizes", sizes, of=positive_int)
    cases = checks.sequence("cases", cases, of=_case)
    cases = list(dict.fromkeys((c, "default") if isinstance(c, str) else tuple(c) for c in cases))
    if not sizes or not cases:
        raise ValueError(f"sizes={sizes!r} and cases={cases!r} must not be empty")
    if any(len(c) != 2 for c in cases):
        raise ValueError(f"cases={cases!r}: each case is a dtype or a (dtype, precision) pair")
    rounds = positive_int("rounds", rounds, maximum=MAX_REPEATS)
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


@dataclasses.dataclass(frozen=True)
class PrecisionErrors:
    """Relative errors (Frobenius norm) of one low-precision matmul ``C = A @ B`` of size ``n``,
    split by cause. ``A32, B32`` are float32 source arrays; ``A, B`` the same rounded to ``dtype``.

    ``inputs``: ``‖A·B − A32·B32‖ / ‖A32·B32‖``, both products exact (float64): what rounding the
    inputs alone does. ``output``: ``‖C − A·B‖ / ‖A·B‖``: the device's product against the exact
    product of the *rounded* inputs, so output rounding plus accumulation. ``total``:
    ``‖C − A32·B32‖ / ‖A32·B32‖``: what a user who stored float32 data and cast it sees.
    Taught in: "The same matmul on every device" (precision).
    """

    dtype: str
    precision: str
    n: int
    inputs: float
    output: float
    total: float


def precision_errors(n: int, dtype: str = "bf16", *, precision: str = "default",
                     seed: int = 0) -> PrecisionErrors:
    """Run one jitted ``dtype`` matmul of float32 Gaussian matrices rounded to ``dtype`` and split
    its error into input rounding, output rounding plus accumulation, and the total
    (:class:`PrecisionErrors`); references are exact float64 products (O(n³) on the host: keep n
    to a few hundred). Taught in: "The same matmul on every device" (precision).
    """
    import jax
    import jax.numpy as jnp

    n = positive_int("n", n, maximum=4096)
    if not isinstance(dtype, str) or dtype not in _JAX_DTYPES:
        raise ValueError(f"dtype={checks.show(dtype)} cannot be run; allowed: {', '.join(_JAX_DTYPES)}")
    seed = checks.nonneg_int("seed", seed, maximum=2**32 - 1)
    checks.one_of("precision", precision, ("default", "high", "highest"))
    prec = {"default": jax.lax.Precision.DEFAULT, "high": jax.lax.Precision.HIGH,
            "highest": jax.lax.Precision.HIGHEST}.get(precision)
    if prec is None:
        raise ValueError(f"precision={precision!r} is not allowed; allowed: default, high, highest")
    rng = np.random.default_rng(seed)
    a32, b32 = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    a, b = (jnp.asarray(x, dtype=jnp.dtype(_JAX_DTYPES[dtype])) for x in (a32, b32))
    c = np.asarray(jax.jit(lambda x, y: jnp.matmul(x, y, precision=prec))(a, b), np.float64)
    exact_src = a32.astype(np.float64) @ b32.astype(np.float64)
    exact_rounded = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
    rel = lambda x, ref: float(np.linalg.norm(x - ref) / np.linalg.norm(ref))
    return PrecisionErrors(dtype, precision, n, rel(exact_rounded, exact_src), rel(c, exact_rounded),
                           rel(c, exact_src))


def shapes_sweep(shapes: Any, dtype: str = "fp32", *, rounds: int = 1, seed: int = 0,
                 **timing: Any) -> list[MatmulResult]:
    """Time one jitted matmul of each (m, k, n) shape in ``shapes`` (A is m × k, B is k × n).

    Made for layer-sized weights: every matrix is drawn once (uniform values of variance ``1/rows``;
    on a CPU backend a NumPy block of 509 random columns repeated across the width, which times the
    same and costs far less to draw; ``jax.random`` on the device elsewhere; a weight of one (k, n)
    is shared by all shapes that use it), the shapes are timed with
    :func:`~accelbook.measure.harness.time_call` in ``rounds`` interleaved rounds (every shape
    once, then again), so a burst of load hits all alike, and each product is checked against
    NumPy in float64 on 4 random output columns (``C[:, j]`` against ``A @ B[:, j]``) before it
    is reported. One record per shape, in the given order. Extra keyword arguments go to
    ``time_call``. Taught in: "The same matmul on every device" (the running example, measured).
    """
    import jax
    import jax.numpy as jnp

    from accelbook.measure.harness import _TOLERANCE, MeasurementError, _device_labels, time_call

    shapes = [tuple(checks.sequence(name, s)) for name, s in
              ((f"shapes[{i}]", s) for i, s in enumerate(checks.sequence("shapes", shapes)))]
    if not isinstance(shapes, list) or not shapes or any(len(s) != 3 for s in shapes):
        raise ValueError(f"shapes={shapes!r} must be a non-empty list of (m, k, n) triples")
    shapes = [(positive_int("m", m), positive_int("k", k), positive_int("n", n)) for m, k, n in shapes]
    if not isinstance(dtype, str) or dtype not in _JAX_DTYPES:
        raise ValueError(f"dtype={checks.show(dtype)} cannot be run; allowed: {', '.join(_JAX_DTYPES)}")
    rounds = positive_int("rounds", rounds, maximum=MAX_REPEATS)
    seed = checks.nonneg_int("seed", seed, maximum=2**32 - 1)
    for m, k, n in shapes:
        checks.size_limit("shapes", (m, k, n), 4.0 * (m * k + k * n + m * n), PROBE_BYTES_LIMIT,
                          "bytes of float32 operands")
    jdtype = jnp.dtype(_JAX_DTYPES[dtype])
    key = jax.random.PRNGKey(seed)
    arrays: dict[tuple[int, int], Any] = {}

    host_rng = np.random.default_rng(seed)

    def draw(rows, cols):  # one array per (rows, cols), uniform in ±√3/√rows: products stay O(1)
        if (rows, cols) not in arrays:
            if jax.default_backend() == "cpu":  # a random block of 509 columns, tiled: a fraction of the
                block = host_rng.random((rows, min(cols, 509)), dtype=np.float32)  # cost of drawing every value
                block -= 0.5
                block *= np.float32(2 * 3**0.5 / rows**0.5)
                x = np.tile(block, (1, -(-cols // block.shape[1])))[:, :cols]
                arrays[rows, cols] = jnp.asarray(x, dtype=jdtype)
            else:  # drawn on the device: no host-to-device copy of layer-sized weights
                k_ = jax.random.fold_in(key, len(arrays))
                arrays[rows, cols] = jax.random.uniform(k_, (rows, cols), jnp.float32, -(3 / rows)**0.5,
                                                        (3 / rows)**0.5).astype(jdtype)
        return arrays[rows, cols]

    mm = jax.jit(jnp.matmul)
    samples: dict[int, list[float]] = {i: [] for i in range(len(shapes))}
    for _ in range(rounds):
        for i, (m, k, n) in enumerate(shapes):
            samples[i] += time_call(mm, draw(m, k), draw(k, n), **timing).samples
    rng, backend, kind, out = np.random.default_rng(seed), *_device_labels(), []
    for i, (m, k, n) in enumerate(shapes):
        a, b = draw(m, k), draw(k, n)
        cols = rng.choice(n, size=min(4, n), replace=False)
        got = np.asarray(mm(a, b)[:, cols], np.float64)
        ref = np.asarray(a, np.float64) @ np.asarray(b[:, cols], np.float64)
        err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
        if not err <= _TOLERANCE[dtype]:
            raise MeasurementError(f"{dtype} matmul ({m}x{k} @ {k}x{n}) disagrees with NumPy: "
                                   f"relative error {err:.2e} > {_TOLERANCE[dtype]:.0e}")
        out.append(MatmulResult(m, n, k, dtype, "default", Timing(tuple(samples[i])), err, backend, kind))
    return out

def _case(name: str, case: Any):
    if isinstance(case, str):
        return case
    if isinstance(case, (tuple, list)) and len(case) == 2 and all(isinstance(c, str) for c in case):
        return tuple(case)
    raise ValueError(f"{name}={checks.show(case)}: each case is a dtype or a (dtype, precision) pair of strings")


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
    n = positive_int("n", n, maximum=2**31)  # the prime below n is found by trial division
    if n < 4:
        raise ValueError(f"n={n} must be >= 4")
    digits = 10 ** (len(str(n)) - 1)
    prime = next(p for p in range(n - 2, 1, -1) if _is_prime(p))
    return sorted({max(1, round(n / digits) * digits), prime, n - 1, n, n + 1})


__all__ = ["PrecisionErrors", "matmul_sweep", "nearby_sizes", "precision_errors", "shapes_sweep",
           "sweep_dtypes"]
