"""accelbook.models.overhead: the three-regime model, fusion bytes, compilation and buckets (chapter 05)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelbook.models import overhead, roofline

P, W, T0 = 989.5e12, 3.35e12, 10e-6  # H100-like ceilings and a 10 µs overhead


def test_call_time_adds_the_overhead_to_the_roofline_time():
    assert overhead.call_time(1e9, 1e9, T0, P, W) == pytest.approx(T0 + 1e9 / W)
    assert overhead.call_time(1e15, 1e9, T0, P, W) == pytest.approx(T0 + 1e15 / P)
    assert overhead.call_time(0, 0, T0, P, W) == T0


@given(st.floats(0, 1e16), st.floats(0, 1e13), st.floats(0, 1e-2))
def test_pipelined_time_is_the_max_and_never_less_than_half_the_serial_time(f, q, t0):
    serial = overhead.call_time(f, q, t0, P, W)
    piped = overhead.call_time(f, q, t0, P, W, pipelined=True)
    assert piped == pytest.approx(max(t0, f / P, q / W))
    assert serial / 2 <= piped * (1 + 1e-12) and piped <= serial * (1 + 1e-12)
    if f or q:
        assert serial == pytest.approx(t0 + roofline.min_time(f, q, P, W))


def test_regime_names_the_largest_term_and_works_on_arrays():
    assert overhead.regime(1, 1, T0, P, W) == "overhead"
    assert overhead.regime(1, 1e9, T0, P, W) == "bandwidth"
    assert overhead.regime(1e14, 1e9, T0, P, W) == "compute"
    labels = overhead.regime(np.array([1, 1, 1e14]), np.array([1, 1e9, 1e9]), T0, P, W)
    assert list(labels) == ["overhead", "bandwidth", "compute"]
    assert overhead.regime(0, T0 * W, T0, P, W) == "overhead"  # a tie goes to the earlier name


def test_overhead_crossover_is_where_memory_time_equals_t0():
    q = overhead.overhead_crossover_bytes(T0, W)
    assert q == pytest.approx(T0 * W)
    assert overhead.call_time(0, q, T0, P, W) == pytest.approx(2 * T0)
    with pytest.raises(ValueError, match="t0"):
        overhead.overhead_crossover_bytes(0, W)


@pytest.mark.parametrize("args", [(-1, 1, T0, P, W), (1, 1, -T0, P, W), (1, 1, T0, 0, W),
                                  (1, 1, T0, P, math.inf), (math.nan, 1, T0, P, W)])
def test_call_time_rejects_bad_input(args):
    with pytest.raises(ValueError):
        overhead.call_time(*args)


def test_square_matmul_regimes_match_their_definitions():
    r = overhead.square_matmul_regimes(T0, P, W, bytes_per_element=2)
    assert 3 * 2 * r.n_memory**2 / W == pytest.approx(T0)
    assert 2 * r.n_compute**3 / P == pytest.approx(T0)
    assert r.n_ridge == pytest.approx(roofline.square_matmul_crossover(P, W, 2))
    assert not r.has_bandwidth_regime  # 10 µs hides the memory-bound sizes of an H100-like chip
    assert r.n_overhead_end == r.n_compute
    tiny = overhead.square_matmul_regimes(1e-10, P, W, 2)
    assert tiny.has_bandwidth_regime and tiny.n_overhead_end == tiny.n_memory


def test_square_matmul_regimes_agree_with_regime():
    for t0 in (1e-10, 1e-8, T0):
        r = overhead.square_matmul_regimes(t0, P, W, 2)
        n = np.geomspace(2, 1e5, 400)
        labels = overhead.regime(2 * n**3, 6 * n**2, t0, P, W)
        assert ("bandwidth" in set(labels)) == r.has_bandwidth_regime
        first_not_overhead = n[np.argmax(labels != "overhead")]
        assert first_not_overhead == pytest.approx(r.n_overhead_end, rel=0.03)


def test_spans_groups_runs_of_labels():
    x = [1, 2, 3, 4, 5]
    assert overhead.spans(x, ["a", "a", "b", "b", "a"]) == [("a", 1, 2), ("b", 3, 4), ("a", 5, 5)]
    assert overhead.spans([1.0], ["x"]) == [("x", 1.0, 1.0)]
    with pytest.raises(ValueError):
        overhead.spans([2, 1], ["a", "b"])
    with pytest.raises(ValueError):
        overhead.spans([1, 2], ["a"])


def test_chain_bytes_fused_is_one_pass():
    assert overhead.chain_bytes(8, 1000, 4, fused=True) == 8000
    assert overhead.chain_bytes(8, 1000, 4, fused=False) == 8 * 8000
    with pytest.raises(ValueError, match="n_ops=0"):
        overhead.chain_bytes(0, 10, fused=True)


@given(st.integers(1, 512), st.integers(1, 10**9), st.floats(1e-7, 1e-4))
def test_chain_time_eager_grows_with_ops_and_fused_never_loses(n, elements, t_op):
    eager = overhead.chain_time(n, elements, t_op=t_op, bandwidth=W, fused=False)
    fused = overhead.chain_time(n, elements, t_op=t_op, bandwidth=W, fused=True)
    assert eager == pytest.approx(n * (t_op + 8 * elements / W))
    assert fused == pytest.approx(t_op + 8 * elements / W)
    assert fused <= eager * (1 + 1e-12)


def test_chain_time_counts_compute_when_given_a_peak():
    t = overhead.chain_time(4, 10**6, t_op=0, bandwidth=1e30, fused=True, peak_flops=1e9, flops_per_op=2)
    assert t == pytest.approx(4 * 2 * 10**6 / 1e9)
    with pytest.raises(ValueError, match="peak_flops"):
        overhead.chain_time(4, 10, t_op=0, bandwidth=W, fused=True, peak_flops=0)



def test_chain_times_are_chain_time_on_arrays():
    ops, sizes = np.array([1, 2, 16, 512]), np.array([[1], [100], [10**6], [10**9]])
    for kw in (dict(t_op=2e-5, bandwidth=W), dict(t_op=2e-5, t0=1e-5, bandwidth=W, bytes_per_element=2),
               dict(t_op=0, bandwidth=1e30, peak_flops=1e9, flops_per_op=2)):
        eager, fused = overhead.chain_times(ops, sizes, **kw)
        assert eager.shape == fused.shape == (4, 4)
        for (i, j), n in np.ndenumerate(np.broadcast_to(ops, (4, 4))):
            N = int(sizes[i, 0])
            assert eager[i, j] == pytest.approx(overhead.chain_time(int(n), N, fused=False, **kw))
            assert fused[i, j] == pytest.approx(overhead.chain_time(int(n), N, fused=True, **kw))
    e, f = overhead.chain_times(8, 1000, t_op=1e-5, bandwidth=W)
    assert isinstance(e, float) and isinstance(f, float)
    assert overhead.chain_times(1.5, 10.5, t_op=0, bandwidth=1.0)[1] == pytest.approx(2 * 4 * 10.5)
    for bad in (dict(n_ops=0, elements=10), dict(n_ops=1, elements=0), dict(n_ops=[1, -1], elements=10)):
        with pytest.raises(ValueError):
            overhead.chain_times(**bad, t_op=1e-5, bandwidth=W)

def test_amortized_time_and_break_even():
    assert overhead.amortized_time(1e-3, 1.0, 1000) == pytest.approx(2e-3)
    assert list(overhead.amortized_time(0, 1.0, [1, 2])) == [1.0, 0.5]
    assert overhead.break_even_calls(1.0, 2e-3, 1e-3) == 1001
    assert overhead.break_even_calls(0.0, 2e-3, 1e-3) == 1
    assert overhead.break_even_calls(1.0, 1e-3, 1e-3) is None
    with pytest.raises(ValueError, match="calls"):
        overhead.amortized_time(1, 1, 0)


@given(st.integers(1, 10**6), st.integers(1, 4096))
def test_pow2_bucket_is_the_next_power_of_two(n, minimum):
    b = overhead.pow2_bucket(n, minimum)
    assert b >= n and b >= minimum and b & (b - 1) == 0
    assert b // 2 < max(n, minimum)


@given(st.lists(st.integers(1, 10**5), min_size=1, max_size=50), st.integers(1, 64))
def test_bucket_plan_shapes_and_padding_stay_within_the_stated_bounds(lengths, minimum):
    plan = overhead.bucket_plan(lengths, minimum)
    lo, hi = max(min(lengths), minimum), max(max(lengths), minimum)
    assert plan.shapes_padded <= math.ceil(math.log2(hi)) - math.ceil(math.log2(lo)) + 1
    for n, b in zip(plan.lengths, plan.padded):
        assert b - n < n or n < minimum  # padding is less than half, unless the minimum pads further


def test_bucket_plan_counts_shapes_and_waste():
    plan = overhead.bucket_plan([3, 5, 6, 9, 9, 17], minimum=4)
    assert plan.padded == (4, 8, 8, 16, 16, 32)
    assert plan.shapes_exact == 5 and plan.shapes_padded == 4
    assert plan.useful_fraction == pytest.approx(49 / 84)
    with pytest.raises(ValueError):
        overhead.bucket_plan([])
    with pytest.raises(ValueError, match="lengths"):
        overhead.bucket_plan([0, 3])


def test_expected_distinct_matches_a_simulation():
    rng = np.random.default_rng(0)
    sims = [len(set(rng.integers(0, 100, 40))) for _ in range(4000)]
    assert overhead.expected_distinct(100, 40) == pytest.approx(np.mean(sims), rel=0.01)
    assert overhead.expected_distinct(5, 0) == 0
    assert overhead.expected_distinct(1, 7) == 1


def test_sync_step_time_between_sum_and_max():
    assert overhead.sync_step_time(0.03, 0.08, 1) == pytest.approx(0.11)
    assert overhead.sync_step_time(0.03, 0.08, math.inf) == pytest.approx(0.08)
    assert overhead.sync_step_time(0.08, 0.03, 10) == pytest.approx(0.083)
    assert list(overhead.sync_step_time(1.0, 1.0, [1, 2])) == [2.0, 1.5]
    with pytest.raises(ValueError, match="sync_every"):
        overhead.sync_step_time(1, 1, 0.5)


# -- a layer's launches against its bytes ---------------------------------------------------------------

def test_launch_budget_by_hand():
    from types import SimpleNamespace as Op

    ops = [Op(kind="elementwise", bytes=100.0), Op(kind="matmul", bytes=1000.0), Op(kind="attention", bytes=400.0),
           Op(kind="elementwise", bytes=500.0)]
    b = overhead.launch_budget(ops, t_launch=1e-5, bandwidth=1e6)
    assert b.kernels == 4 and b.launch_time == pytest.approx(4e-5)
    assert b.bytes == 2000.0 and b.elementwise_bytes == 600.0 and b.elementwise_share == pytest.approx(0.3)
    assert b.memory_time == pytest.approx(2e-3) and b.overhead_ratio == pytest.approx(0.02)


def test_launch_budget_of_the_decoder_layer_at_batch_one_is_launch_heavy_on_an_h100():
    from accelbook import specs
    from accelbook.models import decoder

    h100 = specs.get_chip("h100-sxm")
    ops = decoder.layer_ops(decoder.LLAMA2_7B, batch=1, context=4096, phase="decode", bytes_per_value=2)
    b = overhead.launch_budget(ops, 10e-6, h100.memory_bandwidth)
    flops, q = decoder.totals(ops)
    assert b.bytes == pytest.approx(q)
    assert b.memory_time == pytest.approx(q / h100.memory_bandwidth)
    assert b.elementwise_share < 0.01  # at batch 1 the weights dominate the bytes


@pytest.mark.parametrize("args", [([], 1e-5, 1e9), ([3], 1e-5, 1e9), (None, 1e-5, 1e9)])
def test_launch_budget_rejects_bad_ops(args):
    with pytest.raises((ValueError, TypeError)):
        overhead.launch_budget(*args)


def test_launch_budget_rejects_bad_numbers():
    from types import SimpleNamespace as Op

    with pytest.raises(ValueError):
        overhead.launch_budget([Op(kind="matmul", bytes=1.0)], -1.0, 1e9)
    with pytest.raises(ValueError):
        overhead.launch_budget([Op(kind="matmul", bytes=1.0)], 1e-5, 0)


def test_expected_distinct_is_stable_for_huge_value_counts():
    # V·(1 − (1 − 1/V)^D) loses everything once 1 − 1/V rounds to 1; about D for V ≫ D
    assert overhead.expected_distinct(10**15, 5) == pytest.approx(5.0, rel=1e-9)
    assert overhead.expected_distinct(2**53, 5) == pytest.approx(5.0, rel=1e-9)
    assert overhead.expected_distinct(1, 7) == 1.0 and overhead.expected_distinct(4, 0) == 0.0
    # against the closed form where it is exact enough
    assert overhead.expected_distinct(10, 3) == pytest.approx(10 * (1 - 0.9**3))


@pytest.mark.parametrize("bad", [True, "1e-3", None, [1e-3], float("nan")])
def test_overhead_times_reject_bools_strings_and_lists_by_name(bad):
    with pytest.raises(ValueError, match="^t0="):
        overhead.call_time(1e9, 1e6, bad, 1e12, 1e11)
    with pytest.raises(ValueError, match="^t_compile="):
        overhead.break_even_calls(bad, 1e-3, 1e-4)


def test_overhead_flags_must_be_bools():
    with pytest.raises(ValueError, match="pipelined=1 must be True or False"):
        overhead.call_time(1e9, 1e6, 1e-5, 1e12, 1e11, pipelined=1)
    with pytest.raises(ValueError, match="fused=None must be True or False"):
        overhead.chain_bytes(2, 10, fused=None)


def test_break_even_overflow_and_shapes_are_errors():
    with pytest.raises(ValueError, match="not finite"):
        overhead.break_even_calls(1.0, 1e-310, 0.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        overhead.call_time([1.0, 2.0], [1.0, 2.0, 3.0], 1e-5, 1e12, 1e11)
    with pytest.raises(ValueError, match="calls=.* whole numbers"):
        overhead.amortized_time(1e-3, 1.0, 2.5)
