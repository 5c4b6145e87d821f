"""accelbook.models.kvcache against hand-computed closed forms, published values and the three
bugs public KV calculators are known to have (query heads for KV heads, head_dim assumed to be
d_model / heads, latent attention counted as grouped-query attention)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from accelbook import specs
from accelbook.models import decoder, kvcache

MiB = 2 ** 20


# ---- bytes per token ------------------------------------------------------------------------

def test_grouped_query_attention_caches_kv_heads_not_query_heads():
    # Bug (a). Llama-3-8B's config: 32 layers, 32 query heads, 8 KV heads, head_dim 4096 / 32 = 128.
    layers, heads, kv_heads, head_dim = 32, 32, 8, 128
    right = 2 * layers * kv_heads * head_dim * 2  # K and V, bf16
    wrong = 2 * layers * heads * head_dim * 2  # what a calculator using query heads reports
    assert right == 131_072
    assert kvcache.kv_bytes_per_token("llama-3-8b", "bf16") == right
    assert wrong == 4 * right != kvcache.kv_bytes_per_token("llama-3-8b")


def test_an_explicit_head_dim_is_used_where_it_differs_from_hidden_over_heads():
    # Bug (b), on a made-up Qwen3-style config (no model in the file has head_dim != d / h):
    # 36 layers, d_model 2560, 32 query heads, 8 KV heads of head_dim 128 (2560 / 32 would be 80).
    cfg = decoder.DecoderConfig("qwen3-style", d_model=2560, n_heads=32, n_kv_heads=8, d_ff=9728, n_layers=36,
                                explicit_head_dim=128)
    right = 2 * 36 * 8 * 128 * 2
    assume_d_over_h = 2 * 36 * 8 * (2560 // 32) * 2
    assert kvcache.kv_bytes_per_token(cfg, "bf16") == right == 147_456
    assert assume_d_over_h == 92_160 != right
    # the loader keeps the config's head_dim
    src = {"s": {"title": "t", "url": "https://x.org/config.json", "kind": "documentation"}}
    m = {"name": "m", "source": "s", "hidden_size": 2560, "intermediate_size": 9728, "num_attention_heads": 32,
         "num_key_value_heads": 8, "num_hidden_layers": 36, "vocab_size": 151936, "head_dim": 128}
    loaded = decoder._parse_models({"sources": src, "models": {"m": m}})["m"]
    assert kvcache.kv_bytes_per_token(loaded) == right


def test_latent_attention_caches_the_latent_and_the_rope_key_not_heads():
    # Bug (c). DeepSeek-V3's config: 61 layers, kv_lora_rank d_c = 512, qk_rope_head_dim d_h^R = 64;
    # num_key_value_heads 128 with qk_nope + qk_rope = 192 and v_head_dim 128.
    right = 61 * (512 + 64) * 2
    as_if_gqa = 61 * 128 * ((128 + 64) + 128) * 2
    assert kvcache.kv_bytes_per_token("deepseek-v3", "bf16") == right == 70_272
    assert as_if_gqa == 4_997_120 and as_if_gqa / right > 70
    # DeepSeek-V2 (Table 1): MLA caches (d_c + d_h^R) · l ≈ 9/2 · d_h · l elements, with d_c = 4 d_h
    # and d_h^R = d_h / 2, "equal to GQA with only 2.25 groups".
    d_h = 128
    assert decoder.get_model("deepseek-v3").kv_width == 9 * d_h // 2 == 2 * 2.25 * d_h


def test_multi_head_and_multi_query_attention_and_a_published_example():
    # PagedAttention (Kwon et al. 2023, section 3): OPT-13B caches 2 (K, V) x 5120 (hidden) x 40 (layers)
    # x 2 bytes = 800 KB per token.
    assert kvcache.kv_bytes_per_token("opt-13b", "fp16") == 2 * 5120 * 40 * 2 == 800 * 1024
    assert kvcache.kv_bytes_per_token("llama-2-7b") == 2 * 32 * 4096 * 2  # 32 KV heads of 32
    mqa = decoder.DecoderConfig("mqa", d_model=1024, n_heads=16, n_kv_heads=1, d_ff=4096, n_layers=12)
    assert kvcache.kv_bytes_per_token(mqa, "fp16") == 2 * 12 * 1 * 64 * 2


@pytest.mark.parametrize("dtype, bytes_per_value", [("fp32", 4), ("fp16", 2), ("bf16", 2), ("fp8", 1),
                                                     ("int8", 1), ("int4", 0.5), ("fp4", 0.5)])
def test_bytes_scale_with_the_cache_dtype(dtype, bytes_per_value):
    assert kvcache.kv_bytes_per_token("llama-3-8b", dtype) == 2 * 32 * 8 * 128 * bytes_per_value
    assert kvcache.dtype_bits(dtype) == 8 * bytes_per_value


def test_four_bit_values_pack_two_to_a_byte_and_round_up():
    # a made-up latent cache of 3 + 2 = 5 values per token in one layer: 20 bits -> 3 bytes
    cfg = decoder.DecoderConfig("odd", d_model=64, n_heads=4, n_kv_heads=4, d_ff=64, n_layers=1, kv_lora_rank=3,
                                qk_rope_head_dim=2, qk_nope_head_dim=8, v_head_dim=8)
    assert kvcache.kv_bytes_per_token(cfg, "int4") == 3 == math.ceil(5 * 4 / 8)
    assert kvcache.kv_bytes_per_token(cfg, "fp8") == 5


# ---- a batch at a context; sliding windows ---------------------------------------------------

def test_a_sliding_window_caps_the_cache_at_the_window():
    # Mistral-7B: 32 layers, 8 KV heads of 128, window 4096 (Jiang et al. 2023, Table 1).
    per_token = 2 * 32 * 8 * 128 * 2
    assert kvcache.kv_bytes("mistral-7b", "bf16", 1, 32_768) == 4096 * per_token
    assert kvcache.kv_bytes("mistral-7b", "bf16", 1, 32_768) == kvcache.kv_bytes("mistral-7b", "bf16", 1, 4096)
    assert kvcache.kv_bytes("mistral-7b", "bf16", 3, 1000) == 3 * 1000 * per_token
    # Llama-3-8B has the same bytes per token but no window: 8x more at 32k
    assert kvcache.kv_bytes("llama-3-8b", "bf16", 1, 32_768) == 8 * kvcache.kv_bytes("mistral-7b", "bf16", 1, 32_768)
    assert kvcache.cached_tokens("mistral-7b", 32_768) == 4096 and kvcache.cached_tokens("llama-3-8b", 32_768) == 32_768


def test_kv_bytes_of_a_batch_is_batch_times_context_times_bytes_per_token():
    assert kvcache.kv_bytes("llama-2-13b", "fp16", 8, 2048) == 8 * 2048 * 2 * 40 * 5120 * 2
    assert kvcache.kv_bytes("llama-3-70b", "fp8", np.int64(4), np.int64(100)) == 4 * 100 * 2 * 80 * 8 * 128


# ---- weights -----------------------------------------------------------------------------------

def test_weight_bytes_are_parameters_times_bytes_per_weight():
    # dense Llama-style: counted from the config
    n = decoder.model_params(decoder.get_model("llama-3-8b"))
    assert kvcache.weight_params("llama-3-8b") == n
    assert kvcache.weight_bytes("llama-3-8b", "bf16") == 2 * n
    assert kvcache.weight_bytes("llama-3-8b", "int4") == n / 2
    # the others: as published
    assert kvcache.weight_params("deepseek-v3") == 671_000_000_000
    assert kvcache.weight_bytes("deepseek-v3", "fp8") == 671e9
    assert kvcache.weight_params("opt-13b") == 13_000_000_000


def test_experts_a_batch_reads_follow_uniform_routing():
    # Mixtral: 32 layers x 8 experts x 3 matrices of 4096 x 14336, 2 experts per token.
    routed = 32 * 8 * 3 * 4096 * 14336
    assert kvcache.routed_expert_params("mixtral-8x7b") == routed
    total = 46.7e9
    for batch in (1, 2, 3):
        touched = 1 - (1 - 2 / 8) ** batch  # 1/4, 7/16, 37/64
        assert kvcache.params_read("mixtral-8x7b", batch) == pytest.approx(total - routed + routed * touched)
    assert kvcache.params_read("mixtral-8x7b", 1000) == pytest.approx(total, rel=1e-9)
    assert kvcache.params_read("llama-3-8b", 64) == kvcache.weight_params("llama-3-8b")
    assert kvcache.routed_expert_params("llama-3-8b") == 0


@pytest.mark.parametrize("key, published_active, rel", [("mixtral-8x7b", 12.9e9, 0.01), ("deepseek-v3", 36.7e9, 0.03)])
def test_one_token_reads_about_the_published_active_parameters(key, published_active, rel):
    # An independent check of the expert count from the config against the card: at batch 1 the
    # non-routed weights plus k of E experts per layer are the active parameters.
    assert kvcache.params_read(key, 1) == pytest.approx(published_active, rel=rel)
    assert kvcache.active_params(key) == published_active


# ---- what fits on a chip -------------------------------------------------------------------------

def test_device_memory_is_the_visible_capacity_when_sourced_and_says_so_otherwise():
    h100 = kvcache.device_memory("h100-sxm")
    assert h100.visible and h100.capacity == 81_559 * MiB
    # the marketed "80 GB" read as 80e9 bytes undercounts what the device reports by about 7 %
    assert 0.06 < h100.capacity / specs.get_chip("h100-sxm").memory_bytes - 1 < 0.08
    v5e = kvcache.device_memory("tpu-v5e")  # JAX's table: 17.2e9 bytes, the "16 GB" read as GiB
    assert v5e.visible and v5e.capacity == 17.2e9
    b200 = kvcache.device_memory("b200")  # nothing sourced: the marketed figure, flagged
    assert not b200.visible and b200.capacity == specs.get_chip("b200").memory_bytes
    with pytest.raises(ValueError, match="host-cpu"):
        kvcache.device_memory("host-cpu")


def test_max_batch_counts_whole_blocks_per_sequence():
    # Llama-3-8B in bf16 on an H100 SXM at 4096 tokens, by hand.
    d, kv, f, layers, vocab = 4096, 1024, 14336, 32, 128256
    params = layers * (d * (d + 2 * kv) + d * d + 3 * d * f + 2 * d) + 2 * vocab * d + d
    budget = 0.9 * 81_559 * MiB - 2 * params
    block = 16 * 2 * 32 * kv * 2  # 16 tokens of 131,072 bytes
    blocks = math.floor(budget / block)
    fit = kvcache.max_batch("llama-3-8b", "h100-sxm", 4096)
    assert (fit.weight_bytes, fit.block_bytes, fit.blocks, fit.blocks_per_sequence) == (2 * params, block, blocks, 256)
    assert fit.batch == blocks // 256 and fit.capacity_visible and fit.fits
    assert fit.kv_bytes == fit.batch * 256 * block <= budget < (fit.batch + 1) * 256 * block
    # one token more needs a 257th block per sequence
    longer = kvcache.max_batch("llama-3-8b", "h100-sxm", 4097)
    assert longer.blocks_per_sequence == 257 and longer.batch == blocks // 257
    # without paging granularity (block of one token) the exact token count decides
    exact = kvcache.max_batch("llama-3-8b", "h100-sxm", 4097, block_size=1)
    assert exact.batch == math.floor(budget / (4097 * 131_072))


def test_the_memory_fraction_and_dtypes_move_the_budget_as_the_formula_says():
    full = kvcache.max_batch("llama-3-8b", "h100-sxm", 4096, memory_fraction=1.0)
    default = kvcache.max_batch("llama-3-8b", "h100-sxm", 4096)
    assert full.kv_budget - default.kv_budget == pytest.approx(0.1 * 81_559 * MiB)
    fp8 = kvcache.max_batch("llama-3-8b", "h100-sxm", 4096, kv_dtype="fp8")
    assert fp8.block_bytes * 2 == default.block_bytes and fp8.blocks >= 2 * default.blocks


def test_weights_that_do_not_fit_leave_no_batch():
    # Llama-3-70B in bf16 (141e9 bytes) on one 80 GB H100
    fit = kvcache.max_batch("llama-3-70b", "h100-sxm", 1024)
    assert fit.kv_budget < 0 and fit.blocks == 0 and fit.batch == 0 and not fit.fits
    assert kvcache.max_context("llama-3-70b", "h100-sxm", 1).context == 0


def test_max_context_is_the_inverse_of_max_batch():
    fit = kvcache.max_context("llama-3-8b", "a100-40gb", 8)
    assert fit.context == (fit.blocks // 8) * 16 and fit.blocks_per_sequence == fit.blocks // 8
    assert kvcache.max_batch("llama-3-8b", "a100-40gb", fit.context).batch >= 8
    assert kvcache.max_batch("llama-3-8b", "a100-40gb", fit.context + 16).batch < 8


def test_a_sliding_window_lets_any_context_fit_once_the_window_does():
    fit = kvcache.max_context("mistral-7b", "h100-sxm", 10)
    assert fit.context is None and fit.fits and fit.blocks_per_sequence == 4096 // 16
    assert fit.kv_bytes == 10 * 256 * 16 * 131_072
    crowded = kvcache.max_context("mistral-7b", "h100-sxm", 1000)
    assert crowded.context is not None and crowded.context < 4096


# ---- the decode step -----------------------------------------------------------------------------

def test_decode_step_is_weights_plus_each_sequences_cache_over_bandwidth():
    h100 = specs.get_chip("h100-sxm")
    n = kvcache.weight_params("llama-3-8b")
    batch, context = 16, 2048
    step = kvcache.decode_step("llama-3-8b", "h100-sxm", batch, context)
    weights, cache = 2 * n, batch * context * 131_072
    assert (step.weight_bytes, step.kv_bytes) == (weights, cache)
    assert step.t_memory == pytest.approx((weights + cache) / h100.memory_bandwidth)
    attention = 32 * 4 * 32 * 128 * context * batch
    assert step.flops == 2 * n * batch + attention
    assert step.t_compute == pytest.approx(step.flops / h100.peak_flops["bf16"])
    assert step.bound == "memory" and step.time == step.t_memory
    assert step.tokens_per_s == pytest.approx(batch / step.t_memory)


def test_a_big_batch_of_short_sequences_turns_compute_bound():
    # 2 N B / P > (2 N + B c s) / W once B is well past the ridge (about 295 FLOP/B on an H100)
    step = kvcache.decode_step("llama-3-8b", "h100-sxm", 4096, 1)
    assert step.bound == "compute" and step.time == step.t_compute
    assert kvcache.decode_step("llama-3-8b", "h100-sxm", 1, 1).bound == "memory"


def test_latent_attention_flops_are_computed_on_the_latent():
    # DeepSeek-V3, one sequence of 1000 tokens: per layer 2 h c (d_c + d_r) + 2 h c d_c
    assert kvcache.attention_flops("deepseek-v3", 1, 1000) == 61 * (2 * 128 * 1000 * 576 + 2 * 128 * 1000 * 512)
    step = kvcache.decode_step("deepseek-v3", "h200", 1, 1000, dtype="fp8", kv_dtype="bf16")
    assert step.weight_bytes == pytest.approx(kvcache.params_read("deepseek-v3", 1))  # 1 byte per weight
    assert step.kv_bytes == 1000 * 70_272


def test_a_chip_without_the_compute_dtype_is_an_error_not_a_fallback():
    with pytest.raises(ValueError, match="compute_dtype='bf16'.*T4"):
        kvcache.decode_step("llama-3-8b", "t4", 1, 128)
    assert kvcache.decode_step("llama-3-8b", "t4", 1, 128, compute_dtype="fp16").peak_flops == 65e12


# ---- where the cache outgrows the weights -------------------------------------------------------

def test_crossover_context_is_where_the_cache_passes_the_weights():
    for key, batch in (("llama-3-8b", 1), ("llama-2-7b", 8), ("deepseek-v3", 4), ("qwen2.5-72b", 32)):
        c = kvcache.crossover_context(key, batch)
        weights = kvcache.weight_bytes(key)
        assert kvcache.kv_bytes(key, "bf16", batch, c) > weights >= kvcache.kv_bytes(key, "bf16", batch, c - 1)
    # Llama-3-8B alone: weights / 131,072 bytes per token
    assert kvcache.crossover_context("llama-3-8b", 1) == kvcache.weight_bytes("llama-3-8b") // 131_072 + 1
    # a 4,096-token window holds 0.5 GB per sequence, below Mistral's 14.5 GB of weights at batch 1
    assert kvcache.crossover_context("mistral-7b", 1) is None
    assert kvcache.crossover_context("mistral-7b", 64) == kvcache.weight_bytes("mistral-7b") // (64 * 131_072) + 1


# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: kvcache.kv_bytes_per_token("gpt-5"), KeyError, "model='gpt-5'"),
    (lambda: kvcache.kv_bytes_per_token(7), TypeError, "model=7"),
    (lambda: kvcache.kv_bytes_per_token("llama-3-8b", "fp64"), ValueError, "dtype='fp64'"),
    (lambda: kvcache.kv_bytes("llama-3-8b", "bf16", 0, 10), ValueError, "batch=0"),
    (lambda: kvcache.kv_bytes("llama-3-8b", "bf16", 1, 0), ValueError, "context=0"),
    (lambda: kvcache.kv_bytes("llama-3-8b", "bf16", 1, 2.5), ValueError, "context=2.5"),
    (lambda: kvcache.max_batch("llama-3-8b", "h100-sxm", 10, memory_fraction=0), ValueError, "memory_fraction=0"),
    (lambda: kvcache.max_batch("llama-3-8b", "h100-sxm", 10, memory_fraction=1.5), ValueError, "memory_fraction=1.5"),
    (lambda: kvcache.max_batch("llama-3-8b", "h100-sxm", 10, block_size=True), ValueError, "block_size=True"),
    (lambda: kvcache.max_batch("llama-3-8b", "nope", 10), KeyError, "chip='nope'"),
    (lambda: kvcache.max_context("llama-3-8b", "h100-sxm", -1), ValueError, "batch=-1"),
    (lambda: kvcache.decode_step("llama-3-8b", "h100-sxm", 1, 1, compute_dtype="int4"), ValueError, "compute_dtype"),
    (lambda: kvcache.crossover_context("llama-3-8b", 1, kv_dtype="e4m3"), ValueError, "kv_dtype='e4m3'"),
])
def test_bad_input_is_rejected_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
