"""Measuring the memory hierarchy of the device running the notebook: bandwidth against working-set
size (whose cliffs show the caches), host <-> device copies against size, and reuse in a matmul.

On a CPU the cache sizes come from the operating system (``/sys/devices/system/cpu/cpu0/cache``),
read through :func:`parse_cache_index`, a pure parser tested with fixture strings.

Taught in: "The memory hierarchy" (chapter 07).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Any, Mapping, Sequence

import numpy as np

from accelbook import checks
from accelbook.measure.harness import MeasurementError, Timing, time_call
from accelbook.measure.overhead import transfer
from accelbook.units import fmt

CACHE_ROOT = "/sys/devices/system/cpu/cpu0/cache"
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)(?:i?B)?\s*$", re.I)


# ---------------------------------------------------------------------------------------------
# The CPU's caches, from the operating system
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CacheLevel:
    """One cache as Linux describes it: level (1, 2, 3), type ('Data', 'Instruction', 'Unified'),
    size in bytes, line size in bytes (None if not given) and how many CPUs share it."""

    level: int
    type: str
    size: int
    line: int | None
    shared_by: int

    def __post_init__(self):
        checks.positive_int("level", self.level, maximum=8)
        checks.text("type", self.type)
        checks.positive_int("size", self.size)
        if self.line is not None:
            checks.positive_int("line", self.line)
        checks.positive_int("shared_by", self.shared_by)

    @property
    def name(self) -> str:
        return f"L{self.level}" + ("d" if self.type == "Data" else "i" if self.type == "Instruction" else "")


def parse_cache_size(text: str) -> int:
    """Bytes of a sysfs cache size string: ``'32K'`` → 32768, ``'1M'``, ``'32768K'``, ``'512'``."""
    checks.text("text", text)
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"text={text!r} is not a cache size (digits with an optional K, M or G)")
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2).upper()]


def _cpu_count(cpu_list: str) -> int:
    count = 0
    for part in cpu_list.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def parse_cache_index(files: Mapping[str, str]) -> CacheLevel:
    """One ``index*`` folder of sysfs, given as ``{file name: contents}`` (``level``, ``type``,
    ``size``, and optionally ``coherency_line_size``, ``shared_cpu_list``)."""
    if not hasattr(files, "get") or isinstance(files, str):
        raise TypeError(f"files={checks.show(files)} must be a mapping of file name -> contents")
    for key in ("level", "type", "size"):
        if key not in files:
            raise KeyError(f"files: no {key!r} entry (a cache index folder has level, type and size)")
    line = files.get("coherency_line_size")
    shared = files.get("shared_cpu_list")
    return CacheLevel(int(files["level"].strip()), files["type"].strip(), parse_cache_size(files["size"]),
                      int(line.strip()) if line and line.strip() else None,
                      _cpu_count(shared) if shared and shared.strip() else 1)


def data_caches(levels: Sequence[CacheLevel]) -> list[CacheLevel]:
    """The caches that hold data (type Data or Unified), innermost first."""
    levels = checks.sequence("levels", levels, nonempty=False,
                             of=lambda name, c: checks.instance(name, c, CacheLevel))
    return sorted((c for c in levels if c.type in ("Data", "Unified")), key=lambda c: c.level)


def cpu_caches(root: str = CACHE_ROOT) -> list[CacheLevel]:
    """This machine's data caches as the operating system lists them (empty where it does not)."""
    out = []
    try:
        names = sorted(n for n in os.listdir(root) if n.startswith("index"))
    except OSError:
        return []
    for name in names:
        files = {}
        for f in ("level", "type", "size", "coherency_line_size", "shared_cpu_list"):
            try:
                with open(os.path.join(root, name, f)) as fh:
                    files[f] = fh.read()
            except OSError:
                pass
        try:
            out.append(parse_cache_index(files))
        except (KeyError, ValueError):
            continue
    return data_caches(out)


# ---------------------------------------------------------------------------------------------
# Bandwidth against working-set size
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One working-set size: ``nbytes`` read and written ``passes`` times per call."""

    nbytes: int
    passes: int
    timing: Timing

    def __post_init__(self):
        checks.positive_int("nbytes", self.nbytes)
        checks.positive_int("passes", self.passes)
        checks.instance("timing", self.timing, Timing)

    @property
    def bytes_per_s(self) -> float:
        """Bytes read and written per second (median call): ``2 · size · passes / t``."""
        return 2 * self.nbytes * self.passes / self.timing.median

    @property
    def p10_p90(self) -> tuple[float, float]:
        """Bandwidth of the slowest and fastest deciles (p90 and p10 of the time)."""
        q = 2 * self.nbytes * self.passes
        return (q / self.timing.p90, q / self.timing.p10)


def sweep_sizes(smallest: int, largest: int, per_octave: int = 2) -> list[int]:
    """Buffer sizes in bytes from ``smallest`` to ``largest``, ``per_octave`` per doubling,
    each a multiple of 1 KiB."""
    lo, hi = checks.positive_int("smallest", smallest), checks.positive_int("largest", largest)
    if hi < lo:
        raise ValueError(f"largest={hi} must be >= smallest={lo}")
    k = checks.positive_int("per_octave", per_octave, maximum=8)
    steps = int(np.floor(np.log2(hi / lo) * k)) + 1
    sizes = {int(round(lo * 2 ** (i / k) / 1024)) * 1024 for i in range(steps)}
    return sorted(s for s in sizes if s >= 1024)


def default_sweep_sizes(backend: str, caches: Sequence[float] = (), memory_bytes: float | None = None) -> list[int]:
    """Sizes for the working-set sweep, one per doubling on a CPU (each size compiles once), two
    elsewhere: from 4 KiB to 4 × the largest cache (at least 16 MiB on a CPU and 256 MiB on an
    accelerator), so that at least two sizes lie beyond it, at most an eighth of device memory."""
    checks.one_of("backend", backend, ("cpu", "gpu", "tpu"))
    caches = checks.sequence("caches", caches, nonempty=False,
                             of=lambda name, c: checks.real(name, c, positive=True))
    if memory_bytes is not None:
        memory_bytes = checks.real("memory_bytes", memory_bytes, minimum=2**20)  # at least 1 MiB
    largest = max([float(c) for c in caches] or [0.0])
    top = max(4 * largest, 16 * 2**20) if backend == "cpu" else max(4 * largest, 256 * 2**20)
    if memory_bytes:
        top = min(top, memory_bytes / 8)
    return sweep_sizes(4 * 1024, int(top), per_octave=1 if backend == "cpu" else 2)


_A, _B = 0.999999, 1e-7  # y <- a·y + b: each pass reads and writes the whole buffer


def _scale_kernel():
    import jax
    import jax.numpy as jnp

    @jax.jit
    def scale(x, passes):
        # an elementwise pass per iteration; the loop carries the array, so no pass can be skipped
        return jax.lax.fori_loop(0, passes, lambda _, y: y * jnp.float32(_A) + jnp.float32(_B), x)

    return scale


def working_set_sweep(sizes: Sequence[int], *, bytes_per_call: float = 32 * 2**20, max_passes: int = 4096,
                      **timing: Any) -> list[SweepPoint]:
    """Bandwidth of an in-place scale ``y ← a·y + b`` over a float32 buffer of each size (bytes):
    one jitted call makes ``passes`` passes (enough to move about ``bytes_per_call``, at least 2,
    so that after the first pass the buffer sits in whatever level holds it), each reading and
    writing the buffer (``2 · size`` bytes). Timed with :func:`time_call`; the result is checked
    against the same passes in NumPy."""
    import jax
    import jax.numpy as jnp

    sizes = checks.sequence("sizes", sizes, of=checks.positive_int, nonempty=True)
    budget = checks.real("bytes_per_call", bytes_per_call, positive=True)
    max_passes = checks.positive_int("max_passes", max_passes, maximum=10**6)
    scale = _scale_kernel()
    rng = np.random.default_rng(0)
    out = []
    for nbytes in sizes:
        n = max(1, nbytes // 4)
        host = rng.standard_normal(n, dtype=np.float32)
        x = jax.device_put(host)
        passes = int(min(max_passes, max(2, round(budget / (8 * n)))))
        p = jnp.int32(passes)
        got = np.asarray(scale(x, p))
        want = host.copy()
        for _ in range(passes):
            want = want * np.float32(_A) + np.float32(_B)
        if not np.allclose(got, want, rtol=2e-3, atol=1e-4):  # FMA vs two roundings, per pass
            raise MeasurementError(f"working-set pass over {nbytes} bytes differs from NumPy")
        out.append(SweepPoint(4 * n, passes, time_call(scale, x, p, **timing)))
    return out


def plateaus(points: Sequence[SweepPoint], edges: Sequence[float]) -> list[float | None]:
    """Median bandwidth of the points between consecutive cache ``edges`` (bytes): one value for
    sizes up to ``edges[0]/2``, one between each pair (from 2 × the smaller to half the larger),
    and one beyond ``2 × edges[-1]``; ``None`` where no point falls in the range."""
    edges = sorted(float(e) for e in edges)
    bounds = [0.0] + edges + [float("inf")]
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        sel = [p.bytes_per_s for p in points if (lo == 0 or p.nbytes >= 2 * lo) and p.nbytes <= hi / 2]
        out.append(float(np.median(sel)) if sel else None)
    return out


# ---------------------------------------------------------------------------------------------
# Host <-> device copies against size
# ---------------------------------------------------------------------------------------------

def transfer_sweep(sizes: Sequence[int], samples: int = 5) -> list:
    """:func:`accelbook.measure.overhead.transfer` at each size (bytes): host → device with
    ``jax.device_put`` and device → host with ``np.asarray``, each waited for."""
    sizes = checks.sequence("sizes", sizes, of=checks.positive_int, nonempty=True)
    return [transfer(s, samples) for s in sizes]


# ---------------------------------------------------------------------------------------------
# Reuse in a matmul: the same FLOPs with more or fewer re-reads of the matrix
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReusePoint:
    """``W @ X`` for an ``n × n`` float32 W and ``columns`` columns of X, computed ``width`` columns
    at a time (one matmul per block, in a loop that re-reads W for each block)."""

    n: int
    columns: int
    width: int
    timing: Timing

    def __post_init__(self):
        for name in ("n", "columns", "width"):
            checks.positive_int(name, getattr(self, name))
        checks.instance("timing", self.timing, Timing)

    @property
    def flops(self) -> float:
        return 2.0 * self.n * self.n * self.columns

    @property
    def weight_reads(self) -> int:
        return self.columns // self.width

    @property
    def bytes(self) -> float:
        """Minimal traffic: W read once per block, X read and the result written once."""
        return 4.0 * (self.weight_reads * self.n * self.n + 2 * self.n * self.columns)

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.timing.median


def reuse_sweep(n: int, columns: int, widths: Sequence[int], **timing: Any) -> list[ReusePoint]:
    """Time ``W @ X`` in blocks of ``width`` columns, for each width (each dividing ``columns``).

    ``jax.lax.map`` runs the blocks one after another inside one jitted call, so XLA cannot merge
    them into one matmul: W is read once per block. Width 1 is a sequence of matrix-vector products
    (intensity about 0.5 FLOP per byte), width ``columns`` one matmul. Checked against NumPy."""
    import jax
    import jax.numpy as jnp

    n, columns = checks.positive_int("n", n, maximum=2**16), checks.positive_int("columns", columns)
    widths = checks.sequence("widths", widths, of=checks.positive_int, nonempty=True)
    for w in widths:
        if columns % w:
            raise ValueError(f"widths: {w} does not divide columns={columns}")
    rng = np.random.default_rng(1)
    w_host = rng.standard_normal((n, n), dtype=np.float32) / np.float32(np.sqrt(n))
    x_host = rng.standard_normal((n, columns), dtype=np.float32)
    W, X = jax.device_put(w_host), jax.device_put(x_host)
    probe = rng.standard_normal(n).astype(np.float32)
    ref = probe @ w_host.astype(np.float64) @ x_host
    out = []
    for width in widths:
        @jax.jit
        def blocked(W, X, width=width):
            blocks = X.reshape(n, columns // width, width).transpose(1, 0, 2)
            ys = jax.lax.map(lambda xb: jnp.dot(W, xb, precision="highest"), blocks)
            return ys.transpose(1, 0, 2).reshape(n, columns)

        y = np.asarray(blocked(W, X))
        err = np.max(np.abs(probe @ y - ref)) / (np.max(np.abs(ref)) + 1e-30)
        if not err < 1e-3:
            raise MeasurementError(f"blocked matmul of width {width} is wrong (relative error {err:.2e})")
        out.append(ReusePoint(n, columns, width, time_call(blocked, W, X, **timing)))
    return out


def default_reuse_size(backend: str, last_cache: float | None = None) -> tuple[int, int]:
    """``(n, columns)`` for :func:`reuse_sweep`: W (n² float32) at least twice the last cache and
    at least 64 MiB on a CPU (1 GiB on an accelerator); ``columns`` 32 on a CPU, 256 elsewhere."""
    checks.one_of("backend", backend, ("cpu", "gpu", "tpu"))
    if last_cache is not None:
        last_cache = checks.real("last_cache", last_cache, positive=True)
    floor = 64 * 2**20 if backend == "cpu" else 2**30
    need = max(floor, 2 * float(last_cache or 0))
    n = 1024
    while 4.0 * n * n < need:
        n *= 2
    return n, 32 if backend == "cpu" else 256




# ---------------------------------------------------------------------------------------------
# What the sweep can show on each backend (text generated per device, tested with fake devices)
# ---------------------------------------------------------------------------------------------

def level_edges(info: Any, caches: Sequence[CacheLevel] = ()) -> list[tuple[str, float]]:
    """The capacities to mark on the working-set sweep: on a CPU the data caches the operating
    system lists (``caches``); on a GPU the L2 of its spec sheet; on a TPU its VMEM; none for a
    device the spec database does not know. ``info`` is an :class:`accelbook.device.DeviceInfo`."""
    from accelbook.device import DeviceInfo

    checks.instance("info", info, DeviceInfo)
    caches = checks.sequence("caches", caches, nonempty=False)
    if info.backend == "cpu":
        return [(c.name, float(c.size)) for c in data_caches(caches)]
    chip = info.chip
    if chip is None:
        return []
    if chip.kind == "gpu" and chip.value("l2_cache"):
        return [("L2", chip.value("l2_cache"))]
    if chip.kind == "tpu" and chip.value("on_chip_memory"):
        return [("VMEM", chip.value("on_chip_memory"))]
    return []


def sweep_note(backend: str) -> str:
    """One sentence on what the working-set sweep can show on ``backend``."""
    checks.one_of("backend", backend, ("cpu", "gpu", "tpu"))
    return {"cpu": "On a CPU the edges are the caches Linux lists for this core (from "
                   "`/sys/devices/system/cpu/cpu0/cache`); a shared last-level cache is shared with every "
                   "other program on the machine, so its cliff is soft.",
            "gpu": "On a GPU each pass is a kernel launch, so at the small end the curve measures launch overhead, "
                   "not L1: the plateau to read is the one between a few MiB and the L2 size, against HBM beyond it.",
            "tpu": "On a TPU, XLA decides what sits in VMEM; a buffer far larger than VMEM must stream from HBM, "
                   "so the right end is HBM, and how much of the left end comes from VMEM is as far as JAX "
                   "lets us see."}[backend]


def copy_note(info: Any, transfers: Sequence[Any]) -> str:
    """What the host <-> device copies measured (``transfers``: results of :func:`transfer_sweep`),
    in words that fit the backend and what each direction did."""
    transfers = checks.sequence("transfers", transfers, nonempty=True)
    if info.backend == "cpu":
        put = all(t.to_device_copies for t in transfers)
        get = all(t.to_host_copies for t in transfers)
        return ("On a CPU backend, host and device are the same memory: "
                + ("`jax.device_put` copied the array, a memcpy inside host memory" if put else
                   "`jax.device_put` shared the NumPy buffer at some sizes instead of copying it")
                + ", and `np.asarray` of a result "
                + ("copied it back." if get else "returned a view at some sizes, no copy at all.")
                + (" The copy curves drawn are memory-to-memory copies, not a link." if put or get else
                   " Neither direction always copied, so no copy curve is drawn."))
    t = transfers[-1]
    chip = info.chip
    link = ""
    if chip is not None and chip.value("host_link_bandwidth"):
        link = (f", against the {fmt(chip.value('host_link_bandwidth'), 'B/s')} per direction of its "
                f"{chip.specs['host_link'].value}")
    return (f"On this {info.backend.upper()} the copies cross the host link: {fmt(t.to_device_bytes_per_s, 'B/s')} "
            f"host → device and {fmt(t.to_host_bytes_per_s, 'B/s')} device → host at "
            f"{fmt(t.nbytes, 'B', binary=True)}{link}, from pageable host memory (pinned buffers get closer). Small copies are latency-bound: $Q/(L + Q/W)$ "
            "reaches half of $W$ only at $Q = WL$.")


__all__ = ["CACHE_ROOT", "CacheLevel", "ReusePoint", "SweepPoint", "copy_note", "cpu_caches", "data_caches",
           "default_reuse_size", "default_sweep_sizes", "level_edges", "parse_cache_index", "parse_cache_size",
           "plateaus", "reuse_sweep", "sweep_note", "sweep_sizes", "transfer_sweep", "working_set_sweep"]
