"""Collective communication: what an all-reduce costs, on which link, and what it costs a model.

One message of ``n`` bytes over a link takes ``α + n·β`` (Hockney's model): ``α`` seconds of
latency per message, ``β`` seconds per byte (one over the bandwidth in ONE direction). A collective
over ``p`` ranks is a schedule of such messages, and every classic algorithm costs

    t(n) = a·α + b·n·β + c·n·γ

with ``γ`` the seconds per byte of the reduction arithmetic and ``a, b, c`` fixed by the operation,
the algorithm and ``p`` (:func:`cost_terms`; Thakur, Rabenseifner & Gropp 2005; Patarasuk & Yuan
2009). The ring all-reduce, for example, costs ``2(p−1)·α + 2(p−1)/p·n·β + (p−1)/p·n·γ``, which is
bandwidth-optimal: no algorithm sends fewer bytes per rank (:func:`lower_bound`). nccl-tests turns
a measured time into a "bus bandwidth" that is comparable to the link's one-way rate for any
``p``: ``busbw = (S/t) · factor(op, p)``, with ``factor = 2(p−1)/p`` for all-reduce
(:func:`bus_bandwidth`).

The module also holds the links as sourced data (``accelbook/data/links.toml``: PCIe, NVLink,
NVSwitch, NVLink-C2C, InfiniBand, Ethernet, TPU ICI and DCN, each value with its direction and
whether it is a line rate or a measurement), the all-reduce on a ring, a 2D/3D torus, a switch and
two levels (NVLink inside a node, a network across), and the communication-to-compute ratio of
tensor, pipeline and data parallelism for a transformer layer stack. Pure NumPy; no JAX.

Taught in: "Interconnects — when one chip is not enough" (chapter 10).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import math
import sys
from typing import Any

import numpy as np

from accelbook import checks
from accelbook.models import decoder, kvcache
from accelbook import specs
from accelbook.specs import Source, parse_sources
from accelbook.units import to_si

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


# ---------------------------------------------------------------------------------------------
# The data: links.toml
# ---------------------------------------------------------------------------------------------

FAMILIES = ("pcie", "nvlink", "nvswitch", "nvlink-c2c", "infiniband", "ethernet", "tpu-ici", "tpu-dcn")
"""Link families of links.toml."""

DIRECTIONS = ("per direction", "both directions")
"""How a bandwidth counts: one way, or the two ways of a full-duplex link added together."""

RATES = ("line", "measured")
"""A spec sheet's line (signalling or nominal) rate, or an application-level measurement."""

QUANTITIES: dict[str, tuple[str, str]] = {
    "lane_rate": ("B/s", "one lane (a differential pair or PCIe lane)"),
    "lanes": ("count", "lanes of one link, per direction"),
    "link_bandwidth": ("B/s", "one link or port"),
    "links": ("count", "links (ports) of one device"),
    "device_bandwidth": ("B/s", "all links of one device (GPU, TPU chip) together"),
    "quoted_bandwidth": ("B/s", "a vendor's headline figure as printed (its scope is in the note)"),
    "ports": ("count", "ports of one switch chip or switch tray"),
    "switch_bandwidth": ("B/s", "all ports of one switch chip or tray together"),
    "switches": ("count", "switch chips in one node"),
    "node_bandwidth": ("B/s", "all devices or NICs of one node (host) together"),
    "devices_per_node": ("count", "devices (GPUs, TPU chips) per node or host"),
    "domain_size": ("count", "most devices one fabric joins (NVLink domain, TPU pod)"),
    "max_slice": ("count", "largest single job (TPU slice) on the fabric"),
    "bisection_bandwidth": ("B/s", "across the worst balanced cut of the whole domain"),
    "allreduce_bandwidth": ("B/s", "the vendor's all-reduce bandwidth of the whole domain"),
    "system_bandwidth": ("B/s", "all devices of the domain together"),
    "topology": ("text", "how the devices are connected"),
}
"""Quantity name -> (SI unit, what it measures). The loader rejects any other name."""

MEASURED_QUANTITIES = ("bandwidth", "busbw", "latency")


@dataclasses.dataclass(frozen=True)
class LinkValue:
    """One sourced value of a link: ``value`` in SI (``si_unit``: bytes/s, a count or text), as
    printed (``raw`` in ``unit``). Bandwidths say their ``direction`` ("per direction" or "both
    directions") and ``rate`` ("line" or "measured"); ``derived`` marks arithmetic on cited inputs
    (the note says which)."""

    quantity: str
    value: Any
    si_unit: str
    raw: Any
    unit: str
    direction: str | None
    rate: str | None
    derived: bool
    source: Source
    note: str = ""

    def per_direction(self) -> float:
        """The bandwidth in ONE direction (bytes/s): the value itself, or half of a both-directions
        total (every link here is full duplex and symmetric). ``ValueError`` for a count or text."""
        if self.si_unit != "B/s":
            raise ValueError(f"quantity={self.quantity!r} is a {self.si_unit}, not a bandwidth")
        return self.value if self.direction == "per direction" else self.value / 2


@dataclasses.dataclass(frozen=True)
class Link:
    """A link, port, switch or fabric of links.toml: its ``values`` by quantity (:data:`QUANTITIES`)."""

    key: str
    name: str
    family: str
    used_by: str
    values: dict[str, LinkValue]
    note: str = ""

    def value(self, quantity: str) -> LinkValue:
        """The :class:`LinkValue` of ``quantity``; ``KeyError`` naming the quantities this link has."""
        if not isinstance(quantity, str) or quantity not in self.values:
            raise KeyError(f"quantity={checks.show(quantity)}: {self.key} has "
                           f"{', '.join(sorted(self.values))}")
        return self.values[quantity]

    def bandwidth(self, quantity: str = "device_bandwidth", direction: str = "per direction") -> float:
        """Bytes/s of a bandwidth ``quantity``, counted ``direction`` ("per direction": one way;
        "both directions": the two ways added). ``KeyError`` if the link lacks the quantity."""
        checks.one_of("direction", direction, DIRECTIONS)
        one_way = self.value(quantity).per_direction()
        return one_way if direction == "per direction" else 2 * one_way

    def __repr__(self) -> str:
        return f"Link({self.key!r}, {self.name!r})"


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A published measurement on a link: ``value`` as printed in ``unit`` and ``si`` in SI
    (bytes/s for a bandwidth or busbw, seconds for a latency). ``op``, ``ranks`` and ``n_bytes``
    describe a collective's run where the source gives them (else ``None``)."""

    link: str
    system: str
    quantity: str
    value: float
    unit: str
    si: float
    direction: str | None
    op: str | None
    ranks: int | None
    n_bytes: int | None
    source: Source
    method: str


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A published nccl-tests-style table of one collective over message sizes, in SI:
    ``n_bytes`` (S of nccl-tests), ``seconds``, ``algbw`` and ``busbw`` (bytes/s) as printed."""

    key: str
    link: str
    op: str
    ranks: int
    system: str
    method: str
    source: Source
    n_bytes: tuple[int, ...]
    seconds: tuple[float, ...]
    algbw: tuple[float, ...]
    busbw: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class LinkData:
    """Everything in links.toml: sources, links by key, measurements and sweeps."""

    sources: dict[str, Source]
    links: dict[str, Link]
    measured: tuple[Measurement, ...]
    sweeps: dict[str, Sweep]


_VALUE_KEYS = {"value", "unit", "source", "direction", "rate", "derived", "note"}


def _link_value(where: str, quantity: str, entry: Any, sources: dict[str, Source]) -> LinkValue:
    if quantity not in QUANTITIES:
        raise ValueError(f"{where}: unknown quantity {quantity!r}; allowed: {sorted(QUANTITIES)}")
    if not isinstance(entry, dict) or not {"value", "unit", "source"} <= set(entry) \
            or set(entry) - _VALUE_KEYS:
        raise ValueError(f"{where}: expected {{value, unit, source, direction?, rate?, derived?, "
                         f"note?}}, got {checks.show(entry)}")
    if entry["source"] not in sources:
        raise ValueError(f"{where}: source {entry['source']!r} is not in [sources]")
    si_unit = QUANTITIES[quantity][0]
    try:
        value, got = to_si(entry["value"], entry["unit"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if got != si_unit:
        raise ValueError(f"{where}: unit {entry['unit']!r} converts to {got!r}, expected {si_unit!r}")
    direction, rate = entry.get("direction"), entry.get("rate")
    if si_unit == "B/s":
        if direction not in DIRECTIONS:
            raise ValueError(f"{where}: a bandwidth needs direction in {DIRECTIONS}, got {direction!r}")
        if rate not in RATES:
            raise ValueError(f"{where}: a bandwidth needs rate in {RATES}, got {rate!r}")
        if not value > 0:
            raise ValueError(f"{where}: value={entry['value']!r} must be > 0")
    elif direction is not None or rate is not None:
        raise ValueError(f"{where}: direction and rate belong to bandwidths, not to a {si_unit}")
    derived = entry.get("derived", False)
    if not isinstance(derived, bool):
        raise ValueError(f"{where}: derived={derived!r} must be true or false")
    note = entry.get("note", "")
    checks.text(f"{where}.note", note)
    return LinkValue(quantity, value, si_unit, entry["value"], entry["unit"], direction, rate,
                     derived, sources[entry["source"]], note)


def _measurement(where: str, m: Any, sources: dict[str, Source], links: dict[str, Link]) -> Measurement:
    if not isinstance(m, dict):
        raise ValueError(f"{where}: expected a table, got {checks.show(m)}")
    allowed = {"link", "system", "quantity", "value", "unit", "direction", "op", "ranks", "n_bytes",
               "source", "method"}
    if set(m) - allowed:
        raise ValueError(f"{where}: unknown keys {sorted(set(m) - allowed)}")
    if m.get("link") not in links:
        raise ValueError(f"{where}: link {m.get('link')!r} is not in [links]")
    if m.get("quantity") not in MEASURED_QUANTITIES:
        raise ValueError(f"{where}: quantity {m.get('quantity')!r} not in {MEASURED_QUANTITIES}")
    if m.get("source") not in sources or not m.get("method") or not m.get("system"):
        raise ValueError(f"{where}: needs a source from [sources], a system and a method")
    value = m.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{where}: value={value!r} must be a positive number")
    try:
        si, got = to_si(value, m.get("unit"))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    want = "s" if m["quantity"] == "latency" else "B/s"
    if got != want:
        raise ValueError(f"{where}: unit {m.get('unit')!r} converts to {got!r}, expected {want!r}")
    direction = m.get("direction")
    if want == "B/s" and direction not in DIRECTIONS:
        raise ValueError(f"{where}: a measured bandwidth needs direction in {DIRECTIONS}")
    op = m.get("op")
    if op is not None and op not in NCCL_OPS:
        raise ValueError(f"{where}: op {op!r} not in {NCCL_OPS}")
    for name in ("ranks", "n_bytes"):
        v = m.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{where}: {name}={v!r} must be a positive integer")
    return Measurement(m["link"], m["system"], m["quantity"], float(value), m["unit"], si, direction,
                       op, m.get("ranks"), m.get("n_bytes"), sources[m["source"]], m["method"])


def _sweep(where: str, s: Any, sources: dict[str, Source], links: dict[str, Link]) -> Sweep:
    if not isinstance(s, dict):
        raise ValueError(f"{where}: expected a table, got {checks.show(s)}")
    need = ("key", "link", "op", "ranks", "system", "method", "source", "n_bytes", "time_us",
            "algbw_gbs", "busbw_gbs")
    missing = [k for k in need if k not in s]
    if missing or set(s) - set(need):
        raise ValueError(f"{where}: keys must be {need} (missing {missing})")
    if s["link"] not in links or s["source"] not in sources or s["op"] not in NCCL_OPS:
        raise ValueError(f"{where}: link, source and op must name a link, a source and one of {NCCL_OPS}")
    ranks = s["ranks"]
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ValueError(f"{where}: ranks={ranks!r} must be a positive integer")
    columns = [s[k] for k in ("n_bytes", "time_us", "algbw_gbs", "busbw_gbs")]
    if not all(isinstance(c, list) and c for c in columns) or len({len(c) for c in columns}) != 1:
        raise ValueError(f"{where}: n_bytes, time_us, algbw_gbs and busbw_gbs must be equal-length lists")
    for c in columns:
        if not all(not isinstance(x, bool) and isinstance(x, (int, float)) and x > 0 for x in c):
            raise ValueError(f"{where}: every entry of the columns must be a positive number")
    if not all(isinstance(x, int) for x in s["n_bytes"]):
        raise ValueError(f"{where}: n_bytes must be whole bytes")
    return Sweep(s["key"], s["link"], s["op"], ranks, s["system"], s["method"], sources[s["source"]],
                 tuple(s["n_bytes"]), tuple(t * 1e-6 for t in s["time_us"]),
                 tuple(b * 1e9 for b in s["algbw_gbs"]), tuple(b * 1e9 for b in s["busbw_gbs"]))


def parse_links(data: dict) -> LinkData:
    """Validate a parsed links.toml (the TOML as a dict) and build its records.

    Sources are checked by :func:`accelbook.specs.parse_sources`, as chips.toml's are. Every value
    needs a known quantity, a unit that converts to that quantity's SI unit, a cited source, and
    for a bandwidth a ``direction`` (:data:`DIRECTIONS`) and a ``rate`` (:data:`RATES`).
    ``ValueError`` names the offending entry.
    """
    checks.instance("data", data, dict)
    for table in ("sources", "links"):
        if not isinstance(data.get(table, {}), dict):
            raise ValueError(f"data[{table!r}]: expected a table, got {checks.show(data[table])}")
    sources = parse_sources(data.get("sources", {}))
    links = {}
    for key, entry in data.get("links", {}).items():
        where = f"links.{key}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a table, got {checks.show(entry)}")
        unknown = set(entry) - {"name", "family", "used_by", "note", "values"}
        if unknown or not isinstance(entry.get("name"), str) or not entry.get("name"):
            raise ValueError(f"{where}: needs a name; allowed keys name, family, used_by, note, values "
                             f"(unknown {sorted(unknown)})")
        if entry.get("family") not in FAMILIES:
            raise ValueError(f"{where}: family {entry.get('family')!r} not in {FAMILIES}")
        values = entry.get("values", {})
        if not isinstance(values, dict) or not values:
            raise ValueError(f"{where}.values: expected a non-empty table")
        vals = {q: _link_value(f"{where}.values.{q}", q, v, sources) for q, v in values.items()}
        links[key] = Link(key, entry["name"], entry["family"], checks.text(f"{where}.used_by",
                          entry.get("used_by", "")), vals, checks.text(f"{where}.note", entry.get("note", "")))
    for name in ("measured", "sweeps"):
        if not isinstance(data.get(name, []), list):
            raise ValueError(f"data[{name!r}]: expected an array of tables")
    measured = tuple(_measurement(f"measured[{i}]", m, sources, links)
                     for i, m in enumerate(data.get("measured", [])))
    sweeps = {}
    for i, s in enumerate(data.get("sweeps", [])):
        sw = _sweep(f"sweeps[{i}]", s, sources, links)
        if sw.key in sweeps:
            raise ValueError(f"sweeps[{i}]: key {sw.key!r} appears twice")
        sweeps[sw.key] = sw
    return LinkData(sources, links, measured, sweeps)


@functools.lru_cache(maxsize=None)
def link_data() -> LinkData:
    """The records of ``accelbook/data/links.toml`` (parsed once; :func:`parse_links` checks them)."""
    text = importlib.resources.files("accelbook").joinpath("data/links.toml").read_text("utf-8")
    return parse_links(tomllib.loads(text))


def links(family: str | None = None) -> list[Link]:
    """The links of links.toml, optionally of one ``family`` (:data:`FAMILIES`), in file order.
    ``ValueError`` for an unknown family."""
    if family is not None:
        checks.one_of("family", family, FAMILIES)
    return [lk for lk in link_data().links.values() if family is None or lk.family == family]


def get_link(key: str) -> Link:
    """A link of links.toml by key (``"nvlink4"``, ``"pcie5-x16"``, ``"tpu-v5e-ici"`` ...).
    ``KeyError`` lists the known keys."""
    known = link_data().links
    if not isinstance(key, str) or key not in known:
        raise KeyError(f"key={checks.show(key)} is not a link in links.toml; known: {', '.join(known)}")
    return known[key]


def measurements(link: str | None = None, quantity: str | None = None) -> list[Measurement]:
    """The published measurements of links.toml, optionally for one ``link`` key and one
    ``quantity`` ("bandwidth", "busbw" or "latency"). ``KeyError`` for an unknown link,
    ``ValueError`` for an unknown quantity."""
    if link is not None:
        get_link(link)
    if quantity is not None:
        checks.one_of("quantity", quantity, MEASURED_QUANTITIES)
    return [m for m in link_data().measured
            if (link is None or m.link == link) and (quantity is None or m.quantity == quantity)]


def get_sweep(key: str) -> Sweep:
    """A published sweep of links.toml by key (``"a100-allreduce-8"``). ``KeyError`` lists the known keys."""
    known = link_data().sweeps
    if not isinstance(key, str) or key not in known:
        raise KeyError(f"key={checks.show(key)} is not a sweep in links.toml; known: {', '.join(known)}")
    return known[key]


@dataclasses.dataclass(frozen=True)
class ChipLinks:
    """The links of one chip, as records of links.toml (``None`` where the spec database names none).

    ``host``: its link to the host CPU (PCIe); ``scale_up``: the chip-to-chip link of its node or
    pod (NVLink, TPU ICI); ``scale_up_switch``: the switch that joins those links (NVSwitch), if
    any; ``scale_out``: the network between nodes in the chip's reference system (InfiniBand for
    DGX H100, the data-centre network for a TPU host).
    """

    chip: str
    host: Link | None
    scale_up: Link | None
    scale_up_switch: Link | None
    scale_out: Link | None


_CHIP_LINK_FIELDS = {"host": ("host_link_key", ("pcie",)),
                     "scale_up": ("scaleup_link_key", ("nvlink", "tpu-ici")),
                     "scale_up_switch": ("scaleup_switch_key", ("nvswitch",)),
                     "scale_out": ("scaleout_link_key", ("infiniband", "ethernet", "tpu-dcn"))}


def chip_links(chip) -> ChipLinks:
    """The links of ``chip`` (a key of chips.toml or a :class:`accelbook.specs.Chip`), resolved
    from its ``host_link_key``, ``scaleup_link_key``, ``scaleup_switch_key`` and
    ``scaleout_link_key`` specs to records of links.toml. ``KeyError`` for an unknown chip;
    ``ValueError`` if the spec database names a link that links.toml lacks or whose family does
    not fit the role (a data error). Taught in: "Interconnects"."""
    chip = specs.as_chip("chip", chip)
    known = link_data().links
    found = {}
    for role, (field, families) in _CHIP_LINK_FIELDS.items():
        spec = chip.specs.get(field)
        if spec is None:
            found[role] = None
            continue
        link = known.get(spec.value)
        if link is None:
            raise ValueError(f"chips.{chip.key}.specs.{field} = {spec.value!r} is not a link of links.toml")
        if link.family not in families:
            raise ValueError(f"chips.{chip.key}.specs.{field} = {spec.value!r} is a {link.family} link; "
                             f"the {role} role takes {', '.join(families)}")
        found[role] = link
    return ChipLinks(chip.key, **found)


# ---------------------------------------------------------------------------------------------
# The alpha-beta-gamma costs of the collectives
# ---------------------------------------------------------------------------------------------

OPS = ("allreduce", "allgather", "reducescatter", "broadcast", "alltoall", "permute")
"""The collectives of :func:`collective_time`."""

ALGORITHMS: dict[str, tuple[str, ...]] = {
    "allreduce": ("ring", "tree", "recursive_doubling", "rabenseifner"),
    "allgather": ("ring", "recursive_doubling"),
    "reducescatter": ("ring", "recursive_halving"),
    "broadcast": ("tree", "scatter_allgather"),
    "alltoall": ("pairwise",),
    "permute": ("direct",),
}
"""The algorithms modelled for each operation."""

POWER_OF_TWO = {("allreduce", "recursive_doubling"), ("allreduce", "rabenseifner"),
                ("allgather", "recursive_doubling"), ("reducescatter", "recursive_halving")}
"""(op, algorithm) pairs whose schedule needs ``p`` to be a power of two."""

ALGORITHM_NAMES = {"ring": "ring", "tree": "binomial tree", "recursive_doubling": "recursive doubling",
                   "rabenseifner": "Rabenseifner", "recursive_halving": "recursive halving",
                   "scatter_allgather": "scatter + all-gather", "pairwise": "pairwise", "direct": "direct"}
"""Display names of the algorithms ("tree" is a binomial tree, not NCCL's double binary tree)."""

N_CONVENTION = {
    "allreduce": "the bytes of the vector each rank holds (and ends with, reduced)",
    "allgather": "the bytes each rank ends with (it contributes n/p)",
    "reducescatter": "the bytes of the vector each rank starts with (it ends with n/p, reduced)",
    "broadcast": "the bytes the root sends",
    "alltoall": "the bytes of each rank's send buffer, n/p per destination, its own block included",
    "permute": "the bytes each rank sends to one other rank (and receives from another)",
}
"""What ``n`` means per operation: nccl-tests' S; the same as Thakur et al.'s n except all-to-all,
where MPICH's n is the data sent to the other ranks, ``(p−1)/p`` of ours. A permute (a ring
shift: rank r sends to r+1 mod p, all at once) is one point-to-point message per rank."""


@dataclasses.dataclass(frozen=True)
class CostTerms:
    """The coefficients of one collective: ``t = messages·α + bytes_factor·n·β + reduced_factor·n·γ``.

    ``messages`` is the number of message latencies on the critical path, ``bytes_factor`` the
    bytes each rank sends per byte of ``n`` (the convention for ``n`` is in :data:`N_CONVENTION`),
    ``reduced_factor`` the bytes each rank reduces per byte of ``n``.
    """

    op: str
    algorithm: str
    p: int
    messages: float
    bytes_factor: float
    reduced_factor: float

    def time(self, n_bytes, alpha: float, beta: float, gamma: float = 0.0):
        """Seconds for ``n_bytes`` (a number or an array of them) with latency ``alpha`` (s),
        ``beta`` (s/byte) and ``gamma`` (s/byte reduced)."""
        n = checks.real("n_bytes", n_bytes, nonnegative=True, allow_array=True)
        alpha = checks.real("alpha", alpha, nonnegative=True)
        beta = checks.real("beta", beta, nonnegative=True)
        gamma = checks.real("gamma", gamma, nonnegative=True)
        t = self.messages * alpha + (self.bytes_factor * beta + self.reduced_factor * gamma) * n
        t = checks.finite_result({"n_bytes": n_bytes, "alpha": alpha, "beta": beta, "gamma": gamma}, t)
        return float(t) if np.ndim(t) == 0 else t


def _log2ceil(p: int) -> int:
    return (p - 1).bit_length()


def _check_op(op: Any, allowed=OPS) -> str:
    return checks.one_of("op", op, allowed)


def cost_terms(op: str, algorithm: str, p: int) -> CostTerms:
    """The α, β, γ coefficients of ``op`` by ``algorithm`` on ``p`` ranks (⌈·⌉ logs are base 2).

    ==============  ===================  ==========================  =======================  ===============
    op              algorithm            α (messages)                β (× n)                  γ (× n)
    ==============  ===================  ==========================  =======================  ===============
    allreduce       ring                 2(p−1)                      2(p−1)/p                 (p−1)/p
    allreduce       tree                 2⌈lg p⌉                     2⌈lg p⌉                  ⌈lg p⌉
    allreduce       recursive_doubling   lg p                        lg p                     lg p
    allreduce       rabenseifner         2 lg p                      2(p−1)/p                 (p−1)/p
    allgather       ring                 p−1                         (p−1)/p                  0
    allgather       recursive_doubling   lg p                        (p−1)/p                  0
    reducescatter   ring                 p−1                         (p−1)/p                  (p−1)/p
    reducescatter   recursive_halving    lg p                        (p−1)/p                  (p−1)/p
    broadcast       tree (binomial)      ⌈lg p⌉                      ⌈lg p⌉                   0
    broadcast       scatter_allgather    ⌈lg p⌉ + p − 1              2(p−1)/p                 0
    alltoall        pairwise             p−1                         (p−1)/p                  0
    permute         direct               1                           1                        0
    ==============  ===================  ==========================  =======================  ===============

    Sources: Thakur, Rabenseifner & Gropp (2005) for the tree, recursive-doubling/halving,
    Rabenseifner, scatter-allgather (van de Geijn) and pairwise costs; Patarasuk & Yuan (2009) for
    the ring all-reduce (a reduce-scatter ring then an all-gather ring). "tree" all-reduce is a
    binomial-tree reduce followed by a binomial-tree broadcast, each ⌈lg p⌉ rounds of whole
    messages. The pairwise all-to-all is MPICH's ``(p−1)α + n'β`` with ``n' = (p−1)/p·n`` (``n'``
    excludes the rank's own block; :data:`N_CONVENTION`). The permute (every rank sends its
    ``n`` bytes to the next rank at once) is Hockney's single message, ``α + nβ``.

    ``p = 1`` costs nothing. ``ValueError`` for an unknown op, an algorithm not listed for the op
    (the message lists those that are), or a power-of-two algorithm (:data:`POWER_OF_TWO`) given a
    ``p`` that is not a power of two.
    """
    op = _check_op(op)
    algorithm = checks.one_of("algorithm", algorithm, ALGORITHMS[op])
    p = checks.positive_int("p", p)
    if (op, algorithm) in POWER_OF_TWO and p & (p - 1):
        raise ValueError(f"p={p} is not a power of two; algorithm={algorithm!r} for {op} needs one "
                         f"(use 'ring' for any p)")
    lg = _log2ceil(p)
    frac = (p - 1) / p
    table = {
        ("allreduce", "ring"): (2 * (p - 1), 2 * frac, frac),
        ("allreduce", "tree"): (2 * lg, 2 * lg, lg),
        ("allreduce", "recursive_doubling"): (lg, lg, lg),
        ("allreduce", "rabenseifner"): (2 * lg, 2 * frac, frac),
        ("allgather", "ring"): (p - 1, frac, 0.0),
        ("allgather", "recursive_doubling"): (lg, frac, 0.0),
        ("reducescatter", "ring"): (p - 1, frac, frac),
        ("reducescatter", "recursive_halving"): (lg, frac, frac),
        ("broadcast", "tree"): (lg, lg, 0.0),
        ("broadcast", "scatter_allgather"): ((lg + p - 1) if p > 1 else 0, 2 * frac, 0.0),
        ("alltoall", "pairwise"): (p - 1, frac, 0.0),
        ("permute", "direct"): (1 if p > 1 else 0, 1.0 if p > 1 else 0.0, 0.0),
    }
    a, b, c = table[(op, algorithm)]
    return CostTerms(op, algorithm, p, float(a), float(b), float(c))


def collective_time(op: str, algorithm: str, n_bytes, p: int, alpha: float, beta: float,
                    gamma: float = 0.0):
    """Seconds for ``op`` by ``algorithm`` on ``p`` ranks: ``a·α + b·n·β + c·n·γ`` (:func:`cost_terms`).

    ``n_bytes`` follows :data:`N_CONVENTION` (nccl-tests' S): for all-reduce the vector each rank
    holds; for all-gather the bytes each rank ends with (each contributes ``n/p``); for
    reduce-scatter the vector each rank starts with; for broadcast the root's message; for
    all-to-all each rank's whole send buffer. ``alpha`` in seconds per message, ``beta`` in
    seconds per byte (one over the ONE-WAY bandwidth a rank can send at), ``gamma`` in seconds per
    byte reduced. ``n_bytes`` may be an array (the result is then an array).

    Example: a ring all-reduce of 1 MB on 4 ranks with α = 1 µs, β = 1 ns/B costs
    6 µs + 1.5 · 10⁶ · 1 ns = 1.506 ms. ``ValueError`` as :func:`cost_terms`, or for a negative,
    NaN or infinite ``n_bytes``, ``alpha``, ``beta`` or ``gamma``.
    """
    return cost_terms(op, algorithm, p).time(n_bytes, alpha, beta, gamma)


@dataclasses.dataclass(frozen=True)
class LowerBound:
    """The lower bounds of one collective (seconds): no algorithm sends fewer messages on its
    critical path (``latency``), moves fewer bytes through a rank's link (``bandwidth``) or
    reduces fewer bytes per rank (``compute``); ``total`` is their sum."""

    op: str
    p: int
    latency: float
    bandwidth: float
    compute: float

    @property
    def total(self) -> float:
        return self.latency + self.bandwidth + self.compute


def lower_bound(op: str, n_bytes: float, p: int, alpha: float, beta: float,
                gamma: float = 0.0) -> LowerBound:
    """The α-β-γ lower bounds of ``op`` on ``p`` ranks (Chan, Heimlich, Purkayastha & van de Geijn
    2007; the all-reduce bandwidth term is Patarasuk & Yuan's 2009 bound).

    * latency ``⌈lg p⌉·α``: a piece of data reaches at most twice as many ranks per round (a
      permute, whose data goes to one rank only, needs one message, ``α``);
    * bandwidth ``2(p−1)/p·n·β`` for all-reduce, ``(p−1)/p·n·β`` for all-gather, reduce-scatter
      and all-to-all, ``n·β`` for broadcast and permute: the bytes a rank must send or receive;
    * compute ``(p−1)/p·n·γ`` for all-reduce and reduce-scatter (the reduction split evenly).

    Every algorithm of :func:`cost_terms` costs at least ``total``. ``p = 1`` bounds are 0.
    ``n_bytes`` follows :data:`N_CONVENTION`; ``alpha`` s, ``beta`` s/byte, ``gamma`` s/byte.
    ``ValueError`` names a bad argument.
    """
    op = _check_op(op)
    n = checks.real("n_bytes", n_bytes, nonnegative=True)
    p = checks.positive_int("p", p)
    alpha = checks.real("alpha", alpha, nonnegative=True)
    beta = checks.real("beta", beta, nonnegative=True)
    gamma = checks.real("gamma", gamma, nonnegative=True)
    frac = (p - 1) / p
    bw = {"allreduce": 2 * frac, "allgather": frac, "reducescatter": frac, "alltoall": frac,
          "broadcast": 1.0 if p > 1 else 0.0, "permute": 1.0 if p > 1 else 0.0}[op]
    rounds = (1 if p > 1 else 0) if op == "permute" else _log2ceil(p)
    comp = frac if op in ("allreduce", "reducescatter") else 0.0
    names = {"n_bytes": n_bytes, "alpha": alpha, "beta": beta, "gamma": gamma}
    return LowerBound(op, p, checks.finite_result(names, rounds * alpha),
                      checks.finite_result(names, bw * n * beta), checks.finite_result(names, comp * n * gamma))


def crossover_bytes(op: str, alg_a: str, alg_b: str, p: int, alpha: float, beta: float,
                    gamma: float = 0.0) -> float | None:
    """The message size (bytes) at which ``alg_a`` and ``alg_b`` cost the same, or ``None``.

    Both costs are linear in ``n`` (``A + B·n``), so the crossing has the closed form
    ``n* = (A_b − A_a) / (B_a − B_b)`` with ``A = messages·α`` and ``B = bytes_factor·β +
    reduced_factor·γ``. Below ``n*`` the algorithm with fewer messages wins, above it the one that
    moves fewer bytes. ``None`` when the lines do not cross at a positive size (parallel lines, or
    one algorithm is never slower). Arguments as :func:`collective_time`; ``ValueError`` names a
    bad one (``alg_a``, ``alg_b`` must be algorithms of ``op``).
    """
    ta = cost_terms(op, checks.one_of("alg_a", alg_a, ALGORITHMS[_check_op(op)]), p)
    tb = cost_terms(op, checks.one_of("alg_b", alg_b, ALGORITHMS[op]), p)
    alpha = checks.real("alpha", alpha, nonnegative=True)
    beta = checks.real("beta", beta, nonnegative=True)
    gamma = checks.real("gamma", gamma, nonnegative=True)
    slope = (ta.bytes_factor - tb.bytes_factor) * beta + (ta.reduced_factor - tb.reduced_factor) * gamma
    offset = (tb.messages - ta.messages) * alpha
    if slope == 0 or offset == 0:
        return None
    n = offset / slope
    return float(n) if n > 0 and math.isfinite(n) else None


@dataclasses.dataclass(frozen=True)
class Fit:
    """A least-squares fit of measured times to ``t = messages·α + bytes_factor·n·β``: ``alpha``
    (s), ``beta`` (s/byte), ``bandwidth = 1/beta`` (bytes/s, one way; inf if beta is 0) and the
    root-mean-square relative error. ``alpha_stderr`` (s) and ``beta_stderr`` (s/byte) are the
    standard errors of the weighted least-squares estimates (NaN with only two points, where the
    line passes through both and the scatter is unknown; 0 for a coefficient fixed at 0). ``note``
    says when a coefficient was fixed at 0 because the free fit made it negative."""

    alpha: float
    beta: float
    rms_relative_error: float
    note: str = ""
    alpha_stderr: float = math.nan
    beta_stderr: float = math.nan

    @property
    def bandwidth(self) -> float:
        return 1 / self.beta if self.beta > 0 else math.inf


def fit_alpha_beta(op: str, algorithm: str, p: int, n_bytes, seconds) -> Fit:
    """Fit α (s) and β (s/byte) to measured ``seconds`` at sizes ``n_bytes`` (equal-length arrays,
    at least two distinct sizes) with the cost model of ``op`` by ``algorithm`` on ``p`` ranks
    (γ = 0: the reduction is folded into β).

    Each point is weighted by ``1/seconds`` so small and large messages count alike (a relative
    least-squares fit). If the free fit gives a negative α or β, that coefficient is fixed at 0,
    the other refitted, and ``Fit.note`` says so.

    Uncertainty: with ``m`` points and ``k`` free coefficients (2, or 1 after fixing one), the
    residual variance ``s² = Σ r²/(m − k)`` of the weighted residuals gives the covariance
    ``s²·(XᵀX)⁻¹`` of the estimates (ordinary least squares on the weighted design ``X``); the
    standard errors are the square roots of its diagonal. ``ValueError`` for mismatched or too few
    points.
    """
    terms = cost_terms(op, algorithm, p)
    if terms.messages == 0 and terms.bytes_factor == 0:
        raise ValueError(f"p={p}: one rank sends nothing; there is nothing to fit")
    n = checks.real("n_bytes", n_bytes, nonnegative=True, allow_array=True).ravel()
    t = checks.real("seconds", seconds, positive=True, allow_array=True).ravel()
    if n.shape != t.shape:
        raise ValueError(f"n_bytes has {n.size} values and seconds {t.size}; they must match")
    if np.unique(n).size < 2:
        raise ValueError(f"n_bytes={checks.show(n_bytes)} needs at least two distinct sizes to fit α and β")
    design = np.stack([np.full_like(n, terms.messages), terms.bytes_factor * n], axis=1) / t[:, None]
    rhs = np.ones_like(t)
    coef, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    note = ""
    free = [0, 1]
    if coef[0] < 0 or coef[1] < 0:
        which = 0 if coef[0] < 0 else 1
        keep = 1 - which
        free = [keep]
        col = design[:, keep]
        coef = np.zeros(2)
        coef[keep] = float(col @ rhs / (col @ col)) if col @ col > 0 else 0.0
        note = f"the free fit made {'alpha' if which == 0 else 'beta'} negative; it is fixed at 0"
    pred = design @ coef
    resid = pred - rhs
    rms = float(np.sqrt(np.mean(resid ** 2)))
    stderr = np.zeros(2)
    dof = t.size - len(free)
    sub = design[:, free]
    gram = sub.T @ sub
    if dof > 0 and np.linalg.matrix_rank(gram) == len(free):
        cov = float(resid @ resid) / dof * np.linalg.inv(gram)
        stderr[free] = np.sqrt(np.maximum(np.diag(cov), 0.0))
    else:
        stderr[free] = math.nan
    return Fit(float(coef[0]), float(coef[1]), rms, note, float(stderr[0]), float(stderr[1]))


# ---------------------------------------------------------------------------------------------
# nccl-tests: algorithm bandwidth and bus bandwidth (NVIDIA/nccl-tests, doc/PERFORMANCE.md)
# ---------------------------------------------------------------------------------------------

NCCL_OPS = ("allreduce", "allgather", "reducescatter", "alltoall", "broadcast", "reduce", "permute")
"""The operations nccl-tests reports a bus bandwidth for ("permute" is its sendrecv test)."""


def bus_bandwidth_factor(op: str, n: int) -> float:
    """nccl-tests' correction from algorithm to bus bandwidth for ``op`` on ``n`` ranks.

    ``busbw = algbw · factor``: all-reduce ``2(n−1)/n``; reduce-scatter, all-gather and all-to-all
    ``(n−1)/n``; broadcast and reduce ``1`` (doc/PERFORMANCE.md, "Summary"); permute (nccl-tests'
    sendrecv, ``src/sendrecv.cu``) ``1``. With it, busbw of an
    optimal schedule equals the one-way bandwidth ``B`` each rank has to the outside world, for any
    ``n``. (The doc's factor for in-network reduction, ``(n−1)/(n+1)``, is not modelled.)
    ``ValueError`` for an op outside :data:`NCCL_OPS` or ``n`` not a positive integer.
    """
    op = _check_op(op, NCCL_OPS)
    n = checks.positive_int("n", n)
    if op == "allreduce":
        return 2 * (n - 1) / n
    if op in ("reducescatter", "allgather", "alltoall"):
        return (n - 1) / n
    return 1.0


def nccl_size_bytes(op: str, count: int, bytes_per_element: int, n: int) -> int:
    """nccl-tests' S (bytes) for one call with NCCL's ``count`` argument on ``n`` ranks.

    All-reduce, broadcast and reduce: ``count · size`` (the array on each rank); reduce-scatter:
    ``recvcount · size · n`` (the whole array, since NCCL's count is per rank); all-gather:
    ``sendcount · size · n``; all-to-all: ``count · size · n`` with ``count`` the elements sent to
    each peer (nccl-tests' ``src/alltoall.cu``); permute (sendrecv): ``count · size``. This S is the ``n_bytes`` of :func:`collective_time`.
    ``ValueError`` names a bad argument.
    """
    op = _check_op(op, NCCL_OPS)
    count = checks.nonneg_int("count", count)
    size = checks.positive_int("bytes_per_element", bytes_per_element, maximum=64)
    n = checks.positive_int("n", n)
    per_rank = op in ("reducescatter", "allgather", "alltoall")
    return checks.finite_result({"count": count, "n": n}, count * size * (n if per_rank else 1))


def algorithm_bandwidth(size_bytes, seconds):
    """nccl-tests' algbw = S / t (bytes/s): ``size_bytes`` (S, :func:`nccl_size_bytes`) over
    ``seconds``. Arrays are accepted (element-wise). ``ValueError`` for a negative size or a
    time that is not > 0."""
    s = checks.real("size_bytes", size_bytes, nonnegative=True, allow_array=True)
    t = checks.real("seconds", seconds, positive=True, allow_array=True)
    out = checks.finite_result({"size_bytes": size_bytes, "seconds": seconds}, s / t)
    return float(out) if np.ndim(out) == 0 else out


def bus_bandwidth(op: str, size_bytes, seconds, n: int):
    """nccl-tests' busbw (bytes/s) = ``algbw · factor(op, n)`` (:func:`bus_bandwidth_factor`).

    For a ring all-reduce with α = 0 and γ = 0 it equals ``1/β``, the link's one-way bandwidth,
    whatever ``n``: that is what busbw is for. ``ValueError`` as :func:`algorithm_bandwidth` and
    :func:`bus_bandwidth_factor`.
    """
    factor = bus_bandwidth_factor(op, n)
    return algorithm_bandwidth(size_bytes, seconds) * factor


def time_from_bus_bandwidth(op: str, size_bytes, bus_bw, n: int):
    """Seconds one call of ``op`` takes at bus bandwidth ``bus_bw`` (bytes/s): ``S·factor / busbw``.
    ``ValueError`` if the factor is 0 (one rank moves nothing: the time is not determined)."""
    factor = bus_bandwidth_factor(op, n)
    if factor == 0:
        raise ValueError(f"n={n}: with one rank the bus-bandwidth factor is 0; the time is not determined")
    s = checks.real("size_bytes", size_bytes, nonnegative=True, allow_array=True)
    b = checks.real("bus_bw", bus_bw, positive=True, allow_array=True)
    out = checks.finite_result({"size_bytes": size_bytes, "bus_bw": bus_bw}, s * factor / b)
    return float(out) if np.ndim(out) == 0 else out


def algorithm_from_bus_bandwidth(op: str, bus_bw, n: int):
    """algbw (bytes/s) = ``busbw / factor(op, n)``. ``ValueError`` for one rank (factor 0)."""
    factor = bus_bandwidth_factor(op, n)
    if factor == 0:
        raise ValueError(f"n={n}: with one rank the bus-bandwidth factor is 0; algbw is not determined")
    b = checks.real("bus_bw", bus_bw, nonnegative=True, allow_array=True)
    out = b / factor
    return float(out) if np.ndim(out) == 0 else out


# ---------------------------------------------------------------------------------------------
# Topologies: ring, torus, switch, two levels
# ---------------------------------------------------------------------------------------------

TOPOLOGY_KINDS = ("ring", "torus", "switch", "two_level")


def _ring_distance_sum(k: int) -> int:
    """Sum of the shortest distances from one node of a bidirectional ring of k nodes to all others."""
    return (k * k) // 4


def torus_allreduce_time(n_bytes, dims, alpha: float, link_beta: float, gamma: float = 0.0):
    """Seconds for an all-reduce of ``n_bytes`` per chip on a torus of shape ``dims`` (a ring is
    ``(p,)``), as per-dimension rings.

    The model (the bandwidth-optimal multi-dimensional ring, as in the jax-ml scaling-book's
    "Sharded matrices" and Google's pod all-reduce figures): the vector is cut into ``d`` parts,
    one per dimension of size > 1; each part is reduce-scattered by rings along the dimensions in
    turn (a rotated order, so all dimensions work at once) and then all-gathered in the reverse
    order; every ring sends half its data each way round, so a chip drives all ``2d`` of its links.

        t = Σ_i 2(k_i − 1)·α + 2(p−1)/p · n · β_link / (2d) + (p−1)/p · n · γ

    with ``β_link`` the seconds per byte of ONE link in ONE direction. Every dimension is a ring
    with its wrap-around link (a dimension of 2 chips joins them by two links; a mesh without
    wrap-around is slower and not modelled). For ``dims = (p,)`` it is
    the bidirectional ring ``2(p−1)α + (p−1)/p·n·β_link``. Exact when all dimensions are equal; an
    optimistic idealisation otherwise (the parts then finish their dimensions at different times).
    ``ValueError`` for more than 3 dimensions or another bad argument, naming it.
    """
    dims = tuple(checks.sequence("dims", dims, of=lambda name, v: checks.positive_int(name, v, maximum=2**20)))
    if len(dims) > 3:
        raise ValueError(f"dims={checks.show(dims)} has {len(dims)} dimensions; allowed: 1 to 3")
    n = checks.real("n_bytes", n_bytes, nonnegative=True, allow_array=True)
    alpha = checks.real("alpha", alpha, nonnegative=True)
    beta = checks.real("link_beta", link_beta, nonnegative=True)
    gamma = checks.real("gamma", gamma, nonnegative=True)
    p = math.prod(dims)
    d = sum(1 for k in dims if k > 1)
    if d == 0:
        return 0.0 if np.ndim(n) == 0 else np.zeros_like(n)
    frac = (p - 1) / p
    t = sum(2 * (k - 1) for k in dims) * alpha + 2 * frac * n * beta / (2 * d) + frac * n * gamma
    t = checks.finite_result({"n_bytes": n_bytes, "alpha": alpha, "link_beta": beta}, t)
    return float(t) if np.ndim(t) == 0 else t


def _two_level_args(n_bytes, nodes, per_node, intra_alpha, intra_beta, inter_alpha, inter_beta, gamma):
    """The checked arguments of the two-level all-reduces, in order."""
    return (checks.real("n_bytes", n_bytes, nonnegative=True, allow_array=True),
            checks.positive_int("nodes", nodes), checks.positive_int("per_node", per_node),
            checks.real("intra_alpha", intra_alpha, nonnegative=True),
            checks.real("intra_beta", intra_beta, nonnegative=True),
            checks.real("inter_alpha", inter_alpha, nonnegative=True),
            checks.real("inter_beta", inter_beta, nonnegative=True),
            checks.real("gamma", gamma, nonnegative=True))


def hierarchical_allreduce_time(n_bytes, nodes: int, per_node: int, intra_alpha: float,
                                intra_beta: float, inter_alpha: float, inter_beta: float,
                                gamma: float = 0.0):
    """Seconds for the two-level all-reduce of ``n_bytes`` per device: ``nodes`` nodes of
    ``per_node`` devices; NVLink (or any switch) inside a node, a network across.

    1. reduce-scatter inside each node (ring of ``g = per_node``): ``(g−1)α_in + (g−1)/g·n·β_in``;
    2. all-reduce across nodes of each device's ``n/g`` shard, the ``g`` devices of a node in
       parallel, each over its own NIC (ring of ``N = nodes``): ``2(N−1)α_out + 2(N−1)/N·(n/g)·β_out``;
    3. all-gather inside each node: ``(g−1)α_in + (g−1)/g·n·β_in``;

    plus the reduction ``(gN−1)/(gN)·n·γ``. ``intra_beta`` and ``inter_beta`` are seconds per byte
    of one device's ONE-WAY bandwidth into the switch and into the network. With one node it is
    the flat ring of ``per_node`` devices; with one device per node, the ring across nodes. This
    is the hierarchical all-reduce of Jia et al. (2018, "Highly Scalable Deep Learning Training
    System with Mixed-Precision"). ``ValueError`` names a bad argument.
    """
    n, big_n, g, a_in, b_in, a_out, b_out, gamma = _two_level_args(
        n_bytes, nodes, per_node, intra_alpha, intra_beta, inter_alpha, inter_beta, gamma)
    p = big_n * g
    t = (2 * (g - 1) * a_in + 2 * (g - 1) / g * n * b_in
         + 2 * (big_n - 1) * a_out + 2 * (big_n - 1) / big_n * (n / g) * b_out
         + (p - 1) / p * n * gamma)
    t = checks.finite_result({"n_bytes": n_bytes, "intra_beta": b_in, "inter_beta": b_out}, t)
    return float(t) if np.ndim(t) == 0 else t


def rail_allreduce_time(n_bytes, nodes: int, per_node: int, intra_alpha: float, intra_beta: float,
                        inter_alpha: float, inter_beta: float, gamma: float = 0.0):
    """Seconds for a flat ring all-reduce of ``n_bytes`` per device laid out rail by rail, as NCCL
    lays out its rings on a multi-node machine: ``nodes`` nodes of ``g = per_node`` devices, one
    network port (rail) per device.

    ``g`` rings run at once, each over all ``p = nodes·g`` devices and each carrying ``n/g`` of the
    vector; a ring visits the devices of a node over the switch (NVLink) and leaves the node through
    one rail, a different rail per ring, so every port of a node carries one ring. Each ring's
    steps go at the pace of its slowest hop, and each device's switch link carries all the rings
    that pass through it:

        t = 2(p−1)·max(α_in, α_out) + 2(p−1)/p · n · max(β_out / g, β_in) + (p−1)/p · n · γ

    (the bytes of a ring all-reduce over the slower of the node's ``g`` rails together and one
    device's switch link). With one node it is the flat ring inside it; with one device per node,
    the ring over the network. ``intra_beta`` and ``inter_beta`` are seconds per byte of one
    device's ONE-WAY bandwidth into the switch and into its network port; the alphas are seconds
    per message. Compare :func:`hierarchical_allreduce_time`, whose three phases run one after
    another. ``ValueError`` names a bad argument. Taught in: "Interconnects".
    """
    n, big_n, g, a_in, b_in, a_out, b_out, gamma = _two_level_args(
        n_bytes, nodes, per_node, intra_alpha, intra_beta, inter_alpha, inter_beta, gamma)
    p = big_n * g
    if big_n == 1:
        alpha, beta = a_in, b_in
    elif g == 1:
        alpha, beta = a_out, b_out
    else:
        alpha, beta = max(a_in, a_out), max(b_out / g, b_in)
    t = 2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta + (p - 1) / p * n * gamma
    t = checks.finite_result({"n_bytes": n_bytes, "intra_beta": b_in, "inter_beta": b_out}, t)
    return float(t) if np.ndim(t) == 0 else t


@dataclasses.dataclass(frozen=True)
class Topology:
    """A network of ``p`` devices: its hop counts, bisection bandwidth and all-reduce time.

    Built by :func:`ring_topology`, :func:`torus_topology`, :func:`switch_topology` and
    :func:`two_level_topology`. Hops count the links a message crosses on a shortest path (a
    switch is a node, so two devices on one switch are 2 hops apart); ``average_hops`` averages
    over ordered pairs of distinct devices. ``bisection_bandwidth`` (bytes/s, one direction) is
    the capacity crossing the worst cut into two equal halves. Bandwidths are ONE-WAY bytes/s:
    ``link_bandwidth`` of one link (ring, torus), ``device_bandwidth`` of one device into its
    switch (switch, and inside a node of two_level), ``network_bandwidth`` of one device's NIC.
    """

    kind: str
    dims: tuple[int, ...]
    alpha: float
    link_bandwidth: float = 0.0
    device_bandwidth: float = 0.0
    network_bandwidth: float = 0.0
    network_alpha: float = 0.0

    @property
    def p(self) -> int:
        return math.prod(self.dims)

    @property
    def diameter(self) -> int:
        """Most hops between two devices."""
        if self.p == 1:
            return 0
        if self.kind in ("ring", "torus"):
            return sum(k // 2 for k in self.dims)
        return 2  # through one switch (two_level: the network is one non-blocking switch)

    @property
    def average_hops(self) -> float:
        """Mean hops over ordered pairs of distinct devices."""
        p = self.p
        if p == 1:
            return 0.0
        if self.kind in ("ring", "torus"):
            return sum((p // k) * _ring_distance_sum(k) for k in self.dims) / (p - 1)
        return 2.0

    @property
    def bisection_bandwidth(self) -> float:
        """Bytes/s crossing the worst balanced cut, one direction.

        Ring: 2 links. Torus: cut across the largest dimension ``k``, crossing ``2·p/k`` links
        (every dimension is a ring with its wrap-around link, so a dimension of 2 chips joins them
        by two links). Switch: ``⌊p/2⌋`` devices' bandwidth. Two levels: ``⌊p/2⌋`` NICs (a
        full-bisection network) once there are two nodes, else the switch of the single node.
        """
        p = self.p
        if p == 1:
            return 0.0
        if self.kind in ("ring", "torus"):
            return 2 * (p // max(self.dims)) * self.link_bandwidth
        if self.kind == "switch" or self.dims[0] == 1:
            return (p // 2) * self.device_bandwidth
        return (p // 2) * self.network_bandwidth

    def allreduce_time(self, n_bytes, gamma: float = 0.0):
        """Seconds for an all-reduce of ``n_bytes`` per device on this topology (γ in s/byte).

        Ring and torus: :func:`torus_allreduce_time` (per-dimension bidirectional rings). Switch
        (full bisection, e.g. NVSwitch): the ring all-reduce at each device's one-way bandwidth,
        ``2(p−1)α + 2(p−1)/p·n/B + (p−1)/p·n·γ`` (in-switch reduction, NVLink SHARP, is not
        modelled). Two levels: :func:`hierarchical_allreduce_time`.
        """
        if self.kind in ("ring", "torus"):
            return torus_allreduce_time(n_bytes, self.dims, self.alpha, 1 / self.link_bandwidth, gamma)
        if self.kind == "switch":
            return collective_time("allreduce", "ring", n_bytes, self.p, self.alpha,
                                   1 / self.device_bandwidth, gamma)
        nodes, per_node = self.dims
        return hierarchical_allreduce_time(n_bytes, nodes, per_node, self.alpha, 1 / self.device_bandwidth,
                                           self.network_alpha, 1 / self.network_bandwidth, gamma)


def _bandwidth(name: str, value: Any) -> float:
    return checks.real(name, value, positive=True)


def fsdp_comm_time(weight_bytes, grad_bytes, p: int, alpha: float, beta: float, algorithm: str = "ring") -> float:
    """Seconds of communication per training step of ZeRO-3 / FSDP over ``p`` devices (Rajbhandari
    et al. 2020): the sharded weights are all-gathered twice (for the forward and again for the
    backward pass), ``weight_bytes`` each time, and the gradients reduce-scattered once,
    ``grad_bytes`` (the trainable weights' gradients). Each collective by ``algorithm`` with
    ``alpha`` s and ``beta`` s/byte (:func:`collective_time`; n as :data:`N_CONVENTION`: the whole
    tensor). For equal bytes this is 1.5 times a ring all-reduce's bandwidth term. ``p = 1`` costs
    nothing. ``ValueError`` names a bad argument. Taught in: "Interconnects" and "How to choose"."""
    weight_bytes = checks.real("weight_bytes", weight_bytes, nonnegative=True)
    grad_bytes = checks.real("grad_bytes", grad_bytes, nonnegative=True)
    gather = collective_time("allgather", checks.one_of("algorithm", algorithm, ALGORITHMS["allgather"]),
                             weight_bytes, p, alpha, beta)
    scatter = collective_time("reducescatter", "ring" if algorithm == "ring" else "recursive_halving",
                              grad_bytes, p, alpha, beta)
    return 2 * gather + scatter


def alltoall_bisection_time(n_bytes, topology: Topology) -> float:
    """A lower bound (seconds) on an all-to-all in which every device sends ``n_bytes``, ``n/p``
    to each device, on ``topology``: half the devices sit on each side of the worst balanced cut,
    and each sends half its bytes across it, so ``(p/2)·(n/2)`` bytes cross each way, at most at
    the topology's one-way bisection bandwidth: ``t ≥ p·n / (4·B_bisection)``. Latency is left out.
    ``ValueError`` for a bad ``n_bytes``; ``TypeError`` if ``topology`` is not a
    :class:`Topology`. Taught in: "Interconnects" (mixture-of-experts routing)."""
    topology = checks.instance("topology", topology, Topology)
    n = checks.real("n_bytes", n_bytes, nonnegative=True)
    return checks.finite_result({"n_bytes": n_bytes}, topology.p * n / (4 * topology.bisection_bandwidth))


def ring_topology(p: int, link_bandwidth: float, alpha: float) -> Topology:
    """A bidirectional ring of ``p`` devices; ``link_bandwidth`` bytes/s per link per direction,
    ``alpha`` seconds per message (per hop). ``ValueError`` for ``p`` not a positive integer, a
    bandwidth not > 0 or a negative ``alpha``."""
    p = checks.positive_int("p", p, maximum=2**20)
    return Topology("ring", (p,), checks.real("alpha", alpha, nonnegative=True),
                    link_bandwidth=_bandwidth("link_bandwidth", link_bandwidth))


def torus_topology(dims, link_bandwidth: float, alpha: float) -> Topology:
    """A 1D, 2D or 3D torus of shape ``dims`` (TPU ICI: v5e/v6e 2D, v4/v5p 3D); ``link_bandwidth``
    bytes/s per link per direction, ``alpha`` seconds per message. ``ValueError`` for more than 3
    dimensions, more than 2**24 chips, or another bad argument, naming it."""
    dims = tuple(checks.sequence("dims", dims, of=lambda name, v: checks.positive_int(name, v, maximum=2**20)))
    if len(dims) > 3:
        raise ValueError(f"dims={checks.show(dims)} has {len(dims)} dimensions; allowed: 1 to 3")
    checks.size_limit("dims", dims, math.prod(dims), 2**24, "devices")
    return Topology("torus", dims, checks.real("alpha", alpha, nonnegative=True),
                    link_bandwidth=_bandwidth("link_bandwidth", link_bandwidth))


def switch_topology(p: int, device_bandwidth: float, alpha: float) -> Topology:
    """``p`` devices on one non-blocking switch (full bisection, e.g. NVSwitch in an HGX node);
    ``device_bandwidth`` bytes/s one way from a device into the switch (NVLink 4: 450 GB/s).
    ``ValueError`` names a bad argument."""
    p = checks.positive_int("p", p, maximum=2**20)
    return Topology("switch", (p,), checks.real("alpha", alpha, nonnegative=True),
                    device_bandwidth=_bandwidth("device_bandwidth", device_bandwidth))


def two_level_topology(nodes: int, per_node: int, intra_bandwidth: float, inter_bandwidth: float,
                       intra_alpha: float, inter_alpha: float) -> Topology:
    """``nodes`` nodes of ``per_node`` devices: a switch inside each node (``intra_bandwidth``
    bytes/s one way per device, ``intra_alpha`` s) and a full-bisection network across nodes, one
    NIC per device (``inter_bandwidth`` bytes/s one way, ``inter_alpha`` s). DGX H100: 8 GPUs,
    450 GB/s NVLink 4, 50 GB/s NDR InfiniBand each. ``ValueError`` names a bad argument."""
    nodes = checks.positive_int("nodes", nodes, maximum=2**20)
    per_node = checks.positive_int("per_node", per_node, maximum=2**20)
    return Topology("two_level", (nodes, per_node), checks.real("intra_alpha", intra_alpha, nonnegative=True),
                    device_bandwidth=_bandwidth("intra_bandwidth", intra_bandwidth),
                    network_bandwidth=_bandwidth("inter_bandwidth", inter_bandwidth),
                    network_alpha=checks.real("inter_alpha", inter_alpha, nonnegative=True))


# ---------------------------------------------------------------------------------------------
# Parallelism: tensor, pipeline and data parallel costs of a transformer layer stack
# ---------------------------------------------------------------------------------------------

def layer_shape(d_model: int, n_heads: int, n_kv_heads: int, d_ff: int, n_layers: int = 1) -> decoder.DecoderConfig:
    """A :class:`accelbook.models.decoder.DecoderConfig` from plain numbers (the layer shape the
    parallelism functions take): width ``d_model``, ``n_heads`` query heads, ``n_kv_heads``
    key/value heads, MLP width ``d_ff``, ``n_layers`` layers. ``ValueError`` (from the config)
    if a count is not a positive integer or ``d_model``/``n_heads`` do not divide."""
    return decoder.DecoderConfig("custom", d_model, n_heads, n_kv_heads, d_ff, n_layers=n_layers)


def _config(config: Any) -> decoder.DecoderConfig:
    return checks.instance("config", config, decoder.DecoderConfig)


def _matmul_weights(config: decoder.DecoderConfig) -> int:
    d, kv, f = config.d_model, config.kv_dim, config.d_ff
    return d * (d + 2 * kv) + d * d + 3 * d * f


def layer_flops(config, batch: int, seq_len: int, training: bool = True) -> float:
    """FLOP of one layer for ``batch`` sequences of ``seq_len`` tokens (the whole layer, before any
    split): forward ``2·B·s·N_w + 4·B·s²·d`` (``N_w`` the matmul weights ``d(d+2kv) + d² + 3df``;
    attention as the full ``s × s`` square, as :func:`accelbook.models.decoder.layer_ops` counts
    prefill), times 3 with the backward pass (``training``: backward ≈ 2× forward).
    ``TypeError`` if ``config`` is not a DecoderConfig; ``ValueError`` names another bad argument."""
    config = _config(config)
    b = checks.positive_int("batch", batch)
    s = checks.positive_int("seq_len", seq_len)
    training = checks.boolean("training", training)
    forward = 2.0 * b * s * _matmul_weights(config) + 4.0 * b * s * s * config.d_model
    return checks.finite_result({"batch": batch, "seq_len": seq_len}, forward * (3 if training else 1))


@dataclasses.dataclass(frozen=True)
class TensorParallelCost:
    """Tensor parallelism (Megatron-LM) of one layer over ``tp`` devices.

    ``allreduces_per_layer`` all-reduces of ``bytes_per_allreduce`` bytes (the activations,
    ``B·s·d`` values): 2 in the forward pass, 4 with the backward. Times in seconds per layer:
    ``comm_time`` all of them, ``compute_time`` the layer's FLOP / tp / peak. ``comm_to_compute``
    is their ratio (0 when ``tp = 1``).
    """

    tp: int
    allreduces_per_layer: int
    bytes_per_allreduce: float
    allreduce_time: float
    comm_time: float
    compute_time: float

    @property
    def comm_to_compute(self) -> float:
        return self.comm_time / self.compute_time


def tensor_parallel(config, tp: int, batch: int, seq_len: int, peak_flops: float, alpha: float,
                    beta: float, bytes_per_value: float = 2, training: bool = True,
                    algorithm: str = "ring") -> TensorParallelCost:
    """Communication and compute of one layer split ``tp`` ways (Shoeybi et al. 2019, Megatron-LM).

    Megatron splits attention by heads and the MLP by columns then rows, so each layer ends its
    attention block and its MLP block with an all-reduce of the full activations, ``B·s·d ·
    bytes_per_value`` bytes: 2 per layer forward, 2 more backward (``training``). Each costs
    :func:`collective_time` ("allreduce", ``algorithm``, ..., ``tp``, ``alpha`` s, ``beta`` s/byte);
    compute is :func:`layer_flops` / ``tp`` / ``peak_flops`` (FLOP/s, the chip's peak for the dtype).
    ``tp`` must divide ``n_heads`` and ``d_ff``. (With sequence parallelism each all-reduce becomes
    a reduce-scatter and an all-gather of the same total bytes.) ``TypeError`` if ``config`` is
    not a DecoderConfig; ``ValueError`` names another bad argument.
    """
    config = _config(config)
    tp = checks.positive_int("tp", tp, maximum=2**20)
    if config.n_heads % tp or config.d_ff % tp:
        raise ValueError(f"tp={tp} must divide n_heads={config.n_heads} and d_ff={config.d_ff}")
    peak = checks.real("peak_flops", peak_flops, positive=True)
    bpv = checks.real("bytes_per_value", bytes_per_value, positive=True)
    count = 4 if checks.boolean("training", training) else 2
    nbytes = checks.finite_result({"batch": batch, "seq_len": seq_len, "bytes_per_value": bytes_per_value},
                                  checks.positive_int("batch", batch) * checks.positive_int("seq_len", seq_len)
                                  * config.d_model * bpv)
    one = collective_time("allreduce", algorithm, nbytes, tp, alpha, beta)
    compute = layer_flops(config, batch, seq_len, training) / tp / peak
    return TensorParallelCost(tp, count, float(nbytes), one, count * one, compute)


def max_tensor_parallel(config, batch: int, seq_len: int, peak_flops: float, alpha: float, beta: float,
                        bytes_per_value: float = 2, training: bool = True, algorithm: str = "ring",
                        max_degree: int = 1024) -> int:
    """The largest tensor-parallel degree (a divisor of ``n_heads`` and ``d_ff``, at most
    ``max_degree``) whose all-reduce time per layer does not exceed its compute time.

    Compute per device falls as ``1/tp`` while a ring all-reduce's time grows with ``tp``
    (``2(tp−1)α`` plus ``2(tp−1)/tp`` of the bytes), so past this degree the layer spends more
    time communicating than computing (unless the two overlap). Returns 1 when even ``tp = 2`` is
    communication-bound. Arguments as :func:`tensor_parallel`; algorithms that need a power of two
    skip other degrees. ``TypeError``/``ValueError`` as :func:`tensor_parallel`.
    """
    config = _config(config)
    max_degree = checks.positive_int("max_degree", max_degree, maximum=2**16)
    best = 1
    for tp in range(2, min(max_degree, config.n_heads) + 1):
        if config.n_heads % tp or config.d_ff % tp:
            continue
        if (("allreduce", checks.one_of("algorithm", algorithm, ALGORITHMS["allreduce"])) in POWER_OF_TWO
                and tp & (tp - 1)):
            continue
        cost = tensor_parallel(config, tp, batch, seq_len, peak_flops, alpha, beta, bytes_per_value,
                               training, algorithm)
        if cost.comm_time <= cost.compute_time:
            best = tp
    # validate the remaining arguments even when no degree above 1 qualified
    tensor_parallel(config, 1, batch, seq_len, peak_flops, alpha, beta, bytes_per_value, training, algorithm)
    return best


def pipeline_bubble(stages: int, microbatches: int) -> float:
    """The idle fraction of a GPipe/1F1B pipeline step: ``(p−1)/(m+p−1)`` for ``p = stages`` and
    ``m = microbatches`` (Huang et al. 2019; Narayanan et al. 2021, who state the same bubble
    relative to the ideal time instead, ``(p−1)/m``). One stage has no bubble. ``ValueError`` if
    either is not a positive integer."""
    p = checks.positive_int("stages", stages)
    m = checks.positive_int("microbatches", microbatches)
    return (p - 1) / (m + p - 1)


@dataclasses.dataclass(frozen=True)
class PipelineCost:
    """Pipeline parallelism of a layer stack over ``stages`` devices, per training (or inference)
    step of ``microbatches`` microbatches.

    ``bytes_per_boundary``: the activations one microbatch sends to the next stage (and, in
    training, the same bytes of gradient sent back). ``p2p_time`` = α + bytes·β for one such
    message. Per stage: ``compute_time`` for its layers and all microbatches, ``comm_time`` for
    its sends (an interior stage's). ``step_time`` = ``(m + p − 1) × (compute + p2p per
    microbatch)``, the GPipe schedule with the bubble; ``bubble_fraction`` its idle share.
    """

    stages: int
    microbatches: int
    bubble_fraction: float
    bytes_per_boundary: float
    p2p_time: float
    compute_time: float
    comm_time: float
    step_time: float

    @property
    def comm_to_compute(self) -> float:
        return self.comm_time / self.compute_time


def pipeline_parallel(config, stages: int, microbatches: int, micro_batch: int, seq_len: int,
                      peak_flops: float, alpha: float, beta: float, bytes_per_value: float = 2,
                      training: bool = True) -> PipelineCost:
    """Communication and bubble of ``config.n_layers`` layers cut into ``stages`` equal stages.

    Each microbatch of ``micro_batch`` sequences of ``seq_len`` tokens crosses every stage
    boundary once forward (``micro_batch·seq_len·d_model·bytes_per_value`` bytes) and, in
    training, its gradient once backward; each crossing is one point-to-point message,
    ``alpha + bytes·beta`` seconds. Compute per stage per microbatch: ``n_layers/stages`` ×
    :func:`layer_flops` / ``peak_flops``. ``stages`` must divide ``n_layers`` (``ValueError``
    otherwise; ``TypeError`` if ``config`` is not a DecoderConfig).
    """
    config = _config(config)
    p = checks.positive_int("stages", stages, maximum=2**16)
    if config.n_layers % p:
        raise ValueError(f"stages={p} must divide n_layers={config.n_layers}")
    m = checks.positive_int("microbatches", microbatches, maximum=2**24)
    peak = checks.real("peak_flops", peak_flops, positive=True)
    a = checks.real("alpha", alpha, nonnegative=True)
    bt = checks.real("beta", beta, nonnegative=True)
    bpv = checks.real("bytes_per_value", bytes_per_value, positive=True)
    training = checks.boolean("training", training)
    mb = checks.positive_int("micro_batch", micro_batch)
    s = checks.positive_int("seq_len", seq_len)
    nbytes = checks.finite_result({"micro_batch": micro_batch, "seq_len": seq_len}, mb * s * config.d_model * bpv)
    p2p = checks.finite_result({"beta": beta}, a + nbytes * bt) if p > 1 else 0.0
    per_mb = config.n_layers / p * layer_flops(config, mb, s, training) / peak
    sends = (2 if training else 1) * (p2p if p > 1 else 0.0)
    step = (m + p - 1) * (per_mb + sends)
    return PipelineCost(p, m, pipeline_bubble(p, m), float(nbytes), p2p, m * per_mb, m * sends,
                        checks.finite_result({"peak_flops": peak_flops}, step))


@dataclasses.dataclass(frozen=True)
class DataParallelCost:
    """Data parallelism over ``dp`` replicas, per step.

    ``grad_bytes`` = params × bytes per gradient, all-reduced in ``buckets`` equal buckets of
    ``bucket_time`` seconds each (``comm_time`` all of them). ``compute_time`` = forward +
    backward; ``exposed_time`` the communication left after the backward pass ends (the overlap
    model of :func:`data_parallel`); ``step_time = compute_time + exposed_time``.
    """

    dp: int
    grad_bytes: float
    buckets: int
    bucket_time: float
    comm_time: float
    compute_time: float
    backward_time: float
    exposed_time: float

    @property
    def step_time(self) -> float:
        return self.compute_time + self.exposed_time

    @property
    def comm_to_compute(self) -> float:
        return self.comm_time / self.compute_time


def data_parallel(params: int, dp: int, tokens_per_replica: int, peak_flops: float, alpha: float,
                  beta: float, bytes_per_grad: float = 2, buckets: int = 1, algorithm: str = "ring",
                  gamma: float = 0.0) -> DataParallelCost:
    """The gradient all-reduce of data parallelism and how much of it hides behind the backward pass.

    Each step all-reduces ``params · bytes_per_grad`` bytes over ``dp`` replicas
    (:func:`collective_time` with ``algorithm``, ``alpha`` s, ``beta`` s/byte, ``gamma`` s/byte).
    Compute per replica: ``2·params·tokens`` FLOP forward and ``4·params·tokens`` backward, at
    ``peak_flops``.

    Overlap model (bucketed all-reduce, as PyTorch DDP does): the gradients are cut into
    ``buckets`` equal buckets; bucket ``i`` is ready at ``i/buckets`` of the backward pass, and the
    buckets are all-reduced one after another, each as soon as it is ready and the previous one is
    done. ``exposed_time`` is how long the last one ends after the backward pass. When a bucket's
    all-reduce is shorter than ``1/buckets`` of the backward pass, everything but the last bucket
    hides: ``exposed_time = bucket_time``. ``ValueError`` names a bad argument.
    """
    params = checks.positive_int("params", params)
    dp = checks.positive_int("dp", dp, maximum=2**24)
    tokens = checks.positive_int("tokens_per_replica", tokens_per_replica)
    peak = checks.real("peak_flops", peak_flops, positive=True)
    bpg = checks.real("bytes_per_grad", bytes_per_grad, positive=True)
    nb = checks.positive_int("buckets", buckets, maximum=100_000)
    grad_bytes = checks.finite_result({"params": params, "bytes_per_grad": bytes_per_grad}, params * bpg)
    bucket = collective_time("allreduce", algorithm, grad_bytes / nb, dp, alpha, beta, gamma)
    forward = checks.finite_result({"params": params, "tokens_per_replica": tokens}, 2.0 * params * tokens / peak)
    backward = 2 * forward
    finish = 0.0
    for i in range(1, nb + 1):
        finish = max(finish, backward * i / nb) + bucket
    exposed = max(0.0, finish - backward)
    return DataParallelCost(dp, float(grad_bytes), nb, bucket, nb * bucket, forward + backward, backward, exposed)


# ---------------------------------------------------------------------------------------------
# Serving across chips: a tensor-parallel decode step, and how many chips a model needs
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TPDecodeStep:
    """One decode step of ``batch`` sequences at ``context`` tokens, tensor-parallel over ``tp``
    devices (seconds, bytes).

    Per device: ``compute_time`` (its share of the FLOP at the peak), ``memory_time`` (its share of
    the weights and of the KV cache at the memory bandwidth), ``comm_time`` (the all-reduces of the
    step, on the critical path). ``step_time = max(compute_time, memory_time) + comm_time``.
    ``tokens_per_s`` is the group's output, ``batch / step_time``; ``tokens_per_s_per_device`` that
    over ``tp``.
    """

    tp: int
    batch: int
    context: int
    weight_bytes_per_device: float
    kv_bytes_per_device: float
    allreduces: int
    allreduce_bytes: float
    compute_time: float
    memory_time: float
    comm_time: float

    @property
    def step_time(self) -> float:
        return max(self.compute_time, self.memory_time) + self.comm_time

    @property
    def tokens_per_s(self) -> float:
        return self.batch / self.step_time

    @property
    def tokens_per_s_per_device(self) -> float:
        return self.tokens_per_s / self.tp

    @property
    def comm_fraction(self) -> float:
        """The share of the step spent in the all-reduces."""
        return self.comm_time / self.step_time


def _tp_memory(config: decoder.DecoderConfig, tp: int, batch: int, context: int, bytes_per_param: float,
               kv_bytes_per_value: float) -> tuple[float, float, float]:
    """(weight bytes read per device, KV bytes per device, weight bytes held per device)."""
    held = kvcache.weight_params(config) * bytes_per_param / tp
    read = kvcache.params_read(config, batch) * bytes_per_param / tp
    # a KV head lives on one device; past n_kv_heads devices the heads are copied, not split further
    kv_split = 1 if config.is_mla else min(tp, config.n_kv_heads)
    kv = kvcache.kv_bytes(config, "bf16", batch, context) / 2 * kv_bytes_per_value / kv_split
    return read, kv, held


def _check_tp(config: decoder.DecoderConfig, tp: Any) -> int:
    tp = checks.positive_int("tp", tp, maximum=2**16)
    if config.n_heads % tp:
        raise ValueError(f"tp={tp} must divide n_heads={config.n_heads} of {config.name!r}")
    return tp


def tp_decode_step(config, tp: int, batch: int, context: int, peak_flops: float, memory_bandwidth: float,
                   alpha: float, beta: float, bytes_per_param: float = 2, bytes_per_value: float = 2,
                   kv_bytes_per_value: float = 2, algorithm: str = "ring") -> TPDecodeStep:
    """A decode step of a whole model split ``tp`` ways with Megatron tensor parallelism.

    Work (:mod:`accelbook.models.kvcache`): FLOP ``2·active_params·batch`` plus the attention's,
    split evenly; weight bytes ``params_read(batch) · bytes_per_param`` split evenly; KV-cache bytes
    ``kv_bytes`` at ``kv_bytes_per_value`` bytes a value, split by key/value head (a device holds
    whole heads, so past ``n_kv_heads`` devices the cache is copied rather than split further; a
    latent-attention cache is one shared latent, copied on every device). Communication: 2
    all-reduces per layer (after attention and after the MLP) of the new tokens' activations,
    ``batch · d_model · bytes_per_value`` bytes each, by ``algorithm`` over ``tp`` ranks
    (:func:`collective_time` with ``alpha`` s and ``beta`` s/byte; ``"best"``: the fastest
    algorithm of :data:`ALGORITHMS` that ``tp`` allows, as NCCL picks by size), not overlapped: in decode each
    layer waits for the all-reduce before it can go on. ``peak_flops`` FLOP/s and
    ``memory_bandwidth`` bytes/s are one device's. The LM head and embeddings are left out.

    ``tp = 1`` is one device holding the whole model (replication: ``k`` copies serve ``k`` times
    the tokens/s). ``bytes_per_param = 1`` models 8-bit weights, ``0.5`` 4-bit (their scales
    left out). ``TypeError`` if ``config`` is not a DecoderConfig; ``ValueError`` names another bad
    argument (``tp`` must divide ``n_heads``). Taught in: "Interconnects" (weak links).
    """
    config = _config(config)
    tp = _check_tp(config, tp)
    batch = checks.positive_int("batch", batch)
    context = checks.positive_int("context", context)
    peak = checks.real("peak_flops", peak_flops, positive=True)
    bw = checks.real("memory_bandwidth", memory_bandwidth, positive=True)
    bpp = checks.real("bytes_per_param", bytes_per_param, positive=True)
    bpv = checks.real("bytes_per_value", bytes_per_value, positive=True)
    kvb = checks.real("kv_bytes_per_value", kv_bytes_per_value, positive=True)
    algorithm = checks.one_of("algorithm", algorithm, ("best", *ALGORITHMS["allreduce"]))
    read, kv, _ = _tp_memory(config, tp, batch, context, bpp, kvb)
    flops = 2.0 * kvcache.active_params(config) * batch + kvcache.attention_flops(config, batch, context)
    nbytes = float(batch * config.d_model * bpv)
    count = 2 * config.n_layers
    if algorithm == "best":
        one = min(collective_time("allreduce", alg, nbytes, tp, alpha, beta) for alg in ALGORITHMS["allreduce"]
                  if ("allreduce", alg) not in POWER_OF_TWO or not tp & (tp - 1))
    else:
        one = collective_time("allreduce", algorithm, nbytes, tp, alpha, beta)
    names = {"batch": batch, "context": context, "peak_flops": peak_flops, "memory_bandwidth": memory_bandwidth}
    return TPDecodeStep(tp, batch, context, read, kv, count, nbytes,
                        checks.finite_result(names, flops / tp / peak),
                        checks.finite_result(names, (read + kv) / bw),
                        checks.finite_result({"alpha": alpha, "beta": beta}, count * one))


def devices_needed(config, memory_capacity: float, batch: int, context: int, bytes_per_param: float = 2,
                   kv_bytes_per_value: float = 2, max_devices: int = 1024) -> int:
    """The fewest devices, a power of two that divides ``n_heads``, whose memory holds the model's
    weights (``weight_params · bytes_per_param``, split evenly) and the KV cache of ``batch``
    sequences at ``context`` tokens (split by head as :func:`tp_decode_step` splits it).

    ``memory_capacity`` is the bytes one device offers for weights and cache (pass a budget, for
    example 90 % of the device-visible memory as vLLM's ``gpu_memory_utilization`` does; the rest
    is activations and workspace). ``ValueError`` when no such count up to ``max_devices`` exists
    (the message says how many bytes the model needs), or for another bad argument; ``TypeError``
    if ``config`` is not a DecoderConfig. Taught in: "Interconnects" (fewer boundaries).
    """
    config = _config(config)
    cap = checks.real("memory_capacity", memory_capacity, positive=True)
    batch = checks.positive_int("batch", batch)
    context = checks.positive_int("context", context)
    bpp = checks.real("bytes_per_param", bytes_per_param, positive=True)
    kvb = checks.real("kv_bytes_per_value", kv_bytes_per_value, positive=True)
    most = checks.positive_int("max_devices", max_devices, maximum=2**16)
    tp = 1
    while tp <= most and config.n_heads % tp == 0:
        _, kv, held = _tp_memory(config, tp, batch, context, bpp, kvb)
        if held + kv <= cap:
            return tp
        tp *= 2
    _, kv1, held1 = _tp_memory(config, 1, batch, context, bpp, kvb)
    raise ValueError(f"memory_capacity={cap:.4g} bytes: {config.name!r} needs {held1 + kv1:.4g} bytes of weights "
                     f"and cache on one device, and no power-of-two split up to max_devices={most} that divides "
                     f"n_heads={config.n_heads} brings it under the capacity")


__all__ = ["ALGORITHMS", "ALGORITHM_NAMES", "DIRECTIONS", "FAMILIES", "MEASURED_QUANTITIES", "NCCL_OPS", "N_CONVENTION", "OPS",
           "POWER_OF_TWO", "QUANTITIES", "RATES", "TOPOLOGY_KINDS", "ChipLinks", "CostTerms", "DataParallelCost", "Fit",
           "Link", "LinkData", "LinkValue", "LowerBound", "Measurement", "PipelineCost", "Sweep",
           "TPDecodeStep", "TensorParallelCost", "Topology", "algorithm_bandwidth", "algorithm_from_bus_bandwidth",
           "bus_bandwidth", "bus_bandwidth_factor", "chip_links", "collective_time", "cost_terms", "crossover_bytes",
           "alltoall_bisection_time", "data_parallel", "devices_needed", "fit_alpha_beta", "fsdp_comm_time", "get_link", "get_sweep", "hierarchical_allreduce_time",
           "layer_flops", "layer_shape", "link_data", "links", "lower_bound", "max_tensor_parallel",
           "measurements", "nccl_size_bytes", "parse_links", "pipeline_bubble", "pipeline_parallel", "rail_allreduce_time",
           "ring_topology", "switch_topology", "tensor_parallel", "time_from_bus_bandwidth",
           "torus_allreduce_time", "torus_topology", "tp_decode_step", "two_level_topology"]
