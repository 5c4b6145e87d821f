"""Choosing a chip: one described workload, evaluated on every chip of the spec database.

The book's own models answer four questions per chip: does the workload fit, on how many chips,
which limit binds, and how fast is it. Serving a decoder (one decode step of ``B`` sequences at
``c`` cached tokens, tensor-parallel over ``n`` devices) takes

    t = t0 + max(F / (n·P), Q / W) + 2·L·allreduce(B·d·b)          tokens/s = B / t

(:func:`accelbook.models.collectives.tp_decode_step`); ``n`` is the fewest power of two whose
memory budget (90 % of the device-visible memory, vLLM's default) holds the weights and the KV
cache (:func:`accelbook.models.collectives.devices_needed`). Training or fine-tuning ``T`` tokens
per step with ZeRO-3/FSDP over ``n`` devices takes

    F = (4 + 2·f)·N·T  (+ 2·N·T with recomputation)                 f = trainable fraction (1: training)
    t = t0 + max(F / (n·P), 2·allgather(N·b) + reducescatter(f·N·b))

with the weights, gradients and optimizer states sharded over the devices (``16·N / n`` bytes for
mixed-precision Adam, Rajbhandari et al. 2020) plus each device's activations. ``P`` is the dense
PEAK FLOP/s of the spec database, ``W`` its memory bandwidth; every estimate is made at the peak.
What a chip really reaches on its best matmul is a published measurement (``data/achieved.toml``,
:func:`achieved`); a :class:`Verdict` shows it and the step time it implies in separate fields,
never folded into the main numbers.

No prices: they drift and no datasheet sources them. To rank by cost, divide a verdict's
``tokens_per_s`` by your price per hour for its ``devices`` chips (tokens per dollar =
``3600 · tokens_per_s / (devices · price per chip-hour)``).

Units are SI: seconds, bytes, FLOP, FLOP/s, bytes/s, watts, joules. Pure Python and NumPy.
Taught in: "How to choose (without vibes)" (chapter 11).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import math
import sys
from typing import Any

from accelbook import checks, specs
from accelbook.models import collectives, decoder, kvcache, serving
from accelbook.models.decoder import DecoderConfig
from accelbook.specs import Source, parse_sources
from accelbook.units import fmt, to_si

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


MODES = ("serve", "train", "finetune")
"""What a :class:`Workload` does: serve (decode tokens), train (all weights from scratch) or
fine-tune (a fraction of the weights)."""

BINDINGS = ("compute", "memory bandwidth", "capacity", "interconnect", "overhead")
"""The limits a :class:`Verdict` can name as binding."""

ADAM_MIXED_BYTES_PER_PARAM = 2 + 2 + 12
"""Bytes of model state per trained parameter in mixed-precision Adam: a 16-bit weight (2) and
gradient (2), and fp32 master weight, momentum and variance (4 + 4 + 4 = 12), "16Ψ" in
Rajbhandari, Rasley, Ruwase & He 2020, "ZeRO: Memory Optimizations Toward Training Trillion
Parameter Models" (SC20, arXiv 1910.02054), section 3.1 (K = 12)."""

ACTIVATION_BYTES_PER_VALUE = 34
"""Bytes of saved activations per token, per layer and per unit of ``d_model`` without
recomputation, for 16-bit activations: the ``34·s·b·h`` term of Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models" (arXiv 2205.05198), eq. (1). Its
other term, ``5·a·s²·b`` (the attention scores), is left out because FlashAttention-style
kernels do not store them. With full recomputation only each layer's input is kept, ``2·s·b·h``
bytes per layer (section 5 of the same paper)."""

RECOMPUTE_BYTES_PER_VALUE = 2
"""Bytes per token, layer and unit of ``d_model`` kept with full activation recomputation (the
16-bit layer input; Korthikanti et al. 2022, section 5)."""

SERVE_MAX_DEVICES = 64
"""The most chips a serving plan may use (tensor parallelism past a node is rare)."""

TRAIN_MAX_DEVICES = 65536
"""The most chips a training plan may use."""

ASSUMED_NODE_DEVICES = 8
"""Devices assumed to share one scale-up domain (an 8-GPU node, as in DGX/HGX systems) when the
link data give no domain size."""


# ---------------------------------------------------------------------------------------------
# The measured table: achieved.toml
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Achieved:
    """One published measurement of achievable matmul throughput on ``chip`` in ``dtype``:
    ``value`` in FLOP/s (as printed: ``raw`` in ``unit``), ``fraction`` of the chip's dense peak,
    what was measured (``method``), the ``software`` and best ``shape`` the source names, its
    ``source`` and a ``note`` on how the row maps to the chip. Taught in: "How to choose"."""

    chip: str
    dtype: str
    value: float  # FLOP/s
    raw: float
    unit: str
    fraction: float  # of the dense peak
    method: str
    software: str
    shape: str
    source: Source
    note: str = ""


_ROW_KEYS = {"chip", "dtype", "value", "unit", "method", "software", "shape", "source", "note"}


def parse_achieved(data: dict) -> tuple[Achieved, ...]:
    """Validate a parsed achieved.toml (the TOML as a dict) and build its :class:`Achieved` rows.

    Checks: ``[sources]`` as :func:`accelbook.specs.parse_sources`; every ``[[measured]]`` row has
    chip, dtype, value, unit, method and source (software, shape and note optional); the chip is
    in the spec database and has a dense peak for the dtype; the unit converts to FLOP/s; the
    value is positive and does not exceed that dense peak (a larger value is a data error or a
    sparse figure); no chip and dtype appears twice. ``ValueError`` (``TypeError`` for a
    ``data`` that is not a dict) names the row and the field."""
    checks.instance("data", data, dict)
    sources = parse_sources(data.get("sources", {}))
    rows = data.get("measured", [])
    if not isinstance(rows, list):
        raise ValueError(f"data['measured']={checks.show(rows)} must be a list of tables")
    known = {c.key for c in specs.chips()}
    out, seen = [], set()
    for i, r in enumerate(rows):
        where = f"measured[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where}: expected a table, got {checks.show(r)}")
        missing = {"chip", "dtype", "value", "unit", "method", "source"} - set(r)
        unknown = set(r) - _ROW_KEYS
        if missing or unknown:
            raise ValueError(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        if r["chip"] not in known:
            raise ValueError(f"{where}.chip={checks.show(r['chip'])} is not a chip of chips.toml")
        if r["dtype"] not in specs.DTYPES:
            raise ValueError(f"{where}.dtype={checks.show(r['dtype'])} is not one of {', '.join(specs.DTYPES)}")
        if r["source"] not in sources:
            raise ValueError(f"{where}.source={checks.show(r['source'])} is not in [sources]")
        for key in ("method", "software", "shape", "note"):
            if key in r:
                checks.text(f"{where}.{key}", r[key], empty=False)
        try:
            value, unit = to_si(r["value"], r["unit"])
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if unit != "FLOP/s" or not value > 0:
            raise ValueError(f"{where}: value={checks.show(r['value'])} {r['unit']!r} must be a positive FLOP/s")
        chip = specs.get_chip(r["chip"])
        peak = chip.peak_flops.get(r["dtype"])
        if peak is None:
            raise ValueError(f"{where}: {r['chip']} has no dense {r['dtype']} peak in chips.toml")
        if value > peak:
            raise ValueError(f"{where}: value {r['value']} {r['unit']} exceeds {r['chip']}'s dense {r['dtype']} "
                             f"peak of {peak / 1e12:g} TFLOP/s (a sparse figure or a data error)")
        if (r["chip"], r["dtype"]) in seen:
            raise ValueError(f"{where}: a second row for {r['chip']} {r['dtype']}")
        seen.add((r["chip"], r["dtype"]))
        out.append(Achieved(r["chip"], r["dtype"], float(value), float(r["value"]), r["unit"], value / peak,
                            r["method"], r.get("software", ""), r.get("shape", ""), sources[r["source"]],
                            r.get("note", "")))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _table() -> tuple[Achieved, ...]:
    text = importlib.resources.files("accelbook").joinpath("data/achieved.toml").read_text("utf-8")
    return parse_achieved(tomllib.loads(text))


def _achieved_rows() -> tuple[Achieved, ...]:
    return _table()


def achieved_table() -> tuple[Achieved, ...]:
    """Every row of ``accelbook/data/achieved.toml`` (parsed once, checked by
    :func:`parse_achieved`). Taught in: "How to choose"."""
    return _achieved_rows()


def achieved(chip: str | specs.Chip, dtype: str = "bf16") -> Achieved | None:
    """The published achievable-matmul measurement of ``chip`` (a key, name or
    :class:`accelbook.specs.Chip`) in ``dtype``, or ``None`` if the table has none. ``KeyError``
    for an unknown chip, ``ValueError`` for an unknown dtype. Taught in: "How to choose"."""
    chip = specs.as_chip("chip", chip)
    dtype = checks.one_of("dtype", dtype, specs.DTYPES)
    return next((r for r in _achieved_rows() if r.chip == chip.key and r.dtype == dtype), None)


# ---------------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------------

def _model(value: Any) -> DecoderConfig:
    return decoder.as_model("model", value)


@dataclasses.dataclass(frozen=True)
class Workload:
    """A described workload: what runs, on which model, in which dtype, at what size.

    * ``mode``: "serve", "train" or "finetune" (:data:`MODES`).
    * ``model``: a key of models.toml or a :class:`accelbook.models.decoder.DecoderConfig`
      (stored as the config).
    * ``dtype``: the weights' and the matmuls' dtype (:data:`accelbook.specs.DTYPES`; default
      "bf16"); ``kv_dtype``: the KV cache's (:data:`accelbook.models.kvcache.STORAGE_DTYPES`).
    * serving: ``batch`` sequences decoding together, ``context`` tokens cached per sequence,
      ``tpot_target`` the time per output token to meet (seconds, or None).
    * training and fine-tuning: ``tokens_per_step`` (global, all devices), ``devices`` (None: the
      fewest power of two that fits), ``optimizer_bytes`` of model state per trained parameter
      (default :data:`ADAM_MIXED_BYTES_PER_PARAM`, 16), ``trainable_fraction`` of the parameters
      trained (1.0: all; LoRA trains about 0.001 to 0.01; must be 1.0 for "train"), ``recompute``
      (full activation recomputation: keep only layer inputs, recompute the forward pass), and
      ``micro_tokens`` (tokens a device processes at once with gradient accumulation; None: its
      whole share of the step).

    Fields of the other mode keep their defaults (``ValueError`` otherwise). ``ValueError``
    names a bad field and shows its value; ``KeyError``/``TypeError`` for an unknown model.
    Taught in: "How to choose".
    """

    mode: str
    model: Any
    dtype: str = "bf16"
    kv_dtype: str = "bf16"
    batch: int = 1
    context: int = 4096
    tpot_target: float | None = None
    tokens_per_step: int | None = None
    devices: int | None = None
    optimizer_bytes: float = ADAM_MIXED_BYTES_PER_PARAM
    trainable_fraction: float = 1.0
    recompute: bool = True
    micro_tokens: int | None = None

    def __post_init__(self):
        checks.one_of("mode", self.mode, MODES)
        object.__setattr__(self, "model", _model(self.model))
        checks.one_of("dtype", self.dtype, specs.DTYPES)
        checks.one_of("kv_dtype", self.kv_dtype, kvcache.STORAGE_DTYPES)
        object.__setattr__(self, "batch", checks.positive_int("batch", self.batch, maximum=2 ** 20))
        object.__setattr__(self, "context", checks.positive_int("context", self.context, maximum=2 ** 24))
        if self.tpot_target is not None:
            object.__setattr__(self, "tpot_target", checks.real("tpot_target", self.tpot_target, positive=True))
        if self.tokens_per_step is not None:
            object.__setattr__(self, "tokens_per_step",
                               checks.positive_int("tokens_per_step", self.tokens_per_step, maximum=2 ** 40))
        if self.devices is not None:
            object.__setattr__(self, "devices", checks.positive_int("devices", self.devices,
                                                                    maximum=TRAIN_MAX_DEVICES))
        object.__setattr__(self, "optimizer_bytes",
                           checks.real("optimizer_bytes", self.optimizer_bytes, positive=True, maximum=1024))
        object.__setattr__(self, "trainable_fraction",
                           checks.real("trainable_fraction", self.trainable_fraction, positive=True, maximum=1.0))
        object.__setattr__(self, "recompute", checks.boolean("recompute", self.recompute))
        if self.micro_tokens is not None:
            object.__setattr__(self, "micro_tokens",
                               checks.positive_int("micro_tokens", self.micro_tokens, maximum=2 ** 40))
        if self.mode == "serve":
            for name in ("tokens_per_step", "devices", "micro_tokens"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}={checks.show(getattr(self, name))} is for training; "
                                     "allowed for mode='serve': None")
            if self.trainable_fraction != 1.0:
                raise ValueError(f"trainable_fraction={self.trainable_fraction!r} is for fine-tuning; "
                                 "allowed for mode='serve': 1.0")
        else:
            if self.tokens_per_step is None:
                raise ValueError(f"tokens_per_step=None: mode={self.mode!r} needs the tokens of one step "
                                 "(a positive integer)")
            if self.tpot_target is not None:
                raise ValueError(f"tpot_target={self.tpot_target!r} is for serving; allowed for "
                                 f"mode={self.mode!r}: None")
            if self.mode == "train" and self.trainable_fraction != 1.0:
                raise ValueError(f"trainable_fraction={self.trainable_fraction!r}: mode='train' trains every "
                                 "parameter; allowed: 1.0 (use mode='finetune' for a fraction)")


# ---------------------------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the book's models say about one workload on one chip (SI units).

    ``fits``: the workload fits on ``devices`` chips (``None`` devices and times when it fits on
    none up to the cap: ``binding`` is then "capacity"). ``binding``: the largest term of the
    step (:data:`BINDINGS`). ``step_time`` (seconds per decode step = per output token of each
    sequence, or per training step), ``tokens_per_s`` (all devices; generated tokens for serving,
    trained tokens for training), ``tokens_per_s_per_chip``, ``tokens_per_joule`` (at every
    device drawing its full TDP; ``None`` without a sourced TDP). ``compute_time``,
    ``memory_time`` (serving only; training is taken as compute-bound), ``comm_time`` (all
    collectives of a step), ``comm_exposed`` (the part not hidden behind compute) and
    ``comm_share`` (``comm_exposed / step_time``), ``overhead_time`` (t0). ``peak_flops`` (dense
    peak used, FLOP/s), ``memory_bandwidth`` (bytes/s), ``memory_per_device`` (bytes needed on
    each device) and ``memory_budget`` (bytes a device offers), the ``link`` used and its
    ``alpha`` (s per message) and ``beta`` (s per byte, one way).

    The measured table (:func:`achieved`), never applied to the fields above:
    ``achieved_flops`` (FLOP/s), ``achieved_fraction`` of the peak, ``step_time_at_achieved`` and
    ``tokens_per_s_per_chip_at_achieved`` (the same model with the peak replaced by the measured
    rate), ``achieved_source`` (the source's title); all ``None`` without a row for this chip and
    dtype. ``meets_target``: ``step_time <= tpot_target`` when serving with a target, else
    ``None``. ``notes``: what was assumed or is missing.
    """

    chip: str
    name: str
    mode: str
    fits: bool
    devices: int | None
    binding: str
    step_time: float | None
    tokens_per_s: float | None
    tokens_per_s_per_chip: float | None
    tokens_per_joule: float | None
    compute_time: float | None
    memory_time: float | None
    comm_time: float | None
    comm_exposed: float | None
    comm_share: float | None
    overhead_time: float
    peak_flops: float
    memory_bandwidth: float
    memory_per_device: float | None
    memory_budget: float
    link: str | None
    alpha: float
    beta: float
    achieved_flops: float | None
    achieved_fraction: float | None
    step_time_at_achieved: float | None
    tokens_per_s_per_chip_at_achieved: float | None
    achieved_source: str | None
    meets_target: bool | None
    notes: tuple[str, ...]

    @property
    def flop_utilization(self) -> float | None:
        """``compute_time / step_time``: the share of the step the peak FLOP/s would account for
        (model FLOP utilization at the peak; None when the workload does not fit). Near 1 the
        chip's arithmetic is the limit; near 0 it waits on memory, links or overhead."""
        if not self.fits or self.compute_time is None or not self.step_time:
            return None
        return self.compute_time / self.step_time


# ---------------------------------------------------------------------------------------------
# Links: which one a plan of n devices uses, its alpha and its one-way beta
# ---------------------------------------------------------------------------------------------

def _one_way(link: collectives.Link) -> float | None:
    """Bytes/s one device can send one way over ``link``: its device bandwidth, else one port's
    (a NIC or PCIe link per device), else the node's shared among its devices."""
    for quantity in ("device_bandwidth", "link_bandwidth"):
        if quantity in link.values:
            return link.bandwidth(quantity)
    if "node_bandwidth" in link.values and "devices_per_node" in link.values:
        return link.bandwidth("node_bandwidth") / link.value("devices_per_node").value
    return None


def _domain(links: collectives.ChipLinks, notes: list[str]) -> int:
    for link in (links.scale_up, links.scale_up_switch):
        if link is not None and "domain_size" in link.values:
            return int(link.value("domain_size").value)
    for link in (links.scale_up, links.scale_out):
        if link is not None and "devices_per_node" in link.values:
            return int(link.value("devices_per_node").value)
    notes.append(f"scale-up domain assumed to be {ASSUMED_NODE_DEVICES} devices (one node); the link data give none")
    return ASSUMED_NODE_DEVICES


def _alpha(link: collectives.Link, notes: list[str]) -> float:
    found = collectives.measurements(link.key, "latency")
    if not found:
        notes.append(f"no measured latency for {link.name}: communication is a bandwidth-only lower bound (alpha = 0)")
        return 0.0
    m = found[0]
    if m.op in collectives.OPS and m.ranks and m.ranks > 1:
        messages = collectives.cost_terms(m.op, collectives.ALGORITHMS[m.op][0], m.ranks).messages
        notes.append(f"alpha = the measured {fmt(m.si, 's')} {m.op} of {m.n_bytes or 'a few'} bytes on {m.ranks} ranks "
                     f"({m.system}) over its {messages:g} ring messages")
        return m.si / messages
    notes.append(f"alpha = the measured latency {fmt(m.si, 's')} ({m.system})")
    return m.si


def _link(chip: specs.Chip, devices: int, notes: list[str]) -> tuple[str | None, float, float]:
    """(link name, alpha s, beta s/byte) of a ring over ``devices`` chips; (None, 0, 0) for one."""
    if devices == 1:
        return None, 0.0, 0.0
    links = collectives.chip_links(chip)
    domain = _domain(links, notes)
    if devices <= domain:
        link = links.scale_up
        if link is None and links.host is not None:
            link = links.host
            notes.append(f"no scale-up link: devices talk over {link.name}")
    else:
        link = links.scale_out
        if link is not None:
            notes.append(f"{devices} devices exceed the scale-up domain of {domain}: the ring runs over "
                         f"{link.name}, whose per-device rate bounds it")
        else:
            link = links.scale_up or links.host
            if link is not None:
                notes.append(f"{devices} devices exceed the scale-up domain of {domain} and the database names no "
                             f"scale-out network: the ring is modelled on {link.name} (optimistic)")
    if link is None:
        notes.append("no link in the database for this chip: communication left out (comm time 0)")
        return None, 0.0, 0.0
    one_way = _one_way(link)
    if one_way is None:
        notes.append(f"{link.name} has no per-device bandwidth in links.toml: communication left out (comm time 0)")
        return link.name, 0.0, 0.0
    if link.family == "tpu-ici":
        notes.append(f"one ring over all of the chip's {link.name} links (a torus may do better)")
    return link.name, _alpha(link, notes), 1.0 / one_way


# ---------------------------------------------------------------------------------------------
# Evaluate
# ---------------------------------------------------------------------------------------------

def _ineligible(chip: specs.Chip, workload: Workload) -> str | None:
    if workload.dtype not in chip.peak_flops:
        return f"no dense {workload.dtype} peak (it has: {', '.join(chip.peak_flops) or 'none'})"
    if not chip.memory_bandwidth:
        return "no memory bandwidth in the spec database"
    if not chip.memory_bytes and chip.value("memory_capacity_visible") is None:
        return "no memory capacity in the spec database"
    return None


def _workload(value: Any) -> Workload:
    return checks.instance("workload", value, Workload)


def _t0(value: Any) -> float:
    return checks.real("t0", value, nonnegative=True, maximum=3600.0)


def _binding(terms: dict[str, float]) -> str:
    return max(terms, key=lambda k: (terms[k], -BINDINGS.index(k)))


def evaluate(workload: Workload, chip: str | specs.Chip, t0: float = 0.0) -> Verdict:
    """The :class:`Verdict` of ``workload`` on ``chip`` (a key, name or
    :class:`accelbook.specs.Chip`), with ``t0`` seconds of fixed overhead per step (launches,
    dispatch, Python; default 0, the chapter "Overheads" measures it).

    Serving: devices from :func:`accelbook.models.collectives.devices_needed` on 90 % of the
    device-visible memory (:data:`accelbook.models.kvcache.VLLM_GPU_MEMORY_UTILIZATION`), at most
    :data:`SERVE_MAX_DEVICES`; the step from :func:`accelbook.models.collectives.tp_decode_step`
    (ring all-reduces, not overlapped) plus ``t0``. The link is the chip's scale-up link within
    its domain (the PCIe host link if it has none) and its scale-out network beyond; ``beta`` is
    one over the per-device one-way rate; ``alpha`` comes from links.toml's measured small
    all-reduce (divided by the ring's message count on the measured ranks), else 0 with a note.
    Binding: the largest of compute, memory, all-reduce and ``t0``.

    Training and fine-tuning (ZeRO-3/FSDP): FLOP ``(4 + 2f)·N_a·T`` (forward 2, backward to the
    activations 2, weight gradients ``2f``; plus ``2·N_a·T`` to recompute the forward with
    ``recompute``; ``N_a`` the active parameters; attention FLOP left out); memory per device
    ``N·((1 − f)·b + f·optimizer_bytes) / n`` plus activations (``micro_tokens`` or ``T/n``
    tokens × ``n_layers`` × ``d_model`` × 2 bytes with recomputation, × 34 bytes without, scaled
    by the dtype's bytes / 2; :data:`ACTIVATION_BYTES_PER_VALUE`); devices: the given count, or
    the fewest power of two up to :data:`TRAIN_MAX_DEVICES` that fits the same 90 % budget.
    Communication per micro-batch: two ring all-gathers of the weights (``N·b`` bytes; forward
    and backward) and one ring reduce-scatter of the trained gradients (``f·N·b``), as FSDP does
    for every micro-batch of gradient accumulation (``ceil(T / n / micro_tokens)`` of them per
    step; one without ``micro_tokens``), over the scale-up link within its domain and the
    scale-out network beyond. Overlap: FSDP prefetches, so the
    step is ``t0 + max(compute, communication)`` (a perfect-overlap lower bound); binding: the
    largest of compute, communication and ``t0``. The memory-bandwidth term and the optimizer
    update are left out (large-batch matmuls run above the ridge point).

    ``ValueError`` for a chip without the dtype's peak, a memory bandwidth or a capacity (see
    :func:`skipped`) or a bad ``t0``; ``KeyError`` for an unknown chip; ``TypeError`` for a
    ``workload`` that is not a :class:`Workload`. Taught in: "How to choose".
    """
    workload = _workload(workload)
    chip = specs.as_chip("chip", chip)
    t0 = _t0(t0)
    reason = _ineligible(chip, workload)
    if reason is not None:
        raise ValueError(f"chip={chip.key!r} cannot run this workload: {reason}")
    if workload.mode == "serve":
        return _serve(workload, chip, t0)
    return _train(workload, chip, t0)


def _common(workload: Workload, chip: specs.Chip, notes: list[str]) -> tuple[float, float, float, Achieved | None]:
    memory = kvcache.device_memory(chip)
    if not memory.visible:
        notes.append("marketed memory capacity used (no device-visible figure sourced)")
    budget = memory.capacity * kvcache.VLLM_GPU_MEMORY_UTILIZATION
    row = achieved(chip, workload.dtype)
    if row is None:
        notes.append(f"no measured achievable {workload.dtype} matmul rate for {chip.name}: achieved fields are None")
    return float(chip.peak_flops[workload.dtype]), float(chip.memory_bandwidth), budget, row


def _per_joule(chip: specs.Chip, tokens_per_s_per_chip: float | None, notes: list[str]) -> float | None:
    tdp = chip.value("tdp")
    if tdp is None:
        notes.append(f"no sourced TDP for {chip.name}: tokens per joule is None")
        return None
    if tokens_per_s_per_chip is None:
        return None
    return tokens_per_s_per_chip / tdp


def _unfit(workload, chip, peak, bw, budget, row, t0, notes, reason) -> Verdict:
    notes.append(reason)
    if chip.value("tdp") is None:
        notes.append(f"no sourced TDP for {chip.name}: tokens per joule is None")
    return Verdict(chip.key, chip.name, workload.mode, False, None, "capacity", None, None, None, None, None, None,
                   None, None, None, t0, peak, bw, None, budget, None, 0.0, 0.0,
                   row.value if row else None, row.fraction if row else None, None, None,
                   row.source.title if row else None, None, tuple(notes))


def _tp_step(workload: Workload, devices: int, batch: int, context: int, peak: float, bandwidth: float,
             alpha: float, beta: float) -> collectives.TPDecodeStep:
    """The serving plan's decode step (ring all-reduces), in the workload's weight and cache dtypes."""
    bpp = float(specs.itemsize(workload.dtype))
    return collectives.tp_decode_step(workload.model, devices, batch, context, peak, bandwidth, alpha, beta,
                                      bytes_per_param=bpp, bytes_per_value=bpp,
                                      kv_bytes_per_value=kvcache.DTYPE_BITS[workload.kv_dtype] / 8,
                                      algorithm="ring")


def _serve(workload: Workload, chip: specs.Chip, t0: float) -> Verdict:
    notes: list[str] = []
    cfg = workload.model
    peak, bw, budget, row = _common(workload, chip, notes)
    bpp = float(specs.itemsize(workload.dtype))
    kvb = kvcache.DTYPE_BITS[workload.kv_dtype] / 8
    try:
        devices = collectives.devices_needed(cfg, budget, workload.batch, workload.context, bpp, kvb,
                                             max_devices=SERVE_MAX_DEVICES)
    except ValueError:
        return _unfit(workload, chip, peak, bw, budget, row, t0, notes,
                      f"weights and KV cache fit on no power-of-two count up to {SERVE_MAX_DEVICES} that divides "
                      f"n_heads={cfg.n_heads}")
    link, alpha, beta = _link(chip, devices, notes)

    def step(rate: float) -> collectives.TPDecodeStep:
        return _tp_step(workload, devices, workload.batch, workload.context, rate, bw, alpha, beta)

    s = step(peak)
    held = kvcache.weight_params(cfg) * bpp / devices + s.kv_bytes_per_device
    time = t0 + s.step_time
    per_chip = workload.batch / time / devices
    binding = _binding({"compute": s.compute_time, "memory bandwidth": s.memory_time,
                        "interconnect": s.comm_time, "overhead": t0})
    at_time = at_rate = None
    if row is not None:
        at_time = t0 + step(row.value).step_time
        at_rate = workload.batch / at_time / devices
    meets = None if workload.tpot_target is None else bool(time <= workload.tpot_target)
    if workload.tpot_target is not None:
        notes.append("the target is checked against the mean step time: no queueing, no prefill interruptions "
                     "(a p99 needs the serving simulator of chapter 08)")
    per_joule = _per_joule(chip, per_chip, notes)
    return Verdict(chip.key, chip.name, "serve", True, devices, binding, time, workload.batch / time, per_chip,
                   per_joule, s.compute_time, s.memory_time, s.comm_time, s.comm_time, s.comm_time / time, t0,
                   peak, bw, held, budget, link, alpha, beta,
                   row.value if row else None, row.fraction if row else None, at_time, at_rate,
                   row.source.title if row else None, meets, tuple(notes))


def train_memory(workload: Workload, devices: int) -> float:
    """Bytes each of ``devices`` chips holds for a training or fine-tuning ``workload`` under
    ZeRO-3/FSDP: ``N·((1 − f)·b + f·optimizer_bytes) / devices`` of sharded model state (``N``
    parameters, ``b`` bytes per value of the dtype, ``f`` the trainable fraction) plus activations
    ``tokens · n_layers · d_model · a · b / 2`` with ``tokens = micro_tokens`` or ``T / devices``
    (the smaller) and ``a`` = :data:`RECOMPUTE_BYTES_PER_VALUE` (2) with recomputation or
    :data:`ACTIVATION_BYTES_PER_VALUE` (34) without. ``ValueError`` for a serving workload or a
    bad ``devices``; ``TypeError`` for a ``workload`` that is not a :class:`Workload`.
    Taught in: "How to choose"."""
    workload = _workload(workload)
    if workload.mode == "serve":
        raise ValueError("workload.mode='serve': train_memory is for mode 'train' or 'finetune'")
    devices = checks.positive_int("devices", devices, maximum=TRAIN_MAX_DEVICES)
    return _train_memory(workload, devices)


def _train_memory(workload: Workload, devices: int) -> float:
    cfg, f = workload.model, workload.trainable_fraction
    b = float(specs.itemsize(workload.dtype))
    state = kvcache.weight_params(cfg) * ((1.0 - f) * b + f * workload.optimizer_bytes) / devices
    tokens = workload.tokens_per_step / devices
    if workload.micro_tokens is not None:
        tokens = min(tokens, workload.micro_tokens)
    per_value = RECOMPUTE_BYTES_PER_VALUE if workload.recompute else ACTIVATION_BYTES_PER_VALUE
    return state + tokens * cfg.n_layers * cfg.d_model * per_value * b / 2


def train_flops(workload: Workload) -> float:
    """FLOP the chips execute in one step of a training or fine-tuning ``workload``:
    ``(4 + 2f)·N_a·T`` (forward ``2·N_a·T``, backward to the activations ``2·N_a·T``, weight
    gradients ``2f·N_a·T``; ``6·N_a·T`` for training) plus ``2·N_a·T`` with recomputation, where
    ``N_a`` is the parameters each token uses (:func:`accelbook.models.kvcache.active_params`) and
    ``T`` the tokens per step. Attention FLOP are left out. ``ValueError`` for a serving workload;
    ``TypeError`` for a ``workload`` that is not a :class:`Workload`. Taught in: "How to choose"."""
    workload = _workload(workload)
    if workload.mode == "serve":
        raise ValueError("workload.mode='serve': train_flops is for mode 'train' or 'finetune'")
    n = kvcache.active_params(workload.model)
    factor = 4.0 + 2.0 * workload.trainable_fraction + (2.0 if workload.recompute else 0.0)
    return factor * n * workload.tokens_per_step


def _train(workload: Workload, chip: specs.Chip, t0: float) -> Verdict:
    notes: list[str] = ["attention FLOP left out of the step's compute"]
    cfg = workload.model
    peak, bw, budget, row = _common(workload, chip, notes)
    if cfg.is_moe:
        notes.append("a mixture of experts: FLOP from the active parameters, memory from all; expert "
                     "parallelism not modelled")
    if workload.devices is not None:
        devices = workload.devices
        if _train_memory(workload, devices) > budget:
            return _unfit(workload, chip, peak, bw, budget, row, t0, notes,
                          f"{fmt(_train_memory(workload, devices), 'B')} per device on {devices} devices exceeds "
                          f"the {fmt(budget, 'B')} budget")
    else:
        devices = 1
        while devices <= TRAIN_MAX_DEVICES and _train_memory(workload, devices) > budget:
            devices *= 2
        if devices > TRAIN_MAX_DEVICES:
            return _unfit(workload, chip, peak, bw, budget, row, t0, notes,
                          f"model state and activations fit on no power-of-two count up to {TRAIN_MAX_DEVICES}")
    memory = _train_memory(workload, devices)
    link, alpha, beta = _link(chip, devices, notes)
    b = float(specs.itemsize(workload.dtype))
    n = kvcache.weight_params(cfg)
    if devices > 1:
        # FSDP gathers the weights and reduce-scatters the gradients for every micro-batch
        per_device = workload.tokens_per_step / devices
        micro = 1 if workload.micro_tokens is None else max(1, math.ceil(per_device / workload.micro_tokens))
        comm = micro * collectives.fsdp_comm_time(n * b, workload.trainable_fraction * n * b, devices, alpha, beta)
    else:
        comm = 0.0
    flops = train_flops(workload)
    compute = flops / devices / peak
    exposed = max(0.0, comm - compute)
    time = t0 + compute + exposed
    tokens = workload.tokens_per_step / time
    per_chip = tokens / devices
    binding = _binding({"compute": compute, "interconnect": comm, "overhead": t0})
    at_time = at_rate = None
    if row is not None:
        at_compute = flops / devices / row.value
        at_time = t0 + max(at_compute, comm)
        at_rate = workload.tokens_per_step / at_time / devices
    per_joule = _per_joule(chip, per_chip, notes)
    return Verdict(chip.key, chip.name, workload.mode, True, devices, binding, time, tokens, per_chip, per_joule,
                   compute, None, comm, exposed, exposed / time, t0, peak, bw, memory, budget, link, alpha, beta,
                   row.value if row else None, row.fraction if row else None, at_time, at_rate,
                   row.source.title if row else None, None, tuple(notes))


# ---------------------------------------------------------------------------------------------
# Every chip
# ---------------------------------------------------------------------------------------------

def _chip_list(chips: Any) -> list[specs.Chip]:
    if chips is None:
        return specs.chips()
    items = checks.sequence("chips", chips)
    return [specs.as_chip(f"chips[{i}]", c) for i, c in enumerate(items)]


def skipped(workload: Workload, chips: Any = None) -> dict[str, str]:
    """The chips :func:`rank` leaves out, by key, each with the reason: no dense peak for the
    workload's dtype, no memory bandwidth or no memory capacity in the spec database. ``chips``:
    keys, names or :class:`accelbook.specs.Chip` records (None: the whole database).
    ``TypeError``/``ValueError``/``KeyError`` name a bad argument. Taught in: "How to choose"."""
    workload = _workload(workload)
    out = {}
    for chip in _chip_list(chips):
        reason = _ineligible(chip, workload)
        if reason is not None:
            out[chip.key] = reason
    return out


def rank(workload: Workload, chips: Any = None, t0: float = 0.0) -> list[Verdict]:
    """:func:`evaluate` on every eligible chip of ``chips`` (keys, names or records; None: the
    whole database), each chip once, sorted: chips that fit first, then by
    ``tokens_per_s_per_chip`` (highest first), then by key. Chips without the dtype's peak, a
    memory bandwidth or a capacity are left out (:func:`skipped` lists them with the reason). To
    sort per watt instead: ``sorted(v, key=lambda v: -(v.tokens_per_joule or 0))``. ``t0`` as
    :func:`evaluate`. Taught in: "How to choose"."""
    workload = _workload(workload)
    t0 = _t0(t0)
    seen, verdicts = set(), []
    for chip in _chip_list(chips):
        if chip.key in seen or _ineligible(chip, workload) is not None:
            continue
        seen.add(chip.key)
        verdicts.append(evaluate(workload, chip, t0))
    return sorted(verdicts, key=lambda v: (not v.fits, -(v.tokens_per_s_per_chip or 0.0), v.chip))


# ---------------------------------------------------------------------------------------------
# Tail latency: the verdict's plan run through chapter 08's serving simulator
# ---------------------------------------------------------------------------------------------

class DecodeTimes:
    """The decode step of a serving :class:`Verdict`'s plan as ``T(b, c)`` seconds, for the
    serving simulator (:func:`accelbook.models.serving.simulate`).

    ``T(b, c) = t0 + max(compute(b, c), memory(b, c)) + comm(b)`` with the terms of
    :func:`accelbook.models.collectives.tp_decode_step` on the verdict's ``devices``, peak,
    bandwidth, ``alpha`` and ``beta``. For each batch ``b`` the compute and memory terms are
    straight lines in the context ``c`` (the attention's FLOP and the cache's bytes grow as
    ``b·c``, the rest does not depend on ``c``), so each ``b`` is evaluated once, at ``c`` = 1
    and 2, and the lines are reused for every ``c`` (a float: the simulator passes the batch's
    mean). ``ValueError`` names a bad ``b`` (1 to the workload's batch) or ``c`` (>= 0).
    Taught in: "How to choose" (chapter 11).
    """

    def __init__(self, workload: Workload, verdict: Verdict):
        self.workload, self.verdict = workload, verdict
        self._lines: dict[int, tuple[float, float, float, float, float]] = {}

    def terms(self, b: int) -> tuple[float, float, float, float, float]:
        """``(compute at c = 0, compute per token of c, memory at c = 0, memory per token of c,
        comm)`` in seconds for batch ``b``."""
        b = checks.positive_int("b", b, maximum=self.workload.batch)
        if b not in self._lines:
            w, v = self.workload, self.verdict
            s1, s2 = (_tp_step(w, v.devices, b, c, v.peak_flops, v.memory_bandwidth, v.alpha, v.beta)
                      for c in (1, 2))
            self._lines[b] = (2 * s1.compute_time - s2.compute_time, s2.compute_time - s1.compute_time,
                              2 * s1.memory_time - s2.memory_time, s2.memory_time - s1.memory_time, s1.comm_time)
        return self._lines[b]

    def __call__(self, b, c) -> float:
        # the simulator calls this once per step: a batch already priced and a plain finite c >= 0
        # skip the checks (tens of thousands of calls in a lightly loaded run)
        line = self._lines.get(b) if type(b) is int else None
        if line is None or not ((isinstance(c, float) or type(c) is int) and 0 <= c < math.inf):
            c = checks.real("c", c, nonnegative=True)
            line = self.terms(int(b) if isinstance(b, float) and b.is_integer() else b)
        f0, f1, m0, m1, comm = line
        return self.verdict.overhead_time + max(f0 + f1 * c, m0 + m1 * c) + comm


class PrefillTimes:
    """The prefill of ``tokens`` prompt tokens on a serving :class:`Verdict`'s plan, in seconds:
    :func:`accelbook.models.serving.prefill_step` with the peak and the bandwidth of all
    ``devices`` (tensor parallelism splits the FLOP and the weights evenly), plus its two ring
    all-reduces per layer of ``tokens · d_model`` values and ``t0``. ``ValueError`` names a bad
    ``tokens`` (>= 0). Taught in: "How to choose" (chapter 11)."""

    def __init__(self, workload: Workload, verdict: Verdict):
        self.workload, self.verdict = workload, verdict
        bpp = float(specs.itemsize(workload.dtype))
        self._bpp = bpp
        self._step = serving.prefill_step(workload.model, verdict.peak_flops * verdict.devices,
                                          verdict.memory_bandwidth * verdict.devices, bytes_per_value=bpp)

    def __call__(self, tokens) -> float:
        tokens = checks.real("tokens", tokens, nonnegative=True)
        v, cfg = self.verdict, self.workload.model
        comm = 0.0
        if v.devices > 1 and tokens > 0:
            comm = 2 * cfg.n_layers * collectives.collective_time("allreduce", "ring", tokens * cfg.d_model * self._bpp,
                                                                  v.devices, v.alpha, v.beta)
        return v.overhead_time + float(self._step.seconds(tokens, 0)) + comm


@dataclasses.dataclass(frozen=True)
class Tail:
    """What :func:`serve_tail` returns (seconds, requests/s, tokens/s): the ``chip`` and its
    ``devices``; the offered ``rate``; ``mean_step`` (the verdict's full-batch step, the mean
    estimate of :func:`evaluate`); ``tpot_p50``/``tpot_p99`` and ``ttft_p50``/``ttft_p99`` over
    the simulated requests; ``token_throughput`` (output tokens/s over the run) and
    ``utilization`` (busy fraction); ``mean_batch`` (sequences per decode step);
    ``meets_target``: ``tpot_p99 <= tpot_target`` (None without a target); ``requests``,
    ``prompt`` and ``output`` as simulated. Taught in: "How to choose" (chapter 11)."""

    chip: str
    name: str
    devices: int
    rate: float
    mean_step: float
    tpot_p50: float
    tpot_p99: float
    ttft_p50: float
    ttft_p99: float
    token_throughput: float
    utilization: float
    mean_batch: float
    meets_target: bool | None
    requests: int
    prompt: int
    output: int


def serve_tail(workload: Workload, chip: str | specs.Chip, rate: float, *, output: int = 256,
               prompt: int | None = None, requests: int = 400, seed: int = 0, t0: float = 0.0) -> Tail:
    """Run a serving workload's plan on ``chip`` through chapter 08's simulator and read its tail.

    :func:`evaluate` gives the plan (devices, link, alpha, beta); ``requests`` requests arrive as
    a Poisson process of ``rate`` requests/s (:func:`accelbook.models.serving.arrival_times`,
    ``seed``), each with ``prompt`` tokens (None: ``workload.context − output``, so a full batch
    holds the context the plan was sized for) and ``output`` generated tokens; the server batches
    continuously (iteration-level, as vLLM) up to ``workload.batch`` sequences; decode steps take
    :class:`DecodeTimes`, prefills :class:`PrefillTimes` (running sequences wait, no chunked
    prefill). The p99 time per output token is what a latency target is about; it exceeds the
    mean step when prefills interrupt decoding and queues build. ``ValueError`` names a bad
    argument, a workload that is not serving, ``prompt + output`` above ``workload.context``, or
    a chip on which the workload does not fit; ``KeyError`` for an unknown chip.
    Taught in: "How to choose" (chapter 11).
    """
    rate = checks.real("rate", rate, positive=True, maximum=1e9)
    requests = checks.positive_int("requests", requests, maximum=100_000)
    seed = checks.nonneg_int("seed", seed)
    workload, v, prompt, output = _serving_plan(workload, chip, output, prompt, t0)
    reqs = serving.make_requests(serving.arrival_times(requests, rate, seed=seed), prompt=prompt, output=output)
    run = serving.simulate(reqs, DecodeTimes(workload, v), policy="continuous", max_batch=workload.batch,
                           prefill_time=PrefillTimes(workload, v))
    s = run.summary((50, 99))
    meets = None if workload.tpot_target is None else bool(s["tpot_p99"] <= workload.tpot_target)
    return Tail(v.chip, v.name, v.devices, rate, v.step_time, s["tpot_p50"], s["tpot_p99"], s["ttft_p50"],
                s["ttft_p99"], s["token_throughput"], s["utilization"], s["mean_batch"], meets, requests, prompt,
                output)


def saturation_rate(workload: Workload, chip: str | specs.Chip, *, output: int = 256, prompt: int | None = None,
                    t0: float = 0.0) -> float:
    """The load (requests/s) above which a serving plan's queue grows without bound, in closed form.

    Every request needs one prefill of ``prompt`` tokens, ``P(prompt)`` (:class:`PrefillTimes`),
    which also gives its first token, then ``output − 1`` decode steps shared with up to ``B =
    workload.batch`` others; a decode step of ``b`` sequences at context ``c`` takes ``T(b, c)``
    (:class:`DecodeTimes`), and ``b / T(b, c)`` is largest at ``b = B`` (``T`` grows more slowly
    than ``b``: its weight reads and fixed cost are shared). The server is busy ``rate · (P(prompt)
    + (output − 1) · T(B, c) / B)`` of the time at best, with ``c = prompt + output / 2`` (the
    mean context a request decodes at), so a load at or above ``1 / (P(prompt) + (output − 1) ·
    T(B, c) / B)`` saturates it. Near it, the p99 targets of :func:`max_load` break first.
    Arguments as :func:`serve_tail`. Taught in: "How to choose" (chapter 11).
    """
    workload, v, prompt, output = _serving_plan(workload, chip, output, prompt, t0)
    decode, prefill = DecodeTimes(workload, v), PrefillTimes(workload, v)
    b = workload.batch
    return 1.0 / (prefill(prompt) + (output - 1) * decode(b, prompt + output / 2) / b)


def _serving_plan(workload, chip, output, prompt, t0):
    """(workload, verdict, prompt, output) for a serving simulation, checked (see serve_tail)."""
    workload = _workload(workload)
    if workload.mode != "serve":
        raise ValueError(f"workload.mode={workload.mode!r}: a serving simulation needs mode 'serve'")
    output = checks.positive_int("output", output, maximum=workload.context)
    if prompt is None:
        if output >= workload.context:
            raise ValueError(f"output={output} leaves no prompt within workload.context={workload.context} tokens; "
                             "pass a smaller output or a prompt")
        prompt = workload.context - output
    prompt = checks.positive_int("prompt", prompt)
    if prompt + output > workload.context:
        raise ValueError(f"prompt + output = {prompt + output} tokens exceeds workload.context={workload.context}, "
                         "the cache the plan was sized for")
    v = evaluate(workload, chip, _t0(t0))
    if not v.fits:
        raise ValueError(f"chip={v.chip!r}: the workload does not fit ({v.notes[-1]})")
    return workload, v, prompt, output


@dataclasses.dataclass(frozen=True)
class Load:
    """What :func:`max_load` returns: the ``chip`` and its ``devices``; ``rate``, the highest load
    found (requests/s) at which the p99 targets hold, or 0.0 when even the lightest load misses
    them; ``rate_per_device`` (``rate / devices``); ``tail``, the :class:`Tail` simulated at
    ``rate`` (None when ``rate`` is 0); ``missed``, the load just above (within ``1 + rel_tol``)
    that misses, or the saturation rate itself; ``limit``, what stops a higher load: ``"p99
    TPOT"`` or ``"p99 TTFT"`` (the target that load misses; both missed: TPOT is named) or
    ``"saturation"`` (every load simulated below it met the targets: in a longer run the queue
    near saturation would break the TTFT target first); ``saturation``,
    :func:`saturation_rate`; ``tpot_target`` and ``ttft_target`` (seconds; None when not
    checked); ``batch`` and ``output``, the plan's batch and the tokens generated per request;
    ``simulations`` run. Taught in: "How to choose" (chapter 11)."""

    chip: str
    name: str
    devices: int
    rate: float
    rate_per_device: float
    tail: Tail | None
    missed: float
    limit: str
    saturation: float
    tpot_target: float | None
    ttft_target: float | None
    batch: int
    output: int
    simulations: int


def max_load(workload: Workload, chip: str | specs.Chip, *, ttft_target: float | None = None, output: int = 256,
             prompt: int | None = None, requests: int = 1000, seed: int = 0, t0: float = 0.0,
             rel_tol: float = 0.05) -> Load:
    """The highest load (requests/s) that a serving plan carries with its p99 targets met.

    Targets: ``workload.tpot_target`` (p99 time per output token) and ``ttft_target`` (p99 time
    to the first token, seconds); at least one is needed. A load at or above
    :func:`saturation_rate` never counts as carried: its queue grows without bound in a long
    enough run, whatever a short one shows. Every load is simulated by :func:`serve_tail` with the
    same ``seed``, so the arrival times of one load are those of another, scaled (common random
    numbers): the tail then usually grows with the load, and the search assumes it does. First a
    lone request (``min(requests, 20)`` requests at ``saturation_rate · 1e-3``): if it misses a
    target, the answer is 0. Then a bracket, from ``saturation_rate / 2`` down by halves until a
    load meets the targets, halved on a log scale until its ends are within ``1 + rel_tol``.

    The answer belongs to one sample path of ``requests`` arrivals. Near a limit, p99s of a few
    hundred requests move with the seed by tens of percent, and a short run hides the queue that
    builds close to saturation: use a thousand requests or more, and compare seeds before relying
    on it. ``ValueError`` names a bad argument or a workload with no target; ``KeyError`` an
    unknown chip. Taught in: "How to choose" (chapter 11).
    """
    workload, v, prompt, output = _serving_plan(workload, chip, output, prompt, t0)
    if ttft_target is not None:
        ttft_target = checks.real("ttft_target", ttft_target, positive=True)
    if workload.tpot_target is None and ttft_target is None:
        raise ValueError("max_load needs a target: workload.tpot_target or ttft_target (seconds at the p99)")
    rel_tol = checks.real("rel_tol", rel_tol, positive=True, maximum=1.0)
    requests = checks.positive_int("requests", requests, maximum=100_000)
    seed = checks.nonneg_int("seed", seed)
    sat = saturation_rate(workload, v.chip, output=output, prompt=prompt, t0=t0)
    runs = 0

    def tail(rate: float, n: int = requests) -> tuple[Tail, str | None]:
        """The tail at ``rate`` and the target it misses (None: both met)."""
        nonlocal runs
        runs += 1
        t = serve_tail(workload, v.chip, rate, output=output, prompt=prompt, requests=n, seed=seed, t0=t0)
        if workload.tpot_target is not None and t.tpot_p99 > workload.tpot_target:
            return t, "p99 TPOT"
        if ttft_target is not None and t.ttft_p99 > ttft_target:
            return t, "p99 TTFT"
        return t, None

    def load(rate, at, missed, limit):
        return Load(v.chip, v.name, v.devices, rate, rate / v.devices, at, missed, limit, sat, workload.tpot_target,
                    ttft_target, workload.batch, output, runs)

    _, miss = tail(sat * 1e-3, min(requests, 20))  # a lone request: nothing queues, nothing interrupts
    if miss:
        return load(0.0, None, sat * 1e-3, miss)
    hi, limit = sat, "saturation"
    lo = sat / 2
    lo_tail, miss = tail(lo)
    while miss:
        hi, limit = lo, miss
        lo /= 2
        if lo < sat * 1e-3:
            return load(0.0, None, hi, limit)
        lo_tail, miss = tail(lo)
    while hi / lo > 1.0 + rel_tol:
        mid = math.sqrt(lo * hi)
        mid_tail, miss = tail(mid)
        if miss:
            hi, limit = mid, miss
        else:
            lo, lo_tail = mid, mid_tail
    return load(lo, lo_tail, hi, limit)


def tpot_bound_rate(batch: int, output: int, tpot_target: float) -> float:
    """The saturation rate (requests/s) below which a serving plan misses ``tpot_target`` at full
    load: ``batch / ((output − 1) · tpot_target)``.

    Near saturation the batch stays full and every request shares its ``output − 1`` decode steps
    with about ``batch`` prefills, one for each sequence that replaces another during its life.
    Its time per token is then ``T(B) + B·P / (output − 1)``, which with :func:`saturation_rate`'s
    ``1/s = P + (output − 1)·T(B)/B`` is ``B / ((output − 1) · s)``: over the target exactly when
    ``s`` is below this bound. It is an average over a request's life, so the p99 sits close to it.
    ``ValueError`` names a bad argument. Taught in: "How to choose" (chapter 11)."""
    batch = checks.positive_int("batch", batch)
    output = checks.integer("output", output, minimum=2)
    tpot_target = checks.real("tpot_target", tpot_target, positive=True)
    return batch / ((output - 1) * tpot_target)


def _names(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def explain_loads(loads: Any) -> str:
    """The results of :func:`max_load` in sentences (Markdown): for each limit, the chips it stops
    and why (a TPOT limit with :func:`tpot_bound_rate`'s rule), and the chips that carry no load.
    Every number comes from the loads. ``ValueError``/``TypeError`` for anything but a non-empty
    sequence of loads. Taught in: "How to choose" (chapter 11)."""
    items = checks.sequence("loads", loads, of=lambda name, x: checks.instance(name, x, Load))
    by = {limit: [x.name for x in items if x.limit == limit and x.rate > 0]
          for limit in ("p99 TPOT", "p99 TTFT", "saturation")}
    out = []
    if by["p99 TPOT"]:
        x = next(x for x in items if x.limit == "p99 TPOT" and x.rate > 0)
        bound = tpot_bound_rate(x.batch, x.output, x.tpot_target)
        out.append(f"On {_names(by['p99 TPOT'])} the p99 time per token breaks first, well below saturation. Near "
                   f"full load every request shares its decode steps with about {x.batch} prefills, one for each "
                   f"sequence that replaces another, so its time per token is about {x.batch} / ({x.output - 1} × "
                   f"the saturation rate): over the target for every plan that saturates below "
                   f"{fmt(bound, 'requests/s')}. That is an average over the request's life, so the p99 sits close "
                   "to it.")
    if by["p99 TTFT"]:
        out.append(f"On {_names(by['p99 TTFT'])} the wait for the first token breaks first, close to saturation: "
                   "near full load the queue, not the decoding, sets the tail.")
    if by["saturation"]:
        n = items[0].tail.requests if items[0].tail is not None else None
        out.append(f"On {_names(by['saturation'])} no load below saturation missed a target"
                   + (f" in {n:,} requests" if n else "") + "; a longer run would see the queue break the time to "
                   "first token just below it.")
    idle = [x for x in items if x.rate == 0]
    if idle:
        out.append(f"{_names([x.name for x in idle])} {'carries' if len(idle) == 1 else 'carry'} no load at all: a "
                   "lone request already misses the "
                   + _names(sorted({x.limit for x in idle})) + " target.")
    return " ".join(out)


# ---------------------------------------------------------------------------------------------
# The boring rule, and the ranking in words
# ---------------------------------------------------------------------------------------------

def simplest(verdicts: Any) -> Verdict | None:
    """The boring rule made concrete: among the verdicts that fit (and meet their target, when
    the workload has one), the one with the fewest devices (the least to operate: fewer chips,
    fewer links, no network when it fits one node); ties go to the most tokens/s per chip (the
    binding resource kept busiest for the same machinery), then to the chip key.
    None when no verdict qualifies. ``ValueError``/``TypeError`` for anything but a sequence of
    verdicts. Taught in: "How to choose" (chapter 11)."""
    items = checks.sequence("verdicts", verdicts, nonempty=False,
                            of=lambda name, v: checks.instance(name, v, Verdict))
    ok = [v for v in items if v.fits and v.meets_target is not False]
    if not ok:
        return None
    return min(ok, key=lambda v: (v.devices, -(v.tokens_per_s_per_chip or 0.0), v.chip))


def explain(verdicts: Any, top: int = 3) -> str:
    """The ranking of :func:`rank` in sentences (Markdown): the ``top`` chips that fit with their
    devices, tokens/s per chip and binding limit; what the measured matmul rate changes; how many
    chips miss the target or do not fit. Every number comes from the verdicts. ``ValueError``
    names a bad ``top`` (1 to 20) or an empty or mixed list (one workload mode).
    Taught in: "How to choose" (chapter 11)."""
    items = checks.sequence("verdicts", verdicts, of=lambda name, v: checks.instance(name, v, Verdict))
    top = checks.positive_int("top", top, maximum=20)
    modes = {v.mode for v in items}
    if len(modes) > 1:
        raise ValueError(f"verdicts mix modes {sorted(modes)}: explain one workload's ranking")
    fit = [v for v in items if v.fits]
    unfit = [v for v in items if not v.fits]
    if not fit:
        return f"None of the {len(items)} chips can hold this workload: " + ", ".join(v.name for v in unfit) + "."
    per = "generated" if items[0].mode == "serve" else "trained"

    def one(v: Verdict) -> str:
        chips = "one chip" if v.devices == 1 else f"{v.devices} chips"
        return (f"**{v.name}** ({chips}, {fmt(v.tokens_per_s_per_chip, 'tokens/s')} {per} per chip, "
                f"bound by {v.binding})")

    best = fit[:top]
    out = ["At the dense peak, the ranking by tokens/s per chip starts " + ", then ".join(one(v) for v in best) + "."]
    bindings = sorted({v.binding for v in fit})
    if len(bindings) == 1:
        out.append(f"Every chip that fits is bound by {bindings[0]}, so the ranking follows "
                   + ("memory bandwidth per chip." if bindings[0] == "memory bandwidth" else
                      "dense FLOP/s per chip." if bindings[0] == "compute" else f"its {bindings[0]}."))
    measured = [v for v in best if v.tokens_per_s_per_chip_at_achieved is not None]
    if measured:
        drops = [f"{v.name} to {fmt(v.tokens_per_s_per_chip_at_achieved, 'tokens/s')}" for v in measured
                 if v.tokens_per_s_per_chip_at_achieved < 0.995 * v.tokens_per_s_per_chip]
        if drops:
            out.append("At the published measured matmul rates, " + ", ".join(drops) + " per chip.")
        else:
            out.append("The published measured matmul rates change none of these: the matmuls are not what binds.")
    if items[0].mode == "serve" and any(v.meets_target is not None for v in fit):
        miss = [v.name for v in fit if v.meets_target is False]
        out.append(f"{len(fit) - len(miss)} of the {len(fit)} chips that fit meet the time-per-token target"
                   + (f"; {', '.join(miss)} miss it." if miss else "."))
    if unfit:
        out.append(f"{len(unfit)} cannot hold it on any allowed number of chips: {', '.join(v.name for v in unfit)}.")
    return " ".join(out)


TABLE_HEADER = ("chip", "devices", "binding", "step time", "tokens/s per chip", "tokens/J",
                "achieved / peak", "step at achieved", "tokens/s per chip at achieved")
"""Column names of :func:`table_rows`."""


def _f(value: float | None, unit: str) -> str:
    return "n/a" if value is None else fmt(value, unit)


def table_rows(verdicts: Any) -> list[tuple[str, ...]]:
    """One row of strings per :class:`Verdict` (columns :data:`TABLE_HEADER`), units via
    :func:`accelbook.units.fmt`: "does not fit" in the devices column for a chip that cannot hold
    the workload, "n/a" where a value is missing (no TDP, no measured rate). ``ValueError`` or
    ``TypeError`` for anything but a sequence of verdicts. Taught in: "How to choose"."""
    items = checks.sequence("verdicts", verdicts, nonempty=False,
                            of=lambda name, v: checks.instance(name, v, Verdict))
    rows = []
    for v in items:
        rows.append((v.name, str(v.devices) if v.fits else "does not fit", v.binding, _f(v.step_time, "s"),
                     _f(v.tokens_per_s_per_chip, "tokens/s"),
                     "n/a" if v.tokens_per_joule is None else f"{v.tokens_per_joule:.3g} tokens/J",
                     "n/a" if v.achieved_fraction is None else f"{100 * v.achieved_fraction:.1f} %",
                     _f(v.step_time_at_achieved, "s"), _f(v.tokens_per_s_per_chip_at_achieved, "tokens/s")))
    return rows


__all__ = ["ACTIVATION_BYTES_PER_VALUE", "ADAM_MIXED_BYTES_PER_PARAM", "ASSUMED_NODE_DEVICES", "BINDINGS", "MODES",
           "RECOMPUTE_BYTES_PER_VALUE", "SERVE_MAX_DEVICES", "TABLE_HEADER", "TRAIN_MAX_DEVICES", "Achieved",
           "DecodeTimes", "Load", "PrefillTimes", "Tail", "Verdict", "Workload", "achieved", "achieved_table", "evaluate",
           "explain", "explain_loads", "max_load", "parse_achieved", "rank", "saturation_rate", "serve_tail",
           "simplest", "skipped", "table_rows", "tpot_bound_rate", "train_flops", "train_memory"]
