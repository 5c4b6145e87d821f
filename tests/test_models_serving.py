"""models.serving: the decode step time, its limits, and the serving simulator.

Checked against independent expectations: decoder's own op counts and its ``predict``; the
closed forms of the M/M/1 and M/D/1 queues over replications (Pollaczek–Khinchine; sojourn
times of M/M/1 are exponential with rate μ − λ); Little's law on the sample path; traces
worked out by hand; and two plain reference simulators written here, step by step, for the
dynamic and continuous policies. Chips and models in the formula tests are made up unless the
model comes from the data file.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from accelbook.models import decoder, serving

P, W = 1e15, 3e12  # a made-up chip: FLOP/s and bytes/s


# -- the step time --------------------------------------------------------------------------------

def _head(config, b, bpv=2):
    """FLOP and bytes of the final RMSNorm and the LM head for ``b`` sequences, by hand."""
    d, v = config.d_model, config.vocab_size
    return 4 * b * d + 2 * b * d * v, bpv * ((2 * b * d + d) + (d * v + b * d + b * v))


@pytest.mark.parametrize("b, c", [(1, 1), (7, 300), (64, 1024), (3, 4096)])
def test_decode_step_is_n_layers_of_layer_ops_plus_the_head(b, c):
    cfg = decoder.LLAMA2_7B
    step = serving.decode_step(cfg, 1024, P, W)
    f_layer, q_layer = decoder.totals(decoder.layer_ops(cfg, b, c, "decode"))
    f_head, q_head = _head(cfg, b)
    assert step.flops(b, c) == pytest.approx(cfg.n_layers * f_layer + f_head, rel=1e-12)
    assert step.bytes(b, c) == pytest.approx(cfg.n_layers * q_layer + q_head, rel=1e-12)
    no_head = serving.decode_step(cfg, 1024, P, W, lm_head=False)
    assert no_head.flops(b, c) == pytest.approx(cfg.n_layers * f_layer, rel=1e-12)


def test_decode_step_reads_every_weight_but_the_embedding_table_once():
    cfg = decoder.LLAMA2_7B
    step = serving.decode_step(cfg, 1024, P, W, bytes_per_value=2)
    assert step.weight_bytes == 2 * (decoder.model_params(cfg) - cfg.vocab_size * cfg.d_model)


def test_decode_step_leading_order_closed_forms():
    """F ≈ 2·N·b + 4·b·c·d·L and Q ≈ bytes·(N + 2·b·c·kv·L): the textbook decode estimate."""
    cfg = decoder.LLAMA2_7B
    n = decoder.model_params(cfg) - cfg.vocab_size * cfg.d_model  # weights a step multiplies
    step = serving.decode_step(cfg, 0, P, W)
    for b, c in [(1, 512), (16, 2048), (128, 4096)]:
        assert step.flops(b, c) == pytest.approx(2 * n * b + 4 * b * c * cfg.d_model * cfg.n_layers, rel=0.01)
        kv = 2 * b * c * cfg.kv_dim * cfg.n_layers
        assert step.bytes(b, c) == pytest.approx(2 * (n + kv), rel=0.02)


def test_decode_step_time_agrees_with_decoder_predict_on_the_same_ops():
    cfg = decoder.LLAMA2_7B
    b, c, t0 = 16, 700, 2e-5
    step = serving.decode_step(cfg, c, P, W, t0=t0, lm_head=False)
    ops = decoder.layer_ops(cfg, b, c, "decode") * cfg.n_layers
    assert step(b) == pytest.approx(decoder.predict(ops, P, W, t0).time, rel=1e-12)
    assert step.seconds(b, c) == step(b)  # the default context


def test_compute_bound_batch_is_the_first_batch_where_compute_time_wins():
    step = serving.RooflineStep(flops_per_seq=2e9, flops_per_context=4e3, weight_bytes=2e9, bytes_per_seq=1e5,
                                bytes_per_context=10.0, peak_flops=P, bandwidth=W, t0=1e-5, context=100)
    b = np.arange(1, 5000)
    compute = step.flops(b) / P >= step.bytes(b) / W
    assert step.compute_bound_batch() == b[compute][0]
    # the closed form: b* = ceil(Q_w / (W · (f/P − q/W)))
    f, q = 2e9 + 4e3 * 100, 1e5 + 10.0 * 100
    assert step.compute_bound_batch() == math.ceil(2e9 / (W * (f / P - q / W)))


def test_llama2_7b_decode_never_turns_compute_bound_at_long_context_on_a_made_up_chip():
    """Each sequence's own KV reads (2·c·kv·L values) cost more time than its 2·N FLOP."""
    step = serving.decode_step(decoder.LLAMA2_7B, 1024, P, W)
    per_seq_memory = step.bytes_per_context * 1024 / W
    per_seq_compute = (step.flops_per_seq + step.flops_per_context * 1024) / P
    assert per_seq_memory > per_seq_compute
    assert step.compute_bound_batch() is None
    assert step.compute_bound_batch(context=1) is not None


def test_prefill_step_is_tokens_through_the_weights():
    cfg = decoder.LLAMA2_7B
    pre = serving.prefill_step(cfg, P, W, t0=1e-4)
    assert pre.context == 0
    assert pre.weight_bytes == 2 * (decoder.model_params(cfg) - 2 * cfg.vocab_size * cfg.d_model - cfg.d_model)
    matmul_weights = cfg.n_layers * (decoder.layer_params(cfg) - 2 * cfg.d_model)
    tokens = 4096
    assert pre.flops(tokens) == pytest.approx(2 * matmul_weights * tokens, rel=0.01)
    assert pre(tokens) == pytest.approx(1e-4 + max(pre.flops(tokens) / P, pre.bytes(tokens) / W))
    assert pre(tokens) > serving.decode_step(cfg, 0, P, W, t0=1e-4, lm_head=False)(1)


def test_step_table_interpolates_and_never_extrapolates():
    table = serving.StepTable([1, 2, 4, 8], [1.0, 1.5, 2.0, 4.0])
    assert table(1) == 1.0
    assert table(3) == pytest.approx(1.75)
    assert table(6) == pytest.approx(3.0)
    assert np.allclose(table(np.array([1.5, 8.0])), [1.25, 4.0])
    for bad in (0.5, 9, np.array([2.0, 10.0])):
        with pytest.raises(ValueError, match="batch"):
            table(bad)
    with pytest.raises(ValueError, match="increasing"):
        serving.StepTable([1, 4, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same length"):
        serving.StepTable([1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="seconds"):
        serving.StepTable([1, 2], [1.0, -2.0])


def test_throughput_is_batch_over_step_time_for_every_form():
    table = serving.StepTable([1, 2, 4], [1e-3, 1.5e-3, 2e-3])
    assert np.allclose(serving.throughput(table, [1, 2, 4]), [1000.0, 2 / 1.5e-3, 2000.0])
    assert serving.throughput(lambda b: 1e-3 * (1 + b), 3) == pytest.approx(3 / 4e-3)
    assert serving.throughput(lambda b, c: 1e-6 * c, 2, context=1000) == pytest.approx(2 / 1e-3)
    step = serving.decode_step(decoder.LLAMA2_7B, 1024, P, W)
    b = np.array([1, 8, 64])
    assert np.allclose(serving.throughput(step, b), b / step(b))
    with pytest.raises(ValueError, match="context"):
        serving.throughput(table, 2, context=100)
    with pytest.raises(ValueError, match="context"):
        serving.throughput(lambda b, c: 1.0, 2)
    with pytest.raises(ValueError, match="step_time"):
        serving.throughput(lambda b: -1.0, 2)


def test_batch_limits_kv_batch_is_the_largest_batch_that_fits():
    step = serving.decode_step(decoder.LLAMA2_7B, 1024, P, W)
    capacity, weights = 80e9, 13.5e9
    per_token = decoder.kv_cache_bytes(decoder.LLAMA2_7B, 1)
    lim = serving.batch_limits(step, capacity, weights, per_token)
    fits = [b for b in range(1, 1000) if weights + b * 1024 * per_token <= capacity]
    assert lim.kv_batch == max(fits)
    assert lim.compute_batch is None and lim.binding == "kv capacity"
    assert lim.regime(1) == "bandwidth" and lim.regime(lim.kv_batch + 1) == "kv capacity"
    small = serving.batch_limits(step, capacity, weights, per_token, context=1)
    assert small.compute_batch == step.compute_bound_batch(1)
    assert small.regime(small.compute_batch) == "compute" and small.regime(small.compute_batch - 1) == "bandwidth"
    assert serving.batch_limits(step, 10e9, weights, per_token).kv_batch == 0  # the weights alone do not fit


# -- the workload ---------------------------------------------------------------------------------

def test_arrivals_have_the_requested_rate_and_burstiness_and_are_reproducible():
    for scv in (1.0, 4.0, 0.25):
        t = serving.arrival_times(200_000, 50.0, scv=scv, seed=3)
        gaps = np.diff(np.concatenate([[0.0], t]))
        assert gaps.mean() == pytest.approx(1 / 50.0, rel=0.02)
        assert gaps.var() / gaps.mean() ** 2 == pytest.approx(scv, rel=0.06)
    assert np.array_equal(serving.arrival_times(100, 5.0, seed=1), serving.arrival_times(100, 5.0, seed=1))
    assert not np.array_equal(serving.arrival_times(100, 5.0, seed=1), serving.arrival_times(100, 5.0, seed=2))


def test_the_same_seed_gives_independent_streams_for_arrivals_and_service():
    n = 100_000
    a = serving.arrival_times(n, 1.0, seed=7)
    r = serving.make_requests(a, service=lambda rng, k: rng.exponential(1.0, k), seed=7)
    gaps = np.diff(np.concatenate([[0.0], a]))
    assert abs(np.corrcoef(gaps, r.service)[0, 1]) < 4 / math.sqrt(n)


def test_requests_validate_their_fields():
    with pytest.raises(ValueError, match="arrival"):
        serving.Requests([0.0, 2.0, 1.0], 1, 1)
    with pytest.raises(ValueError, match="prompt"):
        serving.Requests([0.0, 1.0], [1, 0], 1)
    with pytest.raises(ValueError, match="output"):
        serving.Requests([0.0, 1.0], 1, [1, 2, 3])
    with pytest.raises(ValueError, match="output"):
        serving.Requests([0.0, 1.0], 1, [1.0, 2.0])
    with pytest.raises(ValueError, match="service"):
        serving.Requests([0.0, 1.0], 1, 1, service=[1.0, -1.0])
    with pytest.raises(ValueError, match="output"):
        serving.make_requests([0.0, 1.0], output=lambda rng, n: rng.geometric(2.0, n))
    r = serving.make_requests(np.array([0.0, 1.0, 1.0]), prompt=np.int64(5), output=[1, 2, 3])
    assert r.n == 3 and r.prompt.tolist() == [5, 5, 5] and r.service is None


# -- queueing theory ------------------------------------------------------------------------------

SEEDS = range(20)
MU = 1.0  # service rate, requests/s


def _mm1_runs(rho: float, n: int):
    lam = rho * MU
    runs = []
    for seed in SEEDS:
        r = serving.make_requests(serving.arrival_times(n, lam, seed=seed),
                                  service=lambda rng, k: rng.exponential(1 / MU, k), seed=seed)
        runs.append(serving.simulate(r, policy="fixed", max_batch=1))
    return runs


def _ci(values):
    """Mean and standard error over independent replications."""
    v = np.asarray(values)
    return v.mean(), v.std(ddof=1) / math.sqrt(v.size)


def _inside(closed, values, rel_width=0.1):
    mean, se = _ci(values)
    assert 3 * se < rel_width * closed, f"the replications are too short to test: ±{3 * se:.3g} around {closed:.3g}"
    assert abs(mean - closed) <= 3 * se, f"closed form {closed:.4g} outside {mean:.4g} ± {3 * se:.3g}"


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.8])
def test_batch_one_with_exponential_service_is_m_m_1(rho):
    lam = rho * MU
    n = 40_000
    warm = n // 10  # the queue starts empty: leave out its first requests
    runs = _mm1_runs(rho, n)
    _inside(rho / (MU - lam), [r.queueing_delay[warm:].mean() for r in runs])  # Wq
    _inside(1 / (MU - lam), [r.latency[warm:].mean() for r in runs])  # W
    for q in (0.90, 0.99):  # sojourn time ~ Exp(μ − λ)
        _inside(-math.log(1 - q) / (MU - lam), [np.quantile(r.latency[warm:], q) for r in runs], rel_width=0.15)
    _inside(rho, [r.utilization for r in runs], rel_width=0.05)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.8])
def test_batch_one_with_constant_service_is_m_d_1_under_every_policy(rho):
    """Pollaczek–Khinchine for M/D/1: Wq = ρ / (2μ(1 − ρ)). Constant service is one decode step of
    1/μ (two output tokens, free prefill); at max_batch 1 the three policies are the same queue."""
    lam = rho * MU
    n = 20_000
    warm = n // 10
    waits = []
    for seed in SEEDS:
        r = serving.make_requests(serving.arrival_times(n, lam, seed=seed), prompt=8, output=2, seed=seed)
        fixed = serving.simulate(r, lambda b: 1 / MU, policy="fixed", max_batch=1)
        waits.append(fixed.queueing_delay[warm:].mean())
        if seed == 0:
            dynamic = serving.simulate(r, lambda b: 1 / MU, policy="dynamic", max_batch=1, max_wait=0.0)
            cont = serving.simulate(r, lambda b: 1 / MU, policy="continuous", max_batch=1)
            served = serving.simulate(serving.make_requests(r.arrival, service=1 / MU), policy="fixed", max_batch=1)
            for other in (dynamic, cont, served):
                assert np.allclose(other.start, fixed.start, rtol=0, atol=1e-9)
                assert np.allclose(other.end, fixed.end, rtol=0, atol=1e-9)
    _inside(rho / (2 * MU * (1 - rho)), waits)


def _time_average_in_system(arrival, end, t1, t2):
    """∫ N(t) dt / (t2 − t1) over [t1, t2], N(t) = #{arrival ≤ t < end}, from the sorted events."""
    times = np.concatenate([arrival, end])
    steps = np.concatenate([np.ones(arrival.size), -np.ones(end.size)])
    order = np.argsort(times, kind="stable")
    times, n_after = times[order], np.cumsum(steps[order])
    grid = np.clip(np.concatenate([[t1], times, [t2]]), t1, t2)
    level = np.concatenate([[np.sum((arrival <= t1) & (end > t1))], n_after])  # N just after each event
    return float(np.sum(level * np.diff(grid)) / (t2 - t1))


@pytest.mark.parametrize("policy", ["fixed", "dynamic", "continuous"])
def test_littles_law_on_the_sample_path(policy):
    """Time-average number in the system over a window = arrival rate in it × mean time in system."""
    n = 20_000
    r = serving.make_requests(serving.arrival_times(n, 40.0, scv=4.0, seed=11),
                              prompt=lambda rng, k: rng.integers(1, 64, k),
                              output=lambda rng, k: rng.geometric(1 / 20, k), seed=11)
    step = lambda b: 1e-3 * (1 + 0.1 * b)  # noqa: E731
    extra = {"dynamic": dict(max_wait=0.02), "continuous": dict(kv_capacity=4000)}.get(policy, {})
    run = serving.simulate(r, step, policy=policy, max_batch=16, prefill_time=lambda t: 1e-5 * t, **extra)
    t1, t2 = np.quantile(r.arrival, [0.1, 0.9])
    inside = (r.arrival >= t1) & (r.arrival < t2)
    lam = inside.sum() / (t2 - t1)
    L = _time_average_in_system(run.arrival, run.end, t1, t2)
    assert L == pytest.approx(lam * run.latency[inside].mean(), rel=0.03)
    # over the whole run the two sides are equal: ∫N dt = Σ (end − arrival)
    t_end = run.end.max()
    assert _time_average_in_system(run.arrival, run.end, 0.0, t_end) * t_end == pytest.approx(run.latency.sum())


def test_m_m_1_number_in_system_is_rho_over_one_minus_rho():
    rho = 0.6
    values = []
    for run in _mm1_runs(rho, 20_000):
        t1, t2 = np.quantile(run.arrival, [0.1, 0.9])
        values.append(_time_average_in_system(run.arrival, run.end, t1, t2))
    _inside(rho / (1 - rho), values)


# -- the policies, traced by hand -----------------------------------------------------------------

ARRIVE = [0.0, 1.0, 2.0, 2.5, 7.0]
OUT = [2, 3, 2, 2, 4]


def _t(b):
    return 1 + 0.5 * b  # seconds per decode step of b sequences


def test_fixed_batches_by_hand():
    r = serving.Requests(ARRIVE, 1, OUT)
    run = serving.simulate(r, _t, policy="fixed", max_batch=2)
    # batch {0, 1} ready at 1, two steps of 2 s; {2, 3} waits for the server until 5, one step;
    # {4} alone runs after the last arrival, three steps of 1.5 s
    assert run.start.tolist() == [1, 1, 5, 5, 7]
    assert run.first_token.tolist() == [1, 1, 5, 5, 7]
    assert run.end.tolist() == [3, 5, 7, 7, 11.5]
    assert run.batch_size.tolist() == [2, 2, 1]
    assert run.batch_start.tolist() == [1, 5, 7]
    assert run.busy_time == pytest.approx(4 + 2 + 4.5)


def test_fixed_batches_with_a_padded_prefill_by_hand():
    r = serving.Requests(ARRIVE, [2, 4, 1, 1, 3], OUT)
    run = serving.simulate(r, _t, policy="fixed", max_batch=2, prefill_time=lambda tokens: 0.1 * tokens)
    # {0, 1}: prefill 2 × 4 padded tokens = 0.8 s; {2, 3}: 2 × 1 → 0.2 s; {4}: 3 → 0.3 s
    assert np.allclose(run.start, [1, 1, 5.8, 5.8, 8.0])
    assert np.allclose(run.first_token, [1.8, 1.8, 6.0, 6.0, 8.3])
    assert np.allclose(run.end, [3.8, 5.8, 8.0, 8.0, 12.8])
    # the padded cache after the prefill, at the batch's end, and after it leaves
    assert np.allclose(run.kv_time, [1.8, 5.8, 5.8, 6.0, 8.0, 8.0, 8.3, 12.8, 12.8])
    assert run.kv_tokens.tolist() == [2 * 5, 2 * 7, 0, 2 * 2, 2 * 3, 0, 4, 7, 0]
    assert run.batch_steps.tolist() == [2, 1, 3]


def test_dynamic_batches_by_hand():
    r = serving.Requests(ARRIVE, 1, OUT)
    run = serving.simulate(r, _t, policy="dynamic", max_batch=3, max_wait=0.6)
    # {0} fires on the cap at 0.6; {1, 2} waits for the server (free at 2.1); {3} likewise at 6.1;
    # {4} fires on the cap at 7.6
    assert np.allclose(run.start, [0.6, 2.1, 2.1, 6.1, 7.6])
    assert np.allclose(run.end, [2.1, 6.1, 4.1, 7.6, 12.1])
    assert run.batch_size.tolist() == [1, 2, 1, 1]


def test_dynamic_fires_early_when_the_batch_is_full():
    r = serving.Requests([0.0, 0.1, 0.2, 5.0], 1, 2)
    run = serving.simulate(r, lambda b: 1.0, policy="dynamic", max_batch=3, max_wait=10.0)
    assert np.allclose(run.start, [0.2, 0.2, 0.2, 15.0])
    assert run.batch_size.tolist() == [3, 1]


def test_static_decode_reads_the_padded_cache_that_grows_each_step():
    r = serving.Requests([0.0, 0.0], [3, 1], [4, 2])
    run = serving.simulate(r, lambda b, c: b * c, policy="fixed", max_batch=2)
    # padded to 3 prompt tokens: steps at contexts 4, 5, 6 take 2·4, 2·5, 2·6 seconds
    assert run.end.tolist() == [8 + 10 + 12, 8]


def test_continuous_batching_by_hand():
    r = serving.Requests(ARRIVE, [2, 4, 1, 1, 3], OUT)
    run = serving.simulate(r, _t, policy="continuous", max_batch=2, prefill_time=lambda tokens: 0.1 * tokens)
    # 0: prefill 0.2, one step alone (1.5) → 1.7; 1 joins at 1.7 (prefill 0.4), 2 at 2.1 (0.1);
    # a step of two (2 s) ends 2 at 4.2; 3 joins (0.1); a step of two ends 1 and 3 at 6.3;
    # 4 arrives at 7: prefill 0.3, three steps alone → 11.8
    assert np.allclose(run.start, [0, 1.7, 2.1, 4.2, 7])
    assert np.allclose(run.first_token, [0.2, 2.1, 2.2, 4.3, 7.3])
    assert np.allclose(run.end, [1.7, 6.3, 4.2, 6.3, 11.8])
    assert run.batch_size.tolist() == [1, 2, 2, 1] and run.batch_steps.tolist() == [1, 1, 1, 3]
    assert np.allclose(run.batch_start, [0.2, 2.2, 4.3, 7.3])
    # prompt + generated after each prefill, at each run's end, and after sequences leave:
    # 0 joins (2 + 1), steps (4), leaves; 1 joins (+5), 2 joins (+2), a step (+2), 2 leaves (−3);
    # 3 joins (+2), a step (+2), 1 and 3 leave; 4 joins (3 + 1), three steps (+3), leaves
    assert run.kv_tokens.tolist() == [3, 4, 0, 5, 7, 9, 6, 8, 10, 0, 4, 7, 0]


def test_continuous_batching_waits_for_kv_room():
    r = serving.Requests([0.0, 0.0, 0.0], 2, 3)  # 5 tokens each; 6 fit: one at a time
    run = serving.simulate(r, lambda b: 1.0, policy="continuous", max_batch=3, kv_capacity=6)
    assert run.start.tolist() == [0, 2, 4] and run.end.tolist() == [2, 4, 6]
    roomy = serving.simulate(r, lambda b: 1.0, policy="continuous", max_batch=3, kv_capacity=15)
    assert roomy.end.tolist() == [2, 2, 2]


# -- the policies against plain reference simulators ----------------------------------------------

def _reference_static(a, p, o, step, prefill, max_batch, max_wait):
    """Dynamic batching event by event, decoding step by step (max_wait=inf with a final flush:
    fixed batches)."""
    n = len(a)
    start, first, end = np.zeros(n), np.zeros(n), np.zeros(n)
    queue, i, free = deque(), 0, 0.0
    while i < n or queue:
        t = free
        if not queue and a[i] > t:
            t = a[i]
        while i < n and a[i] <= t:
            queue.append(i)
            i += 1
        while len(queue) < max_batch:
            deadline = a[queue[0]] + max_wait
            if i >= n and math.isinf(deadline):
                break  # the flush of the last partial batch
            if t >= deadline:
                break
            if i < n and a[i] <= deadline:
                t = a[i]
                queue.append(i)
                i += 1
            else:
                t = deadline
        batch = [queue.popleft() for _ in range(min(max_batch, len(queue)))]
        pk = max(p[j] for j in batch)
        k = len(batch)
        for j in batch:
            start[j] = t
        t += prefill(k * pk)
        for j in batch:
            first[j] = t
            if o[j] == 1:
                end[j] = t
        for step_j in range(1, max(o[j] for j in batch)):
            t += step(k, pk + step_j)
            for j in batch:
                if o[j] == step_j + 1:
                    end[j] = t
        free = t
    return start, first, end


def _reference_continuous(a, p, o, step, prefill, max_batch, cap):
    """Continuous batching one step at a time. Returns the per-request times, the batch size of
    every decode step, and the KV cache in use (prompt + generated of the running sequences) after
    each prefill, after each decode step, and again after sequences leave."""
    n = len(a)
    start, first, end = np.zeros(n), np.zeros(n), np.zeros(n)
    running, i, t, done, sizes, kv = [], 0, 0.0, 0, [], []
    while done < n:
        if not running and a[i] > t:
            t = a[i]
        joiners = []
        while (i < n and a[i] <= t and len(running) + len(joiners) < max_batch
               and sum(p[j] + o[j] for j, _ in running) + sum(p[j] + o[j] for j in joiners) + p[i] + o[i] <= cap):
            joiners.append(i)
            i += 1
        if joiners:
            for j in joiners:
                start[j] = t
            t += prefill(sum(p[j] for j in joiners))
            for j in joiners:
                first[j] = t
                if o[j] == 1:
                    end[j] = t
                    done += 1
                else:
                    running.append([j, 1])
            kv.append((t, sum(p[j] + g for j, g in running)))
            continue
        context = sum(p[j] + g for j, g in running) / len(running)
        t += step(len(running), context)
        sizes.append(len(running))
        for r in running:
            r[1] += 1
        kv.append((t, sum(p[j] + g for j, g in running)))
        finished = [r for r in running if r[1] == o[r[0]]]
        for j, g in finished:
            end[j] = t
            done += 1
        if finished:
            running = [r for r in running if r[1] < o[r[0]]]  # a finished sequence leaves at once
            kv.append((t, sum(p[j] + g for j, g in running)))
    return start, first, end, np.array(sizes), kv


def _is_subsequence(points, reference):
    """Every (time, tokens) of ``points``, in order, among ``reference`` (times to 1e-9)."""
    it = iter(reference)
    return all(any(abs(t - rt) <= 1e-9 * max(1.0, abs(t)) and v == rv for rt, rv in it) for t, v in points)


def _random_workload(seed, n=300, rate=30.0):
    return serving.make_requests(serving.arrival_times(n, rate, scv=2.0, seed=seed),
                                 prompt=lambda rng, k: rng.integers(1, 40, k),
                                 output=lambda rng, k: rng.integers(1, 30, k), seed=seed)


def _ctx_step(b, c):
    return 1e-3 * (1 + 0.2 * b + 0.002 * b * c)


# roofline steps of made-up models: memory-bound throughout; turning compute-bound as the caches
# grow (attention FLOP per cached token dominate); turning memory-bound as they grow (KV reads)
ROOFLINES = (serving.RooflineStep(2e6, 1e3, 2e9, 1e6, 1e5, P, W, t0=1e-4),
             serving.RooflineStep(1e6, 1.25e9, 3e9, 1e5, 10.0, P, W, t0=1e-4),
             serving.RooflineStep(5e10, 0.0, 0.0, 0.0, 3e6, P, W, t0=1e-4))


def test_the_made_up_roofline_steps_cross_over_within_the_tested_contexts():
    b, c = 16, np.array([10.0, 60.0])
    first, second = (step.flops(b, c) / P > step.bytes(b, c) / W for step in ROOFLINES[1:])
    assert first.tolist() == [False, True] and second.tolist() == [True, False]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("max_batch, max_wait", [(1, 0.0), (4, 0.05), (8, 0.2), (8, math.inf)])
def test_fixed_and_dynamic_agree_with_a_step_by_step_reference(seed, max_batch, max_wait):
    r = _random_workload(seed, n=200)
    a, p, o = r.arrival.tolist(), r.prompt.tolist(), r.output.tolist()
    prefill = lambda tokens: 1e-4 * tokens  # noqa: E731
    for step in (_ctx_step, *ROOFLINES):
        want = _reference_static(a, p, o, lambda b, c: float(step(b, c)), prefill, max_batch, max_wait)
        if math.isinf(max_wait):
            run = serving.simulate(r, step, policy="fixed", max_batch=max_batch, prefill_time=prefill)
        else:
            run = serving.simulate(r, step, policy="dynamic", max_batch=max_batch, max_wait=max_wait,
                                   prefill_time=prefill)
        for got, expected in zip((run.start, run.first_token, run.end), want):
            assert np.allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("max_batch, cap", [(1, math.inf), (6, 200), (16, math.inf), (16, 120)])
def test_continuous_agrees_with_a_step_by_step_reference(seed, max_batch, cap):
    r = _random_workload(seed, n=200, rate=60.0)
    a, p, o = r.arrival.tolist(), r.prompt.tolist(), r.output.tolist()
    prefill = lambda tokens: 2e-5 * tokens  # noqa: E731
    capacity = None if math.isinf(cap) else int(cap)
    table = serving.StepTable(np.arange(1, max_batch + 1), 1e-3 * (1 + 0.2 * np.arange(1, max_batch + 1)))
    for step in (_ctx_step, *ROOFLINES, table):
        call = (lambda b, c: float(step(b))) if step is table else (lambda b, c: float(step(b, c)))
        *want, sizes, kv = _reference_continuous(a, p, o, call, prefill, max_batch, cap)
        run = serving.simulate(r, step, policy="continuous", max_batch=max_batch, kv_capacity=capacity,
                               prefill_time=prefill)
        for got, expected in zip((run.start, run.first_token, run.end), want):
            assert np.allclose(got, expected, rtol=1e-9, atol=1e-9)
        assert np.array_equal(np.bincount(run.batch_size, weights=run.batch_steps, minlength=max_batch + 1),
                              np.bincount(sizes, minlength=max_batch + 1))
        assert _is_subsequence(zip(run.kv_time, run.kv_tokens), kv)
        assert run.kv_tokens.max() == max(v for _, v in kv) <= cap


# -- the properties the brief names ---------------------------------------------------------------

def test_no_request_waits_longer_than_the_cap_when_the_server_is_idle():
    cap = 0.05
    r = serving.make_requests(serving.arrival_times(5000, 20.0, seed=4), prompt=4, output=3, seed=4)
    run = serving.simulate(r, lambda b: 1e-4, policy="dynamic", max_batch=4, max_wait=cap)
    assert run.queueing_delay.max() <= cap + 1e-12
    # every batch that is not full fired on the cap of its oldest request
    firsts = np.concatenate([[0], np.cumsum(run.batch_size)[:-1]])
    partial = run.batch_size < 4
    assert np.allclose(run.batch_start[partial] - r.arrival[firsts[partial]], cap)
    assert np.all(run.batch_start[~partial] - r.arrival[firsts[~partial]] <= cap)
    assert partial.any() and (~partial).any()


def test_continuous_batching_never_exceeds_the_kv_capacity_or_the_batch():
    cap, max_batch = 3000, 32
    r = serving.make_requests(serving.arrival_times(3000, 400.0, seed=5),
                              prompt=lambda rng, k: rng.integers(50, 400, k),
                              output=lambda rng, k: rng.integers(1, 300, k), seed=5)
    run = serving.simulate(r, lambda b: 1e-3 * (1 + 0.05 * b), policy="continuous", max_batch=max_batch,
                           kv_capacity=cap)
    assert run.kv_tokens.max() <= cap
    # rebuilt from the requests alone: at every admission, the running requests' prompt + output
    events = np.unique(run.start)
    held = [(r.prompt + r.output)[(run.start <= t) & (run.end > t)] for t in events]
    assert max(h.sum() for h in held) <= cap
    assert max(h.size for h in held) <= max_batch
    assert max(h.sum() for h in held) > 0.8 * cap  # the limit was reached, so the test could fail
    assert run.kv_tokens.max() > 0.5 * cap


def test_a_seed_reproduces_a_whole_run():
    def run(seed):
        r = serving.make_requests(serving.arrival_times(2000, 30.0, scv=3.0, seed=seed),
                                  prompt=lambda rng, k: rng.integers(1, 100, k),
                                  output=lambda rng, k: rng.geometric(1 / 30, k), seed=seed)
        return serving.simulate(r, lambda b: 1e-3 * (1 + 0.1 * b), policy="continuous", max_batch=8)
    one, again, other = run(9), run(9), run(10)
    for name in ("arrival", "start", "first_token", "end", "batch_size", "kv_tokens"):
        assert np.array_equal(getattr(one, name), getattr(again, name))
    assert not np.array_equal(one.end, other.end)


def test_summary_matches_numpy_on_the_arrays():
    r = _random_workload(3)
    run = serving.simulate(r, _ctx_step, policy="dynamic", max_batch=4, max_wait=0.01)
    s = run.summary((50, 99))
    assert s["latency_p99"] == pytest.approx(np.percentile(run.end - run.arrival, 99))
    assert s["ttft_p50"] == pytest.approx(np.median(run.first_token - run.arrival))
    many = r.output > 1
    tpot = (run.end - run.first_token)[many] / (r.output[many] - 1)
    assert s["tpot_mean"] == pytest.approx(tpot.mean())
    assert s["throughput"] == pytest.approx(r.n / (run.end.max() - r.arrival[0]))
    assert s["token_throughput"] == pytest.approx(r.output.sum() / (run.end.max() - r.arrival[0]))
    decode = np.repeat(run.batch_size, run.batch_steps)  # the batch of every decode step
    assert s["mean_batch"] == pytest.approx(decode.mean())
    assert 0 < s["utilization"] <= 1


def test_batching_raises_throughput_at_a_latency_cost():
    """The chapter's claim, on a step time with a large fixed part: dynamic batching serves a load
    that batch 1 cannot (utilization over 1 at batch 1), and its p50 latency includes the wait."""
    r = serving.make_requests(serving.arrival_times(4000, 150.0, seed=6), prompt=16, output=8, seed=6)
    step = serving.StepTable([1, 64], [1e-3, 2e-3])
    one = serving.simulate(r, step, policy="fixed", max_batch=1)
    many = serving.simulate(r, step, policy="dynamic", max_batch=32, max_wait=0.005)
    assert 150.0 * 7 * 1e-3 > 1  # offered work per second at batch 1
    assert one.latency[-100:].mean() > 10 * many.latency[-100:].mean()  # batch 1 falls behind
    assert np.percentile(many.latency, 99) < 0.05 and many.mean_batch > 1.2  # batches keep up
    light = serving.make_requests(serving.arrival_times(4000, 5.0, seed=6), prompt=16, output=8, seed=6)
    alone = serving.simulate(light, step, policy="fixed", max_batch=1)
    waited = serving.simulate(light, step, policy="dynamic", max_batch=32, max_wait=0.005)
    assert np.median(waited.latency) > np.median(alone.latency)  # the latency tax at low load


def test_bad_arguments_name_themselves():
    r = serving.Requests([0.0, 1.0], [4, 4], [2, 2])
    with pytest.raises(ValueError, match="max_wait"):
        serving.simulate(r, _t, policy="fixed", max_batch=2, max_wait=0.1)
    with pytest.raises(ValueError, match="max_wait"):
        serving.simulate(r, _t, policy="dynamic", max_batch=2)
    with pytest.raises(ValueError, match="kv_capacity"):
        serving.simulate(r, _t, policy="dynamic", max_batch=2, max_wait=0.1, kv_capacity=100)
    with pytest.raises(ValueError, match="kv_capacity"):
        serving.simulate(r, _t, policy="continuous", max_batch=2, kv_capacity=5)
    with pytest.raises(ValueError, match="max_batch"):
        serving.simulate(r, serving.StepTable([1, 1.5], [1.0, 2.0]), policy="fixed", max_batch=2)
    with pytest.raises(ValueError, match="step_time"):
        serving.simulate(r, lambda b: -1.0, policy="fixed", max_batch=2)
    with pytest.raises(ValueError, match="step_time"):
        serving.simulate(r, policy="fixed", max_batch=2)
    with pytest.raises(TypeError, match="prefill_time"):
        serving.simulate(r, _t, policy="fixed", max_batch=2, prefill_time=3)
    s = serving.Requests([0.0, 1.0], 1, 1, service=[1.0, 1.0])
    with pytest.raises(ValueError, match="continuous"):
        serving.simulate(s, policy="continuous", max_batch=2)
    with pytest.raises(ValueError, match="step_time"):
        serving.simulate(s, _t, policy="fixed", max_batch=2)
    with pytest.raises(TypeError, match="requests"):
        serving.simulate([0.0, 1.0], _t, policy="fixed", max_batch=2)


def test_the_fused_bound_moves_only_the_weights_and_the_cache():
    """fused=True: bytes = weights + b * c * (2 * n_layers * kv_dim * bytes per value), counted here
    from the config by hand; the FLOP do not change, so the compute-bound batch can only fall."""
    cfg = decoder.LLAMA2_7B
    plain = serving.decode_step(cfg, 1024, P, W)
    fused = serving.decode_step(cfg, 1024, P, W, fused=True)
    kv_token = 2 * cfg.n_layers * cfg.n_kv_heads * (cfg.d_model // cfg.n_heads) * 2
    assert (fused.bytes_per_seq, fused.bytes_per_context) == (0.0, kv_token)
    assert fused.weight_bytes == plain.weight_bytes
    assert (fused.flops_per_seq, fused.flops_per_context) == (plain.flops_per_seq, plain.flops_per_context)
    for c in (0, 128, 4096):
        if plain.compute_bound_batch(c) is not None:  # None: never compute-bound at this context
            assert fused.compute_bound_batch(c) <= plain.compute_bound_batch(c)
    assert fused.compute_bound_batch(0) < plain.compute_bound_batch(0)
    with pytest.raises(ValueError, match="fused"):
        serving.decode_step(cfg, 1024, P, W, fused="yes")
