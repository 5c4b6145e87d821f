"""Tests for the additions to accelbook.models.systolic made for the chapter "TPUs and systolic arrays":
mac_schedule (against the simulator's activity and product), edge_traffic (against hand counts
and the simulator's folds), utilization (against simulate) and mxu_peak (against the spec sheets)."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from accelbook import specs
from accelbook.models.systolic import (DATAFLOWS, EdgeTraffic, cycles, edge_traffic, mac_schedule,
                                       mxu_peak, simulate, utilization)


def problem(seed, M, N, K):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((M, K)), rng.standard_normal((K, N))


# ---------------------------------------------------------------------------------------------
# mac_schedule


@given(M=st.integers(1, 9), N=st.integers(1, 9), K=st.integers(1, 9), R=st.integers(1, 5),
       C=st.integers(1, 5), dataflow=st.sampled_from(sorted(DATAFLOWS)),
       double_buffer=st.booleans(), seed=st.integers(0, 999))
def test_schedule_is_the_simulators_activity_and_rebuilds_the_product(M, N, K, R, C, dataflow,
                                                                      double_buffer, seed):
    A, B = problem(seed, M, N, K)
    run = simulate(A, B, R, C, dataflow, double_buffer=double_buffer)
    sched = mac_schedule(run)
    assert sched.shape == (run.cycles, R, C, 3) and sched.dtype == np.int64
    busy = sched[..., 0] >= 0
    assert np.array_equal(busy, run.activity)
    assert np.all((sched[..., 1] >= 0) == busy) and np.all((sched[..., 2] >= 0) == busy)
    m, n, k = (sched[..., i][busy] for i in range(3))
    out = np.zeros((M, N))
    np.add.at(out, (m, n), A[m, k] * B[k, n])
    np.testing.assert_allclose(out, A @ B, rtol=1e-12, atol=1e-12)
    # every (m, n, k) term is computed exactly once
    assert len(set(zip(m.tolist(), n.tolist(), k.tolist()))) == M * N * K


def test_schedule_hand_trace_weight_stationary():
    # the 2 x 2 trace of tests/test_systolic.py: weights load in cycles 0-1, then
    # PE (r, c) multiplies A[m, r] by B[r, c] at cycle 2 + m + r + c
    run = simulate([[1, 2], [3, 4]], [[5, 6], [7, 8]], 2, 2, "ws")
    sched = mac_schedule(run)
    assert np.all(sched[:2] == -1)
    assert sched[2, 0, 0].tolist() == [0, 0, 0]
    assert sched[3].tolist() == [[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [-1, -1, -1]]]
    assert sched[5, 1, 1].tolist() == [1, 1, 1]


@pytest.mark.parametrize("dataflow, stationary", [("ws", (2, 1)), ("is", (0, 2)), ("os", (0, 1))])
def test_stationary_operand_never_changes_within_a_fold(dataflow, stationary):
    """What stays put in a PE: (k, n) for 'ws' (B), (m, k) for 'is' (A), (m, n) for 'os' (C)."""
    A, B = problem(3, 6, 5, 4)
    run = simulate(A, B, 4, 4, dataflow)
    sched = mac_schedule(run)
    for f in run.folds:
        window = sched[f.stream_start:f.end]
        for r, c in itertools.product(range(f.rows_used), range(f.cols_used)):
            cells = window[:, r, c][window[:, r, c, 0] >= 0]
            assert len({tuple(x) for x in cells[:, list(stationary)].tolist()}) == 1


def test_schedule_rejects_other_things():
    with pytest.raises(ValueError, match="SystolicRun"):
        mac_schedule(np.zeros((2, 2)))


# ---------------------------------------------------------------------------------------------
# edge_traffic


def test_edge_traffic_hand_counts():
    # 'ws', M=N=K=256 on 128 x 128: 2 x 2 folds. Each weight loads once (256*256); A enters once
    # per column block (2 * 256*256); one partial sum per output per K-fold (2 * 256*256).
    t = edge_traffic(256, 256, 256, 128, 128, "ws")
    assert (t.loaded, t.streamed, t.drained) == (65536, 131072, 131072)
    assert t.words == 327680 and t.macs == 256**3
    assert t.macs_per_word == pytest.approx(256**3 / 327680)
    # one fold, 'os' on 4 x 4 with M=N=4, K=10: A (40 words) and B (40 words) stream, C drains
    t = edge_traffic(4, 4, 10, 4, 4, "os")
    assert (t.loaded, t.streamed, t.drained) == (0, 80, 16)
    # 'is' mirrors 'ws' with M and N swapped
    a, b = edge_traffic(7, 30, 11, 4, 8, "is"), edge_traffic(30, 7, 11, 4, 8, "ws")
    assert (a.loaded, a.streamed, a.drained) == (b.loaded, b.streamed, b.drained)


@pytest.mark.parametrize("dataflow", sorted(DATAFLOWS))
@pytest.mark.parametrize("M, N, K, R, C", [(6, 5, 7, 4, 3), (9, 2, 13, 4, 4), (3, 11, 5, 2, 5)])
def test_edge_traffic_equals_the_simulated_folds(dataflow, M, N, K, R, C):
    A, B = problem(1, M, N, K)
    run = simulate(A, B, R, C, dataflow)
    Q = {"ws": M, "is": N, "os": K}[dataflow]
    t = edge_traffic(M, N, K, R, C, dataflow)
    folds = run.folds
    if dataflow == "os":
        assert t.loaded == 0
        assert t.streamed == sum((f.rows_used + f.cols_used) * Q for f in folds)
        assert t.drained == sum(f.rows_used * f.cols_used for f in folds)
    else:
        assert t.loaded == sum(f.rows_used * f.cols_used for f in folds)
        assert t.streamed == sum(f.rows_used * Q for f in folds)
        assert t.drained == sum(f.cols_used * Q for f in folds)


def test_reuse_approaches_half_the_array_side():
    """Kung's point: reuse grows with the array; a datapath reading two operands per MAC gets 1/2."""
    n = 2**16
    for side in (8, 32, 128, 256):
        reuse = edge_traffic(n, n, n, side, side, "ws").macs_per_word
        assert reuse == pytest.approx(side / 2, rel=0.01)
    assert isinstance(edge_traffic(1, 1, 1, 1, 1, "ws"), EdgeTraffic)


def test_edge_traffic_rejects_bad_input():
    with pytest.raises(ValueError, match="dataflow"):
        edge_traffic(2, 2, 2, 2, 2, "xs")
    with pytest.raises(ValueError, match="rows=0"):
        edge_traffic(2, 2, 2, 0, 2, "ws")


# ---------------------------------------------------------------------------------------------
# utilization and mxu_peak


@given(M=st.integers(1, 10), N=st.integers(1, 10), K=st.integers(1, 10), R=st.integers(1, 4),
       C=st.integers(1, 4), dataflow=st.sampled_from(sorted(DATAFLOWS)), double_buffer=st.booleans())
def test_utilization_equals_the_simulation(M, N, K, R, C, dataflow, double_buffer):
    A, B = problem(2, M, N, K)
    run = simulate(A, B, R, C, dataflow, double_buffer=double_buffer)
    assert utilization(M, N, K, R, C, dataflow, double_buffer=double_buffer) == pytest.approx(
        run.utilization, rel=1e-15)


def test_utilization_worked_example_and_bad_option():
    assert utilization(256, 256, 256, 128, 128, "ws") == 256**3 / (128 * 128 * 2552)
    assert utilization(256, 256, 256, 128, 128, "ws", double_buffer=True) == 256**3 / (128 * 128 * 2168)
    with pytest.raises(ValueError, match="double_buffer"):
        utilization(2, 2, 2, 2, 2, "ws", double_buffer=1)


def test_mxu_peak_matches_every_tpu_spec_sheet_but_v6e():
    tpus = specs.chips("tpu")
    assert tpus
    for chip in tpus:
        peak = mxu_peak(chip)
        assert peak is not None, chip.key
        listed = chip.peak_flops.get("bf16", chip.peak_flops.get("int8"))
        if chip.key == "tpu-v6e":
            # Google and JAX both give two 256 x 256 MXUs per TensorCore; at the stored clock they
            # reach half the listed peak (4 MXUs, a doubled clock or 2 MACs per PE would close it)
            assert chip.value("mxus_per_tensorcore") == 2
            assert peak == pytest.approx(listed / 2, rel=0.01)
        else:
            assert peak == pytest.approx(listed, rel=0.01), chip.key


@given(M=st.integers(1, 10), N=st.integers(1, 10), K=st.integers(1, 10), R=st.integers(1, 4),
       C=st.integers(1, 4), dataflow=st.sampled_from(sorted(DATAFLOWS)))
def test_pipelined_utilization_equals_the_simulation(M, N, K, R, C, dataflow):
    A, B = problem(3, M, N, K)
    run = simulate(A, B, R, C, dataflow, pipelined=True)
    for double_buffer in (False, True):      # the pipelined machine has shadow registers anyway
        assert utilization(M, N, K, R, C, dataflow, double_buffer=double_buffer,
                           pipelined=True) == pytest.approx(run.utilization, rel=1e-15)


def test_mxu_peak_worked_example_and_non_tpus():
    v1 = specs.get_chip("tpu-v1")   # 1 core x 1 MXU x 256 x 256 x 2 x 700 MHz
    assert mxu_peak(v1) == 256 * 256 * 2 * 700e6
    assert all(mxu_peak(c) is None for c in specs.chips("gpu") + specs.chips("cpu"))
    with pytest.raises(ValueError, match="Chip"):
        mxu_peak("tpu-v1")
    assert math.isclose(mxu_peak(specs.get_chip("tpu-v5e")), 4 * 128 * 128 * 2 * 1.5e9)


# ---------------------------------------------------------------------------------------------
# the simulator runs all folds at once and places them on the timeline afterwards


@pytest.mark.parametrize("dataflow", sorted(DATAFLOWS))
@pytest.mark.parametrize("double_buffer", [False, True])
def test_many_folds_chain_on_the_controllers_timeline(dataflow, double_buffer):
    A, B = problem(5, 13, 11, 10)
    run = simulate(A, B, 3, 4, dataflow, double_buffer=double_buffer)
    np.testing.assert_allclose(run.C, A @ B, rtol=1e-12, atol=1e-12)
    assert run.folds[0].load_start == 0 and run.folds[-1].end == run.cycles
    for prev, f in zip(run.folds, run.folds[1:]):
        assert f.stream_start >= prev.end               # folds never overlap
        if dataflow == "os":
            assert f.load_start == f.stream_start == prev.end
        elif double_buffer:                             # loaded while the previous fold streamed
            assert f.load_start == prev.stream_start
            assert f.stream_start == max(prev.end, f.load_start + f.rows_used)
        else:                                           # loaded after the previous fold's last MAC
            assert f.load_start == prev.end and f.stream_start == prev.end + f.rows_used
        assert run.activity[f.stream_start:f.end].sum() == f.macs


@pytest.mark.parametrize("dataflow", sorted(DATAFLOWS))
def test_too_many_cycles_is_refused_before_simulating(dataflow):
    A, B = np.ones((2000, 2000)), np.ones((2000, 2000))   # millions of cycles on a 2 x 2 array
    with pytest.raises(ValueError, match="max_cycles"):
        simulate(A, B, 2, 2, dataflow, max_cycles=10_000)


# ---------------------------------------------------------------------------------------------
# layout_padding: the (8, 128) rule of JAX's Pallas TPU documentation (vector memory is read and
# written in (8, 128) tiles of 32-bit words; narrower types pack 32 / bits rows into a sublane)


def test_layout_tile_follows_the_packing_rule():
    from accelbook.models.systolic import layout_tile
    for dtype, bits in (("fp32", 32), ("bf16", 16), ("fp16", 16), ("int8", 8), ("fp8", 8)):
        assert layout_tile(dtype) == (8 * 32 // bits, 128)
    for bad in ("fp64", "tf32", "float32", None):
        with pytest.raises(ValueError, match="dtype"):
            layout_tile(bad)


@given(shape=st.lists(st.integers(1, 700), min_size=2, max_size=4),
       dtype=st.sampled_from(["fp32", "bf16", "int8"]))
def test_layout_padding_against_a_numpy_tiling(shape, dtype):
    """Independent check: lay the array out as whole tiles with np.pad and count the tiles."""
    from accelbook.models.systolic import layout_padding
    s = {"fp32": 8, "bf16": 16, "int8": 32}[dtype]
    x = np.ones(shape[-2:], dtype=bool)
    tiled = np.pad(x, [(0, (-shape[-2]) % s), (0, (-shape[-1]) % 128)])
    n_tiles = (tiled.shape[0] // s) * (tiled.shape[1] // 128)
    padded, wasted = layout_padding(tuple(shape), dtype)
    assert padded == (*shape[:-2], *tiled.shape)
    assert n_tiles * s * 128 == tiled.size
    assert wasted == pytest.approx(1 - x.sum() / tiled.size)
    assert 0 <= wasted < 1
    assert (wasted == 0) == (shape[-2] % s == 0 and shape[-1] % 128 == 0)


def test_layout_padding_examples_and_bad_input():
    from accelbook.models.systolic import layout_padding
    assert layout_padding((4096, 4096), "bf16") == ((4096, 4096), 0.0)
    assert layout_padding((32, 1, 64), "fp32") == ((32, 8, 128), 1 - 64 / 1024)
    assert layout_padding((1, 4096), "bf16") == ((16, 4096), 15 / 16)     # one token, bf16
    assert layout_padding((8, 4096), "fp32")[1] == 0
    for shape in ((5,), (), 7, (0, 3), (2, -1), (2.5, 3), "ab"):
        with pytest.raises(ValueError, match="shape"):
            layout_padding(shape, "fp32")


# ---------------------------------------------------------------------------------------------
# the shape-cliff sweep sits past the ridge of every accelerator (padding K only costs time there)


@pytest.mark.parametrize("key, dtype", [("tpu-v5e", "bf16"), ("tpu-v6e", "bf16"), ("h100-sxm", "fp16"),
                                        ("a100-40gb", "fp16"), ("l4", "fp16"), ("t4", "fp16")])
def test_k_cliff_sweep_is_compute_bound_on_every_accelerator(key, dtype):
    from accelbook.models.roofline import attainable, matmul_intensity
    from accelbook.models.systolic import k_cliff_sweep
    chip = specs.get_chip(key)
    T = int(chip.value("mxu_rows") or 128)       # a GPU is swept across v5e's MXU size
    MN, Ks = k_cliff_sweep(T, chip.kind)
    peak, bw = chip.peak_flops[dtype], chip.memory_bandwidth
    for K in Ks:
        intensity = matmul_intensity(MN, MN, K, 2)
        assert intensity == pytest.approx(2 * MN * MN * K / (2 * (2 * MN * K + MN * MN)))
        assert intensity > chip.ridge_point(dtype), (key, K)
        assert float(attainable(intensity, peak, bw)) == pytest.approx(peak)   # the compute roof
    assert Ks[0] == 8 * T and Ks[-1] == 10 * T and len(Ks) == 17


def test_k_cliff_sweep_bad_input():
    from accelbook.models.systolic import k_cliff_sweep
    assert k_cliff_sweep(128, "cpu")[0] == 512
    for args in ((100, "tpu"), (0, "tpu"), (128, "npu"), (128.0, "gpu")):
        with pytest.raises(ValueError):
            k_cliff_sweep(*args)


def test_simulate_bounds_its_activity_log_before_allocating():
    # a 1 x 1 product on a 4096 x 4096 array is few cycles but a 64 GiB activity log
    with pytest.raises(ValueError, match="PE-cycles to simulate"):
        simulate(np.ones((1, 1)), np.ones((1, 1)), 4096, 4096, "ws")
    with pytest.raises(ValueError, match="PE-cycles to simulate"):
        simulate(np.ones((1000, 1280)), np.ones((1280, 128)), 128, 128, "ws", max_cycles=10**7)
