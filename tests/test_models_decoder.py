"""accelbook.models.decoder against hand counts of the Llama-2-7B layer and closed forms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accelbook.models import decoder

# Llama-2-7B, written by hand from its Hugging Face config.json (not read from models.toml).
D, H, KV_HEADS, FF, LAYERS, VOCAB = 4096, 32, 32, 11008, 32, 32000


def test_the_config_is_llama2_7b_with_a_source():
    cfg = decoder.LLAMA2_7B
    assert (cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_ff) == (D, H, KV_HEADS, FF)
    assert (cfg.n_layers, cfg.vocab_size, cfg.tie_embeddings) == (LAYERS, VOCAB, False)
    assert cfg.head_dim == 128 and cfg.kv_dim == 4096
    assert cfg.source.url.startswith("https://huggingface.co/meta-llama/Llama-2-7b")


def test_weights_of_one_layer_are_its_parameter_count():
    # q, k, v, o: four d x d matrices (32 KV heads = 32 heads); gate, up, down: three d x ff; two norms.
    by_hand = 4 * D * D + 3 * D * FF + 2 * D
    assert by_hand == 202_383_360
    assert decoder.layer_params(decoder.LLAMA2_7B) == by_hand
    ops = decoder.layer_ops(decoder.LLAMA2_7B, batch=1, context=1)
    assert sum(op.params for op in ops) == by_hand


def test_the_whole_model_has_the_published_6_74_billion_parameters():
    total = LAYERS * (4 * D * D + 3 * D * FF + 2 * D) + 2 * VOCAB * D + D
    assert decoder.model_params(decoder.LLAMA2_7B) == total == 6_738_415_616
    assert round(total / 1e9, 2) == 6.74


def test_grouped_query_attention_shrinks_k_and_v():
    gqa = dataclasses.replace(decoder.LLAMA2_7B, n_kv_heads=8)
    kv = 8 * 128
    assert decoder.layer_params(gqa) == D * (D + 2 * kv) + D * D + 3 * D * FF + 2 * D
    ops = {op.name: op for op in decoder.layer_ops(gqa, batch=1, context=1000)}
    full = {op.name: op for op in decoder.layer_ops(decoder.LLAMA2_7B, batch=1, context=1000)}
    # the K cache read shrinks by 4x, the attention FLOP do not change
    assert full["attn_scores"].bytes - ops["attn_scores"].bytes == 2 * 1000 * (D - kv)
    assert ops["attn_scores"].flops == full["attn_scores"].flops


@pytest.mark.parametrize("batch, context", [(1, 4096), (64, 4096), (8, 128)])
def test_decode_flop_is_twice_params_per_token_plus_attention(batch, context):
    ops = decoder.layer_ops(decoder.LLAMA2_7B, batch=batch, context=context, phase="decode")
    flops, _ = decoder.totals(ops)
    matmul_weights = 4 * D * D + 3 * D * FF
    closed = 2 * matmul_weights * batch + 4 * context * D * batch
    matmuls = sum(op.flops for op in ops if op.kind != "elementwise")
    assert matmuls == closed  # exact for the matmuls
    assert flops == pytest.approx(closed, rel=0.01)  # elementwise ops are a sliver
    assert flops > closed


def test_decode_bytes_are_weights_plus_kv_cache_plus_a_little():
    batch, context = 4, 2048
    ops = decoder.layer_ops(decoder.LLAMA2_7B, batch=batch, context=context, bytes_per_value=2)
    _, q = decoder.totals(ops)
    weights = 2 * (4 * D * D + 3 * D * FF + 2 * D)
    kv_reads = 2 * 2 * batch * context * D  # K and V, 2 bytes each
    assert q > weights + kv_reads
    assert q == pytest.approx(weights + kv_reads, rel=0.01)


def test_batch_1_decode_does_about_one_flop_per_byte():
    for context in (128, 4096):
        f, q = decoder.totals(decoder.layer_ops(decoder.LLAMA2_7B, 1, context, "decode", 2))
        assert 0.9 < f / q < 1.1


def test_intensity_grows_with_tokens_in_prefill_and_with_batch_in_decode():
    pre = [np.divide(*decoder.totals(decoder.layer_ops(decoder.LLAMA2_7B, 1, c, "prefill")))
           for c in (16, 128, 1024)]
    assert pre[0] < pre[1] < pre[2]
    assert pre[2] > 100
    # decode at a short context: weight reuse across the batch, intensity ~ batch
    dec = [np.divide(*decoder.totals(decoder.layer_ops(decoder.LLAMA2_7B, b, 16, "decode")))
           for b in (1, 8, 64)]
    assert dec[0] < dec[1] < dec[2]
    assert dec[1] == pytest.approx(8, rel=0.1)


def test_prefill_of_one_token_equals_decode_over_a_cache_of_one():
    pre = decoder.layer_ops(decoder.LLAMA2_7B, batch=3, context=1, phase="prefill")
    dec = decoder.layer_ops(decoder.LLAMA2_7B, batch=3, context=1, phase="decode")
    assert pre == dec


def test_shapes_and_counts_match_the_flop():
    batch, context = 2, 512
    for phase, m, q in (("decode", batch, 1), ("prefill", batch * context, context)):
        ops = {op.name: op for op in decoder.layer_ops(decoder.LLAMA2_7B, batch, context, phase)}
        assert ops["qkv_proj"].shape == (m, D, 3 * D) and ops["qkv_proj"].count == 1
        assert ops["gate_up_proj"].shape == (m, D, FF) and ops["gate_up_proj"].count == 2
        assert ops["down_proj"].shape == (m, FF, D)
        assert ops["attn_scores"].shape == (q, 128, context) and ops["attn_scores"].count == batch * H
        assert ops["attn_values"].shape == (q, context, 128)
        for op in ops.values():
            if op.kind == "elementwise":
                assert op.shape is None
            else:
                mm, k, n = op.shape
                assert op.flops == 2 * mm * k * n * op.count


def test_a_matmul_op_moves_weights_inputs_and_outputs_once():
    ops = {op.name: op for op in decoder.layer_ops(decoder.LLAMA2_7B, 5, 100, "decode", 1)}
    assert ops["o_proj"].bytes == D * D + 5 * D + 5 * D
    assert ops["down_proj"].bytes == FF * D + 5 * FF + 5 * D
    # gate and up share their input: read once, two weight matrices, two outputs
    assert ops["gate_up_proj"].bytes == 2 * D * FF + 5 * D + 2 * 5 * FF


def test_the_ops_come_in_layer_order_with_known_kinds():
    ops = decoder.layer_ops(decoder.LLAMA2_7B, 1, 16)
    names = [op.name for op in ops]
    assert names.index("attn_norm") < names.index("qkv_proj") < names.index("attn_scores") \
        < names.index("softmax") < names.index("attn_values") < names.index("o_proj") \
        < names.index("mlp_norm") < names.index("gate_up_proj") < names.index("silu_mul") \
        < names.index("down_proj")
    assert {op.kind for op in ops} == set(decoder.KINDS)
    assert sum(op.kind == "matmul" for op in ops) == 4


def test_bytes_scale_with_bytes_per_value():
    one = decoder.totals(decoder.layer_ops(decoder.LLAMA2_7B, 2, 64, "decode", 1))
    two = decoder.totals(decoder.layer_ops(decoder.LLAMA2_7B, 2, 64, "decode", 2))
    assert two[0] == one[0] and two[1] == 2 * one[1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch=0), "batch=0"), (dict(batch=1.5), "batch=1.5"), (dict(batch=True), "batch=True"),
    (dict(context=-1), "context=-1"), (dict(phase="train"), "phase='train'"),
    (dict(bytes_per_value=0), "bytes_per_value=0"), (dict(bytes_per_value=float("nan")), "bytes_per_value"),
    (dict(bytes_per_value="2"), "bytes_per_value='2'"),
])
def test_bad_input_is_rejected_naming_the_argument(kwargs, match):
    args = dict(config=decoder.LLAMA2_7B, batch=1, context=16, phase="decode", bytes_per_value=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        decoder.layer_ops(**args)


def test_bad_configs_and_ops_are_rejected():
    with pytest.raises(TypeError, match="config"):
        decoder.layer_ops("llama", 1, 1)
    with pytest.raises(ValueError, match="n_kv_heads"):
        decoder.DecoderConfig("x", d_model=64, n_heads=8, n_kv_heads=3, d_ff=128)
    with pytest.raises(ValueError, match="d_model=100"):
        decoder.DecoderConfig("x", d_model=100, n_heads=8, n_kv_heads=8, d_ff=128)
    with pytest.raises(ValueError, match="d_ff=0"):
        decoder.DecoderConfig("x", d_model=64, n_heads=8, n_kv_heads=8, d_ff=0)
    with pytest.raises(TypeError, match=r"ops\[1\]"):
        decoder.totals([decoder.layer_ops(decoder.LLAMA2_7B, 1, 1)[0], (1, 2)])
    with pytest.raises(KeyError, match="gpt-5"):
        decoder.get_model("gpt-5")
    assert decoder.totals([]) == (0, 0)


def test_the_loader_rejects_a_model_without_a_known_source():
    with pytest.raises(ValueError, match="source"):
        decoder._parse_models({"sources": {}, "models": {"m": {
            "name": "m", "source": "nowhere", "hidden_size": 8, "intermediate_size": 8,
            "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 1}}})


def test_the_kv_cache_holds_a_key_and_a_value_per_layer_per_token():
    # Llama-2-7B in bf16: 2 x 32 layers x 4096 x 2 bytes = 524,288 bytes per token
    assert decoder.kv_cache_bytes(decoder.LLAMA2_7B, 1) == 2 * LAYERS * D * 2 == 524_288
    assert decoder.kv_cache_bytes(decoder.LLAMA2_7B, 4096, 1) == 4096 * 2 * LAYERS * D
    with pytest.raises(ValueError, match="tokens=0"):
        decoder.kv_cache_bytes(decoder.LLAMA2_7B, 0)


def test_predict_is_t0_plus_the_larger_of_compute_and_memory_time():
    ops = decoder.layer_ops(decoder.LLAMA2_7B, batch=1, context=1024)
    f, q = decoder.totals(ops)
    p = decoder.predict(ops, peak_flops=1e15, bandwidth=1e12, t0=1e-5)
    assert p.time == pytest.approx(1e-5 + max(f / 1e15, q / 1e12))
    assert p.bound == "memory" and p.t_memory == pytest.approx(q / 1e12)
    # a hand case: 10 FLOP, 4 bytes (one op) on P = 1, W = 1 -> compute; with t0 = 100 -> overhead
    op = decoder.Op("x", "elementwise", 10, 4.0, None, 1)
    assert decoder.predict([op], 1.0, 1.0).bound == "compute"
    assert decoder.predict([op], 1.0, 1.0, t0=100.0).time == 110.0
    assert decoder.predict([op], 1.0, 1.0, t0=100.0).bound == "overhead"
    for kwargs, match in ((dict(peak_flops=0), "peak_flops=0"), (dict(bandwidth=float("inf")), "bandwidth=inf"),
                          (dict(t0=-1.0), "t0=-1.0")):
        args = dict(ops=ops, peak_flops=1.0, bandwidth=1.0, t0=0.0)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            decoder.predict(**args)


def test_config_fields_of_the_wrong_kind_are_named():
    for kwargs, match in ((dict(name=None), "name=None"), (dict(name=""), "name=''"),
                          (dict(tie_embeddings=1), "tie_embeddings=1"), (dict(vocab_size=-1), "vocab_size=-1"),
                          (dict(source="hf"), "source='hf'")):
        args = dict(name="x", d_model=64, n_heads=8, n_kv_heads=8, d_ff=128)
        args.update(kwargs)
        with pytest.raises((ValueError, TypeError), match=match):
            decoder.DecoderConfig(**args)
    with pytest.raises(ValueError, match="key"):
        decoder.get_model(["llama-2-7b"])
    with pytest.raises(ValueError, match="ops=None"):
        decoder.totals(None)
    # numpy integers are accepted and stored as Python ints
    cfg = decoder.DecoderConfig("x", d_model=np.int64(64), n_heads=8, n_kv_heads=8, d_ff=128)
    assert type(cfg.d_model) is int


def test_crossing_batch_is_the_first_batch_whose_matmuls_all_pass_the_ridge():
    from accelbook import specs

    cfg = decoder.LLAMA2_7B
    for key, dtype in (("t4", "fp16"), ("a100-40gb", "bf16"), ("h100-sxm", "bf16"), ("tpu-v5e", "bf16")):
        chip = specs.get_chip(key)
        peak, bw = chip.peak_flops[dtype], chip.memory_bandwidth
        m = decoder.crossing_batch(cfg, peak, bw)
        ridge = peak / bw

        def all_past(batch):
            ops = [op for op in decoder.layer_ops(cfg, batch, 1024) if op.kind == "matmul"]
            return all(op.flops / op.bytes >= ridge for op in ops)

        assert all_past(m) and not all_past(m - 1), (key, m)
    # a chip whose ridge is beyond the matmuls' limit intensity (about d·f/(d+f) ≈ 3000) never crosses
    assert decoder.crossing_batch(cfg, 1e18, 1e12) is None


def test_the_running_example_large_batch_fits_one_h100_and_the_crossing_batch_does_not():
    from accelbook import specs

    ex = decoder.EXAMPLE
    h100 = specs.get_chip("h100-sxm")
    weights = 2 * decoder.model_params(ex.config)
    need = lambda batch: weights + batch * decoder.kv_cache_bytes(ex.config, ex.context)  # noqa: E731
    assert need(ex.large_batch) <= h100.memory_bytes
    assert need(decoder.crossing_batch(ex.config, h100.peak_flops["bf16"], h100.memory_bandwidth)) > h100.memory_bytes
    assert ex.batches == (1, ex.large_batch) and all(specs.get_chip(k) for k in ex.chips)


# ---- the model database and the extended config ---------------------------------------------

def test_every_model_in_the_file_loads_with_a_cited_config_and_parameter_count():
    keys = decoder.model_keys()
    assert {"opt-13b", "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "llama-3.1-405b",
            "mistral-7b", "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-72b", "deepseek-v3"} <= set(keys)
    for key in keys:
        cfg = decoder.get_model(key)
        assert cfg.source.url.startswith("https://") and cfg.source.kind in ("documentation", "paper")
        assert cfg.params_total and cfg.params_source is not None, key
        assert (cfg.params_active is not None) == cfg.is_moe, key


@pytest.mark.parametrize("key", ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b",
                                 "llama-3.1-405b", "mistral-7b", "qwen2.5-7b", "qwen2.5-72b"])
def test_counting_a_dense_config_lands_near_the_published_parameter_count(key):
    # The papers and cards round (Llama-2-7B: 6.74e9 counted, "7B" printed); 5 % covers the rounding,
    # while a wrong head count or a missing matrix would be off by far more.
    cfg = decoder.get_model(key)
    assert decoder.model_params(cfg) == pytest.approx(cfg.params_total, rel=0.05)


def test_qwen_q_k_v_biases_are_counted_and_match_the_card_to_three_digits():
    # Qwen2.5-7B by hand from its config: d 3584, 28 heads, 4 KV heads of 128, f 18944, 28 layers,
    # vocabulary 152064, untied; q, k and v carry biases. The card prints 7.61B.
    d, kv, f, layers, vocab = 3584, 4 * 128, 18944, 28, 152064
    layer = d * (d + 2 * kv) + (d + 2 * kv) + d * d + 3 * d * f + 2 * d
    cfg = decoder.get_model("qwen2.5-7b")
    assert cfg.qkv_bias and decoder.layer_params(cfg) == layer
    total = layers * layer + 2 * vocab * d + d
    assert decoder.model_params(cfg) == total
    assert total == pytest.approx(7.61e9, rel=2e-3)


def test_llama_3_1_405b_has_eight_kv_heads_not_the_duplicated_sixteen():
    cfg = decoder.get_model("llama-3.1-405b")
    assert (cfg.n_layers, cfg.d_model, cfg.d_ff, cfg.n_heads, cfg.n_kv_heads) == (126, 16384, 53248, 128, 8)


def test_deepseek_v3_is_loaded_as_latent_attention_with_experts():
    # Hand-typed from DeepSeek-V3's config.json.
    cfg = decoder.get_model("deepseek-v3")
    assert cfg.is_mla and cfg.is_moe and not cfg.is_dense_llama
    assert (cfg.kv_lora_rank, cfg.qk_rope_head_dim, cfg.qk_nope_head_dim, cfg.v_head_dim, cfg.q_lora_rank) == \
        (512, 64, 128, 128, 1536)
    assert (cfg.n_experts, cfg.experts_per_token, cfg.n_shared_experts, cfg.expert_d_ff, cfg.first_dense_layers) == \
        (256, 8, 1, 2048, 3)
    assert cfg.kv_width == 512 + 64
    mixtral = decoder.get_model("mixtral-8x7b")
    assert (mixtral.n_experts, mixtral.experts_per_token, mixtral.expert_d_ff) == (8, 2, 14336)
    assert decoder.get_model("mistral-7b").sliding_window == 4096
    assert decoder.get_model("mixtral-8x7b").sliding_window is None
    assert decoder.get_model("qwen2.5-7b").sliding_window is None  # use_sliding_window = false
    opt = decoder.get_model("opt-13b")
    assert (opt.architecture, opt.d_ff, opt.n_kv_heads, opt.tie_embeddings) == ("opt", 20480, 40, True)


@pytest.mark.parametrize("key", ["deepseek-v3", "mixtral-8x7b", "opt-13b"])
def test_layer_counts_refuse_models_they_would_count_wrong(key):
    cfg = decoder.get_model(key)
    for call in (lambda: decoder.layer_ops(cfg, 1, 16), lambda: decoder.layer_params(cfg),
                 lambda: decoder.model_params(cfg)):
        with pytest.raises(ValueError, match="dense Llama-style"):
            call()


def test_an_explicit_head_dim_wins_over_d_model_over_heads():
    # A made-up Qwen3-style shape: 32 query heads and 8 KV heads of 128, so q = 4096 > d = 2560.
    cfg = decoder.DecoderConfig("x", d_model=2560, n_heads=32, n_kv_heads=8, d_ff=9728, explicit_head_dim=128)
    assert (cfg.head_dim, cfg.q_dim, cfg.kv_dim) == (128, 4096, 1024)
    d, q, kv, f = 2560, 4096, 1024, 9728
    assert decoder.layer_params(cfg) == d * (q + 2 * kv) + q * d + 3 * d * f + 2 * d
    ops = {op.name: op for op in decoder.layer_ops(cfg, batch=2, context=64)}
    assert ops["qkv_proj"].shape == (2, d, q + 2 * kv) and ops["o_proj"].shape == (2, q, d)
    assert ops["attn_scores"].shape == (1, 128, 64) and ops["attn_scores"].count == 2 * 32
    # no multiple-of rule when the head width is given: 100 / 8 is not whole
    assert decoder.DecoderConfig("y", d_model=100, n_heads=8, n_kv_heads=8, d_ff=64, explicit_head_dim=16).q_dim == 128


def test_a_sliding_window_caps_the_keys_each_token_attends_to():
    cfg = decoder.get_model("mistral-7b")
    at_window = {op.name: op for op in decoder.layer_ops(cfg, 2, 4096)}
    beyond = {op.name: op for op in decoder.layer_ops(cfg, 2, 32768)}
    for name in ("attn_scores", "attn_values", "softmax"):
        assert beyond[name].flops == at_window[name].flops and beyond[name].bytes == at_window[name].bytes
    assert beyond["attn_scores"].shape == (1, 128, 4096)
    below = {op.name: op for op in decoder.layer_ops(cfg, 2, 1000)}
    assert below["attn_scores"].shape == (1, 128, 1000)


def test_the_kv_cache_of_latent_attention_is_the_latent_plus_the_rope_key():
    cfg = decoder.get_model("deepseek-v3")
    assert decoder.kv_cache_bytes(cfg, 10, 2) == 10 * 61 * (512 + 64) * 2


def test_the_loader_maps_config_names_and_rejects_what_it_cannot_model():
    src = {"s": {"title": "t", "url": "https://x.org/config.json", "kind": "documentation"}}
    base = {"name": "m", "source": "s", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 8,
            "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 10}
    cfg = decoder._parse_models({"sources": src, "models": {"m": dict(base, head_dim=32, sliding_window=16)}})["m"]
    assert (cfg.head_dim, cfg.explicit_head_dim, cfg.kv_dim, cfg.sliding_window) == (32, 32, 64, 16)
    cfg = decoder._parse_models({"sources": src, "models": {"m": dict(
        base, sliding_window=16, use_sliding_window=False)}})["m"]
    assert cfg.sliding_window is None and cfg.explicit_head_dim is None and cfg.head_dim == 8
    bad = [(dict(base, num_heads=8), "unknown field"), (dict(base, model_type="gpt2"), "model_type"),
           (dict(base, params_source="nowhere"), "params_source"),
           (dict(base, model_type="opt", ffn_dim=128, word_embed_proj_dim=32), "word_embed_proj_dim"),
           (dict(base, kv_lora_rank=16), "latent attention"), ({k: v for k, v in base.items() if k != "vocab_size"},
                                                               "vocab_size")]
    for m, match in bad:
        with pytest.raises(ValueError, match=match):
            decoder._parse_models({"sources": src, "models": {"m": m}})


def test_latent_attention_and_expert_fields_come_in_complete_groups():
    base = dict(name="x", d_model=64, n_heads=8, n_kv_heads=8, d_ff=128, n_layers=4)
    for kwargs, match in ((dict(kv_lora_rank=16), "qk_rope_head_dim"), (dict(q_lora_rank=16), "q_lora_rank"),
                          (dict(n_experts=4), "experts_per_token"),
                          (dict(n_experts=4, experts_per_token=5, expert_d_ff=8), "experts_per_token=5"),
                          (dict(n_experts=4, experts_per_token=2, expert_d_ff=8, first_dense_layers=4),
                           "first_dense_layers=4"),
                          (dict(n_shared_experts=1), "n_shared_experts=1"), (dict(params_active=1e9), "params_active"),
                          (dict(sliding_window=0), "sliding_window=0"), (dict(architecture="gpt"), "architecture"),
                          (dict(explicit_head_dim=-4), "explicit_head_dim=-4"),
                          (dict(params_total=0.0), "params_total")):
        with pytest.raises((ValueError, TypeError), match=match):
            decoder.DecoderConfig(**base, **kwargs)


def test_the_context_limit_comes_from_each_config():
    """max_position_embeddings, against the values of the configs' config.json files: Llama-2's
    4,096, Llama-3's 8,192, Llama-3.1's 131,072 (written here from the model cards, not read from
    models.toml)."""
    assert decoder.get_model("llama-2-7b").max_position_embeddings == 4096
    assert decoder.get_model("llama-3-8b").max_position_embeddings == 8192
    assert decoder.get_model("llama-3.1-405b").max_position_embeddings == 131072
    assert all(decoder.get_model(k).max_position_embeddings for k in decoder.model_keys())
    with pytest.raises(ValueError, match="max_position_embeddings"):
        decoder.DecoderConfig("x", 64, 8, 8, 256, max_position_embeddings=0)
