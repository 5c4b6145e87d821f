"""The spec database: one sourced record per chip, looked up by name or by JAX's device kind.

Every hardware number in the book comes from ``accelbook/data/chips.toml``. Each value there is
written as its source prints it (say ``989.5 TFLOP/s``), with a unit and a cited source; loading
converts it to SI (FLOP/s, bytes, bytes/s, hertz, watts) with :func:`accelbook.units.to_si`.

Taught in: "Introduction" (what is this machine?), "The roofline" (ridge points), and the
appendix "Spec tables".
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import sys
import warnings
from typing import Any

from accelbook import checks
from accelbook.units import UNITS, to_si

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
"""The dtype names the book uses, widest first."""

SOURCE_KINDS = ("datasheet", "whitepaper", "paper", "documentation", "secondary")
CHIP_KINDS = ("gpu", "tpu", "cpu")

# Field name -> (SI unit it must convert to, what it means). The loader rejects any other name.
FIELDS: dict[str, tuple[str, str]] = {
    # memory
    "memory_capacity": ("B", "device memory (HBM, GDDR or DDR) capacity"),
    "memory_capacity_visible": ("B", "device memory as the device reports it to programs (nvidia-smi's total)"),
    "memory_type": ("text", "device memory technology"),
    "memory_bandwidth": ("B/s", "peak device-memory bandwidth"),
    "l2_cache": ("B", "last-level on-chip cache (L2) capacity"),
    "on_chip_memory": ("B", "software-managed on-chip memory per chip (TPU VMEM, TPU v1 buffers)"),
    # clocks and power
    "clock": ("Hz", "boost or peak clock the peak FLOP/s are quoted at"),
    "tdp": ("W", "thermal design power (board or module)"),
    "process": ("text", "manufacturing process"),
    # links
    "host_link": ("text", "link to the host CPU"),
    "host_link_bandwidth": ("B/s", "host link bandwidth, one direction"),
    "scaleup_link": ("text", "chip-to-chip interconnect (NVLink, Infinity Fabric, ICI)"),
    "scaleup_bandwidth": ("B/s", "chip-to-chip bandwidth per chip, both directions added"),
    "scaleup_links": ("count", "chip-to-chip links (ports) per chip"),
    "scaleup_link_bandwidth": ("B/s", "bandwidth of one chip-to-chip link, one direction"),
    "scaleup_peer_bandwidth": ("B/s", "bandwidth to one neighbour, one direction (all links through a switch; one port on a torus)"),
    "scaleup_topology": ("text", "how chips connect (switch, torus, mesh)"),
    "host_link_key": ("text", "the host link's key in links.toml (accelbook.models.collectives.chip_links)"),
    "scaleup_link_key": ("text", "the scale-up link's key in links.toml"),
    "scaleup_switch_key": ("text", "the scale-up switch's key in links.toml (NVSwitch generation)"),
    "scaleout_link_key": ("text", "the scale-out network's key in links.toml (the NIC port per device of the reference system)"),
    # NVIDIA / AMD GPU compute units
    "compute_capability": ("text", "CUDA compute capability (NVIDIA)"),
    "sm_count": ("count", "streaming multiprocessors (NVIDIA)"),
    "tensor_cores_per_sm": ("count", "tensor cores per SM (NVIDIA)"),
    "fp32_lanes_per_sm": ("count", "FP32 'CUDA cores' per SM (NVIDIA)"),
    "cu_count": ("count", "compute units (AMD)"),
    "matrix_cores_per_cu": ("count", "matrix cores per CU (AMD)"),
    "shared_mem_per_sm": ("B", "maximum shared memory per SM (LDS per CU on AMD)"),
    "l1_smem_per_sm": ("B", "combined L1 + shared memory per SM"),
    "register_file_per_sm": ("B", "register file per SM (per CU on AMD)"),
    "max_threads_per_sm": ("count", "maximum resident threads per SM"),
    "warp_size": ("count", "threads per warp (wavefront on AMD)"),
    # TPU compute units
    "tensorcores_per_chip": ("count", "TPU TensorCores per chip"),
    "mxus_per_tensorcore": ("count", "matrix units (MXUs) per TensorCore"),
    "mxu_rows": ("count", "rows of one MXU systolic array"),
    "mxu_cols": ("count", "columns of one MXU systolic array"),
}


@dataclasses.dataclass(frozen=True)
class Source:
    """One cited document: a datasheet, whitepaper, paper or documentation page."""

    key: str
    title: str
    url: str
    kind: str

    def __post_init__(self):
        for name in ("key", "title", "url"):
            checks.text(name, getattr(self, name), empty=False)
        checks.one_of("kind", self.kind, SOURCE_KINDS)


@dataclasses.dataclass(frozen=True)
class Spec:
    """One sourced value: ``value`` in SI (``si_unit``), as printed (``raw``, ``unit``), cited."""

    field: str
    value: Any
    si_unit: str
    raw: Any
    unit: str
    source: Source
    note: str = ""

    def __post_init__(self):
        for name in ("field", "si_unit", "unit", "note"):
            checks.text(name, getattr(self, name))
        if self.source is not None:  # None: a made-up spec (tests, sketches)
            checks.instance("source", self.source, Source)
        if self.si_unit == "text":
            checks.text("value", self.value)
        else:
            checks.real("value", self.value, nonnegative=True)
            checks.real("raw", self.raw, nonnegative=True)


@dataclasses.dataclass(frozen=True)
class Chip:
    """One accelerator's sourced spec sheet.

    ``peak_flops`` maps dtype name to dense peak operations per second (FLOP/s; OP/s for int8).
    A dtype the chip lacks is absent. ``memory_bytes`` and ``memory_bandwidth`` (bytes/s) are
    ``None`` where no spec sheet applies (the host CPU, whose ceilings are measured instead).
    """

    key: str
    name: str
    vendor: str
    kind: str
    architecture: str
    year: int
    device_kinds: tuple[str, ...]
    peak: dict[str, Spec]
    specs: dict[str, Spec]
    note: str = ""

    @property
    def peak_flops(self) -> dict[str, float]:
        """Dense peak throughput per dtype, in FLOP/s (int8: OP/s)."""
        return {d: self.peak[d].value for d in DTYPES if d in self.peak}

    @property
    def memory_bytes(self) -> float | None:
        return self.value("memory_capacity")

    @property
    def memory_bandwidth(self) -> float | None:
        return self.value("memory_bandwidth")

    def value(self, field: str, default: Any = None) -> Any:
        """The SI value of spec ``field`` (a key of :data:`FIELDS`), or ``default`` if absent."""
        if not isinstance(field, str) or field not in FIELDS:
            raise KeyError(f"field={checks.show(field)} is not a spec field; allowed: {sorted(FIELDS)}")
        spec = self.specs.get(field)
        return default if spec is None else spec.value

    def ridge_point(self, dtype: str = "bf16") -> float:
        """Arithmetic intensity (FLOP per byte of memory traffic) where compute and bandwidth meet.

        ``ridge = peak_flops[dtype] / memory_bandwidth``. Below it a kernel is bandwidth-bound,
        above it compute-bound (chapter "The roofline").
        """
        check_dtype(dtype)
        if dtype not in self.peak:
            have = ", ".join(self.peak_flops) or "none"
            raise ValueError(f"dtype={dtype!r}: {self.name} has no {dtype} peak (it has: {have})")
        if not self.memory_bandwidth:
            raise ValueError(f"{self.name} has no memory_bandwidth in the spec database")
        return self.peak[dtype].value / self.memory_bandwidth

    def __repr__(self) -> str:
        return f"Chip({self.key!r}, {self.name!r})"


ITEMSIZE = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
"""Bytes per element of each dtype (tf32 is stored as fp32)."""


def itemsize(dtype: str) -> int:
    """Bytes per element of ``dtype`` (one of :data:`DTYPES`)."""
    return ITEMSIZE[check_dtype(dtype)]


def check_dtype(dtype: str) -> str:
    """Return ``dtype`` if it is one of :data:`DTYPES`, else raise ``ValueError`` naming them."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype={checks.show(dtype)} is not a known dtype; allowed: {', '.join(DTYPES)}")
    return dtype


def _spec(chip_key: str, field: str, entry: Any, sources: dict[str, Source], si_unit: str) -> Spec:
    where = f"chips.{chip_key}.{field}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an inline table {{value, unit, source}}, got {entry!r}")
    unknown = set(entry) - {"value", "unit", "source", "note"}
    missing = {"value", "unit", "source"} - set(entry)
    if unknown or missing:
        raise ValueError(f"{where}: keys must be value, unit, source and optional note "
                         f"(missing {sorted(missing)}, unknown {sorted(unknown)})")
    if entry["source"] not in sources:
        raise ValueError(f"{where}: source {entry['source']!r} is not in [sources]")
    try:
        value, got_unit = to_si(entry["value"], entry["unit"])
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if si_unit in ("FLOP/s", "OP/s", "B/s") and not value > 0:
        raise ValueError(f"{where}: value={entry['value']!r} must be > 0 (a peak or a bandwidth divides)")
    if got_unit != si_unit:
        raise ValueError(f"{where}: unit {entry['unit']!r} converts to {got_unit!r}, expected {si_unit!r}")
    return Spec(field, value, si_unit, entry["value"], entry["unit"], sources[entry["source"]],
                entry.get("note", ""))


def parse_sources(table: dict) -> dict[str, Source]:
    """Validate a ``[sources]`` table (key -> title, url, kind) and build its :class:`Source` records.

    Shared by every sourced data file of the package (chips.toml, cuda_arch.toml).
    """
    checks.instance("table", table, dict)
    sources = {}
    for key, s in table.items():
        if not isinstance(s, dict):
            raise ValueError(f"sources.{key}: expected a table {{title, url, kind}}, got {checks.show(s)}")
        if s.get("kind") not in SOURCE_KINDS:
            raise ValueError(f"sources.{key}: kind {s.get('kind')!r} not in {SOURCE_KINDS}")
        if not str(s.get("url", "")).startswith(("https://", "http://")) or not s.get("title"):
            raise ValueError(f"sources.{key}: needs a title and an http(s) url")
        sources[key] = Source(key, s["title"], s["url"], s["kind"])
    return sources


def parse(data: dict) -> dict[str, Chip]:
    """Validate a parsed spec database (the TOML as a dict) and build its :class:`Chip` records."""
    checks.instance("data", data, dict)
    for table in ("sources", "chips"):
        if not isinstance(data.get(table, {}), dict):
            raise ValueError(f"data[{table!r}]: expected a table, got {checks.show(data[table])}")
    sources = parse_sources(data.get("sources", {}))
    chips = {}
    seen_kinds: dict[str, str] = {}
    for key, c in data.get("chips", {}).items():
        if not isinstance(c, dict):
            raise ValueError(f"chips.{key}: expected a table, got {checks.show(c)}")
        missing = [f for f in ("name", "vendor", "kind", "year") if f not in c]
        if missing:
            raise ValueError(f"chips.{key}: missing {', '.join(missing)}")
        year = c["year"]
        if not isinstance(year, int) or isinstance(year, bool) or not 1950 <= year <= 2100:
            raise ValueError(f"chips.{key}.year={year!r} must be a whole year")
        kinds = c.get("device_kinds", [])
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise ValueError(f"chips.{key}.device_kinds={checks.show(kinds)} must be a list of strings")
        for table in ("peak_flops", "specs"):
            if not isinstance(c.get(table, {}), dict):
                raise ValueError(f"chips.{key}.{table}: expected a table, got {checks.show(c[table])}")
        if c.get("kind") not in CHIP_KINDS:
            raise ValueError(f"chips.{key}: kind {c.get('kind')!r} not in {CHIP_KINDS}")
        peak = {}
        for dtype, entry in c.get("peak_flops", {}).items():
            if dtype not in DTYPES:
                raise ValueError(f"chips.{key}.peak_flops: dtype={dtype!r} is not a known dtype; allowed: {', '.join(DTYPES)}")
            peak[dtype] = _spec(key, dtype, entry, sources, "OP/s" if dtype == "int8" else "FLOP/s")
        specs = {}
        for field, entry in c.get("specs", {}).items():
            if field not in FIELDS:
                raise ValueError(f"chips.{key}.specs: unknown field {field!r}; allowed: {sorted(FIELDS)}")
            specs[field] = _spec(key, field, entry, sources, FIELDS[field][0])
        for kind in c.get("device_kinds", []):
            norm = _normalize(kind)
            if norm in seen_kinds:
                raise ValueError(f"device kind {kind!r} is claimed by {seen_kinds[norm]} and {key}")
            seen_kinds[norm] = key
        chips[key] = Chip(key=key, name=c["name"], vendor=c["vendor"], kind=c["kind"],
                          architecture=c.get("architecture", ""), year=int(c["year"]),
                          device_kinds=tuple(c.get("device_kinds", [])), peak=peak, specs=specs,
                          note=c.get("note", ""))
    return chips


@functools.lru_cache(maxsize=None)
def _database() -> dict[str, Chip]:
    text = importlib.resources.files("accelbook").joinpath("data/chips.toml").read_text("utf-8")
    return parse(tomllib.loads(text))


def chips(kind: str | None = None) -> list[Chip]:
    """All chips in the database (optionally only ``kind`` 'gpu', 'tpu' or 'cpu'), oldest first."""
    if kind is not None and kind not in CHIP_KINDS:
        raise ValueError(f"kind={kind!r} is not a chip kind; allowed: {', '.join(CHIP_KINDS)}")
    found = [c for c in _database().values() if kind is None or c.kind == kind]
    return sorted(found, key=lambda c: (c.year, c.name))


def get_chip(name: str) -> Chip:
    """Look up a chip by its key ('h100-sxm') or its name ('NVIDIA H100 SXM'), case-insensitively."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    db = _database()
    wanted = _normalize(name)
    for chip in db.values():
        if wanted in (_normalize(chip.key), _normalize(chip.name)):
            return chip
    raise KeyError(f"name={name!r} is not a chip in the spec database; known: {', '.join(sorted(db))}")


def as_chip(name: str, value: Any, *, none: bool = False) -> Chip | None:
    """A :class:`accelbook.specs.Chip`, or a chip key or name looked up in the spec database
    (``None`` passes through if ``none``). ``TypeError`` for other objects, ``KeyError`` for an
    unknown key."""
    if value is None and none:
        return None
    if isinstance(value, str):
        try:
            return get_chip(value)
        except KeyError:
            raise KeyError(f"{name}={checks.show(value)} is not a chip in the spec database; known: "
                           + ", ".join(c.key for c in chips())) from None
    if not isinstance(value, Chip):
        raise TypeError(f"{name}={checks.show(value)} must be an accelbook.specs.Chip or a chip key"
                        + (" (or None)" if none else "") + f" (got {type(value).__name__})")
    return value


class UnknownDeviceWarning(UserWarning):
    """JAX reported a device kind that the spec database does not know."""


def chip_for_device_kind(kind: str) -> Chip | None:
    """The chip whose spec sheet describes JAX's ``device.device_kind`` string.

    Matching ignores case and repeated spaces. Returns the chip record, or ``None`` with an
    :class:`UnknownDeviceWarning` when the kind is not in the database; callers then fall back to
    measured ceilings (:func:`accelbook.measure.ceilings`). ``'cpu'`` maps to the host-CPU record,
    which has no spec-sheet numbers: its ceilings are always measured.
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string, got {type(kind).__name__}")
    wanted = _normalize(kind)
    for chip in _database().values():
        if any(_normalize(k) == wanted for k in chip.device_kinds):
            return chip
    known = sorted(k for c in _database().values() for k in c.device_kinds)
    warnings.warn(f"device kind {kind!r} is not in the spec database (known: {', '.join(known)}); "
                  "using measured ceilings instead of a spec sheet", UnknownDeviceWarning, stacklevel=2)
    return None


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


__all__ = ["DTYPES", "FIELDS", "UNITS", "Chip", "Source", "Spec", "UnknownDeviceWarning", "as_chip",
           "check_dtype", "chip_for_device_kind", "itemsize", "chips", "get_chip", "parse", "parse_sources"]
