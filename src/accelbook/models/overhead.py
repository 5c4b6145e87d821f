"""The overhead model: a fixed cost per call next to the roofline's compute and memory times.

A call that does ``F`` FLOP and moves ``Q`` bytes on a chip with peak ``P`` (FLOP/s) and memory
bandwidth ``W`` (bytes/s) also pays a fixed cost ``t0`` (seconds) that does no useful work: Python,
the framework's dispatch, the kernel launch, the wait for the result. Three regimes follow:

    one call that is waited for:          t = t0 + max(F / P, Q / W)
    a stream of asynchronously queued calls: t → max(t0, F / P, Q / W) per call

*overhead-bound* when ``t0`` is the largest of the three terms, *bandwidth-bound* when ``Q / W``
is, *compute-bound* when ``F / P`` is (He, "Making Deep Learning Go Brrrr From First Principles",
2022). The rest of the module prices what removes overhead: fusing a chain of operations into one
call, compiling once and reusing the program, padding ragged shapes to a few buckets.

Pure NumPy: no JAX, no plotting, no I/O. Taught in: "Overheads: launch, sync and Python" (05).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

import numpy as np

from accelbook import checks

REGIMES = ("overhead", "bandwidth", "compute")
"""The three regimes, in the order of the terms of ``max(t0, Q / W, F / P)``."""


def _nonneg(name: str, value: Any, scalar: bool = False):
    """A finite number >= 0: a float if ``scalar``, else a float array (scalars and arrays allowed)."""
    return checks.real(name, value, nonnegative=True, allow_array=not scalar)


def _positive(name: str, value: Any) -> float:
    return checks.real(name, value, positive=True)


def _count(name: str, value: Any, minimum: int = 1) -> int:
    return checks.integer(name, value, minimum=minimum)


def _broadcast(**arrays) -> None:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        raise ValueError(", ".join(f"{k} of shape {a.shape}" for k, a in arrays.items())
                         + ": the shapes do not broadcast together") from None


def _out(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


def call_time(flops, bytes_moved, t0: float, peak_flops: float, bandwidth: float, *,
              pipelined: bool = False):
    """Predicted seconds per call: ``t0 + max(F/P, Q/W)``, or ``max(t0, F/P, Q/W)`` if pipelined.

    The sum is one call that the caller waits for: the fixed cost and the device's work happen one
    after the other (what :func:`accelbook.measure.time_call` measures). ``pipelined=True`` is the
    steady state of many calls queued without waiting (JAX's asynchronous dispatch): the host
    prepares the next call while the device runs this one, so only the larger of the two counts.
    The two differ by at most a factor of 2. ``flops`` (FLOP) and ``bytes_moved`` (bytes) may be
    arrays; ``t0`` in seconds (>= 0), ``peak_flops`` in FLOP/s, ``bandwidth`` in bytes/s.
    Taught in: "Overheads" (chapter 05), the model.
    """
    f, q = _nonneg("flops", flops), _nonneg("bytes_moved", bytes_moved)
    t0 = _nonneg("t0", t0, scalar=True)
    pipelined = checks.boolean("pipelined", pipelined)
    _broadcast(flops=f, bytes_moved=q)
    work = np.maximum(f / _positive("peak_flops", peak_flops), q / _positive("bandwidth", bandwidth))
    return _out(np.maximum(t0, work) if pipelined else t0 + work)


def regime(flops, bytes_moved, t0: float, peak_flops: float, bandwidth: float):
    """Which term of ``max(t0, Q/W, F/P)`` is largest: 'overhead', 'bandwidth' or 'compute'.

    Ties go to the earlier name in :data:`REGIMES`. Returns a string for scalar input and an array
    of strings for array input. Units as in :func:`call_time`. Taught in: "Overheads" (chapter 05).
    """
    f, q = _nonneg("flops", flops), _nonneg("bytes_moved", bytes_moved)
    t0 = _nonneg("t0", t0, scalar=True)
    _broadcast(flops=f, bytes_moved=q)
    f, q = np.broadcast_arrays(f, q)
    terms = np.stack([np.full(f.shape, t0), q / _positive("bandwidth", bandwidth),
                      f / _positive("peak_flops", peak_flops)])
    labels = np.asarray(REGIMES)[np.argmax(terms, axis=0)]
    return str(labels) if labels.ndim == 0 else labels


def overhead_crossover_bytes(t0: float, bandwidth: float) -> float:
    """Bytes a bandwidth-bound call must move before its memory time equals ``t0``: ``t0 · W``.

    Smaller calls are overhead-bound. Taught in: "Overheads" (chapter 05).
    """
    return checks.finite_result({"t0": t0, "bandwidth": bandwidth}, _positive("t0", t0) * _positive("bandwidth", bandwidth))


@dataclasses.dataclass(frozen=True)
class MatmulRegimes:
    """Where a square n × n matmul (``2n³`` FLOP, ``3·b·n²`` bytes) changes regime on one chip.

    ``n_memory``: the memory time reaches ``t0`` (``3bn²/W = t0``). ``n_ridge``: the compute time
    reaches the memory time (``n = 1.5·b·P/W``, the roofline's crossover). ``n_compute``: the
    compute time reaches ``t0`` (``2n³/P = t0``). Taught in: "Overheads" (chapter 05).
    """

    n_memory: float
    n_ridge: float
    n_compute: float

    def __post_init__(self):
        for name in ("n_memory", "n_ridge", "n_compute"):
            checks.real(name, getattr(self, name), positive=True)

    @property
    def has_bandwidth_regime(self) -> bool:
        """True when some n is bandwidth-bound: the memory time passes ``t0`` before the ridge."""
        return self.n_memory < self.n_ridge

    @property
    def n_overhead_end(self) -> float:
        """The n above which overhead is no longer the largest term."""
        return self.n_memory if self.has_bandwidth_regime else self.n_compute


def square_matmul_regimes(t0: float, peak_flops: float, bandwidth: float,
                          bytes_per_element: float = 2) -> MatmulRegimes:
    """The sizes at which a square matmul changes regime (see :class:`MatmulRegimes`).

    ``t0`` in seconds, ``peak_flops`` in FLOP/s, ``bandwidth`` in bytes/s. Taught in:
    "Overheads" (chapter 05): on accelerators, a square matmul small enough to be memory-bound is
    usually overhead-bound instead.
    """
    t0, p, w = _positive("t0", t0), _positive("peak_flops", peak_flops), _positive("bandwidth", bandwidth)
    b = _positive("bytes_per_element", bytes_per_element)
    return MatmulRegimes(math.sqrt(t0 * w / (3 * b)), 1.5 * b * p / w, (t0 * p / 2) ** (1 / 3))


def spans(x, labels) -> list[tuple[str, float, float]]:
    """Contiguous runs of equal ``labels`` along sorted ``x``: (label, first x, last x) each.

    Turns the per-point output of :func:`regime` into the stretches a figure shades.
    Taught in: "Overheads" (chapter 05).
    """
    x = checks.real("x", x, allow_array=True)
    labels = list(np.atleast_1d(checks.sequence("labels", labels) if not isinstance(labels, np.ndarray) else labels))
    if x.ndim != 1 or len(x) != len(labels) or len(x) == 0:
        raise ValueError("x and labels must be 1-D and of the same, non-zero length")
    if np.any(np.diff(x) < 0):
        raise ValueError("x must be sorted in increasing order")
    out, start = [], 0
    for i in range(1, len(x) + 1):
        if i == len(x) or labels[i] != labels[start]:
            out.append((str(labels[start]), float(x[start]), float(x[i - 1])))
            start = i
    return out


# --- A chain of elementwise operations: one call per operation, or one fused call -------------


def chain_bytes(n_ops: int, elements: int, bytes_per_element: float = 4, *, fused: bool) -> float:
    """Memory traffic of ``n_ops`` unary elementwise operations applied one after another to an
    array of ``elements`` values.

    Unfused, each operation reads its input and writes its output: ``n_ops · 2 · b · N`` bytes.
    Fused into one kernel, the intermediates stay on chip: ``2 · b · N``. Taught in: "Overheads"
    (chapter 05), fusion.
    """
    n, elements = _count("n_ops", n_ops), _count("elements", elements)
    checks.boolean("fused", fused)
    per_pass = 2.0 * _positive("bytes_per_element", bytes_per_element) * elements
    return per_pass if fused else n * per_pass


def chain_time(n_ops: int, elements: int, *, t_op: float, bandwidth: float, fused: bool,
               t0: float | None = None, bytes_per_element: float = 4, flops_per_op: float = 1,
               peak_flops: float = math.inf):
    """Predicted seconds for a chain of ``n_ops`` elementwise operations on ``elements`` values.

    Eager (``fused=False``): every operation is its own waited-for call,
    ``n · (t_op + max(f·N/P, 2bN/W))``. Fused (one jitted call): ``t0 + max(n·f·N/P, 2bN/W)``,
    where ``t0`` defaults to ``t_op``. Seconds, bytes/s, FLOP/s; ``peak_flops`` defaults to
    infinity (the chains in the chapter are far from compute-bound). Taught in: "Overheads"
    (chapter 05), the explorable figure.
    """
    n, elements = _count("n_ops", n_ops), _count("elements", elements)
    t_op = _nonneg("t_op", t_op, scalar=True)
    t0 = t_op if t0 is None else _nonneg("t0", t0, scalar=True)
    w = _positive("bandwidth", bandwidth)
    p = checks.real("peak_flops", peak_flops, positive=True, finite=False)
    f = _nonneg("flops_per_op", flops_per_op, scalar=True)
    fused = checks.boolean("fused", fused)
    if fused:
        return t0 + max(n * f * elements / p, chain_bytes(n, elements, bytes_per_element, fused=True) / w)
    one = max(f * elements / p, chain_bytes(1, elements, bytes_per_element, fused=True) / w)
    return n * (t_op + one)


def chain_times(n_ops, elements, *, t_op: float, bandwidth: float, t0: float | None = None,
                bytes_per_element: float = 4, flops_per_op: float = 1, peak_flops: float = math.inf):
    """:func:`chain_time` of the eager and of the fused chain at once, for arrays of operation
    counts and array sizes (broadcast against each other): the curves of a figure.

    Returns ``(eager, fused)`` seconds, floats for scalar input. ``n_ops`` >= 1 and ``elements``
    > 0 need not be integers here (a curve is drawn through them); at integer values the results
    equal :func:`chain_time`'s. Taught in: "Overheads" (chapter 05), the explorable figure.
    """
    n, size = _nonneg("n_ops", n_ops), _nonneg("elements", elements)
    if np.any(n < 1) or np.any(size <= 0):
        raise ValueError(f"n_ops={n_ops!r} must be >= 1 and elements={elements!r} > 0")
    n, size = np.broadcast_arrays(n, size)
    t_op = _nonneg("t_op", t_op, scalar=True)
    t0 = t_op if t0 is None else _nonneg("t0", t0, scalar=True)
    w, b = _positive("bandwidth", bandwidth), _positive("bytes_per_element", bytes_per_element)
    p = checks.real("peak_flops", peak_flops, positive=True, finite=False)
    f = _nonneg("flops_per_op", flops_per_op, scalar=True)
    memory = 2.0 * b * size / w  # one pass: read the input, write the output
    eager = n * (t_op + np.maximum(f * size / p, memory))
    fused = t0 + np.maximum(n * f * size / p, memory)
    return _out(eager), _out(fused)


@dataclasses.dataclass(frozen=True)
class LaunchBudget:
    """What a layer's operations cost in launches and in memory traffic, one kernel per operation
    (:func:`launch_budget`). Seconds and bytes."""

    kernels: int  # one launch per operation (an op of count c is one batched kernel)
    launch_time: float  # kernels · t_launch
    bytes: float  # the layer's minimal traffic, all ops
    elementwise_bytes: float  # the part of it that elementwise ops move
    memory_time: float  # bytes / bandwidth

    def __post_init__(self):
        checks.positive_int("kernels", self.kernels)
        for name in ("launch_time", "bytes", "elementwise_bytes"):
            checks.real(name, getattr(self, name), nonnegative=True)
        checks.real("memory_time", self.memory_time, positive=True)  # overhead_ratio divides by it

    @property
    def elementwise_share(self) -> float:
        """Fraction of the layer's bytes that its elementwise ops move: what fusing them into
        their neighbours can save, at most."""
        return self.elementwise_bytes / self.bytes if self.bytes else 0.0

    @property
    def overhead_ratio(self) -> float:
        """``launch_time / memory_time``: above 1, launching the kernels one after another takes
        longer than streaming the layer's bytes."""
        return self.launch_time / self.memory_time


def launch_budget(ops: Iterable[Any], t_launch: float, bandwidth: float) -> LaunchBudget:
    """Launches and bytes of a layer given as operations with ``kind`` ('matmul', 'attention',
    'elementwise') and ``bytes`` (as :func:`accelbook.models.decoder.layer_ops` returns them):
    ``kernels`` = number of ops (each run as one kernel, batched over its count), launch time
    ``kernels · t_launch``, memory time ``Σ bytes / W``, and the bytes of the elementwise ops, which
    fusion into neighbouring kernels removes (their inputs and outputs stay on chip).
    Taught in: "Overheads" (chapter 05), the running example.
    """
    ops = checks.sequence("ops", ops, nonempty=False)
    if not ops or not all(hasattr(op, "kind") and hasattr(op, "bytes") for op in ops):
        raise ValueError("ops must be a non-empty list of operations with 'kind' and 'bytes'")
    t = _nonneg("t_launch", t_launch, scalar=True)
    w = _positive("bandwidth", bandwidth)
    total = float(sum(float(_nonneg("op.bytes", op.bytes)) for op in ops))
    elem = float(sum(op.bytes for op in ops if op.kind == "elementwise"))
    return LaunchBudget(len(ops), len(ops) * t, total, elem, total / w)


# --- Compilation: a cost per distinct shape ----------------------------------------------------


def amortized_time(t_call: float, t_compile: float, calls):
    """Seconds per call when one compilation is shared by ``calls`` calls: ``t_call + t_compile / calls``.

    Taught in: "Overheads" (chapter 05), compilation.
    """
    c = _nonneg("calls", calls)
    if np.any(c != np.floor(c)):
        raise ValueError(f"calls={calls!r} must be whole numbers of calls")
    if np.any(c < 1):
        raise ValueError(f"calls={calls!r} must be >= 1")
    return _out(_nonneg("t_call", t_call, scalar=True) + _nonneg("t_compile", t_compile, scalar=True) / c)


def break_even_calls(t_compile: float, t_slow: float, t_fast: float) -> int | None:
    """Fewest calls after which compiling (``t_compile`` once, then ``t_fast`` per call) beats
    not compiling (``t_slow`` per call): the smallest integer ``c`` with ``c·t_slow > t_compile +
    c·t_fast``. ``None`` if the compiled call is not faster. Taught in: "Overheads" (chapter 05).
    """
    t_compile = _nonneg("t_compile", t_compile, scalar=True)
    t_slow, t_fast = _nonneg("t_slow", t_slow, scalar=True), _nonneg("t_fast", t_fast, scalar=True)
    if t_slow <= t_fast:
        return None
    ratio = checks.finite_result({"t_compile": t_compile, "t_slow": t_slow, "t_fast": t_fast},
                                 t_compile / (t_slow - t_fast))
    return math.floor(ratio) + 1


def pow2_bucket(length: int, minimum: int = 1) -> int:
    """The smallest power of two that is >= ``length`` and >= ``minimum``.

    Padding lengths from ``L_min`` to ``L_max`` to their buckets leaves at most
    ``ceil(log2 L_max) - ceil(log2 max(L_min, minimum)) + 1`` distinct shapes, so at most that many
    compilations. Less than half of a padded input is padding unless ``minimum`` pads it further.
    Taught in: "Overheads" (chapter 05).
    """
    length, minimum = _count("length", length), _count("minimum", minimum)
    return 1 << (max(length, minimum) - 1).bit_length()


@dataclasses.dataclass(frozen=True)
class BucketPlan:
    """Ragged input lengths, and the lengths they are padded to."""

    lengths: tuple[int, ...]
    padded: tuple[int, ...]

    def __post_init__(self):
        lengths = checks.sequence("lengths", self.lengths, of=checks.positive_int)
        padded = checks.sequence("padded", self.padded, of=checks.positive_int)
        if len(padded) != len(lengths) or any(p < n for n, p in zip(lengths, padded)):
            raise ValueError(f"padded={self.padded!r} must pad each of lengths={self.lengths!r} (same count, each >=)")

    @property
    def shapes_exact(self) -> int:
        """Distinct lengths: the compilations without padding."""
        return len(set(self.lengths))

    @property
    def shapes_padded(self) -> int:
        """Distinct padded lengths: the compilations with buckets."""
        return len(set(self.padded))

    @property
    def useful_fraction(self) -> float:
        """Real elements over padded elements (work that scales with the length)."""
        return sum(self.lengths) / sum(self.padded)


def bucket_plan(lengths: Iterable[int], minimum: int = 1) -> BucketPlan:
    """Pad each of ``lengths`` to :func:`pow2_bucket` and count the distinct shapes both ways.

    Taught in: "Overheads" (chapter 05), recompilation.
    """
    lengths = tuple(checks.sequence("lengths", lengths, of=_count, nonempty=False))
    if not lengths:
        raise ValueError("lengths must not be empty")
    return BucketPlan(lengths, tuple(pow2_bucket(n, minimum) for n in lengths))


def expected_distinct(values: int, draws: int) -> float:
    """Expected number of distinct values among ``draws`` uniform draws from ``values`` values:
    ``V · (1 − (1 − 1/V)^D)``. With one compilation per distinct input length, the expected number
    of compilations for ``draws`` requests of uniformly random length. Taught in: "Overheads" (05).
    """
    v, d = _count("values", values), _count("draws", draws, minimum=0)
    return v * -math.expm1(d * math.log1p(-1.0 / v)) if v > 1 else float(min(d, 1))


# --- Sync points: how often the host waits for the device -------------------------------------


def sync_step_time(t_host: float, t_device: float, sync_every: float = 1):
    """Seconds per step of a loop whose steps need ``t_host`` of host work and ``t_device`` of
    device work, when the host reads a result (``float(loss)``) every ``sync_every`` steps:
    ``max(t_h, t_d) + min(t_h, t_d) / sync_every``.

    Between syncs, asynchronous dispatch overlaps the two, so the slower side sets the pace. Each
    sync drains the queue, and for one step the faster side's time is exposed instead of hidden.
    ``sync_every=1``: ``t_h + t_d``; ``sync_every=inf`` (never): ``max(t_h, t_d)``.
    Taught in: "Overheads" (chapter 05), sync points.
    """
    t_h, t_d = _nonneg("t_host", t_host, scalar=True), _nonneg("t_device", t_device, scalar=True)
    k = checks.real("sync_every", sync_every, finite=False, allow_array=True)  # inf: never syncs
    if np.any(~(k >= 1)):
        raise ValueError(f"sync_every={sync_every!r} must be >= 1 (steps between syncs)")
    return _out(max(t_h, t_d) + min(t_h, t_d) / k)


__all__ = ["BucketPlan", "LaunchBudget", "MatmulRegimes", "REGIMES", "amortized_time", "break_even_calls", "bucket_plan",
           "call_time", "chain_bytes", "launch_budget", "chain_time", "chain_times", "expected_distinct",
           "overhead_crossover_bytes", "pow2_bucket", "regime", "spans", "square_matmul_regimes",
           "sync_step_time"]
