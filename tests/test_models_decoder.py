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
