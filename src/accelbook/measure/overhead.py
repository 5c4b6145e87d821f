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

from accelbook.checks import positive_int
from accelbook.measure.harness import MeasurementError, Timing


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


__all__ = ["HloSummary", "LoopTiming", "RequestRun", "Timeline", "TransferResult",
           "dispatch_timeline", "hlo_summary", "loop_time", "run_requests", "sync_loop_time",
           "transfer"]
