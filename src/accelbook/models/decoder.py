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

The table is written for ``d_h = d / h``. Where a config gives another ``head_dim``, the query
width is ``h · d_h`` instead of ``d`` in ``qkv_proj``, ``rope``, attention and ``o_proj``; with a
sliding window of ``w`` tokens each row attends to ``min(c, w)`` keys. :func:`layer_ops`,
:func:`layer_params` and :func:`model_params` describe dense Llama-style layers (Llama, Mistral,
Qwen2 with its q/k/v biases); they raise ``ValueError`` for multi-head latent attention,
mixtures of experts and OPT's layer rather than count them wrong.

Model configurations are data: ``accelbook/data/models.toml``, with sources, loaded into
:class:`DecoderConfig` (:func:`get_model`). Pure Python; no JAX.

Taught in: "Introduction" (the running example and its time per token), then refined in "The
roofline" (F, Q and a verdict per op), "The same matmul everywhere" (its matmuls measured),
"Inside a GPU SM" (tensor-core tiles), "Overheads" (ops, launches, fusion), "TPUs and systolic
arrays" (MXU fill) and "The KV cache" (the configs of many models).
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


ARCHITECTURES = ("llama", "opt")
"""Layer families a :class:`DecoderConfig` can describe: ``"llama"`` (RMSNorm, rotary attention,
gated SwiGLU MLP, no biases except optional q/k/v biases) and ``"opt"`` (LayerNorm, ReLU MLP of
two matrices, biases everywhere, learned position embeddings)."""

_OPTIONAL_SIZES = ("explicit_head_dim", "sliding_window", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim",
                   "qk_nope_head_dim", "v_head_dim", "n_experts", "experts_per_token", "expert_d_ff",
                   "max_position_embeddings")
_MLA_FIELDS = ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")
_MOE_FIELDS = ("n_experts", "experts_per_token", "expert_d_ff")


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """The shape of a decoder-only transformer, as its config.json gives it.

    The core fields describe a Llama-style layer (RMSNorm, rotary attention with ``n_kv_heads``
    key/value heads, SwiGLU MLP of width ``d_ff``, no biases); ``n_kv_heads == n_heads`` is
    multi-head attention, ``1 < n_kv_heads < n_heads`` grouped-query and ``n_kv_heads == 1``
    multi-query attention. ``source`` is the cited config. ``n_layers`` and ``vocab_size`` are only
    needed for whole-model counts (:func:`model_params`).

    Optional fields (``None`` or 0 when the model does not have them):

    * ``explicit_head_dim``: the config's ``head_dim`` when it gives one. :attr:`head_dim` returns
      it; without it the head width is ``d_model // n_heads`` (and ``d_model`` must then be a
      multiple of ``n_heads``).
    * ``sliding_window``: tokens each layer attends to (and caches); ``None`` is full attention.
      It applies to every layer.
    * ``qkv_bias``: biases on the q, k and v projections (Qwen2).
    * ``architecture``: one of :data:`ARCHITECTURES`.
    * multi-head latent attention (DeepSeek-V2/V3): ``kv_lora_rank`` (d_c, the cached latent),
      ``qk_rope_head_dim`` (d_h^R, the cached decoupled RoPE key), ``qk_nope_head_dim``,
      ``v_head_dim`` and ``q_lora_rank`` (``None``: queries are not compressed). The first four come
      together.
    * mixture of experts: ``n_experts`` routed experts of MLP width ``expert_d_ff``,
      ``experts_per_token`` of them per token, ``n_shared_experts`` always used, in every layer but
      the first ``first_dense_layers`` (which have a dense MLP of width ``d_ff``).
    * ``params_total`` and ``params_active`` (parameters, as published; active for mixtures of
      experts) and the ``params_source`` that prints them.
    * ``max_position_embeddings``: the longest context (tokens) the config declares; past it the
      model was not trained, whatever memory allows.

    Raises ``ValueError`` naming the field for a bad value, ``TypeError`` for a ``source`` or
    ``params_source`` that is not a :class:`accelbook.specs.Source`. Sizes are counts (values,
    heads, layers, tokens); parameter counts are numbers of weights.
    Taught in: "Introduction" (the running example) and "The KV cache" (many models' configs).
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
    explicit_head_dim: int | None = None
    sliding_window: int | None = None
    qkv_bias: bool = False
    architecture: str = "llama"
    kv_lora_rank: int | None = None
    q_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    n_experts: int | None = None
    experts_per_token: int | None = None
    n_shared_experts: int = 0
    expert_d_ff: int | None = None
    first_dense_layers: int = 0
    params_total: float | None = None
    params_active: float | None = None
    params_source: Source | None = None
    max_position_embeddings: int | None = None

    def __post_init__(self):
        checks.text("name", self.name, empty=False)
        for field in ("d_model", "n_heads", "n_kv_heads", "d_ff", "n_layers"):
            object.__setattr__(self, field, positive_int(field, getattr(self, field)))
        object.__setattr__(self, "vocab_size", checks.nonneg_int("vocab_size", self.vocab_size))
        checks.boolean("tie_embeddings", self.tie_embeddings)
        checks.boolean("qkv_bias", self.qkv_bias)
        checks.one_of("architecture", self.architecture, ARCHITECTURES)
        for field in ("source", "params_source"):
            if getattr(self, field) is not None:
                checks.instance(field, getattr(self, field), Source)
        for field in _OPTIONAL_SIZES:
            if getattr(self, field) is not None:
                object.__setattr__(self, field, positive_int(field, getattr(self, field)))
        for field in ("n_shared_experts", "first_dense_layers"):
            object.__setattr__(self, field, checks.nonneg_int(field, getattr(self, field)))
        for field in ("params_total", "params_active"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field, checks.real(field, getattr(self, field), positive=True))
        if self.explicit_head_dim is None and not self.is_mla and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads} "
                             "(or give explicit_head_dim)")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
        self._check_groups()

    def _check_groups(self) -> None:
        mla = [getattr(self, f) is not None for f in _MLA_FIELDS]
        if any(mla) and not all(mla):
            given = {f: getattr(self, f) for f in _MLA_FIELDS}
            raise ValueError(f"multi-head latent attention needs all of {', '.join(_MLA_FIELDS)}; got {given}")
        if self.q_lora_rank is not None and not self.is_mla:
            raise ValueError(f"q_lora_rank={self.q_lora_rank} is only used with multi-head latent attention "
                             "(give kv_lora_rank and the other MLA sizes)")
        moe = [getattr(self, f) is not None for f in _MOE_FIELDS]
        if any(moe) and not all(moe):
            given = {f: getattr(self, f) for f in _MOE_FIELDS}
            raise ValueError(f"a mixture of experts needs all of {', '.join(_MOE_FIELDS)}; got {given}")
        if self.is_moe:
            if self.experts_per_token > self.n_experts:
                raise ValueError(f"experts_per_token={self.experts_per_token} must be at most "
                                 f"n_experts={self.n_experts}")
            if self.first_dense_layers >= self.n_layers:
                raise ValueError(f"first_dense_layers={self.first_dense_layers} must be below "
                                 f"n_layers={self.n_layers}")
        else:
            for field in ("n_shared_experts", "first_dense_layers"):
                if getattr(self, field):
                    raise ValueError(f"{field}={getattr(self, field)} needs a mixture of experts "
                                     "(n_experts, experts_per_token, expert_d_ff)")
        if self.params_active is not None:
            if not self.is_moe:
                raise ValueError(f"params_active={self.params_active} is only for mixtures of experts "
                                 "(a dense model uses all its parameters)")
            if self.params_total is None or self.params_active > self.params_total:
                raise ValueError(f"params_active={self.params_active} must be at most "
                                 f"params_total={self.params_total}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head: ``explicit_head_dim`` if the config gives one, else
        ``d_model // n_heads``. (Multi-head latent attention uses ``qk_nope_head_dim +
        qk_rope_head_dim`` and ``v_head_dim`` instead.)"""
        return self.explicit_head_dim if self.explicit_head_dim is not None else self.d_model // self.n_heads

    @property
    def q_dim(self) -> int:
        """Width of the queries of one token, ``n_heads · head_dim`` (``d_model`` unless the config
        gives a head_dim that differs from ``d_model / n_heads``)."""
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the keys (and of the values) of one token, ``n_kv_heads · head_dim``."""
        return self.n_kv_heads * self.head_dim

    @property
    def is_mla(self) -> bool:
        """True for multi-head latent attention (``kv_lora_rank`` given)."""
        return self.kv_lora_rank is not None

    @property
    def is_moe(self) -> bool:
        """True for a mixture of experts (``n_experts`` given)."""
        return self.n_experts is not None

    @property
    def kv_width(self) -> int:
        """Values cached per token in one layer: ``2 · kv_dim`` (a key and a value per KV head), or
        ``kv_lora_rank + qk_rope_head_dim`` with multi-head latent attention (one compressed latent
        and one decoupled RoPE key, shared by all heads; DeepSeek-V2, arXiv 2405.04434, section
        2.1.3). Taught in: "The KV cache"."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_dim

    @property
    def is_dense_llama(self) -> bool:
        """True if :func:`layer_ops`, :func:`layer_params` and :func:`model_params` describe this
        model: a Llama-style layer without latent attention and without experts."""
        return self.architecture == "llama" and not self.is_mla and not self.is_moe


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


_MODEL_KEYS = frozenset({
    "name", "source", "note", "model_type", "hidden_size", "intermediate_size", "ffn_dim", "word_embed_proj_dim",
    "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "head_dim", "vocab_size",
    "max_position_embeddings", "tie_word_embeddings", "sliding_window", "use_sliding_window", "q_lora_rank",
    "kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "moe_intermediate_size",
    "num_local_experts", "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "first_k_dense_replace",
    "params_total", "params_active", "params_source"})
"""Fields a ``[models.KEY]`` table may hold: config.json names plus name, source, note and the
published parameter counts. Anything else is a typo and is rejected."""

_MODEL_TYPES = {"llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "llama",
                "deepseek_v3": "llama", "opt": "opt"}
"""config.json ``model_type`` -> :data:`ARCHITECTURES` entry (the layer family the code models)."""


def _parse_model(key: str, m: dict, sources: dict[str, Source]) -> DecoderConfig:
    where = f"models.{key}"
    unknown = set(m) - _MODEL_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_MODEL_KEYS)}")
    for field in ("source", "params_source"):
        if field in m and m[field] not in sources:
            raise ValueError(f"{where}: {field} {m[field]!r} is not in [sources]")
    if "source" not in m:
        raise ValueError(f"{where}: source None is not in [sources]")
    model_type = m.get("model_type", "llama")
    if model_type not in _MODEL_TYPES:
        raise ValueError(f"{where}: model_type {model_type!r} is not one of {sorted(_MODEL_TYPES)}")
    architecture = _MODEL_TYPES[model_type]
    if architecture == "opt" and m.get("word_embed_proj_dim", m["hidden_size"]) != m["hidden_size"]:
        raise ValueError(f"{where}: word_embed_proj_dim != hidden_size (OPT's projection layers) is not modelled")
    n_experts = m.get("num_local_experts", m.get("n_routed_experts"))
    expert_d_ff = m.get("moe_intermediate_size", m.get("intermediate_size") if "num_local_experts" in m else None)
    use_window = m.get("use_sliding_window", True)
    try:
        return DecoderConfig(
            name=m["name"], d_model=m["hidden_size"], n_heads=m["num_attention_heads"],
            n_kv_heads=m.get("num_key_value_heads", m["num_attention_heads"]),
            d_ff=m["ffn_dim"] if architecture == "opt" else m["intermediate_size"],
            source=sources[m["source"]], n_layers=m["num_hidden_layers"], vocab_size=m["vocab_size"],
            tie_embeddings=bool(m.get("tie_word_embeddings", False)),
            explicit_head_dim=m.get("head_dim"),
            sliding_window=m.get("sliding_window") if use_window else None,
            qkv_bias=model_type == "qwen2", architecture=architecture,
            kv_lora_rank=m.get("kv_lora_rank"), q_lora_rank=m.get("q_lora_rank"),
            qk_rope_head_dim=m.get("qk_rope_head_dim"), qk_nope_head_dim=m.get("qk_nope_head_dim"),
            v_head_dim=m.get("v_head_dim"), n_experts=n_experts, experts_per_token=m.get("num_experts_per_tok"),
            n_shared_experts=m.get("n_shared_experts", 0), expert_d_ff=expert_d_ff,
            first_dense_layers=m.get("first_k_dense_replace", 0),
            params_total=m.get("params_total"), params_active=m.get("params_active"),
            params_source=sources[m["params_source"]] if "params_source" in m else None,
            max_position_embeddings=m.get("max_position_embeddings"))
    except KeyError as e:
        raise ValueError(f"{where}: missing field {e}") from None
    except (ValueError, TypeError) as e:
        raise ValueError(f"{where}: {e}") from None


def _parse_models(data: dict) -> dict[str, DecoderConfig]:
    sources = parse_sources(data.get("sources", {}))
    return {key: _parse_model(key, m, sources) for key, m in data.get("models", {}).items()}


@functools.lru_cache(maxsize=None)
def _models() -> dict[str, DecoderConfig]:
    text = importlib.resources.files("accelbook").joinpath("data/models.toml").read_text("utf-8")
    return _parse_models(tomllib.loads(text))


def model_keys() -> tuple[str, ...]:
    """The keys of every model in ``accelbook/data/models.toml``, in file order.
    Taught in: "The KV cache" (bytes per token, model by model)."""
    return tuple(_models())


def get_model(key: str) -> DecoderConfig:
    """The model configuration ``key`` of ``accelbook/data/models.toml`` (e.g. ``"llama-2-7b"``).
    Raises ``KeyError`` for an unknown key (the message lists the known ones)."""
    checks.text("key", key)
    models = _models()
    if key not in models:
        raise KeyError(f"key={key!r} is not a model in models.toml; known: {', '.join(sorted(models))}")
    return models[key]


def as_model(name: str, value: Any) -> DecoderConfig:
    """``value`` as a :class:`DecoderConfig`: a config is returned as it is, a string is looked up
    in ``models.toml`` (:func:`get_model`). ``KeyError`` for an unknown key, ``TypeError`` for
    anything else; both name the argument ``name`` (as :func:`accelbook.specs.as_chip` does)."""
    if isinstance(value, DecoderConfig):
        return value
    if isinstance(value, str):
        try:
            return get_model(value)
        except KeyError:
            raise KeyError(f"{name}={value!r} is not a model in models.toml; known: "
                           f"{', '.join(model_keys())}") from None
    raise TypeError(f"{name}={checks.show(value)} must be a key of models.toml (e.g. 'llama-3-8b') or a "
                    f"decoder.DecoderConfig (got {type(value).__name__})")


LLAMA2_7B: DecoderConfig = get_model("llama-2-7b")
"""Llama-2-7B: d_model 4096, 32 heads, 32 KV heads, d_ff 11008, 32 layers, vocabulary 32000."""


def _bytes_per_value(value: Any) -> float:
    return checks.real("bytes_per_value", value, positive=True)


def layer_params(config: DecoderConfig) -> int:
    """Weights of one layer: ``d·(q + 2·kv) + q·d + 3·d·f`` in the matmuls (``q = n_heads ·
    head_dim``, equal to ``d`` unless the config gives another head_dim), ``q + 2·kv`` biases if
    ``qkv_bias``, plus ``2·d`` norm scales. Dense Llama-style configs only: raises ``ValueError``
    for latent attention, experts or an OPT layer (see :attr:`DecoderConfig.is_dense_llama`)."""
    _check_config(config, dense=True)
    d, q, kv, f = config.d_model, config.q_dim, config.kv_dim, config.d_ff
    bias = q + 2 * kv if config.qkv_bias else 0
    return d * (q + 2 * kv) + bias + q * d + 3 * d * f + 2 * d


def model_params(config: DecoderConfig) -> int:
    """Weights of the whole model: ``n_layers`` layers, the token embedding and the output
    projection (``vocab · d`` each; one matrix if ``tie_embeddings``) and the final norm (``d``).
    Dense Llama-style configs only (``ValueError`` otherwise, as :func:`layer_params`)."""
    _check_config(config, dense=True)
    embeddings = (1 if config.tie_embeddings else 2) * config.vocab_size * config.d_model
    return config.n_layers * layer_params(config) + embeddings + config.d_model


def _check_config(config: Any, dense: bool = False) -> None:
    if not isinstance(config, DecoderConfig):
        raise TypeError(f"config={config!r} must be a DecoderConfig (e.g. decoder.LLAMA2_7B)")
    if dense and not config.is_dense_llama:
        why = ("multi-head latent attention" if config.is_mla else
               f"a mixture of {config.n_experts} experts" if config.is_moe else
               "an OPT layer (LayerNorm, ReLU MLP of two matrices, biases)")
        raise ValueError(f"config={config.name!r} has {why}; layer_ops, layer_params and model_params "
                         "describe dense Llama-style layers only")


def layer_ops(config: DecoderConfig, batch: int, context: int, phase: str = "decode",
              bytes_per_value: float = 2) -> list[Op]:
    """The ops of one decoder layer for ``batch`` sequences and ``context`` tokens, in order.

    ``phase="decode"``: one new token per sequence attends to a KV cache of ``context`` tokens
    (``m = batch``). ``phase="prefill"``: ``context`` prompt tokens per sequence (``m = batch ·
    context``). Each value (weights, activations, KV cache) takes ``bytes_per_value`` bytes (2 for
    bf16). The formulas are in the module docstring. With a ``sliding_window`` ``w``, each query
    row attends to (and the cache holds) ``min(context, w)`` keys. Dense Llama-style configs only:
    ``ValueError`` for latent attention, experts or an OPT layer.
    """
    _check_config(config, dense=True)
    batch = positive_int("batch", batch)
    context = positive_int("context", context)
    checks.one_of("phase", phase, PHASES)
    b = _bytes_per_value(bytes_per_value)

    d, f, h, dh, kv = config.d_model, config.d_ff, config.n_heads, config.head_dim, config.kv_dim
    qd = config.q_dim  # width of the queries (and of the attention output) of one token
    q = 1 if phase == "decode" else context  # query rows per sequence
    m = batch * q  # tokens processed
    c = context if config.sliding_window is None else min(context, config.sliding_window)  # keys per row
    heads = batch * h

    def matmul(name, k, n, count=1, bias=0):
        params = count * k * n + bias
        return Op(name, "matmul", 2 * m * k * n * count, b * (params + m * k + count * m * n),
                  (m, k, n), count, params)

    def elementwise(name, flops, values_in, values_out, params=0):
        return Op(name, "elementwise", flops, b * (values_in + values_out + params), None, 1, params)

    kv_cache = batch * c * kv  # values of K (or of V) for all sequences
    scores = heads * q * c
    return [
        elementwise("attn_norm", 4 * m * d, m * d, m * d, params=d),
        matmul("qkv_proj", d, qd + 2 * kv, bias=qd + 2 * kv if config.qkv_bias else 0),
        elementwise("rope", 3 * m * (qd + kv), m * (qd + kv), m * (qd + kv)),
        Op("attn_scores", "attention", 2 * heads * q * dh * c, b * (m * qd + kv_cache + scores),
           (q, dh, c), heads),
        elementwise("softmax", 5 * scores, scores, scores),
        Op("attn_values", "attention", 2 * heads * q * c * dh, b * (scores + kv_cache + m * qd),
           (q, c, dh), heads),
        matmul("o_proj", qd, d),
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
    """Bytes of the KV cache for ``tokens`` cached tokens (all sequences together) over all layers:
    ``n_layers · kv_width · bytes_per_value`` per token, where :attr:`DecoderConfig.kv_width` is
    ``2 · kv_dim`` (a key and a value per layer) or, with latent attention, the latent plus the
    RoPE key. A sliding window is not applied here: ``tokens`` counts the tokens held. The chapter
    "The KV cache" has the full model (:mod:`accelbook.models.kvcache`).
    Taught in: "Introduction" (does it fit?)."""
    _check_config(config)
    tokens = positive_int("tokens", tokens)
    return float(config.n_layers) * config.kv_width * _bytes_per_value(bytes_per_value) * tokens


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

    model: str = "llama-2-7b"
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


__all__ = ["ARCHITECTURES", "EXAMPLE", "KINDS", "LLAMA2_7B", "PHASES", "DecoderConfig", "Op", "Prediction",
           "RunningExample", "crossing_batch", "get_model", "kv_cache_bytes", "layer_ops", "layer_params",
           "as_model", "model_keys", "model_params", "predict", "totals"]
