"""A small decoder-only transformer in JAX with a KV cache, and its decode step timed against batch
size and context length.

**The layer.** Llama-style, as :class:`accelbook.models.decoder.DecoderConfig` describes it: RMSNorm
(with a scale vector), one fused q/k/v projection, rotary position encoding (RoPE, the
"rotate half" form of the Hugging Face Llama code) on queries and keys, attention of ``n_heads`` query
heads to ``n_kv_heads`` grouped key/value heads (query head ``j`` reads KV head ``j // g``, ``g =
n_heads / n_kv_heads``), an output projection, RMSNorm, a SwiGLU MLP (gate and up fused) and two
residual additions; no biases. ``n_layers`` such layers are stacked. There is no token embedding
and no output head: a step takes one activation vector of width ``d_model`` per sequence and
returns one. Weights are random (seeded), in the ``dtype`` asked for ('fp32', 'bf16' or 'fp16');
matmuls run in that dtype (JAX's default precision: TF32 for fp32 on recent NVIDIA GPUs), norms,
rotary encoding and softmax in float32, as that code does.

**The cache.** Per layer, a key array and a value array of shape ``(batch, n_kv_heads,
max_context, head_dim)``, allocated once (:func:`empty_cache`, :func:`prefill`). A decode step
(:func:`decode_step`) takes one token per sequence at position ``pos`` (the same for the whole
batch), writes its rotated key and its value at ``pos``, and attends to positions ``0..pos``; the
others are masked. The step is jitted once per ``(batch, max_context)`` shape and the cache
buffers are donated where the backend honours donation (:func:`donation_supported`), so XLA
updates them in place instead of copying the whole cache every step.

**The measurement.** :func:`decode_step_times` times the step at several batch sizes and one
context, :func:`context_sweep` at one batch and several contexts, each with the one harness
(:func:`accelbook.measure.harness.time_call`). A measured step reads a full cache: ``max_context
= context`` and ``pos = context − 1``, so each sequence attends to ``context`` tokens, its own new
one included, as :func:`accelbook.models.decoder.layer_ops` counts them. Every record carries the
FLOP ``F`` and bytes ``Q`` of one step (``layer_ops × n_layers``: the roofline's inputs) and is
checked against the NumPy reference (:func:`reference_forward`) before it is reported.
:func:`sized_config` shrinks a real model to the device, :func:`default_sweeps` picks the sizes.

Taught in: "Batching: the utilization lever (and the latency tax)" (chapter 08) and "The KV
cache" (chapter 09).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any

import numpy as np

from accelbook import checks
from accelbook.checks import positive_int
from accelbook.measure.harness import (_TOLERANCE, MAX_REPEATS, PROBE_BYTES_LIMIT, MeasurementError, Timing,
                                       _device_labels, time_call)
from accelbook.models import decoder
from accelbook.models.decoder import DecoderConfig
from accelbook.specs import itemsize

DTYPES = ("fp32", "bf16", "fp16")
"""The dtypes the stack runs in (weights, activations and cache)."""

_JAX_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

BACKENDS = ("cpu", "gpu", "tpu")

CPU_MAX_WIDTH = 1024
"""The widest query projection (``n_heads · head_dim``) :func:`sized_config` keeps on a CPU."""
CPU_LAYERS = 2
"""Layers :func:`sized_config` keeps on a CPU: one step of width 1024 then takes milliseconds."""
ACCEL_MAX_LAYERS = 8
"""The most layers :func:`sized_config` keeps on a GPU or TPU. Each added layer lengthens the
compilation of every (batch, context) shape, while one step already outlasts its one dispatch."""
MEMORY_FRACTION = 0.5
"""Share of the device's memory that the weights and the largest cache of a sweep may take."""
UNKNOWN_MEMORY = 8 * 2**30
"""Memory (bytes) :func:`sized_config` assumes for a GPU or TPU whose size is not known (8 GiB):
an assumption that keeps the stack small, not a property of any chip."""

RMS_EPS = 1e-5
"""The epsilon of RMSNorm, ``x / sqrt(mean(x²) + eps)`` (a convention; it does not change the
time)."""


# -- sizes ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sweeps:
    """The sizes a chapter measures on one backend: ``batches`` at ``batch_context`` tokens (the
    batch sweep), and ``contexts`` at ``context_batch`` sequences (the context sweep). Counts of
    sequences and tokens. Built by :func:`default_sweeps`."""

    backend: str
    batches: tuple[int, ...]
    batch_context: int
    contexts: tuple[int, ...]
    context_batch: int

    @property
    def tokens(self) -> int:
        """The most tokens one step's cache holds in either sweep (all sequences together)."""
        return max(max(self.batches) * self.batch_context, self.context_batch * max(self.contexts))


_SWEEPS = {
    # CPU: a step of the sized stack takes milliseconds; both sweeps together run in seconds. The
    # batch sweep's short context keeps the cache of its largest batch near the weights' size.
    "cpu": Sweeps("cpu", (1, 2, 4, 8, 16, 32, 64), 128, (128, 256, 512, 1024, 2048, 4096), 4),
    "gpu": Sweeps("gpu", (1, 2, 4, 8, 16, 32, 64, 128, 256, 512), 256,
                  (256, 512, 1024, 2048, 4096, 8192, 16384), 8),
    "tpu": Sweeps("tpu", (1, 2, 4, 8, 16, 32, 64, 128, 256, 512), 256,
                  (256, 512, 1024, 2048, 4096, 8192, 16384), 8),
}


def _backend(backend: Any) -> tuple[str, float | None]:
    """('cpu'|'gpu'|'tpu', memory bytes or None) from a backend name or a DeviceInfo."""
    if hasattr(backend, "backend") and hasattr(backend, "memory_bytes"):
        return _backend_name(backend.backend), backend.memory_bytes
    return _backend_name(backend), None


def _backend_name(backend: Any) -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend={checks.show(backend)} is not known; allowed: cpu, gpu, tpu, "
                         "or a DeviceInfo (accelbook.device.current())")
    return backend


def default_sweeps(backend: Any) -> Sweeps:
    """The batch and context sweeps for ``backend`` ('cpu', 'gpu', 'tpu' or a DeviceInfo).

    CPU: batches 1 to 64 at 128 tokens, contexts 128 to 4096 tokens at batch 4 (each sweep of
    the :func:`sized_config` stack runs in 10 to 20 s on two shared cores, most of it compiling
    one step per shape). GPU and TPU: batches 1 to 512
    at 256 tokens, contexts 256 to 16384 tokens at batch 8. Raises ``ValueError`` for another
    backend. Taught in: "Batching" and "The KV cache".
    """
    return _SWEEPS[_backend(backend)[0]]


def default_dtype(backend: Any) -> str:
    """The dtype the stack runs in by default: 'fp32' on a CPU (which has no fast bf16 matmul in
    XLA), 'bf16' on a GPU or TPU (the dtype models are served in), and 'fp16' on a GPU whose spec
    sheet has no bf16 peak but an fp16 one (the T4: its tensor cores take fp16 only; bf16 would be
    emulated). A backend name alone ('gpu') gives 'bf16'; pass a DeviceInfo to get the chip's
    choice. Taught in: "Batching"."""
    name, _memory = _backend(backend)
    if name == "cpu":
        return "fp32"
    chip = getattr(backend, "chip", None)
    if chip is not None and "bf16" not in chip.peak_flops and "fp16" in chip.peak_flops:
        return "fp16"
    return "bf16"


def _check_runnable(config: Any) -> DecoderConfig:
    if not isinstance(config, DecoderConfig):
        raise TypeError(f"config={checks.show(config)} must be a DecoderConfig (e.g. decoder.EXAMPLE.config)")
    if not config.is_dense_llama:
        raise ValueError(f"config={config.name!r} is not a dense Llama-style layer (latent attention, experts or "
                         "OPT); the JAX stack runs dense Llama-style layers only")
    return config


def _check_stack_config(config: Any) -> DecoderConfig:
    config = _check_runnable(config)
    if config.sliding_window is not None:
        raise ValueError(f"config={config.name!r} has sliding_window={config.sliding_window}: the JAX stack "
                         "attends to the whole cache; use sized_config(...) or "
                         "dataclasses.replace(config, sliding_window=None)")
    if config.qkv_bias:
        raise ValueError(f"config={config.name!r} has q/k/v biases: the JAX stack has no biases; use "
                         "sized_config(...) or dataclasses.replace(config, qkv_bias=False)")
    if config.head_dim % 2:
        raise ValueError(f"config={config.name!r} has head_dim={config.head_dim}: rotary encoding needs an even "
                         "head_dim")
    return config


def _layer_bytes(config: DecoderConfig, tokens: int, bytes_per_value: float) -> float:
    """Bytes of one layer's weights plus its cache of ``tokens`` tokens."""
    return bytes_per_value * (decoder.layer_params(config) + tokens * 2 * config.kv_dim)


def sized_config(config: DecoderConfig, backend: Any, memory_bytes: float | None = None, *,
                 dtype: str | None = None, tokens: int | None = None) -> DecoderConfig:
    """``config`` sized for one decode step on ``backend``: same head width, same number of query
    heads per KV head, fewer layers and on a CPU narrower layers.

    ``backend`` is 'cpu', 'gpu', 'tpu' or a :class:`accelbook.device.DeviceInfo` (whose
    :attr:`~accelbook.device.DeviceInfo.memory_bytes` is then the default ``memory_bytes``). The rule:

    * CPU: ``n_kv_heads`` becomes the most KV heads (at least one, at most the config's) whose
      query heads, ``n_heads = g · n_kv_heads`` with ``g = n_heads / n_kv_heads`` unchanged, are at
      most :data:`CPU_MAX_WIDTH` values wide (``n_heads · head_dim ≤ 1024``; a config whose single
      group is wider keeps one group). ``d_model`` and ``d_ff`` shrink by the same factor as the
      heads (rounded to integers); :data:`CPU_LAYERS` layers.
    * GPU and TPU: the real widths. Layers: as many as fit :data:`MEMORY_FRACTION` of
      ``memory_bytes`` with their weights and a cache of ``tokens`` tokens each (``dtype``'s bytes
      per value), at least 1, at most :data:`ACCEL_MAX_LAYERS` and the config's own count.
      ``memory_bytes`` None means :data:`UNKNOWN_MEMORY`.
    * Everywhere: ``memory_bytes``, when given, also caps the layers as above (at least 1).
      ``tokens`` defaults to :attr:`Sweeps.tokens` of :func:`default_sweeps`, ``dtype`` to
      :func:`default_dtype`.

    The stack attends to the whole cache and has no biases, so a sliding window and q/k/v biases
    are dropped; published parameter counts are dropped (they no longer apply). Raises
    ``ValueError`` naming the argument (an unknown backend, a latent-attention, mixture-of-experts
    or OPT config, a bad size) and ``TypeError`` for a ``config`` that is not a DecoderConfig.
    Taught in: "Batching" and "The KV cache" (the measured stack).
    """
    config = _check_runnable(config)
    name, info_memory = _backend(backend)
    if memory_bytes is None:
        memory_bytes = info_memory
    if memory_bytes is not None:
        memory_bytes = checks.real("memory_bytes", memory_bytes, minimum=2**20)  # at least 1 MiB
    dtype = default_dtype(name) if dtype is None else _check_dtype(dtype)
    tokens = default_sweeps(name).tokens if tokens is None else positive_int("tokens", tokens, maximum=2**40)

    hd, group = config.head_dim, config.n_heads // config.n_kv_heads
    n_kv, d, d_ff = config.n_kv_heads, config.d_model, config.d_ff
    explicit = config.explicit_head_dim
    if name == "cpu":
        n_kv = max(1, min(config.n_kv_heads, CPU_MAX_WIDTH // (group * hd)))
        scale = n_kv / config.n_kv_heads
        if config.d_model == config.q_dim:
            d, explicit = group * n_kv * hd, None
        else:
            d, explicit = max(1, round(config.d_model * scale)), hd
        d_ff = max(1, round(config.d_ff * scale))
        layers = min(CPU_LAYERS, config.n_layers)
    else:
        layers = min(ACCEL_MAX_LAYERS, config.n_layers)
        if memory_bytes is None:
            memory_bytes = UNKNOWN_MEMORY
    sized = dataclasses.replace(config, d_model=d, n_heads=group * n_kv, n_kv_heads=n_kv, d_ff=d_ff,
                                explicit_head_dim=explicit, n_layers=layers, sliding_window=None, qkv_bias=False,
                                params_total=None, params_active=None, params_source=None)
    if memory_bytes is not None:
        fit = int(MEMORY_FRACTION * memory_bytes // _layer_bytes(sized, tokens, itemsize(dtype)))
        sized = dataclasses.replace(sized, n_layers=max(1, min(layers, fit)))
    if (sized.n_layers, sized.d_model) != (config.n_layers, config.d_model):
        label = f"{config.name}: {sized.n_layers} layer{'s' if sized.n_layers > 1 else ''} of width {sized.d_model}"
        sized = dataclasses.replace(sized, name=label)
    return sized


def _check_dtype(dtype: Any) -> str:
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ValueError(f"dtype={checks.show(dtype)} cannot be run by the decoder stack; allowed: "
                         f"{', '.join(DTYPES)}")
    return dtype


# -- the stack --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Stack:
    """Random weights of a decoder stack on JAX's default device. Built by :func:`make_stack`.

    ``layers`` holds one dict per layer: ``attn_norm`` (d,), ``wqkv`` (d, q + 2·kv), ``wo`` (q, d),
    ``mlp_norm`` (d,), ``wgu`` (d, 2·f: gate, then up) and ``wd`` (f, d), with ``d = d_model``, ``q
    = n_heads · head_dim``, ``kv = n_kv_heads · head_dim`` and ``f = d_ff``. ``rope_base`` is the
    base of the rotary frequencies, ``base^(−2i/head_dim)``.
    """

    config: DecoderConfig
    dtype: str
    seed: int
    rope_base: float
    layers: tuple

    @property
    def dims(self) -> tuple[int, int, int, float]:
        """``(n_heads, n_kv_heads, head_dim, rope_base)``: what a jitted step needs besides shapes."""
        c = self.config
        return (c.n_heads, c.n_kv_heads, c.head_dim, self.rope_base)

    @property
    def weight_bytes(self) -> float:
        """Bytes of all weights: ``n_layers · layer_params · itemsize(dtype)``."""
        return float(self.config.n_layers * decoder.layer_params(self.config) * itemsize(self.dtype))

    @functools.cached_property
    def host_layers(self) -> tuple:
        """The weights copied to the host as NumPy arrays in the stack's dtype (made once)."""
        return tuple({k: np.asarray(v) for k, v in layer.items()} for layer in self.layers)


def make_stack(config: DecoderConfig, dtype: str = "fp32", *, seed: int = 0, rope_base: float = 10000.0) -> Stack:
    """Random weights for ``config.n_layers`` layers of ``config``, in ``dtype``, on the default device.

    Matrices are Gaussian with variance ``1 / rows`` (so activations stay of order 1 through each
    matmul), norm scales ``1 + 0.1·N(0, 1)``; drawn from ``seed`` with NumPy on a CPU backend and
    with ``jax.random`` on the device elsewhere (the same seed gives the same weights on the same
    backend). ``rope_base`` (> 1) sets the rotary frequencies; 10000 is the base of the original
    rotary encoding (RoFormer, Su et al., arXiv 2104.09864; it does not change the time). Weight memory is
    limited to the probes' 8 GiB on a CPU and to 70 % of the device's memory elsewhere. Raises
    ``ValueError`` naming the argument, ``TypeError`` for a config that is not a DecoderConfig.
    Taught in: "Batching" and "The KV cache".
    """
    import jax
    import jax.numpy as jnp

    config = _check_stack_config(config)
    dtype = _check_dtype(dtype)
    seed = checks.nonneg_int("seed", seed, maximum=2**32 - 1)
    rope_base = checks.real("rope_base", rope_base, minimum=1.0 + 1e-9, maximum=1e12)
    n = config.n_layers * decoder.layer_params(config) * itemsize(dtype)
    checks.size_limit("config", config.name, n, _memory_limit(), "bytes of weights")
    d, q, kv, f = config.d_model, config.q_dim, config.kv_dim, config.d_ff
    jdtype = jnp.dtype(_JAX_NAMES[dtype])
    shapes = {"attn_norm": (d,), "wqkv": (d, q + 2 * kv), "wo": (q, d), "mlp_norm": (d,), "wgu": (d, 2 * f),
              "wd": (f, d)}
    on_cpu = jax.default_backend() == "cpu"
    key, rng = jax.random.PRNGKey(seed), np.random.default_rng(seed)
    layers = []
    for i in range(config.n_layers):
        layer = {}
        for j, (name, shape) in enumerate(shapes.items()):
            if on_cpu:  # NumPy draws a CPU-sized stack in a fraction of jax.random's time on a CPU
                z = rng.standard_normal(shape, dtype=np.float32)
            else:  # drawn on the device: no host-to-device copy of layer-sized weights
                z = jax.random.normal(jax.random.fold_in(key, 16 * i + j), shape, jnp.float32)
            w = 1.0 + 0.1 * z if len(shape) == 1 else z * np.float32(1 / math.sqrt(shape[0]))
            layer[name] = jnp.asarray(w, jdtype)
        layers.append(layer)
    return Stack(config, dtype, seed, float(rope_base), tuple(layers))


DEVICE_FRACTION = 0.7
"""Share of a device's memory a stack and its cache may take: inside the 75 % of a GPU's memory
that JAX preallocates by default (JAX documentation, "GPU memory allocation"), with room left for
the step's activations."""


def _memory_limit() -> float:
    """Bytes a stack and its cache may take: :data:`DEVICE_FRACTION` of the device's memory where
    the spec database knows it, else the probes' limit (8 GiB of host memory)."""
    from accelbook import device

    memory = device.current().memory_bytes
    return DEVICE_FRACTION * memory if memory else float(PROBE_BYTES_LIMIT)


def _check_stack(stack: Any) -> Stack:
    return checks.instance("stack", stack, Stack)


# -- the jitted computations ------------------------------------------------------------------------

def _rms(x, scale):
    import jax
    import jax.numpy as jnp

    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + RMS_EPS)
    return (y * scale.astype(jnp.float32)).astype(x.dtype)


def _rope(x, positions, head_dim: int, base: float):
    """Rotate ``x`` (..., positions, heads, head_dim) by its positions (int array of that axis)."""
    import jax.numpy as jnp

    half = head_dim // 2
    inv = base ** (-jnp.arange(half, dtype=jnp.float32) * 2.0 / head_dim)
    angles = positions.astype(jnp.float32)[:, None] * inv[None, :]  # (T, half)
    cos = jnp.cos(angles)[:, None, :]
    sin = jnp.sin(angles)[:, None, :]
    x32 = x.astype(jnp.float32)
    x1, x2 = x32[..., :half], x32[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def _layer(w, x, k_cache, v_cache, start, dims):
    """One layer on ``x`` (b, T, d) at positions start..start+T−1; returns (x, k_cache, v_cache).

    The new keys and values are written at ``start``; queries attend to cache positions ``≤`` their
    own, every other position is masked."""
    import jax
    import jax.numpy as jnp

    h, n_kv, hd, base = dims
    b, t, _ = x.shape
    g = h // n_kv
    ctx = k_cache.shape[2]
    qkv = _rms(x, w["attn_norm"]) @ w["wqkv"]
    q, k, v = jnp.split(qkv, [h * hd, (h + n_kv) * hd], axis=-1)
    positions = start + jnp.arange(t)
    q = _rope(q.reshape(b, t, h, hd), positions, hd, base)
    k = _rope(k.reshape(b, t, n_kv, hd), positions, hd, base)
    v = v.reshape(b, t, n_kv, hd)
    k_cache = jax.lax.dynamic_update_slice(k_cache, k.transpose(0, 2, 1, 3), (0, 0, start, 0))
    v_cache = jax.lax.dynamic_update_slice(v_cache, v.transpose(0, 2, 1, 3), (0, 0, start, 0))
    qg = q.reshape(b, t, n_kv, g, hd)
    # the products in the stack's dtype (XLA's CPU dots take no bf16 x bf16 -> f32), the softmax in float32
    s = jnp.einsum("btkgd,bkcd->bkgtc", qg, k_cache).astype(jnp.float32) / math.sqrt(hd)
    visible = jnp.arange(ctx)[None, :] <= positions[:, None]  # (T, ctx)
    s = jnp.where(visible, s, -jnp.inf)
    p = jax.nn.softmax(s, axis=-1).astype(x.dtype)
    o = jnp.einsum("bkgtc,bkcd->btkgd", p, v_cache)
    x = x + o.reshape(b, t, h * hd) @ w["wo"]
    gate, up = jnp.split(_rms(x, w["mlp_norm"]) @ w["wgu"], 2, axis=-1)
    x = x + (jax.nn.silu(gate) * up) @ w["wd"]
    return x, k_cache, v_cache


def _stack_apply(layers, cache, x, start, dims):
    ks, vs = [], []
    for w, k, v in zip(layers, cache[0], cache[1]):
        x, k, v = _layer(w, x, k, v, start, dims)
        ks.append(k)
        vs.append(v)
    return x, (tuple(ks), tuple(vs))


def _decode(layers, cache, x, pos, dims):
    out, cache = _stack_apply(layers, cache, x[:, None, :], pos, dims)
    return out[:, 0, :], cache


@functools.lru_cache(maxsize=None)
def _jitted_decode(donate: bool):
    """The decode step, jitted once per (batch, max_context) shape (and dims and dtype)."""
    import jax

    return jax.jit(_decode, static_argnums=4, donate_argnums=(1,) if donate else ())


@functools.lru_cache(maxsize=None)
def _jitted_prefill():
    import jax
    import jax.numpy as jnp

    def prefill_fn(layers, x, max_context, dims):
        b, _t, _d = x.shape
        _h, n_kv, hd, _base = dims
        zeros = tuple(jnp.zeros((b, n_kv, max_context, hd), x.dtype) for _ in layers)
        return _stack_apply(layers, (zeros, zeros), x, 0, dims)

    return jax.jit(prefill_fn, static_argnums=(2, 3))


def donation_supported(backend: str | None = None) -> bool:
    """True if the default JAX backend honours buffer donation (``donate_argnums``): a donated
    input is then deleted and its memory reused for the output, so a step updates the KV cache in
    place. Probed once per process with a 16-element update; the probe's warning, if any, is
    swallowed. ``backend`` names the backend the answer is for ('cpu', 'gpu', 'tpu'; None: the
    default one); another backend than the default is a ``ValueError``.
    Taught in: "The KV cache" (no copy of the cache per step).
    """
    import jax
    import jax.numpy as jnp

    default = {"cuda": "gpu", "rocm": "gpu"}.get(jax.default_backend(), jax.default_backend())
    if backend is not None and _backend_name(backend) != default:
        raise ValueError(f"backend={backend!r} is not JAX's default backend ({default!r})")
    return _donation_probe()


@functools.lru_cache(maxsize=None)
def _donation_probe() -> bool:
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda c, x: c.at[0].set(x), donate_argnums=0)
    c = jnp.zeros(16, jnp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jax.block_until_ready(f(c, jnp.float32(1)))
    return bool(c.is_deleted())


# -- the cache and the steps ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class KVCache:
    """The KV cache of a stack: ``k[i]`` and ``v[i]`` of layer ``i``, each of shape ``(batch,
    n_kv_heads, max_context, head_dim)`` in the stack's dtype (keys stored already rotated).
    Built by :func:`empty_cache`, :func:`prefill` and :func:`decode_step`; a cache passed to
    :func:`decode_step` is donated (deleted) where :func:`donation_supported`."""

    k: tuple
    v: tuple

    @property
    def batch(self) -> int:
        return int(self.k[0].shape[0])

    @property
    def max_context(self) -> int:
        return int(self.k[0].shape[2])

    @property
    def nbytes(self) -> float:
        """Bytes of all keys and values of all layers."""
        return float(sum(a.size * a.dtype.itemsize for a in (*self.k, *self.v)))


def _cache_bytes(stack: Stack, batch: int, max_context: int) -> float:
    c = stack.config
    return float(2 * c.n_layers * batch * max_context * c.kv_dim * itemsize(stack.dtype))


def empty_cache(stack: Stack, batch: int, max_context: int) -> KVCache:
    """A zeroed KV cache for ``batch`` sequences of up to ``max_context`` tokens (2 · n_layers
    arrays of ``(batch, n_kv_heads, max_context, head_dim)`` values in the stack's dtype). Limited
    to 70 % of the device's memory (8 GiB on a CPU) with the weights; ``ValueError`` naming the
    argument otherwise. Taught in: "The KV cache"."""
    import jax.numpy as jnp

    stack = _check_stack(stack)
    batch = positive_int("batch", batch)
    max_context = positive_int("max_context", max_context)
    _check_fits(stack, batch, max_context)
    c = stack.config
    shape = (batch, c.n_kv_heads, max_context, c.head_dim)
    jdtype = jnp.dtype(_JAX_NAMES[stack.dtype])
    return KVCache(tuple(jnp.zeros(shape, jdtype) for _ in range(c.n_layers)),
                   tuple(jnp.zeros(shape, jdtype) for _ in range(c.n_layers)))


def _check_fits(stack: Stack, batch: int, max_context: int) -> None:
    needed = _cache_bytes(stack, batch, max_context) + stack.weight_bytes
    limit = _memory_limit()
    if not needed <= limit:
        raise ValueError(f"batch={batch} and max_context={max_context} are too large: the weights and KV cache "
                         f"need {needed:.3g} bytes, above the limit of {limit:.3g} (70 % of the device's memory, "
                         "or 8 GiB on a CPU)")


def _activations(name: str, x: Any, stack: Stack, ndim: int):
    """``x`` as a JAX array in the stack's dtype, checked: shape (batch, d_model) or (batch, tokens,
    d_model), real and finite."""
    import jax.numpy as jnp

    arr = x if hasattr(x, "devices") else _host(x, name)
    shape = tuple(arr.shape)
    if len(shape) != ndim or shape[-1] != stack.config.d_model or 0 in shape:
        want = "(batch, d_model)" if ndim == 2 else "(batch, tokens, d_model)"
        raise ValueError(f"{name} of shape {shape} must be an array of shape {want} with d_model="
                         f"{stack.config.d_model}")
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise ValueError(f"{name} of dtype {arr.dtype} must hold real numbers")
    out = jnp.asarray(arr, jnp.dtype(_JAX_NAMES[stack.dtype]))
    if not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError(f"{name} holds NaN or inf (or values too large for {stack.dtype}); it must be finite")
    return out


def decode_step(stack: Stack, cache: KVCache, x: Any, pos: int) -> tuple[Any, KVCache]:
    """One decode step: ``x`` (batch, d_model), one token per sequence at position ``pos`` (the
    same for every sequence), through every layer; returns ``(out, cache)``, ``out`` (batch,
    d_model) in the stack's dtype and the cache with each layer's new key and value at ``pos``.

    Each query attends to cache positions ``0..pos``; positions after ``pos`` are masked, whatever
    they hold. The step is jitted once per ``(batch, max_context)`` shape; ``cache`` is donated
    where :func:`donation_supported` (it must not be used again: use the returned one). Raises
    ``ValueError`` for ``pos`` outside ``[0, max_context)``, an ``x`` of the wrong shape or a cache
    of another batch. Taught in: "The KV cache".
    """
    import jax.numpy as jnp

    stack = _check_stack(stack)
    checks.instance("cache", cache, KVCache)
    if len(cache.k) != stack.config.n_layers or cache.k[0].shape[1:] != (
            stack.config.n_kv_heads, cache.max_context, stack.config.head_dim):
        raise ValueError(f"cache of {len(cache.k)} layers of shape {cache.k[0].shape} does not belong to "
                         f"the stack of config {stack.config.name!r}")
    pos = checks.nonneg_int("pos", pos, maximum=cache.max_context - 1)
    x = _activations("x", x, stack, 2)
    if x.shape[0] != cache.batch:
        raise ValueError(f"x of shape {x.shape} has {x.shape[0]} sequences; the cache holds {cache.batch}")
    out, (k, v) = _jitted_decode(donation_supported())(stack.layers, (cache.k, cache.v), x,
                                                         jnp.int32(pos), stack.dims)
    return out, KVCache(k, v)


def prefill(stack: Stack, x: Any, max_context: int | None = None) -> tuple[Any, KVCache]:
    """Run ``x`` (batch, tokens, d_model), the first ``tokens`` tokens of each sequence at positions
    0 to tokens − 1, through the stack at once with a causal mask; returns ``(out, cache)``:
    ``out`` (batch, tokens, d_model) and a new cache of ``max_context`` positions (default:
    ``tokens``) holding the keys and values of those tokens, ready for :func:`decode_step` at
    ``pos = tokens``. Raises ``ValueError`` if ``max_context < tokens`` or ``x`` has the wrong shape.
    Taught in: "The KV cache" (prefill, then decode)."""
    stack = _check_stack(stack)
    x = _activations("x", x, stack, 3)
    tokens = int(x.shape[1])
    max_context = tokens if max_context is None else positive_int("max_context", max_context)
    if max_context < tokens:
        raise ValueError(f"max_context={max_context} must be at least the {tokens} tokens of x")
    _check_fits(stack, int(x.shape[0]), max_context)
    out, (k, v) = _jitted_prefill()(stack.layers, x, max_context, stack.dims)
    return out, KVCache(k, v)


# -- the NumPy reference ----------------------------------------------------------------------------

def reference_forward(stack: Stack, x: Any, past: Any = None) -> tuple[np.ndarray, list]:
    """The stack in NumPy float64, written independently of the JAX code: ``x`` (batch, tokens,
    d_model) at positions ``P .. P + tokens − 1`` where ``P`` is the length of ``past``; returns
    ``(out, new_past)``.

    ``past`` is None (no earlier tokens) or one ``(keys, values)`` pair per layer, each (batch,
    n_kv_heads, P, head_dim) with keys already rotated (as a :class:`KVCache` stores them);
    ``new_past`` is the same with the new tokens appended. Attention is recomputed from scratch:
    every KV head is repeated for its query heads (``np.repeat``), each token attends to every
    earlier position and itself. Weights are the stack's (rounded to its dtype), upcast one matrix
    at a time. Raises ``ValueError`` for shapes that do not fit the stack.
    Taught in: "The KV cache" (the reference the JAX step is checked against).
    """
    return _reference(stack, x, past, keep=True)


def _reference(stack: Stack, x: Any, past: Any, keep: bool) -> tuple[np.ndarray, list]:
    """:func:`reference_forward`; ``keep=False`` returns no new past (each layer's keys and values
    are dropped once used, so a long cache is held on the host one layer at a time)."""
    stack = _check_stack(stack)
    c = stack.config
    h, n_kv, hd = c.n_heads, c.n_kv_heads, c.head_dim
    x = _host(x, "x")
    if x.ndim != 3 or x.shape[-1] != c.d_model or 0 in x.shape:
        raise ValueError(f"x of shape {x.shape} must be (batch, tokens, d_model={c.d_model}), not empty")
    b, t, _ = x.shape
    if past is None:
        past = [(np.zeros((b, n_kv, 0, hd)), np.zeros((b, n_kv, 0, hd)))] * c.n_layers
    past = checks.sequence("past", past, nonempty=False)
    if len(past) != c.n_layers:
        raise ValueError(f"past has {len(past)} layers; the stack has {c.n_layers}")
    for i, pair in enumerate(past):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"past[{i}]={checks.show(pair)} must be a (keys, values) pair of arrays")
    shape = np.shape(past[0][0])
    start = shape[2] if len(shape) == 4 else 0
    pos = start + np.arange(t)
    inv = stack.rope_base ** (-np.arange(hd // 2) * 2.0 / hd)
    ang = pos[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)  # (t, hd/2)

    def rotate(z):  # z (b, t, heads, hd)
        z1, z2 = z[..., :hd // 2], z[..., hd // 2:]
        cs, sn = cos[None, :, None, :], sin[None, :, None, :]
        return np.concatenate([z1 * cs - z2 * sn, z2 * cs + z1 * sn], axis=-1)

    def norm(z, scale):
        return z / np.sqrt(np.mean(z * z, axis=-1, keepdims=True) + RMS_EPS) * scale

    new_past = []
    for i, (w, (pk, pv)) in enumerate(zip(stack.host_layers, past)):
        # one layer's past at a time on the host, in float64
        pk, pv = _host(pk, f"past[{i}]"), _host(pv, f"past[{i}]")
        if pk.shape != (b, n_kv, start, hd) or pv.shape != pk.shape:
            raise ValueError(f"past[{i}] has shapes {pk.shape}, {pv.shape}; need (batch={b}, n_kv_heads={n_kv}, "
                             f"{start}, head_dim={hd}) for keys and values")
        f64 = lambda name: np.asarray(w[name], np.float64)  # noqa: E731
        y = norm(x, f64("attn_norm")) @ f64("wqkv")
        q = rotate(y[..., :h * hd].reshape(b, t, h, hd))
        k = rotate(y[..., h * hd:(h + n_kv) * hd].reshape(b, t, n_kv, hd))
        v = y[..., (h + n_kv) * hd:].reshape(b, t, n_kv, hd)
        keys = np.concatenate([pk, k.transpose(0, 2, 1, 3)], axis=2)  # (b, n_kv, start + t, hd)
        values = np.concatenate([pv, v.transpose(0, 2, 1, 3)], axis=2)
        if keep:
            new_past.append((keys, values))
        # (b, h, start + t, hd): query head j reads KV head j // g (no copy when g = 1)
        keys_h = keys if h == n_kv else np.repeat(keys, h // n_kv, axis=1)
        values_h = values if h == n_kv else np.repeat(values, h // n_kv, axis=1)
        attn = np.empty((b, t, h, hd))
        for s in range(t):  # token s sees positions 0 .. start + s
            seen = start + s + 1
            scores = np.einsum("bhd,bhcd->bhc", q[:, s], keys_h[:, :, :seen]) / np.sqrt(hd)
            scores -= scores.max(axis=-1, keepdims=True)
            p = np.exp(scores)
            p /= p.sum(axis=-1, keepdims=True)
            attn[:, s] = np.einsum("bhc,bhcd->bhd", p, values_h[:, :, :seen])
        x = x + attn.reshape(b, t, h * hd) @ f64("wo")
        gu = norm(x, f64("mlp_norm")) @ f64("wgu")
        gate, up = gu[..., :c.d_ff], gu[..., c.d_ff:]
        x = x + (gate / (1 + np.exp(-gate)) * up) @ f64("wd")
    return x, new_past


def _host(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception:
        raise ValueError(f"{name}={checks.show(value)} must be an array of real numbers") from None
    if arr.dtype.kind not in "fiu" and str(arr.dtype) not in ("bfloat16",):
        raise ValueError(f"{name}={checks.show(value)} must be an array of real numbers")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf; it must be finite")
    return arr


# -- the measurement --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StepTime:
    """One timed decode step: ``batch`` sequences, each attending to ``context`` tokens (its new
    one included), through ``config.n_layers`` layers of ``config`` in ``dtype``.

    ``timing`` holds the seconds per step (the harness's :class:`~accelbook.measure.harness.Timing`:
    median, p10, p90, spread). ``flops`` and ``bytes`` are one step's FLOP and minimal memory
    traffic from :func:`accelbook.models.decoder.layer_ops` (``phase="decode"``, the dtype's bytes
    per value) times ``n_layers``: the roofline's ``F`` and ``Q``. ``rel_error`` is the step's
    relative error (Frobenius norm) against :func:`reference_forward` on the last sequence;
    ``donated`` says whether the cache was updated in place. ``backend`` and ``device_kind`` as
    JAX reports them.
    """

    config: DecoderConfig
    batch: int
    context: int
    dtype: str
    timing: Timing
    flops: float
    bytes: float
    rel_error: float
    donated: bool
    backend: str
    device_kind: str

    @property
    def seconds(self) -> float:
        """Median seconds per step."""
        return self.timing.median

    @property
    def tokens_per_s(self) -> float:
        """Tokens generated per second: ``batch / seconds`` (one per sequence per step)."""
        return self.batch / self.timing.median

    @property
    def flop_per_s(self) -> float:
        """Achieved FLOP/s: ``flops / seconds``."""
        return self.flops / self.timing.median

    @property
    def bytes_per_s(self) -> float:
        """Achieved bandwidth in bytes/s if the step moved its minimal ``bytes``."""
        return self.bytes / self.timing.median

    @property
    def intensity(self) -> float:
        """FLOP per byte of the step: ``flops / bytes``."""
        return self.flops / self.bytes


def _filled_cache(stack: Stack, batch: int, context: int) -> KVCache:
    """A cache of ``context`` positions holding a deterministic pattern of values in [−0.5, 0.5)
    (made on the device, one fused kernel per array): what the earlier tokens of each sequence
    left there."""
    import jax
    import jax.numpy as jnp

    c = stack.config
    shape = (batch, c.n_kv_heads, context, c.head_dim)
    fill = _jitted_fill(shape, _JAX_NAMES[stack.dtype])
    ks = tuple(fill(jnp.float32(2 * i + 0.5)) for i in range(c.n_layers))
    vs = tuple(fill(jnp.float32(2 * i + 1.5)) for i in range(c.n_layers))
    jax.block_until_ready((ks, vs))
    return KVCache(ks, vs)


@functools.lru_cache(maxsize=64)
def _jitted_fill(shape: tuple[int, ...], dtype: str):
    import jax
    import jax.numpy as jnp

    def fill(phase):  # the fractional part of a sum of irrational multiples of the indices, centred
        idx = sum(jax.lax.broadcasted_iota(jnp.float32, shape, a) * m for a, m in
                  zip(range(4), (0.6180339, 0.4142135, 0.0731, 0.7320508)))
        return (jnp.mod(idx + phase, 1.0) - 0.5).astype(dtype)

    return jax.jit(fill)


def _check_point(stack: Stack, cache: KVCache, x: Any, out: Any, pos: int) -> float:
    """Relative error (Frobenius norm) of the step's output for the last sequence against
    :func:`reference_forward`, given that sequence's first ``pos`` cache positions."""
    s = cache.batch - 1
    past = [(_row(k, s, pos), _row(v, s, pos)) for k, v in zip(cache.k, cache.v)]
    ref, _ = _reference(stack, np.asarray(x, np.float64)[s:s + 1, None, :], past, keep=False)
    got = np.asarray(out, np.float64)[s]
    err = float(np.linalg.norm(got - ref[0, 0]) / np.linalg.norm(ref[0, 0]))
    if not err <= _TOLERANCE[stack.dtype]:
        raise MeasurementError(f"decode step ({stack.config.name}, batch {cache.batch}, context {pos + 1}, "
                               f"{stack.dtype}) disagrees with the NumPy reference: relative error {err:.2e} > "
                               f"{_TOLERANCE[stack.dtype]:.0e}")
    return err


def _row(a: Any, s: int, pos: int) -> Any:
    """``a[s:s + 1, :, :pos]``: a NumPy view when ``a`` lives on the CPU (no copy, no compilation),
    else a slice made on the device (only that sequence's cache travels to the host)."""
    if all(d.platform == "cpu" for d in a.devices()):
        return np.asarray(a)[s:s + 1, :, :pos]
    return a[s:s + 1, :, :pos]


_TIMING_KEYS = ("warmup", "min_repeats", "max_repeats", "min_time")


def _check_timing(timing: dict) -> None:
    """The keywords :func:`time_call` takes, checked before any weight is drawn."""
    unknown = sorted(set(timing) - set(_TIMING_KEYS))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; the timing keywords are "
                        f"{', '.join(_TIMING_KEYS)}")
    if "warmup" in timing:
        checks.nonneg_int("warmup", timing["warmup"], maximum=MAX_REPEATS)
    for name in ("min_repeats", "max_repeats"):
        if name in timing:
            positive_int(name, timing[name], maximum=MAX_REPEATS)
    if timing.get("min_repeats", 5) > timing.get("max_repeats", 200):
        raise ValueError(f"max_repeats={timing.get('max_repeats', 200)} must be >= "
                         f"min_repeats={timing.get('min_repeats', 5)}")
    if "min_time" in timing:
        checks.real("min_time", timing["min_time"], nonnegative=True, maximum=3600.0)


def _measure(config: Any, points: list[tuple[int, int]], name: str, dtype: Any, seed: Any, rounds: Any,
             timing: dict) -> list[StepTime]:
    """Time the decode step at each (batch, context) of ``points``; ``name`` ('batches' or
    'contexts') is the argument the points vary (for a size error)."""
    import jax.numpy as jnp

    from accelbook import device

    config = _check_stack_config(config)
    dtype = default_dtype(device.current()) if dtype is None else _check_dtype(dtype)
    seed = checks.nonneg_int("seed", seed, maximum=2**32 - 1)
    rounds = positive_int("rounds", rounds, maximum=MAX_REPEATS)
    _check_timing(timing)
    limit = _memory_limit()
    weights = config.n_layers * decoder.layer_params(config) * itemsize(dtype)
    for i, (batch, context) in enumerate(points):
        needed = weights + 2.0 * config.n_layers * batch * context * config.kv_dim * itemsize(dtype)
        if not needed <= limit:
            where = (f"batches[{i}]={batch} with context={context}" if name == "batches" else
                     f"contexts[{i}]={context} at batch={batch}")
            raise ValueError(f"{where} is too large: the weights and KV cache need {needed:.3g} bytes, above "
                             f"the limit of {limit:.3g} (70 % of the device's memory, or 8 GiB on a CPU)")
    stack = make_stack(config, dtype, seed=seed)
    donate = donation_supported()
    step = _jitted_decode(donate)
    rng = np.random.default_rng(seed)
    jdtype = jnp.dtype(_JAX_NAMES[dtype])
    inputs = {b: jnp.asarray(rng.standard_normal((b, config.d_model), dtype=np.float32), jdtype)
              for b in sorted({p[0] for p in points})}
    samples: dict[int, list[float]] = {i: [] for i in range(len(points))}
    errors: dict[int, float] = {}
    for r in range(rounds):
        for i, (batch, context) in enumerate(points):
            cache = _filled_cache(stack, batch, context)
            x, pos = inputs[batch], jnp.int32(context - 1)
            state = {"cache": (cache.k, cache.v)}
            del cache

            def run(state=state, x=x, pos=pos):
                out, state["cache"] = step(stack.layers, state["cache"], x, pos, stack.dims)
                state["out"] = out
                return out, state["cache"]

            samples[i] += time_call(run, **timing).samples
            if r == rounds - 1:
                errors[i] = _check_point(stack, KVCache(*state["cache"]), x, state["out"], context - 1)
            del state, run
    backend, kind = _device_labels()
    out = []
    for i, (batch, context) in enumerate(points):
        flops, nbytes = decoder.totals(decoder.layer_ops(config, batch, context, "decode", itemsize(dtype)))
        out.append(StepTime(config, batch, context, dtype, Timing(tuple(samples[i])), float(config.n_layers * flops),
                            float(config.n_layers * nbytes), errors[i], donate, backend, kind))
    return out


def decode_step_times(config: DecoderConfig, batches: Any = None, context: int | None = None,
                      dtype: str | None = None, *, seed: int = 0, rounds: int = 1, **timing: Any) -> list[StepTime]:
    """Time the decode step of ``config``'s stack at each batch size in ``batches``, every sequence
    attending to ``context`` tokens; one :class:`StepTime` per batch, in the given order.

    Size ``config`` first with :func:`sized_config`: it runs as given (all its ``n_layers``).
    ``batches`` and ``context`` default to :func:`default_sweeps` of the default backend (its
    ``batches`` and ``batch_context``), ``dtype`` to :func:`default_dtype`. One stack of random
    weights (``seed``) serves every point; each point gets a cache of ``context`` positions filled
    with a fixed pattern, and steps at ``pos = context − 1`` (the step writes the same values there
    each time, so every timed step does the same work). With ``rounds > 1`` the points are timed
    ``rounds`` times, interleaved, and each record holds all samples. Each point's output is
    checked against :func:`reference_forward` (:class:`~accelbook.measure.harness.MeasurementError`
    when it disagrees). Extra keyword arguments (``warmup``, ``min_repeats``, ``max_repeats``,
    ``min_time``) go to :func:`~accelbook.measure.harness.time_call`. Raises ``ValueError`` naming
    the argument for bad input or sizes that do not fit the device's memory, ``TypeError`` for a
    config that is not a DecoderConfig or an unknown keyword.
    Taught in: "Batching" (the measured step time T(b)).
    """
    from accelbook import device

    sweeps = default_sweeps(device.current())
    batches = sweeps.batches if batches is None else checks.sequence("batches", batches, of=positive_int)
    context = sweeps.batch_context if context is None else positive_int("context", context)
    return _measure(config, [(b, context) for b in batches], "batches", dtype, seed, rounds, timing)


def context_sweep(config: DecoderConfig, batch: int | None = None, contexts: Any = None, dtype: str | None = None,
                  *, seed: int = 0, rounds: int = 1, **timing: Any) -> list[StepTime]:
    """Time the decode step of ``config``'s stack at ``batch`` sequences for each context length in
    ``contexts`` (tokens each sequence attends to, its new one included); one :class:`StepTime`
    per context, in the given order. Defaults from :func:`default_sweeps` (``context_batch`` and
    ``contexts``) and :func:`default_dtype`; everything else as :func:`decode_step_times`.
    Taught in: "The KV cache" (the step time grows with the cache it reads).
    """
    from accelbook import device

    sweeps = default_sweeps(device.current())
    batch = sweeps.context_batch if batch is None else positive_int("batch", batch)
    contexts = sweeps.contexts if contexts is None else checks.sequence("contexts", contexts, of=positive_int)
    return _measure(config, [(batch, c) for c in contexts], "contexts", dtype, seed, rounds, timing)


__all__ = ["ACCEL_MAX_LAYERS", "BACKENDS", "CPU_LAYERS", "CPU_MAX_WIDTH", "DEVICE_FRACTION", "DTYPES", "KVCache",
           "MEMORY_FRACTION", "RMS_EPS", "Stack", "StepTime", "Sweeps", "UNKNOWN_MEMORY", "context_sweep",
           "decode_step", "decode_step_times", "default_dtype", "default_sweeps", "donation_supported",
           "empty_cache", "make_stack", "prefill", "reference_forward", "sized_config"]
