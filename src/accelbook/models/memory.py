"""The memory hierarchy: where the bytes live, what it costs to move them, and how reuse cuts it.

Moving ``Q`` bytes from a level of bandwidth ``W`` and load latency ``L`` takes

    t(Q) = L + Q / W,            and keeping ``W`` busy needs  Q_in_flight = W · L  (Little's law)

bytes outstanding. Reuse decides ``Q``: a matmul ``C = A·B`` (m × k times k × n) computed in
tiles of ``bm × bn`` outputs that stay in a fast memory reads A ``⌈n/bn⌉`` times and B ``⌈m/bm⌉``
times:

    Q_words = m·k·⌈n/bn⌉ + k·n·⌈m/bm⌉ + 2·m·n

so its arithmetic intensity grows with the tile, up to ``T / b`` FLOP per byte for square tiles of
side ``T`` in ``b``-byte values; the tile that fits a level's capacity caps the intensity that level
can feed. No schedule does better than the I/O lower bound for a fast memory of ``M`` words
(Hong & Kung 1981; the constant of Smith et al. 2019): ``Q ≥ 2·m·n·k/√M − 2·M``.

This module holds the hierarchy as data (``accelbook/data/memory.toml`` plus the capacities and
bandwidths in ``chips.toml``), those formulas, a small LRU cache simulator fed by the loads of loop
nests (naive, reordered and tiled matmul, repeated sweeps), the HBM bytes of fused and unfused
elementwise chains, and the time to stream weights over a host link. Pure NumPy; no JAX.

Taught in: "The memory hierarchy" (chapter 07).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib.resources
import math
import sys
from typing import Any, Iterable, Sequence

import numpy as np

from accelbook import checks, specs
from accelbook.specs import Source, parse_sources
from accelbook.units import to_si

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

GPU_LEVELS = ("registers", "smem_l1", "l2", "hbm", "host")
TPU_LEVELS = ("vregs", "vmem", "hbm", "host")
LEVEL_NAMES = {"registers": "registers", "smem_l1": "shared memory / L1", "l2": "L2 cache",
               "hbm": "HBM", "vregs": "vector registers", "vmem": "VMEM", "host": "host link"}
QUANTITIES = ("latency", "bandwidth")
ORDERS = ("ijk", "ikj", "tiled")
"""Loop orders of the matmul traces: naive ``ijk`` (inner loop over k: a column of B per output),
``ikj`` (the loops reordered: inner loop over j walks rows of B and C), and ``tiled`` (blocks of
``tile × tile`` over all three loops)."""

# PCIe per-lane transfer rate (GT/s) and the fraction of bits that carry data, per generation.
_PCIE = {3: (8.0, 128 / 130), 4: (16.0, 128 / 130), 5: (32.0, 128 / 130), 6: (64.0, 242 / 256)}


def _chip(name: str, value: Any) -> specs.Chip:
    """A chip record, or a chip key or name of chips.toml (``KeyError`` naming the argument)."""
    if isinstance(value, specs.Chip):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name}={checks.show(value)} must be a chip key, a chip name or a specs.Chip")
    try:
        return specs.get_chip(value)
    except KeyError as err:
        raise KeyError(f"{name}={value!r}: {err.args[0]}") from None


# ---------------------------------------------------------------------------------------------
# The data: memory.toml
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Value:
    """One sourced value in SI (bytes, bytes/s or hertz), as printed (``raw`` ``unit``)."""

    value: float
    raw: float
    unit: str
    source: Source
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Link:
    """A host link: its name and bandwidth in ONE direction (bytes/s)."""

    key: str
    name: str
    bandwidth: Value


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A microbenchmark's number, stored as measured: ``value`` in the source's unit (cycles, ns,
    GB/s, TB/s); ``seconds`` or ``bytes_per_s`` in SI; ``clock_hz`` the clock the source ran at, if
    it says."""

    chip: str
    level: str
    quantity: str
    value: float
    unit: str
    clock_hz: float | None
    source: Source
    method: str

    @property
    def cycles(self) -> float | None:
        """A latency in clock cycles (``None`` for a bandwidth)."""
        return self.value if self.quantity == "latency" and self.unit == "cycles" else None

    def seconds(self, clock_hz: float | None = None) -> float | None:
        """A latency in seconds: as measured, or cycles at the run's clock (else ``clock_hz``)."""
        if self.quantity != "latency":
            return None
        if self.unit == "ns":
            return self.value * 1e-9
        clock = self.clock_hz or clock_hz
        return None if clock is None else self.value / clock

    @property
    def bytes_per_s(self) -> float | None:
        return to_si(self.value, self.unit)[0] if self.quantity == "bandwidth" else None


@dataclasses.dataclass(frozen=True)
class MemoryData:
    sources: dict[str, Source]
    links: dict[str, Link]
    clocks: dict[str, Value]
    levels: dict[str, dict[str, dict[str, Value]]]
    measured: tuple[Measurement, ...]


def _value(where: str, entry: Any, sources: dict[str, Source], si_unit: str) -> Value:
    if not isinstance(entry, dict) or not {"value", "unit", "source"} <= set(entry) \
            or set(entry) - {"value", "unit", "source", "note"}:
        raise ValueError(f"{where}: expected {{value, unit, source, note?}}, got {entry!r}")
    if entry["source"] not in sources:
        raise ValueError(f"{where}: source {entry['source']!r} is not in [sources]")
    value, unit = to_si(entry["value"], entry["unit"])
    if unit != si_unit:
        raise ValueError(f"{where}: unit {entry['unit']!r} converts to {unit!r}, expected {si_unit!r}")
    return Value(value, entry["value"], entry["unit"], sources[entry["source"]], entry.get("note", ""))


_LEVEL_FIELDS = {"bandwidth": "B/s", "capacity": "B"}


def parse(data: dict) -> MemoryData:
    """Validate a parsed memory.toml (as a dict) and build its records."""
    checks.instance("data", data, dict)
    sources = parse_sources(data.get("sources", {}))
    known_chips = {c.key for c in specs.chips()}
    links = {key: Link(key, entry["name"], _value(f"links.{key}.bandwidth", entry.get("bandwidth"), sources, "B/s"))
             for key, entry in data.get("links", {}).items()}
    clocks, levels = {}, {}
    for chip, entry in data.get("chips", {}).items():
        if chip not in known_chips:
            raise ValueError(f"chips.{chip}: not a chip key of chips.toml; known: {sorted(known_chips)}")
        if "clock" in entry:
            clocks[chip] = _value(f"chips.{chip}.clock", entry["clock"], sources, "Hz")
        for level, fields in entry.get("levels", {}).items():
            if level not in LEVEL_NAMES:
                raise ValueError(f"chips.{chip}.levels.{level}: allowed levels are {sorted(LEVEL_NAMES)}")
            for field, value in fields.items():
                if field not in _LEVEL_FIELDS:
                    raise ValueError(f"chips.{chip}.levels.{level}.{field}: allowed {sorted(_LEVEL_FIELDS)}")
                levels.setdefault(chip, {}).setdefault(level, {})[field] = _value(
                    f"chips.{chip}.levels.{level}.{field}", value, sources, _LEVEL_FIELDS[field])
    measured = []
    for i, m in enumerate(data.get("measured", [])):
        where = f"measured[{i}]"
        if m.get("chip") not in known_chips:
            raise ValueError(f"{where}: chip {m.get('chip')!r} is not in chips.toml")
        if m.get("level") not in LEVEL_NAMES or m.get("quantity") not in QUANTITIES:
            raise ValueError(f"{where}: level must be one of {sorted(LEVEL_NAMES)}, quantity one of {QUANTITIES}")
        unit = m.get("unit")
        allowed = ("cycles", "ns") if m["quantity"] == "latency" else ("GB/s", "TB/s")
        if unit not in allowed:
            raise ValueError(f"{where}: unit {unit!r} for a {m['quantity']}; allowed: {allowed}")
        if m.get("source") not in sources or not m.get("method"):
            raise ValueError(f"{where}: needs a source from [sources] and a method")
        value = m.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{where}: value={value!r} must be a positive number")
        clock = m.get("clock_mhz")
        measured.append(Measurement(m["chip"], m["level"], m["quantity"], float(value), unit,
                                    None if clock is None else float(clock) * 1e6, sources[m["source"]],
                                    m["method"]))
    return MemoryData(sources, links, clocks, levels, tuple(measured))


@functools.lru_cache(maxsize=None)
def data() -> MemoryData:
    """The records of ``accelbook/data/memory.toml``."""
    text = importlib.resources.files("accelbook").joinpath("data/memory.toml").read_text("utf-8")
    return parse(tomllib.loads(text))


def link(key: str) -> Link:
    """A host link of memory.toml by key: ``pcie3-x16`` … ``pcie6-x16``, ``nvlink-c2c``."""
    links = data().links
    if not isinstance(key, str) or key not in links:
        raise KeyError(f"key={checks.show(key)} is not a link in memory.toml; known: {', '.join(sorted(links))}")
    return links[key]


def pcie_bandwidth(generation: int, lanes: int = 16) -> float:
    """Bytes/s in ONE direction of a PCIe link: ``rate · lanes · efficiency / 8``.

    Rate per lane 8, 16, 32, 64 GT/s for generations 3–6; efficiency 128/130 (3.0–5.0) or 242/256
    payload bytes per FLIT (6.0). ``pcie_bandwidth(5) = 63.0e9``.
    """
    gen = checks.one_of("generation", generation, sorted(_PCIE))
    lanes = checks.one_of("lanes", lanes, (1, 2, 4, 8, 16))
    rate, efficiency = _PCIE[gen]
    return rate * 1e9 * lanes * efficiency / 8


def measurements(chip: str | None = None, level: str | None = None,
                 quantity: str | None = None) -> list[Measurement]:
    """The measured numbers of memory.toml, optionally for one chip key, level and quantity."""
    if chip is not None:
        chip = _chip("chip", chip).key
    if level is not None:
        checks.one_of("level", level, sorted(LEVEL_NAMES))
    if quantity is not None:
        checks.one_of("quantity", quantity, QUANTITIES)
    return [m for m in data().measured if (chip is None or m.chip == chip)
            and (level is None or m.level == level) and (quantity is None or m.quantity == quantity)]


def clock(chip: str) -> Value | None:
    """The clock memory.toml uses to convert this chip's cycle counts to time (``None`` if none)."""
    return data().clocks.get(_chip("chip", chip).key)


def latency(chip: str, level: str) -> tuple[float, float | None, Measurement] | None:
    """The first measured load latency of ``level`` on ``chip``: ``(cycles, seconds, record)``;
    seconds at the run's clock, else at the chip's clock in memory.toml (``None`` if neither)."""
    checks.text("chip", chip)
    checks.text("level", level)
    found = [m for m in measurements(chip, level, "latency") if m.unit == "cycles"]
    if not found:
        return None
    m = found[0]
    c = clock(chip)
    return m.value, m.seconds(c.value if c else None), m


def sm_latencies(chip: str = "a100-80gb") -> dict[str, float]:
    """Measured load latencies in cycles of one chip's L1, L2 and HBM (keys ``l1``, ``l2``, ``hbm``),
    for the latency-hiding model of "Inside a GPU SM" (its memory latency is ``hbm``)."""
    out = {}
    for key, level in (("l1", "smem_l1"), ("l2", "l2"), ("hbm", "hbm")):
        found = latency(chip, level)
        if found is None:
            raise KeyError(f"chip={chip!r}: no measured {level} latency in memory.toml")
        out[key] = found[0]
    return out


# ---------------------------------------------------------------------------------------------
# The hierarchy of one chip
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Level:
    """One level of a chip's hierarchy. ``capacity`` is the whole chip's, in bytes (``None``:
    not published, or not bounded, as for host memory); ``bandwidth`` the chip's datasheet or
    derived figure in bytes/s (one direction for a link); ``measured_bandwidth`` and the latencies
    come from microbenchmarks. ``sources`` name where each number comes from."""

    key: str
    name: str
    capacity: float | None
    per_unit: str
    bandwidth: float | None
    measured_bandwidth: float | None
    latency_cycles: float | None
    latency_s: float | None
    sources: tuple[str, ...]

    def move_time(self, q_bytes: float) -> float:
        """``latency + Q / W`` at this level (the datasheet bandwidth, else the measured one)."""
        w = self.bandwidth or self.measured_bandwidth
        if not w:
            raise ValueError(f"level {self.name!r} has no bandwidth in the data")
        return move_time(q_bytes, w, self.latency_s or 0.0)


def _kib(x: float) -> str:
    return f"{x / 1024:g} KiB" if x < 2**20 else f"{x / 2**20:g} MiB"


def hierarchy(chip: str) -> list[Level]:
    """The levels of ``chip`` (a key or name of chips.toml), fastest first, ending with the host link.

    GPUs: registers, shared memory / L1, L2, HBM (or GDDR), host link; TPUs: vector registers,
    VMEM, HBM, host link. Capacities are per chip (per-SM figures times the SM count). A level with
    no published number has ``None`` there."""
    c = _chip("chip", chip)
    if c.kind == "cpu":
        raise ValueError(f"chip={chip!r} is the host CPU: its caches come from the operating system "
                         "(accelbook.measure.memory.cpu_caches), not from the spec database")
    mine = data().levels.get(c.key, {})

    def spec(field):
        s = c.specs.get(field)
        return (s.value, s.source.key) if s is not None else (None, None)

    def build(key, capacity, per_unit, cap_src):
        extra = mine.get(key, {})
        if capacity is None and "capacity" in extra:
            capacity, cap_src = extra["capacity"].value, extra["capacity"].source.key
        bw = extra.get("bandwidth")
        meas = next(iter(measurements(c.key, key, "bandwidth")), None)
        meas_bw = meas.bytes_per_s if meas else None
        lat = latency(c.key, key) if key != "host" else None
        srcs = tuple(s for s in (cap_src, bw.source.key if bw else None, meas.source.key if meas else None,
                                 lat[2].source.key if lat else None) if s)
        return Level(key, LEVEL_NAMES[key], capacity, per_unit, bw.value if bw else None, meas_bw,
                     lat[0] if lat else None, lat[1] if lat else None, srcs)

    levels = []
    if c.kind == "gpu":
        sms, sms_src = spec("sm_count")
        sms = sms or spec("cu_count")[0]
        for key, field in (("registers", "register_file_per_sm"), ("smem_l1", "l1_smem_per_sm")):
            per, src = spec(field)
            if per is None and key == "smem_l1":
                per, src = spec("shared_mem_per_sm")
            cap = per * sms if per is not None and sms else None
            levels.append(build(key, cap, f"{_kib(per)} per SM × {sms:g}" if cap else "", src))
        l2, src = spec("l2_cache")
        levels.append(build("l2", l2, "", src))
    else:
        levels.append(build("vregs", None, "", None))
        vmem, src = spec("on_chip_memory")
        levels.append(build("vmem", vmem, "", src))
    hbm, src = spec("memory_capacity")
    hbm_level = build("hbm", hbm, "", src)
    if c.memory_bandwidth:
        hbm_level = dataclasses.replace(hbm_level, bandwidth=c.memory_bandwidth,
                                        sources=hbm_level.sources + (c.specs["memory_bandwidth"].source.key,))
    levels.append(hbm_level)
    host_bw, host_src = spec("host_link_bandwidth")
    host_name = c.specs["host_link"].value if "host_link" in c.specs else "host link"
    levels.append(Level("host", f"host over {host_name}", None, "", host_bw,
                        next((m.bytes_per_s for m in measurements(c.key, "host", "bandwidth")), None),
                        None, None, (host_src,) if host_src else ()))
    return levels


# ---------------------------------------------------------------------------------------------
# Moving bytes: time and Little's law
# ---------------------------------------------------------------------------------------------

def move_time(q_bytes, bandwidth: float, latency_s: float = 0.0):
    """Seconds to move ``q_bytes`` from a level: ``latency + Q / W`` (arrays of Q allowed)."""
    q = checks.real("q_bytes", q_bytes, nonnegative=True, allow_array=True)
    w = checks.real("bandwidth", bandwidth, positive=True)
    lat = checks.real("latency_s", latency_s, nonnegative=True)
    out = lat + q / w
    return float(out) if np.ndim(out) == 0 else out


def bytes_in_flight(bandwidth: float, latency_s: float) -> float:
    """Little's law for a memory level: bytes outstanding to sustain ``bandwidth`` (B/s) at
    ``latency_s``: ``W · L``."""
    return checks.real("bandwidth", bandwidth, nonnegative=True) * checks.real("latency_s", latency_s,
                                                                             nonnegative=True)


def effective_bandwidth(q_bytes, bandwidth: float, latency_s: float):
    """What one transfer of ``q_bytes`` achieves: ``Q / (L + Q/W)``; half of ``W`` at ``Q = W·L``."""
    q = checks.real("q_bytes", q_bytes, positive=True, allow_array=True)
    out = q / move_time(q, bandwidth, latency_s)
    return float(out) if np.ndim(out) == 0 else out


# ---------------------------------------------------------------------------------------------
# Reuse and tiling
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TileTraffic:
    """Words moved from the next level by a tiled matmul, per operand, and what follows."""

    a_words: float
    b_words: float
    c_words: float
    flops: float
    footprint_words: int
    bytes_per_value: float

    @property
    def words(self) -> float:
        return self.a_words + self.b_words + self.c_words

    @property
    def bytes(self) -> float:
        return self.words * self.bytes_per_value

    @property
    def intensity(self) -> float:
        """FLOP per byte moved from the next level."""
        return self.flops / self.bytes


def tiled_matmul_traffic(m: int, n: int, k: int, bm: int, bn: int, bk: int = 1,
                         bytes_per_value: float = 4) -> TileTraffic:
    """Traffic of ``C += A·B`` (m×k times k×n) computed in ``bm × bn`` output tiles held in fast
    memory while a ``bk``-deep slice of A and of B streams through.

    ``A: m·k·⌈n/bn⌉``, ``B: k·n·⌈m/bm⌉``, ``C: 2·m·n`` (read once, written once) words; fast memory
    ``bm·bn + bk·(bm + bn)`` words. ``bm = m, bn = n`` is "everything fits": each operand moves once.
    """
    m, n, k = (checks.positive_int(x, v) for x, v in (("m", m), ("n", n), ("k", k)))
    bm, bn, bk = (checks.positive_int(x, v) for x, v in (("bm", bm), ("bn", bn), ("bk", bk)))
    b = checks.real("bytes_per_value", bytes_per_value, positive=True)
    for name, t, size in (("bm", bm, m), ("bn", bn, n), ("bk", bk, k)):
        if t > size:
            raise ValueError(f"{name}={t} is larger than the matrix dimension it tiles ({size})")
    return TileTraffic(float(m * k * math.ceil(n / bn)), float(k * n * math.ceil(m / bm)), 2.0 * m * n,
                       2.0 * m * n * k, bm * bn + bk * (bm + bn), b)


def tile_footprint(bm: int, bn: int, bk: int = 1) -> int:
    """Words of fast memory a ``bm × bn`` output tile and its ``bk`` slices of A and B occupy."""
    bm, bn, bk = (checks.positive_int(x, v) for x, v in (("bm", bm), ("bn", bn), ("bk", bk)))
    return bm * bn + bk * (bm + bn)


def largest_square_tile(capacity_bytes: float, bytes_per_value: float = 2, bk: int | None = None) -> int:
    """The largest square output tile ``T`` whose footprint fits ``capacity_bytes``:
    ``T² + 2·bk·T ≤ M`` words, with ``bk = T`` when not given (three square tiles: ``3T² ≤ M``).
    0 if not even ``T = 1`` fits."""
    cap = checks.real("capacity_bytes", capacity_bytes, nonnegative=True)
    words = int(cap // checks.real("bytes_per_value", bytes_per_value, positive=True))
    if bk is None:
        t = math.isqrt(words // 3)
        while 3 * (t + 1) ** 2 <= words:
            t += 1
        return t
    bk = checks.positive_int("bk", bk)
    t = max(0, math.isqrt(words + bk * bk) - bk)  # T² + 2bkT ≤ M  ⇔  (T + bk)² ≤ M + bk²
    while (t + 1) ** 2 + 2 * bk * (t + 1) <= words:
        t += 1
    while t > 0 and t * t + 2 * bk * t > words:
        t -= 1
    return t


def intensity_ceiling(tile: int, bytes_per_value: float = 2) -> float:
    """The FLOP per byte a square ``tile`` can feed from the next level, for a large matmul:
    each ``bk`` step moves ``2·T·bk`` values for ``2·T²·bk`` FLOP, so ``T / b``."""
    return checks.positive_int("tile", tile) / checks.real("bytes_per_value", bytes_per_value, positive=True)


def io_lower_bound(m: int, n: int, k: int, fast_words: float) -> float:
    """Words any schedule of the ``2mnk``-FLOP matmul must move between a fast memory of
    ``fast_words`` words and the next level: the larger of

    * ``2·m·n·k/√M − 2·M`` (Smith, Lowery, Langou & van de Geijn 2019; the leading term is tight,
      sharpening the Θ(mnk/√M) of Hong & Kung 1981), and
    * ``m·k + k·n + m·n`` (every input read once, the output written once).
    """
    m, n, k = (checks.positive_int(x, v) for x, v in (("m", m), ("n", n), ("k", k)))
    big_m = checks.real("fast_words", fast_words, positive=True)
    return max(2.0 * m * n * k / math.sqrt(big_m) - 2.0 * big_m, float(m * k + k * n + m * n))


# ---------------------------------------------------------------------------------------------
# A small cache simulator
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Trace:
    """The loads and stores of a loop nest: ``addresses`` in words, ``writes`` True where the access
    also writes (a read-modify-write counts once); ``flops`` of the computation; ``label``."""

    addresses: np.ndarray
    writes: np.ndarray
    flops: float
    label: str

    def __len__(self) -> int:
        return len(self.addresses)


def matmul_trace(n: int, order: str = "ijk", tile: int | None = None) -> Trace:
    """Word addresses touched by ``C += A·B`` for ``n × n`` row-major matrices (A at 0, B at n², C at
    2n²) in loop ``order`` (one of :data:`ORDERS`; ``tiled`` needs ``tile`` dividing n).

    ``ijk``: for each (i, j), read A[i, k] and B[k, j] for every k, then update C[i, j].
    ``ikj``: for each (i, k), read A[i, k], then for every j read B[k, j] and update C[i, j].
    ``tiled``: the ``ikj`` nest inside blocks of ``tile`` over i, j and k (block order i, j, k).
    """
    n = checks.positive_int("n", n, maximum=256)
    checks.one_of("order", order, ORDERS)
    a, b, c = 0, n * n, 2 * n * n
    I, J, K = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    if order == "ijk":
        i, j, k = I.ravel(), J.ravel(), K.ravel()  # k innermost
        body = np.stack([a + i * n + k, b + k * n + j], axis=1).ravel()
        body_w = np.zeros(body.size, bool)
        # after the k loop of each (i, j): the update of C[i, j]
        blocks = body.reshape(n * n, 2 * n)
        cs = (c + np.arange(n * n)).reshape(-1, 1)
        addr = np.concatenate([blocks, cs], axis=1).ravel()
        w = np.concatenate([body_w.reshape(n * n, 2 * n), np.ones((n * n, 1), bool)], axis=1).ravel()
        return Trace(addr, w, 2.0 * n**3, "naive (ijk)")
    if order == "ikj":
        return _ikj(n, [(0, n)], [(0, n)], [(0, n)], "reordered (ikj)")
    t = checks.positive_int("tile", tile if tile is not None else 0)
    if n % t:
        raise ValueError(f"tile={t} must divide n={n}")
    blocks = [(s, s + t) for s in range(0, n, t)]
    return _ikj(n, blocks, blocks, blocks, f"tiled ({t}×{t})")


def _ikj(n, bi, bj, bk, label) -> Trace:
    a, b, c = 0, n * n, 2 * n * n
    addr, wr = [], []
    for i0, i1 in bi:
        for j0, j1 in bj:
            for k0, k1 in bk:
                jj = np.arange(j0, j1)
                for i in range(i0, i1):
                    for k in range(k0, k1):
                        seg = np.empty(1 + 2 * len(jj), np.int64)
                        seg[0] = a + i * n + k
                        seg[1::2] = b + k * n + jj
                        seg[2::2] = c + i * n + jj
                        w = np.zeros(seg.size, bool)
                        w[2::2] = True
                        addr.append(seg)
                        wr.append(w)
    return Trace(np.concatenate(addr), np.concatenate(wr), 2.0 * n**3, label)


def sweep_trace(words: int, sweeps: int) -> Trace:
    """A reduction repeated ``sweeps`` times over an array of ``words`` words (no writes): the loop
    of the working-set measurement."""
    words, sweeps = checks.positive_int("words", words, maximum=2**22), checks.positive_int("sweeps", sweeps)
    addr = np.tile(np.arange(words, dtype=np.int64), sweeps)
    return Trace(addr, np.zeros(addr.size, bool), float(words * sweeps), f"{sweeps} sweeps over {words} words")


def simulate_lru(trace: Trace, capacity_lines: int, line_words: int = 8) -> tuple[int, int]:
    """Run ``trace`` through a fully associative LRU cache of ``capacity_lines`` lines of
    ``line_words`` words, write-allocate and write-back; return ``(fills, writebacks)`` in lines.
    Dirty lines still in the cache at the end are written back (counted). A plain reference
    implementation (an ordered dictionary), used to check :class:`StackDistances`."""
    checks.instance("trace", trace, Trace)
    cap = checks.positive_int("capacity_lines", capacity_lines)
    lw = checks.positive_int("line_words", line_words)
    cache: collections.OrderedDict[int, bool] = collections.OrderedDict()
    fills = writebacks = 0
    for address, write in zip((trace.addresses // lw).tolist(), trace.writes.tolist()):
        if address in cache:
            cache.move_to_end(address)
            if write:
                cache[address] = True
            continue
        fills += 1
        if len(cache) >= cap:
            _, dirty = cache.popitem(last=False)
            writebacks += dirty
        cache[address] = bool(write)
    writebacks += sum(cache.values())
    return fills, writebacks


class StackDistances:
    """LRU stack distances of a trace: computed once, they give the traffic of a fully associative
    LRU cache of every capacity (an access hits iff fewer than ``capacity`` distinct lines were
    touched since the last access to its line; Mattson et al. 1970).

    ``traffic_words(capacity_lines)`` = (fills + write-backs) × ``line_words``, the words the cache
    moves from and to the next level; :func:`simulate_lru` gives the same counts."""

    def __init__(self, trace: Trace, line_words: int = 8):
        self.trace = checks.instance("trace", trace, Trace)
        self.line_words = checks.positive_int("line_words", line_words)
        lines = (trace.addresses // self.line_words).tolist()
        dist = np.empty(len(lines), np.int64)
        stack: list[int] = []  # most recently used first
        seen: set[int] = set()
        for t, x in enumerate(lines):
            if x in seen:
                d = stack.index(x)
                del stack[d]
                dist[t] = d
            else:
                seen.add(x)
                dist[t] = -1  # cold
            stack.insert(0, x)
        self.distances = dist
        self.n_lines = len(seen)
        # accesses grouped by line, in time order within a line, for the write-back count
        self._order = np.lexsort((np.arange(len(lines)), np.asarray(lines)))
        self._writes_sorted = trace.writes[self._order]
        self._dist_sorted = dist[self._order]

    def fills(self, capacity_lines: int) -> int:
        cap = checks.positive_int("capacity_lines", capacity_lines)
        return int(np.count_nonzero((self.distances < 0) | (self.distances >= cap)))

    def writebacks(self, capacity_lines: int) -> int:
        """Residencies (fill to eviction, or to the end) of a line during which it was written."""
        cap = checks.positive_int("capacity_lines", capacity_lines)
        miss = (self._dist_sorted < 0) | (self._dist_sorted >= cap)
        residency = np.cumsum(miss)  # each line's first access is a cold miss: ids never straddle lines
        return int(np.unique(residency[self._writes_sorted]).size)

    def traffic_words(self, capacity_lines: int) -> int:
        return (self.fills(capacity_lines) + self.writebacks(capacity_lines)) * self.line_words

    def curve(self, capacities: Sequence[int]) -> np.ndarray:
        """Words moved for each capacity (in lines)."""
        capacities = checks.sequence("capacities", capacities, of=checks.positive_int)
        return np.array([self.traffic_words(int(c)) for c in capacities], float)


def naive_traffic_words(n: int, line_words: int) -> float:
    """Closed form of the ``ijk`` trace in an LRU cache of at least 2 and fewer than ``n - 1``
    lines (n a multiple of the line): per output, A's row costs ``n/L`` lines, B's column ``n``
    lines and C one fill and one write-back: ``L·(n³/L + n³ + 2n²)`` words."""
    n, lw = checks.positive_int("n", n), checks.positive_int("line_words", line_words)
    return float(lw * (n**3 // lw + n**3 + 2 * n * n))


def fits_traffic_words(n: int) -> float:
    """Closed form when everything fits: A and B read once, C read and written once: ``4n²``."""
    n = checks.positive_int("n", n)
    return 4.0 * n * n


# ---------------------------------------------------------------------------------------------
# Fusion (the "HBM bounce") and offload over a host link
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Bounce:
    """HBM bytes and time of a list of ops run one kernel each, and with the elementwise ops fused
    into their neighbours (their inputs and outputs stay on chip)."""

    unfused_bytes: float
    fused_bytes: float
    bandwidth: float

    def __post_init__(self):
        checks.real("unfused_bytes", self.unfused_bytes, nonnegative=True)
        checks.real("fused_bytes", self.fused_bytes, nonnegative=True)
        checks.real("bandwidth", self.bandwidth, positive=True)

    @property
    def saved_bytes(self) -> float:
        return self.unfused_bytes - self.fused_bytes

    @property
    def unfused_time(self) -> float:
        return self.unfused_bytes / self.bandwidth

    @property
    def fused_time(self) -> float:
        return self.fused_bytes / self.bandwidth


def _op(name: str, op: Any) -> Any:
    if not (hasattr(op, "kind") and hasattr(op, "bytes")):
        raise TypeError(f"{name}={checks.show(op)} must be an op with kind and bytes (decoder.layer_ops)")
    checks.real(f"{name}.bytes", op.bytes, nonnegative=True)
    return op


def hbm_bounce(ops: Iterable[Any], bandwidth: float) -> Bounce:
    """Bytes and memory time of ``ops`` (``accelbook.models.decoder.Op``, each with ``kind`` and
    ``bytes``): unfused, every op's bytes cross HBM; fused, the elementwise ops' do not."""
    ops = checks.sequence("ops", ops, of=_op)
    w = checks.real("bandwidth", bandwidth, positive=True)
    total = sum(float(o.bytes) for o in ops)
    elementwise = sum(float(o.bytes) for o in ops if o.kind == "elementwise")
    return Bounce(total, total - elementwise, w)


@dataclasses.dataclass(frozen=True)
class Offload:
    """One decode step whose weights partly live in host memory and stream over a link each step."""

    weight_bytes: float
    offloaded_fraction: float
    hbm_time: float
    link_time: float
    overlap: bool

    @property
    def step_time(self) -> float:
        """``max`` of the two streams when they overlap, else their sum."""
        return max(self.hbm_time, self.link_time) if self.overlap else self.hbm_time + self.link_time

    def slowdown(self, hbm_bandwidth: float) -> float:
        """Step time over the time with every weight in HBM."""
        return self.step_time / (self.weight_bytes / checks.real("hbm_bandwidth", hbm_bandwidth, positive=True))


def offload_step(weight_bytes: float, offloaded_fraction: float, hbm_bandwidth: float,
                 link_bandwidth: float, overlap: bool = True) -> Offload:
    """Read ``(1 − f)·Q`` from HBM and stream ``f·Q`` over the host link (one direction) every step:
    ``t = max((1−f)·Q/W_hbm, f·Q/W_link)`` with overlap, the sum without."""
    q = checks.real("weight_bytes", weight_bytes, positive=True)
    f = checks.real("offloaded_fraction", offloaded_fraction, minimum=0.0, maximum=1.0)
    w_hbm = checks.real("hbm_bandwidth", hbm_bandwidth, positive=True)
    w_link = checks.real("link_bandwidth", link_bandwidth, positive=True)
    checks.boolean("overlap", overlap)
    return Offload(q, f, (1 - f) * q / w_hbm, f * q / w_link, overlap)


def max_offload_for_slowdown(slowdown: float, hbm_bandwidth: float, link_bandwidth: float) -> float:
    """Largest fraction of the weights that can stream over the link (overlapped) while the step
    stays within ``slowdown`` × the all-HBM time: ``f·Q/W_link ≤ s·Q/W_hbm`` gives
    ``f = min(1, s·W_link/W_hbm)``."""
    s = checks.real("slowdown", slowdown, minimum=1.0)
    return min(1.0, s * checks.real("link_bandwidth", link_bandwidth, positive=True)
               / checks.real("hbm_bandwidth", hbm_bandwidth, positive=True))


__all__ = ["GPU_LEVELS", "LEVEL_NAMES", "ORDERS", "QUANTITIES", "TPU_LEVELS", "Bounce", "Level", "Link",
           "Measurement", "MemoryData", "Offload", "StackDistances", "TileTraffic", "Trace", "Value",
           "bytes_in_flight", "clock", "data", "effective_bandwidth", "fits_traffic_words", "hbm_bounce",
           "hierarchy", "intensity_ceiling", "io_lower_bound", "largest_square_tile", "latency", "link",
           "matmul_trace", "max_offload_for_slowdown", "measurements", "move_time", "naive_traffic_words",
           "offload_step", "parse", "pcie_bandwidth", "sm_latencies", "simulate_lru", "sweep_trace",
           "tile_footprint", "tiled_matmul_traffic"]
