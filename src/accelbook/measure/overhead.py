"""Chapter 05's probes: queued versus waited-for calls, sync points, compilations per shape,
host <-> device copies, and what XLA's fusion does to a program.

Built on the harness's :class:`~accelbook.measure.harness.Timing` records; every function waits
for the device with ``jax.block_until_ready`` where the text says it does. The model the numbers
are compared with is :mod:`accelbook.models.overhead`.

Taught in: "Overheads: launch, sync and Python" (chapter 05).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import numpy as np

from accelbook import checks
from accelbook.checks import positive_int
from accelbook.measure.harness import MAX_REPEATS, PROBE_BYTES_LIMIT, MeasurementError, Timing


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


def _check_callable(fn: Any, name: str = "fn") -> None:
    checks.callable_(name, fn)


def _step(step, state, args, carry):
    try:
        out = step(state, *args)
    except (TypeError, ValueError) as e:
        raise type(e)(f"step(carry, *args) failed with carry={checks.show(carry)}: {e}") from e
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"step must return a (carry, metric) pair; got {checks.show(out)}")
    return out


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
    calls = positive_int("calls", calls, maximum=MAX_REPEATS)
    repeats = positive_int("repeats", repeats, maximum=MAX_REPEATS)
    warmup = checks.nonneg_int("warmup", warmup, maximum=MAX_REPEATS)
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
    calls = positive_int("calls", calls, maximum=MAX_REPEATS)
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

    _check_callable(step, "step")
    steps = positive_int("steps", steps, maximum=MAX_REPEATS)
    repeats = positive_int("repeats", repeats, maximum=MAX_REPEATS)
    if not (checks.is_real(host_seconds) and 0 <= host_seconds < 1):
        raise ValueError(f"host_seconds={checks.show(host_seconds)} must be in [0, 1) seconds")
    sync = checks.boolean("sync", sync)
    samples = []
    for _ in range(repeats):
        state, metrics = carry, []
        t0 = time.perf_counter()
        for _ in range(steps):
            state, metric = _step(step, state, args, carry)
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
    requests = checks.sequence("requests", requests, nonempty=False,
                               of=lambda name, r: r if isinstance(r, (tuple, list)) else
                               checks.sequence(name, r))
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

    nbytes, samples = positive_int("nbytes", nbytes), positive_int("samples", samples, maximum=MAX_REPEATS)
    if nbytes % 4:
        raise ValueError(f"nbytes={nbytes} must be a multiple of 4 (the data is float32)")
    checks.size_limit("nbytes", nbytes, nbytes, PROBE_BYTES_LIMIT, "bytes")
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


def interleaved(probes: Any, rounds: int = 3) -> dict:
    """Run every probe of ``probes`` (``{key: zero-argument callable}``) once per round, for
    ``rounds`` rounds (all keys, then all again), and merge each key's samples.

    A probe returns a :class:`~accelbook.measure.harness.Timing` or a record with a ``timing``
    field (``measure.triad``, ``measure.matmul``); the merged result has the same type, with the
    samples of all rounds. A burst of load on a shared machine then lands on every key alike,
    instead of making one size or one way look slow. Taught in: "Overheads" (chapter 05).
    """
    probes = dict(probes)
    if not probes or not all(callable(p) for p in probes.values()):
        raise ValueError(f"probes={probes!r} must be a non-empty mapping of zero-argument callables")
    rounds = positive_int("rounds", rounds)
    results: dict[Any, list[Any]] = {k: [] for k in probes}
    for _ in range(rounds):
        for k, probe in probes.items():
            results[k].append(probe())
    out = {}
    for k, rs in results.items():
        timings = [r if isinstance(r, Timing) else r.timing for r in rs]
        merged = Timing(tuple(t for tm in timings for t in tm.samples))
        out[k] = merged if isinstance(rs[0], Timing) else dataclasses.replace(rs[0], timing=merged)
    return out


@dataclasses.dataclass(frozen=True)
class TraceEvent:
    """One event of a profiler trace: ``lane`` (process and thread, shortened), ``name``, ``start``
    and ``duration`` in seconds from the start of the trace, and ``kind``: 'region' (a
    ``jax.profiler.TraceAnnotation``), 'dispatch' (a jitted call on the Python thread) or 'kernel'
    (an XLA operation executing: an HLO op on a CPU executor thread, a kernel on a GPU stream)."""

    lane: str
    name: str
    start: float
    duration: float
    kind: str

    def __post_init__(self):
        for name in ("lane", "name", "kind"):
            checks.text(name, getattr(self, name))
        checks.real("start", self.start)
        checks.real("duration", self.duration, nonnegative=True)


@dataclasses.dataclass(frozen=True)
class Trace:
    """A profiler trace reduced to the events the book draws (:func:`parse_trace`)."""

    events: tuple[TraceEvent, ...]
    path: str = ""  # the trace file, for Perfetto (ui.perfetto.dev) or TensorBoard's profile plugin

    def regions(self) -> dict[str, tuple[float, float]]:
        """``{annotation name: (start, end)}`` in seconds, in the order they began."""
        rs = sorted((e for e in self.events if e.kind == "region"), key=lambda e: e.start)
        return {e.name: (e.start, e.start + e.duration) for e in rs}

    def within(self, region: str) -> list[TraceEvent]:
        """The dispatch and kernel events inside ``region`` (by start time), sorted by start."""
        spans = self.regions()
        if region not in spans:
            raise KeyError(f"region={region!r} is not in the trace; regions: {list(spans)}")
        lo, hi = spans[region]
        return sorted((e for e in self.events if e.kind != "region" and lo <= e.start < hi),
                      key=lambda e: e.start)

    def busy_fraction(self, region: str) -> float:
        """Fraction of ``region``'s wall time during which at least one kernel was running (the
        union of the kernel intervals, clipped to the region, over its length)."""
        lo, hi = self.regions()[region]
        spans = sorted((max(e.start, lo), min(e.start + e.duration, hi))
                       for e in self.within(region) if e.kind == "kernel")
        busy, end = 0.0, lo
        for a, b in spans:
            a = max(a, end)
            if b > a:
                busy, end = busy + (b - a), b
        return busy / (hi - lo) if hi > lo else 0.0


def _lane(process: str, thread: str) -> str:
    import re

    thread = re.sub(r"/-?\d+$", "", thread)
    thread = {"python": "Python thread", "tf_XLAPjRtCpuClient": "XLA CPU executor",
              "tf_XLAEigen": "XLA CPU worker"}.get(thread, thread)
    process = process.lstrip("/")
    return f"{'host' if process.startswith('host') else process}: {thread}"


def parse_trace(trace: Any, regions: Any = ()) -> Trace:
    """Reduce a Chrome/Perfetto JSON trace (``perfetto_trace.json.gz`` as ``jax.profiler.trace``
    writes it with ``create_perfetto_trace=True``: a path, or the loaded dict) to :class:`Trace`.

    Kept: complete events ('ph' 'X') named in ``regions`` (kind 'region'); the outermost
    ``PjitFunction(...)`` of each jitted call (kind 'dispatch'); every event that carries an
    ``hlo_op`` argument or belongs to a ``/device:...`` process (kind 'kernel'). Zero-length
    markers are dropped. Times become seconds from the first kept event. Taught in: "Overheads"
    (chapter 05), reading a trace.
    """
    import gzip
    import json

    path = ""
    if isinstance(trace, (str, bytes)) or hasattr(trace, "__fspath__"):
        path = str(trace)
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as f:
            trace = json.load(f)
    if not isinstance(trace, dict) or not isinstance(trace.get("traceEvents"), list):
        raise ValueError("trace must be a path to, or the dict of, a JSON trace with a 'traceEvents' list")
    names = set(regions)
    procs, threads = {}, {}
    for e in trace["traceEvents"]:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            procs[e.get("pid")] = str(e.get("args", {}).get("name", e.get("pid")))
        elif e.get("ph") == "M" and e.get("name") == "thread_name":
            threads[e.get("pid"), e.get("tid")] = str(e.get("args", {}).get("name", e.get("tid")))
    kept, open_dispatch = [], {}
    for e in sorted((e for e in trace["traceEvents"] if e.get("ph") == "X"), key=lambda e: (e["ts"], -e.get("dur", 0))):
        dur, name = float(e.get("dur", 0)), str(e.get("name", ""))
        if dur < 0.01:  # markers: 1e-6 µs
            continue
        process = procs.get(e.get("pid"), str(e.get("pid")))
        lane = _lane(process, threads.get((e.get("pid"), e.get("tid")), str(e.get("tid"))))
        if name in names:
            kind = "region"
        elif name.startswith("PjitFunction"):
            end = open_dispatch.get(lane, -1.0)
            if e["ts"] < end:  # nested inside the call already kept
                continue
            open_dispatch[lane] = e["ts"] + dur
            kind = "dispatch"
        elif "hlo_op" in e.get("args", {}) or process.startswith("/device"):
            kind = "kernel"
        else:
            continue
        kept.append((lane, name, float(e["ts"]), dur, kind))
    if not kept:
        return Trace((), path)
    t0 = min(k[2] for k in kept)
    return Trace(tuple(TraceEvent(lane, name, (ts - t0) * 1e-6, dur * 1e-6, kind)
                       for lane, name, ts, dur, kind in kept), path)


def capture_trace(regimes: Any, calls: int = 3, directory: str | None = None) -> Trace:
    """Run each of ``regimes`` (``{name: (fn, args)}``; ``fn`` warmed up) ``calls`` times inside
    ``jax.profiler.trace`` (one ``TraceAnnotation`` per regime, each call waited for), then read
    back the Perfetto trace JAX wrote and :func:`parse_trace` it.

    ``directory``: where the trace goes (a new temporary directory by default); the file stays
    there for Perfetto or TensorBoard. Taught in: "Overheads" (chapter 05), reading a trace.
    """
    import glob
    import os
    import tempfile

    import jax

    regimes = dict(regimes)
    if not regimes or not all(isinstance(v, tuple) and len(v) == 2 and callable(v[0]) for v in regimes.values()):
        raise ValueError(f"regimes={regimes!r} must map names to (fn, args) pairs")
    calls = positive_int("calls", calls)
    directory = directory or tempfile.mkdtemp(prefix="accelbook-trace-")
    with jax.profiler.trace(directory, create_perfetto_trace=True):
        for name, (fn, args) in regimes.items():
            with jax.profiler.TraceAnnotation(name):
                for _ in range(calls):
                    jax.block_until_ready(fn(*args))
    found = sorted(glob.glob(os.path.join(directory, "**", "perfetto_trace.json.gz"), recursive=True),
                   key=os.path.getmtime)
    if not found:
        raise MeasurementError(f"jax.profiler.trace wrote no perfetto_trace.json.gz under {directory}")
    return parse_trace(found[-1], regions=regimes)


def decoder_layer(x, wqkv, wo, wgu, wd, k_cache, v_cache):
    """One Llama-style decoder layer in decode, in plain JAX: RMSNorm, one QKV projection,
    attention of the new token over ``k_cache``/``v_cache`` (batch, heads, context, head dim) plus
    itself, output projection, residual; RMSNorm, SwiGLU MLP (``wgu`` = gate and up side by side),
    residual. No rotary embedding and no norm weights (they add elementwise work, no new kind).
    ``x`` is (batch, d_model). Taught in: "Overheads" (chapter 05), the running example.
    """
    import jax
    import jax.numpy as jnp

    b, d = x.shape
    h, _ctx, dh = k_cache.shape[1:]
    rms = lambda z: z * jax.lax.rsqrt(jnp.mean(z * z, axis=-1, keepdims=True) + 1e-6)
    q, k, v = jnp.split(rms(x) @ wqkv, 3, axis=-1)
    keys = jnp.concatenate([k_cache, k.reshape(b, h, 1, dh)], axis=2)
    vals = jnp.concatenate([v_cache, v.reshape(b, h, 1, dh)], axis=2)
    p = jax.nn.softmax(q.reshape(b, h, 1, dh) @ keys.swapaxes(-1, -2) / dh**0.5, axis=-1)
    x = x + (p @ vals).reshape(b, d) @ wo
    g, u = jnp.split(rms(x) @ wgu, 2, axis=-1)
    return x + (jax.nn.silu(g) * u) @ wd


def decoder_layer_counts(d_model: int = 256, n_heads: int = 4, d_ff: int = 688, context: int = 64,
                         batch: int = 1) -> tuple[int, int, HloSummary]:
    """Operations :func:`decoder_layer` runs at a small size: ``(eager, compiled, summary)``.
    ``eager`` counts the primitive equations of its jaxpr (each one a separate dispatch when run
    op by op); ``compiled`` the kernels of the jitted program after XLA's fusion
    (:attr:`HloSummary.kernels`). Taught in: "Overheads" (chapter 05), the running example.
    """
    import jax
    import jax.numpy as jnp

    d, h, f, ctx, b = (positive_int(n, v) for n, v in (("d_model", d_model), ("n_heads", n_heads),
                                                       ("d_ff", d_ff), ("context", context), ("batch", batch)))
    if d % h:
        raise ValueError(f"d_model={d} must be a multiple of n_heads={h}")
    spec = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
    args = (spec(b, d), spec(d, 3 * d), spec(d, d), spec(d, 2 * f), spec(f, d),
            spec(b, h, ctx, d // h), spec(b, h, ctx, d // h))

    def count(jaxpr):  # primitives, counting inside calls such as custom_jvp (softmax, silu)
        n = 0
        for eqn in jaxpr.eqns:
            inner = [p for p in eqn.params.values() if hasattr(p, "jaxpr") or hasattr(p, "eqns")]
            n += sum(count(getattr(p, "jaxpr", p)) for p in inner) if inner else 1
        return n

    eager = count(jax.make_jaxpr(decoder_layer)(*args).jaxpr)
    summary = hlo_summary(decoder_layer, *args)
    return eager, summary.kernels, summary


__all__ = ["HloSummary", "LoopTiming", "RequestRun", "Timeline", "Trace", "TraceEvent", "TransferResult",
           "capture_trace", "decoder_layer", "decoder_layer_counts", "dispatch_timeline", "hlo_summary",
           "interleaved", "loop_time", "parse_trace", "run_requests", "sync_loop_time", "transfer"]
