"""The running example: one transformer decoder layer (Llama-2-7B), its FLOP and bytes per op.

A decoder layer turns ``m`` token vectors of width ``d`` (``d_model``) into ``m`` new ones. With
``h`` query heads of width ``d_h = d / h``, ``h_kv`` key/value heads (``kv = h_kv · d_h``), MLP
width ``f`` (``d_ff``), ``B`` sequences, a KV cache of ``c`` tokens (``context``) and ``b`` bytes per
value (``bytes_per_value``), the ops of one layer, in order, are

====================  ===========  =======================================  =========================
op                    kind         one matmul (m, k, n) × count             FLOP
====================  ===========  =======================================  =========================
attn_norm (RMSNorm)   elementwise  —                                        4·m·d
qkv_proj              matmul       (m, d, d + 2·kv) × 1                     2·m·d·(d + 2·kv)
rope                  elementwise  —                                        3·m·(d + kv)
attn_scores  Q·Kᵀ     attention    (q, d_h, c) × B·h                        2·B·h·q·d_h·c
softmax               elementwise  —                                        5·B·h·q·c
attn_values  P·V      attention    (q, c, d_h) × B·h                        2·B·h·q·c·d_h
o_proj                matmul       (m, d, d) × 1                            2·m·d²
attn_residual         elementwise  —                                        m·d
mlp_norm (RMSNorm)    elementwise  —                                        4·m·d
gate_up_proj          matmul       (m, d, f) × 2 (gate and up)              4·m·d·f
silu_mul              elementwise  —                                        5·m·f
down_proj             matmul       (m, f, d) × 1                            2·m·f·d
mlp_residual          elementwise  —                                        m·d
====================  ===========  =======================================  =========================

where, per phase,

* ``"decode"``: one new token per sequence, ``m = B`` and ``q = 1``; each sequence attends to its
  cache of ``c`` tokens (the new token's own K and V included).
* ``"prefill"``: ``c`` prompt tokens per sequence, ``m = B · c`` and ``q = c``. The attention
  matmuls are counted as the full ``c × c`` square a plain matmul computes (a causal kernel that
  skips the masked half does about half of that work).

FLOP of elementwise ops are conventions (an exp or a reciprocal counts as one); they are a
fraction of a percent of the layer. ``bytes`` is the op's minimal memory traffic when it runs as
its own kernel: its weights read once, its inputs read once, its outputs written once, and for
attention the KV cache read once per sequence (``B · c · kv`` values for K, as many for V; query
heads that share a KV head share its reads). The new token's K and V are written to the cache as
part of ``qkv_proj``'s and ``rope``'s outputs. So, to leading order,

    decode:   F ≈ 2 · N · B + 4 · B · c · d        Q ≈ b · (N + 2 · B · c · kv)
    prefill:  F ≈ 2 · N · B · c + 4 · B · c² · d   Q ≈ b · N + (activations, growing with B · c)

with ``N = d·(d + 2·kv) + d² + 3·d·f`` the layer's matmul weights. At batch 1, decode does about
one FLOP per byte: far below every chip's ridge point (bandwidth-bound); prefill and large
batches reuse each weight across many tokens.

Model configurations are data: ``accelbook/data/models.toml``, with sources. Pure Python; no JAX.

Taught in: "Introduction" (the running example and its time per token), then refined in "The
roofline" (F, Q and a verdict per op), "The same matmul everywhere" (its matmuls measured),
"Inside a GPU SM" (tensor-core tiles), "Overheads" (ops, launches, fusion) and "TPUs and systolic
arrays" (MXU fill).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import sys
from typing import Any, Iterable

from accelbook import checks
from accelbook.checks import positive_int
from accelbook.specs import Source, parse_sources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

PHASES = ("decode", "prefill")
KINDS = ("matmul", "attention", "elementwise")


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """The shape of a decoder-only transformer (a Llama-style layer: RMSNorm, rotary attention with
    ``n_kv_heads`` key/value heads, SwiGLU MLP, no biases).

    ``source`` is the cited config the numbers come from. ``n_layers`` and ``vocab_size`` are only
    needed for whole-model counts (:func:`model_params`).
    """

    name: str
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    source: Source | None = None
    n_layers: int = 1
    vocab_size: int = 0
    tie_embeddings: bool = False

    def __post_init__(self):
        checks.text("name", self.name, empty=False)
        for field in ("d_model", "n_heads", "n_kv_heads", "d_ff", "n_layers"):
            object.__setattr__(self, field, positive_int(field, getattr(self, field)))
        object.__setattr__(self, "vocab_size", checks.nonneg_int("vocab_size", self.vocab_size))
        checks.boolean("tie_embeddings", self.tie_embeddings)
        if self.source is not None:
            checks.instance("source", self.source, Source)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head, ``d_model / n_heads``."""
        return self.d_model // self.n_heads

    @property
    def kv_dim(self) -> int:
        """Width of the keys (and of the values) of one token, ``n_kv_heads · head_dim``."""
        return self.n_kv_heads * self.head_dim


@dataclasses.dataclass(frozen=True)
class Op:
    """One op of a decoder layer: its FLOP and minimal memory traffic (bytes).

    ``kind`` is ``"matmul"`` (activations × weights), ``"attention"`` (activations × KV cache) or
    ``"elementwise"``. ``shape`` is ``(m, k, n)`` of ONE matmul (``None`` for elementwise ops) and
    ``count`` how many such matmuls the op does (e.g. sequences × heads). ``params`` is the number
    of weights the op reads (0 for attention and for weight-free elementwise ops).
    """

    name: str
    kind: str
    flops: int
    bytes: float
    shape: tuple[int, int, int] | None
    count: int
    params: int = 0

    @property
    def intensity(self) -> float:
        """``flops / bytes``: FLOP per byte of memory traffic."""
        return self.flops / self.bytes


def _parse_models(data: dict) -> dict[str, DecoderConfig]:
    sources = parse_sources(data.get("sources", {}))
    out = {}
    for key, m in data.get("models", {}).items():
        if m.get("source") not in sources:
            raise ValueError(f"models.{key}: source {m.get('source')!r} is not in [sources]")
        out[key] = DecoderConfig(
            name=m["name"], d_model=m["hidden_size"], n_heads=m["num_attention_heads"],
            n_kv_heads=m.get("num_key_value_heads", m["num_attention_heads"]),
            d_ff=m["intermediate_size"], source=sources[m["source"]],
            n_layers=m["num_hidden_layers"], vocab_size=m["vocab_size"],
            tie_embeddings=bool(m.get("tie_word_embeddings", False)))
    return out


@functools.lru_cache(maxsize=None)
def _models() -> dict[str, DecoderConfig]:
    text = importlib.resources.files("accelbook").joinpath("data/models.toml").read_text("utf-8")
    return _parse_models(tomllib.loads(text))


def get_model(key: str) -> DecoderConfig:
    """The model configuration ``key`` of ``accelbook/data/models.toml`` (e.g. ``"llama2-7b"``)."""
    checks.text("key", key)
    models = _models()
    if key not in models:
        raise KeyError(f"key={key!r} is not a model in models.toml; known: {', '.join(sorted(models))}")
    return models[key]


LLAMA2_7B: DecoderConfig = get_model("llama2-7b")
"""Llama-2-7B: d_model 4096, 32 heads, 32 KV heads, d_ff 11008, 32 layers, vocabulary 32000."""


def _bytes_per_value(value: Any) -> float:
    return checks.real("bytes_per_value", value, positive=True)


def layer_params(config: DecoderConfig) -> int:
    """Weights of one layer: ``d·(d + 2·kv) + d² + 3·d·f`` in the matmuls plus ``2·d`` norm scales."""
    _check_config(config)
    d, kv, f = config.d_model, config.kv_dim, config.d_ff
    return d * (d + 2 * kv) + d * d + 3 * d * f + 2 * d


def model_params(config: DecoderConfig) -> int:
    """Weights of the whole model: ``n_layers`` layers, the token embedding and the output
    projection (``vocab · d`` each; one matrix if ``tie_embeddings``) and the final norm (``d``)."""
    _check_config(config)
    embeddings = (1 if config.tie_embeddings else 2) * config.vocab_size * config.d_model
    return config.n_layers * layer_params(config) + embeddings + config.d_model


def _check_config(config: Any) -> None:
    if not isinstance(config, DecoderConfig):
        raise TypeError(f"config={config!r} must be a DecoderConfig (e.g. decoder.LLAMA2_7B)")


def layer_ops(config: DecoderConfig, batch: int, context: int, phase: str = "decode",
              bytes_per_value: float = 2) -> list[Op]:
    """The ops of one decoder layer for ``batch`` sequences and ``context`` tokens, in order.

    ``phase="decode"``: one new token per sequence attends to a KV cache of ``context`` tokens
    (``m = batch``). ``phase="prefill"``: ``context`` prompt tokens per sequence (``m = batch ·
    context``). Each value (weights, activations, KV cache) takes ``bytes_per_value`` bytes (2 for
    bf16). The formulas are in the module docstring.
    """
    _check_config(config)
    batch = positive_int("batch", batch)
    context = positive_int("context", context)
    checks.one_of("phase", phase, PHASES)
    b = _bytes_per_value(bytes_per_value)

    d, f, h, dh, kv = config.d_model, config.d_ff, config.n_heads, config.head_dim, config.kv_dim
    q = 1 if phase == "decode" else context  # query rows per sequence
    m = batch * q  # tokens processed
    c = context  # keys each query row attends to
    heads = batch * h

    def matmul(name, k, n, count=1, shared_input=True):
        params = count * k * n
        reads_in = m * k * (1 if shared_input else count)
        return Op(name, "matmul", 2 * m * k * n * count, b * (params + reads_in + count * m * n),
                  (m, k, n), count, params)

    def elementwise(name, flops, values_in, values_out, params=0):
        return Op(name, "elementwise", flops, b * (values_in + values_out + params), None, 1, params)

    kv_cache = batch * c * kv  # values of K (or of V) for all sequences
    scores = heads * q * c
    return [
        elementwise("attn_norm", 4 * m * d, m * d, m * d, params=d),
        matmul("qkv_proj", d, d + 2 * kv),
        elementwise("rope", 3 * m * (d + kv), m * (d + kv), m * (d + kv)),
        Op("attn_scores", "attention", 2 * heads * q * dh * c, b * (m * d + kv_cache + scores),
           (q, dh, c), heads),
        elementwise("softmax", 5 * scores, scores, scores),
        Op("attn_values", "attention", 2 * heads * q * c * dh, b * (scores + kv_cache + m * d),
           (q, c, dh), heads),
        matmul("o_proj", d, d),
        elementwise("attn_residual", m * d, 2 * m * d, m * d),
        elementwise("mlp_norm", 4 * m * d, m * d, m * d, params=d),
        matmul("gate_up_proj", d, f, count=2),
        elementwise("silu_mul", 5 * m * f, 2 * m * f, m * f),
        matmul("down_proj", f, d),
        elementwise("mlp_residual", m * d, 2 * m * d, m * d),
    ]


def totals(ops: Iterable[Op]) -> tuple[int, float]:
    """``(sum of flops, sum of bytes)`` over ``ops`` (e.g. one layer from :func:`layer_ops`)."""
    ops = checks.sequence("ops", ops, nonempty=False)
    for i, op in enumerate(ops):
        if not isinstance(op, Op):
            raise TypeError(f"ops[{i}]={checks.show(op)} must be an Op (from decoder.layer_ops)")
    return sum(op.flops for op in ops), sum(op.bytes for op in ops)


def kv_cache_bytes(config: DecoderConfig, tokens: int, bytes_per_value: float = 2) -> float:
    """Bytes of the KV cache for ``tokens`` tokens (all sequences together) over all layers:
    ``2 · n_layers · kv_dim · bytes_per_value`` per token (a key and a value per layer).
    Taught in: "Introduction" (does it fit?)."""
    _check_config(config)
    tokens = positive_int("tokens", tokens)
    return 2.0 * config.n_layers * config.kv_dim * _bytes_per_value(bytes_per_value) * tokens


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The spine's estimate for one call: ``time = t0 + max(flops / peak, bytes / bandwidth)``."""

    flops: float
    bytes: float
    t_compute: float  # flops / peak_flops, seconds
    t_memory: float  # bytes / bandwidth, seconds
    t0: float  # fixed overhead per call, seconds

    @property
    def time(self) -> float:
        return self.t0 + max(self.t_compute, self.t_memory)

    @property
    def bound(self) -> str:
        """The largest term: ``"overhead"`` (t0), ``"compute"`` (F/P) or ``"memory"`` (Q/W)."""
        terms = {"overhead": self.t0, "compute": self.t_compute, "memory": self.t_memory}
        return max(terms, key=terms.get)


def predict(ops: Iterable[Op], peak_flops: float, bandwidth: float, t0: float = 0.0) -> Prediction:
    """The spine ``t ≈ t0 + max(F/P, Q/W)`` for ``ops`` run as one call (``S = 0`` on one chip):
    ``F, Q = totals(ops)``, ``peak_flops`` P in FLOP/s, ``bandwidth`` W in bytes/s, ``t0`` seconds.
    Taught in: "Introduction" (the running example's time per token)."""
    peak_flops = checks.real("peak_flops", peak_flops, positive=True)
    bandwidth = checks.real("bandwidth", bandwidth, positive=True)
    t0 = checks.real("t0", t0, nonnegative=True)
    flops, nbytes = totals(ops)
    if not flops and not nbytes:
        raise ValueError(f"ops={checks.show(ops)} do no work (0 FLOP and 0 bytes)")
    return Prediction(flops, nbytes, flops / peak_flops, nbytes / bandwidth, float(t0))


@dataclasses.dataclass(frozen=True)
class RunningExample:
    """The settings of the running example, the same in every chapter: one layer of ``model``
    decoding against a KV cache of ``context`` tokens, at ``small_batch`` and ``large_batch``
    sequences, compared on ``chips`` (keys of the spec database). The large batch is one that fits
    a single H100 with its KV cache; the batch at which the layer's matmuls turn compute-bound is
    :func:`crossing_batch`, and it is larger."""

    model: str = "llama2-7b"
    context: int = 1024
    small_batch: int = 1
    large_batch: int = 64
    chips: tuple[str, ...] = ("t4", "a100-40gb", "h100-sxm", "tpu-v5e")

    def __post_init__(self):
        from accelbook import checks, specs

        checks.text("model", self.model)
        for name in ("context", "small_batch", "large_batch"):
            positive_int(name, getattr(self, name))
        if not self.small_batch < self.large_batch:
            raise ValueError(f"small_batch={self.small_batch} must be below large_batch={self.large_batch}")
        checks.sequence("chips", self.chips, of=lambda name, c: specs.as_chip(name, c).key)

    @property
    def config(self) -> DecoderConfig:
        return get_model(self.model)

    @property
    def batches(self) -> tuple[int, int]:
        return (self.small_batch, self.large_batch)


EXAMPLE = RunningExample()


def crossing_batch(config: DecoderConfig, peak_flops: float, bandwidth: float,
                   bytes_per_value: float = 2) -> int | None:
    """Smallest decode batch at which every weight matmul of one layer is compute-bound on a chip
    of ``peak_flops`` FLOP/s and ``bandwidth`` bytes/s, or None if no batch is.

    A weight matmul ``(m, k) @ (k, n)`` is compute-bound from ``m ≥ b·R·k·n / (2·k·n − b·R·(k+n))``
    with ``R = peak_flops / bandwidth`` (:func:`accelbook.models.roofline.min_batch_for_compute_bound`);
    the layer needs the largest of these over its projections. Attention over the KV cache is left
    out: it reads each sequence's own cache, so no batch makes it compute-bound.
    Taught in: "The roofline" and "Introduction" (the running example).
    """
    from accelbook.models.roofline import min_batch_for_compute_bound

    _check_config(config)
    shapes = {op.shape[1:] for op in layer_ops(config, 1, 1, "decode", bytes_per_value) if op.kind == "matmul"}
    needed = [min_batch_for_compute_bound(k, n, peak_flops, bandwidth, bytes_per_value) for k, n in sorted(shapes)]
    return None if any(m is None for m in needed) else max(needed)


__all__ = ["EXAMPLE", "KINDS", "LLAMA2_7B", "PHASES", "DecoderConfig", "Op", "Prediction", "RunningExample",
           "crossing_batch", "get_model", "kv_cache_bytes", "layer_ops", "layer_params", "model_params",
           "predict", "totals"]
