"""The decoder stack with a KV cache (accelbook.measure.serving): sizing, correctness against NumPy,
the cache's mechanics, and the structure of the measured records. Tiny sizes only; no speed claims."""

import dataclasses
import warnings

import jax
import numpy as np
import pytest

from accelbook import device
from accelbook.measure import serving
from accelbook.measure.harness import _TOLERANCE
from accelbook.models import decoder
from accelbook.models.decoder import DecoderConfig

GQA = DecoderConfig("tiny-gqa", d_model=32, n_heads=4, n_kv_heads=2, d_ff=48, n_layers=2)
MHA = DecoderConfig("tiny-mha", d_model=24, n_heads=2, n_kv_heads=2, d_ff=40, n_layers=1)
MQA = DecoderConfig("tiny-mqa", d_model=32, n_heads=4, n_kv_heads=1, d_ff=24, n_layers=3)
FAST = dict(warmup=1, min_repeats=2, max_repeats=2, min_time=0)
# float32 against float64: rounding only on a CPU; a GPU's TF32 or a TPU's bf16 passes are fp32's default precision
TOL32 = 1e-5 if jax.default_backend() == "cpu" else _TOLERANCE["fp32"]


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def tokens(config, batch, n, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, n, config.d_model)).astype(np.float32)


# -- sizing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, width, heads, kv_heads, d_ff", [
    ("llama-2-7b", 1024, 8, 8, 11008 // 4),  # MHA: 8 heads of 128
    ("llama-3-8b", 1024, 8, 2, 14336 // 4),  # 4 query heads per KV head: 2 groups of 512
    ("qwen2.5-7b", 896, 7, 1, 18944 // 4),  # 7 query heads per KV head: one group of 896 fits, two do not
    ("llama-3.1-405b", 2048, 16, 1, 53248 // 8)])  # one group of 16 x 128 is wider than 1024: kept whole
def test_sized_config_cpu_hand_cases(key, width, heads, kv_heads, d_ff):
    cfg = decoder.get_model(key)
    s = serving.sized_config(cfg, "cpu")
    assert (s.d_model, s.n_heads, s.n_kv_heads, s.d_ff, s.n_layers) == (width, heads, kv_heads, d_ff, 2)
    assert s.head_dim == cfg.head_dim == 128
    assert s.sliding_window is None and not s.qkv_bias and s.params_total is None


def test_sized_config_cpu_keeps_head_width_and_grouping_for_every_dense_model():
    for key in decoder.model_keys():
        cfg = decoder.get_model(key)
        if not cfg.is_dense_llama:
            with pytest.raises(ValueError, match="config="):
                serving.sized_config(cfg, "cpu")
            continue
        s = serving.sized_config(cfg, "cpu")
        group = cfg.n_heads // cfg.n_kv_heads
        assert s.head_dim == cfg.head_dim and s.n_heads // s.n_kv_heads == group
        assert s.q_dim <= serving.CPU_MAX_WIDTH or s.n_kv_heads == 1
        # as many KV heads as fit: one more group would pass the width cap (or the model's own count)
        assert s.n_kv_heads == cfg.n_kv_heads or (s.n_kv_heads + 1) * group * s.head_dim > serving.CPU_MAX_WIDTH
        assert abs(s.d_ff - cfg.d_ff * s.d_model / cfg.d_model) <= 0.5
        assert s.n_layers == min(serving.CPU_LAYERS, cfg.n_layers)


# Llama-2-7B at bf16 with the GPU sweeps' 512 x 256 = 8 x 16384 = 131072 cached tokens, by hand:
# weights 4096*12288 + 4096^2 + 3*4096*11008 + 2*4096 = 202,383,360 values; cache 131072 * 2 * 4096.
LLAMA_LAYER_BYTES = 2 * (202_383_360 + 131072 * 2 * 4096)


@pytest.mark.parametrize("memory, layers", [
    (80e9, 8),  # half is 40 GB: 15 layers of 2.55 GB fit, and the cap of 8 applies
    (16e9, 3),  # 8 GB / 2.55 GB
    (4e9, 1),  # not even one layer fits in half: one layer all the same
    (None, 1)])  # unknown: 8 GiB assumed, 4.3 GB / 2.55 GB
def test_sized_config_gpu_layers_limited_by_memory(memory, layers):
    cfg = decoder.get_model("llama-2-7b")
    s = serving.sized_config(cfg, "gpu", memory)
    assert (s.d_model, s.n_heads, s.n_kv_heads, s.d_ff) == (4096, 32, 32, 11008)
    assert s.n_layers == layers


def test_sized_config_takes_a_device_info_its_dtype_and_tokens():
    cfg = decoder.get_model("llama-2-7b")
    info = device.describe("gpu", "NVIDIA H100 80GB HBM3")
    expected = min(8, int(0.5 * info.memory_bytes // LLAMA_LAYER_BYTES))
    assert serving.sized_config(cfg, info).n_layers == expected
    # fp32 and 1 cached token: 4 bytes x (202,383,360 + 8192) per layer; 3 GB hold 3 of them
    assert serving.sized_config(cfg, "tpu", 3e9, dtype="fp32", tokens=1).n_layers == 1
    assert serving.sized_config(cfg, "tpu", 3.3e9, dtype="fp32", tokens=1).n_layers == 2
    small = dataclasses.replace(cfg, n_layers=3)
    assert serving.sized_config(small, "gpu", 1e15).n_layers == 3  # never more than the model has
    assert serving.sized_config(small, "gpu", 1e15).name == cfg.name  # unchanged: keeps its name
    # on a CPU, a known memory size caps the layers too
    assert serving.sized_config(cfg, "cpu", 2**20, tokens=1).n_layers == 1


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(backend="metal"), ValueError, "^backend='metal'"),
    (dict(backend="gpu", memory_bytes=-1.0), ValueError, "^memory_bytes=-1.0"),
    (dict(backend="gpu", memory_bytes=True), ValueError, "^memory_bytes=True"),
    (dict(backend="gpu", dtype="fp8"), ValueError, "^dtype='fp8'"),
    (dict(backend="gpu", tokens=0), ValueError, "^tokens=0"),
    (dict(backend="gpu", config="llama-2-7b"), TypeError, "^config='llama-2-7b'"),
    (dict(backend="cpu", config=decoder.get_model("deepseek-v3")), ValueError, "^config='DeepSeek-V3'"),
    (dict(backend="cpu", config=decoder.get_model("mixtral-8x7b")), ValueError, "^config="),
    (dict(backend="cpu", config=decoder.get_model("opt-13b")), ValueError, "^config=")])
def test_sized_config_rejects_bad_input(kwargs, error, match):
    kwargs = {"config": decoder.get_model("llama-2-7b"), **kwargs}
    with pytest.raises(error, match=match):
        serving.sized_config(**kwargs)


def test_default_sweeps_and_dtype_by_backend():
    for backend in serving.BACKENDS:
        s = serving.default_sweeps(backend)
        assert s.batches[0] == 1 and list(s.batches) == sorted(set(s.batches))
        assert list(s.contexts) == sorted(set(s.contexts))
        assert s.tokens == max(s.batches[-1] * s.batch_context, s.context_batch * s.contexts[-1])
    cpu, gpu = serving.default_sweeps("cpu"), serving.default_sweeps("gpu")
    assert cpu.tokens < gpu.tokens and cpu.batches[-1] < gpu.batches[-1]
    assert serving.default_sweeps(device.describe("gpu", "NVIDIA H100 80GB HBM3")) == gpu
    assert (serving.default_dtype("cpu"), serving.default_dtype("gpu"), serving.default_dtype("tpu")) == (
        "fp32", "bf16", "bf16")
    # a T4's tensor cores take fp16, not bf16 (its spec sheet has no bf16 peak); an H100 and a TPU take bf16
    assert serving.default_dtype(device.describe("gpu", "Tesla T4")) == "fp16"
    assert serving.default_dtype(device.describe("gpu", "NVIDIA H100 80GB HBM3")) == "bf16"
    assert serving.default_dtype(device.describe("tpu", "TPU v5 lite")) == "bf16"
    for bad in ("metal", None, 3):
        with pytest.raises(ValueError, match="^backend="):
            serving.default_sweeps(bad)


# -- the stack ------------------------------------------------------------------------------------

def test_make_stack_shapes_seed_and_bytes():
    a, b, c = (serving.make_stack(GQA, seed=s) for s in (0, 0, 1))
    assert len(a.layers) == 2
    d, q, kv, f = 32, 4 * 8, 2 * 8, 48
    assert {k: v.shape for k, v in a.layers[0].items()} == {
        "attn_norm": (d,), "wqkv": (d, q + 2 * kv), "wo": (q, d), "mlp_norm": (d,), "wgu": (d, 2 * f), "wd": (f, d)}
    assert all(np.array_equal(a.layers[i][k], b.layers[i][k]) for i in range(2) for k in a.layers[i])
    assert not np.array_equal(a.layers[0]["wqkv"], c.layers[0]["wqkv"])
    assert not np.array_equal(a.layers[0]["wqkv"], a.layers[1]["wqkv"])
    params = d * (q + 2 * kv) + q * d + 3 * d * f + 2 * d
    assert a.weight_bytes == 2 * params * 4
    assert serving.make_stack(GQA, "bf16").weight_bytes == 2 * params * 2


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(config=dataclasses.replace(GQA, sliding_window=4)), ValueError, "sliding_window=4"),
    (dict(config=dataclasses.replace(GQA, qkv_bias=True)), ValueError, "biases"),
    (dict(config=DecoderConfig("odd", d_model=18, n_heads=2, n_kv_heads=2, d_ff=8)), ValueError, "head_dim=9"),
    (dict(config=decoder.get_model("mixtral-8x7b")), ValueError, "^config="),
    (dict(config=None), TypeError, "^config=None"),
    (dict(dtype="fp64"), ValueError, "^dtype='fp64'"),
    (dict(seed=-1), ValueError, "^seed=-1"),
    (dict(rope_base=1.0), ValueError, "^rope_base=1.0"),
    (dict(config=dataclasses.replace(decoder.get_model("llama-3.1-405b"))), ValueError, "^config=")])
def test_make_stack_rejects_bad_input(kwargs, error, match):
    kwargs = {"config": GQA, **kwargs}
    with pytest.raises(error, match=match):
        serving.make_stack(**kwargs)


# -- correctness ----------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [GQA, MHA, MQA], ids=lambda c: c.name)
def test_decoding_token_by_token_equals_the_numpy_reference_from_scratch(config):
    stack = serving.make_stack(config, seed=3)
    x = tokens(config, 3, 6)
    ref, _ = serving.reference_forward(stack, x)  # float64, attention recomputed over every prefix
    cache = serving.empty_cache(stack, 3, 8)
    for t in range(6):
        out, cache = serving.decode_step(stack, cache, x[:, t], t)
        assert rel(out, ref[:, t]) < TOL32, t


@pytest.mark.parametrize("config", [GQA, MQA], ids=lambda c: c.name)
def test_prefill_equals_the_reference_and_decode_continues_it(config):
    stack = serving.make_stack(config, seed=5)
    x = tokens(config, 2, 7, seed=1)
    ref, past = serving.reference_forward(stack, x)
    full, full_cache = serving.prefill(stack, x)
    assert full.shape == (2, 7, config.d_model) and full_cache.max_context == 7
    assert rel(full, ref) < TOL32
    for layer in range(config.n_layers):  # the cache holds the rotated keys and the values
        assert rel(full_cache.k[layer], past[layer][0]) < TOL32
        assert rel(full_cache.v[layer], past[layer][1]) < TOL32
    # prefill 4 tokens into a longer cache, then decode the other 3 one at a time
    head, cache = serving.prefill(stack, x[:, :4], max_context=10)
    assert cache.max_context == 10 and rel(head, ref[:, :4]) < TOL32
    for t in range(4, 7):
        out, cache = serving.decode_step(stack, cache, x[:, t], t)
        assert rel(out, full[:, t]) < TOL32
    for layer in range(config.n_layers):
        assert rel(np.asarray(cache.k[layer])[:, :, :7], full_cache.k[layer]) < TOL32
        assert not np.any(np.asarray(cache.v[layer])[:, :, 7:])  # nothing written past the last token


def test_reference_continues_from_a_past():
    stack = serving.make_stack(GQA, seed=2)
    x = tokens(GQA, 2, 5)
    ref, _ = serving.reference_forward(stack, x)
    _, past = serving.reference_forward(stack, x[:, :3])
    rest, past = serving.reference_forward(stack, x[:, 3:], past)
    assert np.allclose(rest, ref[:, 3:], rtol=1e-12, atol=1e-12)
    assert past[0][0].shape == (2, 2, 5, 8)


def test_positions_after_pos_are_masked_whatever_they_hold():
    stack = serving.make_stack(GQA, seed=4)
    x = tokens(GQA, 2, 4)
    _, cache = serving.prefill(stack, x[:, :3], max_context=9)
    junk = serving.KVCache(tuple(k.at[:, :, 4:].set(1e3) for k in cache.k),
                           tuple(v.at[:, :, 4:].set(-1e3) for v in cache.v))
    clean, _ = serving.decode_step(stack, cache, x[:, 3], 3)
    dirty, _ = serving.decode_step(stack, junk, x[:, 3], 3)
    assert np.array_equal(np.asarray(clean), np.asarray(dirty))
    ref, _ = serving.reference_forward(stack, x)
    assert rel(clean, ref[:, 3]) < TOL32


def test_rotary_scores_depend_only_on_the_distance():
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    q = jnp.asarray(rng.standard_normal((1, 1, 1, 16)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((1, 1, 1, 16)), jnp.float32)

    def score(m, n):
        rq = serving._rope(q, jnp.array([m]), 16, 10000.0)
        rk = serving._rope(k, jnp.array([n]), 16, 10000.0)
        return float(jnp.sum(rq * rk))

    assert score(0, 0) == pytest.approx(float(jnp.sum(q * k)), rel=1e-6)  # position 0: no rotation
    assert score(7, 3) == pytest.approx(score(14, 10), rel=1e-5, abs=1e-5)
    assert score(7, 3) != pytest.approx(score(7, 4), rel=1e-3)
    # a rotation keeps the length
    assert float(jnp.linalg.norm(serving._rope(q, jnp.array([5]), 16, 10000.0))) == pytest.approx(
        float(jnp.linalg.norm(q)), rel=1e-6)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_low_precision_stack_is_within_its_tolerance(dtype):
    stack = serving.make_stack(GQA, dtype, seed=6)
    x = tokens(GQA, 2, 4)
    ref, _ = serving.reference_forward(stack, x)  # the same rounded weights, in float64
    cache = serving.empty_cache(stack, 2, 4)
    assert cache.k[0].dtype.name == {"bf16": "bfloat16", "fp16": "float16"}[dtype]
    errors = []
    for t in range(4):
        out, cache = serving.decode_step(stack, cache, x[:, t], t)
        errors.append(rel(out, ref[:, t]))
    assert max(errors) < _TOLERANCE[dtype]
    assert max(errors) > 1e-5  # it really ran in a 16-bit dtype


# -- the cache's mechanics ------------------------------------------------------------------------

def test_decode_step_donates_the_cache_without_a_warning():
    stack = serving.make_stack(GQA)
    cache = serving.empty_cache(stack, 2, 8)
    old = cache.k[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, new = serving.decode_step(stack, cache, tokens(GQA, 2, 1)[:, 0], 0)
    assert old.is_deleted() == serving.donation_supported()
    assert new.k[0].shape == (2, 2, 8, 8) and out.shape == (2, 32)
    assert cache.nbytes == new.nbytes == 2 * 2 * (2 * 2 * 8 * 8) * 4  # k and v, 2 layers, fp32


def test_donation_probe_answers_for_the_default_backend_only():
    import jax

    assert serving.donation_supported() in (True, False)
    assert serving.donation_supported(jax.default_backend().replace("cuda", "gpu")) == serving.donation_supported()
    other = next(b for b in serving.BACKENDS if b != jax.default_backend())
    with pytest.raises(ValueError, match=f"^backend='{other}'"):
        serving.donation_supported(other)


def test_the_step_compiles_once_per_batch_and_context_shape():
    stack = serving.make_stack(MHA, seed=9)
    step = serving._jitted_decode(serving.donation_supported())
    x = tokens(MHA, 5, 1)[:, 0]
    cache = serving.empty_cache(stack, 5, 11)  # a shape no other test uses
    before = step._cache_size()
    for pos in range(3):  # another position: no new compilation
        _, cache = serving.decode_step(stack, cache, x, pos)
    assert step._cache_size() == before + 1
    _, _ = serving.decode_step(stack, serving.empty_cache(stack, 5, 12), x, 0)
    assert step._cache_size() == before + 2


@pytest.mark.parametrize("change, error, match", [
    (dict(pos=8), ValueError, "^pos=8"),
    (dict(pos=-1), ValueError, "^pos=-1"),
    (dict(pos=1.0), ValueError, "^pos=1.0"),
    (dict(x=np.zeros((2, 31), np.float32)), ValueError, "^x of shape"),
    (dict(x=np.zeros((3, 32), np.float32)), ValueError, "^x of shape .* has 3 sequences"),
    (dict(x=np.full((2, 32), np.nan, np.float32)), ValueError, "^x holds NaN"),
    (dict(x="ab"), ValueError, "^x='ab'"),
    (dict(cache=None), TypeError, "^cache=None"),
    (dict(stack=GQA), TypeError, "^stack="),
])
def test_decode_step_rejects_bad_input(change, error, match):
    stack = serving.make_stack(GQA)
    args = dict(stack=stack, cache=serving.empty_cache(stack, 2, 8), x=np.zeros((2, 32), np.float32), pos=0)
    with pytest.raises(error, match=match):
        serving.decode_step(**{**args, **change})


def test_cache_of_another_stack_and_bad_prefill_are_rejected():
    stack, other = serving.make_stack(GQA), serving.make_stack(MQA)
    with pytest.raises(ValueError, match="^cache of"):
        serving.decode_step(stack, serving.empty_cache(other, 2, 8), np.zeros((2, 32), np.float32), 0)
    with pytest.raises(ValueError, match="^max_context=3 must be at least the 4 tokens"):
        serving.prefill(stack, tokens(GQA, 1, 4), max_context=3)
    with pytest.raises(ValueError, match="^batch=0"):
        serving.empty_cache(stack, 0, 8)
    with pytest.raises(ValueError, match="^batch=1048576 and max_context=1048576 are too large"):
        serving.empty_cache(stack, 2**20, 2**20)
    with pytest.raises(ValueError, match=r"^past\[0\] has shapes"):
        serving.reference_forward(stack, tokens(GQA, 1, 2), [(np.zeros((1, 2, 3, 7)), np.zeros((1, 2, 3, 7)))] * 2)
    with pytest.raises(ValueError, match="^past has 1 layers"):
        serving.reference_forward(stack, tokens(GQA, 1, 2), [(np.zeros((1, 2, 0, 8)), np.zeros((1, 2, 0, 8)))])


# -- the measurement ------------------------------------------------------------------------------

def decode_layer_flops(B, c, cfg):
    """One decode layer's FLOP from the table in models/decoder.py, written out (m = B, q = 1)."""
    d, h, hd, kv, f = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.kv_dim, cfg.d_ff
    qd, m = h * hd, B
    attention = 4 * m * d + 2 * m * d * (qd + 2 * kv) + 3 * m * (qd + kv) + 2 * B * h * hd * c + 5 * B * h * c
    attention += 2 * B * h * c * hd + 2 * m * qd * d + m * d
    mlp = 4 * m * d + 4 * m * d * f + 5 * m * f + 2 * m * f * d + m * d
    return attention + mlp


def test_decode_step_times_gives_one_checked_record_per_batch():
    rs = serving.decode_step_times(GQA, [3, 1], 16, "fp32", seed=1, **FAST)
    assert [(r.batch, r.context, r.dtype) for r in rs] == [(3, 16, "fp32"), (1, 16, "fp32")]
    for r in rs:
        assert r.timing.n == 2 and r.seconds == r.timing.median > 0
        assert r.tokens_per_s == pytest.approx(r.batch / r.timing.median)
        assert r.flops == GQA.n_layers * decode_layer_flops(r.batch, 16, GQA)
        ops = decoder.layer_ops(GQA, r.batch, 16, "decode", bytes_per_value=4)
        assert r.bytes == GQA.n_layers * sum(op.bytes for op in ops)
        weights = GQA.n_layers * decoder.layer_params(GQA) * 4
        assert r.bytes > weights  # the weights are read once a step, whatever the batch
        assert r.intensity == pytest.approx(r.flops / r.bytes)
        assert r.rel_error < TOL32
        assert r.donated == serving.donation_supported() and r.backend == jax.devices()[0].platform
    # the weights are shared: three sequences add less than three times one sequence's bytes
    assert rs[0].bytes < 3 * rs[1].bytes


def test_context_sweep_work_grows_with_the_cache_it_reads():
    rs = serving.context_sweep(MQA, 2, [8, 24], "fp32", rounds=2, **FAST)
    assert [(r.batch, r.context) for r in rs] == [(2, 8), (2, 24)]
    assert all(r.timing.n == 4 for r in rs)  # two rounds of two samples
    B, dc, h, kv, hd = 2, 16, MQA.n_heads, MQA.kv_dim, MQA.head_dim
    # each cached token: Q.K^T and P.V (4 h hd FLOP) and a softmax (5 h FLOP) per sequence and layer
    assert rs[1].flops - rs[0].flops == MQA.n_layers * B * dc * (4 * h * hd + 5 * h)
    # ... and its key and value read once (2 kv values) plus the scores written and read (4 h values)
    assert rs[1].bytes - rs[0].bytes == MQA.n_layers * 4 * B * dc * (2 * kv + 4 * h)


def test_measurement_in_bf16_is_checked_against_its_tolerance():
    (r,) = serving.decode_step_times(MHA, [2], 8, "bf16", **FAST)
    assert r.dtype == "bf16" and r.rel_error < _TOLERANCE["bf16"]
    assert r.bytes == MHA.n_layers * sum(op.bytes for op in decoder.layer_ops(MHA, 2, 8, "decode", 2))


@pytest.mark.parametrize("fn, kwargs, error, match", [
    ("decode_step_times", dict(batches=[]), ValueError, "^batches=\\[\\] must not be empty"),
    ("decode_step_times", dict(batches=[1, 0]), ValueError, r"^batches\[1\]=0"),
    ("decode_step_times", dict(batches="12"), ValueError, "^batches='12'"),
    ("decode_step_times", dict(batches=[1], context=0), ValueError, "^context=0"),
    ("decode_step_times", dict(batches=[1], dtype="fp8"), ValueError, "^dtype='fp8'"),
    ("decode_step_times", dict(batches=[1], rounds=0), ValueError, "^rounds=0"),
    ("decode_step_times", dict(batches=[1], seed=-1), ValueError, "^seed=-1"),
    ("decode_step_times", dict(batches=[1], min_repeats=0), ValueError, "^min_repeats=0"),
    ("decode_step_times", dict(batches=[1], min_repeats=5, max_repeats=2), ValueError, "^max_repeats=2"),
    ("decode_step_times", dict(batches=[1], min_time=-1.0), ValueError, "^min_time=-1.0"),
    ("decode_step_times", dict(batches=[1], repeats=3), TypeError, "repeats"),
    ("decode_step_times", dict(batches=[1, 2**40], context=2**20), ValueError,
     r"^batches\[1\]=1099511627776 with context=1048576 is too large"),
    ("decode_step_times", dict(config="tiny"), TypeError, "^config='tiny'"),
    ("context_sweep", dict(contexts=[8, -8]), ValueError, r"^contexts\[1\]=-8"),
    ("context_sweep", dict(contexts=[8], batch=0), ValueError, "^batch=0"),
    ("context_sweep", dict(contexts=[2**45]), ValueError, r"^contexts\[0\]=35184372088832 at batch=.* is too large"),
    ("context_sweep", dict(contexts=[8], config=dataclasses.replace(GQA, sliding_window=4)), ValueError,
     "sliding_window=4"),
])
def test_measurements_reject_bad_input_by_name(fn, kwargs, error, match):
    kwargs = {"config": GQA, **kwargs}
    with pytest.raises(error, match=match):
        getattr(serving, fn)(**kwargs)
