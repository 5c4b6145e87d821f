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


# ------------------------------------------------------------------------------------------------
# The 16-bit dtype of the tensor cores, memory coalescing, bank conflicts, tensor-core generations,
# and the fill of one MMA instruction.
# ------------------------------------------------------------------------------------------------
import math

from accelbook import device


def _fake_chip(key, peaks):
    """A GPU with only the given dense peaks (TFLOP/s), through the spec database's own parser."""
    data = {"sources": {"s": {"title": "test", "url": "https://example.org", "kind": "documentation"}},
            "chips": {key: {"name": key, "vendor": "NVIDIA", "kind": "gpu", "year": 2020,
                            "peak_flops": {d: {"value": v, "unit": "TOP/s" if d == "int8" else "TFLOP/s",
                                               "source": "s"}
                                           for d, v in peaks.items()}}}}
    return specs.parse(data)[key]


@pytest.mark.parametrize("key, peaks, want", [
    # Turing (T4) and Volta (V100): FP16 tensor cores, no bf16 (Turing whitepaper; V100 datasheet)
    ("fake-t4", {"fp32": 8.1, "fp16": 65, "int8": 130}, "fp16"),
    ("fake-v100", {"fp64": 7.8, "fp32": 15.7, "fp16": 125}, "fp16"),
    # Ampere, Ada, Hopper: bf16 and fp16 at the same rate; bf16 is preferred
    ("fake-a100", {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}, "bf16"),
    ("fake-l4", {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121}, "bf16"),
    ("fake-h100", {"fp32": 67, "tf32": 494.7, "bf16": 989.5, "fp16": 989.5}, "bf16"),
    ("fake-fp32-only", {"fp32": 10}, None),
])
def test_tensor_core_half_dtype_on_fake_chips(key, peaks, want):
    assert gpu.tensor_core_half_dtype(_fake_chip(key, peaks)) == want


@pytest.mark.parametrize("kind, want", [("Tesla T4", "fp16"), ("Tesla V100-SXM2-16GB", "fp16"),
                                        ("NVIDIA L4", "bf16"), ("NVIDIA A100-SXM4-40GB", "bf16"),
                                        ("NVIDIA H100 80GB HBM3", "bf16")])
def test_tensor_core_half_dtype_of_detected_gpus(kind, want):
    info = device.describe("gpu", kind)
    assert info.chip is not None, kind
    assert gpu.tensor_core_half_dtype(info.chip) == want


def test_tensor_core_half_dtype_unknown_chip_and_bad_input():
    assert gpu.tensor_core_half_dtype(None) is None
    with pytest.raises(ValueError, match="chip="):
        gpu.tensor_core_half_dtype("t4")


def test_memory_access_rules_are_sourced():
    r = gpu.memory_access()
    assert (r.sector_bytes, r.cache_line_bytes, r.banks, r.bank_bytes) == (32, 128, 32, 4)
    assert r.cache_line_bytes % r.sector_bytes == 0
    assert all(r.sources[f] for f in ("sector_bytes", "cache_line_bytes", "shared_memory_banks",
                                      "bank_width_bytes"))


def _sectors_by_brute_force(stride, size, offset, warp, sector=32):
    """Every byte each thread reads, mapped to its sector: an independent count."""
    wanted = {offset + i * stride + b for i in range(warp) for b in range(size)}
    return len({byte // sector for byte in wanted}), len(wanted)


@pytest.mark.parametrize("stride, size, offset, sectors, efficiency", [
    (4, 4, 0, 4, 1.0),      # Best Practices Guide: aligned, sequential 4-byte words: four sectors
    (4, 4, 4, 5, 0.8),      # misaligned by one word: five sectors
    (8, 4, 0, 8, 0.5),      # stride of 2 elements: "50 % load/store efficiency"
    (128, 4, 0, 32, 0.125),  # one 4-byte element per sector
    (4096, 4, 0, 32, 0.125),
    (16, 16, 0, 16, 1.0),    # float4 per thread: 512 bytes in 16 sectors
    (0, 4, 0, 1, 0.125),     # every thread the same word
])
def test_sectors_per_request_follows_the_best_practices_guide(stride, size, offset, sectors, efficiency):
    a = gpu.sectors_per_request(stride, size, offset_bytes=offset)
    assert (a.sectors, a.bytes_moved) == (sectors, 32 * sectors)
    assert a.efficiency == pytest.approx(efficiency)


@pytest.mark.parametrize("stride", [0, 1, 2, 3, 4, 6, 8, 12, 31, 32, 33, 100])
@pytest.mark.parametrize("size, offset, warp", [(1, 0, 32), (2, 6, 32), (4, 0, 32), (8, 20, 16), (16, 3, 32)])
def test_sectors_per_request_matches_a_byte_by_byte_count(stride, size, offset, warp):
    a = gpu.sectors_per_request(stride, size, offset_bytes=offset, warp_size=warp)
    assert (a.sectors, a.bytes_used) == _sectors_by_brute_force(stride, size, offset, warp)
    assert 0 < a.efficiency <= 1


@pytest.mark.parametrize("stride, degree", [
    (0, 1),    # broadcast: all threads read one word
    (1, 1),    # CUDA Programming Guide: stride of one 32-bit word, no bank conflict
    (2, 2),    # stride of two words: two-way bank conflict
    (3, 1),    # stride of three words: no bank conflict
    (4, 4), (8, 8), (16, 16), (32, 32), (33, 1), (64, 32),
])
def test_bank_conflict_degree_programming_guide_cases(stride, degree):
    assert gpu.bank_conflict_degree(stride) == degree


@pytest.mark.parametrize("stride", range(1, 70))
def test_bank_conflict_degree_is_the_gcd_with_the_bank_count(stride):
    assert gpu.bank_conflict_degree(stride) == math.gcd(stride, 32)


def test_bank_conflicts_of_a_half_warp():
    # 16 threads at stride 32 touch 16 distinct words of bank 0: 16-way, not 32-way
    assert gpu.bank_conflict_degree(32, warp_size=16) == 16


@pytest.mark.parametrize("call, name", [
    (lambda: gpu.sectors_per_request(-4), "stride_bytes"),
    (lambda: gpu.sectors_per_request(4, 0), "element_bytes"),
    (lambda: gpu.sectors_per_request(4, offset_bytes=-1), "offset_bytes"),
    (lambda: gpu.sectors_per_request(4, warp_size=0), "warp_size"),
    (lambda: gpu.sectors_per_request(4.0), "stride_bytes"),
    (lambda: gpu.bank_conflict_degree(-1), "stride_words"),
    (lambda: gpu.bank_conflict_degree(True), "stride_words"),
    (lambda: gpu.mma_fill(0, 8, 16), "m"),
    (lambda: gpu.mma_fill(1, 8, 16, (16, 8)), "mma_shape"),
    (lambda: gpu.mma_fill(1, 8, 16, (16, 0, 16)), "mma_shape"),
])
def test_bad_access_and_mma_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_tensor_core_generations_volta_to_blackwell():
    gens = gpu.tensor_core_generations()
    assert [g.generation for g in gens] == ["Volta", "Turing", "Ampere", "Hopper", "Blackwell"]
    by = {g.generation: g for g in gens}
    # PTX ISA: mma.sync m8n8k4 (sm_70), m16n8k8 (sm_75), m16n8k16 (sm_80); wgmma m64nNk16, N <= 256
    assert by["Volta"].mma_shape == (8, 8, 4)
    assert by["Turing"].mma_shape == (16, 8, 8)
    assert by["Ampere"].mma_shape == (16, 8, 16)
    assert by["Hopper"].mma_shape == (64, 256, 16)
    assert by["Blackwell"].mma_shape[0] == 128
    # tensor memory: only Blackwell, 128 lanes x 512 columns of 4 bytes
    assert by["Blackwell"].tensor_memory_per_sm == 128 * 512 * 4
    assert all(g.tensor_memory_per_sm == 0 for g in gens[:-1])
    assert "cp.async" in by["Ampere"].global_to_shared and "TMA" in by["Hopper"].global_to_shared
    assert all(g.sources for g in gens)


def _fill_by_counting(m, n, k, shape):
    """Count the instructions a tiled matmul issues: their work against the useful work."""
    tiles = [math.ceil(d / t) for d, t in zip((m, n, k), shape)]
    return (m * n * k) / (math.prod(tiles) * math.prod(shape))


@pytest.mark.parametrize("m, n, k", [(1, 4096, 4096), (8, 4096, 4096), (16, 4096, 4096), (17, 8, 16),
                                     (256, 11008, 4096), (1, 128, 4096), (3, 5, 7)])
@pytest.mark.parametrize("shape", [(16, 8, 16), (8, 8, 4), (64, 256, 16)])
def test_mma_fill(m, n, k, shape):
    assert gpu.mma_fill(m, n, k, shape) == pytest.approx(_fill_by_counting(m, n, k, shape))


def test_mma_fill_of_one_row_is_one_sixteenth():
    assert gpu.mma_fill(1, 4096, 4096) == 1 / 16
    assert gpu.mma_fill(256, 4096, 4096) == 1.0


@pytest.mark.parametrize("key", ["v100-sxm2", "t4", "a100-40gb", "l4", "h100-sxm"])
def test_sm_units_reproduce_the_fp64_to_fp32_ratio_of_the_spec_sheets(key):
    # lanes per SM scale the peaks alike: fp64 peak / fp32 peak = fp64 lanes / fp32 lanes
    a = gpu.sm_anatomy(key)
    units = gpu.sm_units(a.compute_capability)
    peaks = a.chip.peak_flops
    assert peaks["fp64"] / peaks["fp32"] == pytest.approx(units.fp64 / a.fp32_lanes_per_sm, rel=0.03)
    assert units.sfu == 16 and units.int32 == 64 and units.sources


def test_sm_units_cover_the_architecture_table():
    assert all(gpu.sm_units(cc).compute_capability == cc for cc in gpu.compute_capabilities())
    with pytest.raises(KeyError, match="compute_capability"):
        gpu.sm_units("6.0")


def _arch_data():
    import importlib.resources
    import tomllib
    return tomllib.loads(importlib.resources.files("accelbook").joinpath("data/cuda_arch.toml").read_text("utf-8"))


def test_the_parsers_read_the_package_tables():
    data = _arch_data()
    assert gpu.parse_tensor_core_table(data) == gpu.tensor_core_generations()
    assert gpu.parse_memory_access(data) == gpu.memory_access()
    assert gpu.parse_sm_units(data)["9.0"] == gpu.sm_units("9.0")


@pytest.mark.parametrize("section, key, field, value, match", [
    ("tensor_core", "8.0", "mma_shape", {"value": [16, 8], "unit": "count", "source": ["ptx-isa-mma"]}, "mma_shape"),
    ("tensor_core", "8.0", "mma_shape", {"value": [16, 8, 16], "unit": "count", "source": ["nowhere"]}, "source"),
    ("tensor_core", "8.0", "issued_by", None, "missing"),
    ("tensor_core", "8.0", "colour", "green", "unknown"),
    ("sm_units", "9.0", "sfu", {"value": 16, "unit": "B", "source": ["cuda-guide-throughput"]}, "unit"),
    ("sm_units", "9.0", "fp64", None, "fields"),
    ("memory_access", None, "sector_bytes", {"value": 32.5, "unit": "B", "source": ["cuda-guide-global-memory-5x"]}, "whole number"),
    ("memory_access", None, "bank_width_bytes", None, "fields"),
])
def test_the_parsers_reject_broken_tables(section, key, field, value, match):
    data = _arch_data()
    entry = data[section] if key is None else data[section][key]
    if value is None:
        del entry[field]
    else:
        entry[field] = value
    parse = {"tensor_core": gpu.parse_tensor_core_table, "sm_units": gpu.parse_sm_units,
             "memory_access": gpu.parse_memory_access}[section]
    with pytest.raises(ValueError, match=match):
        parse(data)


def test_scheduler_runs_are_bounded_before_any_list_is_built():
    import pytest

    from accelbook.models import gpu

    with pytest.raises(ValueError, match="above its limit"):
        gpu.simulate_scheduler(1, 0, 1, 10**8, 100)
    with pytest.raises(ValueError, match="^n_warps=.* above the simulator's limit"):
        gpu.simulate_scheduler(10**8, 0, 1, 1, 100)
    # the default cycle count of issue_rate_curve stays inside the limit (it built 10**9-long lists)
    with pytest.raises(ValueError):
        gpu.issue_rate_curve([1], 0, 1, 10**8)
    with pytest.raises(ValueError, match="^cycles=None"):
        gpu.max_issued(1, 0, 1, 1, None)


def test_gpu_arguments_are_named_by_their_own_function():
    import pytest

    from accelbook.models import gpu

    with pytest.raises(ValueError, match="^bandwidth_Bps="):
        gpu.bytes_in_flight(6e-7, True)
    with pytest.raises(ValueError, match="^issue_rate="):
        gpu.warps_needed(400, "1")
    with pytest.raises(ValueError, match="not finite"):
        gpu.warps_needed(1e300, 1e300)
    with pytest.raises(ValueError, match=r"^registers\[0\]=300"):
        gpu.occupancy_vs_registers("8.0", 256, registers=[300])
    with pytest.raises(ValueError, match="^occupancy=1.5"):
        gpu.occupancy_vs_registers("8.0", 256).max_registers_for(1.5)
    with pytest.raises(TypeError, match="^data=None"):
        gpu.parse_arch_table(None)
