"""Inside a GPU SM: occupancy, latency hiding, and tensor cores versus CUDA cores.

Three models, all pure Python/NumPy:

* :func:`occupancy` -- how many blocks and warps of a kernel fit on one SM, by the rules of NVIDIA's
  CUDA Occupancy Calculator (``cuda_occupancy.h``, Nsight Compute's calculator), for compute
  capabilities 7.0, 7.5, 8.0, 8.6, 8.9 and 9.0. The limits come from ``data/cuda_arch.toml``, one
  sourced table per compute capability (:func:`arch`).
* Latency hiding: :func:`littles_law` and its helpers (:func:`bytes_in_flight`,
  :func:`warps_needed`), and :func:`simulate_scheduler`, a cycle-level model of one warp scheduler
  whose issue rate is checked against the Little's-law bound :func:`issue_rate_bound`.
* :func:`tensor_vs_simt` -- how much faster the tensor cores are than the FP32 "CUDA cores", per
  dtype, from the spec database (:mod:`accelbook.specs`); :func:`tensor_core_half_dtype`, the 16-bit
  dtype a chip's tensor cores run (fp16 on Volta and Turing, bf16 from Ampere on).
* How tensor cores are fed and what they do not fix: :func:`tensor_core_generations` (Volta to
  Blackwell), :func:`mma_fill` (the useful share of one matrix instruction),
  :func:`sectors_per_request` (32-byte sectors of one warp access) and :func:`bank_conflict_degree`
  (shared-memory banks), with the sourced rules of :func:`memory_access` and the execution units of
  :func:`sm_units`.

Taught in: "Inside a GPU SM" (all of it) and "Overheads: launch, sync and Python" (Little's law:
work in flight needed to hide a latency).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib.resources
import math
import numbers
import re
import sys
from typing import Any, Mapping

import numpy as np

from accelbook import checks, specs
from accelbook.specs import Source, parse_sources
from accelbook.units import to_si

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# ------------------------------------------------------------------------------------------------
# The architecture table
# ------------------------------------------------------------------------------------------------

# Field name -> (SI unit it must convert to, meaning). The loader rejects any other field and
# requires all of them.
ARCH_FIELDS: dict[str, tuple[str, str]] = {
    "warp_size": ("count", "threads per warp"),
    "max_threads_per_block": ("count", "maximum threads in one block"),
    "max_warps_per_sm": ("count", "maximum resident warps per SM"),
    "max_blocks_per_sm": ("count", "maximum resident blocks per SM"),
    "registers_per_sm": ("count", "32-bit registers in one SM's register file"),
    "max_registers_per_block": ("count", "maximum 32-bit registers one block may hold"),
    "max_registers_per_thread": ("count", "maximum registers one thread may use"),
    "register_allocation_unit": ("count", "registers are allocated per warp in multiples of this"),
    "register_sub_partitions": ("count", "SM sub-partitions (one warp scheduler each) sharing the registers"),
    "shared_mem_per_sm": ("B", "largest shared-memory carveout per SM"),
    "shared_mem_per_block": ("B", "shared memory one block may use without opting in"),
    "shared_mem_per_block_optin": ("B", "shared memory one block may use after opting in"),
    "shared_mem_reserved_per_block": ("B", "shared memory the system reserves for every block"),
    "shared_mem_allocation_unit": ("B", "shared memory is allocated per block in multiples of this"),
    "shared_mem_carveouts": ("B", "shared-memory sizes per SM the L1/shared split can be set to"),
}

_RESOURCES = ("warps", "blocks", "registers", "shared_memory")


@dataclasses.dataclass(frozen=True)
class ArchLimits:
    """The SM limits of one compute capability, in bytes and counts, each with its sources.

    ``sources`` maps a field name of :data:`ARCH_FIELDS` to the documents that state it and
    ``notes`` to an optional remark. ``shared_mem_carveouts`` lists the per-SM shared-memory sizes
    (bytes) the L1/shared split can be configured to, ascending; its largest is
    ``shared_mem_per_sm``.
    """

    compute_capability: str
    name: str
    examples: str
    warp_size: int
    max_threads_per_block: int
    max_warps_per_sm: int
    max_blocks_per_sm: int
    registers_per_sm: int
    max_registers_per_block: int
    max_registers_per_thread: int
    register_allocation_unit: int
    register_sub_partitions: int
    shared_mem_per_sm: int
    shared_mem_per_block: int
    shared_mem_per_block_optin: int
    shared_mem_reserved_per_block: int
    shared_mem_allocation_unit: int
    shared_mem_carveouts: tuple[int, ...]
    sources: Mapping[str, tuple[Source, ...]] = dataclasses.field(repr=False, compare=False)
    notes: Mapping[str, str] = dataclasses.field(repr=False, compare=False)

    @property
    def max_threads_per_sm(self) -> int:
        """Maximum resident threads per SM: ``max_warps_per_sm * warp_size``."""
        return self.max_warps_per_sm * self.warp_size


_DIVISORS = ("warp_size", "max_threads_per_block", "max_warps_per_sm", "max_blocks_per_sm", "registers_per_sm",
             "max_registers_per_thread", "register_allocation_unit", "register_sub_partitions",
             "shared_mem_per_sm", "shared_mem_allocation_unit")


def _as_int(where: str, value: float) -> int:
    if float(value) != int(value):
        raise ValueError(f"{where}: {value!r} is not a whole number")
    return int(value)


def parse_arch_table(data: dict) -> dict[str, ArchLimits]:
    """Validate a parsed ``cuda_arch.toml`` (as a dict) and build one :class:`ArchLimits` per entry.

    Every field of :data:`ARCH_FIELDS` is required, each an inline table ``{value, unit, source}``
    (plus an optional ``note``), ``source`` naming one or more keys of ``[sources]``. Raises
    ``ValueError`` naming the offending entry otherwise. The table behind :func:`arch`, chapter
    "Inside a GPU SM" (and the appendix that lists sources).
    """
    checks.instance("data", data, dict)
    for name in ("sources", "arch"):
        if not isinstance(data.get(name, {}), dict):
            raise ValueError(f"data[{name!r}]: expected a table, got {checks.show(data[name])}")
    sources = parse_sources(data.get("sources", {}))
    table: dict[str, ArchLimits] = {}
    for cc, entry in data.get("arch", {}).items():
        if not re.fullmatch(r"\d+\.\d+", cc):
            raise ValueError(f"arch.{cc!r}: the key must be a compute capability 'M.m'")
        if not isinstance(entry, dict) or not isinstance(entry.get("limits", {}), dict):
            raise ValueError(f"arch.{cc}: expected a table with a [limits] table, got {checks.show(entry)}")
        limits = entry.get("limits", {})
        missing = set(ARCH_FIELDS) - set(limits)
        unknown = set(limits) - set(ARCH_FIELDS)
        if missing or unknown:
            raise ValueError(f"arch.{cc}.limits: missing {sorted(missing)}, unknown {sorted(unknown)}")
        values: dict[str, Any] = {}
        cited: dict[str, tuple[Source, ...]] = {}
        notes: dict[str, str] = {}
        for field, (si_unit, _) in ARCH_FIELDS.items():
            where = f"arch.{cc}.limits.{field}"
            item = limits[field]
            if not isinstance(item, dict) or not {"value", "unit", "source"} <= set(item) \
                    or set(item) - {"value", "unit", "source", "note"}:
                raise ValueError(f"{where}: expected {{value, unit, source[, note]}}, got {item!r}")
            keys = [item["source"]] if isinstance(item["source"], str) else list(item["source"])
            if not keys or any(k not in sources for k in keys):
                raise ValueError(f"{where}: source {item['source']!r} must name keys of [sources]")
            raw = item["value"]
            if field == "shared_mem_carveouts":
                if not isinstance(raw, list) or not raw:
                    raise ValueError(f"{where}: expected a non-empty list, got {raw!r}")
                converted = []
                for v in raw:
                    si, unit = to_si(v, item["unit"])
                    if unit != si_unit:
                        raise ValueError(f"{where}: unit {item['unit']!r} is not {si_unit!r}")
                    converted.append(_as_int(where, si))
                if converted != sorted(set(converted)):
                    raise ValueError(f"{where}: carveouts must be distinct and ascending")
                values[field] = tuple(converted)
            else:
                try:
                    si, unit = to_si(raw, item["unit"])
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
                if unit != si_unit:
                    raise ValueError(f"{where}: unit {item['unit']!r} converts to {unit!r}, not {si_unit!r}")
                values[field] = _as_int(where, si)
                if values[field] <= 0 and field in _DIVISORS:
                    raise ValueError(f"{where}: value={raw!r} must be > 0 (it divides)")
            cited[field] = tuple(sources[k] for k in keys)
            if "note" in item:
                notes[field] = str(item["note"])
        a = ArchLimits(compute_capability=cc, name=str(entry.get("name", "")),
                       examples=str(entry.get("examples", "")), sources=cited, notes=notes, **values)
        if a.shared_mem_carveouts[-1] != a.shared_mem_per_sm:
            raise ValueError(f"arch.{cc}: the largest carveout must equal shared_mem_per_sm")
        if a.shared_mem_per_block_optin + a.shared_mem_reserved_per_block > a.shared_mem_per_sm:
            raise ValueError(f"arch.{cc}: opt-in per-block shared memory plus the reservation exceeds the SM")
        if a.shared_mem_per_block > a.shared_mem_per_block_optin:
            raise ValueError(f"arch.{cc}: shared_mem_per_block exceeds shared_mem_per_block_optin")
        if a.registers_per_sm % a.register_sub_partitions:
            raise ValueError(f"arch.{cc}: registers_per_sm must split evenly across sub-partitions")
        table[cc] = a
    return table


@functools.lru_cache(maxsize=None)
def _arch_table() -> dict[str, ArchLimits]:
    text = importlib.resources.files("accelbook").joinpath("data/cuda_arch.toml").read_text("utf-8")
    return parse_arch_table(tomllib.loads(text))


def compute_capabilities() -> tuple[str, ...]:
    """The compute capabilities the occupancy model knows, as ``'M.m'`` strings, oldest first.

    Chapter "Inside a GPU SM".
    """
    return tuple(sorted(_arch_table(), key=lambda cc: tuple(int(p) for p in cc.split("."))))


def _normalize_cc(compute_capability: Any) -> str:
    cc = compute_capability
    if isinstance(cc, str):
        m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", cc)
        if m:
            return f"{int(m.group(1))}.{int(m.group(2))}"
    elif isinstance(cc, (tuple, list)) and len(cc) == 2 and all(
            isinstance(p, numbers.Integral) and not isinstance(p, bool) and p >= 0 for p in cc):
        return f"{int(cc[0])}.{int(cc[1])}"
    raise ValueError(f"compute_capability={compute_capability!r} is not a compute capability; "
                     "write it as a string 'M.m' (e.g. '8.0') or a tuple (major, minor) of integers")


def arch(compute_capability: str | tuple[int, int]) -> ArchLimits:
    """The sourced SM limits of one compute capability (``'8.0'`` or ``(8, 0)``).

    Raises ``ValueError`` for a malformed value and ``KeyError`` for a compute capability the table
    does not hold (the message lists the known ones). Chapter "Inside a GPU SM".
    """
    cc = _normalize_cc(compute_capability)
    table = _arch_table()
    if cc not in table:
        raise KeyError(f"compute_capability={compute_capability!r} is not in the architecture table; "
                       f"known: {', '.join(compute_capabilities())}")
    return table[cc]


# ------------------------------------------------------------------------------------------------
# Occupancy
# ------------------------------------------------------------------------------------------------

SCHEDULER_LIMIT = 10**7
"""The most cycles (plus the longest latency) and warps :func:`simulate_scheduler` simulates: it
keeps a few Python lists of that length, so a larger run is a ``ValueError``, not a MemoryError."""


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None, allowed: str = "") -> int:
    maximum = checks.MAX_INT if maximum is None else maximum
    if checks.is_bool(value) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an integer"
                         + (f" ({allowed})" if allowed else f" >= {minimum}"))
    v = int(value)
    if v < minimum or (maximum is not None and v > maximum):
        rng = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ValueError(f"{name}={value!r} is out of range; allowed: integers {rng}"
                         + (f" ({allowed})" if allowed else ""))
    return v


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil_div(a, b) * b


@dataclasses.dataclass(frozen=True)
class Occupancy:
    """Result of :func:`occupancy`: how many blocks and warps of one kernel fit on one SM.

    Block limits per resource (``blocks_limit_*``) are ``None`` when the kernel uses none of that
    resource (0 registers, or no shared memory on an architecture that reserves none per block).
    ``limiting`` names every resource whose limit equals ``blocks_per_sm``; ``reason`` explains,
    when ``blocks_per_sm == 0``, why a single block cannot launch (empty otherwise).
    """

    compute_capability: str
    threads_per_block: int
    registers_per_thread: int
    shared_mem_per_block: int
    warps_per_block: int
    registers_per_warp: int
    registers_per_block: int
    shared_mem_allocated_per_block: int
    shared_mem_carveout: int
    blocks_limit_warps: int
    blocks_limit_blocks: int
    blocks_limit_registers: int | None
    blocks_limit_shared_memory: int | None
    blocks_per_sm: int
    warps_per_sm: int
    max_warps_per_sm: int
    occupancy: float
    limiting: tuple[str, ...]
    reason: str = ""

    @property
    def block_limits(self) -> dict[str, int | None]:
        """The four per-resource block limits keyed 'warps', 'blocks', 'registers', 'shared_memory'."""
        return {"warps": self.blocks_limit_warps, "blocks": self.blocks_limit_blocks,
                "registers": self.blocks_limit_registers,
                "shared_memory": self.blocks_limit_shared_memory}

    @property
    def threads_per_sm(self) -> int:
        """Active threads per SM: ``blocks_per_sm * threads_per_block``."""
        return self.blocks_per_sm * self.threads_per_block


def occupancy(compute_capability: str | tuple[int, int], threads_per_block: int,
              registers_per_thread: int, shared_mem_per_block: int, *,
              shared_mem_carveout: int | None = None, shared_mem_opt_in: bool = True) -> Occupancy:
    """Theoretical occupancy of one kernel on one SM, exactly as NVIDIA's occupancy calculator.

    Arguments: the compute capability (``'8.0'`` or ``(8, 0)``), threads per block, registers per
    thread (as ``ptxas -v`` reports, 0..255) and shared memory per block in bytes (static +
    dynamic). ``shared_mem_carveout`` is the shared memory configured per SM in bytes: ``None``
    means the largest the architecture allows (the calculator's assumption when the driver picks
    the L1/shared split); otherwise it must be one of ``arch(cc).shared_mem_carveouts``.
    ``shared_mem_opt_in`` says the kernel opted in (``cudaFuncAttributeMaxDynamicSharedMemorySize``)
    to more than the default 48 KB per block.

    The rules (those of ``cuda_occupancy.h``; W = warp size, P = register sub-partitions)::

        warps/block  w   = ceil(threads / W)
        by warps         = floor(max_warps_per_sm / w)         (0 if threads > max_threads_per_block)
        by blocks        = max_blocks_per_sm
        regs/warp    r_w = ceil(regs_per_thread * W / 256) * 256
        by registers     = floor(floor(registers_per_sm / P / r_w) * P / w)
                           (0 if r_w * ceil(w / P) * P > max_registers_per_block: the hardware
                           checks a block as if its warps were spread over all P sub-partitions)
        smem/block   s_b = ceil((shared_mem_per_block + reserved) / unit) * unit
        by shared mem    = floor(carveout / s_b)
                           (0 if s_b > per-block maximum + reserved; if s_b > carveout the driver
                           raises the carveout to the smallest allowed size that holds one block)
        blocks/SM        = min(the four limits);  occupancy = blocks/SM * w / max_warps_per_sm

    Registers live in P = 4 sub-partitions (one per warp scheduler), each holding
    ``registers_per_sm / 4`` registers, and a warp's registers sit in one sub-partition; so the SM
    holds ``floor(16384 / r_w)`` warps per sub-partition, times 4. On CC 8.0 and later the system
    reserves 1 KB of shared memory per block (CUDA 11+). Not modelled: the Hopper block-barrier
    limit (never binding with at most two named barriers per block) and thread-block clusters.

    A configuration that cannot launch gives ``blocks_per_sm == 0`` with a ``reason``; a value that
    is not a configuration at all (threads < 1, registers outside 0..255, negative shared memory, a
    carveout the architecture does not offer) raises ``ValueError``; an unknown compute capability
    raises ``KeyError``. Chapter "Inside a GPU SM".
    """
    a = arch(compute_capability)
    threads = _check_int("threads_per_block", threads_per_block, 1)
    regs = _check_int("registers_per_thread", registers_per_thread, 0, a.max_registers_per_thread,
                      f"CC {a.compute_capability} allows at most {a.max_registers_per_thread} per thread")
    smem = _check_int("shared_mem_per_block", shared_mem_per_block, 0,
                      allowed="bytes of static plus dynamic shared memory, >= 0")
    if not checks.is_bool(shared_mem_opt_in):
        raise ValueError(f"shared_mem_opt_in={shared_mem_opt_in!r} must be True or False")
    allowed_carveouts = ", ".join(str(c) for c in a.shared_mem_carveouts)
    if shared_mem_carveout is None:
        preference = a.shared_mem_per_sm
    else:
        if isinstance(shared_mem_carveout, bool) or not isinstance(shared_mem_carveout, numbers.Integral) \
                or int(shared_mem_carveout) not in a.shared_mem_carveouts:
            raise ValueError(f"shared_mem_carveout={shared_mem_carveout!r} is not a carveout of "
                             f"CC {a.compute_capability}; allowed (bytes): None or one of "
                             f"{allowed_carveouts}")
        preference = int(shared_mem_carveout)

    reasons: list[str] = []
    warps = _ceil_div(threads, a.warp_size)

    # Warps: the block must be a legal block; then whole blocks fill the warp slots.
    if threads > a.max_threads_per_block:
        by_warps = 0
        reasons.append(f"threads_per_block={threads} exceeds the maximum of {a.max_threads_per_block} "
                       f"threads per block on CC {a.compute_capability}")
    else:
        by_warps = a.max_warps_per_sm // warps

    by_blocks = a.max_blocks_per_sm

    # Registers: allocated per warp in units of 256, warps placed in sub-partitions.
    parts = a.register_sub_partitions
    regs_per_warp = _round_up(regs * a.warp_size, a.register_allocation_unit)
    regs_per_block = regs_per_warp * warps
    warps_per_part = (a.registers_per_sm // parts) // regs_per_warp if regs_per_warp else None
    hardware_need = regs_per_warp * _round_up(warps, parts)
    by_regs: int | None
    if hardware_need > a.max_registers_per_block or regs_per_block > a.max_registers_per_block:
        by_regs = 0
        reasons.append(
            f"registers: a block of {warps} warps at {regs} registers per thread needs {regs_per_warp} "
            f"registers per warp (rounded up to a multiple of {a.register_allocation_unit}); the SM's "
            f"{parts} sub-partitions of {a.registers_per_sm // parts} registers hold {warps_per_part} "
            f"such warps each, {warps_per_part * parts} in all, fewer than the block's {warps}")
    elif warps_per_part is None:
        by_regs = None
    else:
        by_regs = warps_per_part * parts // warps

    # Shared memory: per-block allocation (with the system reservation), then the SM's carveout.
    reserved = a.shared_mem_reserved_per_block
    smem_alloc = _round_up(smem + reserved, a.shared_mem_allocation_unit)
    per_block_max = a.shared_mem_per_block_optin if shared_mem_opt_in else a.shared_mem_per_block
    carveout = preference
    by_smem: int | None
    if smem_alloc > per_block_max + reserved:
        by_smem = 0
        how = "with opt-in" if shared_mem_opt_in else "without opt-in (shared_mem_opt_in=False)"
        reasons.append(
            f"shared memory: shared_mem_per_block={smem} B plus {reserved} B reserved by the system, "
            f"rounded up to a multiple of {a.shared_mem_allocation_unit} B, is {smem_alloc} B, more than the "
            f"{per_block_max + reserved} B a block may hold on CC {a.compute_capability} {how}")
    else:
        if preference < smem_alloc:
            # The driver overrides a carveout too small for one block with the smallest one that fits.
            carveout = next(c for c in a.shared_mem_carveouts if c >= smem_alloc)
        by_smem = carveout // smem_alloc if smem_alloc else None

    limits = {"warps": by_warps, "blocks": by_blocks, "registers": by_regs, "shared_memory": by_smem}
    blocks = min(v for v in limits.values() if v is not None)
    limiting = tuple(k for k in _RESOURCES if limits[k] == blocks)
    return Occupancy(
        compute_capability=a.compute_capability, threads_per_block=threads,
        registers_per_thread=regs, shared_mem_per_block=smem, warps_per_block=warps,
        registers_per_warp=regs_per_warp, registers_per_block=regs_per_block,
        shared_mem_allocated_per_block=smem_alloc, shared_mem_carveout=carveout,
        blocks_limit_warps=by_warps, blocks_limit_blocks=by_blocks, blocks_limit_registers=by_regs,
        blocks_limit_shared_memory=by_smem, blocks_per_sm=blocks, warps_per_sm=blocks * warps,
        max_warps_per_sm=a.max_warps_per_sm, occupancy=blocks * warps / a.max_warps_per_sm,
        limiting=limiting, reason="; ".join(reasons) if blocks == 0 else "")


# ------------------------------------------------------------------------------------------------
# Little's law
# ------------------------------------------------------------------------------------------------

def _check_nonneg(name: str, value: Any) -> float:
    if not checks.is_real(value) or not math.isfinite(value) or value < 0 \
            or (isinstance(value, numbers.Integral) and abs(int(value)) > checks.MAX_INT):
        raise ValueError(f"{name}={checks.show(value)} must be a finite number >= 0")
    return float(value)


def littles_law(latency: float, throughput: float) -> float:
    """Work in flight needed to sustain ``throughput`` when each item takes ``latency``.

    Little's law: ``in_flight = latency * throughput`` (items, if latency is in seconds and
    throughput in items per second; or cycles times items per cycle). To keep a pipe of latency L
    busy at rate X, X*L items must be under way at once. Chapters "Inside a GPU SM" (warps and
    bytes in flight) and "Overheads: launch, sync and Python" (launches queued ahead of the GPU).
    """
    return checks.finite_result({"latency": latency, "throughput": throughput},
                                _check_nonneg("latency", latency) * _check_nonneg("throughput", throughput))


def bytes_in_flight(latency_s: float, bandwidth_Bps: float) -> float:
    """Bytes that must be outstanding to saturate ``bandwidth_Bps`` at memory latency ``latency_s``.

    ``bytes = latency_s * bandwidth_Bps`` (Little's law with bytes as the work item). E.g. 600 ns
    at 3.35 TB/s needs about 2 MB in flight across the chip. Chapter "Inside a GPU SM".
    """
    _check_nonneg("latency_s", latency_s), _check_nonneg("bandwidth_Bps", bandwidth_Bps)
    return littles_law(latency_s, bandwidth_Bps)


def warps_needed(latency: float, issue_rate: float = 1.0,
                 instructions_in_flight_per_warp: float = 1.0) -> int:
    """Warps a scheduler needs to hide ``latency`` (cycles) while issuing ``issue_rate`` per cycle.

    ``warps = ceil(latency * issue_rate / instructions_in_flight_per_warp)``: Little's law gives the
    instructions that must be in flight, and each warp contributes its independent instructions
    (its instruction-level parallelism). Chapter "Inside a GPU SM".
    """
    ilp = _check_nonneg("instructions_in_flight_per_warp", instructions_in_flight_per_warp)
    if ilp == 0:
        raise ValueError("instructions_in_flight_per_warp=0 must be > 0")
    _check_nonneg("latency", latency), _check_nonneg("issue_rate", issue_rate)
    need = checks.finite_result({"latency": latency, "issue_rate": issue_rate,
                                 "instructions_in_flight_per_warp": instructions_in_flight_per_warp},
                                littles_law(latency, issue_rate) / ilp)
    return math.ceil(round(need, 9))


# ------------------------------------------------------------------------------------------------
# One warp scheduler, cycle by cycle
# ------------------------------------------------------------------------------------------------

POLICIES = ("gto", "round_robin")


def _check_scheduler_args(n_warps, alu_per_mem, alu_latency, mem_latency, cycles=None):
    n = _check_int("n_warps", n_warps, 1)
    a = _check_int("alu_per_mem", alu_per_mem, 0)
    la = _check_int("alu_latency", alu_latency, 1, allowed="cycles, >= 1")
    lm = _check_int("mem_latency", mem_latency, 1, allowed="cycles, >= 1")
    c = None if cycles is None else _check_int("cycles", cycles, 1)
    return n, a, la, lm, c


def _check_scheduler_size(n: int, la: int, lm: int, c: int) -> None:
    if n > SCHEDULER_LIMIT:
        raise ValueError(f"n_warps={n} is above the simulator's limit of {SCHEDULER_LIMIT:,} warps")
    if max(la, lm) + c > SCHEDULER_LIMIT:
        raise ValueError(f"cycles={c}, alu_latency={la}, mem_latency={lm}: the simulator keeps cycles + the "
                         f"longest latency = {max(la, lm) + c:,} entries, above its limit of {SCHEDULER_LIMIT:,}")


def issue_rate_bound(n_warps: int, alu_per_mem: int, alu_latency: int, mem_latency: int) -> float:
    """Little's-law ceiling on the long-run issue rate of :func:`simulate_scheduler`.

    In the simulated program every instruction depends on the one before it in the same warp, so a
    warp has at most one instruction in flight. One loop iteration is ``A = alu_per_mem``
    arithmetic instructions and one load, and takes at least ``T = A*alu_latency + mem_latency``
    cycles. The mean latency per instruction is ``T/(A+1)``, so ``n`` warps keep at most ``n``
    instructions in flight and, by Little's law, issue at most ``n*(A+1)/T`` per cycle; the
    scheduler issues at most one::

        rate <= min(1, n_warps * (A + 1) / (A * alu_latency + mem_latency))

    The knee, ``(A*alu_latency + mem_latency)/(A+1)`` warps, is :func:`warps_to_saturate`.
    Chapter "Inside a GPU SM".
    """
    n, a, la, lm, _ = _check_scheduler_args(n_warps, alu_per_mem, alu_latency, mem_latency)
    return min(1.0, n * (a + 1) / (a * la + lm))


def warps_to_saturate(alu_per_mem: int, alu_latency: int, mem_latency: int) -> int:
    """Fewest warps for which :func:`issue_rate_bound` reaches 1 instruction per cycle.

    ``ceil((A*alu_latency + mem_latency) / (A + 1))`` with ``A = alu_per_mem``: the mean latency
    per instruction, which by Little's law is the number of one-instruction-in-flight warps needed.
    Chapter "Inside a GPU SM".
    """
    _, a, la, lm, _ = _check_scheduler_args(1, alu_per_mem, alu_latency, mem_latency)
    return _ceil_div(a * la + lm, a + 1)


def max_issued(n_warps: int, alu_per_mem: int, alu_latency: int, mem_latency: int, cycles: int) -> int:
    """Exact ceiling on the instructions :func:`simulate_scheduler` can issue in ``cycles`` cycles.

    A warp alone issues its k-th instruction at ``S_k`` (the sum of the latencies before it), and
    waiting for the scheduler only delays it, so in ``C`` cycles a warp issues at most
    ``#{k : S_k < C} = q*(A+1) + min(A, (C-1-q*T) // alu_latency) + 1`` with ``T = A*alu_latency +
    mem_latency`` and ``q = (C-1) // T``. All warps together: ``min(C, n_warps * that)``. Divided
    by ``C`` this tends to :func:`issue_rate_bound`. Chapter "Inside a GPU SM".
    """
    _check_int("cycles", cycles, 1)
    n, a, la, lm, c = _check_scheduler_args(n_warps, alu_per_mem, alu_latency, mem_latency, cycles)
    period = a * la + lm
    q = (c - 1) // period
    lone = q * (a + 1) + min(a, (c - 1 - q * period) // la) + 1
    return min(c, n * lone)


@dataclasses.dataclass(frozen=True)
class WarpStates:
    """Warp-cycles of a :func:`simulate_scheduler` run, by what the warp was doing.

    ``selected``: the warp issued. ``not_selected``: it was ready but another warp issued.
    ``alu_dependency`` / ``memory_dependency``: it waited for the result of its previous arithmetic
    instruction / load (roughly Nsight Compute's "selected", "not selected", "stall wait" and
    "stall long scoreboard" warp states). The four add up to ``n_warps * cycles``.
    Chapter "Inside a GPU SM".
    """

    selected: int
    not_selected: int
    alu_dependency: int
    memory_dependency: int

    @property
    def total(self) -> int:
        """All warp-cycles: ``n_warps * cycles`` of the run."""
        return self.selected + self.not_selected + self.alu_dependency + self.memory_dependency

    def as_dict(self) -> dict[str, int]:
        """The four counts keyed by state name (for tables and stacked bar charts)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class SchedulerRun:
    """Result of :func:`simulate_scheduler`.

    ``issue_rate`` is issued instructions per cycle over the whole run, ``steady_state_issue_rate``
    over its second half (cycles ``cycles//2`` to the end), ``bound`` the Little's-law ceiling
    :func:`issue_rate_bound`. Per-cycle traces (read-only NumPy arrays of length ``cycles``):
    ``trace_warp`` the warp that issued (-1: none), ``trace_kind`` what it issued (0 arithmetic,
    1 load, -1 none), ``ready_warps`` how many warps were ready at the start of the cycle.
    """

    n_warps: int
    alu_per_mem: int
    alu_latency: int
    mem_latency: int
    cycles: int
    policy: str
    issued: int
    issued_arithmetic: int
    issued_memory: int
    idle_cycles: int
    issue_rate: float
    steady_state_issue_rate: float
    bound: float
    warp_states: WarpStates
    trace_warp: np.ndarray = dataclasses.field(repr=False)
    trace_kind: np.ndarray = dataclasses.field(repr=False)
    ready_warps: np.ndarray = dataclasses.field(repr=False)


def simulate_scheduler(n_warps: int, alu_per_mem: int, alu_latency: int, mem_latency: int,
                       cycles: int, *, policy: str = "gto") -> SchedulerRun:
    """Simulate one warp scheduler cycle by cycle and measure its issue rate.

    The program: every warp loops over ``alu_per_mem`` arithmetic instructions followed by one
    memory load. Each instruction depends on the one before it in the same warp (the arithmetic
    is a dependent chain, the load's address comes from the last arithmetic result, and the next
    iteration's first arithmetic instruction uses the loaded value). So a warp has at most one
    instruction in flight, and after issuing an instruction at cycle ``c`` it is ready again at
    ``c + alu_latency`` (arithmetic) or ``c + mem_latency`` (load). All warps are ready at cycle
    0, at the top of their loop.

    The scheduler issues at most one instruction per cycle, from a ready warp chosen by
    ``policy``:

    * ``"gto"`` (greedy-then-oldest, default): the warp that issued in the previous cycle if it is
      ready again (only possible for 1-cycle latencies); otherwise the warp that has been ready the
      longest (ties: lowest warp index).
    * ``"round_robin"`` (loose round-robin): the first ready warp after the one that issued last,
      in index order, wrapping around.

    What the run shows against Little's law (:func:`issue_rate_bound`,
    ``min(1, n*(A+1)/(A*alu_latency + mem_latency))``):

    * it is never exceeded: ``issued <= max_issued(...)``, whose rate tends to the bound;
    * the gap is exactly the warps that wait ready but unselected:
      ``issue_rate * mean latency = n_warps - mean not-selected warps`` (up to the instructions
      still in flight at the end);
    * the bound is reached exactly with one warp, with loads only (``alu_per_mem = 0``), with
      1-cycle arithmetic under ``"gto"`` (each warp's loop is then one burst), and the scheduler
      issues every cycle once ``n_warps >= max(alu_latency, mem_latency)``;
    * in between, warps collide: with ``"gto"`` a ready warp waits at most ``n_warps - 1`` cycles
      (when no latency is 1), so the rate stays within a factor ``T/(T + (A+1)(n-1))`` of
      ``n(A+1)/T``; ``"round_robin"`` lets warps that start together stay together, reach their
      loads together and leave the scheduler idle (a convoy), far below the bound.

    Pure Python, one loop step per cycle: 64 warps x 10,000 cycles take 10-30 ms.
    Chapter "Inside a GPU SM".
    """
    _check_int("cycles", cycles, 1)
    n, a, la, lm, c_total = _check_scheduler_args(n_warps, alu_per_mem, alu_latency, mem_latency, cycles)
    _check_scheduler_size(n, la, lm, c_total)
    if policy not in POLICIES:
        raise ValueError(f"policy={policy!r} is not a scheduling policy; allowed: {', '.join(POLICIES)}")
    C = c_total
    # One loop step per cycle, kept lean. The issues are kept as two traces, arithmetic and loads,
    # padded in front by P = max(la, lm) cycles of nothing issued, so cycle ``cyc`` is index
    # ``i = P + cyc`` and the warps that become ready at cycle ``cyc`` are read straight from them:
    # the one that issued arithmetic at ``i - la`` and the one that issued a load at ``i - lm``
    # (one issue per cycle at most, so at most one warp from each). The waits and the warp-state
    # counts are summed from the traces afterwards.
    P = max(la, lm)
    E = P + C
    aw = [-1] * E                 # the warp that issued arithmetic at each cycle (-1: none), padded
    mw = [-1] * E                 # the warp that issued a load at each cycle (-1: none), padded
    rc = [0] * E                  # ready warps at the start of each cycle, padded
    pc = [0] * n                  # next instruction of each warp: 0..A-1 arithmetic, A the load

    if policy == "gto":
        queue = collections.deque(range(n))      # ready warps, longest-ready first
        popleft, append = queue.popleft, queue.append
        for i in range(P, E):
            wa = aw[i - la]                      # arithmetic completing now
            wm = mw[i - lm]                      # load completing now
            # a warp ready again one cycle after it issued (1-cycle latency) issues again (greedy)
            if wa >= 0:
                if la == 1:
                    if wm >= 0:
                        append(wm)
                    rc[i] = len(queue) + 1
                    w = wa
                elif wm >= 0:
                    if lm == 1:
                        append(wa)
                        rc[i] = len(queue) + 1
                        w = wm
                    else:
                        if wa < wm:
                            append(wa)
                            append(wm)
                        else:
                            append(wm)
                            append(wa)
                        rc[i] = len(queue)
                        w = popleft()
                else:
                    append(wa)
                    rc[i] = len(queue)
                    w = popleft()
            elif wm >= 0:
                if lm == 1:
                    rc[i] = len(queue) + 1
                    w = wm
                else:
                    append(wm)
                    rc[i] = len(queue)
                    w = popleft()
            elif queue:
                rc[i] = len(queue)
                w = popleft()
            else:
                continue
            p = pc[w]
            if p == a:
                pc[w] = 0
                mw[i] = w
            else:
                pc[w] = p + 1
                aw[i] = w
    else:
        ready = (1 << n) - 1                     # bit w set: warp w is ready
        count = n
        mask = -1                                # bits at or after the round-robin pointer
        for i in range(P, E):
            w = aw[i - la]
            if w >= 0:
                ready |= 1 << w
                count += 1
            w = mw[i - lm]
            if w >= 0:
                ready |= 1 << w
                count += 1
            if not count:
                continue
            rc[i] = count
            pick = (ready & mask) or ready
            bit = pick & -pick
            ready ^= bit
            count -= 1
            mask = -(bit << 1)                   # the next warp after this one (wraps: nothing left ahead)
            w = bit.bit_length() - 1
            p = pc[w]
            if p == a:
                pc[w] = 0
                mw[i] = w
            else:
                pc[w] = p + 1
                aw[i] = w

    aw = np.asarray(aw[P:], dtype=np.int32)
    mw = np.asarray(mw[P:], dtype=np.int32)
    tw = np.maximum(aw, mw)
    tk = np.where(aw >= 0, 0, np.where(mw >= 0, 1, -1)).astype(np.int8)
    rc = np.asarray(rc[P:], dtype=np.int32)
    for arr in (tw, tk, rc):
        arr.flags.writeable = False
    # Each issue at cycle c leaves its warp waiting min(latency, C - c) - 1 cycles of the run.
    left = C - np.flatnonzero(tk >= 0)
    kinds = tk[tk >= 0]
    alu_left, mem_left = left[kinds == 0], left[kinds == 1]
    n_alu, n_mem = int(alu_left.size), int(mem_left.size)
    alu_wait = int(np.minimum(alu_left, la).sum()) - n_alu
    mem_wait = int(np.minimum(mem_left, lm).sum()) - n_mem
    issued = n_alu + n_mem
    # Every warp-cycle is selected, waiting on a dependency, or ready and not selected.
    not_selected = n * C - issued - alu_wait - mem_wait
    half = C // 2
    steady = int(np.count_nonzero(tk[half:] >= 0)) / (C - half)
    states = WarpStates(selected=issued, not_selected=not_selected, alu_dependency=alu_wait,
                        memory_dependency=mem_wait)
    return SchedulerRun(n_warps=n, alu_per_mem=a, alu_latency=la, mem_latency=lm, cycles=C,
                        policy=policy, issued=issued, issued_arithmetic=n_alu, issued_memory=n_mem,
                        idle_cycles=C - issued, issue_rate=issued / C, steady_state_issue_rate=steady,
                        bound=issue_rate_bound(n, a, la, lm), warp_states=states,
                        trace_warp=tw, trace_kind=tk, ready_warps=rc)


# ------------------------------------------------------------------------------------------------
# Tensor cores versus CUDA cores
# ------------------------------------------------------------------------------------------------

def tensor_vs_simt(chip: str | specs.Chip) -> dict[str, float]:
    """Peak throughput of each dtype relative to the chip's FP32 (SIMT, "CUDA core") peak.

    ``ratio[dtype] = peak_flops[dtype] / peak_flops['fp32']`` for every dtype the spec database
    lists for the chip (dense peaks; int8 in OP/s), widest dtype first. ``fp32`` is 1 by
    definition; tf32/bf16/fp16/fp8/int8 run on tensor cores, so their ratio is how much a
    matrix multiply gains by using them. ``fp64`` is whatever the database stores (the vector rate
    unless its note says otherwise). ``chip`` is a key or name for :func:`accelbook.specs.get_chip`
    or a :class:`~accelbook.specs.Chip`; it must be a GPU with an fp32 peak. Chapter "Inside a GPU SM".
    """
    if isinstance(chip, str):
        chip = specs.get_chip(chip)
    elif not isinstance(chip, specs.Chip):
        raise ValueError(f"chip={chip!r} must be a chip key, a chip name or an accelbook.specs.Chip")
    if chip.kind != "gpu":
        raise ValueError(f"chip={chip.key!r} is a {chip.kind}, not a GPU; tensor-core versus SIMT "
                         "ratios apply to GPUs only")
    peaks = chip.peak_flops
    if not peaks.get("fp32"):
        raise ValueError(f"chip={chip.key!r} has no fp32 peak in the spec database "
                         f"(it has: {', '.join(peaks) or 'none'})")
    fp32 = peaks["fp32"]
    return {dtype: value / fp32 for dtype, value in peaks.items()}


__all__ = ["ARCH_FIELDS", "POLICIES", "ArchLimits", "Occupancy", "SchedulerRun", "WarpStates", "arch",
           "bytes_in_flight", "compute_capabilities", "issue_rate_bound", "littles_law", "max_issued",
           "occupancy", "parse_arch_table", "simulate_scheduler", "tensor_vs_simt", "warps_needed",
           "warps_to_saturate"]


# ------------------------------------------------------------------------------------------------
# Added for the chapter "Inside a GPU streaming multiprocessor" (04_gpu_sm): the parts of an SM
# and of the chip from the spec database, the memory levels, the parallelism memory needs, and
# sweeps of the occupancy and scheduler models for its figures.
# ------------------------------------------------------------------------------------------------

_ANATOMY_FIELDS = ("compute_capability", "sm_count", "tensor_cores_per_sm", "fp32_lanes_per_sm",
                   "register_file_per_sm", "l1_smem_per_sm", "shared_mem_per_sm",
                   "max_threads_per_sm", "l2_cache", "memory_capacity", "memory_bandwidth")


def _as_chip(chip: str | specs.Chip) -> specs.Chip:
    if isinstance(chip, str):
        return specs.get_chip(chip)
    if not isinstance(chip, specs.Chip):
        raise ValueError(f"chip={chip!r} must be a chip key, a chip name or an accelbook.specs.Chip")
    return chip


@dataclasses.dataclass(frozen=True)
class SMAnatomy:
    """The parts of one NVIDIA GPU, from the spec database and the architecture table.

    Per SM: ``partitions`` sub-partitions (one warp scheduler each, :attr:`ArchLimits.
    register_sub_partitions`), each with a slice of the register file and of the FP32 lanes and
    tensor cores; one L1 data cache / shared memory of ``l1_smem_per_sm`` bytes, of which up to
    ``shared_mem_per_sm`` can be shared memory. Per chip: ``sm_count`` SMs, one L2 cache, the
    device memory. Bytes, counts and bytes/s. Built by :func:`sm_anatomy`. Chapter "Inside a GPU SM".
    """

    chip: specs.Chip
    compute_capability: str
    sm_count: int
    partitions: int
    warp_size: int
    tensor_cores_per_sm: int
    fp32_lanes_per_sm: int
    register_file_per_sm: float
    registers_per_sm: int
    l1_smem_per_sm: float
    shared_mem_per_sm: float
    max_threads_per_sm: int
    max_warps_per_sm: int
    l2_cache: float
    memory_capacity: float
    memory_bandwidth: float
    memory_type: str

    @property
    def tensor_cores_per_partition(self) -> int:
        """Tensor cores in one sub-partition."""
        return self.tensor_cores_per_sm // self.partitions

    @property
    def fp32_lanes_per_partition(self) -> int:
        """FP32 lanes ("CUDA cores") in one sub-partition."""
        return self.fp32_lanes_per_sm // self.partitions

    @property
    def register_file_per_partition(self) -> float:
        """Bytes of register file in one sub-partition."""
        return self.register_file_per_sm / self.partitions

    @property
    def max_warps_per_scheduler(self) -> int:
        """Resident warps one warp scheduler can choose from: ``max_warps_per_sm / partitions``."""
        return self.max_warps_per_sm // self.partitions

    @property
    def register_file_total(self) -> float:
        """Bytes of register file on the whole chip: ``sm_count * register_file_per_sm``."""
        return self.sm_count * self.register_file_per_sm

    @property
    def l1_smem_total(self) -> float:
        """Bytes of L1 / shared memory on the whole chip: ``sm_count * l1_smem_per_sm``."""
        return self.sm_count * self.l1_smem_per_sm


def sm_anatomy(chip: str | specs.Chip) -> SMAnatomy:
    """The parts of one NVIDIA GPU's SM and chip, for the diagrams of chapter "Inside a GPU SM".

    Reads the spec-database fields ``sm_count``, ``tensor_cores_per_sm``, ``fp32_lanes_per_sm``,
    ``register_file_per_sm``, ``l1_smem_per_sm``, ``shared_mem_per_sm``, ``max_threads_per_sm``,
    ``l2_cache``, ``memory_capacity``, ``memory_bandwidth`` and the compute capability, whose
    architecture table (:func:`arch`) gives the sub-partitions and the warp size. Raises
    ``ValueError`` for a chip that is not a GPU, lacks one of these fields, or whose compute
    capability the table does not hold (say, a B200: CC 10.0), and when the spec database and
    the architecture table disagree (threads or shared memory per SM, register-file size).
    """
    chip = _as_chip(chip)
    if chip.kind != "gpu":
        raise ValueError(f"chip={chip.key!r} is a {chip.kind}, not a GPU")
    missing = [f for f in _ANATOMY_FIELDS if chip.value(f) is None]
    if missing:
        raise ValueError(f"chip={chip.key!r} lacks {', '.join(missing)} in the spec database; "
                         "an SM anatomy needs all of " + ", ".join(_ANATOMY_FIELDS))
    cc = chip.value("compute_capability")
    try:
        a = arch(cc)
    except KeyError:
        raise ValueError(f"chip={chip.key!r} has compute capability {cc}, which the architecture "
                         f"table does not hold (known: {', '.join(compute_capabilities())})") from None
    threads = int(chip.value("max_threads_per_sm"))
    if threads != a.max_threads_per_sm:
        raise ValueError(f"chip={chip.key!r}: max_threads_per_sm={threads} in the spec database but "
                         f"{a.max_threads_per_sm} for CC {cc} in the architecture table")
    if int(chip.value("shared_mem_per_sm")) != a.shared_mem_per_sm:
        raise ValueError(f"chip={chip.key!r}: shared_mem_per_sm differs between the spec database and "
                         f"the architecture table for CC {cc}")
    if int(chip.value("register_file_per_sm")) != 4 * a.registers_per_sm:
        raise ValueError(f"chip={chip.key!r}: register_file_per_sm is not {a.registers_per_sm} "
                         "32-bit registers")
    tc, lanes = int(chip.value("tensor_cores_per_sm")), int(chip.value("fp32_lanes_per_sm"))
    if tc % a.register_sub_partitions or lanes % a.register_sub_partitions:
        raise ValueError(f"chip={chip.key!r}: {tc} tensor cores and {lanes} FP32 lanes per SM do not "
                         f"split evenly over {a.register_sub_partitions} sub-partitions")
    return SMAnatomy(
        chip=chip, compute_capability=a.compute_capability, sm_count=int(chip.value("sm_count")),
        partitions=a.register_sub_partitions, warp_size=a.warp_size, tensor_cores_per_sm=tc,
        fp32_lanes_per_sm=lanes, register_file_per_sm=chip.value("register_file_per_sm"),
        registers_per_sm=a.registers_per_sm, l1_smem_per_sm=chip.value("l1_smem_per_sm"),
        shared_mem_per_sm=chip.value("shared_mem_per_sm"), max_threads_per_sm=threads,
        max_warps_per_sm=a.max_warps_per_sm, l2_cache=chip.value("l2_cache"),
        memory_capacity=chip.value("memory_capacity"), memory_bandwidth=chip.value("memory_bandwidth"),
        memory_type=str(chip.value("memory_type", "device memory")))


def anatomy_chips() -> list[specs.Chip]:
    """The GPUs of the spec database that :func:`sm_anatomy` can describe, oldest first.

    Chapter "Inside a GPU SM" (the chip selector of its SM diagram).
    """
    found = []
    for chip in specs.chips("gpu"):
        try:
            sm_anatomy(chip)
        except ValueError:
            continue
        found.append(chip)
    return found


@dataclasses.dataclass(frozen=True)
class MemoryLevel:
    """One level of a GPU's memory hierarchy, fastest first (see :func:`memory_levels`).

    ``per_sm`` and ``total`` are capacities in bytes (``per_sm`` is ``None`` for levels shared by
    the whole chip); ``bandwidth`` is in bytes/s, ``None`` where the spec database has no number;
    ``bandwidth_kind`` says where a bandwidth comes from ('spec sheet' or 'derived: ...').
    """

    name: str
    shared_by: str
    per_sm: float | None
    total: float
    bandwidth: float | None
    bandwidth_kind: str


def simt_operand_bandwidth(chip: str | specs.Chip) -> float:
    """Bytes/s of register operands the FP32 ("CUDA core") units consume at their peak.

    One fused multiply-add ``d = a*b + c`` is 2 FLOP and reads three 4-byte registers, so the
    units read ``6 * peak_flops['fp32']`` bytes/s from the register file (before any operand
    reuse). Set against the memory bandwidth, it says how few of those operands can come from
    device memory. Chapter "Inside a GPU SM".
    """
    chip = _as_chip(chip)
    fp32 = chip.peak_flops.get("fp32")
    if not fp32:
        raise ValueError(f"chip={chip.key!r} has no fp32 peak in the spec database")
    return 6.0 * fp32


def memory_levels(chip: str | specs.Chip) -> list[MemoryLevel]:
    """The memory levels of an NVIDIA GPU, fastest and smallest first: registers, L1 / shared
    memory, L2, device memory (HBM or GDDR).

    Capacities are the spec database's (per SM, and for the whole chip). The spec sheets give a
    bandwidth for device memory only; the register level carries :func:`simt_operand_bandwidth`
    (derived, not a spec), the others ``None``. Latencies are not in the database at all.
    Chapter "Inside a GPU SM".
    """
    a = sm_anatomy(chip)
    n = a.sm_count
    return [
        MemoryLevel("registers", "one thread", a.register_file_per_sm, n * a.register_file_per_sm,
                    simt_operand_bandwidth(a.chip), "derived: operands the FP32 units read at peak"),
        MemoryLevel("L1 / shared memory", "one block (shared memory); one SM (L1)", a.l1_smem_per_sm,
                    n * a.l1_smem_per_sm, None, ""),
        MemoryLevel("L2 cache", "all SMs", None, a.l2_cache, None, ""),
        MemoryLevel(f"device memory ({a.memory_type})", "all SMs", None,
                    a.memory_capacity, a.memory_bandwidth, "spec sheet"),
    ]


@dataclasses.dataclass(frozen=True)
class MemoryParallelism:
    """What Little's law asks of a whole GPU to keep its memory busy (see :func:`memory_parallelism`).

    ``bytes_in_flight`` for the chip and ``bytes_per_sm`` per SM; ``warp_loads_per_sm``: warp-wide
    loads of ``bytes_per_warp_load`` bytes each that must be outstanding per SM; ``loads_per_warp``:
    that number shared among ``max_warps_per_sm`` resident warps (full occupancy).
    """

    chip: specs.Chip
    latency_s: float
    bandwidth: float
    bytes_in_flight: float
    sm_count: int
    bytes_per_sm: float
    bytes_per_warp_load: int
    warp_loads_per_sm: float
    max_warps_per_sm: int
    loads_per_warp: float


def memory_parallelism(chip: str | specs.Chip, latency_s: float, bytes_per_thread: int = 4) -> MemoryParallelism:
    """Bytes and warp loads that must be in flight to saturate ``chip``'s memory bandwidth.

    ``bytes_in_flight = latency_s * memory_bandwidth`` (:func:`bytes_in_flight`), spread over the
    SMs; each warp-wide load moves ``warp_size * bytes_per_thread`` bytes (4: one float per thread;
    16: a float4). ``latency_s`` is an assumption of the caller: the spec database holds no
    latencies. Chapter "Inside a GPU SM".
    """
    a = sm_anatomy(chip)
    b = _check_int("bytes_per_thread", bytes_per_thread, 1, allowed="bytes each thread loads, >= 1")
    latency = _check_nonneg("latency_s", latency_s)
    total = bytes_in_flight(latency, a.memory_bandwidth)
    per_sm = total / a.sm_count
    per_load = a.warp_size * b
    loads = per_sm / per_load
    return MemoryParallelism(chip=a.chip, latency_s=latency, bandwidth=a.memory_bandwidth,
                             bytes_in_flight=total, sm_count=a.sm_count, bytes_per_sm=per_sm,
                             bytes_per_warp_load=per_load, warp_loads_per_sm=loads,
                             max_warps_per_sm=a.max_warps_per_sm,
                             loads_per_warp=loads / a.max_warps_per_sm)


@dataclasses.dataclass(frozen=True, eq=False)
class OccupancyCurve:
    """:func:`occupancy` over a range of registers per thread, everything else fixed.

    Arrays of equal length: ``registers``, ``blocks_per_sm``, ``occupancy`` (0..1); ``limiting``
    holds the limiting resources of each point (tuples of names).
    """

    compute_capability: str
    threads_per_block: int
    shared_mem_per_block: int
    registers: np.ndarray
    blocks_per_sm: np.ndarray
    occupancy: np.ndarray
    limiting: tuple[tuple[str, ...], ...]

    def max_registers_for(self, occupancy: float) -> int | None:
        """Most registers per thread (of those swept) that still reach ``occupancy``; ``None`` if none do."""
        occupancy = checks.real("occupancy", occupancy, positive=True, maximum=1)
        ok = self.registers[self.occupancy >= occupancy - 1e-12]
        return int(ok.max()) if ok.size else None


def occupancy_vs_registers(compute_capability: str | tuple[int, int], threads_per_block: int,
                           shared_mem_per_block: int = 0, registers=None, **kwargs: Any) -> OccupancyCurve:
    """Sweep :func:`occupancy` over registers per thread (default: every value 1..255).

    The "staircase": occupancy falls in steps, each where one more register per thread makes one
    block fewer fit in the register file. Extra keyword arguments go to :func:`occupancy`.
    Chapter "Inside a GPU SM".
    """
    regs = np.arange(1, 256) if registers is None else np.asarray(
        checks.sequence("registers", registers, of=lambda name, r: _check_int(name, r, 1, 255)))
    if regs.size == 0:
        raise ValueError("registers must not be empty")
    results = [occupancy(compute_capability, threads_per_block, int(r), shared_mem_per_block, **kwargs)
               for r in regs]
    return OccupancyCurve(compute_capability=results[0].compute_capability,
                          threads_per_block=int(threads_per_block),
                          shared_mem_per_block=int(shared_mem_per_block), registers=regs.astype(int),
                          blocks_per_sm=np.array([o.blocks_per_sm for o in results]),
                          occupancy=np.array([o.occupancy for o in results]),
                          limiting=tuple(o.limiting for o in results))


@dataclasses.dataclass(frozen=True, eq=False)
class IssueRateCurve:
    """:func:`simulate_scheduler` over a range of warp counts, next to the Little's-law bound.

    ``warps``, ``simulated`` (steady-state instructions per cycle) and ``bound``
    (:func:`issue_rate_bound`) are arrays of equal length; ``knee`` is :func:`warps_to_saturate`.
    """

    alu_per_mem: int
    alu_latency: int
    mem_latency: int
    cycles: int
    policy: str
    warps: np.ndarray
    simulated: np.ndarray
    bound: np.ndarray
    knee: int


def issue_rate_curve(warps, alu_per_mem: int, alu_latency: int, mem_latency: int,
                     cycles: int | None = None, *, policy: str = "gto") -> IssueRateCurve:
    """Issue rate of one simulated warp scheduler for each warp count in ``warps``.

    Each point is the steady-state rate (second half of the run) of :func:`simulate_scheduler`.
    ``cycles`` defaults to ten loop iterations of one warp, ``10 * (alu_per_mem * alu_latency +
    mem_latency)``, and at least 2,000, so the start-up transient does not weigh on the rate.
    Chapter "Inside a GPU SM" (the latency-hiding figure and explorer).
    """
    ws = np.asarray(checks.sequence("warps", warps, of=lambda name, w: _check_int(name, w, 1, SCHEDULER_LIMIT)))
    _, a, la, lm, _ = _check_scheduler_args(1, alu_per_mem, alu_latency, mem_latency)
    c = min(max(2000, 10 * (a * la + lm)), SCHEDULER_LIMIT - max(la, lm)) if cycles is None \
        else _check_int("cycles", cycles, 1)
    _check_scheduler_size(int(ws.max()), la, lm, c)
    runs = [simulate_scheduler(int(w), a, la, lm, c, policy=policy) for w in ws]
    return IssueRateCurve(alu_per_mem=a, alu_latency=la, mem_latency=lm, cycles=c, policy=policy,
                          warps=ws.astype(int),
                          simulated=np.array([r.steady_state_issue_rate for r in runs]),
                          bound=np.array([r.bound for r in runs]),
                          knee=warps_to_saturate(a, la, lm))


__all__ += ["IssueRateCurve", "MemoryLevel", "MemoryParallelism", "OccupancyCurve", "SMAnatomy",
            "anatomy_chips", "issue_rate_curve", "memory_levels", "memory_parallelism",
            "occupancy_vs_registers", "simt_operand_bandwidth", "sm_anatomy"]


# ------------------------------------------------------------------------------------------------
# Which 16-bit dtype the tensor cores run, how a warp's accesses become memory traffic, and how
# a matmul fills one tensor-core instruction (chapter "Inside a GPU streaming multiprocessor").
# ------------------------------------------------------------------------------------------------

HALF_DTYPES = ("bf16", "fp16")
"""The 16-bit dtypes in the order the book prefers them: bf16, or fp16 on chips whose tensor cores
have no bf16 (Volta and Turing: V100, T4). The same rule as chapters 01 and 02's ``HALF``."""


def tensor_core_half_dtype(chip: specs.Chip | None) -> str | None:
    """The 16-bit dtype to run on ``chip``'s tensor cores (or matrix units): the first of
    :data:`HALF_DTYPES` whose dense peak the spec database holds for the chip.

    bf16 on Ampere and newer (A100, L4, H100), fp16 on the V100 and T4, whose tensor cores have
    no bf16 (the Turing whitepaper lists FP16, INT8 and INT4 modes only). ``None`` for a chip the
    database does not know (``chip=None``) or one with neither peak (a CPU): the caller then
    runs bf16 and says that no spec sheet predicts it. Chapter "Inside a GPU SM".
    """
    if chip is None:
        return None
    if not isinstance(chip, specs.Chip):
        raise ValueError(f"chip={chip!r} must be an accelbook.specs.Chip or None")
    return next((d for d in HALF_DTYPES if chip.peak_flops.get(d)), None)


def _data_section(name: str, data: dict | None = None):
    """The table ``name`` of ``data`` (a parsed ``cuda_arch.toml``; default: the package's own) and
    its validated ``[sources]``."""
    if data is None:
        text = importlib.resources.files("accelbook").joinpath("data/cuda_arch.toml").read_text("utf-8")
        data = tomllib.loads(text)
    return data.get(name, {}), parse_sources(data.get("sources", {}))


def _sourced_number(where: str, item: Any, sources: Mapping[str, Source], si_unit: str):
    if not isinstance(item, dict) or not {"value", "unit", "source"} <= set(item):
        raise ValueError(f"{where}: expected {{value, unit, source[, note]}}, got {item!r}")
    keys = [item["source"]] if isinstance(item["source"], str) else list(item["source"])
    if not keys or any(k not in sources for k in keys):
        raise ValueError(f"{where}: source {item['source']!r} must name keys of [sources]")
    raw = item["value"] if isinstance(item["value"], list) else [item["value"]]
    values = []
    for v in raw:
        si, unit = to_si(v, item["unit"])
        if unit != si_unit:
            raise ValueError(f"{where}: unit {item['unit']!r} converts to {unit!r}, not {si_unit!r}")
        values.append(_as_int(where, si))
    return (tuple(values) if isinstance(item["value"], list) else values[0]), tuple(sources[k] for k in keys)


@dataclasses.dataclass(frozen=True)
class MemoryAccessRules:
    """How an NVIDIA SM (compute capability 6.0 and later) turns accesses into traffic: global
    memory moves in ``sector_bytes`` sectors (four to a ``cache_line_bytes`` line), and shared
    memory has ``banks`` banks of ``bank_bytes`` each, successive 32-bit words in successive banks.
    From ``data/cuda_arch.toml`` (:func:`memory_access`), each with its sources."""

    sector_bytes: int
    cache_line_bytes: int
    banks: int
    bank_bytes: int
    sources: Mapping[str, tuple[Source, ...]] = dataclasses.field(repr=False, compare=False)


@functools.lru_cache(maxsize=1)
def memory_access() -> MemoryAccessRules:
    """The sourced granularity of global-memory traffic and the banking of shared memory
    (``[memory_access]`` in ``data/cuda_arch.toml``). Chapter "Inside a GPU SM"."""
    return parse_memory_access(None)


def parse_memory_access(data: dict | None) -> MemoryAccessRules:
    """Validate the ``[memory_access]`` table of a parsed ``cuda_arch.toml`` (``None``: the
    package's own); ``ValueError`` naming the field otherwise. Chapter "Inside a GPU SM"."""
    table, sources = _data_section("memory_access", data)
    fields = {"sector_bytes": "B", "cache_line_bytes": "B", "shared_memory_banks": "count",
              "bank_width_bytes": "B"}
    if set(table) != set(fields):
        raise ValueError(f"memory_access: fields {sorted(table)}, expected {sorted(fields)}")
    got = {f: _sourced_number(f"memory_access.{f}", table[f], sources, u) for f, u in fields.items()}
    return MemoryAccessRules(sector_bytes=got["sector_bytes"][0], cache_line_bytes=got["cache_line_bytes"][0],
                             banks=got["shared_memory_banks"][0], bank_bytes=got["bank_width_bytes"][0],
                             sources={f: s for f, (_, s) in got.items()})


@dataclasses.dataclass(frozen=True)
class WarpAccess:
    """One warp-wide load or store (see :func:`sectors_per_request`): ``sectors`` 32-byte sectors
    moved, ``bytes_moved`` = sectors × sector size, ``bytes_used`` distinct bytes the threads asked
    for, and ``efficiency`` = bytes_used / bytes_moved (1.0: every byte moved is used)."""

    stride_bytes: int
    element_bytes: int
    offset_bytes: int
    warp_size: int
    sectors: int
    bytes_moved: int
    bytes_used: int

    @property
    def efficiency(self) -> float:
        return self.bytes_used / self.bytes_moved


def sectors_per_request(stride_bytes: int, element_bytes: int = 4, *, offset_bytes: int = 0,
                        warp_size: int = 32) -> WarpAccess:
    """The 32-byte sectors one warp-wide access touches, when thread ``i`` reads ``element_bytes``
    bytes at ``offset_bytes + i · stride_bytes`` (byte addresses from an aligned base).

    The rule of the CUDA Best Practices Guide: a warp's accesses coalesce into as many sector
    transactions as the sectors that hold the requested bytes. Contiguous, aligned 4-byte loads of
    a 32-thread warp touch 4 sectors (efficiency 1); shifted by 4 bytes, 5 (0.8); a stride of two
    elements, 8 (0.5); a stride of 32 or more elements, one sector per thread (4 / 32 = 0.125).
    A stride of 0 (every thread the same element) moves one sector. Chapter "Inside a GPU SM".
    """
    stride = _check_int("stride_bytes", stride_bytes, 0, 2**40, allowed="bytes between the addresses of neighbouring threads")
    size = _check_int("element_bytes", element_bytes, 1, 4096, allowed="bytes each thread reads")
    offset = _check_int("offset_bytes", offset_bytes, 0, 2**40, allowed="bytes from an aligned address")
    warp = _check_int("warp_size", warp_size, 1, 1024, allowed="threads in a warp")
    sector = memory_access().sector_bytes
    starts = offset + stride * np.arange(warp, dtype=np.int64)
    touched = set()
    used = set()
    for a in starts.tolist():
        touched.update(range(a // sector, (a + size - 1) // sector + 1))
        used.add(a)
    # distinct bytes: the union of the intervals [a, a + size)
    spans = sorted(used)
    n_used, end = 0, -1
    for a in spans:
        lo = max(a, end)
        n_used += max(0, a + size - lo)
        end = max(end, a + size)
    return WarpAccess(stride_bytes=stride, element_bytes=size, offset_bytes=offset, warp_size=warp,
                      sectors=len(touched), bytes_moved=len(touched) * sector, bytes_used=n_used)


def bank_conflict_degree(stride_words: int, *, warp_size: int = 32) -> int:
    """How many shared-memory passes one warp-wide access of 32-bit words needs, when thread ``i``
    reads word ``i · stride_words``: the most *distinct* words that fall in one bank (threads that
    read the same word get it in one broadcast).

    Successive 32-bit words sit in successive banks, word ``w`` in bank ``w mod 32`` (CUDA C++
    Programming Guide, shared memory of compute capability 5.x and later). Stride 1 and every odd
    stride: 1 (no conflict); stride 2: 2-way; stride 32: 32-way. For ``warp_size`` = the bank
    count it equals ``gcd(stride, banks)``. Chapter "Inside a GPU SM".
    """
    stride = _check_int("stride_words", stride_words, 0, allowed="32-bit words between neighbouring threads, >= 0")
    warp = _check_int("warp_size", warp_size, 1, 1024, allowed="threads in a warp")
    banks = memory_access().banks
    words_in_bank: dict[int, set] = collections.defaultdict(set)
    for i in range(warp):
        w = i * stride
        words_in_bank[w % banks].add(w)
    return max(len(ws) for ws in words_in_bank.values())


@dataclasses.dataclass(frozen=True)
class TensorCoreGeneration:
    """How one generation of NVIDIA tensor cores is fed (see :func:`tensor_core_generations`).

    ``mma_shape`` is (m, n, k) of its 16-bit matrix instruction (the largest, where the shape
    varies); ``tensor_memory_per_sm`` bytes (0 before Blackwell); the text fields say who issues
    the instruction, where its operands live and how tiles reach shared memory."""

    compute_capability: str
    generation: str
    instruction: str
    mma_shape: tuple[int, int, int]
    issued_by: str
    operands: str
    global_to_shared: str
    tensor_memory_per_sm: int
    sources: tuple[Source, ...] = dataclasses.field(repr=False, compare=False)


_TC_TEXT = ("generation", "instruction", "issued_by", "operands", "global_to_shared")


@functools.lru_cache(maxsize=1)
def tensor_core_generations() -> tuple[TensorCoreGeneration, ...]:
    """Volta to Blackwell, oldest first: the ``[tensor_core."CC"]`` entries of
    ``data/cuda_arch.toml``, each citing the PTX ISA, the CUDA guide, the whitepapers or CUTLASS.
    Chapter "Inside a GPU SM" (how tensor cores are fed)."""
    return parse_tensor_core_table(None)


def parse_tensor_core_table(data: dict | None) -> tuple[TensorCoreGeneration, ...]:
    """Validate the ``[tensor_core]`` tables of a parsed ``cuda_arch.toml`` (``None``: the
    package's own), oldest first; ``ValueError`` naming the entry otherwise."""
    table, sources = _data_section("tensor_core", data)
    out = []
    for cc, entry in table.items():
        where = f"tensor_core.{cc}"
        if not re.fullmatch(r"\d+\.\d+", cc):
            raise ValueError(f"{where}: the key must be a compute capability 'M.m'")
        allowed = set(_TC_TEXT) | {"mma_shape", "tensor_memory_per_sm", "sources"}
        missing = (set(allowed) - {"tensor_memory_per_sm"}) - set(entry)
        if missing or set(entry) - allowed:
            raise ValueError(f"{where}: missing {sorted(missing)}, unknown {sorted(set(entry) - allowed)}")
        shape, cited = _sourced_number(f"{where}.mma_shape", entry["mma_shape"], sources, "count")
        if not isinstance(shape, tuple) or len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"{where}.mma_shape: expected three positive counts (m, n, k), got {shape!r}")
        tmem = 0
        if "tensor_memory_per_sm" in entry:
            tmem, more = _sourced_number(f"{where}.tensor_memory_per_sm", entry["tensor_memory_per_sm"], sources, "B")
            cited += more
        keys = list(entry["sources"])
        if not keys or any(k not in sources for k in keys):
            raise ValueError(f"{where}.sources: {keys!r} must name keys of [sources]")
        cited = tuple(dict.fromkeys(tuple(sources[k] for k in keys) + cited))
        out.append(TensorCoreGeneration(cc, *(str(entry[f]) for f in _TC_TEXT[:2]), shape,
                                        *(str(entry[f]) for f in _TC_TEXT[2:]), tmem, cited))
    return tuple(sorted(out, key=lambda g: tuple(int(p) for p in g.compute_capability.split("."))))


def mma_fill(m: int, n: int, k: int, mma_shape=(16, 8, 16)) -> float:
    """Fraction of tensor-core work that is useful when an (m, k) @ (k, n) matmul runs as whole
    instructions of shape ``mma_shape`` = (M, N, K): each dimension is padded up to a multiple of
    the instruction's, so the fraction is ``m·n·k / (⌈m/M⌉M · ⌈n/N⌉N · ⌈k/K⌉K)``.

    With the m16n8k16 instruction (fp16 / bf16 ``mma.sync`` on Ampere, Ada and Hopper), a matmul of
    one row (a decode step at batch 1) uses 1/16 of each instruction. Chapter "Inside a GPU SM"
    (the running example).
    """
    dims = [_check_int(name, v, 1, allowed="matrix dimension, >= 1") for name, v in (("m", m), ("n", n), ("k", k))]
    shape = tuple(mma_shape) if isinstance(mma_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3:
        raise ValueError(f"mma_shape={mma_shape!r} must be (M, N, K): three positive integers")
    tile = [_check_int(f"mma_shape[{i}]", t, 1, allowed="instruction dimension, >= 1") for i, t in enumerate(shape)]
    frac = 1.0
    for d, t in zip(dims, tile):
        frac *= d / _round_up(d, t)
    return frac


__all__ += ["HALF_DTYPES", "MemoryAccessRules", "TensorCoreGeneration", "WarpAccess", "bank_conflict_degree",
            "memory_access", "mma_fill", "sectors_per_request", "tensor_core_generations",
            "tensor_core_half_dtype"]


@dataclasses.dataclass(frozen=True)
class SMUnits:
    """Execution units of one SM besides the FP32 lanes and tensor cores, as results per clock per
    SM (the CUDA C++ Programming Guide's throughput table): ``fp64`` lanes, ``int32`` lanes and
    ``sfu`` (special-function) lanes. See :func:`sm_units`."""

    compute_capability: str
    fp64: int
    int32: int
    sfu: int
    sources: tuple[Source, ...] = dataclasses.field(repr=False, compare=False)


@functools.lru_cache(maxsize=None)
def _sm_units_table() -> dict[str, SMUnits]:
    return parse_sm_units(None)


def parse_sm_units(data: dict | None) -> dict[str, SMUnits]:
    """Validate the ``[sm_units]`` tables of a parsed ``cuda_arch.toml`` (``None``: the package's
    own); ``ValueError`` naming the entry otherwise."""
    table, sources = _data_section("sm_units", data)
    out = {}
    for cc, entry in table.items():
        if set(entry) != {"fp64", "int32", "sfu"}:
            raise ValueError(f"sm_units.{cc}: fields {sorted(entry)}, expected fp64, int32, sfu")
        got = {f: _sourced_number(f"sm_units.{cc}.{f}", entry[f], sources, "count") for f in entry}
        cited = tuple(dict.fromkeys(s for _, ss in got.values() for s in ss))
        out[cc] = SMUnits(cc, got["fp64"][0], got["int32"][0], got["sfu"][0], cited)
    return out


def sm_units(compute_capability: str | tuple[int, int]) -> SMUnits:
    """FP64, INT32 and special-function lanes per SM of one compute capability (``[sm_units]`` in
    ``data/cuda_arch.toml``). ``KeyError`` for a compute capability the table does not hold.
    Chapter "Inside a GPU SM" (the SM diagram)."""
    cc = _normalize_cc(compute_capability)
    table = _sm_units_table()
    if cc not in table:
        raise KeyError(f"compute_capability={compute_capability!r} has no execution-unit entry; "
                       f"known: {', '.join(sorted(table))}")
    return table[cc]


__all__ += ["SMUnits", "parse_memory_access", "parse_sm_units", "parse_tensor_core_table", "sm_units"]
