"""What is running this notebook: backend, device kind, device count and its spec sheet; on a CPU,
which CPU (model, cores, vector width, FMA units, clock and the peak they imply); on an NVIDIA GPU,
its clocks and power right now.

Detection only: it reads what JAX reports (importing JAX inside :func:`current`), ``/proc/cpuinfo``
and ``nvidia-smi``, and finds the chip in the spec database; it imports no measurement. The
device's ceilings, from the spec sheet or measured when there is none, are
:func:`accelbook.measure.ceilings`. The parsers (:func:`parse_cpuinfo`, :func:`parse_gpu_clocks`)
are pure functions of the text, so they are tested on fixture strings from other machines.

Taught in: "Introduction" (what is this machine?) and every chapter's measurement section.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import math
import os
import platform
import re
import shutil
import subprocess
import sys

from accelbook import specs
from accelbook.checks import instance, nonneg_int, positive_int, real, show, text as check_text
from accelbook.models.matmul import peak_dtype
from accelbook.specs import Chip


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """The accelerator JAX will use by default."""

    backend: str  # 'cpu', 'gpu' or 'tpu'
    device_kind: str  # as JAX reports it, e.g. 'NVIDIA A100-SXM4-40GB', 'TPU v5 lite', 'cpu'
    device_count: int
    chip: Chip | None  # None when the database does not know device_kind

    def __post_init__(self):
        from accelbook.checks import one_of

        one_of("backend", self.backend, _BACKENDS)
        check_text("device_kind", self.device_kind)
        positive_int("device_count", self.device_count)
        if self.chip is not None:
            instance("chip", self.chip, Chip)

    @property
    def has_spec_sheet(self) -> bool:
        """True when the chip's ceilings come from a cited spec sheet (not the host CPU)."""
        return self.chip is not None and bool(self.chip.peak_flops) and bool(self.chip.memory_bandwidth)

    @property
    def label(self) -> str:
        """Short name for figure legends: the chip's name, or the raw device kind."""
        if self.chip is not None and self.chip.kind != "cpu":
            return self.chip.name
        return "this CPU" if self.backend == "cpu" else self.device_kind

    @property
    def tensorcores_per_device(self) -> int | None:
        """On TPU v2 and v3, where JAX shows each of a chip's TensorCores as its own device: the
        chip's ``tensorcores_per_chip`` (2); ``None`` everywhere else (one device is one chip)."""
        if self.chip is not None and self.chip.key in _DEVICE_PER_TENSORCORE:
            return int(self.chip.value("tensorcores_per_chip", 1))
        return None

    @property
    def per_device_fraction(self) -> float:
        """The share of the chip's spec sheet that one JAX device has: 1 / TensorCores per chip on
        TPU v2 and v3 (a JAX device there is one TensorCore with its own half of the HBM), else 1.

        :func:`accelbook.measure.ceilings` scales the spec-sheet peak and bandwidth by it, and
        :attr:`memory_bytes` the capacity. Taught in: "TPUs and systolic arrays".
        """
        cores = self.tensorcores_per_device
        return 1.0 if cores is None else 1.0 / cores

    @property
    def memory_bytes(self) -> float | None:
        """Memory of one JAX device in bytes (the chip's capacity × :attr:`per_device_fraction`);
        ``None`` when no spec sheet gives it (a CPU, an unknown device)."""
        memory = self.chip.memory_bytes if self.chip is not None else None
        return None if memory is None else memory * self.per_device_fraction


# TPU generations on which JAX exposes every TensorCore as a separate device. From TPU v4 on, the
# two TensorCores of a chip act as one "megacore" device (Google Cloud TPU documentation, "TPU
# system architecture"; the notes of these chips in data/chips.toml say the same).
_DEVICE_PER_TENSORCORE = frozenset({"tpu-v2", "tpu-v3"})


_BACKENDS = ("cpu", "gpu", "tpu")


def describe(backend: str, device_kind: str, device_count: int = 1) -> DeviceInfo:
    """Build a :class:`DeviceInfo` from the strings JAX reports (testable with made-up strings).

    ``backend`` is ``jax.default_backend()`` ('cpu', 'gpu', 'tpu'; 'cuda' and 'rocm' are read as
    'gpu'). An unknown ``device_kind`` gives ``chip=None`` and a warning, never an error.
    """
    check_text("backend", backend)
    backend = {"cuda": "gpu", "rocm": "gpu"}.get(backend, backend)
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r} is not known; allowed: {', '.join(_BACKENDS)}")
    check_text("device_kind", device_kind)
    device_count = positive_int("device_count", device_count)
    chip = specs.chip_for_device_kind(device_kind)
    if chip is not None and chip.kind != backend:
        raise ValueError(f"device_kind={device_kind!r} is a {chip.kind.upper()} ({chip.name}), "
                         f"not a device of backend={backend!r}")
    return DeviceInfo(backend, device_kind, device_count, chip)


@functools.lru_cache(maxsize=1)
def current() -> DeviceInfo:
    """Describe JAX's default device (cached: JAX's backend cannot change in a process)."""
    import jax

    devices = jax.devices()
    return describe(jax.default_backend(), devices[0].device_kind, len(devices))


def matmul_peak_dtype(info: DeviceInfo, dtype: str, precision: str = "default") -> str | None:
    """Which spec-sheet peak a JAX matmul of ``dtype`` inputs runs at on the device ``info``.

    JAX's documented precision rules (``jax.lax.Precision``): with 'default' precision, float32
    matmuls use TensorFloat-32 on NVIDIA GPUs that have it (Ampere and newer) and one bfloat16
    pass on TPUs. 'highest' asks for true fp32: the GPU's fp32 (SIMT) peak; a TPU emulates it
    with several bf16 passes and has no spec-sheet peak for it (returns None). The rule is
    :func:`accelbook.models.matmul.peak_dtype`, applied to the device's chip.
    """
    instance("info", info, DeviceInfo)
    return peak_dtype(info.chip, dtype, precision)


# --- The CPU: what /proc/cpuinfo says, and the peak it implies ------------------------------------


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """The host CPU as the operating system describes it, and the FMA units it does not describe.

    ``peak_flops(dtype)`` = cores × FMA units × lanes per FMA × 2 × clock: every FMA unit of every
    core finishing one fused multiply-add (2 FLOP) per lane per cycle. The FMA count comes from a
    sourced table per microarchitecture (``data/cpu.toml``); ``fma_assumed`` is True when this CPU
    is not in it. Taught in: "Introduction" (what is this machine?).
    """

    model_name: str  # as lscpu shows it, e.g. 'AMD EPYC 7B13' or 'Neoverse-N1'
    vendor: str  # x86 vendor_id ('GenuineIntel', 'AuthenticAMD'), Arm implementer ('0x41'), or ''
    microarchitecture: str | None  # from data/cpu.toml; None when the table does not know the CPU
    logical_cpus: int  # CPUs this process may run on (its affinity mask)
    total_cpus: int  # logical CPUs the operating system lists
    physical_cores: int | None  # of those, distinct physical cores (SMT siblings once); None if unknown
    cpu_quota: float | None  # a container's CPU limit (cgroup cpu.max), in CPUs; None when unlimited
    simd: str  # widest vector instructions: 'AVX-512', 'AVX2', 'AVX', 'SSE', 'SVE', 'NEON' or 'unknown'
    vector_bits: int | None  # register width of those instructions
    fma_units: int  # FMA units per core
    fma_bits: int | None  # datapath width of one FMA unit (can be narrower than vector_bits)
    fma_assumed: bool  # True: the table does not know this CPU, fma_units/fma_bits are a default
    fma_source: specs.Source | None
    fma_note: str
    clock_hz: float | None
    clock_source: str  # where clock_hz comes from, and what it means
    flags: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)

    @property
    def clock_is_max(self) -> bool:
        """True when :attr:`clock_hz` is the maximum (boost) clock from cpufreq, so no core runs
        faster; False when it is what /proc/cpuinfo reports (often the nominal clock)."""
        return self.clock_source.startswith("the maximum clock")

    @property
    def fp32_lanes(self) -> int | None:
        """fp32 values in one vector register (``vector_bits / 32``)."""
        return None if self.vector_bits is None else self.vector_bits // 32

    @property
    def cores(self) -> int:
        """Cores this process can use: physical cores in its affinity mask (logical CPUs when the
        topology is unknown), capped by a container's CPU quota (rounded down, at least 1)."""
        cores = self.physical_cores or self.logical_cpus
        if self.cpu_quota is not None:
            cores = min(cores, max(1, math.floor(self.cpu_quota)))
        return cores

    @property
    def bf16_instructions(self) -> tuple[str, ...]:
        """The CPU's bf16 arithmetic instructions (x86 AVX512_BF16 and AMX-BF16, Arm BF16)."""
        return tuple(f for f in ("avx512_bf16", "amx_bf16", "bf16") if f in self.flags)

    @property
    def fp16_instructions(self) -> tuple[str, ...]:
        """fp16 arithmetic instructions (x86 AVX512-FP16, AMX-FP16; Arm half-precision SIMD).
        F16C is not one: it only converts."""
        return tuple(f for f in ("avx512_fp16", "amx_fp16", "asimdhp") if f in self.flags)

    def flop_per_cycle(self, dtype: str = "fp32") -> float | None:
        """Peak FLOP per cycle of ONE core: FMA units × (fma_bits / value bits) × 2.

        fp64 has half the lanes of fp32. bf16 and fp16 without arithmetic instructions for them
        are computed in fp32 (XLA converts), so their ceiling is the fp32 rate; a CPU that has
        them (AMX, AVX512_BF16, AVX512-FP16, Arm BF16 or FP16) gets ``None``: those units' rates
        are not in the table. ``None`` also when the FMA width is unknown.
        """
        _check_cpu_dtype(dtype)
        if self.fma_bits is None:
            return None
        if dtype == "bf16" and self.bf16_instructions or dtype == "fp16" and self.fp16_instructions:
            return None
        bits = 64 if dtype == "fp64" else 32
        return self.fma_units * (self.fma_bits // bits) * 2.0

    def peak_flops(self, dtype: str = "fp32", cores: int | None = None) -> float | None:
        """Computed peak FLOP/s: ``cores`` (default :attr:`cores`) × :meth:`flop_per_cycle` ×
        clock. ``None`` when the clock or the per-cycle rate is unknown.

        The clock is :attr:`clock_hz`, whose meaning :attr:`clock_source` states: under a
        hypervisor it is usually the nominal clock, and cores that boost above it can measure
        faster than this "peak".
        """
        cores = self.cores if cores is None else positive_int("cores", cores)
        per_cycle = self.flop_per_cycle(dtype)
        if per_cycle is None or self.clock_hz is None:
            return None
        return cores * per_cycle * self.clock_hz

    @property
    def summary(self) -> str:
        """One line: model, cores, vector instructions, FMA units and clock."""
        cores = f"{self.cores} core{'s' if self.cores != 1 else ''}"
        simd = self.simd if self.vector_bits is None else f"{self.simd} ({self.fp32_lanes} fp32 lanes)"
        fma = f"{self.fma_units} FMA unit{'s' if self.fma_units != 1 else ''}"
        if self.fma_bits is not None:
            fma += f" of {self.fma_bits} bits"
        fma += " (assumed)" if self.fma_assumed else ""
        clock = "clock unknown" if self.clock_hz is None else f"{self.clock_hz / 1e9:.2f} GHz"
        arch = f" ({self.microarchitecture})" if self.microarchitecture and not self.fma_assumed else ""
        return f"{self.model_name}{arch}: {cores}, {simd}, {fma} per core, {clock}"


_CPU_DTYPES = ("fp64", "fp32", "bf16", "fp16")


def _check_cpu_dtype(dtype: str) -> None:
    if dtype not in _CPU_DTYPES:
        raise ValueError(f"dtype={dtype!r} has no computed CPU peak; allowed: {', '.join(_CPU_DTYPES)}")


@functools.lru_cache(maxsize=1)
def _core_table() -> dict:
    from accelbook.specs import tomllib  # the same TOML reader as the spec database

    text = importlib.resources.files("accelbook").joinpath("data/cpu.toml").read_text("utf-8")
    data = tomllib.loads(text)
    sources = specs.parse_sources(data["sources"])
    for core in data["cores"]:
        if core["source"] not in sources:
            raise ValueError(f"data/cpu.toml: {core['microarchitecture']!r} cites unknown source "
                             f"{core['source']!r}")
    return {"sources": sources, "cores": data["cores"], "default": data["default"]}


def _blocks(text: str) -> list[dict[str, str]]:
    blocks, block = [], {}
    for line in text.splitlines():
        if not line.strip():
            if block:
                blocks.append(block)
            block = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            block[key.strip().lower()] = value.strip()
    if block:
        blocks.append(block)
    return blocks


def _int(value: str | None, base: int = 10) -> int | None:
    try:
        return int(value, base) if value is not None else None
    except ValueError:
        return None


_X86_SIMD = (("avx512f", "AVX-512", 512), ("avx2", "AVX2", 256), ("avx", "AVX", 256), ("sse2", "SSE", 128))


def _simd(flags: frozenset[str], sve_vector_bits: int | None, machine: str) -> tuple[str, int | None]:
    for flag, name, bits in _X86_SIMD:
        if flag in flags:
            return name, bits
    if "sve" in flags:
        return "SVE", sve_vector_bits or 128  # 128 bits is the smallest SVE vector
    if "asimd" in flags or machine in ("arm64", "aarch64"):
        return "NEON", 128
    return "unknown", None


def _match(core: dict, vendor: str, family: int | None, model: int | None, part: str | None,
           flags: frozenset[str], name: str) -> bool:
    if core["vendor"].lower() != vendor.lower():
        return False
    if "family" in core and core["family"] != family:
        return False
    if "models" in core and (model is None or not core["models"][0] <= model <= core["models"][1]):
        return False
    if "parts" in core and (part is None or part.lower() not in [p.lower() for p in core["parts"]]):
        return False
    if not all(f in flags for f in core.get("flags_all", ())):
        return False
    if any(f in flags for f in core.get("flags_none", ())):
        return False
    return "name_regex" not in core or re.search(core["name_regex"], name) is not None


def parse_cpuinfo(text: str, *, affinity=None, max_freq_khz: float | None = None,
                  cpu_quota: float | None = None, sve_vector_bits: int | None = None,
                  fallback_name: str = "", machine: str = "") -> CpuInfo:
    """Describe a CPU from the text of ``/proc/cpuinfo`` (pure: fixture strings work).

    ``affinity``: the CPU numbers this process may use (``os.sched_getaffinity(0)``; default:
    every processor in ``text``). ``max_freq_khz``: cpufreq's ``cpuinfo_max_freq`` when the
    system has it; otherwise the largest "cpu MHz" in ``text`` is the clock. ``cpu_quota``: a
    container's CPU limit in CPUs. ``sve_vector_bits``: the SVE vector length, which cpuinfo does
    not state. ``fallback_name``/``machine``: what :mod:`platform` says, for systems without
    ``/proc/cpuinfo``. The FMA units come from ``data/cpu.toml`` by vendor, family/model or part
    number and flags; an unknown CPU gets the table's default and ``fma_assumed=True``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text={show(text)} must be the text of /proc/cpuinfo (a str)")
    if max_freq_khz is not None:
        max_freq_khz = real("max_freq_khz", max_freq_khz, positive=True)
    if cpu_quota is not None:
        cpu_quota = real("cpu_quota", cpu_quota, positive=True)
    if sve_vector_bits is not None:
        sve_vector_bits = positive_int("sve_vector_bits", sve_vector_bits)
    check_text("fallback_name", fallback_name)
    check_text("machine", machine)
    blocks = [b for b in _blocks(text) if _int(b.get("processor")) is not None]
    if affinity is not None:
        affinity = {nonneg_int("affinity item", a) for a in affinity}
        if not affinity:
            raise ValueError("affinity=set() must name at least one CPU number")
        usable = [b for b in blocks if _int(b["processor"]) in affinity] or blocks
        logical = len(affinity)
    else:
        usable = blocks
        logical = max(1, len(blocks))
    first = usable[0] if usable else {}
    # Arm kernels print "CPU part" etc. per processor; some put the model in a trailing block.
    extra = {k: v for b in _blocks(text) for k, v in b.items() if k not in first}
    info = {**extra, **first}
    flags = frozenset((info.get("flags") or info.get("features") or "").split())
    vendor = info.get("vendor_id") or info.get("cpu implementer") or ""
    family, model = _int(info.get("cpu family")), _int(info.get("model"))
    part = info.get("cpu part")
    name = info.get("model name") or info.get("hardware") or ""

    table = _core_table()
    core = next((c for c in table["cores"] if _match(c, vendor, family, model, part, flags, name)), None)
    simd, vector_bits = _simd(flags, sve_vector_bits, machine.lower())
    if core is not None:
        arch, units, fma_bits = core["microarchitecture"], core["fma_units"], core["fma_bits"]
        source, note, assumed = table["sources"][core["source"]], core["note"], False
    else:
        default = table["default"]
        arch, units, fma_bits = None, default["fma_units"], vector_bits
        source, note, assumed = None, default["note"], True
    if not name:
        name = arch if arch else (fallback_name or (f"CPU part {part}" if part else "unknown CPU"))

    ids = [(b.get("physical id", "0"), b.get("core id")) for b in usable]
    physical = len(set(ids)) if usable and all(c is not None for _, c in ids) else None
    if physical is not None and affinity is not None and len(usable) < logical:
        physical = None  # the affinity names CPUs that cpuinfo does not list: topology unknown

    mhz = [float(b["cpu mhz"]) for b in usable if _is_float(b.get("cpu mhz"))]
    if max_freq_khz:
        clock, clock_source = float(max_freq_khz) * 1e3, "the maximum clock cpufreq reports (cpuinfo_max_freq)"
    elif mhz:
        clock = max(mhz) * 1e6
        clock_source = ("the clock /proc/cpuinfo reports ('cpu MHz'); in a virtual machine this is "
                        "usually the nominal clock, and cores that boost run faster")
    else:
        clock, clock_source = None, "no clock reported by the operating system"
    return CpuInfo(name, vendor, arch, logical, max(len(blocks), logical), physical, cpu_quota, simd, vector_bits, units, fma_bits,
                   assumed, source, note, clock, clock_source, flags)


def _is_float(value: str | None) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except ValueError:
        return False


def parse_cpu_max(text: str) -> float | None:
    """CPUs a cgroup-v2 ``cpu.max`` allows ("200000 100000" → 2.0; "max 100000" → None)."""
    check_text("text", text)
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def host_cpu() -> CpuInfo:
    """The CPU running this process, from ``/proc/cpuinfo``, cpufreq, the affinity mask and the
    cgroup CPU limit (each optional: what is missing is reported as unknown)."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    quota = _read("/sys/fs/cgroup/cpu.max")
    sve = _read("/proc/sys/abi/sve_default_vector_length")
    return parse_cpuinfo(_read("/proc/cpuinfo") or "", affinity=affinity,
                         max_freq_khz=float(khz) if khz and _is_float(khz.strip()) else None,
                         cpu_quota=parse_cpu_max(quota) if quota else None,
                         sve_vector_bits=8 * int(sve) if sve and sve.strip().isdigit() else None,
                         fallback_name=platform.processor() or platform.machine(), machine=platform.machine())


def cpu_info(info: DeviceInfo | None = None) -> CpuInfo | None:
    """The CPU JAX computes on, or ``None`` when JAX's device (``info``, default this process's)
    is a GPU or TPU. See :class:`CpuInfo`. Taught in: "Introduction" (what is this machine?)."""
    info = current() if info is None else instance("info", info, DeviceInfo)
    return host_cpu() if info.backend == "cpu" else None


# --- An NVIDIA GPU's clocks and power, now ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GpuClocks:
    """One NVIDIA GPU's SM clock and power as ``nvidia-smi`` reports them at one moment.

    The spec sheet's peak assumes ``max_sm_clock_hz`` (boost); a power-capped card under a long
    matmul runs nearer ``sm_clock_hz``. ``None`` where nvidia-smi prints [N/A]. Taught in: "The
    same matmul on every device".
    """

    name: str
    sm_clock_hz: float | None
    max_sm_clock_hz: float | None
    power_draw_w: float | None
    power_limit_w: float | None

    @property
    def clock_fraction(self) -> float | None:
        """``sm_clock_hz / max_sm_clock_hz``: the share of the boost-clock peak available now."""
        if self.sm_clock_hz is None or not self.max_sm_clock_hz:
            return None
        return self.sm_clock_hz / self.max_sm_clock_hz


GPU_CLOCK_QUERY = "name,clocks.sm,clocks.max.sm,power.draw,power.limit"
"""The ``nvidia-smi --query-gpu`` fields :func:`parse_gpu_clocks` reads, in order."""


def parse_gpu_clocks(text: str) -> list[GpuClocks]:
    """Parse ``nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit
    --format=csv,noheader,nounits``: one :class:`GpuClocks` per line (MHz → Hz, W)."""
    if not isinstance(text, str):
        raise TypeError(f"text={show(text)} must be nvidia-smi's output (a str)")
    out = []
    for line in text.strip().splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 5:
            raise ValueError(f"text line {line!r} has {len(fields)} fields; expected 5 ({GPU_CLOCK_QUERY})")

        def number(v: str, scale: float = 1.0) -> float | None:
            return float(v) * scale if _is_float(v) else None

        out.append(GpuClocks(fields[0], number(fields[1], 1e6), number(fields[2], 1e6),
                             number(fields[3]), number(fields[4])))
    return out


def gpu_clocks(timeout: float = 5.0) -> GpuClocks | None:
    """The first NVIDIA GPU's clocks and power now, from ``nvidia-smi``; ``None`` when there is
    no nvidia-smi, it fails, or it takes longer than ``timeout`` seconds."""
    timeout = real("timeout", timeout, positive=True)
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, f"--query-gpu={GPU_CLOCK_QUERY}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=timeout, check=False)
        gpus = parse_gpu_clocks(proc.stdout) if proc.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return gpus[0] if gpus else None


__all__ = ["CpuInfo", "DeviceInfo", "GPU_CLOCK_QUERY", "GpuClocks", "cpu_info", "current", "describe",
           "gpu_clocks", "host_cpu", "matmul_peak_dtype", "parse_cpu_max", "parse_cpuinfo", "parse_gpu_clocks"]
