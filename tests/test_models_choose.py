"""The decision model of "How to choose": hand-worked toy cases, agreement with the book's other
models (kvcache, collectives), the measured table's checks, ranking and bad input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from accelbook import specs
from accelbook.models import choose, collectives, kvcache
from accelbook.models.decoder import DecoderConfig

# a made-up model: d = 64, 4 heads of 16, 2 KV heads, MLP 128, 2 layers, vocabulary 100
TOY = DecoderConfig("toy", d_model=64, n_heads=4, n_kv_heads=2, d_ff=128, n_layers=2, vocab_size=100)
# by hand: per layer d·(q + 2·kv) + q·d + 3·d·f + 2·d with q = 64, kv = 2·16 = 32
TOY_LAYER = 64 * (64 + 2 * 32) + 64 * 64 + 3 * 64 * 128 + 2 * 64
TOY_N = 2 * TOY_LAYER + 2 * 100 * 64 + 64


def test_toy_parameter_count_by_hand():
    assert TOY_LAYER == 36992
    assert kvcache.weight_params(TOY) == TOY_N == 86848


# -- training and fine-tuning: FLOP and memory by hand -----------------------------------------

def test_train_flops_is_six_n_t_and_eight_with_recomputation():
    T = 1000
    plain = choose.Workload("train", TOY, tokens_per_step=T, recompute=False)
    assert choose.train_flops(plain) == 6 * TOY_N * T
    redo = choose.Workload("train", TOY, tokens_per_step=T, recompute=True)
    assert choose.train_flops(redo) == 8 * TOY_N * T


def test_finetune_flops_forward_backward_and_a_fraction_of_weight_gradients():
    T, f = 512, 0.25
    w = choose.Workload("finetune", TOY, tokens_per_step=T, trainable_fraction=f, recompute=False)
    assert choose.train_flops(w) == pytest.approx((2 + 2 + 2 * f) * TOY_N * T)
    full = choose.Workload("finetune", TOY, tokens_per_step=T, recompute=False)
    assert choose.train_flops(full) == choose.train_flops(choose.Workload("train", TOY, tokens_per_step=T,
                                                                          recompute=False))


def test_train_memory_by_hand():
    T, n = 1000, 4
    w = choose.Workload("train", TOY, tokens_per_step=T, recompute=True)
    # ZeRO: 2 + 2 + 12 bytes of state per parameter, sharded n ways; layer inputs in 16 bits
    state = TOY_N * (2 + 2 + 12) / n
    acts = (T / n) * 2 * 64 * 2
    assert choose.train_memory(w, n) == pytest.approx(state + acts)
    no = dataclasses.replace(w, recompute=False)
    assert choose.train_memory(no, n) == pytest.approx(state + (T / n) * 2 * 64 * 34)
    micro = dataclasses.replace(w, micro_tokens=10)
    assert choose.train_memory(micro, n) == pytest.approx(state + 10 * 2 * 64 * 2)


def test_finetune_memory_keeps_frozen_weights_in_the_dtype():
    T, n, f = 100, 2, 0.5
    w = choose.Workload("finetune", TOY, tokens_per_step=T, trainable_fraction=f, optimizer_bytes=16)
    state = TOY_N * ((1 - f) * 2 + f * 16) / n
    assert choose.train_memory(w, n) == pytest.approx(state + (T / n) * 2 * 64 * 2)


def test_training_devices_are_the_fewest_power_of_two_that_fits():
    w = choose.Workload("train", "llama-3-8b", tokens_per_step=2 ** 20)
    v = choose.evaluate(w, "h100-sxm")
    assert v.fits and v.devices > 1 and v.devices & (v.devices - 1) == 0
    assert choose.train_memory(w, v.devices) <= v.memory_budget < choose.train_memory(w, v.devices // 2)
    budget = kvcache.device_memory("h100-sxm").capacity * kvcache.VLLM_GPU_MEMORY_UTILIZATION
    assert v.memory_budget == pytest.approx(budget)


def test_training_step_by_hand_on_two_devices():
    w = choose.Workload("train", "llama-3-8b", tokens_per_step=2 ** 16, devices=2, recompute=False,
                        micro_tokens=1024)
    chip = specs.get_chip("h100-sxm")
    v = choose.evaluate(w, chip)
    n = kvcache.weight_params("llama-3-8b")
    a, b, p = v.alpha, v.beta, 2
    # ring all-gather and reduce-scatter: (p-1)·α + (p-1)/p·n·β each (Thakur et al. 2005)
    gather = (p - 1) * a + (p - 1) / p * (2 * n) * b
    micro = 2 ** 16 // 2 // 1024  # FSDP gathers and reduce-scatters for each of the 32 micro-batches
    comm = micro * (2 * gather + gather)
    compute = 6 * n * 2 ** 16 / 2 / chip.peak_flops["bf16"]
    assert v.comm_time == pytest.approx(comm)
    assert v.compute_time == pytest.approx(compute)
    assert v.step_time == pytest.approx(max(compute, comm))
    assert v.tokens_per_s_per_chip == pytest.approx(2 ** 16 / v.step_time / 2)
    # two devices stay inside the node: NVLink 4, one way 450 GB/s (half of the both-ways total)
    assert v.beta == pytest.approx(1 / collectives.get_link("nvlink4").bandwidth("device_bandwidth"))
    assert v.link == collectives.get_link("nvlink4").name


def test_training_beyond_a_node_uses_the_scale_out_network_and_may_bind_on_it():
    chip = specs.get_chip("h100-sxm")
    w = choose.Workload("train", "llama-3-8b", tokens_per_step=4096, devices=64)
    v = choose.evaluate(w, chip)
    ib = collectives.chip_links(chip).scale_out
    assert v.link == ib.name and v.beta == pytest.approx(1 / ib.bandwidth("link_bandwidth"))
    # few tokens per step: the weight all-gathers outlast the compute
    assert v.comm_time > v.compute_time and v.binding == "interconnect"
    assert v.comm_exposed == pytest.approx(v.comm_time - v.compute_time)
    assert v.comm_share == pytest.approx(v.comm_exposed / v.step_time)


# -- serving: agreement with collectives and kvcache --------------------------------------------

def test_serving_step_is_collectives_tp_decode_step():
    w = choose.Workload("serve", "llama-3-70b", batch=64, context=4096)
    chip = specs.get_chip("h100-sxm")
    v = choose.evaluate(w, chip, t0=1e-4)
    cfg = w.model
    need = collectives.devices_needed(cfg, 0.9 * kvcache.device_memory(chip).capacity, 64, 4096)
    assert v.devices == need > 1
    ref = collectives.tp_decode_step(cfg, need, 64, 4096, chip.peak_flops["bf16"], chip.memory_bandwidth,
                                     v.alpha, v.beta, algorithm="ring")
    assert v.step_time == pytest.approx(1e-4 + ref.step_time)
    assert v.comm_time == pytest.approx(ref.comm_time)
    assert v.tokens_per_s == pytest.approx(64 / v.step_time)
    # alpha from the measured 8-rank all-reduce latency over the ring's 2(p-1) = 14 messages
    lat = collectives.measurements("nvlink4", "latency")[0]
    assert v.alpha == pytest.approx(lat.si / (2 * (lat.ranks - 1)))


@pytest.mark.parametrize("chip", ["h100-sxm", "l4", "a100-40gb"])
def test_serving_fits_on_one_chip_iff_kvcache_max_batch_says_the_batch_fits(chip):
    context = 4096  # a multiple of vLLM's 16-token block, so paging wastes nothing
    most = kvcache.max_batch("llama-3-8b", chip, context).batch
    assert most >= 1
    assert choose.evaluate(choose.Workload("serve", "llama-3-8b", batch=most, context=context), chip).devices == 1
    assert choose.evaluate(choose.Workload("serve", "llama-3-8b", batch=most + 1, context=context), chip).devices > 1


def test_serving_binding_flips_from_memory_to_compute_at_the_closed_form_batch():
    chip = specs.get_chip("h100-sxm")
    P, W = chip.peak_flops["bf16"], chip.memory_bandwidth
    c = 1
    # per sequence: 2·N FLOP + attention 4·h·d_h·c per layer; cache 2·kv_dim·2 bytes per token per layer
    flops_seq = 2 * TOY_N + 2 * 4 * 4 * 16 * c
    kv_seq = 2 * c * (2 * 32 * 2)
    # memory time (2N + B·kv)/W equals compute time B·flops/P at
    b_star = 2 * TOY_N / (flops_seq / P * W - kv_seq)
    below, above = math.floor(b_star), math.floor(b_star) + 1
    v1 = choose.evaluate(choose.Workload("serve", TOY, batch=1, context=c), chip)
    lo = choose.evaluate(choose.Workload("serve", TOY, batch=below, context=c), chip)
    hi = choose.evaluate(choose.Workload("serve", TOY, batch=above, context=c), chip)
    assert v1.binding == lo.binding == "memory bandwidth"
    assert hi.binding == "compute"
    assert v1.memory_time == pytest.approx(TOY_N * 2 / W + kv_seq / W)


def test_target_overhead_and_per_joule():
    chip = specs.get_chip("h100-sxm")
    w = choose.Workload("serve", "llama-3-8b", batch=8, context=2048)
    v = choose.evaluate(w, chip)
    assert v.meets_target is None
    ok = choose.evaluate(dataclasses.replace(w, tpot_target=v.step_time * 1.01), chip)
    late = choose.evaluate(dataclasses.replace(w, tpot_target=v.step_time * 0.99), chip)
    assert ok.meets_target is True and late.meets_target is False
    assert v.tokens_per_joule == pytest.approx(v.tokens_per_s_per_chip / chip.value("tdp"))
    slow = choose.evaluate(w, chip, t0=1.0)
    assert slow.binding == "overhead" and slow.step_time == pytest.approx(1.0 + v.step_time)
    tpu = choose.evaluate(w, "tpu-v5e")
    assert tpu.tokens_per_joule is None and any("TDP" in n for n in tpu.notes)


def test_a_model_too_big_for_any_count_is_a_capacity_verdict():
    # 64 sequences of 128 k tokens: the cache alone, split over at most 8 KV heads, outgrows 64 chips
    v = choose.evaluate(choose.Workload("serve", "llama-3.1-405b", batch=64, context=131072), "h100-sxm")
    assert not v.fits and v.devices is None and v.binding == "capacity" and v.step_time is None
    w = choose.Workload("train", "llama-3-70b", tokens_per_step=2 ** 20, devices=2)
    v = choose.evaluate(w, "h100-sxm")
    assert not v.fits and v.binding == "capacity"


def test_a_chip_without_a_scale_up_link_talks_over_pcie():
    w = choose.Workload("serve", "llama-3-70b", batch=8, context=1024)
    v = choose.evaluate(w, "l4")
    assert v.devices > 1
    pcie = collectives.chip_links("l4").host
    assert v.link == pcie.name and v.beta == pytest.approx(1 / pcie.bandwidth("link_bandwidth"))
    assert any("PCIe" in n for n in v.notes)
    assert any("no measured latency" in n for n in v.notes) and v.alpha == 0


# -- the measured table --------------------------------------------------------------------------

def test_every_measured_row_is_under_its_chips_dense_peak_and_sourced():
    rows = choose.achieved_table()
    assert rows
    for r in rows:
        chip = specs.get_chip(r.chip)
        assert 0 < r.value <= chip.peak_flops[r.dtype]
        assert r.fraction == pytest.approx(r.value / chip.peak_flops[r.dtype])
        assert r.source.url.startswith("https://") and r.method
        assert r.value == pytest.approx(r.raw * 1e12)


def test_achieved_fields_are_none_without_a_row_and_never_change_the_main_numbers(monkeypatch):
    w = choose.Workload("train", "llama-3-8b", tokens_per_step=2 ** 20, devices=8)
    none = choose.evaluate(w, "tpu-v5p")
    assert choose.achieved("tpu-v5p", "bf16") is None
    assert none.achieved_fraction is none.achieved_flops is none.step_time_at_achieved is None
    with_row = choose.evaluate(w, "h100-sxm")
    row = choose.achieved("h100-sxm", "bf16")
    assert with_row.achieved_flops == row.value and with_row.peak_flops == specs.get_chip("h100-sxm").peak_flops["bf16"]
    # at the measured rate the compute term grows by peak / measured; the main step is at the peak
    assert with_row.step_time_at_achieved == pytest.approx(max(with_row.compute_time / row.fraction,
                                                               with_row.comm_time))
    monkeypatch.setattr(choose, "_achieved_rows", lambda: ())
    without = choose.evaluate(w, "h100-sxm")
    assert without.achieved_fraction is None and without.tokens_per_s_per_chip_at_achieved is None
    for field in ("step_time", "tokens_per_s", "compute_time", "comm_time", "devices", "binding"):
        assert getattr(without, field) == getattr(with_row, field)


def _data(**row):
    base = dict(chip="h100-sxm", dtype="bf16", value=700.0, unit="TFLOP/s", method="m", source="s")
    base.update(row)
    return {"sources": {"s": {"title": "t", "url": "https://example.org", "kind": "secondary"}},
            "measured": [{k: v for k, v in base.items() if v is not None}]}


def test_parse_achieved_rejects_bad_rows():
    assert choose.parse_achieved(_data())[0].value == pytest.approx(700e12)
    with pytest.raises(ValueError, match="exceeds"):
        choose.parse_achieved(_data(value=1979.0))  # the sparse figure
    with pytest.raises(ValueError, match="chip"):
        choose.parse_achieved(_data(chip="h999"))
    with pytest.raises(ValueError, match="dtype"):
        choose.parse_achieved(_data(dtype="fp7"))
    with pytest.raises(ValueError, match="no dense fp8"):
        choose.parse_achieved(_data(chip="a100-80gb", dtype="fp8"))
    with pytest.raises(ValueError, match="missing"):
        choose.parse_achieved(_data(method=None))
    with pytest.raises(ValueError, match="source"):
        choose.parse_achieved(_data(source="nope"))


# -- ranking and bad input -----------------------------------------------------------------------

def test_rank_returns_every_eligible_chip_once_fitting_first():
    w = choose.Workload("serve", "llama-3-70b", batch=16, context=4096)
    ranked = choose.rank(w)
    keys = [v.chip for v in ranked]
    skipped = choose.skipped(w)
    assert len(keys) == len(set(keys))
    assert set(keys) | set(skipped) == {c.key for c in specs.chips()} and not set(keys) & set(skipped)
    assert "host-cpu" in skipped and "v100-sxm2" in skipped  # no bf16 peak
    fits = [v.fits for v in ranked]
    assert fits == sorted(fits, reverse=True)
    rates = [v.tokens_per_s_per_chip for v in ranked if v.fits]
    assert rates == sorted(rates, reverse=True)
    rows = choose.table_rows(ranked)
    assert len(rows) == len(ranked) and all(len(r) == len(choose.TABLE_HEADER) for r in rows)
    assert choose.rank(w, chips=["h100-sxm", "h100-sxm", "v100-sxm2"])[0].chip == "h100-sxm"
    assert len(choose.rank(w, chips=["h100-sxm", "h100-sxm", "v100-sxm2"])) == 1


@pytest.mark.parametrize("kwargs, name", [
    (dict(mode="infer", model="llama-3-8b"), "mode"),
    (dict(mode="serve", model="llama-9"), "model"),
    (dict(mode="serve", model="llama-3-8b", batch=0), "batch"),
    (dict(mode="serve", model="llama-3-8b", batch=True), "batch"),
    (dict(mode="serve", model="llama-3-8b", context=2.0), "context"),
    (dict(mode="serve", model="llama-3-8b", dtype="fp7"), "dtype"),
    (dict(mode="serve", model="llama-3-8b", tpot_target=float("nan")), "tpot_target"),
    (dict(mode="serve", model="llama-3-8b", tokens_per_step=10), "tokens_per_step"),
    (dict(mode="train", model="llama-3-8b"), "tokens_per_step"),
    (dict(mode="train", model="llama-3-8b", tokens_per_step=8, tpot_target=0.1), "tpot_target"),
    (dict(mode="train", model="llama-3-8b", tokens_per_step=8, trainable_fraction=0.5), "trainable_fraction"),
    (dict(mode="finetune", model="llama-3-8b", tokens_per_step=8, trainable_fraction=1.5), "trainable_fraction"),
    (dict(mode="finetune", model="llama-3-8b", tokens_per_step=8, recompute=1), "recompute"),
])
def test_bad_workload_names_the_field(kwargs, name):
    with pytest.raises((ValueError, KeyError, TypeError), match=name):
        choose.Workload(**kwargs)


def test_bad_evaluate_arguments_name_themselves():
    w = choose.Workload("serve", "llama-3-8b")
    with pytest.raises(ValueError, match="t0"):
        choose.evaluate(w, "h100-sxm", t0=-1.0)
    with pytest.raises(KeyError, match="chip"):
        choose.evaluate(w, "h999")
    with pytest.raises(TypeError, match="workload"):
        choose.evaluate({"mode": "serve"}, "h100-sxm")
    with pytest.raises(ValueError, match="chip='v100-sxm2'.*bf16"):
        choose.evaluate(w, "v100-sxm2")
    with pytest.raises(ValueError, match="devices"):
        choose.train_memory(choose.Workload("train", TOY, tokens_per_step=8), 0)
    with pytest.raises(ValueError, match="serve"):
        choose.train_flops(w)
    assert choose.Workload("serve", "llama-3-8b", batch=np.int64(4), tpot_target=np.float64(0.1)).batch == 4


# -- tail latency: the plan through chapter 08's simulator ----------------------------------------

SERVE8 = choose.Workload("serve", "llama-3-8b", batch=8, context=2048, tpot_target=0.05)


def _plan(chip):
    return choose.evaluate(SERVE8, chip)


@pytest.mark.parametrize("chip", ["h100-sxm", "l4", "tpu-v5e"])
def test_decode_times_equal_the_tensor_parallel_step_at_every_batch_and_context(chip):
    v = _plan(chip)
    times = choose.DecodeTimes(SERVE8, v)
    for b in (1, 3, 8):
        for c in (1, 100, 2047):
            direct = collectives.tp_decode_step(SERVE8.model, v.devices, b, c, v.peak_flops, v.memory_bandwidth,
                                                v.alpha, v.beta).step_time
            assert times(b, c) == pytest.approx(direct, rel=1e-9)


def test_decode_times_add_t0_and_refuse_a_batch_above_the_plan():
    v = choose.evaluate(SERVE8, "h100-sxm", t0=1e-3)
    v0 = choose.evaluate(SERVE8, "h100-sxm")
    assert choose.DecodeTimes(SERVE8, v)(4, 500) == pytest.approx(choose.DecodeTimes(SERVE8, v0)(4, 500) + 1e-3)
    with pytest.raises(ValueError, match="b="):
        choose.DecodeTimes(SERVE8, v)(9, 10)
    with pytest.raises(ValueError, match="c="):
        choose.DecodeTimes(SERVE8, v)(2, -1.0)


def test_prefill_on_several_devices_adds_two_ring_allreduces_per_layer():
    cfg = SERVE8.model
    one = choose.evaluate(SERVE8, "h100-sxm")
    assert one.devices == 1
    single = choose.PrefillTimes(SERVE8, one)(1000)
    assert single == pytest.approx(float(choose.serving.prefill_step(cfg, one.peak_flops, one.memory_bandwidth)
                                         .seconds(1000, 0)))
    # the same chip priced as if the plan were 4 devices: 4x the peak and bandwidth, plus the rings
    four = dataclasses.replace(one, devices=4, alpha=2e-6, beta=1e-11)
    n, p = 1000 * cfg.d_model * 2, 4
    ring = 2 * (p - 1) * 2e-6 + 2 * (p - 1) / p * n * 1e-11
    expect = float(choose.serving.prefill_step(cfg, 4 * one.peak_flops, 4 * one.memory_bandwidth).seconds(1000, 0))
    assert choose.PrefillTimes(SERVE8, four)(1000) == pytest.approx(expect + 2 * cfg.n_layers * ring)


def test_a_lone_request_waits_only_for_its_prefill_and_decodes_at_batch_one():
    # one request every 100,000 s on average (the closest two of these 20 are 26 s apart, each takes
    # under a second): nothing queues, every sequence decodes alone
    r = choose.serve_tail(SERVE8, "h100-sxm", rate=1e-5, output=64, requests=20)
    v = _plan("h100-sxm")
    prompt = SERVE8.context - 64
    assert r.prompt == prompt and r.devices == v.devices and r.mean_step == v.step_time
    # (arrivals near 1e6 s leave about 1e-10 s of rounding in a difference of times)
    assert r.ttft_p50 == pytest.approx(choose.PrefillTimes(SERVE8, v)(prompt), rel=1e-6)
    assert r.ttft_p99 == pytest.approx(r.ttft_p50, rel=1e-6)
    times = choose.DecodeTimes(SERVE8, v)
    assert times(1, prompt) <= r.tpot_p50 <= times(1, prompt + 64)
    assert r.mean_batch == pytest.approx(1.0)
    assert r.utilization < 0.01


def test_an_overloaded_server_fills_its_batch_and_its_queue():
    r = choose.serve_tail(SERVE8, "l4", rate=1000.0, output=32, requests=200)
    v = _plan("l4")
    times = choose.DecodeTimes(SERVE8, v)
    assert r.mean_batch > 0.9 * SERVE8.batch
    assert r.utilization == pytest.approx(1.0, abs=0.02)
    # never faster than full batches at the shortest context, with no prefills at all
    assert r.token_throughput <= SERVE8.batch / times(SERVE8.batch, r.prompt)
    assert r.ttft_p99 > 10 * r.ttft_p50 or r.ttft_p99 > 1.0  # the queue, not the prefill, sets the tail
    assert r.meets_target == (r.tpot_p99 <= SERVE8.tpot_target)


@pytest.mark.parametrize("kwargs, match", [
    (dict(rate=0.0), "rate="), (dict(rate=1.0, output=0), "output="),
    (dict(rate=1.0, output=2048), "output=2048"), (dict(rate=1.0, prompt=2000, output=100), "exceeds workload.context"),
    (dict(rate=1.0, requests=0), "requests="), (dict(rate=1.0, seed=-1), "seed="),
])
def test_serve_tail_names_a_bad_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        choose.serve_tail(SERVE8, "h100-sxm", **kwargs)


def test_serve_tail_refuses_training_and_a_chip_that_cannot_hold_the_model():
    train = choose.Workload("train", "llama-3-8b", tokens_per_step=4096)
    with pytest.raises(ValueError, match="workload.mode='train'"):
        choose.serve_tail(train, "h100-sxm", 1.0)
    huge = choose.Workload("serve", "llama-3.1-405b", batch=256, context=131072)
    assert not choose.evaluate(huge, "l4").fits
    with pytest.raises(ValueError, match="does not fit"):
        choose.serve_tail(huge, "l4", 1.0)


def test_decode_times_fast_path_gives_the_checked_answer_and_still_refuses_bad_contexts():
    v = _plan("tpu-v5e")
    times = choose.DecodeTimes(SERVE8, v)
    slow = times(np.int64(5), np.float64(700.5))  # numpy scalars take the checked path
    assert times(5, 700.5) == slow and times(5, np.float64(700.5)) == slow  # a batch already priced
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="c="):
            times(5, bad)


# -- the most load a plan carries within its targets --------------------------------------------------

@pytest.mark.parametrize("chip", ["h100-sxm", "tpu-v5e"])
def test_saturation_rate_is_what_an_overloaded_simulated_server_completes(chip):
    """Closed form against the simulator: offered four times the saturation rate, a continuous-
    batching server runs full batches back to back and completes requests at that rate."""
    sat = choose.saturation_rate(SERVE8, chip, output=64)
    v = _plan(chip)
    prompt = SERVE8.context - 64
    # the prefill gives the first token; 63 decode steps give the rest
    by_hand = 1 / (choose.PrefillTimes(SERVE8, v)(prompt) + 63 * choose.DecodeTimes(SERVE8, v)(8, prompt + 32) / 8)
    assert sat == pytest.approx(by_hand, rel=1e-12)
    r = choose.serve_tail(SERVE8, chip, 4 * sat, output=64, requests=400)
    completed = r.token_throughput / 64  # requests/s
    assert r.mean_batch > 0.95 * SERVE8.batch
    assert completed == pytest.approx(sat, rel=1e-6)  # measured: equal to rounding


def test_max_load_is_a_boundary_that_a_scan_of_loads_agrees_with():
    w = choose.Workload("serve", "llama-3-8b", batch=16, context=4096, tpot_target=0.020)
    found = choose.max_load(w, "a100-80gb", ttft_target=2.0, requests=120, rel_tol=0.05)
    assert 0 < found.rate < found.missed <= found.rate * 1.05 and found.missed <= found.saturation
    assert found.rate_per_device == found.rate / found.devices
    assert found.tail.rate == found.rate and found.tail.tpot_p99 <= 0.020 and found.tail.ttft_p99 <= 2.0
    assert found.limit in ("p99 TPOT", "p99 TTFT", "saturation")
    # an independent scan of loads with the same sample path: every load up to the answer meets both
    # targets, every load from the first miss on misses one, as the answer's limit says
    meets = lambda t: t.tpot_p99 <= 0.020 and t.ttft_p99 <= 2.0  # noqa: E731
    for rate in np.geomspace(found.saturation * 0.05, found.saturation * 0.999, 12):
        t = choose.serve_tail(w, "a100-80gb", rate, requests=120)
        if rate <= found.rate:
            assert meets(t), rate
        elif rate >= found.missed:
            assert not meets(t), rate
    if found.limit != "saturation":
        t = choose.serve_tail(w, "a100-80gb", found.missed, requests=120)
        assert (t.tpot_p99 > 0.020) if found.limit == "p99 TPOT" else (t.ttft_p99 > 2.0)


def test_max_load_is_zero_when_a_lone_request_misses_and_grows_as_a_target_loosens():
    w = choose.Workload("serve", "llama-3-8b", batch=16, context=4096, tpot_target=0.020)
    v = choose.evaluate(w, "l4")
    # alone, a request decodes at batch 1: on these chips that step is already over the target
    assert choose.DecodeTimes(w, v)(1, 4096 - 256) > 0.020
    none = choose.max_load(w, "l4", ttft_target=2.0)
    assert none.rate == 0.0 and none.tail is None and none.limit == "p99 TPOT" and none.simulations == 1
    tight = choose.max_load(w, "h100-sxm", ttft_target=0.5, requests=120)
    loose = choose.max_load(w, "h100-sxm", ttft_target=5.0, requests=120)
    assert tight.rate <= loose.rate < loose.saturation
    assert tight.limit == "p99 TTFT"


@pytest.mark.parametrize("chip", ["a100-80gb", "tpu-v5e", "tpu-v6e", "h100-pcie"])
def test_the_tpot_bound_predicts_which_plans_the_simulation_finds_tpot_limited(chip):
    """The closed-form rule (a plan whose saturation rate is under B / ((output − 1) · target)
    misses the TPOT target before it saturates) against max_load's simulated answer, on chips on
    both sides of the bound (3.14 requests/s for this workload)."""
    w = choose.Workload("serve", "llama-3-8b", batch=16, context=4096, tpot_target=0.020)
    bound = choose.tpot_bound_rate(16, 256, 0.020)
    assert bound == pytest.approx(16 / (255 * 0.020))
    found = choose.max_load(w, chip, ttft_target=2.0, requests=1000)
    assert (found.limit == "p99 TPOT") == (found.saturation < bound), (found.saturation, found.limit)


def test_explain_loads_names_each_limit_with_its_chips():
    w = choose.Workload("serve", "llama-3-8b", batch=16, context=4096, tpot_target=0.020)
    loads = [choose.max_load(w, c, ttft_target=2.0, requests=200) for c in ("a100-80gb", "tpu-v5p", "l4")]
    assert [x.limit for x in loads][::2] == ["p99 TPOT", "p99 TPOT"] and loads[2].rate == 0
    text = choose.explain_loads(loads)
    assert "On NVIDIA A100 SXM4 80GB the p99 time per token breaks first" in text
    assert "16 / (255 × the saturation rate)" in text and "3.14 requests/s" in text
    assert f"On {loads[1].name} " in text
    assert "NVIDIA L4 carries no load at all: a lone request already misses the p99 TPOT target." in text
    with pytest.raises(TypeError):
        choose.explain_loads([1])


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "needs a target"), (dict(ttft_target=0.0), "ttft_target="), (dict(ttft_target=1.0, rel_tol=0.0), "rel_tol="),
    (dict(ttft_target=1.0, rel_tol=2.0), "rel_tol="), (dict(ttft_target=1.0, requests=0), "requests="),
    (dict(ttft_target=1.0, output=4096), "output=4096"),
])
def test_max_load_names_a_bad_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        choose.max_load(dataclasses.replace(SERVE8, tpot_target=None), "h100-sxm", **kwargs)


# -- the boring rule and the ranking in words ------------------------------------------------------

def test_flop_utilization_is_the_compute_share_of_the_step():
    v = choose.evaluate(SERVE8, "h100-sxm")
    assert v.flop_utilization == pytest.approx(v.compute_time / v.step_time)
    assert 0 < v.flop_utilization < 0.5  # decode at batch 8 is memory-bound
    huge = choose.evaluate(choose.Workload("serve", "llama-3.1-405b", batch=256, context=131072), "l4")
    assert huge.flop_utilization is None


def test_simplest_takes_the_fewest_devices_that_meet_the_target():
    base = choose.evaluate(SERVE8, "h100-sxm")
    a = dataclasses.replace(base, chip="a", devices=4, meets_target=True, tokens_per_s_per_chip=9e9)
    b = dataclasses.replace(base, chip="b", devices=2, meets_target=True, tokens_per_s_per_chip=1.0)
    c = dataclasses.replace(base, chip="c", devices=1, meets_target=False)
    d = dataclasses.replace(base, chip="d", fits=False, devices=None, meets_target=None)
    assert choose.simplest([a, b, c, d]).chip == "b"
    # a tie on devices goes to the more tokens/s per chip
    e = dataclasses.replace(b, chip="e", tokens_per_s_per_chip=2.0)
    assert choose.simplest([b, e]).chip == "e"
    assert choose.simplest([c, d]) is None
    assert choose.simplest([]) is None
    with pytest.raises(TypeError, match="verdicts"):
        choose.simplest([a, "b"])


def test_explain_names_the_top_chips_in_order_and_counts_the_rest():
    vs = choose.rank(SERVE8, ["h100-sxm", "l4", "a100-80gb"])
    text = choose.explain(vs, top=2)
    fit = [v for v in vs if v.fits]
    assert text.index(fit[0].name) < text.index(fit[1].name)
    assert fit[2].name not in text.split(".")[0]  # only the top two in the first sentence
    assert f"bound by {fit[0].binding}" in text
    missed = [v for v in fit if v.meets_target is False]
    assert f"{len(fit) - len(missed)} of the {len(fit)} chips that fit meet" in text
    huge = choose.Workload("serve", "llama-3.1-405b", batch=256, context=131072)
    assert "None of the 1 chips" in choose.explain(choose.rank(huge, ["l4"]))


def test_explain_refuses_mixed_modes_and_a_bad_top():
    serve = choose.evaluate(SERVE8, "h100-sxm")
    train = choose.evaluate(choose.Workload("train", "llama-3-8b", tokens_per_step=4096), "h100-sxm")
    with pytest.raises(ValueError, match="mix modes"):
        choose.explain([serve, train])
    with pytest.raises(ValueError, match="top="):
        choose.explain([serve], top=0)
    with pytest.raises(ValueError, match="verdicts"):
        choose.explain([])
