"""The book's one timing harness, and the matmul and memory-bandwidth probes built on it.

Every measured number in the book comes through :func:`time_call`: it warms the function up (so
compilation stays out of the timing), waits for the device with ``jax.block_until_ready`` after
every call (JAX dispatches asynchronously), repeats until enough time has passed, and reports the
median and spread of the samples. The probes check their results against an independent NumPy
reference before they report a rate: a wrong answer is never reported as a speed.

Functions return records; they never print. Taught in: "The same matmul on every device" (the
protocol), "The roofline" (measured points) and "Introduction" (what is this machine?).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable

import numpy as np

from accelbook.checks import positive_int
from accelbook.specs import check_dtype, itemsize

_JAX_DTYPES = {"fp64": "float64", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""dtypes the probes can run (tf32 is a precision mode of fp32 matmuls, not a storage dtype)."""

# Relative error (Frobenius norm) allowed against the float64 reference. Generous enough for
# the default matmul precision of accelerators (TF32 on NVIDIA Ampere+, one bf16 pass on TPU),
# tight enough to catch a wrong kernel, a transposed operand or uninitialised memory (error ~1).
_TOLERANCE = {"fp64": 1e-10, "fp32": 2e-2, "bf16": 5e-2, "fp16": 2e-2}


class MeasurementError(RuntimeError):
    """A probe's result disagreed with its NumPy reference, so no rate is reported."""


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one operation, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def p10(self) -> float:
        return float(np.percentile(self.samples, 10))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.samples, 90))

    @property
    def best(self) -> float:
        return float(np.min(self.samples))

    @property
    def spread(self) -> float:
        """(p90 − p10) / median: 0.05 means the middle 80 % of runs lie within 5 % of each other."""
        return (self.p90 - self.p10) / self.median

    @property
    def n(self) -> int:
        return len(self.samples)


def time_call(fn: Callable[..., Any], *args: Any, warmup: int = 2, min_repeats: int = 5,
              max_repeats: int = 200, min_time: float = 0.2) -> Timing:
    """Time ``fn(*args)``: ``warmup`` untimed calls, then at least ``min_repeats`` timed calls and
    more until ``min_time`` seconds have been spent (at most ``max_repeats``).

    Each timed call ends with ``jax.block_until_ready`` on the result, so asynchronous dispatch
    cannot make the call look faster than the work it launched. Works for NumPy functions too.
    """
    import jax

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    for name, v in (("warmup", warmup), ("min_repeats", min_repeats), ("max_repeats", max_repeats)):
        if not isinstance(v, int) or v < (0 if name == "warmup" else 1):
            raise ValueError(f"{name}={v!r} must be an integer >= {0 if name == 'warmup' else 1}")
    if max_repeats < min_repeats:
        raise ValueError(f"max_repeats={max_repeats} must be >= min_repeats={min_repeats}")
    if not min_time >= 0:
        raise ValueError(f"min_time={min_time!r} must be >= 0 seconds")
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    samples = []
    start = time.perf_counter()
    while len(samples) < max_repeats and (len(samples) < min_repeats
                                          or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        samples.append(time.perf_counter() - t0)
    return Timing(tuple(samples))


@dataclasses.dataclass(frozen=True)
class MatmulResult:
    """One timed matmul C = A @ B with A of shape (m, k) and B of shape (k, n)."""

    m: int
    n: int
    k: int
    dtype: str
    precision: str
    timing: Timing
    rel_error: float
    backend: str
    device_kind: str

    @property
    def flops(self) -> float:
        """2·m·n·k: one multiply and one add per term of every dot product."""
        return 2.0 * self.m * self.n * self.k

    @property
    def flop_per_s(self) -> float:
        """Achieved rate from the median time."""
        return self.flops / self.timing.median

    @property
    def bytes(self) -> float:
        """Minimum HBM traffic: read A and B once, write C once."""
        return float(itemsize(self.dtype) * (self.m * self.k + self.k * self.n + self.m * self.n))


@dataclasses.dataclass(frozen=True)
class BandwidthResult:
    """One timed STREAM-style triad a = b + s·c over ``elements`` float32 values."""

    elements: int
    timing: Timing
    backend: str
    device_kind: str

    @property
    def bytes(self) -> float:
        """Bytes moved per triad: read b and c, write a (4 bytes each)."""
        return 3.0 * 4 * self.elements

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.timing.median


def _device_labels() -> tuple[str, str]:
    import jax

    d = jax.devices()[0]
    return d.platform, d.device_kind


PRECISIONS = ("default", "high", "highest")


def matmul(n: int, dtype: str = "fp32", *, m: int | None = None, k: int | None = None,
           precision: str = "default", seed: int = 0, **timing: Any) -> MatmulResult:
    """Time one jitted JAX matmul of shape (m, k) @ (k, n) on the default device.

    ``m`` and ``k`` default to ``n`` (square). ``precision`` is JAX's matmul precision: 'default'
    lets the device use its fast mode (TF32 on NVIDIA Ampere and newer, one bf16 pass on TPU),
    'highest' asks for full fp32. The product is checked against a float64 NumPy reference with
    Freivalds' test (C·x against A·(B·x) for random vectors x), which costs O(n²) instead of
    O(n³), before the rate is reported. Extra keyword arguments go to :func:`time_call`.
    """
    import jax
    import jax.numpy as jnp

    n = positive_int("n", n)
    m = n if m is None else positive_int("m", m)
    k = n if k is None else positive_int("k", k)
    check_dtype(dtype)
    if dtype not in _JAX_DTYPES:
        raise ValueError(f"dtype={dtype!r} cannot be run by the matmul probe; allowed: "
                         f"{', '.join(_JAX_DTYPES)} (tf32 is fp32 with precision='default' on GPUs)")
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not allowed; allowed: {', '.join(PRECISIONS)}")
    if dtype == "fp64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype='fp64' needs jax.config.update('jax_enable_x64', True) first")
    rng = np.random.default_rng(seed)
    jdtype = jnp.dtype(_JAX_DTYPES[dtype])
    a = jnp.asarray(rng.standard_normal((m, k), dtype=np.float32), dtype=jdtype)
    b = jnp.asarray(rng.standard_normal((k, n), dtype=np.float32), dtype=jdtype)
    f = _jitted_matmul(precision)
    timing_result = time_call(f, a, b, **timing)
    rel_error = freivalds_error(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                np.asarray(f(a, b), np.float64), rng)
    if not rel_error <= _TOLERANCE[dtype]:
        raise MeasurementError(f"{dtype} matmul ({m}x{k} @ {k}x{n}) disagrees with the NumPy "
                               f"reference: relative error {rel_error:.2e} > {_TOLERANCE[dtype]:.0e}")
    backend, kind = _device_labels()
    return MatmulResult(m, n, k, dtype, precision, timing_result, rel_error, backend, kind)


@functools.lru_cache(maxsize=None)
def _jitted_matmul(precision: str):
    """One jitted matmul per precision, so repeated probes re-use XLA's compilation cache."""
    import jax
    import jax.numpy as jnp

    prec = {"default": jax.lax.Precision.DEFAULT, "high": jax.lax.Precision.HIGH,
            "highest": jax.lax.Precision.HIGHEST}[precision]
    return jax.jit(lambda x, y: jnp.matmul(x, y, precision=prec))


def freivalds_error(a: np.ndarray, b: np.ndarray, c: np.ndarray, rng: np.random.Generator,
                    vectors: int = 4) -> float:
    """Relative error of ``c`` as the product ``a @ b``, estimated with random vectors.

    ``‖C·X − A·(B·X)‖ / ‖A·(B·X)‖`` for a (n, vectors) Gaussian X. A correct product gives the
    rounding error of its dtype; a wrong one gives an error of order 1.
    """
    x = rng.standard_normal((b.shape[1], vectors))
    ref = a @ (b @ x)
    return float(np.linalg.norm(c @ x - ref) / np.linalg.norm(ref))


def triad(elements: int, *, scalar: float = 3.0, **timing: Any) -> BandwidthResult:
    """Time a STREAM-style triad ``a = b + scalar·c`` over float32 arrays of ``elements`` values.

    The output buffer is donated back to each call (``donate_argnums``, with ``keep_unused=True``
    since the old values are not read), so the probe measures memory traffic rather than the
    page faults of a freshly allocated output. The result is checked against NumPy.
    """
    import jax
    import jax.numpy as jnp

    elements = positive_int("elements", elements)
    rng = np.random.default_rng(1)
    b_host = rng.standard_normal(elements, dtype=np.float32)
    c_host = rng.standard_normal(elements, dtype=np.float32)
    b, c = jnp.asarray(b_host), jnp.asarray(c_host)
    kernel = jax.jit(lambda out, x, y: x + scalar * y, donate_argnums=0, keep_unused=True)
    state = {"out": jnp.zeros(elements, jnp.float32)}

    def step():
        state["out"] = kernel(state["out"], b, c)
        return state["out"]

    timing_result = time_call(step, **timing)
    got = np.asarray(state["out"])
    if not np.allclose(got, b_host + np.float32(scalar) * c_host, rtol=1e-6, atol=1e-6):
        raise MeasurementError("triad result disagrees with the NumPy reference")
    backend, kind = _device_labels()
    return BandwidthResult(elements, timing_result, backend, kind)


def default_matmul_sizes(backend: str) -> list[int]:
    """Square matmul sizes that run quickly on a CPU and fill a GPU or TPU."""
    if backend == "cpu":
        return [64, 128, 256, 512, 1024, 2048]
    if backend in ("gpu", "tpu"):
        return [128, 256, 512, 1024, 2048, 4096, 8192]
    raise ValueError(f"backend={backend!r} is not known; allowed: cpu, gpu, tpu")


def default_triad_elements(backend: str, memory_bytes: float | None = None) -> int:
    """Triad length: far beyond on-chip caches, and at most 1/16 of device memory."""
    if backend not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"backend={backend!r} is not known; allowed: cpu, gpu, tpu")
    elements = 2**24 if backend == "cpu" else 2**27
    if memory_bytes:
        elements = min(elements, int(memory_bytes // (16 * 4)))
    return elements


__all__ = ["BandwidthResult", "MatmulResult", "MeasurementError", "PRECISIONS", "Timing",
           "default_matmul_sizes", "default_triad_elements", "freivalds_error", "matmul",
           "time_call", "triad"]


# ---------------------------------------------------------------------------------------------
# Chapter "The same matmul on every device": the protocol made visible (first call, dispatch),
# sweeps over sizes and dtypes, shapes near a power of two, and the overhead model t0 + F/P.
# ---------------------------------------------------------------------------------------------

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


def first_call_time(fn: Callable[..., Any], *args: Any) -> float:
    """Seconds for one call of ``fn(*args)``, waiting for the result (``block_until_ready``).

    Called on a freshly made ``jax.jit`` function, this is the cost the warm-up of
    :func:`time_call` keeps out of the timing: tracing, XLA compilation, then one run.
    Taught in: "The same matmul on every device" (why warm up).
    """
    import jax

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def dispatch_time(fn: Callable[..., Any], *args: Any, repeats: int = 20) -> Timing:
    """Seconds until ``fn(*args)`` *returns*, without waiting for the device to finish.

    The wrong way to time JAX, kept to show why :func:`time_call` blocks: JAX dispatches work
    asynchronously, so the call returns as soon as the work is queued. The result is waited for
    after each timed call (outside the timed region), so calls do not pile up in the queue.
    ``fn`` should already be warmed up. Taught in: "The same matmul on every device".
    """
    import jax

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be an integer >= 1")
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        samples.append(time.perf_counter() - t0)
        jax.block_until_ready(out)
    return Timing(tuple(samples))


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


@dataclasses.dataclass(frozen=True)
class OverheadModel:
    """Run time of one call: a fixed overhead plus the work at a constant rate,
    ``t(F) = t0 + F / peak`` (for a square matmul ``F = 2·n³``).

    ``t0`` (seconds) lumps dispatch, launch and synchronisation; ``peak`` (FLOP/s) is the rate
    the large calls approach. Taught in: "The same matmul on every device".
    """

    t0: float
    peak: float

    def seconds(self, flops):
        """Predicted seconds for calls of ``flops`` FLOP (scalar or array)."""
        return self.t0 + np.asarray(flops, dtype=float) / self.peak

    def rate(self, flops):
        """Predicted achieved FLOP/s: ``F / (t0 + F / peak)``; half the peak at ``F = t0·peak``."""
        f = np.asarray(flops, dtype=float)
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
    f = np.asarray(flops, dtype=float).ravel()
    t = np.asarray(seconds, dtype=float).ravel()
    if f.shape != t.shape or f.size < 2:
        raise ValueError(f"flops and seconds must have the same length >= 2 (got {f.size} and {t.size})")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(t)) and np.all(f > 0) and np.all(t > 0)):
        raise ValueError("flops and seconds must be finite and > 0")
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


def chip_model(chip, dtype: str, *, t0: float, utilization: float = 1.0,
               precision: str = "default") -> OverheadModel | None:
    """The overhead model of a square matmul on a chip from the spec database (a prediction).

    The rate is ``utilization`` times the spec-sheet peak that a JAX matmul with ``dtype`` inputs
    and ``precision`` runs at (:func:`accelbook.device.matmul_peak_dtype`: TF32 for fp32 on
    NVIDIA Ampere and newer, one bf16 pass on TPUs); ``t0`` (seconds) is an assumed per-call
    overhead. Returns ``None`` when the spec sheet has no such peak (fp32 at 'highest' on a TPU,
    bf16 on a T4). Taught in: "The same matmul on every device".
    """
    from accelbook.device import DeviceInfo, matmul_peak_dtype

    if not (isinstance(t0, (int, float)) and np.isfinite(t0) and t0 >= 0):
        raise ValueError(f"t0={t0!r} must be a finite number of seconds >= 0")
    if not (isinstance(utilization, (int, float)) and 0 < utilization <= 1):
        raise ValueError(f"utilization={utilization!r} must be in (0, 1]")
    peak_dtype = matmul_peak_dtype(DeviceInfo(chip.kind, chip.name, 1, chip), dtype, precision)
    if peak_dtype not in chip.peak_flops:
        return None
    return OverheadModel(float(t0), utilization * chip.peak_flops[peak_dtype])


__all__ += ["MANTISSA_BITS", "OverheadModel", "chip_model", "dispatch_time", "first_call_time",
            "fit_overhead_model", "matmul_sweep", "nearby_sizes", "padding_efficiency",
            "sweep_dtypes", "unit_roundoff"]


# ---------------------------------------------------------------------------------------------
# Chapter "Overheads: launch, sync and Python" (05): queued versus waited-for calls, sync points,
# compilations per shape, and host <-> device copies.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoopTiming:
    """A loop of ``calls`` calls of one function, timed three ways (each Timing is per call).

    ``returned``: calls queued without waiting, clock stopped when the last call *returned*: the
    number a benchmark without ``block_until_ready`` reports. ``finished``: the same loop, clock
    stopped when every result was ready: the real time of a pipelined stream of calls.
    ``blocking``: a loop that waits for each result before the next call (no overlap of the host's
    dispatch with the device's work). Taught in: "Overheads" (chapter 05).
    """

    calls: int
    returned: Timing
    finished: Timing
    blocking: Timing


def _check_callable(fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")


def loop_time(fn: Callable[..., Any], *args: Any, calls: int = 32, repeats: int = 5,
              warmup: int = 2) -> LoopTiming:
    """Time a loop of ``calls`` calls of ``fn(*args)`` queued without waiting, and waited for.

    Each of ``repeats`` rounds runs the queued loop and the blocking loop back to back, so a burst
    of load on a shared machine hits both alike. Every result is waited for before a round ends.
    ``fn`` should be warmed up (``warmup`` untimed calls are made first). Taught in: "Overheads"
    (chapter 05), asynchronous dispatch.
    """
    import jax

    _check_callable(fn)
    calls, repeats = positive_int("calls", calls), positive_int("repeats", repeats)
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    returned, finished, blocking = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        outs = [fn(*args) for _ in range(calls)]
        t1 = time.perf_counter()
        jax.block_until_ready(outs)
        t2 = time.perf_counter()
        del outs
        for _ in range(calls):
            jax.block_until_ready(fn(*args))
        t3 = time.perf_counter()
        returned.append((t1 - t0) / calls)
        finished.append((t2 - t0) / calls)
        blocking.append((t3 - t2) / calls)
    return LoopTiming(calls, Timing(tuple(returned)), Timing(tuple(finished)), Timing(tuple(blocking)))


@dataclasses.dataclass(frozen=True)
class Timeline:
    """When each of a run of queued calls returned, and when its result was seen ready (seconds
    since the first call began). ``ready[i]`` is an upper bound: results are waited for in order
    after the last call returned, so a result finished earlier is seen then."""

    returned: tuple[float, ...]
    ready: tuple[float, ...]


def dispatch_timeline(fn: Callable[..., Any], *args: Any, calls: int = 16) -> Timeline:
    """Queue ``calls`` calls of ``fn(*args)`` without waiting, then wait for each result in order.

    The gap between ``returned`` and ``ready`` is the queue of work the host has handed to the
    device. ``fn`` should be warmed up. Taught in: "Overheads" (chapter 05).
    """
    import jax

    _check_callable(fn)
    calls = positive_int("calls", calls)
    outs, returned, ready = [], [], []
    t0 = time.perf_counter()
    for _ in range(calls):
        outs.append(fn(*args))
        returned.append(time.perf_counter() - t0)
    for out in outs:
        jax.block_until_ready(out)
        ready.append(time.perf_counter() - t0)
    return Timeline(tuple(returned), tuple(ready))


def sync_loop_time(step: Callable[..., Any], carry: Any, *args: Any, steps: int = 20,
                   host_seconds: float = 1e-3, sync: bool = True, repeats: int = 3) -> Timing:
    """Seconds per step of a training-style loop, with or without a sync point in every step.

    Each step calls ``carry, metric = step(carry, *args)``; with ``sync=True`` it then reads the
    metric on the host (``float(metric)``, as a loop that logs its loss every step does), and
    then spends ``host_seconds`` on other host work (``time.sleep``: say, waiting for the next
    batch; it leaves the CPU free). Without the sync, the metrics are read once after the loop,
    inside the timed region, and the host work overlaps the device's. ``step`` should be jitted
    and warmed up. Taught in: "Overheads" (chapter 05), sync points.
    """
    import jax

    _check_callable(step)
    steps, repeats = positive_int("steps", steps), positive_int("repeats", repeats)
    if not (isinstance(host_seconds, (int, float)) and 0 <= host_seconds < 1):
        raise ValueError(f"host_seconds={host_seconds!r} must be in [0, 1) seconds")
    samples = []
    for _ in range(repeats):
        state, metrics = carry, []
        t0 = time.perf_counter()
        for _ in range(steps):
            state, metric = step(state, *args)
            metrics.append(float(metric) if sync else metric)
            time.sleep(host_seconds)
        [float(m) for m in metrics]
        jax.block_until_ready(state)
        samples.append((time.perf_counter() - t0) / steps)
    return Timing(tuple(samples))


@dataclasses.dataclass(frozen=True)
class RequestRun:
    """A sequence of requests served by one jitted function, compilations included."""

    seconds: tuple[float, ...]  # wall time of each request, waited for
    traces: int  # times the function was traced: one per new input shape or dtype

    @property
    def total(self) -> float:
        """Seconds for all requests."""
        return float(sum(self.seconds))


def run_requests(fn: Callable[..., Any], requests: Any) -> RequestRun:
    """Call ``jax.jit(fn)`` once per argument tuple in ``requests``, waiting for each result.

    A fresh jitted wrapper counts its own traces with a Python side effect (Python code in a
    traced function runs only while JAX traces it, once per new shape or dtype), so the count is
    the number of compilations this run caused. Taught in: "Overheads" (chapter 05).
    """
    import jax

    _check_callable(fn)
    traces = [0]

    def counted(*a):
        traces[0] += 1  # runs at trace time only
        return fn(*a)

    jitted = jax.jit(counted)
    seconds = []
    for args in requests:
        t0 = time.perf_counter()
        jax.block_until_ready(jitted(*args))
        seconds.append(time.perf_counter() - t0)
    if not seconds:
        raise ValueError("requests must not be empty")
    return RequestRun(tuple(seconds), traces[0])


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """Copies of ``nbytes`` bytes between host memory (NumPy) and the default device."""

    nbytes: int
    to_device: Timing  # jax.device_put of a NumPy array, waited for
    to_host: Timing  # np.asarray of a device array not read before
    to_device_copies: bool  # False if the device array shares the NumPy buffer
    to_host_copies: bool  # False if np.asarray returned a view of the device buffer

    @property
    def to_device_bytes_per_s(self) -> float:
        return self.nbytes / self.to_device.median

    @property
    def to_host_bytes_per_s(self) -> float:
        return self.nbytes / self.to_host.median


def _shares(device_array: Any, host: np.ndarray) -> bool:
    try:
        return int(device_array.unsafe_buffer_pointer()) == host.ctypes.data
    except Exception:  # a backend without host-addressable buffers: they cannot be shared
        return False


def transfer(nbytes: int, samples: int = 5) -> TransferResult:
    """Time host -> device (``jax.device_put``) and device -> host (``np.asarray``) of float32 data.

    Each device -> host sample reads a device array that was never read before (JAX keeps the host
    copy of an array it has converted once). Whether each direction copied is checked by comparing
    buffer addresses: on a CPU backend, the "device" is host memory and a conversion may be a view.
    Taught in: "Overheads" (chapter 05), host <-> device transfers.
    """
    import jax

    nbytes, samples = positive_int("nbytes", nbytes), positive_int("samples", samples)
    host = np.random.default_rng(2).standard_normal(max(1, nbytes // 4), dtype=np.float32)
    jax.block_until_ready(jax.device_put(host))  # warm-up
    to_device, arrays = [], []
    for _ in range(samples):
        t0 = time.perf_counter()
        arrays.append(jax.block_until_ready(jax.device_put(host)))
        to_device.append(time.perf_counter() - t0)
    to_host, views = [], []
    for a in arrays:
        t0 = time.perf_counter()
        views.append(np.asarray(a))
        to_host.append(time.perf_counter() - t0)
    if not np.array_equal(views[-1], host):
        raise MeasurementError("the round trip host -> device -> host changed the data")
    return TransferResult(host.nbytes, Timing(tuple(to_device)), Timing(tuple(to_host)),
                          not _shares(arrays[0], host), not _shares(arrays[0], views[0]))




_NOT_KERNELS = ("parameter", "constant", "tuple", "get-tuple-element", "bitcast")


@dataclasses.dataclass(frozen=True)
class HloSummary:
    """A readable digest of one jitted function's program before and after XLA optimizes it."""

    ops_before: dict[str, int]  # StableHLO operation -> count, as traced by JAX
    ops_after: dict[str, int]  # instruction -> count in the compiled program's ENTRY computation
    entry: str  # the compiled ENTRY computation, with metadata and backend configs cut off

    @property
    def kernels(self) -> int:
        """Instructions of the compiled ENTRY computation that do work (not parameters, constants,
        tuples or bitcasts): roughly the kernels one call launches."""
        return sum(n for op, n in self.ops_after.items() if op not in _NOT_KERNELS)


def _count_ops(lines: Any, pattern: str) -> dict[str, int]:
    import re

    counts: dict[str, int] = {}
    for line in lines:
        if " = " not in line:
            continue
        m = re.search(pattern, line.split(" = ", 1)[1])
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def hlo_summary(fn: Callable[..., Any], *args: Any) -> HloSummary:
    """Count the operations of ``jax.jit(fn)`` as traced (``.lower(*args).as_text()``, StableHLO)
    and as compiled (``.compile().as_text()``, optimized HLO), and keep the compiled ENTRY
    computation in a short readable form. ``args`` may be arrays or ``jax.ShapeDtypeStruct``.

    Fusion shows as many operations before and a few ``fusion`` instructions after.
    Taught in: "Overheads" (chapter 05), fusion.
    """
    import jax

    _check_callable(fn)
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    lowered = jitted.lower(*args)
    before = _count_ops(lowered.as_text().splitlines(), r"^\s*\"?([a-z_]+\.[a-z_]+)")
    text = lowered.compile().as_text()
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("ENTRY"):
            inside = True
        if inside:
            for cut in (", metadata=", ", backend_config=", ", frontend_attributes=", ", sharding="):
                line = line.split(cut, 1)[0]
            lines.append(line.rstrip())
            if line.strip() == "}":
                break
    after = _count_ops(lines[1:-1], r"\b([a-z][a-z0-9_\-]*)\(")
    return HloSummary(before, after, "\n".join(lines))

__all__ += ["HloSummary", "LoopTiming", "RequestRun", "Timeline", "TransferResult",
            "dispatch_timeline", "hlo_summary", "loop_time", "run_requests", "sync_loop_time",
            "transfer"]
