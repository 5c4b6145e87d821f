"""Tests of the accelbook.models.gpu additions for the chapter "Inside a GPU streaming multiprocessor":
SM anatomy from the spec database, memory levels, memory parallelism (Little's law in bytes), and
the occupancy and scheduler sweeps behind its figures."""

from __future__ import annotations

import numpy as np
import pytest

from accelbook import specs
from accelbook.models import gpu

KiB = 1024


def test_h100_anatomy_matches_the_whitepaper_layout():
    a = gpu.sm_anatomy("h100-sxm")
    assert (a.sm_count, a.partitions, a.warp_size, a.compute_capability) == (132, 4, 32, "9.0")
    assert (a.tensor_cores_per_partition, a.fp32_lanes_per_partition) == (1, 32)
    assert a.register_file_per_partition == 64 * KiB and a.registers_per_sm == 65536
    assert (a.max_warps_per_sm, a.max_warps_per_scheduler, a.max_threads_per_sm) == (64, 16, 2048)
    assert a.shared_mem_per_sm == 228 * KiB and a.l1_smem_per_sm == 256 * KiB
    assert a.register_file_total == 132 * 256 * KiB and a.l1_smem_total == 132 * 256 * KiB
    assert a.memory_bandwidth == 3.35e12 and a.memory_type == "HBM3"


def test_t4_anatomy_has_two_tensor_cores_and_eight_warps_per_partition():
    a = gpu.sm_anatomy(specs.get_chip("t4"))
    assert (a.tensor_cores_per_partition, a.fp32_lanes_per_partition, a.max_warps_per_scheduler) == (2, 16, 8)


def test_anatomy_chips_are_the_nvidia_gpus_the_arch_table_knows():
    keys = {c.key for c in gpu.anatomy_chips()}
    assert {"t4", "l4", "a100-40gb", "h100-sxm", "v100-sxm2"} <= keys
    assert "b200" not in keys and "mi300x" not in keys  # CC 10.0 is not in the table; AMD has no SMs
    for chip in gpu.anatomy_chips():
        a = gpu.sm_anatomy(chip)
        assert a.max_threads_per_sm == gpu.arch(a.compute_capability).max_threads_per_sm
        assert a.tensor_cores_per_partition * a.partitions == a.tensor_cores_per_sm


@pytest.mark.parametrize("key, match", [("tpu-v5e", "not a GPU"), ("mi300x", "lacks"), ("b200", "lacks|10.0")])
def test_anatomy_rejects_chips_it_cannot_describe(key, match):
    with pytest.raises(ValueError, match=match):
        gpu.sm_anatomy(key)


def test_anatomy_rejects_a_non_chip():
    with pytest.raises(ValueError, match="chip="):
        gpu.sm_anatomy(42)


def test_memory_levels_are_ordered_and_carry_only_database_bandwidths():
    levels = gpu.memory_levels("a100-40gb")
    assert [lv.name.split(" ")[0] for lv in levels] == ["registers", "L1", "L2", "device"]
    chip = specs.get_chip("a100-40gb")
    assert levels[0].per_sm == 256 * KiB and levels[0].total == 108 * 256 * KiB
    assert levels[0].bandwidth == 6 * chip.peak_flops["fp32"] and levels[0].bandwidth_kind.startswith("derived")
    assert levels[1].bandwidth is None and levels[2].bandwidth is None
    assert levels[2].total == chip.value("l2_cache")
    assert levels[3].bandwidth == chip.memory_bandwidth and levels[3].bandwidth_kind == "spec sheet"
    assert levels[3].total == chip.memory_bytes


def test_simt_operand_bandwidth_is_twelve_bytes_per_fma():
    chip = specs.get_chip("h100-sxm")
    assert gpu.simt_operand_bandwidth(chip) == pytest.approx(3 * 4 * chip.peak_flops["fp32"] / 2)
    with pytest.raises(ValueError, match="fp32"):
        gpu.simt_operand_bandwidth("tpu-v1")


def test_memory_parallelism_by_hand_for_h100_at_500_ns():
    m = gpu.memory_parallelism("h100-sxm", 500e-9)
    assert m.bytes_in_flight == pytest.approx(3.35e12 * 500e-9)  # 1.675 MB
    assert m.bytes_per_sm == pytest.approx(1.675e6 / 132)
    assert m.bytes_per_warp_load == 128
    assert m.warp_loads_per_sm == pytest.approx(1.675e6 / 132 / 128)
    assert m.loads_per_warp == pytest.approx(m.warp_loads_per_sm / 64)
    wide = gpu.memory_parallelism("h100-sxm", 500e-9, bytes_per_thread=16)
    assert wide.warp_loads_per_sm == pytest.approx(m.warp_loads_per_sm / 4)


@pytest.mark.parametrize("kwargs", [dict(latency_s=-1e-9), dict(latency_s=1e-7, bytes_per_thread=0),
                                    dict(latency_s=float("nan"))])
def test_memory_parallelism_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        gpu.memory_parallelism("h100-sxm", **kwargs)


def test_occupancy_curve_agrees_with_occupancy_pointwise_and_never_rises():
    curve = gpu.occupancy_vs_registers("8.0", 256, 24 * KiB)
    assert curve.registers[0] == 1 and curve.registers[-1] == 255
    for r in (1, 32, 40, 64, 65, 128, 255):
        o = gpu.occupancy("8.0", 256, r, 24 * KiB)
        k = r - 1
        assert curve.occupancy[k] == o.occupancy and curve.blocks_per_sm[k] == o.blocks_per_sm
        assert curve.limiting[k] == o.limiting
    assert np.all(np.diff(curve.occupancy) <= 0)


def test_max_registers_for_an_occupancy():
    # 256 threads, no shared memory, CC 9.0: 65536 registers / 2048 threads = 32 per thread for 100 %.
    curve = gpu.occupancy_vs_registers("9.0", 256)
    assert curve.max_registers_for(1.0) == 32 and curve.max_registers_for(0.5) == 64
    # 1024-thread blocks at 200 KiB of shared memory fit one block: 50 % at most on CC 9.0.
    big = gpu.occupancy_vs_registers("9.0", 1024, 200 * KiB)
    assert big.max_registers_for(1.0) is None and big.max_registers_for(0.5) == 64


def test_occupancy_curve_rejects_an_empty_range_and_passes_options_through():
    with pytest.raises(ValueError, match="registers"):
        gpu.occupancy_vs_registers("9.0", 256, registers=[])
    with pytest.raises(ValueError, match="carveout"):
        gpu.occupancy_vs_registers("9.0", 256, registers=[32], shared_mem_carveout=12345)


def test_issue_rate_curve_stays_under_littles_law_and_matches_one_warp():
    curve = gpu.issue_rate_curve([1, 2, 4, 8, 16, 32], alu_per_mem=4, alu_latency=4, mem_latency=200)
    assert curve.cycles == max(2000, 10 * (4 * 4 + 200))
    assert curve.knee == gpu.warps_to_saturate(4, 4, 200)
    for n, sim, bound in zip(curve.warps, curve.simulated, curve.bound):
        assert bound == gpu.issue_rate_bound(int(n), 4, 4, 200)
        assert sim <= bound * 1.02 + 1e-9
    assert curve.simulated[0] == pytest.approx(curve.bound[0], rel=0.03)


def test_issue_rate_curve_rejects_bad_input():
    with pytest.raises(ValueError, match="warps"):
        gpu.issue_rate_curve([], 4, 4, 200)
    with pytest.raises(ValueError, match="mem_latency"):
        gpu.issue_rate_curve([1], 4, 4, 0)
    with pytest.raises(ValueError, match="policy"):
        gpu.issue_rate_curve([1], 4, 4, 10, policy="fifo")
