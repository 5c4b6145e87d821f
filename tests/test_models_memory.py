"""models.memory: the hierarchy data, moving bytes, tiling, the I/O lower bound, the LRU cache
simulator (two implementations and closed forms), fusion and offload. Chapter 07."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from accelbook import specs
from accelbook.models import decoder
from accelbook.models import memory as M


# --- the data ------------------------------------------------------------------------------------

def test_every_value_has_a_source_and_every_measurement_a_method():
    d = M.data()
    for link in d.links.values():
        assert link.bandwidth.source.url.startswith("https://") and link.bandwidth.value > 0
    for m in d.measured:
        assert m.method and m.source.key in d.sources
        assert specs.get_chip(m.chip)


@pytest.mark.parametrize("gen", [3, 4, 5, 6])
def test_stored_pcie_links_are_one_direction_of_the_per_lane_rate(gen):
    # PCI-SIG: 8/16/32/64 GT/s per lane; 128b/130b up to 5.0, 242 of 256 bytes per FLIT in 6.0
    rate, eff = {3: (8, 128 / 130), 4: (16, 128 / 130), 5: (32, 128 / 130), 6: (64, 242 / 256)}[gen]
    expected = rate * 16 / 8 * eff * 1e9
    assert M.pcie_bandwidth(gen) == pytest.approx(expected)
    assert M.link(f"pcie{gen}-x16").bandwidth.value == pytest.approx(expected, rel=0.005)


def test_pcie_doubles_per_generation_and_scales_with_lanes():
    assert M.pcie_bandwidth(4) == pytest.approx(2 * M.pcie_bandwidth(3))
    assert M.pcie_bandwidth(5, lanes=8) == pytest.approx(M.pcie_bandwidth(5) / 2)


def test_chips_host_links_match_the_pcie_generation_they_name():
    for chip in specs.chips("gpu"):
        name = chip.specs.get("host_link")
        if name and "PCIe Gen" in name.value and chip.value("host_link_bandwidth"):
            gen = int(name.value.split("Gen")[1][0])
            assert chip.value("host_link_bandwidth") == pytest.approx(M.pcie_bandwidth(gen), rel=0.005)


def test_nvlink_c2c_is_stored_per_direction_half_of_nvidias_total():
    c2c = M.link("nvlink-c2c")
    assert c2c.bandwidth.value == pytest.approx(900e9 / 2)
    assert "both directions" in c2c.bandwidth.note


def test_measured_cycles_and_nanoseconds_agree_with_the_run_clock():
    # RRZE prints both: A100-80 L1 33.0 cycles = 23.4 ns at 1410 MHz
    cycles, seconds, record = M.latency("a100-80gb", "smem_l1")
    assert record.clock_hz == 1410e6 and cycles == 33.0
    assert seconds == pytest.approx(23.4e-9, rel=0.01)


def test_latencies_grow_down_the_hierarchy():
    for chip in ("v100-sxm2", "a100-80gb", "h100-sxm"):
        lat = M.sm_latencies(chip)
        assert lat["l1"] < lat["l2"] < lat["hbm"]


def test_sm_latencies_raise_for_a_chip_without_measurements():
    with pytest.raises(KeyError, match="t4"):
        M.sm_latencies("t4")


def test_hierarchy_of_a_gpu_and_a_tpu():
    h100 = M.hierarchy("h100-sxm")
    assert [lv.key for lv in h100] == list(M.GPU_LEVELS)
    chip = specs.get_chip("h100-sxm")
    assert h100[0].capacity == chip.value("register_file_per_sm") * chip.value("sm_count")
    assert h100[3].bandwidth == chip.memory_bandwidth and h100[3].capacity == chip.memory_bytes
    assert h100[4].bandwidth == chip.value("host_link_bandwidth")
    # faster levels are smaller
    caps = [lv.capacity for lv in h100[1:4]]
    assert caps == sorted(caps)
    v5e = M.hierarchy("tpu-v5e")
    assert [lv.key for lv in v5e] == list(M.TPU_LEVELS)
    assert v5e[1].capacity == specs.get_chip("tpu-v5e").value("on_chip_memory")


def test_hierarchy_keeps_measured_and_datasheet_bandwidths_apart():
    a100 = {lv.key: lv for lv in M.hierarchy("a100-80gb")}
    assert a100["hbm"].bandwidth == specs.get_chip("a100-80gb").memory_bandwidth
    assert a100["hbm"].measured_bandwidth == pytest.approx(1.73e12)
    assert a100["l2"].bandwidth is None and a100["l2"].measured_bandwidth == pytest.approx(5.45e12)


def test_hierarchy_rejects_the_host_cpu_and_unknown_chips():
    with pytest.raises(ValueError, match="operating system"):
        M.hierarchy("host-cpu")
    with pytest.raises(KeyError):
        M.hierarchy("no-such-chip")


def test_parse_rejects_a_bidirectional_unit_mistake_and_unknown_chips():
    base = {"sources": {"s": {"title": "t", "url": "https://x", "kind": "paper"}}}
    with pytest.raises(ValueError, match="converts to"):
        M.parse({**base, "links": {"l": {"name": "x", "bandwidth": {"value": 1, "unit": "GiB", "source": "s"}}}})
    with pytest.raises(ValueError, match="not a chip key"):
        M.parse({**base, "chips": {"nope": {}}})
    with pytest.raises(ValueError, match="unit"):
        M.parse({**base, "measured": [{"chip": "t4", "level": "hbm", "quantity": "latency", "value": 3,
                                      "unit": "GB/s", "source": "s", "method": "m"}]})


# --- moving bytes -------------------------------------------------------------------------------

def test_move_time_and_littles_law():
    assert M.move_time(1e9, 1e12, 1e-6) == pytest.approx(1e-6 + 1e-3)
    assert M.bytes_in_flight(3.35e12, 700 / 1.98e9) == pytest.approx(3.35e12 * 700 / 1.98e9)
    # half the bandwidth exactly where Q = W·L
    assert M.effective_bandwidth(1e3 * 1e-6 * 1e9, 1e12, 1e-6) == pytest.approx(0.5e12)
    assert np.allclose(M.move_time(np.array([0.0, 2.0]), 2.0), [0.0, 1.0])


def test_move_time_rejects_bad_input_by_name():
    with pytest.raises(ValueError, match="bandwidth"):
        M.move_time(1, 0)
    with pytest.raises(ValueError, match="q_bytes"):
        M.move_time(-1, 1)


# --- tiling and the I/O lower bound -------------------------------------------------------------

def test_tiled_traffic_counts_by_hand():
    t = M.tiled_matmul_traffic(64, 64, 64, 16, 16, 1, bytes_per_value=2)
    assert t.a_words == 64 * 64 * 4 and t.b_words == 64 * 64 * 4 and t.c_words == 2 * 64 * 64
    assert t.intensity == pytest.approx(2 * 64**3 / (2 * (2 * 64**3 / 16 + 2 * 64**2)))
    fits = M.tiled_matmul_traffic(8, 8, 8, 8, 8, 8)
    assert fits.words == M.fits_traffic_words(8)
    assert M.tile_footprint(16, 16, 4) == 16 * 16 + 4 * 32


def test_intensity_approaches_the_ceiling_for_large_matrices():
    for tile in (16, 64, 128):
        t = M.tiled_matmul_traffic(8192, 8192, 8192, tile, tile, 1, bytes_per_value=2)
        assert t.intensity == pytest.approx(M.intensity_ceiling(tile, 2), rel=0.02)
        assert t.intensity < M.intensity_ceiling(tile, 2)


@given(st.integers(1, 10**7), st.sampled_from([1, 2, 4]))
def test_largest_square_tile_is_the_largest_that_fits(capacity, b):
    t = M.largest_square_tile(capacity, b)
    words = capacity // b
    assert 3 * t * t <= words < 3 * (t + 1) ** 2


@given(st.integers(1, 10**7), st.integers(1, 64))
def test_largest_tile_with_a_k_slice(capacity, bk):
    t = M.largest_square_tile(capacity, 1, bk=bk)
    assert (t == 0 or M.tile_footprint(t, t, bk) <= capacity) and M.tile_footprint(t + 1, t + 1, bk) > capacity


def test_io_lower_bound_constant_and_compulsory_floor():
    n, m_fast = 4096, 2**16
    assert M.io_lower_bound(n, n, n, m_fast) == pytest.approx(2 * n**3 / math.sqrt(m_fast) - 2 * m_fast)
    assert M.io_lower_bound(4, 4, 4, 1e6) == 3 * 16
    # the best square tile meets the bound's leading term: 2n³/T with T ≈ √M
    t = M.tiled_matmul_traffic(n, n, n, 256, 256, 1)
    assert t.words / M.io_lower_bound(n, n, n, 256 * 256 + 2 * 256) == pytest.approx(1.0, rel=0.1)


# --- the cache simulator -----------------------------------------------------------------------

TRACES = [("ijk", None), ("ikj", None), ("tiled", 4), ("tiled", 8)]


@pytest.mark.parametrize("order,tile", TRACES)
@pytest.mark.parametrize("line", [1, 4])
def test_stack_distances_agree_with_the_ordered_dict_simulator(order, tile, line):
    trace = M.matmul_trace(8 if tile != 8 else 16, order, tile)
    sd = M.StackDistances(trace, line)
    for cap in (1, 2, 3, 7, 16, 40, 1000):
        assert (sd.fills(cap), sd.writebacks(cap)) == M.simulate_lru(trace, cap, line)


@given(st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=1, max_size=200), st.integers(1, 12),
       st.integers(1, 4))
def test_stack_distances_agree_on_random_traces(accesses, cap, line):
    addr = np.array([a for a, _ in accesses])
    trace = M.Trace(addr, np.array([w for _, w in accesses]), 0.0, "random")
    sd = M.StackDistances(trace, line)
    assert (sd.fills(cap), sd.writebacks(cap)) == M.simulate_lru(trace, cap, line)


def test_traces_touch_every_product_once():
    n = 6
    for order, tile in (("ijk", None), ("ikj", None), ("tiled", 3), ("tiled", 2)):
        tr = M.matmul_trace(n, order, tile)
        a = tr.addresses[tr.addresses < n * n]
        b = tr.addresses[(tr.addresses >= n * n) & (tr.addresses < 2 * n * n)]
        c = tr.addresses[tr.addresses >= 2 * n * n]
        assert np.all(tr.writes[tr.addresses >= 2 * n * n]) and not np.any(tr.writes[tr.addresses < 2 * n * n])
        assert len(b) == n**3  # every B[k, j] once per i
        assert np.bincount(b - n * n).tolist() == [n] * (n * n)
        assert len(set(c.tolist())) == n * n and len(set(a.tolist())) == n * n


@pytest.mark.parametrize("n,line", [(16, 4), (16, 2), (12, 4)])
def test_naive_order_matches_its_closed_form_when_nothing_is_reused(n, line):
    sd = M.StackDistances(M.matmul_trace(n, "ijk"), line)
    for cap in (2, 3, n // 2):
        assert sd.traffic_words(cap) == M.naive_traffic_words(n, line)


@pytest.mark.parametrize("order,tile", TRACES)
def test_everything_fits_gives_compulsory_traffic(order, tile):
    n, line = 16, 4
    sd = M.StackDistances(M.matmul_trace(n, order, tile), line)
    assert sd.traffic_words(3 * n * n // line) == M.fits_traffic_words(n)


def test_tiled_order_matches_the_tiling_model_when_three_tiles_fit():
    # n = 16, tile 4, lines of 4 words: a tile is 4 lines; 24 lines hold the three tiles of one block
    # step with room, but not a row of A tiles plus a column of B tiles (36 lines): no reuse across blocks
    n, t, line = 16, 4, 4
    sd = M.StackDistances(M.matmul_trace(n, "tiled", t), line)
    model = M.tiled_matmul_traffic(n, n, n, t, t, t)
    assert sd.traffic_words(24) == model.words == 2 * n**3 / t + 2 * n * n


@pytest.mark.parametrize("order,tile", TRACES)
def test_no_schedule_beats_the_io_lower_bound(order, tile):
    n, line = 16, 4
    sd = M.StackDistances(M.matmul_trace(n, order, tile), line)
    for cap in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        assert sd.traffic_words(cap) >= M.io_lower_bound(n, n, n, cap * line)


def test_more_capacity_never_costs_more_traffic_in_lru():
    sd = M.StackDistances(M.matmul_trace(16, "tiled", 4), 2)
    curve = sd.curve(range(1, 400))
    assert np.all(np.diff(curve) <= 0)


def test_sweep_trace_has_the_lru_cliff():
    # a cyclic sweep larger than an LRU cache misses on every line, every sweep; one that fits, once
    words, sweeps, line = 64, 5, 4
    sd = M.StackDistances(M.sweep_trace(words, sweeps), line)
    assert sd.traffic_words(words // line) == words
    assert sd.traffic_words(words // line - 1) == words * sweeps


def test_trace_arguments_are_checked():
    with pytest.raises(ValueError, match="tile"):
        M.matmul_trace(10, "tiled", 3)
    with pytest.raises(ValueError, match="order"):
        M.matmul_trace(10, "jik")
    with pytest.raises(ValueError, match="capacity_lines"):
        M.simulate_lru(M.sweep_trace(4, 1), 0)


# --- fusion and offload -------------------------------------------------------------------------

def test_hbm_bounce_of_the_running_example():
    ops = decoder.layer_ops(decoder.LLAMA2_7B, batch=1, context=4096, phase="decode", bytes_per_value=2)
    b = M.hbm_bounce(ops, 3.35e12)
    ew = sum(o.bytes for o in ops if o.kind == "elementwise")
    assert b.unfused_bytes == pytest.approx(decoder.totals(ops)[1])
    assert b.saved_bytes == pytest.approx(ew) and b.fused_time < b.unfused_time


def test_offload_step_by_hand():
    o = M.offload_step(10e9, 0.5, 2e12, 50e9)
    assert o.hbm_time == pytest.approx(2.5e-3) and o.link_time == pytest.approx(0.1)
    assert o.step_time == pytest.approx(0.1)
    assert M.offload_step(10e9, 0.5, 2e12, 50e9, overlap=False).step_time == pytest.approx(0.1025)
    assert o.slowdown(2e12) == pytest.approx(0.1 / 5e-3)
    assert M.offload_step(10e9, 0.0, 2e12, 50e9).slowdown(2e12) == pytest.approx(1.0)
    f = M.max_offload_for_slowdown(2.0, 2e12, 50e9)
    assert f == pytest.approx(0.05)
    assert M.offload_step(10e9, f, 2e12, 50e9).slowdown(2e12) == pytest.approx(2.0)


def test_offload_rejects_fractions_outside_zero_one():
    with pytest.raises(ValueError, match="offloaded_fraction"):
        M.offload_step(1e9, 1.5, 1e12, 1e10)


def test_two_benchmarks_of_one_latency_agree_within_a_third():
    # RRZE and Dewing measure the same pointer chase with different codes; the L1 figures differ most
    groups = {}
    for m in M.measurements(quantity="latency"):
        groups.setdefault((m.chip, m.level), []).append(m.value)
    pairs = [v for v in groups.values() if len(v) > 1]
    assert len(pairs) >= 4
    for values in pairs:
        assert max(values) / min(values) < 4 / 3
