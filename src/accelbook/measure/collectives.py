"""Collectives measured on the devices running the notebook: all-reduce, all-gather,
reduce-scatter, all-to-all and a ring permute, timed, checked against NumPy and turned into
nccl-tests' algorithm and bus bandwidth and a fitted α-β model.

Each collective is a jitted ``shard_map`` over a 1-D mesh of the devices (axis ``"ranks"``) that
calls one ``jax.lax`` collective (:func:`collective`). On a machine with one CPU the ranks are
*virtual* CPU devices of one process (:func:`request_virtual_devices`, called before any JAX
operation): a collective there is memory copies and reductions on the same cores and the same
DRAM, not a network, so the numbers show the shape of ``t = α + n·β``, not a link's speed. On
several GPUs the same code runs through XLA's NCCL over NVLink or PCIe, on a TPU slice over the
ICI links. :func:`describe` writes the sentence that says which.

Sizes follow nccl-tests (``S``, :data:`accelbook.models.collectives.N_CONVENTION`): the bandwidth
arithmetic and the fit are :mod:`accelbook.models.collectives`; this module only measures.

Taught in: "Interconnects — when one chip is not enough" (chapter 10).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import re
from typing import Any, Callable, Sequence

import numpy as np

from accelbook import checks
from accelbook.measure.harness import PROBE_BYTES_LIMIT, MeasurementError, Timing, time_call
from accelbook.models import collectives as model
from accelbook.units import fmt

MEASURED_OPS = ("allreduce", "allgather", "reducescatter", "alltoall", "permute")
"""The collectives this module runs (``permute``: each rank sends its block to rank + 1 mod p)."""

DEFAULT_ALGORITHM = {"allreduce": "ring", "allgather": "ring", "reducescatter": "ring",
                     "alltoall": "pairwise", "permute": "direct"}
"""The algorithm of :func:`accelbook.models.collectives.cost_terms` a sweep is fitted with by default."""

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""dtypes a collective sweep can move (book name -> JAX name)."""

_ITEMSIZE = {"fp32": 4, "bf16": 2, "fp16": 2}

PLATFORMS = ("cpu", "gpu", "tpu")

AXIS = "ranks"
"""The name of the mesh axis the collectives run over."""

TIMING_DEFAULTS = {"warmup": 2, "min_repeats": 5, "max_repeats": 50, "min_time": 0.02}
"""Keyword arguments of :func:`accelbook.measure.harness.time_call` used unless given: few repeats,
so five sweeps stay within seconds on a two-core CPU."""

_COUNT_FLAG = "--xla_force_host_platform_device_count"


# ---------------------------------------------------------------------------------------------
# Virtual devices: asking the CPU backend for several devices before JAX starts it
# ---------------------------------------------------------------------------------------------

def _backends_initialized() -> bool:
    """Whether JAX has started its backends (after that the CPU device count is fixed).

    Reads ``jax._src.xla_bridge`` without starting anything: ``backends_are_initialized()`` where
    it exists (recent JAX), else its ``_backends`` cache (non-empty once a backend is up; JAX
    0.4.x). These are JAX internals; if neither can be read, answers True (assume it is too late).
    """
    try:
        from jax._src import xla_bridge
    except Exception:  # pragma: no cover - a JAX without this module
        return True
    probe = getattr(xla_bridge, "backends_are_initialized", None)
    if callable(probe):
        try:
            return bool(probe())
        except Exception:  # pragma: no cover
            return True
    backends = getattr(xla_bridge, "_backends", None)
    return True if backends is None else bool(backends)


def _has_num_cpu_devices(config: Any) -> bool:
    """Whether a JAX config object knows the option ``jax_num_cpu_devices`` (JAX >= 0.4.38)."""
    names = getattr(config, "_value_holders", None)
    if isinstance(names, dict):
        return "jax_num_cpu_devices" in names
    values = getattr(config, "values", None)
    if isinstance(values, dict):
        return "jax_num_cpu_devices" in values
    return hasattr(config, "jax_num_cpu_devices")


def xla_flags_with_device_count(flags: str, n: int) -> str:
    """``XLA_FLAGS`` text ``flags`` with ``--xla_force_host_platform_device_count=n``: the flag
    appended, or its value replaced if it is already there. ``ValueError`` names a bad argument."""
    checks.text("flags", flags)
    n = checks.positive_int("n", n, maximum=4096)
    pattern = re.compile(re.escape(_COUNT_FLAG) + r"=\S*")
    if pattern.search(flags):
        return pattern.sub(f"{_COUNT_FLAG}={n}", flags)
    return f"{flags} {_COUNT_FLAG}={n}".strip()


def request_virtual_devices(n: int = 8) -> bool:
    """Ask JAX's CPU backend for ``n`` devices in this process. Call it before any JAX operation.

    Uses ``jax.config.update("jax_num_cpu_devices", n)`` where the option exists (JAX >= 0.4.38),
    else appends ``--xla_force_host_platform_device_count=n`` to ``os.environ["XLA_FLAGS"]`` (read
    when the CPU backend starts). Returns True if the request can take effect, False if a backend
    is already running: then it changes nothing (restart the kernel and call it first). Either way
    the devices the collectives get are :func:`collective_devices`'s. GPUs and TPUs are not
    affected. ``ValueError`` if ``n`` is not an integer from 1 to 4096.
    """
    n = checks.positive_int("n", n, maximum=4096)
    import jax

    if _backends_initialized():
        return False
    if _has_num_cpu_devices(jax.config):
        try:
            jax.config.update("jax_num_cpu_devices", n)
            return True
        except RuntimeError:  # the backend started between the check and the update
            return False
        except AttributeError:  # pragma: no cover - the option vanished: use the flag
            pass
    os.environ["XLA_FLAGS"] = xla_flags_with_device_count(os.environ.get("XLA_FLAGS", ""), n)
    return True


# ---------------------------------------------------------------------------------------------
# Which devices, and what a collective on them measures
# ---------------------------------------------------------------------------------------------

def describe(platform: str, device_count: int, device_kind: str = "", default_backend: str | None = None) -> str:
    """One Markdown sentence saying what a collective on ``device_count`` devices of ``platform``
    ('cpu', 'gpu' or 'tpu') measures. ``default_backend`` is JAX's default backend when it differs
    (a single GPU or TPU chip whose runtime fell back to virtual CPU devices). ``ValueError`` names
    a bad argument."""
    platform = checks.one_of("platform", platform, PLATFORMS)
    n = checks.positive_int("device_count", device_count)
    kind = checks.text("device_kind", device_kind).strip()
    if default_backend is not None:
        default_backend = checks.one_of("default_backend", default_backend, PLATFORMS)
    label = f" ({kind})" if kind and platform != "cpu" else ""
    if platform == "cpu":
        what = (f"{n} virtual CPU device{'s' if n != 1 else ''} of one process, so a collective here is "
                "memory copies and reductions on the same cores and the same DRAM, not a network: the "
                "times show the shape of t = α + n·β, not the speed of any link")
        if default_backend in ("gpu", "tpu"):
            chip = "GPU" if default_backend == "gpu" else "TPU chip"
            return (f"This runtime has one {chip}, and a collective needs at least two devices, so the "
                    f"collectives run on the host CPU instead, on {what}.")
        return f"The ranks are {what}."
    if platform == "gpu":
        return (f"The ranks are {n} GPUs{label}: XLA runs each collective through NCCL over the links "
                "between them, NVLink where the GPUs have it and PCIe otherwise.")
    return (f"The ranks are {n} TPU chips of one slice{label}: each collective runs over the chips' "
            "inter-chip interconnect (ICI) links.")


@dataclasses.dataclass(frozen=True)
class DeviceSet:
    """The devices a collective runs over, in rank order: ``devices`` (JAX devices), their
    ``platform`` ('cpu', 'gpu' or 'tpu') and ``device_kind``; ``virtual`` is True for CPU devices
    of one process; ``note`` is :func:`describe`'s sentence for them."""

    devices: tuple
    platform: str
    device_kind: str
    virtual: bool
    note: str

    @property
    def p(self) -> int:
        """The number of ranks."""
        return len(self.devices)


def device_set(devices: Sequence[Any], default_backend: str | None = None) -> DeviceSet:
    """A :class:`DeviceSet` of ``devices`` (a non-empty sequence of JAX devices of one platform, in
    rank order). ``default_backend``: JAX's default backend, if it differs from theirs (for the
    note). ``TypeError`` if they are not JAX devices; ``ValueError`` if empty, repeated or mixed."""
    if isinstance(devices, DeviceSet):
        return devices
    devices = tuple(checks.sequence("devices", devices))
    for i, d in enumerate(devices):
        if not (hasattr(d, "platform") and hasattr(d, "device_kind") and hasattr(d, "id")):
            raise TypeError(f"devices[{i}]={checks.show(d)} is not a JAX device (jax.devices() lists them)")
    platforms = {str(d.platform) for d in devices}
    if len(platforms) != 1:
        raise ValueError(f"devices: all must be of one platform, got {sorted(platforms)}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices={checks.show(devices)} lists a device twice")
    platform = platforms.pop()
    platform = {"cuda": "gpu", "rocm": "gpu"}.get(platform, platform)
    if platform not in PLATFORMS:
        raise ValueError(f"devices: platform {platform!r} is not one of {PLATFORMS}")
    if default_backend is not None:
        default_backend = {"cuda": "gpu", "rocm": "gpu"}.get(default_backend, default_backend)
        default_backend = checks.one_of("default_backend", default_backend, PLATFORMS)
    kind = str(devices[0].device_kind)
    fallback = default_backend if default_backend != platform else None
    return DeviceSet(devices, platform, kind, platform == "cpu",
                     describe(platform, len(devices), kind, fallback))


def collective_devices(max_devices: int | None = None) -> DeviceSet:
    """The devices to run collectives on: the accelerators when there are 2 or more (a multi-GPU
    machine, a TPU slice), else the CPU devices (virtual ones after :func:`request_virtual_devices`).

    On a runtime with ONE GPU or TPU chip this returns the CPU devices, and the note says the
    collectives then run on the host CPU, not on the accelerator. ``max_devices`` keeps the first
    that many (at least 2). ``RuntimeError`` if fewer than 2 devices exist (the message says to
    call :func:`request_virtual_devices` first, in a fresh kernel); ``ValueError`` names a bad
    ``max_devices``.
    """
    if max_devices is not None:
        max_devices = checks.positive_int("max_devices", max_devices)
        if max_devices < 2:
            raise ValueError(f"max_devices={max_devices} must be at least 2 (a collective needs two ranks)")
    import jax

    default = {"cuda": "gpu", "rocm": "gpu"}.get(jax.default_backend(), jax.default_backend())
    devices = list(jax.devices())
    if default == "cpu" or len(devices) < 2:
        try:
            devices = list(jax.devices("cpu"))
        except RuntimeError:  # a runtime started without its CPU backend
            devices = []
    if len(devices) < 2:
        raise RuntimeError(f"only {len(devices)} device(s) to run collectives on: call "
                           "accelbook.measure.collectives.request_virtual_devices(8) before any JAX "
                           "operation, in a fresh kernel (restart it first)")
    if max_devices is not None:
        devices = devices[:max_devices]
    return device_set(devices, default)


# ---------------------------------------------------------------------------------------------
# The collectives: shard_map + jax.lax, and their NumPy reference
# ---------------------------------------------------------------------------------------------

def _shard_map_call(jax_module: Any) -> tuple[Callable, dict]:
    """(shard_map, extra keyword arguments) for this JAX: ``jax.shard_map`` with
    ``check_vma=False`` where it exists (JAX >= 0.6), else ``jax.experimental.shard_map.shard_map``
    with ``check_rep=False`` (JAX 0.4.x); the check is left out if the function has neither."""
    fn = getattr(jax_module, "shard_map", None)
    if fn is None:
        from jax.experimental.shard_map import shard_map as fn
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover
        params = {}
    if "check_vma" in params:
        return fn, {"check_vma": False}
    if "check_rep" in params:
        return fn, {"check_rep": False}
    return fn, {}


def _check_op(op: Any) -> str:
    return checks.one_of("op", op, MEASURED_OPS)


def _as_devices(devices: Any) -> DeviceSet:
    if devices is None:
        return collective_devices()
    if isinstance(devices, DeviceSet):
        return devices
    return device_set(devices)


@functools.lru_cache(maxsize=None)
def _collective(op: str, devices: tuple) -> Callable:
    import jax
    from jax.sharding import Mesh, PartitionSpec

    p = len(devices)
    mesh = Mesh(np.array(devices, dtype=object), (AXIS,))
    shard_map, extra = _shard_map_call(jax)

    def body(x):  # x: this rank's block, shape (m,)
        if op == "allreduce":
            return jax.lax.psum(x, AXIS)
        if op == "allgather":
            return jax.lax.all_gather(x, AXIS, tiled=True)
        if op == "reducescatter":
            return jax.lax.psum_scatter(x, AXIS, tiled=True)
        if op == "alltoall":
            chunks = x.reshape(p, -1)  # chunk j goes to rank j; received chunk i came from rank i
            return jax.lax.all_to_all(chunks, AXIS, 0, 0).reshape(-1)
        return jax.lax.ppermute(x, AXIS, [(i, (i + 1) % p) for i in range(p)])

    spec = PartitionSpec(AXIS)
    return jax.jit(shard_map(body, mesh=mesh, in_specs=(spec,), out_specs=spec, **extra))


def collective(op: str, devices: Any = None) -> Callable:
    """A jitted function running collective ``op`` over ``devices`` (a :class:`DeviceSet`, a
    sequence of JAX devices, or None for :func:`collective_devices`).

    It takes ONE global array of shape ``(p·m,)`` sharded along axis 0 over a 1-D mesh of the
    devices (axis ``"ranks"``; rank ``r`` holds elements ``r·m .. (r+1)·m − 1``) and returns the
    per-rank outputs the same way, ``(p·m',)``: ``allreduce`` ``jax.lax.psum`` (m' = m),
    ``allgather`` ``all_gather(tiled)`` (m' = p·m), ``reducescatter`` ``psum_scatter(tiled)``
    (m' = m/p), ``alltoall`` ``all_to_all`` of ``p`` chunks (m' = m; chunk ``j`` goes to rank ``j``),
    ``permute`` ``ppermute`` to rank ``r+1 mod p`` (m' = m). Built with ``shard_map`` and cached by
    ``(op, devices)``. ``ValueError`` names a bad ``op``.
    """
    op = _check_op(op)
    return _collective(op, _as_devices(devices).devices)


def shard_blocks(blocks: Any, devices: Any = None) -> Any:
    """The global JAX array whose rank ``r`` holds ``blocks[r]``: ``blocks`` of shape ``(p, m)``
    flattened and placed one row per device over the ``"ranks"`` mesh of ``devices`` (p of them;
    default :func:`collective_devices`), keeping its dtype. ``ValueError`` if ``blocks`` is not
    an array of finite numbers or its rows do not match the devices."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devs = _as_devices(devices)
    arr = np.asarray(blocks)
    try:
        finite = bool(np.all(np.isfinite(arr.astype(np.float64)))) and arr.dtype.kind != "b"
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise ValueError(f"blocks={checks.show(blocks)} must be an array of finite numbers")
    if arr.ndim != 2 or arr.shape[0] != devs.p or arr.shape[1] < 1:
        raise ValueError(f"blocks of shape {arr.shape} must be (p, m) with p = {devs.p} ranks and m >= 1")
    mesh = Mesh(np.array(devs.devices, dtype=object), (AXIS,))
    return jax.device_put(arr.reshape(-1), NamedSharding(mesh, PartitionSpec(AXIS)))


def reference(op: str, blocks: Any) -> np.ndarray:
    """What ``op`` leaves on each rank, in NumPy (float64): ``blocks`` has shape ``(p, m)``, row
    ``r`` being rank ``r``'s input; returns the ``(p, m')`` per-rank outputs.

    allreduce: every row the sum of the rows (m' = m); allgather: every row the rows concatenated
    (m' = p·m); reducescatter: row ``r`` is block ``r`` of the sum (m' = m/p); alltoall: row ``r``
    is the ``r``-th chunks (m/p values) of ranks 0..p−1 in order (m' = m); permute: row ``r`` is
    rank ``r−1``'s input (rank 0 gets rank p−1's). ``ValueError`` for an unknown ``op``, a
    ``blocks`` that is not a finite 2-D array, or ``m`` not divisible by ``p`` where it must be.
    """
    op = _check_op(op)
    arr = checks.real("blocks", blocks, allow_array=True)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"blocks of shape {arr.shape} must be a 2-D (p ranks, m values) array")
    p, m = arr.shape
    if op in ("reducescatter", "alltoall") and m % p:
        raise ValueError(f"blocks of shape {arr.shape}: {op} needs m={m} divisible by p={p}")
    if op == "allreduce":
        return np.tile(arr.sum(axis=0), (p, 1))
    if op == "allgather":
        return np.tile(arr.reshape(-1), (p, 1))
    if op == "reducescatter":
        return arr.sum(axis=0).reshape(p, m // p)
    if op == "alltoall":
        return arr.reshape(p, p, m // p).transpose(1, 0, 2).reshape(p, m)
    return np.roll(arr, 1, axis=0)


# ---------------------------------------------------------------------------------------------
# Sizes and sweeps
# ---------------------------------------------------------------------------------------------

def elements_per_rank(op: str, n_bytes: int, p: int, dtype: str = "fp32") -> int:
    """Elements of each rank's INPUT for nccl-tests' size ``n_bytes`` (S, bytes) of ``op`` on ``p``
    ranks: ``S / itemsize`` except all-gather, where S counts what a rank ends with and each rank
    contributes ``S / (p·itemsize)``. S must be a positive multiple of ``p · itemsize`` (so
    reduce-scatter and all-to-all split evenly): ``ValueError`` otherwise, naming ``n_bytes``."""
    op = _check_op(op)
    p = checks.positive_int("p", p, maximum=2**20)
    dtype = checks.one_of("dtype", dtype, tuple(DTYPES))
    s = checks.positive_int("n_bytes", n_bytes)
    unit = p * _ITEMSIZE[dtype]
    if s % unit:
        raise ValueError(f"n_bytes={s} must be a multiple of p·itemsize = {p}·{_ITEMSIZE[dtype]} = {unit} bytes")
    m = s // _ITEMSIZE[dtype]
    return m // p if op == "allgather" else m


def default_sizes(platform: str, p: int = 8) -> list[int]:
    """Message sizes ``S`` (bytes) for a sweep on ``p`` ranks of ``platform``: 9 log-spaced sizes,
    each a multiple of ``p·p·8`` bytes (so every op and dtype divides evenly), from ``p·p·8`` up to
    about 4 MiB on a CPU (five sweeps of it take seconds on two cores) and 64 MiB on a GPU or TPU.
    ``ValueError`` names a bad argument."""
    platform = checks.one_of("platform", platform, PLATFORMS)
    p = checks.positive_int("p", p, maximum=4096)
    unit = p * p * 8
    top = (4 if platform == "cpu" else 64) * 2**20
    steps = max(1, int(math.floor(math.log2(max(top / unit, 1)))))
    exps = sorted({int(round(e)) for e in np.linspace(0, steps, 9)})
    return [unit * 2**e for e in exps]


@dataclasses.dataclass(frozen=True)
class CollectivePoint:
    """One size of a collective sweep. ``n_bytes`` is nccl-tests' S
    (:data:`accelbook.models.collectives.N_CONVENTION`: all-reduce the vector each rank holds;
    all-gather the bytes each rank ends with; reduce-scatter the vector each rank starts with;
    all-to-all each rank's send buffer; permute the bytes each rank sends); ``elements`` the
    values of each rank's input. ``seconds`` the median time (s); ``spread`` the 10th and 90th
    percentiles of the ``samples`` timed calls (s); ``algbw = S/t`` and ``busbw = algbw ·
    factor(op, p)`` in bytes/s (nccl-tests); ``max_error`` the largest absolute difference from
    :func:`reference` (0 for a correct run: the inputs are small integers)."""

    op: str
    p: int
    n_bytes: int
    elements: int
    seconds: float
    spread: tuple[float, float]
    samples: int
    algbw: float
    busbw: float
    max_error: float


@dataclasses.dataclass(frozen=True)
class CollectiveSweep:
    """A collective timed over message sizes on ``p`` ranks of ``platform`` (``virtual``: CPU
    devices of one process). ``points`` in size order; the arrays ``n_bytes`` (bytes),
    ``seconds`` (s), ``algbw`` and ``busbw`` (bytes/s) read them; ``note`` says what was measured."""

    op: str
    p: int
    platform: str
    device_kind: str
    virtual: bool
    dtype: str
    points: tuple
    note: str = ""

    @property
    def n_bytes(self) -> np.ndarray:
        """nccl-tests' S of each point (bytes)."""
        return np.array([pt.n_bytes for pt in self.points], dtype=float)

    @property
    def seconds(self) -> np.ndarray:
        """The median time of each point (s)."""
        return np.array([pt.seconds for pt in self.points], dtype=float)

    @property
    def algbw(self) -> np.ndarray:
        """nccl-tests' algorithm bandwidth S/t of each point (bytes/s)."""
        return np.array([pt.algbw for pt in self.points], dtype=float)

    @property
    def busbw(self) -> np.ndarray:
        """nccl-tests' bus bandwidth of each point (bytes/s)."""
        return np.array([pt.busbw for pt in self.points], dtype=float)

    def fit(self, algorithm: str | None = None) -> model.Fit:
        """α (s) and β (s/byte) fitted to the median times with
        :func:`accelbook.models.collectives.fit_alpha_beta` for ``algorithm`` (default
        :data:`DEFAULT_ALGORITHM`: ring, pairwise for all-to-all, direct for permute).
        ``ValueError`` from the model (fewer than two sizes, one rank, an unknown algorithm)."""
        algorithm = DEFAULT_ALGORITHM[self.op] if algorithm is None else algorithm
        return model.fit_alpha_beta(self.op, algorithm, self.p, self.n_bytes, self.seconds)


_SEEDS = {op: i for i, op in enumerate(MEASURED_OPS)}


def collective_sweep(op: str, sizes: Sequence[int] | None = None, devices: Any = None, dtype: str = "fp32",
                     **timing: Any) -> CollectiveSweep:
    """Time collective ``op`` (:func:`collective`) at each nccl-tests size in ``sizes`` (bytes;
    default :func:`default_sizes`) on ``devices`` (default :func:`collective_devices`).

    For each size: seeded per-rank inputs of small integers (-1, 0, 1 as ``dtype``, so every
    correct result is exact), one run checked against :func:`reference` (a wrong answer raises
    :class:`~accelbook.measure.harness.MeasurementError`, never a speed), then
    :func:`~accelbook.measure.harness.time_call` with ``timing`` over :data:`TIMING_DEFAULTS`,
    and algbw/busbw from :func:`accelbook.models.collectives.algorithm_bandwidth` and
    ``bus_bandwidth``. ``ValueError`` names a bad ``op``, ``sizes`` (each a positive multiple of
    ``p·itemsize``) or ``dtype``.
    """
    import jax
    import jax.numpy as jnp

    op = _check_op(op)
    dtype = checks.one_of("dtype", dtype, tuple(DTYPES))
    devs = _as_devices(devices)
    p = devs.p
    if sizes is None:
        sizes = default_sizes(devs.platform, p)
    sizes = checks.sequence("sizes", sizes, of=checks.positive_int)
    itemsize = _ITEMSIZE[dtype]
    for s in sizes:
        if s % (p * itemsize):
            raise ValueError(f"sizes: {s} bytes is not a multiple of p·itemsize = {p}·{itemsize} bytes "
                             f"({dtype} on {p} ranks)")
        m = elements_per_rank(op, s, p, dtype)
        out_per_rank = {"allgather": p * m, "reducescatter": m // p}.get(op, m)
        checks.size_limit("sizes", s, float(p * (m + out_per_rank) * itemsize), PROBE_BYTES_LIMIT,
                          "bytes of inputs and outputs over all ranks")
    settings = {**TIMING_DEFAULTS, **timing}
    fn = _collective(op, devs.devices)
    jdtype = jnp.dtype(DTYPES[dtype])
    rng = np.random.default_rng(_SEEDS[op])
    points = []
    for s in sizes:
        m = elements_per_rank(op, s, p, dtype)
        blocks = rng.integers(-1, 2, size=(p, m)).astype(np.float32)
        x = shard_blocks(blocks.astype(jdtype), devs)
        out = np.asarray(jax.block_until_ready(fn(x))).astype(np.float64).reshape(p, -1)
        want = reference(op, blocks)
        if out.shape != want.shape:
            raise MeasurementError(f"{op} on {p} ranks returned {out.shape} per-rank values, expected {want.shape}")
        err = float(np.max(np.abs(out - want)))
        if not err < 0.5:  # integer inputs: a correct result is exact, a wrong one is off by >= 1
            raise MeasurementError(f"{op} of {s} bytes on {p} ranks disagrees with the NumPy reference: "
                                   f"max error {err:g}")
        t: Timing = time_call(fn, x, **settings)
        sec = t.median
        points.append(CollectivePoint(op, p, int(s), int(m), sec, (t.p10, t.p90), t.n,
                                      model.algorithm_bandwidth(s, sec), model.bus_bandwidth(op, s, sec, p), err))
    return CollectiveSweep(op, p, devs.platform, devs.device_kind, devs.virtual, dtype, tuple(points), devs.note)


# ---------------------------------------------------------------------------------------------
# Copies: host -> device and device -> device
# ---------------------------------------------------------------------------------------------

COPY_KINDS = ("host_to_device", "device_to_device")


def copy_note(platform: str, virtual: bool = True) -> str:
    """One Markdown sentence saying what the copies of :func:`copy_sweep` measure on ``platform``
    ('cpu', 'gpu', 'tpu'; ``virtual``: CPU devices of one process). ``ValueError`` names a bad
    argument."""
    platform = checks.one_of("platform", platform, PLATFORMS)
    virtual = checks.boolean("virtual", virtual)
    if platform == "cpu":
        return ("On CPU devices" + (" of one process" if virtual else "") + " both copies are a memcpy in host "
                "memory, so their bandwidth is the rate at which this CPU copies between caches and DRAM "
                "(it falls once a copy outgrows the caches), not a bus. (Where JAX could share the host "
                "buffer instead of copying, the table says so.)")
    if platform == "gpu":
        return ("Host to device crosses PCIe (or NVLink-C2C on a Grace Hopper) from pageable host memory; "
                "device to device goes GPU to GPU over NVLink or PCIe peer-to-peer, or through the host "
                "where neither is enabled.")
    return ("Host to device crosses the TPU host's PCIe link; device to device goes between two chips of "
            "the slice over ICI.")


@dataclasses.dataclass(frozen=True)
class CopyPoint:
    """One timed copy of ``n_bytes`` (bytes) of ``kind`` 'host_to_device' (``jax.device_put`` of a
    NumPy array to the first device) or 'device_to_device' (of an array on the first device to the
    second). ``seconds`` the median (s), ``spread`` the 10th and 90th percentiles (s) of
    ``samples`` calls; ``bandwidth = n_bytes / seconds`` (bytes/s); ``copied``: False when the
    result shares the source's buffer (no bytes moved), None when that cannot be read."""

    kind: str
    n_bytes: int
    seconds: float
    spread: tuple[float, float]
    samples: int
    bandwidth: float
    copied: bool | None


def _pointer(x: Any) -> int | None:
    try:
        if isinstance(x, np.ndarray):
            return int(x.ctypes.data)
        return int(x.unsafe_buffer_pointer())
    except Exception:  # a backend without host-addressable buffers
        return None


def _off_alignment(values: np.ndarray) -> np.ndarray:
    """A copy of float32 ``values`` whose data starts 4 bytes past a 64-byte boundary.

    XLA's CPU client hands a 64-byte-aligned NumPy array to the device without copying it (the
    device array aliases the host buffer), so timing that would time nothing; off that alignment
    it must copy. (``jax.device_put(..., may_alias=False)`` did not prevent the alias on JAX 0.10.2.)
    """
    buf = np.empty(values.size + 16, np.float32)
    start = (-buf.ctypes.data) % 64 // 4 + 1
    out = buf[start:start + values.size]
    out[...] = values
    return out


def default_copy_sizes(platform: str) -> list[int]:
    """Copy sizes in bytes: 4 KiB to 16 MiB on a CPU, to 256 MiB on a GPU or TPU, ×4 apart.
    ``ValueError`` names a bad ``platform``."""
    platform = checks.one_of("platform", platform, PLATFORMS)
    top = 2**24 if platform == "cpu" else 2**28
    return [2**e for e in range(12, int(math.log2(top)) + 1, 2)]


def copy_table(copies: Sequence[Any], label: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """Headers and rows of a table of :func:`copy_sweep`'s points, one row per size with each kind
    of copy side by side (median time, bandwidth; "(aliased, no copy)" where JAX shared the
    buffer). ``label`` heads the size column. For :func:`accelbook.notebook.markdown_table`.
    Taught in: "Interconnects"."""
    copies = checks.sequence("copies", copies, of=lambda name, v: checks.instance(name, v, CopyPoint))
    label = checks.text("label", label)
    kinds = [k for k in COPY_KINDS if any(c.kind == k for c in copies)]
    names = {"host_to_device": "host → device", "device_to_device": "device → device"}
    by_size: dict = {}
    for c in copies:
        by_size.setdefault(c.n_bytes, {})[c.kind] = c
    head = [f"{label}: size"] + [f"{names[k]}: {what}" for k in kinds for what in ("median time", "bandwidth")]

    def cells(c):
        if c is None:
            return ("", "")
        return (fmt(c.seconds, "s") + (" (aliased, no copy)" if c.copied is False else ""), fmt(c.bandwidth, "B/s"))

    rows = [(fmt(n, "B", binary=True), *[v for k in kinds for v in cells(row.get(k))]) for n, row in by_size.items()]
    return head, rows


def host_link_note(point: Any, chip_name: str, host_bandwidth: float | None) -> str:
    """One sentence on a host → device copy to a runtime's only accelerator (``point``, a
    :class:`CopyPoint`), set against the chip's host link in the spec database (``host_bandwidth``
    bytes/s one way, or None when the database has none). Taught in: "Interconnects"."""
    point = checks.instance("point", point, CopyPoint)
    chip_name = checks.text("chip_name", chip_name, empty=False)
    line = (f"This runtime's one accelerator, a {chip_name}, is also timed on the one real link it has: host → "
            f"device copies to it reached {fmt(point.bandwidth, 'B/s')} at {fmt(point.n_bytes, 'B', binary=True)} "
            "(measured)")
    if host_bandwidth is not None:
        host_bandwidth = checks.real("host_bandwidth", host_bandwidth, positive=True)
        line += (f", {100 * point.bandwidth / host_bandwidth:.0f} % of the {fmt(host_bandwidth, 'B/s')} one way of its "
                 "host link in the spec database (the copy starts from pageable host memory, and small copies pay a "
                 "fixed cost first)")
    return line + "."


def copy_sweep(sizes: Sequence[int] | None = None, devices: Any = None, **timing: Any) -> list[CopyPoint]:
    """Time host -> device and device -> device copies of float32 data at each size in ``sizes``
    (bytes, multiples of 4; default :func:`default_copy_sizes`) on ``devices`` (default
    :func:`collective_devices`; with one device only host -> device). On a CPU the host array is
    placed off the 64-byte alignment at which JAX would alias it instead of copying;
    ``CopyPoint.copied`` says whether a copy was made. Each copy is checked equal to its source. ``timing`` goes to :func:`~accelbook.measure.harness.time_call` over
    :data:`TIMING_DEFAULTS`. ``ValueError`` names a bad ``sizes``; :func:`copy_note` says what
    the copies measure."""
    import jax

    devs = _as_devices(devices)
    if sizes is None:
        sizes = default_copy_sizes(devs.platform)
    sizes = checks.sequence("sizes", sizes, of=checks.positive_int)
    for s in sizes:
        if s % 4:
            raise ValueError(f"sizes: {s} bytes is not a multiple of 4 (the data is float32)")
        checks.size_limit("sizes", s, 2.0 * s, PROBE_BYTES_LIMIT, "bytes of source and copy")
    settings = {**TIMING_DEFAULTS, **timing}
    first = devs.devices[0]
    rng = np.random.default_rng(3)
    out = []
    for s in sizes:
        host = rng.standard_normal(s // 4, dtype=np.float32)
        if devs.platform == "cpu":
            host = _off_alignment(host)
        pairs = [("host_to_device", host, first)]
        if devs.p >= 2:
            pairs.append(("device_to_device", jax.block_until_ready(jax.device_put(host, first)), devs.devices[1]))
        for kind, src, dst in pairs:
            moved = jax.block_until_ready(jax.device_put(src, dst))
            if not np.array_equal(np.asarray(moved), host):
                raise MeasurementError(f"{kind} copy of {s} bytes changed the data")
            a, b = _pointer(src), _pointer(moved)
            copied = None if a is None or b is None else a != b
            t = time_call(lambda src=src, dst=dst: jax.device_put(src, dst), **settings)
            out.append(CopyPoint(kind, int(s), t.median, (t.p10, t.p90), t.n,
                                 model.algorithm_bandwidth(s, t.median), copied))
    return out


__all__ = ["AXIS", "COPY_KINDS", "DEFAULT_ALGORITHM", "DTYPES", "MEASURED_OPS", "PLATFORMS", "TIMING_DEFAULTS",
           "CollectivePoint", "CollectiveSweep", "CopyPoint", "DeviceSet", "collective", "collective_devices",
           "collective_sweep", "copy_note", "copy_sweep", "copy_table", "default_copy_sizes", "default_sizes", "describe",
           "device_set", "elements_per_rank", "host_link_note", "reference", "request_virtual_devices", "shard_blocks",
           "xla_flags_with_device_count"]
