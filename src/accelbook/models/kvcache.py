"""The KV cache: its bytes per token, what fits on a chip, and the decode step it slows down.

Decoding a token reads every weight once and every sequence's own cache of keys and values. With
``L`` layers, ``w`` values cached per token per layer and ``b`` bytes per value, a batch of ``B``
sequences of ``c`` tokens holds

    s = L · w · b                      bytes per token      w = 2 · h_kv · d_h   (MHA, GQA, MQA)
    K(B, c) = B · min(c, W) · s        bytes of cache       w = d_c + d_h^R      (latent attention)

where ``h_kv`` is the number of key/value heads (not query heads), ``d_h`` the head width (the
config's ``head_dim`` when it gives one), ``d_c`` and ``d_h^R`` the latent and RoPE-key widths of
multi-head latent attention (DeepSeek-V2, arXiv 2405.04434, section 2.1; DeepSeek-V3, arXiv
2412.19437, section 2.1.1), and ``W`` the sliding window (infinite without one). The cache fits
beside the weights when

    N · b_w + K(B, c) ≤ f · M

with ``N`` parameters of ``b_w`` bytes, ``M`` the device memory as the device reports it and
``f`` the fraction a server may use (vLLM's ``gpu_memory_utilization``); a paged cache counts
whole blocks of ``block_size`` tokens per sequence. A decode step is bandwidth-bound while

    t = max( (Q_w + K(B, c)) / BW ,  F / P ),   tokens/s = B / t

with ``Q_w`` the weight bytes the step reads, ``BW`` the memory bandwidth, ``F ≈ 2 · N_active · B
+`` attention FLOP and ``P`` the peak FLOP/s. Units are SI: bytes, seconds, FLOP, FLOP/s, bytes/s.

Pure Python; configs from :mod:`accelbook.models.decoder`, chips from :mod:`accelbook.specs`.
Taught in: "The KV cache" (bytes per token, capacity, the crossover with the weights) and
"Batching" (the decode step against the batch).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from accelbook import checks, specs
from accelbook.models import decoder
from accelbook.models.decoder import DecoderConfig

DTYPE_BITS: dict[str, int] = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "int4": 4, "fp4": 4}
"""Bits per stored value of the dtypes a KV cache or a weight matrix is kept in. The 4-bit formats
count the packed payload only (two values per byte): their per-group scales and zero points are
not counted (one fp16 scale per group of 32 values adds 12.5 %, per 128 values 3.1 %), nor are the
per-tensor scales of fp8 (a few bytes per layer)."""

STORAGE_DTYPES: tuple[str, ...] = tuple(DTYPE_BITS)
"""The dtype names :func:`kv_bytes_per_token` and :func:`weight_bytes` accept."""

VLLM_GPU_MEMORY_UTILIZATION = 0.9
"""vLLM's default ``gpu_memory_utilization``: the fraction of device memory its engine may use for
weights, activations and the KV cache; the rest is left for the CUDA context, other processes
and fragmentation. Source: ``EngineArgs.gpu_memory_utilization: float = 0.90`` and the
``--gpu-memory-utilization`` help ("If unspecified, will use the default value of 0.9") in
https://github.com/vllm-project/vllm/blob/001999d2f360c2c5da23a916510c273b1a73d06c/vllm/engine/arg_utils.py"""

VLLM_BLOCK_SIZE = 16
"""vLLM's default KV-cache block on CUDA, in tokens: ``if cache_config.block_size is None:
cache_config.block_size = 16`` in
https://github.com/vllm-project/vllm/blob/002db4951e0c4b326a559eb44b05698afd3e534a/vllm/platforms/cuda.py
(its MLA backends force 64 or 128 instead)."""


def _config(model: Any) -> DecoderConfig:
    return decoder.as_model("model", model)


def _bits(name: str, dtype: Any) -> int:
    return DTYPE_BITS[checks.one_of(name, dtype, STORAGE_DTYPES)]


def dtype_bits(dtype: str) -> int:
    """Bits per stored value of ``dtype`` (one of :data:`STORAGE_DTYPES`): 32 for fp32, 16 for
    fp16/bf16, 8 for fp8/int8, 4 for int4/fp4 (payload only, see :data:`DTYPE_BITS`).
    ``ValueError`` for another name. Taught in: "The KV cache"."""
    return _bits("dtype", dtype)


def kv_bytes_per_token(model: str | DecoderConfig, dtype: str = "bf16") -> int:
    """Bytes of K and V cache one token takes in all layers: ``ceil(L · w · bits / 8)``.

    ``w`` (:attr:`DecoderConfig.kv_width`) is ``2 · n_kv_heads · head_dim`` for multi-head,
    grouped-query and multi-query attention (KV heads, not query heads; the config's head_dim when
    it gives one), and ``kv_lora_rank + qk_rope_head_dim`` for multi-head latent attention, which
    caches one compressed latent and one RoPE key per layer, shared by all heads. ``model`` is a
    key of ``models.toml`` or a :class:`DecoderConfig`; ``dtype`` one of :data:`STORAGE_DTYPES`
    (4-bit formats: payload only, rounded up to a whole byte; scales not counted). A sliding
    window does not change the bytes per token, only how many tokens are held
    (:func:`kv_bytes`). Raises ``KeyError``/``TypeError`` for an unknown model, ``ValueError``
    for an unknown dtype. Taught in: "The KV cache".
    """
    config = _config(model)
    return _kv_per_token(config, _bits("dtype", dtype))


def _kv_per_token(config: DecoderConfig, bits: int) -> int:
    return -(-config.n_layers * config.kv_width * bits // 8)


def cached_tokens(model: str | DecoderConfig, context: int) -> int:
    """Tokens one sequence keeps in its cache at ``context`` tokens: ``min(context,
    sliding_window)``, or ``context`` with full attention. ``ValueError`` for a context below 1.
    Taught in: "The KV cache" (sliding windows cap the cache)."""
    config = _config(model)
    context = checks.positive_int("context", context)
    return context if config.sliding_window is None else min(context, config.sliding_window)


def kv_bytes(model: str | DecoderConfig, dtype: str, batch: int, context: int) -> int:
    """Bytes of KV cache for ``batch`` sequences of ``context`` tokens each:
    ``batch · cached_tokens(context) · kv_bytes_per_token(dtype)``. Layers with a sliding window
    hold at most the window (a rolling buffer). Exact tokens, no paging (see :func:`max_batch`).
    Taught in: "The KV cache"."""
    per_token = kv_bytes_per_token(model, dtype)
    batch = checks.positive_int("batch", batch)
    return batch * cached_tokens(model, context) * per_token


def weight_params(model: str | DecoderConfig) -> int:
    """Parameters whose weights sit in device memory.

    A dense Llama-style config (:attr:`DecoderConfig.is_dense_llama`) is counted exactly from the
    config (:func:`accelbook.models.decoder.model_params`); any other (OPT, mixtures of experts,
    latent attention) uses ``params_total`` as its paper or model card prints it. ``ValueError``
    if neither is available. Taught in: "The KV cache"."""
    config = _config(model)
    if config.is_dense_llama:
        return decoder.model_params(config)
    if config.params_total is None:
        raise ValueError(f"model={config.name!r}: its parameters cannot be counted from the config and it "
                         "has no published params_total")
    return int(round(config.params_total))


def weight_bytes(model: str | DecoderConfig, dtype: str = "bf16") -> float:
    """Bytes of the weights: ``weight_params(model) · bits(dtype) / 8`` (4-bit formats without
    their scales). Taught in: "The KV cache" (weights against cache)."""
    bits = _bits("dtype", dtype)
    return weight_params(model) * bits / 8


def routed_expert_params(model: str | DecoderConfig) -> int:
    """Parameters of the routed experts, counted from the config: ``(n_layers −
    first_dense_layers) · n_experts · 3 · d_model · expert_d_ff`` (gated experts of three
    matrices); 0 for a dense model. Shared experts are not routed and are not counted here.
    Taught in: "Batching" (which weights a step reads)."""
    config = _config(model)
    if not config.is_moe:
        return 0
    moe_layers = config.n_layers - config.first_dense_layers
    return moe_layers * config.n_experts * 3 * config.d_model * config.expert_d_ff


def params_read(model: str | DecoderConfig, batch: int) -> float:
    """Parameters one decode step of ``batch`` sequences reads from memory, expected value.

    A dense model reads all of them (:func:`weight_params`). A mixture of experts reads its
    non-routed weights and each routed expert that at least one token picks: with ``E`` experts,
    ``k`` per token and independent uniform routing, a fraction ``1 − (1 − k/E)^batch`` of them.
    Real routers are skewed, so they touch fewer experts; the uniform case is the upper estimate.
    At batch 1 this is about the published active parameters. Taught in: "Batching".
    """
    config = _config(model)
    batch = checks.positive_int("batch", batch)
    total = weight_params(config)
    routed = routed_expert_params(config)
    if not routed:
        return float(total)
    k, e = config.experts_per_token, config.n_experts
    touched = 1.0 if k == e else -math.expm1(batch * math.log1p(-k / e))
    return total - routed + routed * touched


def active_params(model: str | DecoderConfig) -> float:
    """Parameters used per token: ``params_active`` as published for a mixture of experts, else
    all of :func:`weight_params`. Taught in: "Batching" (the 2 · N FLOP per token)."""
    config = _config(model)
    if config.is_moe and config.params_active is not None:
        return float(config.params_active)
    if config.is_moe:
        raise ValueError(f"model={config.name!r} is a mixture of experts without a published params_active")
    return float(weight_params(config))


@dataclasses.dataclass(frozen=True)
class DeviceMemory:
    """The memory a chip offers, in bytes.

    ``capacity`` is the device-visible capacity from the spec database (``memory_capacity_visible``,
    what nvidia-smi reports) when ``visible`` is True; otherwise the marketed capacity
    (``memory_capacity``), which may be off by several percent ("80GB" reads as 80e9 bytes while an
    H100 reports 81,559 MiB = 85.5e9 bytes). ``ValueError`` for an empty chip name, a capacity
    that is not a positive number of bytes, or a ``visible`` that is not True/False.
    """

    chip: str
    capacity: float  # bytes
    visible: bool  # True: device-visible capacity; False: the marketed figure (no visible one is sourced)

    def __post_init__(self):
        checks.text("chip", self.chip, empty=False)
        object.__setattr__(self, "capacity", checks.real("capacity", self.capacity, positive=True))
        object.__setattr__(self, "visible", checks.boolean("visible", self.visible))


def device_memory(chip: str | specs.Chip) -> DeviceMemory:
    """The memory ``chip`` (a key of the spec database or a :class:`accelbook.specs.Chip`) offers to
    programs: the device-visible capacity if the database has one, else the marketed capacity with
    ``visible=False``. ``ValueError`` for a chip without a memory capacity (the host CPU).
    Taught in: "The KV cache"."""
    chip = specs.as_chip("chip", chip)
    visible = chip.value("memory_capacity_visible")
    if visible is not None:
        return DeviceMemory(chip.key, float(visible), True)
    if not chip.memory_bytes:
        raise ValueError(f"chip={chip.key!r} has no memory capacity in the spec database")
    return DeviceMemory(chip.key, float(chip.memory_bytes), False)


@dataclasses.dataclass(frozen=True)
class MemoryFit:
    """How many sequences, or how many tokens each, fit in a chip's memory beside the weights.

    ``usable = capacity · memory_fraction`` bytes may hold weights and cache; ``kv_budget = usable −
    weight_bytes`` (negative: the weights alone do not fit). The cache is paged in blocks of
    ``block_size`` tokens of ``block_bytes`` bytes (all layers); ``blocks`` whole blocks fit the
    budget and each sequence takes ``blocks_per_sequence``. ``batch`` sequences of ``context``
    tokens fit (``context`` None: any length fits, because a sliding window caps the cache);
    ``kv_bytes`` is what their blocks take. Activations are not modelled beyond the reserve
    ``1 − memory_fraction``; vLLM also subtracts its profiled activation peak, so this is an upper
    bound.
    """

    model: str
    chip: str
    batch: int  # sequences
    context: int | None  # tokens per sequence; None: unbounded by memory (sliding window)
    capacity: float  # bytes the device offers
    capacity_visible: bool  # False: marketed capacity used (no device-visible figure sourced)
    memory_fraction: float  # share of capacity for weights and cache
    weight_bytes: float  # bytes
    kv_budget: float  # bytes left for the cache (negative: weights do not fit)
    block_size: int  # tokens per block
    block_bytes: int  # bytes per block, all layers
    blocks: int  # whole blocks in kv_budget
    blocks_per_sequence: int
    kv_bytes: int  # bytes the batch's blocks take

    @property
    def fits(self) -> bool:
        """True if at least one sequence (of at least one token) fits."""
        return self.batch > 0 and (self.context is None or self.context > 0)


def _budget(config: DecoderConfig, chip, dtype, kv_dtype, memory_fraction, block_size):
    memory = device_memory(chip)
    fraction = checks.real("memory_fraction", memory_fraction, positive=True, maximum=1.0)
    block_size = checks.positive_int("block_size", block_size, maximum=2 ** 24)
    weights = weight_bytes(config, dtype)
    budget = memory.capacity * fraction - weights
    block = block_size * _kv_per_token(config, _bits("kv_dtype", kv_dtype))
    blocks = max(0, math.floor(budget / block))
    return memory, fraction, block_size, weights, budget, block, blocks


def max_batch(model: str | DecoderConfig, chip: str | specs.Chip, context: int, dtype: str = "bf16",
              kv_dtype: str = "bf16", memory_fraction: float = VLLM_GPU_MEMORY_UTILIZATION,
              block_size: int = VLLM_BLOCK_SIZE) -> MemoryFit:
    """The largest number of sequences of ``context`` tokens whose paged KV cache fits ``chip``.

    ``batch = floor(blocks / ceil(cached_tokens(context) / block_size))`` with ``blocks =
    floor((capacity · memory_fraction − weights) / block_bytes)``; 0 if the weights alone do not
    fit. ``dtype`` is the weights' storage dtype, ``kv_dtype`` the cache's (both from
    :data:`STORAGE_DTYPES`); ``memory_fraction`` in (0, 1] defaults to vLLM's 0.9
    (:data:`VLLM_GPU_MEMORY_UTILIZATION`) and ``block_size`` (tokens) to vLLM's 16
    (:data:`VLLM_BLOCK_SIZE`). The capacity is the device-visible one when sourced
    (:func:`device_memory`; ``capacity_visible`` says which). Taught in: "The KV cache".
    """
    config = _config(model)
    memory, fraction, block_size, weights, budget, block, blocks = _budget(
        config, chip, dtype, kv_dtype, memory_fraction, block_size)
    per_seq = -(-cached_tokens(config, context) // block_size)
    batch = blocks // per_seq
    return MemoryFit(config.name, memory.chip, batch, int(context), memory.capacity, memory.visible, fraction,
                     weights, budget, block_size, block, blocks, per_seq, batch * per_seq * block)


def max_context(model: str | DecoderConfig, chip: str | specs.Chip, batch: int, dtype: str = "bf16",
                kv_dtype: str = "bf16", memory_fraction: float = VLLM_GPU_MEMORY_UTILIZATION,
                block_size: int = VLLM_BLOCK_SIZE) -> MemoryFit:
    """The longest context (tokens per sequence) at which ``batch`` sequences' paged KV cache fits
    ``chip``: ``context = floor(blocks / batch) · block_size`` (whole blocks per sequence; 0 if not
    even one block each fits). With a sliding window of ``w`` tokens the cache never needs more
    than ``ceil(w / block_size)`` blocks per sequence; if those fit, ``context`` is None (memory
    sets no limit). Arguments and defaults as :func:`max_batch`. Taught in: "The KV cache".
    """
    config = _config(model)
    memory, fraction, block_size, weights, budget, block, blocks = _budget(
        config, chip, dtype, kv_dtype, memory_fraction, block_size)
    batch = checks.positive_int("batch", batch)
    per_seq = blocks // batch
    context: int | None = per_seq * block_size
    if config.sliding_window is not None and per_seq * block_size >= config.sliding_window:
        per_seq = -(-config.sliding_window // block_size)
        context = None
    return MemoryFit(config.name, memory.chip, batch, context, memory.capacity, memory.visible, fraction,
                     weights, budget, block_size, block, blocks, per_seq, batch * per_seq * block)


def attention_flops(model: str | DecoderConfig, batch: int, context: int) -> float:
    """FLOP of the attention of one decode step (all layers): each of ``batch`` new tokens scores
    and mixes its ``cached_tokens(context)`` keys. Per layer and sequence that is ``4 · h · d_h ·
    c`` (``Q·Kᵀ`` and ``P·V``), or, with latent attention computed on the latent (weights absorbed,
    as DeepSeek's and vLLM's decode kernels do), ``2 · h · c · (d_c + d_h^R) + 2 · h · c · d_c``.
    Taught in: "Batching"."""
    config = _config(model)
    batch = checks.positive_int("batch", batch)
    c = cached_tokens(config, context)
    h = config.n_heads
    if config.is_mla:
        per_layer = 2 * h * c * (config.kv_lora_rank + config.qk_rope_head_dim) + 2 * h * c * config.kv_lora_rank
    else:
        per_layer = 4 * h * config.head_dim * c
    return float(config.n_layers) * per_layer * batch


@dataclasses.dataclass(frozen=True)
class DecodeStep:
    """One decode step of ``batch`` sequences at ``context`` tokens on a chip.

    ``weight_bytes`` are read once per step (for a mixture of experts, the experts the batch
    touches, :func:`params_read`); ``kv_bytes`` are every sequence's own cache, read once. The
    memory time is ``(weight_bytes + kv_bytes) / bandwidth``; the compute time ``flops /
    peak_flops`` with ``flops = 2 · active_params · batch + attention``. The step takes the larger
    of the two (:attr:`time`).
    """

    model: str
    chip: str
    batch: int  # sequences, one new token each
    context: int  # tokens per sequence
    weight_bytes: float  # bytes of weights read per step
    kv_bytes: float  # bytes of KV cache read per step
    flops: float  # FLOP per step
    bandwidth: float  # bytes/s
    peak_flops: float  # FLOP/s
    t_memory: float  # seconds: (weight_bytes + kv_bytes) / bandwidth
    t_compute: float  # seconds: flops / peak_flops

    @property
    def bytes(self) -> float:
        """Bytes read per step: ``weight_bytes + kv_bytes``."""
        return self.weight_bytes + self.kv_bytes

    @property
    def time(self) -> float:
        """Seconds per step: ``max(t_memory, t_compute)``."""
        return max(self.t_memory, self.t_compute)

    @property
    def tokens_per_s(self) -> float:
        """Tokens per second of the whole batch: ``batch / time``."""
        return self.batch / self.time

    @property
    def bound(self) -> str:
        """``"memory"`` if the bytes take longer than the FLOP, else ``"compute"``."""
        return "memory" if self.t_memory >= self.t_compute else "compute"


def decode_step(model: str | DecoderConfig, chip: str | specs.Chip, batch: int, context: int,
                dtype: str = "bf16", kv_dtype: str = "bf16", compute_dtype: str = "bf16") -> DecodeStep:
    """The decode step of ``batch`` sequences at ``context`` tokens on ``chip``.

    Bytes: ``params_read(batch) · bits(dtype)/8`` of weights plus ``kv_bytes(kv_dtype, batch,
    context)`` of cache, over the chip's memory bandwidth (spec database, bytes/s). FLOP: ``2 ·
    active_params · batch`` plus :func:`attention_flops`, over the chip's dense peak for
    ``compute_dtype`` (a dtype of :data:`accelbook.specs.DTYPES`); a chip without that peak is a
    ``ValueError`` (no silent fallback to another dtype). It does not check that the batch fits
    (:func:`max_batch`). Taught in: "Batching" and "The KV cache".
    """
    config = _config(model)
    chip = specs.as_chip("chip", chip)
    batch = checks.positive_int("batch", batch)
    context = checks.positive_int("context", context)
    bits = _bits("dtype", dtype)
    kv_bits = _bits("kv_dtype", kv_dtype)
    checks.one_of("compute_dtype", compute_dtype, specs.DTYPES)
    peaks = chip.peak_flops
    if compute_dtype not in peaks:
        raise ValueError(f"compute_dtype={compute_dtype!r}: {chip.name} has no {compute_dtype} peak "
                         f"(it has: {', '.join(peaks) or 'none'})")
    if not chip.memory_bandwidth:
        raise ValueError(f"chip={chip.key!r} has no memory_bandwidth in the spec database")
    weights = params_read(config, batch) * bits / 8
    cache = float(batch * cached_tokens(config, context) * _kv_per_token(config, kv_bits))
    flops = 2.0 * active_params(config) * batch + attention_flops(config, batch, context)
    bw, peak = float(chip.memory_bandwidth), float(peaks[compute_dtype])
    return DecodeStep(config.name, chip.key, batch, context, weights, cache, flops, bw, peak,
                      (weights + cache) / bw, flops / peak)


def crossover_context(model: str | DecoderConfig, batch: int, dtype: str = "bf16",
                      kv_dtype: str = "bf16") -> int | None:
    """The shortest context (tokens per sequence) at which the KV cache of ``batch`` sequences
    takes more bytes than the weights: ``floor(weight_bytes / (batch · s)) + 1`` with ``s`` the
    bytes per token. None if a sliding window keeps the cache below the weights at every length.
    Taught in: "The KV cache" (beyond this context the cache, not the model, fills memory and
    bandwidth)."""
    config = _config(model)
    batch = checks.positive_int("batch", batch)
    weights = weight_bytes(config, dtype)
    per_token = _kv_per_token(config, _bits("kv_dtype", kv_dtype))
    context = math.floor(weights / (batch * per_token)) + 1
    if config.sliding_window is not None and context > config.sliding_window:
        return None
    return context


__all__ = ["DTYPE_BITS", "STORAGE_DTYPES", "VLLM_BLOCK_SIZE", "VLLM_GPU_MEMORY_UTILIZATION", "DecodeStep",
           "DeviceMemory", "MemoryFit", "active_params", "attention_flops", "cached_tokens", "crossover_context",
           "decode_step", "device_memory", "dtype_bits", "kv_bytes", "kv_bytes_per_token", "max_batch",
           "max_context", "params_read", "routed_expert_params", "weight_bytes", "weight_params"]
