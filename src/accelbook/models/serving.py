"""Batching for serving: the decode step time T(b), its throughput curve, and a queue simulator.

**The step.** One decode step gives each of ``b`` sequences one new token. With ``c`` tokens in
each sequence's KV cache, its work is

    F(b, c) = b · (f₁ + f₂ · c)            Q(b, c) = Q_w + b · (q₁ + q₂ · c)

FLOP and bytes: the weights (``Q_w`` bytes) are read once per step whatever the batch; each
sequence brings its activations (``f₁``, ``q₁``) and reads its own cache (``f₂``, ``q₂`` per
cached token). On a chip of peak ``P`` (FLOP/s) and bandwidth ``W`` (bytes/s), with a fixed
overhead ``t0`` per step (seconds),

    T(b, c) = t0 + max(F / P, Q / W)        throughput(b) = b / T(b) tokens/s.

At small ``b`` the weights dominate ``Q`` and T barely grows: each added sequence is almost
free (bandwidth-bound). Compute takes over at the batch where ``F / P`` reaches ``Q / W``
(:meth:`RooflineStep.compute_bound_batch`; never, if each sequence's own cache reads cost more
than its FLOP). KV capacity stops the batch where weights plus ``b · c`` cached tokens fill the
memory (:func:`batch_limits`). A measured T(b) replaces the formula: :class:`StepTable`.

**The queue.** :func:`simulate` runs one server on a stream of requests (arrival time, prompt
tokens, output tokens) under three policies: ``fixed`` (wait for ``b`` requests), ``dynamic``
(fire when the batch is full or the oldest request has waited ``max_wait``, the policy of Triton's
dynamic batcher, Ray Serve's ``@serve.batch`` and Modal's ``@modal.batched``) and ``continuous``
(iteration-level batching, as Orca and vLLM: sequences join and leave at step boundaries). With
one request per batch and exponential or constant service it is the M/M/1 or M/D/1 queue, whose
closed forms (Pollaczek–Khinchine, Little's law) the tests check it against.

Pure NumPy and the standard library. Taught in: "Batching: the utilization lever (and the
latency tax)" (chapter 08).
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import inspect
import math
from typing import Any

import numpy as np

from accelbook import checks
from accelbook.models import decoder

POLICIES = ("fixed", "dynamic", "continuous")
"""The batching policies of :func:`simulate`."""

MAX_REQUESTS = 10 ** 8
"""The most requests :func:`arrival_times` draws (about 0.8 GB of times)."""

MAX_GRID_CELLS = 2 * 10 ** 7
"""The most (batch, context) cells the fixed and dynamic policies tabulate for a step time that
depends on the context (160 MB of float64)."""

# streams of the seeded generators: the same seed gives independent draws for each quantity
_ARRIVALS, _PROMPT, _OUTPUT, _SERVICE = 1, 2, 3, 4


# -- the step time --------------------------------------------------------------------------------

def _nonneg(name: str, value: Any) -> float:
    return checks.real(name, value, nonnegative=True)


def _positive(name: str, value: Any) -> float:
    return checks.real(name, value, positive=True)


@dataclasses.dataclass(frozen=True, eq=False)
class RooflineStep:
    """The time of one decode step from the roofline: ``T(b, c) = t0 + max(F / P, Q / W)``.

    ``F(b, c) = b · (flops_per_seq + flops_per_context · c)`` FLOP and ``Q(b, c) = weight_bytes +
    b · (bytes_per_seq + bytes_per_context · c)`` bytes for ``b`` sequences whose KV caches hold
    ``c`` tokens each (``c`` is the mean over the batch: F and Q are linear in each sequence's
    cache, so the mean gives the exact total). ``peak_flops`` P in FLOP/s, ``bandwidth`` W in
    bytes/s, ``t0`` the fixed overhead per step in seconds, ``context`` the ``c`` used when a call
    gives none (tokens). :func:`decode_step` builds one from a model; :func:`prefill_step` one for
    prefill, whose ``batch`` is the number of prompt tokens.

    Calling the object is :meth:`seconds`, so it is a step-time function for :func:`simulate`.
    Raises ``ValueError`` naming a field that is negative, not finite or not a number (``peak_flops``
    and ``bandwidth`` must be > 0). Taught in: "Batching" (chapter 08).
    """

    flops_per_seq: float  # FLOP per sequence per step, outside attention over the cache
    flops_per_context: float  # FLOP per sequence per cached token (attention)
    weight_bytes: float  # bytes read once per step whatever the batch
    bytes_per_seq: float  # bytes per sequence per step, outside the cache
    bytes_per_context: float  # bytes per sequence per cached token (its K and V, the scores)
    peak_flops: float  # FLOP/s
    bandwidth: float  # bytes/s
    t0: float = 0.0  # seconds per step
    context: float = 0.0  # tokens, the default c

    def __post_init__(self):
        for name in ("flops_per_seq", "flops_per_context", "weight_bytes", "bytes_per_seq",
                     "bytes_per_context", "t0", "context"):
            object.__setattr__(self, name, _nonneg(name, getattr(self, name)))
        for name in ("peak_flops", "bandwidth"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))

    def _args(self, batch, context):
        b = checks.real("batch", batch, positive=True, allow_array=True)
        c = self.context if context is None else checks.real("context", context, nonnegative=True,
                                                              allow_array=True)
        try:
            b, c = np.broadcast_arrays(b, np.asarray(c, dtype=float))
        except ValueError:
            raise ValueError(f"batch={checks.show(batch)} and context={checks.show(context)} "
                             "must have shapes that broadcast together") from None
        return b, c

    @staticmethod
    def _out(names: dict, value: np.ndarray):
        checks.finite_result(names, value)
        return float(value) if value.ndim == 0 else value

    def flops(self, batch, context=None):
        """FLOP of one step: ``batch · (flops_per_seq + flops_per_context · context)``.

        ``batch`` (sequences, > 0) and ``context`` (tokens per sequence, >= 0; None: the field
        ``context``) are scalars or arrays that broadcast; a scalar gives a float."""
        b, c = self._args(batch, context)
        return self._out({"batch": batch, "context": context}, b * (self.flops_per_seq + self.flops_per_context * c))

    def bytes(self, batch, context=None):
        """Bytes moved by one step: ``weight_bytes + batch · (bytes_per_seq + bytes_per_context ·
        context)``. Arguments as in :meth:`flops`."""
        b, c = self._args(batch, context)
        return self._out({"batch": batch, "context": context},
                         self.weight_bytes + b * (self.bytes_per_seq + self.bytes_per_context * c))

    def seconds(self, batch, context=None):
        """Seconds of one step: ``t0 + max(flops / peak_flops, bytes / bandwidth)``. Arguments as
        in :meth:`flops`."""
        b, c = self._args(batch, context)
        f = b * (self.flops_per_seq + self.flops_per_context * c)
        q = self.weight_bytes + b * (self.bytes_per_seq + self.bytes_per_context * c)
        return self._out({"batch": batch, "context": context},
                         self.t0 + np.maximum(f / self.peak_flops, q / self.bandwidth))

    __call__ = seconds

    def compute_bound_batch(self, context=None) -> int | None:
        """The smallest batch (sequences) whose step is compute-bound, ``F / P >= Q / W``, at
        ``context`` tokens per sequence (None: the field ``context``); None if no batch is.

        ``F/P − Q/W = b · (f/P − q/W) − weight_bytes/W`` with ``f`` and ``q`` the per-sequence
        FLOP and bytes at this context, so ``b* = ceil(weight_bytes / (W · (f/P − q/W)))`` when
        ``f/P > q/W``. When a sequence's own bytes (its cache) take longer than its FLOP, every
        batch stays bandwidth-bound and the answer is None. ``ValueError`` if b* is above 2**53.
        """
        c = self.context if context is None else checks.real("context", context, nonnegative=True)
        f = self.flops_per_seq + self.flops_per_context * c
        q = self.bytes_per_seq + self.bytes_per_context * c
        gain = f / self.peak_flops - q / self.bandwidth  # seconds per added sequence, compute minus memory
        checks.finite_result({"context": context}, gain)
        if gain <= 0:
            return None
        fixed = self.weight_bytes / self.bandwidth
        estimate = fixed / gain
        if not estimate <= checks.MAX_INT:
            raise ValueError(f"context={checks.show(context)}: the compute-bound batch ({estimate:.3g}) "
                             "is above 2**53")

        def bound(b):
            return b * f / self.peak_flops >= self.weight_bytes / self.bandwidth + b * q / self.bandwidth

        b = max(1, math.ceil(estimate))
        while b > 1 and bound(b - 1):  # the float estimate can be one off either way
            b -= 1
        while not bound(b):
            b += 1
        return b


def _affine_work(config, batch: int, context: int, bytes_per_value: float) -> tuple[float, float]:
    return decoder.totals(decoder.layer_ops(config, batch=batch, context=context, phase="decode",
                                            bytes_per_value=bytes_per_value))


def decode_step(config: decoder.DecoderConfig, context: float, peak_flops: float, bandwidth: float,
                t0: float = 0.0, bytes_per_value: float = 2, lm_head: bool = True,
                fused: bool = False) -> RooflineStep:
    """The decode step of a whole model as a :class:`RooflineStep` (``T(b, c)`` in seconds).

    Its FLOP and bytes are ``n_layers`` × one layer of :func:`decoder.layer_ops` (phase
    ``"decode"``: each op its own kernel, the weights read once, each sequence's KV cache of ``c``
    tokens read once), plus, if ``lm_head``, the final RMSNorm and the output projection
    (``(b, d) @ (d, vocab)``: ``2·b·d·vocab`` FLOP, its ``d·vocab`` weights read once). The
    embedding lookup is left out (``b·d`` values). Both totals are exactly linear in ``b`` and in
    ``b · c``, so the coefficients come from layer_ops at three (batch, context) points.
    ``context`` (tokens, >= 0) is the step's default ``c``; ``peak_flops`` in FLOP/s,
    ``bandwidth`` in bytes/s, ``t0`` seconds per step, ``bytes_per_value`` bytes per weight,
    activation and cached value. ``fused=True`` is the bound of a step fused into kernels that keep
    every activation on chip: only the weights and each sequence's cached keys and values
    (``n_layers · kv_width · bytes_per_value`` per cached token) cross the memory bus, so the bytes
    per sequence are 0 and the bytes per cached token are the cache's own; the FLOP are unchanged.
    ``TypeError`` if ``config`` is not a DecoderConfig;
    ``ValueError`` naming ``lm_head`` if the config has no vocabulary size.
    Taught in: "Batching" (chapter 08).
    """
    if not isinstance(config, decoder.DecoderConfig):
        raise TypeError(f"config={checks.show(config)} must be a DecoderConfig (e.g. decoder.LLAMA2_7B)")
    context = _nonneg("context", context)
    peak_flops, bandwidth = _positive("peak_flops", peak_flops), _positive("bandwidth", bandwidth)
    t0 = _nonneg("t0", t0)
    bpv = _positive("bytes_per_value", bytes_per_value)
    lm_head = checks.boolean("lm_head", lm_head)
    fused = checks.boolean("fused", fused)
    f11, q11 = _affine_work(config, 1, 1, bpv)
    f21, q21 = _affine_work(config, 2, 1, bpv)
    f12, q12 = _affine_work(config, 1, 2, bpv)
    layers = config.n_layers
    f_ctx = (f12 - f11) * layers
    f_seq = (f11 - (f12 - f11)) * layers
    q_ctx = (q12 - q11) * layers
    q_seq = (q21 - q11 - (q12 - q11)) * layers
    q_w = (q11 - (q21 - q11)) * layers
    if lm_head:
        d, v = config.d_model, config.vocab_size
        if v == 0:
            raise ValueError(f"lm_head=True but config {config.name!r} has vocab_size=0: "
                             "pass lm_head=False or a config with its vocabulary")
        f_seq += 4 * d + 2 * d * v  # final RMSNorm, output projection
        q_w += bpv * (d + d * v)  # the norm's scales, the projection's weights
        q_seq += bpv * (2 * d + d + v)  # norm in and out; projection in, logits out
    if fused:
        q_seq, q_ctx = 0.0, float(layers * config.kv_width * bpv)
    return RooflineStep(f_seq, f_ctx, q_w, q_seq, q_ctx, peak_flops, bandwidth, t0, context)


def prefill_step(config: decoder.DecoderConfig, peak_flops: float, bandwidth: float, t0: float = 0.0,
                 bytes_per_value: float = 2) -> RooflineStep:
    """A prefill step as a :class:`RooflineStep` whose ``batch`` is the number of prompt tokens.

    The prompt's tokens pass through the weights together, as rows of one batch: ``F = tokens ·
    flops_per_seq``, ``Q = weight_bytes + tokens · bytes_per_seq`` (each token's K and V written
    once), ``T = t0 + max(F/P, Q/W)`` seconds. Left out: attention among the prompt's own tokens
    (about ``4·c²·d`` FLOP per layer for a prompt of ``c`` tokens: 4 % of a Llama-2-7B prefill at
    c = 1,024, 16 % at 4,096) and the LM head of each prompt's last token. It is
    :func:`decode_step` at context 0 without the LM head. Arguments and errors as there.
    Taught in: "Batching" (chapter 08).
    """
    return decode_step(config, 0, peak_flops, bandwidth, t0=t0, bytes_per_value=bytes_per_value, lm_head=False)


@dataclasses.dataclass(frozen=True, eq=False)
class StepTable:
    """A measured step time: ``seconds[i]`` at ``batch[i]`` sequences, linear in between.

    ``batch`` strictly increasing (> 0), ``seconds`` >= 0 and finite, both 1-D of the same
    length. Calling the object (or :meth:`seconds`) interpolates; a batch outside
    ``[batch[0], batch[-1]]`` is a ``ValueError`` (no extrapolation). The table does not depend on
    the context: it holds for the context it was measured at. Taught in: "Batching" (chapter 08).
    """

    batch: np.ndarray
    seconds_at: np.ndarray

    def __init__(self, batch, seconds):
        b = checks.real("batch", batch, positive=True, allow_array=True)
        s = checks.real("seconds", seconds, nonnegative=True, allow_array=True)
        if b.ndim != 1 or s.ndim != 1:
            raise ValueError(f"batch={checks.show(batch)} and seconds={checks.show(seconds)} must be "
                             "1-D sequences")
        if b.shape != s.shape:
            raise ValueError(f"batch has {b.size} values and seconds={checks.show(seconds)} has {s.size}: "
                             "they must have the same length")
        if np.any(np.diff(b) <= 0):
            raise ValueError(f"batch={checks.show(batch)} must be strictly increasing")
        b.flags.writeable = False
        s.flags.writeable = False
        object.__setattr__(self, "batch", b)
        object.__setattr__(self, "seconds_at", s)

    def seconds(self, batch):
        """Seconds of one step at ``batch`` sequences (scalar or array, within the table),
        interpolated linearly between the measured batch sizes."""
        b = checks.real("batch", batch, positive=True, allow_array=True)
        lo, hi = self.batch[0], self.batch[-1]
        if np.any(b < lo) or np.any(b > hi):
            raise ValueError(f"batch={checks.show(batch)} is outside the measured table "
                             f"[{lo:g}, {hi:g}]; a StepTable does not extrapolate")
        out = np.interp(b, self.batch, self.seconds_at)
        return float(out) if out.ndim == 0 else out

    __call__ = seconds


def _takes_context(fn) -> bool:
    """True for a step-time callable of two arguments ``T(b, context)``."""
    if isinstance(fn, RooflineStep):
        return True
    if isinstance(fn, StepTable):
        return False
    try:
        inspect.signature(fn).bind(1, 1)
    except (TypeError, ValueError):
        return False
    return True


def _step_time(value: Any, name: str = "step_time"):
    if isinstance(value, (RooflineStep, StepTable)):
        return value
    return checks.callable_(name, value)


def _checked_seconds(name: str, args: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}{args} returned {checks.show(value)}; it must return seconds "
                         "(a finite number >= 0)") from None
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{name}{args} returned {checks.show(value)}; it must return seconds "
                         "(a finite number >= 0)")
    return x


def throughput(step_time, batch, context=None):
    """Decode throughput in tokens/s: ``batch / T(batch)``, each sequence gaining one token a step.

    ``step_time``: a :class:`RooflineStep`, a :class:`StepTable` or a callable ``T(b)`` or
    ``T(b, context)`` returning seconds (called once per value). ``batch`` (sequences, > 0) scalar
    or array; ``context`` (tokens, >= 0, scalar or array) only for a step time that takes one
    (None: a RooflineStep's own; a two-argument callable needs it). ``ValueError`` if a step takes
    0 s, or names ``context`` if it is given to a step time without one.
    Taught in: "Batching" (chapter 08).
    """
    fn = _step_time(step_time)
    b = checks.real("batch", batch, positive=True, allow_array=True)
    aware = _takes_context(fn)
    if context is not None and not aware:
        raise ValueError(f"context={checks.show(context)} given, but step_time={checks.show(step_time)} "
                         "takes no context")
    if isinstance(fn, RooflineStep):
        t = np.asarray(fn.seconds(b, context), dtype=float)
    elif isinstance(fn, StepTable):
        t = np.asarray(fn.seconds(b), dtype=float)
    else:
        if aware and context is None:
            raise ValueError(f"context=None: step_time={checks.show(step_time)} takes a context; "
                             "pass one (tokens per sequence)")
        c = checks.real("context", context, nonnegative=True, allow_array=True) if aware else np.zeros(())
        try:
            bb, cc = np.broadcast_arrays(b, c)
        except ValueError:
            raise ValueError(f"batch={checks.show(batch)} and context={checks.show(context)} must have "
                             "shapes that broadcast together") from None
        t = np.empty(bb.shape)
        for idx in np.ndindex(bb.shape):
            args = (float(bb[idx]), float(cc[idx])) if aware else (float(bb[idx]),)
            t[idx] = _checked_seconds("step_time", repr(args) if aware else f"({args[0]!r})", fn(*args))
    if np.any(t <= 0):
        raise ValueError(f"step_time={checks.show(step_time)} takes 0 s at batch={checks.show(batch)}: "
                         "the throughput is unbounded")
    out = np.broadcast_to(b, t.shape) / t
    checks.finite_result({"batch": batch, "context": context}, out)
    return float(out) if out.ndim == 0 else out


@dataclasses.dataclass(frozen=True)
class BatchLimits:
    """Where each limit takes over as the decode batch grows, at ``context`` tokens per sequence.

    ``compute_batch``: the smallest batch whose step is compute-bound (None: none is; below it the
    step is bandwidth-bound). ``kv_batch``: the largest batch whose weights and KV caches fit the
    memory (0: not even one). Built by :func:`batch_limits`. Taught in: "Batching" (chapter 08).
    """

    context: float
    compute_batch: int | None
    kv_batch: int

    def regime(self, batch) -> str:
        """The limit at ``batch`` sequences (an integer >= 1): ``"kv capacity"`` if it does not
        fit (``batch > kv_batch``), else ``"compute"`` from ``compute_batch`` on, else
        ``"bandwidth"``."""
        b = checks.positive_int("batch", batch)
        if b > self.kv_batch:
            return "kv capacity"
        if self.compute_batch is not None and b >= self.compute_batch:
            return "compute"
        return "bandwidth"

    @property
    def binding(self) -> str:
        """What stops the batch from growing usefully: ``"compute"`` if the step turns
        compute-bound at a batch that fits, else ``"kv capacity"``."""
        if self.compute_batch is not None and self.compute_batch <= self.kv_batch:
            return "compute"
        return "kv capacity"


def batch_limits(step: RooflineStep, capacity_bytes: float, weight_bytes: float, kv_bytes_per_token: float,
                 context=None) -> BatchLimits:
    """The batch sizes where compute and KV capacity take over, for a decode ``step``.

    ``compute_batch`` = :meth:`RooflineStep.compute_bound_batch`; ``kv_batch`` = the largest ``b``
    with ``weight_bytes + b · context · kv_bytes_per_token <= capacity_bytes`` (0 if the weights
    alone do not fit). ``capacity_bytes``: device memory for weights and cache (bytes, > 0);
    ``weight_bytes``: the weights held in it (bytes, >= 0); ``kv_bytes_per_token``: cache bytes of
    one token (> 0); ``context``: tokens per sequence (> 0; None: the step's own). ``ValueError``
    naming an argument that is out of range, or ``context`` if it is 0.
    Taught in: "Batching" (chapter 08).
    """
    checks.instance("step", step, RooflineStep)
    capacity = _positive("capacity_bytes", capacity_bytes)
    weights = _nonneg("weight_bytes", weight_bytes)
    per_token = _positive("kv_bytes_per_token", kv_bytes_per_token)
    c = step.context if context is None else checks.real("context", context, nonnegative=True)
    if c <= 0:
        raise ValueError(f"context={checks.show(context if context is not None else c)} must be > 0 "
                         "tokens: an empty cache sets no KV limit")
    per_seq = checks.finite_result({"context": context, "kv_bytes_per_token": kv_bytes_per_token}, c * per_token)
    room = capacity - weights
    kv = 0 if room < per_seq else math.floor(room / per_seq)
    if kv > checks.MAX_INT:
        raise ValueError(f"capacity_bytes={checks.show(capacity_bytes)}, kv_bytes_per_token="
                         f"{checks.show(kv_bytes_per_token)}: the KV batch ({kv:.3g}) is above 2**53")
    while kv > 0 and weights + kv * per_seq > capacity:  # float rounding of the floor
        kv -= 1
    return BatchLimits(float(c), step.compute_bound_batch(c), int(kv))


# -- the workload ---------------------------------------------------------------------------------

def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def arrival_times(n: int, rate: float, scv: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` arrival times (seconds, increasing, from time 0) of a renewal process of ``rate``
    requests/s whose gaps have squared coefficient of variation ``scv`` (variance / mean²).

    ``scv = 1``: exponential gaps, a Poisson process. ``scv > 1``: gamma gaps of shape ``1/scv``
    and scale ``scv/rate`` (mean ``1/rate``), a bursty stream: many short gaps and a few long ones
    at the same mean rate. ``scv < 1``: smoother than Poisson (``scv → 0`` approaches a clock).
    Reproducible: the same ``seed`` (an integer >= 0) gives the same times, and draws independent
    of the lengths :func:`make_requests` draws with that seed. ``ValueError`` naming ``n`` above
    :data:`MAX_REQUESTS`. Taught in: "Batching" (chapter 08).
    """
    n = checks.positive_int("n", n)
    checks.size_limit("n", n, n, MAX_REQUESTS, "arrival times")
    rate = _positive("rate", rate)
    scv = _positive("scv", scv)
    seed = checks.nonneg_int("seed", seed)
    rng = _rng(seed, _ARRIVALS)
    gaps = rng.exponential(1.0 / rate, n) if scv == 1.0 else rng.gamma(1.0 / scv, scv / rate, n)
    times = np.cumsum(gaps)
    return checks.finite_result({"n": n, "rate": rate, "scv": scv}, times)


def _ints(name: str, value: Any, n: int, minimum: int) -> np.ndarray:
    if checks.is_real(value) and not isinstance(value, np.ndarray):
        return np.full(n, checks.integer(name, value, minimum=minimum), dtype=np.int64)
    if checks.is_bool(value) or isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name}={checks.show(value)} must be an integer >= {minimum} or an array of them")
    arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ValueError(f"{name}={checks.show(value)} must be an integer >= {minimum} or a 1-D array of "
                         f"integers (got dtype {arr.dtype}, {arr.ndim}-D)")
    arr = np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr
    if arr.shape != (n,):
        raise ValueError(f"{name}={checks.show(value)} has {arr.size} values; it needs one per request ({n})")
    if arr.size and (arr.min() < minimum or arr.max() > checks.MAX_INT // 4):
        raise ValueError(f"{name}={checks.show(value)} must hold integers from {minimum} to 2**51")
    return arr.astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class Requests:
    """A stream of requests: ``arrival`` times (seconds, >= 0, non-decreasing), ``prompt`` and
    ``output`` lengths (tokens, integers >= 1), one value per request (a scalar is repeated).

    ``service`` (seconds, >= 0, or None): the time each request needs when the work is given in
    seconds instead of tokens, for batched services other than token generation and for the
    classical queues: :func:`simulate` then runs a batch for its longest service time (its members
    start together and each ends after its own), and each request's one reply is its first token.
    ``ValueError`` naming the field that is not a 1-D array of the right length and range.
    Taught in: "Batching" (chapter 08).
    """

    arrival: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    service: np.ndarray | None = None

    def __post_init__(self):
        a = checks.real("arrival", self.arrival, nonnegative=True, allow_array=True)
        if a.ndim != 1:
            raise ValueError(f"arrival={checks.show(self.arrival)} must be a 1-D array of times (seconds)")
        if np.any(np.diff(a) < 0):
            raise ValueError(f"arrival={checks.show(self.arrival)} must be non-decreasing (sort the requests)")
        n = a.size
        fields = {"arrival": a, "prompt": _ints("prompt", self.prompt, n, 1),
                  "output": _ints("output", self.output, n, 1)}
        if self.service is not None:
            s = checks.real("service", self.service, nonnegative=True, allow_array=True)
            s = np.broadcast_to(s, (n,)).astype(float) if s.ndim == 0 else s
            if s.shape != (n,):
                raise ValueError(f"service={checks.show(self.service)} has {s.size} values; it needs one per "
                                 f"request ({n})")
            fields["service"] = s
        for name, arr in fields.items():
            arr = np.array(arr)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    @property
    def n(self) -> int:
        """The number of requests."""
        return int(self.arrival.size)


def _draw(name: str, value: Any, n: int, seed: int, stream: int):
    if callable(value) and not isinstance(value, np.ndarray):
        try:
            drawn = value(_rng(seed, stream), n)
        except Exception as e:  # noqa: BLE001 (the sampler is the caller's code; say which one failed)
            raise ValueError(f"{name}={checks.show(value)} failed when called as {name}(rng, {n}): "
                             f"{type(e).__name__}: {e}") from e
        return drawn
    return value


def make_requests(arrival, prompt=1, output=1, service=None, seed: int = 0) -> Requests:
    """A :class:`Requests` from arrival times and lengths given as values, arrays or samplers.

    ``arrival``: times in seconds (e.g. from :func:`arrival_times`). ``prompt``, ``output``
    (tokens) and ``service`` (seconds, or None): a scalar for every request, an array with one
    value per request, or a sampler ``f(rng, n)`` returning ``n`` values, called with a NumPy
    Generator seeded from ``seed`` (its own stream for each of the three). Example: geometric
    output lengths of mean 100, ``output=lambda rng, n: rng.geometric(1 / 100, n)``; exponential
    service of mean 1 ms, ``service=lambda rng, n: rng.exponential(1e-3, n)``. ``ValueError``
    naming the argument whose values are out of range or whose sampler fails.
    Taught in: "Batching" (chapter 08).
    """
    seed = checks.nonneg_int("seed", seed)
    a = checks.real("arrival", arrival, nonnegative=True, allow_array=True)
    if a.ndim != 1:
        raise ValueError(f"arrival={checks.show(arrival)} must be a 1-D array of times (seconds)")
    n = a.size
    return Requests(a, _draw("prompt", prompt, n, seed, _PROMPT), _draw("output", output, n, seed, _OUTPUT),
                    _draw("service", service, n, seed, _SERVICE))


# -- the result -----------------------------------------------------------------------------------

def _frozen(arr, dtype=float) -> np.ndarray:
    out = np.array(arr, dtype=dtype)
    out.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class ServingRun:
    """What :func:`simulate` returns: per request, per run of the server, and the KV cache over time.

    Per request (seconds): ``arrival``; ``start``, when its batch (or, for ``continuous``, its
    prefill step) starts; ``first_token``, when its first output token exists (the end of its
    prefill); ``end``, when its last token exists. ``prompt`` and ``output`` are its lengths
    (tokens).

    The server's work, in runs: run ``i`` starts at ``batch_start[i]`` (seconds) and serves
    ``batch_size[i]`` sequences for ``batch_steps[i]`` decode steps. For ``fixed`` and ``dynamic``
    a run is a batch (its steps: its longest output − 1; 1 when requests carry service times); for
    ``continuous`` it is a stretch of consecutive decode steps at the same batch size (prefill
    steps are not runs). The batch-size distribution over decode steps is
    ``np.bincount(batch_size, weights=batch_steps)``.

    ``kv_tokens[i]``: the KV cache in use at ``kv_time[i]``, in tokens (prompt + generated of each
    sequence being served; for static batches, prompts padded to the batch's longest). It is
    listed after each prefill, at the end of each run before sequences leave, and after they
    leave; between two listed points within a run it grows by ``batch_size`` tokens per decode
    step (draw it as a line). ``busy_time``: seconds the server computed.
    Taught in: "Batching" (chapter 08).
    """

    policy: str
    max_batch: int
    arrival: np.ndarray
    start: np.ndarray
    first_token: np.ndarray
    end: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    batch_start: np.ndarray
    batch_size: np.ndarray
    batch_steps: np.ndarray
    kv_time: np.ndarray
    kv_tokens: np.ndarray
    busy_time: float

    @property
    def n(self) -> int:
        """The number of requests."""
        return int(self.arrival.size)

    @property
    def queueing_delay(self) -> np.ndarray:
        """``start − arrival`` per request, seconds: the wait before its batch or prefill starts."""
        return self.start - self.arrival

    @property
    def ttft(self) -> np.ndarray:
        """Time to first token, ``first_token − arrival`` per request, seconds."""
        return self.first_token - self.arrival

    @property
    def tpot(self) -> np.ndarray:
        """Time per output token after the first, ``(end − first_token) / (output − 1)`` per
        request, seconds; 0 for a request of one token (it has no later tokens)."""
        return (self.end - self.first_token) / np.maximum(self.output - 1, 1)

    @property
    def latency(self) -> np.ndarray:
        """End-to-end latency, ``end − arrival`` per request, seconds (the time in the system)."""
        return self.end - self.arrival

    @property
    def duration(self) -> float:
        """From the first arrival to the last end, seconds."""
        return float(self.end.max() - self.arrival.min())

    def _per_second(self, count: float) -> float:
        if self.duration <= 0:
            raise ValueError(f"the run lasts {self.duration} s: a rate over it is undefined")
        return count / self.duration

    @property
    def throughput(self) -> float:
        """Requests per second over :attr:`duration`."""
        return self._per_second(self.n)

    @property
    def token_throughput(self) -> float:
        """Output tokens per second over :attr:`duration`."""
        return self._per_second(float(self.output.sum()))

    @property
    def utilization(self) -> float:
        """``busy_time / duration``: the fraction of the run the server computed."""
        return self._per_second(self.busy_time)

    @property
    def mean_batch(self) -> float:
        """Sequences per decode step, averaged over the decode steps: ``Σ batch_size · batch_steps
        / Σ batch_steps`` (the batch that sets the token throughput). With no decode step at all
        (one-token requests) it is the mean of ``batch_size`` over runs, or 0 if there is none.
        For fixed and dynamic batches the mean over batches is ``n / batch_size.size``."""
        steps = float(self.batch_steps.sum())
        if steps > 0:
            return float(np.dot(self.batch_size, self.batch_steps)) / steps
        return float(self.batch_size.mean()) if self.batch_size.size else 0.0

    def summary(self, percentiles=(50, 90, 99)) -> dict[str, float]:
        """A flat dict of the run's figures: ``requests``, ``duration`` (s), ``throughput``
        (requests/s), ``token_throughput`` (tokens/s), ``utilization``, ``mean_batch``, and for
        each of ``queueing_delay``, ``ttft``, ``tpot`` and ``latency`` (seconds) its mean
        (``"<name>_mean"``) and its percentiles (``"<name>_p50"`` for 50). ``tpot`` counts only
        requests of two tokens or more (0 if there are none). ``percentiles``: numbers in [0, 100].
        """
        qs = checks.sequence("percentiles", percentiles,
                             of=lambda name, v: checks.real(name, v, minimum=0, maximum=100))
        out = {"requests": float(self.n), "duration": self.duration, "throughput": self.throughput,
               "token_throughput": self.token_throughput, "utilization": self.utilization,
               "mean_batch": self.mean_batch}
        many = self.output > 1
        metrics = {"queueing_delay": self.queueing_delay, "ttft": self.ttft,
                   "tpot": self.tpot[many] if many.any() else np.zeros(1), "latency": self.latency}
        for name, values in metrics.items():
            out[f"{name}_mean"] = float(values.mean())
            for q, v in zip(qs, np.percentile(values, qs)):
                out[f"{name}_p{q:g}"] = float(v)
        return out


# -- the simulator --------------------------------------------------------------------------------

class _Prefill:
    """Seconds of a prefill of ``tokens`` prompt tokens, each distinct count computed once."""

    def __init__(self, fn):
        self.fn = fn
        self.cache: dict[int, float] = {}

    def __call__(self, tokens: int) -> float:
        if self.fn is None:
            return 0.0
        t = self.cache.get(tokens)
        if t is None:
            try:
                got = self.fn(tokens)
            except ValueError as e:
                raise ValueError(f"prefill_time({tokens}) failed for a prefill of {tokens} prompt tokens: {e}") from e
            t = self.cache[tokens] = _checked_seconds("prefill_time", f"({tokens})", got)
        return t

    def many(self, tokens: np.ndarray) -> np.ndarray:
        if self.fn is None:
            return np.zeros(tokens.shape)
        values, inverse = np.unique(tokens, return_inverse=True)
        return np.array([self(int(v)) for v in values])[inverse]


class _StaticDecode:
    """Decode seconds of a static batch: ``Σ_{j<m} T(k, a + j)`` for k sequences whose caches hold
    ``a, a + 1, ...`` tokens over ``m`` steps. A context-free step is a table over k; one that
    takes the context is tabulated over (k, c) and summed through a cumulative table."""

    def __init__(self, fn, kmax: int, cmax: int):
        ks = np.arange(1, kmax + 1)
        if not _takes_context(fn):
            if isinstance(fn, StepTable):
                table = np.asarray(fn(ks.astype(float)), dtype=float)
            else:
                table = np.array([_checked_seconds("step_time", f"({k})", fn(k)) for k in range(1, kmax + 1)])
            self.table = np.concatenate([[0.0], table])
            self.cum = None
            return
        checks.size_limit("max_batch", kmax, kmax * (cmax + 1), MAX_GRID_CELLS,
                          "cells of the (batch, context) step-time table")
        cs = np.arange(cmax, dtype=float)
        kk, cc = np.meshgrid(ks.astype(float), cs, indexing="ij")
        grid = np.asarray(fn(kk, cc), dtype=float) if isinstance(fn, RooflineStep) else _user_grid(fn, kk, cc)
        self.table = None
        self.cum = np.zeros((kmax + 1, cmax + 1))
        np.cumsum(grid, axis=1, out=self.cum[1:, 1:])

    def one(self, k: int, a: int, m: int) -> float:
        if m <= 0:
            return 0.0
        if self.cum is None:
            return float(self.table[k]) * m
        return float(self.cum[k, a + m] - self.cum[k, a])

    def many(self, k: np.ndarray, a: np.ndarray, m: np.ndarray) -> np.ndarray:
        m = np.maximum(m, 0)
        if self.cum is None:
            return self.table[k] * m
        return self.cum[k, a + m] - self.cum[k, a]


def _user_grid(fn, kk: np.ndarray, cc: np.ndarray) -> np.ndarray:
    got = fn(kk, cc)
    try:
        grid = np.broadcast_to(np.asarray(got, dtype=float), kk.shape)
    except (TypeError, ValueError):
        raise ValueError(f"step_time={checks.show(fn)} called with arrays of batch sizes and contexts "
                         f"returned {checks.show(got)}; it must return seconds of their shape") from None
    bad = ~(np.isfinite(grid) & (grid >= 0))
    if bad.any():
        k, c = np.argwhere(bad)[0]
        raise ValueError(f"step_time={checks.show(fn)} returned {grid[k, c]!r} at batch {k + 1}, context {c}; "
                         "it must return seconds (finite, >= 0)")
    return grid


def _check_table_covers(fn, kmax: int, max_batch: int, n: int) -> None:
    if isinstance(fn, StepTable):
        if fn.batch[0] > 1:
            raise ValueError(f"step_time: the StepTable starts at batch {fn.batch[0]:g}; the simulator needs "
                             "step times from batch 1")
        if fn.batch[-1] < kmax:
            raise ValueError(f"max_batch={max_batch} (with {n} requests, batches of up to {kmax}) is beyond "
                             f"the StepTable given as step_time, which ends at batch {fn.batch[-1]:g}")


def simulate(requests: Requests, step_time=None, *, policy: str, max_batch: int, max_wait=None,
             kv_capacity=None, prefill_time=None) -> ServingRun:
    """Run one server on ``requests`` under a batching ``policy``; a :class:`ServingRun`.

    Requests are served first come, first served. A batch (or a joining group) runs a prefill
    step, ``prefill_time(tokens)`` seconds for its prompt tokens (None: free), which yields each
    request's first token; then decode steps of ``step_time`` seconds each give every sequence one
    more token: a request of ``output`` tokens needs ``output − 1`` of them. ``step_time`` is a
    :class:`RooflineStep` (``T(b, c)``, called at each step's own context, not its default), a
    :class:`StepTable` or a callable ``T(b)`` or ``T(b, c)`` (``c``: tokens in each sequence's
    cache, the mean over the batch; a two-argument callable is called with arrays by the fixed and
    dynamic policies, with floats by continuous). ``prefill_time``: a RooflineStep (see
    :func:`prefill_step`), a StepTable over prompt tokens or a callable of the token count.

    ``policy="fixed"``: wait until ``max_batch`` requests are queued, then run them as one batch
    (the last, partial batch runs after the last arrival). ``"dynamic"``: fire when ``max_batch``
    requests are queued or the oldest has waited ``max_wait`` seconds, whichever comes first (if
    the server is busy then, as soon as it is free, with every queued request up to max_batch).
    Fixed and dynamic batches are static: prompts are padded to the batch's longest (the prefill
    processes ``k · max prompt`` tokens), every sequence's cache holds ``max prompt + j`` tokens at
    decode step ``j``, the batch decodes until its longest request is done, and a request's tokens
    stream out as they are made (its ``end`` is its own last token; its slot stays busy).
    ``"continuous"``: iteration-level batching (Orca, vLLM). At each step boundary finished
    sequences have left; queued requests join in order while fewer than ``max_batch`` run and the
    cache reserved for the running ones, ``prompt + output`` tokens each, plus theirs fits
    ``kv_capacity`` tokens (None: no limit). The joiners run one prefill step on their own (their
    ``Σ prompt`` tokens, not padded; running sequences wait, as in vLLM's scheduler without chunked
    prefill); then each decode step serves every running sequence. Reserving the whole output at
    admission (its length known) means the cache never overflows and no sequence is preempted;
    vLLM allocates pages as tokens come and preempts instead.

    With ``requests.service`` given, ``step_time`` and ``prefill_time`` must be None and a batch
    takes its longest service time (``fixed`` and ``dynamic`` only): with ``max_batch=1`` this is
    the single-server queue M/G/1. Raises ``ValueError`` (``TypeError`` for an object of the wrong
    kind) naming the argument: ``max_wait`` is required by ``dynamic`` only and ``kv_capacity`` is
    taken by ``continuous`` only; a request whose ``prompt + output`` exceeds ``kv_capacity``; a
    step time that returns something other than seconds or a StepTable that does not cover batch
    sizes 1 to ``max_batch``. Deterministic: randomness is in the requests.
    Taught in: "Batching" (chapter 08).
    """
    checks.instance("requests", requests, Requests)
    checks.one_of("policy", policy, POLICIES)
    max_batch = checks.positive_int("max_batch", max_batch)
    if max_wait is not None:
        if policy != "dynamic":
            raise ValueError(f"max_wait={checks.show(max_wait)} is used by policy='dynamic' only (policy={policy!r})")
        max_wait = _nonneg("max_wait", max_wait)
    elif policy == "dynamic":
        raise ValueError("max_wait=None: policy='dynamic' needs the time cap (seconds >= 0)")
    if kv_capacity is not None:
        if policy != "continuous":
            raise ValueError(f"kv_capacity={checks.show(kv_capacity)} is used by policy='continuous' only "
                             f"(policy={policy!r})")
        kv_capacity = checks.positive_int("kv_capacity", kv_capacity)
    service = requests.service is not None
    if service:
        if policy == "continuous":
            raise ValueError("requests carry service times (seconds); policy='continuous' needs token "
                             "counts: build the requests without service")
        if step_time is not None:
            raise ValueError(f"step_time={checks.show(step_time)}: requests carry service times, so the "
                             "step time must be None")
        if prefill_time is not None:
            raise ValueError(f"prefill_time={checks.show(prefill_time)}: requests carry service times, so "
                             "the prefill time must be None")
    elif step_time is None:
        raise ValueError("step_time=None: requests without service times need a step time "
                         "(a RooflineStep, a StepTable or a callable T(b))")
    else:
        step_time = _step_time(step_time)
    if prefill_time is not None:
        prefill_time = _step_time(prefill_time, "prefill_time")
    n = requests.n
    kmax = min(max_batch, n)
    if not service:
        _check_table_covers(step_time, kmax, max_batch, n)
    prefill = _Prefill(prefill_time)
    if policy == "continuous":
        need = requests.prompt + requests.output
        if kv_capacity is not None and need.max() > kv_capacity:
            i = int(np.argmax(need))
            raise ValueError(f"kv_capacity={kv_capacity} tokens is below request {i}'s prompt + output = "
                             f"{int(need[i])} tokens: it could never run")
        return _continuous(requests, step_time, max_batch, kmax, kv_capacity, prefill)
    decode = None
    if not service:
        cmax = int(requests.prompt.max() + requests.output.max())
        decode = _StaticDecode(step_time, kmax, cmax)
    if policy == "fixed":
        bounds, starts = np.arange(0, n, max_batch), None
    else:
        bounds, starts = _dynamic_batches(requests, max_batch, max_wait, decode, prefill)
    return _static_run(requests, policy, max_batch, bounds, starts, decode, prefill)


def _batch_work(requests: Requests, bounds: np.ndarray, decode, prefill):
    """Per batch: size, padded prompt, longest output, prefill and total seconds."""
    k = np.diff(np.append(bounds, requests.n))
    p = np.maximum.reduceat(requests.prompt, bounds)
    o = np.maximum.reduceat(requests.output, bounds)
    if decode is None:
        pre = np.zeros(bounds.size)
        dur = np.maximum.reduceat(requests.service, bounds)
    else:
        pre = prefill.many(k * p)
        dur = pre + decode.many(k, p + 1, o - 1)
    return k, p, o, pre, dur


def _dynamic_batches(requests: Requests, max_batch: int, max_wait: float, decode, prefill):
    """The first request and the start time of each batch under the dynamic policy: a loop over
    batches, each firing at ``max(server free, min(oldest arrival + max_wait, arrival that fills
    it))`` with every request queued by then, up to ``max_batch``."""
    a = requests.arrival.tolist()
    n = len(a)
    service = requests.service.tolist() if decode is None else None
    p, o = requests.prompt.tolist(), requests.output.tolist()
    inf = math.inf
    free = -inf
    i = 0
    firsts, fires = [], []
    while i < n:
        last = i + max_batch - 1
        fire = a[i] + max_wait
        if last < n and a[last] < fire:
            fire = a[last]
        if free > fire:
            fire = free
        k = bisect.bisect_right(a, fire, i, min(i + max_batch, n)) - i
        if service is not None:
            dur = max(service[i:i + k])
        else:
            pk = max(p[i:i + k])
            dur = prefill(k * pk) + decode.one(k, pk + 1, max(o[i:i + k]) - 1)
        free = fire + dur
        firsts.append(i)
        fires.append(fire)
        i += k
    return np.array(firsts, dtype=np.int64), np.array(fires)


def _static_run(requests: Requests, policy: str, max_batch: int, bounds: np.ndarray, start_b, decode,
                prefill) -> ServingRun:
    """Per-request times of static batches (fixed or dynamic) that begin at requests ``bounds``;
    ``start_b``: their start times (dynamic), or None to compute them (fixed)."""
    n = requests.n
    a = requests.arrival
    k, p, o, pre, dur = _batch_work(requests, bounds, decode, prefill)
    if start_b is None:
        # a fixed batch is ready when its last request arrives and starts at max(ready_j, end_{j-1}):
        # with D_j the sum of the durations before batch j, start_j = D_j + max_{i<=j}(ready_i - D_i)
        # (Lindley's recursion, unrolled)
        ready = a[np.minimum(bounds + max_batch - 1, n - 1)]
        done = np.cumsum(dur) - dur
        start_b = np.maximum(done + np.maximum.accumulate(ready - done), ready)
    end_b = start_b + dur
    which = np.repeat(np.arange(bounds.size), k)
    start = start_b[which]
    if decode is None:
        end = start + requests.service
        first = end
    else:
        first = start + pre[which]
        end = first + decode.many(k[which], p[which] + 1, requests.output - 1)
    steps = np.ones_like(k) if decode is None else o - 1
    kv_time = np.column_stack([start_b + pre, end_b, end_b]).ravel()
    kv_tokens = np.column_stack([k * (p + 1), k * (p + o), np.zeros_like(k)]).ravel()
    return ServingRun(policy, max_batch, _frozen(a), _frozen(start), _frozen(first), _frozen(end),
                      _frozen(requests.prompt, np.int64), _frozen(requests.output, np.int64),
                      _frozen(start_b), _frozen(k, np.int64), _frozen(steps, np.int64), _frozen(kv_time),
                      _frozen(kv_tokens, np.int64), float(dur.sum()))


def _continuous(requests: Requests, step_time, max_batch: int, kmax: int, kv_capacity, prefill) -> ServingRun:
    """Iteration-level batching: prefill steps for joiners, and runs of decode steps between events
    (a sequence finishing, or the first step boundary at which the next request may join)."""
    a = requests.arrival.tolist()
    p, o = requests.prompt.tolist(), requests.output.tolist()
    n = len(a)
    cap = math.inf if kv_capacity is None else kv_capacity
    run_steps = _decode_runner(step_time, kmax)
    start, first, end = [0.0] * n, [0.0] * n, [0.0] * n
    run_start, run_size, run_length, kv_time, kv_tokens = [], [], [], [], []
    heap: list[tuple[int, int]] = []  # (decode step after which the sequence is done, request)
    t = 0.0
    busy = 0.0
    i = 0  # next request to admit
    b = 0  # running sequences
    ctx = 0  # tokens in the running sequences' caches: prompt + generated, summed
    reserved = 0  # prompt + output of the running sequences, summed
    steps = 0  # decode steps so far
    while True:
        if b == 0:
            if i >= n:
                break
            if a[i] > t:
                t = a[i]
        room = i < n and b < max_batch and reserved + p[i] + o[i] <= cap
        if room and a[i] <= t:
            joined = i
            tokens = 0
            while i < n and a[i] <= t and b + (i - joined) < max_batch and reserved + p[i] + o[i] <= cap:
                reserved += p[i] + o[i]
                tokens += p[i]
                i += 1
            t_start = t
            dt = prefill(tokens)
            t = t_start + dt
            busy += dt
            for j in range(joined, i):
                start[j] = t_start
                first[j] = t
                if o[j] == 1:
                    end[j] = t
                    reserved -= p[j] + 1
                else:
                    heapq.heappush(heap, (steps + o[j] - 1, j))
                    ctx += p[j] + 1
                    b += 1
            kv_time.append(t)
            kv_tokens.append(ctx)
            continue
        # decode until the next sequence is done, or to the first boundary at or after the next
        # arrival if it could join
        m, dt = run_steps(b, ctx, heap[0][0] - steps, t, a[i] if room else math.inf)
        run_start.append(t)
        run_size.append(b)
        run_length.append(m)
        t += dt
        busy += dt
        steps += m
        ctx += m * b
        kv_time.append(t)
        kv_tokens.append(ctx)
        if heap[0][0] == steps:
            while heap and heap[0][0] == steps:
                j = heapq.heappop(heap)[1]
                end[j] = t
                b -= 1
                ctx -= p[j] + o[j]
                reserved -= p[j] + o[j]
            kv_time.append(t)
            kv_tokens.append(ctx)
    return ServingRun("continuous", max_batch, _frozen(requests.arrival), _frozen(start), _frozen(first),
                      _frozen(end), _frozen(requests.prompt, np.int64), _frozen(requests.output, np.int64),
                      _frozen(run_start), _frozen(run_size, np.int64), _frozen(run_length, np.int64),
                      _frozen(kv_time), _frozen(kv_tokens, np.int64), float(busy))


def _decode_runner(step_time, kmax: int):
    """``run(b, ctx, m_max, t, until) -> (m, seconds)``: up to ``m_max`` decode steps of ``b``
    sequences holding ``ctx`` cached tokens in all (growing by ``b`` a step) from time ``t``,
    stopping after the first step that ends at or after ``until``. A table is constant over a run
    and a RooflineStep is summed in closed form; any other callable is called step by step."""
    if isinstance(step_time, RooflineStep):
        return _roofline_runner(step_time)
    if not _takes_context(step_time):
        table = _StaticDecode(step_time, kmax, 0).table.tolist()

        def constant(b, ctx, m_max, t, until):
            step = table[b]
            if until == math.inf or step <= 0 or t + m_max * step < until:
                return m_max, m_max * step
            m = max(1, min(m_max, math.ceil((until - t) / step)))
            while m > 1 and t + (m - 1) * step >= until:  # the float quotient can be one off
                m -= 1
            while m < m_max and t + m * step < until:
                m += 1
            return m, m * step
        return constant

    def stepwise(b, ctx, m_max, t, until):
        dt = 0.0
        for m in range(1, m_max + 1):
            c = (ctx + (m - 1) * b) / b
            dt += _checked_seconds("step_time", f"({b}, {c!r})", step_time(b, c))
            if t + dt >= until:
                break
        return m, dt
    return stepwise


def _roofline_runner(step: RooflineStep):
    """Runs of decode steps of a RooflineStep in closed form: step ``j`` of a run takes
    ``t0 + max(α + β·j, γ + δ·j)`` (compute, memory), so a run is at most two affine pieces,
    each summed as an arithmetic series; the step that reaches ``until`` solves a quadratic."""
    f1, f2, inv_p = step.flops_per_seq, step.flops_per_context, 1.0 / step.peak_flops
    qw, q1, q2, inv_w, t0 = step.weight_bytes, step.bytes_per_seq, step.bytes_per_context, 1.0 / step.bandwidth, step.t0

    def pieces(b, ctx, m_max):
        alpha, beta = (b * f1 + f2 * ctx) * inv_p, f2 * b * inv_p
        gamma, delta = (qw + b * q1 + q2 * ctx) * inv_w, q2 * b * inv_w
        if beta == delta:
            return [(0, m_max, t0 + max(alpha, gamma), beta)]
        cross = (gamma - alpha) / (beta - delta)  # compute ≥ memory from here on if beta > delta
        if beta > delta:
            first, second = (gamma, delta), (alpha, beta)
            split = min(max(math.ceil(cross), 0), m_max)
        else:
            first, second = (alpha, beta), (gamma, delta)
            split = min(max(math.floor(cross) + 1, 0), m_max)
        out = []
        if split > 0:
            out.append((0, split, t0 + first[0], first[1]))
        if split < m_max:
            out.append((split, m_max, t0 + second[0], second[1]))
        return out

    def total(parts, m):
        """Seconds of the first ``m`` steps."""
        s = 0.0
        for j0, j1, c, e in parts:
            hi = min(j1, m)
            if hi <= j0:
                break
            s += (hi - j0) * c + e * (hi - j0) * (j0 + hi - 1) / 2
        return s

    def one_piece(c, e, m_max, t, until):
        """Steps take ``c + e·j`` seconds: the whole run, or the steps until ``until``."""
        full = m_max * (c + e * (m_max - 1) / 2)
        if t + full < until:
            return m_max, full
        x = until - t
        if e > 0:
            bq = c - e / 2
            m = math.ceil((-bq + math.sqrt(bq * bq + 2 * e * x)) / e)
        else:
            m = math.ceil(x / c)  # c > 0 here: a run of zero-time steps never reaches until
        m = min(max(m, 1), m_max)
        while m > 1 and t + (m - 1) * (c + e * (m - 2) / 2) >= until:  # the float root can be one off
            m -= 1
        while m < m_max and t + m * (c + e * (m - 1) / 2) < until:
            m += 1
        return m, m * (c + e * (m - 1) / 2)

    def run(b, ctx, m_max, t, until):
        alpha, beta = (b * f1 + f2 * ctx) * inv_p, f2 * b * inv_p
        gamma, delta = (qw + b * q1 + q2 * ctx) * inv_w, q2 * b * inv_w
        last = m_max - 1
        compute_first, compute_last = alpha >= gamma, alpha + beta * last >= gamma + delta * last
        if compute_first == compute_last:  # one regime over the run (the difference is linear in j)
            return one_piece(t0 + alpha, beta, m_max, t, until) if compute_first else \
                one_piece(t0 + gamma, delta, m_max, t, until)
        parts = pieces(b, ctx, m_max)
        full = total(parts, m_max)
        if t + full < until:
            return m_max, full
        m = m_max
        done = 0.0
        for j0, j1, c, e in parts:  # the piece in which the run reaches until
            piece = total([(j0, j1, c, e)], j1)
            if t + done + piece >= until:
                # k steps into the piece: done + k·(c + e·j0) + e·k·(k − 1)/2 ≥ until − t
                x, v = until - t - done, c + e * j0
                if e > 0:
                    bq = v - e / 2
                    k = math.ceil((-bq + math.sqrt(bq * bq + 2 * e * x)) / e)
                else:
                    k = math.ceil(x / v) if v > 0 else j1 - j0
                m = min(max(j0 + k, j0 + 1, 1), j1)
                break
            done += piece
        while m > 1 and t + total(parts, m - 1) >= until:  # the float solution can be one off
            m -= 1
        while m < m_max and t + total(parts, m) < until:
            m += 1
        return m, total(parts, m)
    return run
