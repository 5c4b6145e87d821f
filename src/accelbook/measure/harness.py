"""The book's one timing harness, and the matmul and memory-bandwidth probes built on it.

Every measured number in the book comes through :func:`time_call`: it warms the function up (so
compilation stays out of the timing), waits for the device with ``jax.block_until_ready`` after
every call (JAX dispatches asynchronously), repeats until enough time has passed, and reports the
median and spread of the samples. :func:`first_call_time` and :func:`dispatch_time` make the
protocol visible: what the warm-up keeps out, and what timing without waiting reports. The probes
check their results against an independent NumPy reference before they report a rate: a wrong
answer is never reported as a speed.

Functions return records; they never print. Taught in: "The same matmul on every device" (the
protocol), "The roofline" (measured points) and "Introduction" (what is this machine?).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable

import numpy as np

from accelbook import checks
from accelbook.checks import positive_int
from accelbook.specs import check_dtype, itemsize

PROBE_BYTES_LIMIT = 2**33
"""The most host memory (bytes) one probe may allocate for its operands (8 GiB): a larger size is a
``ValueError`` before anything is allocated."""
MAX_REPEATS = 10**6
"""The most calls :func:`time_call` and :func:`dispatch_time` accept for one count (warm-up, repeats)."""


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

    def __post_init__(self):
        checks.sequence("samples", self.samples, of=lambda name, s: checks.real(name, s, nonnegative=True))

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

    checks.callable_("fn", fn)
    warmup = checks.nonneg_int("warmup", warmup, maximum=MAX_REPEATS)
    min_repeats = checks.positive_int("min_repeats", min_repeats, maximum=MAX_REPEATS)
    max_repeats = checks.positive_int("max_repeats", max_repeats, maximum=MAX_REPEATS)
    if max_repeats < min_repeats:
        raise ValueError(f"max_repeats={max_repeats} must be >= min_repeats={min_repeats}")
    min_time = checks.real("min_time", min_time, nonnegative=True)
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
    probe = matmul_probe(n, dtype, m=m, k=k, precision=precision, seed=seed)
    timing_result = time_call(probe.run, **timing)
    rel_error = probe.check()
    backend, kind = _device_labels()
    m, k, n = probe.shape
    return MatmulResult(m, n, k, dtype, precision, timing_result, rel_error, backend, kind)


@dataclasses.dataclass(frozen=True)
class Probe:
    """A prepared probe: inputs made on the device and the function jitted, ready to be timed
    many times (say, in interleaved rounds) without making them again.

    ``run()`` does the work once and returns what to wait for (time it with :func:`time_call`);
    ``check()`` compares the latest result with NumPy and raises :class:`MeasurementError` when
    they disagree (it returns the matmul's relative error, 0.0 for the triad); ``work`` is the
    FLOP (matmul) or bytes (triad) of one run; ``shape`` is (m, k, n) or (elements,).
    """

    run: Callable[[], Any]
    check: Callable[[], float]
    work: float
    shape: tuple[int, ...]


def matmul_probe(n: int, dtype: str = "fp32", *, m: int | None = None, k: int | None = None,
                 precision: str = "default", seed: int = 0) -> Probe:
    """The matmul of :func:`matmul` as a :class:`Probe` (same inputs, same Freivalds check)."""
    import jax
    import jax.numpy as jnp

    n = positive_int("n", n)
    m = n if m is None else positive_int("m", m)
    k = n if k is None else positive_int("k", k)
    seed = checks.nonneg_int("seed", seed)
    checks.size_limit("n", (m, k, n), 4.0 * (m * k + k * n + m * n), PROBE_BYTES_LIMIT,
                      "bytes of float32 operands (m, k, n)")
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

    def check() -> float:
        rel_error = freivalds_error(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                    np.asarray(f(a, b), np.float64), rng)
        if not rel_error <= _TOLERANCE[dtype]:
            raise MeasurementError(f"{dtype} matmul ({m}x{k} @ {k}x{n}) disagrees with the NumPy "
                                   f"reference: relative error {rel_error:.2e} > {_TOLERANCE[dtype]:.0e}")
        return rel_error

    return Probe(lambda: f(a, b), check, 2.0 * m * n * k, (m, k, n))


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
    checks.instance("rng", rng, np.random.Generator)
    vectors = positive_int("vectors", vectors, maximum=4096)
    a, b, c = (_matrix(name, v) for name, v in (("a", a), ("b", b), ("c", c)))
    if a.shape[1] != b.shape[0] or c.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"a, b, c of shapes {a.shape}, {b.shape}, {c.shape}: need a (m, k), b (k, n) "
                         "and c (m, n)")
    x = rng.standard_normal((b.shape[1], vectors))
    ref = a @ (b @ x)
    norm = np.linalg.norm(ref)
    if not norm > 0:
        raise ValueError("a and b: their product is zero, so a relative error is undefined")
    return float(np.linalg.norm(c @ x - ref) / norm)


def _matrix(name: str, value: Any) -> np.ndarray:
    arr = checks.real(name, value, allow_array=True)
    if arr.ndim != 2:
        raise ValueError(f"{name} of shape {arr.shape} must be a 2-D matrix")
    return arr


def triad(elements: int, *, scalar: float = 3.0, **timing: Any) -> BandwidthResult:
    """Time a STREAM-style triad ``a = b + scalar·c`` over float32 arrays of ``elements`` values.

    The output buffer is donated back to each call (``donate_argnums``, with ``keep_unused=True``
    since the old values are not read), so the probe measures memory traffic rather than the
    page faults of a freshly allocated output. The result is checked against NumPy.
    """
    probe = triad_probe(elements, scalar=scalar)
    timing_result = time_call(probe.run, **timing)
    probe.check()
    backend, kind = _device_labels()
    return BandwidthResult(probe.shape[0], timing_result, backend, kind)


def triad_probe(elements: int, *, scalar: float = 3.0) -> Probe:
    """The triad of :func:`triad` as a :class:`Probe` (donated output, checked against NumPy)."""
    import jax
    import jax.numpy as jnp

    elements = positive_int("elements", elements)
    checks.size_limit("elements", elements, 3 * 4.0 * elements, PROBE_BYTES_LIMIT, "bytes of float32 arrays")
    scalar = checks.real("scalar", scalar)
    rng = np.random.default_rng(1)
    b_host = rng.standard_normal(elements, dtype=np.float32)
    c_host = rng.standard_normal(elements, dtype=np.float32)
    b, c = jnp.asarray(b_host), jnp.asarray(c_host)
    kernel = jax.jit(lambda out, x, y: x + scalar * y, donate_argnums=0, keep_unused=True)
    state = {"out": jnp.zeros(elements, jnp.float32)}

    def step():
        state["out"] = kernel(state["out"], b, c)
        return state["out"]

    def check() -> float:
        got = np.asarray(state["out"])
        if not np.allclose(got, b_host + np.float32(scalar) * c_host, rtol=1e-6, atol=1e-6):
            raise MeasurementError("triad result disagrees with the NumPy reference")
        return 0.0

    return Probe(step, check, 3.0 * 4 * elements, (elements,))


def default_matmul_sizes(backend: str) -> list[int]:
    """Square matmul sizes that run quickly on a CPU and fill a GPU or TPU."""
    if backend == "cpu":
        return [64, 128, 256, 512, 1024, 2048]
    if backend in ("gpu", "tpu"):
        return [128, 256, 512, 1024, 2048, 4096, 8192]
    raise ValueError(f"backend={backend!r} is not known; allowed: cpu, gpu, tpu")


def default_triad_elements(backend, memory_bytes: float | None = None) -> int:
    """Triad length: far beyond on-chip caches, and at most 1/16 of the device's memory per array.

    ``backend`` is 'cpu', 'gpu' or 'tpu', or a :class:`accelbook.device.DeviceInfo`, whose
    per-device memory (:attr:`~accelbook.device.DeviceInfo.memory_bytes`: half a chip's on TPU
    v2 and v3, where a JAX device is one TensorCore) is then the default ``memory_bytes``.
    2**24 float32 values (64 MiB an array) on a CPU, 2**27 (512 MiB an array, 1.5 GiB for the
    three, which fits a 16 GB T4 or TPU v5e) on a GPU or TPU, fewer on a smaller device.
    """
    if hasattr(backend, "backend") and hasattr(backend, "memory_bytes"):
        info = backend
        backend = info.backend
        memory_bytes = info.memory_bytes if memory_bytes is None else memory_bytes
    if not isinstance(backend, str) or backend not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"backend={checks.show(backend)} is not known; allowed: cpu, gpu, tpu, or a DeviceInfo")
    if memory_bytes is not None:
        memory_bytes = checks.real("memory_bytes", memory_bytes, minimum=2**20)  # at least 1 MiB
    elements = 2**24 if backend == "cpu" else 2**27
    if memory_bytes:
        elements = min(elements, int(memory_bytes // (16 * 4)))
    return elements


def first_call_time(fn: Callable[..., Any], *args: Any) -> float:
    """Seconds for one call of ``fn(*args)``, waiting for the result (``block_until_ready``).

    Called on a freshly made ``jax.jit`` function, this is the cost the warm-up of
    :func:`time_call` keeps out of the timing: tracing, XLA compilation, then one run.
    Taught in: "The same matmul on every device" (why warm up).
    """
    import jax

    checks.callable_("fn", fn)
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

    checks.callable_("fn", fn)
    repeats = checks.positive_int("repeats", repeats, maximum=MAX_REPEATS)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        samples.append(time.perf_counter() - t0)
        jax.block_until_ready(out)
    return Timing(tuple(samples))


__all__ = ["BandwidthResult", "MatmulResult", "MeasurementError", "PRECISIONS", "Probe", "Timing",
           "default_matmul_sizes", "default_triad_elements", "dispatch_time", "first_call_time",
           "freivalds_error", "matmul", "matmul_probe", "time_call", "triad", "triad_probe"]
