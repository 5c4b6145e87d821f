"""Tests of accelbook.models.gpu: occupancy, Little's law, the warp-scheduler simulation, tensor vs SIMT.

Occupancy expectations are NVIDIA's rules (cuda_occupancy.h, the CUDA Occupancy Calculator)
worked by hand in the comments, with the per-architecture constants of data/cuda_arch.toml; two
CC 7.0 cases are the published example of the CUDA C++ Best Practices Guide, "Calculating
Occupancy" (https://docs.nvidia.com/cuda/cuda-c-best-practices-guide/index.html#calculating-occupancy).

Notation in the comments: w = warps per block, r_w = registers per warp (rounded up to a multiple
of 256), SP = one of the 4 register sub-partitions (65536 / 4 = 16384 registers), s_b = shared
memory allocated per block (request + system reservation, rounded up to the allocation unit).
"""

from __future__ import annotations

import copy
import importlib.resources
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelbook import specs
from accelbook.models import gpu

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KiB = 1024
CCS = gpu.compute_capabilities()


# ---------------------------------------------------------------------------------------------
# The architecture table
# ---------------------------------------------------------------------------------------------

def test_table_holds_the_six_architectures():
    assert CCS == ("7.0", "7.5", "8.0", "8.6", "8.9", "9.0")


# (max warps/SM, max blocks/SM, shared memory/SM KiB, opt-in per block KiB, reserved/block B,
#  allocation unit B) as the Programming Guide's technical-specifications table, the tuning guides
#  and cuda_occupancy.h state them.
DOCUMENTED = {
    "7.0": (64, 32, 96, 96, 0, 256),
    "7.5": (32, 16, 64, 64, 0, 256),
    "8.0": (64, 32, 164, 163, 1024, 128),
    "8.6": (48, 16, 100, 99, 1024, 128),
    "8.9": (48, 24, 100, 99, 1024, 128),
    "9.0": (64, 32, 228, 227, 1024, 128),
}


@pytest.mark.parametrize("cc", CCS)
def test_table_values_and_sources(cc):
    a = gpu.arch(cc)
    warps, blocks, smem_kib, optin_kib, reserved, unit = DOCUMENTED[cc]
    assert (a.max_warps_per_sm, a.max_blocks_per_sm) == (warps, blocks)
    assert (a.shared_mem_per_sm, a.shared_mem_per_block_optin) == (smem_kib * KiB, optin_kib * KiB)
    assert (a.shared_mem_reserved_per_block, a.shared_mem_allocation_unit) == (reserved, unit)
    assert (a.registers_per_sm, a.max_registers_per_block, a.max_registers_per_thread) == (65536, 65536, 255)
    assert (a.register_allocation_unit, a.register_sub_partitions, a.warp_size) == (256, 4, 32)
    assert a.max_threads_per_block == 1024 and a.shared_mem_per_block == 48 * KiB
    assert a.shared_mem_carveouts[-1] == a.shared_mem_per_sm
    for field in gpu.ARCH_FIELDS:
        assert a.sources[field], field
        assert all(s.url.startswith("https://") for s in a.sources[field])


def test_carveout_choices():
    def kib(cc):
        return [c // KiB for c in gpu.arch(cc).shared_mem_carveouts]
    assert kib("7.0") == [0, 8, 16, 32, 64, 96]
    assert kib("7.5") == [32, 64]
    assert kib("8.0") == [0, 8, 16, 32, 64, 100, 132, 164]
    assert kib("8.6") == kib("8.9") == [0, 8, 16, 32, 64, 100]
    assert kib("9.0") == [0, 8, 16, 32, 64, 100, 132, 164, 196, 228]


def test_arch_accepts_string_and_tuple():
    assert gpu.arch("8.0") is gpu.arch((8, 0)) is gpu.arch(" 8.0 ")
    assert gpu.arch((9, 0)).max_threads_per_sm == 2048


def _raw_table():
    text = importlib.resources.files("accelbook").joinpath("data/cuda_arch.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_parser_rejects_broken_tables():
    good = _raw_table()
    assert set(gpu.parse_arch_table(good)) == set(CCS)
    missing = copy.deepcopy(good)
    del missing["arch"]["8.0"]["limits"]["max_blocks_per_sm"]
    with pytest.raises(ValueError, match="max_blocks_per_sm"):
        gpu.parse_arch_table(missing)
    unsourced = copy.deepcopy(good)
    unsourced["arch"]["9.0"]["limits"]["warp_size"]["source"] = ["no-such-source"]
    with pytest.raises(ValueError, match="warp_size"):
        gpu.parse_arch_table(unsourced)
    wrong_unit = copy.deepcopy(good)
    wrong_unit["arch"]["7.5"]["limits"]["shared_mem_per_sm"]["unit"] = "count"
    with pytest.raises(ValueError, match="shared_mem_per_sm"):
        gpu.parse_arch_table(wrong_unit)
    top_mismatch = copy.deepcopy(good)
    top_mismatch["arch"]["8.6"]["limits"]["shared_mem_carveouts"]["value"] = [0, 8, 16, 32, 64]
    with pytest.raises(ValueError, match="largest carveout"):
        gpu.parse_arch_table(top_mismatch)


# ---------------------------------------------------------------------------------------------
# Occupancy: worked examples
# ---------------------------------------------------------------------------------------------

# (cc, threads, regs, smem, keyword args, blocks/SM, (by warps, by blocks, by registers, by shared
#  memory), limiting)
WORKED = [
    # --- CC 7.0: 64 warps, 32 blocks, 96 KiB = 98304 B, smem unit 256 B, nothing reserved --------
    # Best Practices Guide: 128 threads, 37 regs -> "occupancy of 75% with 12 active blocks".
    # w = 4; by warps 64//4 = 16; r_w = ceil(37*32/256)*256 = 1280; 16384//1280 = 12 warps per SP,
    # 48 per SM, //4 = 12 blocks; no shared memory -> no limit. 12 blocks * 4 = 48 warps = 75%.
    ("7.0", 128, 37, 0, {}, 12, (16, 32, 12, None), ("registers",)),
    # Best Practices Guide: 320 threads, 37 regs -> "63% ... only four 320-thread blocks".
    # w = 10; by warps 6; 48 register-warps // 10 = 4 blocks; 40/64 = 62.5%.
    ("7.0", 320, 37, 0, {}, 4, (6, 32, 4, None), ("registers",)),
    # w = 8; r_w = 1024 -> 16 per SP, 64//8 = 8; s_b = ceil(40000/256)*256 = 40192; 98304//40192 = 2.
    ("7.0", 256, 32, 40000, {}, 2, (8, 32, 8, 2), ("shared_memory",)),
    # w = 1; by warps 64; r_w = 512 -> 32 per SP, 128 blocks; the 32-block cap binds: 32 warps = 50%.
    ("7.0", 32, 16, 0, {}, 32, (64, 32, 128, None), ("blocks",)),
    # s_b = 10240 > carveout 8 KiB: the driver raises it to the next choice, 16 KiB: 16384//10240 = 1.
    ("7.0", 128, 32, 10000, {"shared_mem_carveout": 8 * KiB}, 1, (16, 32, 16, 1), ("shared_memory",)),
    # With opt-in a block may hold 96 KiB: s_b = 49408, 98304//49408 = 1.
    ("7.0", 128, 32, 49153, {}, 1, (16, 32, 16, 1), ("shared_memory",)),
    # --- CC 7.5: 32 warps, 16 blocks, 64 KiB, unit 256 B, nothing reserved ---------------------
    # w = 32; by warps 32//32 = 1; r_w = 1024 -> 64 warps // 32 = 2. One block fills the SM.
    ("7.5", 1024, 32, 0, {}, 1, (1, 16, 2, None), ("warps",)),
    # w = 8; by warps 4; r_w = 2048 -> 8 per SP, 32 // 8 = 4. Both bind; 32 warps = 100%.
    ("7.5", 256, 64, 0, {}, 4, (4, 16, 4, None), ("warps", "registers")),
    # w = 2; by warps 16; cap 16; r_w = 1024 -> 64//2 = 32; s_b = 4096, 65536//4096 = 16.
    ("7.5", 64, 32, 4096, {}, 16, (16, 16, 32, 16), ("warps", "blocks", "shared_memory")),
    # Carveout 32 KiB: 32768 // 12288 = 2 blocks of 4 warps = 8/32 = 25%.
    ("7.5", 128, 32, 12288, {"shared_mem_carveout": 32 * KiB}, 2, (8, 16, 16, 2), ("shared_memory",)),
    # A block may use all 64 KiB: s_b = 65536, one block.
    ("7.5", 128, 32, 65536, {}, 1, (8, 16, 16, 1), ("shared_memory",)),
    # --- CC 8.0: 64 warps, 32 blocks, 164 KiB = 167936 B, unit 128 B, 1 KiB reserved per block ----
    # w = 8; by warps 8; r_w = 1024 -> 8 blocks; s_b = 0 + 1024 -> 167936//1024 = 164.
    ("8.0", 256, 32, 0, {}, 8, (8, 32, 8, 164), ("warps", "registers")),
    # r_w = ceil(255*32/256)*256 = 8192 -> 16384//8192 = 2 per SP, 8 warps // 4 = 2 blocks = 12.5%.
    ("8.0", 128, 255, 0, {}, 2, (16, 32, 2, 164), ("registers",)),
    # s_b = 49152 + 1024 = 50176; 167936 // 50176 = 3 blocks of 4 warps = 18.75%.
    ("8.0", 128, 32, 48 * KiB, {}, 3, (16, 32, 16, 3), ("shared_memory",)),
    # w = 2; by warps 32 = the block cap; r_w = 512 -> 128 warps // 2 = 64; 64 warps = 100%.
    ("8.0", 64, 16, 0, {}, 32, (32, 32, 64, 164), ("warps", "blocks")),
    # Carveout 0 KiB: even an empty block needs its reserved 1 KiB, so the driver picks 8 KiB:
    # 8192 // 1024 = 8 blocks of 1 warp = 12.5%.
    ("8.0", 32, 16, 0, {"shared_mem_carveout": 0}, 8, (64, 32, 128, 8), ("shared_memory",)),
    # Carveout 100 KiB: s_b = ceil((20000 + 1024)/128)*128 = 21120; 102400 // 21120 = 4.
    ("8.0", 128, 32, 20000, {"shared_mem_carveout": 100 * KiB}, 4, (16, 32, 16, 4), ("shared_memory",)),
    # The opt-in maximum, 163 KiB: s_b = 166912 + 1024 = 167936, exactly one block.
    ("8.0", 128, 32, 163 * KiB, {}, 1, (16, 32, 16, 1), ("shared_memory",)),
    # --- CC 8.6: 48 warps, 16 blocks, 100 KiB = 102400 B, unit 128 B, 1 KiB reserved -------------
    # w = 8; by warps 48//8 = 6; registers 64//8 = 8; s_b = 1024 -> 100. 6*8 = 48 warps = 100%.
    ("8.6", 256, 32, 0, {}, 6, (6, 16, 8, 100), ("warps",)),
    # w = 2; by warps 24; cap 16 binds: 32/48 warps = 66.7%.
    ("8.6", 64, 32, 0, {}, 16, (24, 16, 32, 100), ("blocks",)),
    # r_w = 2048 -> 8 per SP, 32 warps // 4 = 8 blocks = 32/48.
    ("8.6", 128, 64, 0, {}, 8, (12, 16, 8, 100), ("registers",)),
    # r_w = 40*32 = 1280 -> 12 per SP, 48 // 4 = 12 = by warps 48 // 4.
    ("8.6", 128, 40, 0, {}, 12, (12, 16, 12, 100), ("warps", "registers")),
    # s_b = 32768 + 1024 = 33792; 102400 // 33792 = 3 blocks = 12/48 = 25%.
    ("8.6", 128, 32, 32 * KiB, {}, 3, (12, 16, 16, 3), ("shared_memory",)),
    # The opt-in maximum, 99 KiB: s_b = 101376 + 1024 = 102400, one block.
    ("8.6", 128, 32, 99 * KiB, {}, 1, (12, 16, 16, 1), ("shared_memory",)),
    # --- CC 8.9: as 8.6 but 24 blocks per SM ---------------------------------------------------
    # w = 2; by warps 48//2 = 24 = the cap: 48 warps = 100% (8.6 stops at 16 blocks).
    ("8.9", 64, 32, 0, {}, 24, (24, 24, 32, 100), ("warps", "blocks")),
    # w = 1; the cap of 24 blocks binds: 24/48 = 50%.
    ("8.9", 32, 32, 0, {}, 24, (48, 24, 64, 100), ("blocks",)),
    # r_w = 72*32 = 2304 (9*256) -> 16384 // 2304 = 7 per SP, 28 warps // 8 = 3 blocks = 24/48.
    ("8.9", 256, 72, 0, {}, 3, (6, 24, 3, 100), ("registers",)),
    # Carveout 64 KiB: s_b = ceil(41024/128)*128 = 41088; 65536 // 41088 = 1 (100 KiB would hold 2).
    ("8.9", 128, 32, 40000, {"shared_mem_carveout": 64 * KiB}, 1, (12, 24, 16, 1), ("shared_memory",)),
    ("8.9", 128, 32, 40000, {}, 2, (12, 24, 16, 2), ("shared_memory",)),
    # --- CC 9.0: 64 warps, 32 blocks, 228 KiB = 233472 B, unit 128 B, 1 KiB reserved -------------
    # s_b = 102400 + 1024 = 103424; 233472 // 103424 = 2 blocks = 8/64 = 12.5%.
    ("9.0", 128, 32, 100 * KiB, {}, 2, (16, 32, 16, 2), ("shared_memory",)),
    # w = 12; r_w = 168*32 = 5376 (21*256) -> 16384 // 5376 = 3 per SP, 12 warps // 12 = 1 block.
    ("9.0", 384, 168, 0, {}, 1, (5, 32, 1, 228), ("registers",)),
    # w = 3; r_w = 1280 -> 12 per SP, 48 // 3 = 16 blocks; by warps 64 // 3 = 21: 48 warps = 75%.
    ("9.0", 96, 40, 0, {}, 16, (21, 32, 16, 228), ("registers",)),
    # w = 32; by warps 2; r_w = 1024 -> 64 // 32 = 2: 64 warps = 100%.
    ("9.0", 1024, 32, 0, {}, 2, (2, 32, 2, 228), ("warps", "registers")),
    # Carveout 132 KiB: s_b = 65536 + 1024 = 66560; 135168 // 66560 = 2 (228 KiB would hold 3).
    ("9.0", 128, 32, 64 * KiB, {"shared_mem_carveout": 132 * KiB}, 2, (16, 32, 16, 2), ("shared_memory",)),
    ("9.0", 128, 32, 64 * KiB, {}, 3, (16, 32, 16, 3), ("shared_memory",)),
    # The opt-in maximum, 227 KiB: s_b = 232448 + 1024 = 233472, one block.
    ("9.0", 128, 32, 227 * KiB, {}, 1, (16, 32, 16, 1), ("shared_memory",)),
]


@pytest.mark.parametrize("cc, threads, regs, smem, kwargs, blocks, limits, limiting", WORKED)
def test_worked_examples(cc, threads, regs, smem, kwargs, blocks, limits, limiting):
    o = gpu.occupancy(cc, threads, regs, smem, **kwargs)
    a = gpu.arch(cc)
    assert o.blocks_per_sm == blocks
    assert (o.blocks_limit_warps, o.blocks_limit_blocks, o.blocks_limit_registers,
            o.blocks_limit_shared_memory) == limits
    assert o.limiting == limiting
    assert o.warps_per_sm == blocks * math.ceil(threads / 32)
    assert o.occupancy == pytest.approx(o.warps_per_sm / a.max_warps_per_sm)
    assert o.reason == ""


def test_best_practices_percentages():
    # The guide prints 75% and 63% (62.5% rounded half up).
    assert gpu.occupancy("7.0", 128, 37, 0).occupancy == 0.75
    assert math.floor(100 * gpu.occupancy((7, 0), 320, 37, 0).occupancy + 0.5) == 63


def test_carveout_driver_raise_is_reported():
    # CC 7.0, s_b = 10240 B does not fit the requested 8 KiB; 16 KiB is used.
    assert gpu.occupancy("7.0", 128, 32, 10000, shared_mem_carveout=8 * KiB).shared_mem_carveout == 16 * KiB
    assert gpu.occupancy("8.0", 32, 16, 0, shared_mem_carveout=0).shared_mem_carveout == 8 * KiB
    # None means the largest carveout.
    assert gpu.occupancy("9.0", 128, 32, 0).shared_mem_carveout == 228 * KiB


# (cc, threads, regs, smem, keyword args, what the reason must mention)
CANNOT_LAUNCH = [
    # More than 1024 threads in a block: by warps = 0.
    ("8.6", 1025, 32, 0, {}, "threads_per_block"),
    ("9.0", 2048, 16, 0, {}, "threads_per_block"),
    # CC 7.5, 512 threads at 255 regs: r_w = 8192, 2 warps per SP = 8 per SM < the block's 16 warps
    # (hardware check: 8192 * 16 = 131072 > 65536 registers per block).
    ("7.5", 512, 255, 0, {}, "registers"),
    # CC 8.9, 1024 threads at 72 regs: r_w = 2304, 7 warps per SP = 28 < 32 (2304 * 32 = 73728 > 65536).
    ("8.9", 1024, 72, 0, {}, "registers"),
    # Without opt-in a block holds 48 KiB: s_b = ceil(49153/256)*256 = 49408 > 49152.
    ("7.0", 128, 32, 49153, {"shared_mem_opt_in": False}, "shared memory"),
    # One byte above the opt-in maximum (s_b rounds up past it).
    ("7.5", 128, 32, 65537, {}, "shared memory"),          # 65792 > 65536
    ("8.0", 128, 32, 163 * KiB + 1, {}, "shared memory"),  # 168064 > 167936
    ("8.6", 128, 32, 99 * KiB + 1, {}, "shared memory"),   # 102528 > 102400
    ("9.0", 128, 32, 227 * KiB + 1, {}, "shared memory"),  # 233600 > 233472
]


@pytest.mark.parametrize("cc, threads, regs, smem, kwargs, word", CANNOT_LAUNCH)
def test_configurations_that_cannot_launch(cc, threads, regs, smem, kwargs, word):
    o = gpu.occupancy(cc, threads, regs, smem, **kwargs)
    assert o.blocks_per_sm == 0 and o.warps_per_sm == 0 and o.occupancy == 0.0
    assert word in o.reason
    assert o.limiting and all(o.block_limits[k] == 0 for k in o.limiting)


def test_no_registers_and_no_shared_memory_do_not_limit():
    o = gpu.occupancy("7.0", 128, 0, 0)
    assert o.blocks_limit_registers is None and o.blocks_limit_shared_memory is None
    assert o.blocks_per_sm == 16 and o.limiting == ("warps",)
    # From CC 8.0 every block costs its reserved 1 KiB, so shared memory always has a limit.
    assert gpu.occupancy("8.0", 128, 0, 0).blocks_limit_shared_memory == 164


# ---------------------------------------------------------------------------------------------
# Occupancy: properties
# ---------------------------------------------------------------------------------------------

def _brute_force_blocks(cc, threads, regs, smem, carveout=None, opt_in=True):
    """An independent model: add blocks one by one while every resource still has room.

    Each warp's registers go to the sub-partition with the most free registers; shared memory is
    the carveout (or, if one block does not fit it, the smallest carveout that does).
    """
    a = gpu.arch(cc)
    warps = -(-threads // a.warp_size)
    if threads > a.max_threads_per_block:
        return 0
    unit = a.register_allocation_unit
    r_w = -(-regs * a.warp_size // unit) * unit
    s_b = -(-(smem + a.shared_mem_reserved_per_block) // a.shared_mem_allocation_unit) \
        * a.shared_mem_allocation_unit
    per_block = (a.shared_mem_per_block_optin if opt_in else a.shared_mem_per_block) \
        + a.shared_mem_reserved_per_block
    if s_b > per_block:
        return 0
    sm_smem = a.shared_mem_per_sm if carveout is None else carveout
    if sm_smem < s_b:
        sm_smem = min(c for c in a.shared_mem_carveouts if c >= s_b)
    free = [a.registers_per_sm // a.register_sub_partitions] * a.register_sub_partitions
    blocks = warps_used = smem_used = 0
    while blocks < a.max_blocks_per_sm and warps_used + warps <= a.max_warps_per_sm \
            and smem_used + s_b <= sm_smem:
        trial = list(free)
        for _ in range(warps):
            i = max(range(len(trial)), key=trial.__getitem__)
            if trial[i] < r_w:
                return blocks
            trial[i] -= r_w
        free = trial
        blocks += 1
        warps_used += warps
        smem_used += s_b
    return blocks


@st.composite
def launches(draw):
    cc = draw(st.sampled_from(CCS))
    a = gpu.arch(cc)
    threads = draw(st.integers(1, 1100))
    regs = draw(st.integers(0, 255))
    smem = draw(st.one_of(st.integers(0, 8 * KiB), st.integers(0, a.shared_mem_per_sm + 2 * KiB)))
    carveout = draw(st.one_of(st.none(), st.sampled_from(a.shared_mem_carveouts)))
    opt_in = draw(st.booleans())
    return cc, threads, regs, smem, carveout, opt_in


@settings(max_examples=200, deadline=None)
@given(launches())
def test_matches_an_independent_packing_model(launch):
    cc, threads, regs, smem, carveout, opt_in = launch
    o = gpu.occupancy(cc, threads, regs, smem, shared_mem_carveout=carveout, shared_mem_opt_in=opt_in)
    assert o.blocks_per_sm == _brute_force_blocks(cc, threads, regs, smem, carveout, opt_in)


@settings(max_examples=150, deadline=None)
@given(launches())
def test_never_above_the_architecture_limits(launch):
    cc, threads, regs, smem, carveout, opt_in = launch
    a = gpu.arch(cc)
    o = gpu.occupancy(cc, threads, regs, smem, shared_mem_carveout=carveout, shared_mem_opt_in=opt_in)
    assert 0 <= o.blocks_per_sm <= a.max_blocks_per_sm
    assert 0 <= o.warps_per_sm <= a.max_warps_per_sm
    assert 0.0 <= o.occupancy <= 1.0
    assert o.blocks_per_sm * o.registers_per_block <= a.registers_per_sm
    assert o.blocks_per_sm * o.shared_mem_allocated_per_block <= o.shared_mem_carveout
    assert o.shared_mem_carveout in a.shared_mem_carveouts
    assert o.limiting and all(o.block_limits[k] == o.blocks_per_sm for k in o.limiting)
    assert all(v is None or v >= o.blocks_per_sm for v in o.block_limits.values())


@settings(max_examples=100, deadline=None)
@given(launches(), st.integers(0, 255))
def test_monotone_in_registers(launch, other_regs):
    cc, threads, regs, smem, carveout, opt_in = launch
    lo, hi = sorted((regs, other_regs))
    kw = dict(shared_mem_carveout=carveout, shared_mem_opt_in=opt_in)
    assert gpu.occupancy(cc, threads, lo, smem, **kw).blocks_per_sm \
        >= gpu.occupancy(cc, threads, hi, smem, **kw).blocks_per_sm


@settings(max_examples=100, deadline=None)
@given(launches(), st.integers(0, 240 * KiB))
def test_monotone_in_shared_memory(launch, other_smem):
    cc, threads, regs, smem, carveout, opt_in = launch
    lo, hi = sorted((smem, other_smem))
    kw = dict(shared_mem_carveout=carveout, shared_mem_opt_in=opt_in)
    assert gpu.occupancy(cc, threads, regs, lo, **kw).blocks_per_sm \
        >= gpu.occupancy(cc, threads, regs, hi, **kw).blocks_per_sm


@settings(max_examples=200, deadline=None)
@given(launches())
def test_zero_exactly_when_one_block_cannot_fit(launch):
    cc, threads, regs, smem, carveout, opt_in = launch
    a = gpu.arch(cc)
    o = gpu.occupancy(cc, threads, regs, smem, shared_mem_carveout=carveout, shared_mem_opt_in=opt_in)
    warps = -(-threads // 32)
    r_w = -(-regs * 32 // 256) * 256
    register_warps = 4 * (16384 // r_w) if r_w else math.inf
    s_b = -(-(smem + a.shared_mem_reserved_per_block) // a.shared_mem_allocation_unit) \
        * a.shared_mem_allocation_unit
    per_block = (a.shared_mem_per_block_optin if opt_in else 48 * KiB) + a.shared_mem_reserved_per_block
    one_fits = threads <= 1024 and warps <= register_warps and s_b <= per_block
    assert (o.blocks_per_sm == 0) == (not one_fits)
    assert (o.reason != "") == (not one_fits)


# ---------------------------------------------------------------------------------------------
# Occupancy: bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, exc, name", [
    (("8.0", 0, 32, 0), {}, ValueError, "threads_per_block"),
    (("8.0", -32, 32, 0), {}, ValueError, "threads_per_block"),
    (("8.0", 128.0, 32, 0), {}, ValueError, "threads_per_block"),
    (("8.0", True, 32, 0), {}, ValueError, "threads_per_block"),
    (("8.0", 128, 256, 0), {}, ValueError, "registers_per_thread"),
    (("8.0", 128, -1, 0), {}, ValueError, "registers_per_thread"),
    (("8.0", 128, 32, -1), {}, ValueError, "shared_mem_per_block"),
    (("6.1", 128, 32, 0), {}, KeyError, "compute_capability"),
    ((10, 128, 32, 0), {}, ValueError, "compute_capability"),
    ((8.0, 128, 32, 0), {}, ValueError, "compute_capability"),
    (("eight", 128, 32, 0), {}, ValueError, "compute_capability"),
    (((8,), 128, 32, 0), {}, ValueError, "compute_capability"),
    (("8.0", 128, 32, 0), {"shared_mem_carveout": 50 * KiB}, ValueError, "shared_mem_carveout"),
    (("7.5", 128, 32, 0), {"shared_mem_carveout": 0}, ValueError, "shared_mem_carveout"),
    (("8.6", 128, 32, 0), {"shared_mem_carveout": 132 * KiB}, ValueError, "shared_mem_carveout"),
    (("8.0", 128, 32, 0), {"shared_mem_carveout": 64.0 * KiB}, ValueError, "shared_mem_carveout"),
    (("8.0", 128, 32, 0), {"shared_mem_opt_in": "yes"}, ValueError, "shared_mem_opt_in"),
])
def test_bad_occupancy_input(args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        gpu.occupancy(*args, **kwargs)


def test_bad_carveout_message_lists_the_choices():
    with pytest.raises(ValueError, match="32768, 65536"):
        gpu.occupancy("7.5", 128, 32, 0, shared_mem_carveout=16 * KiB)


# ---------------------------------------------------------------------------------------------
# Little's law
# ---------------------------------------------------------------------------------------------

def test_littles_law():
    assert gpu.littles_law(400, 1.0) == 400.0
    assert gpu.littles_law(2e-6, 5e5) == pytest.approx(1.0)
    # 600 ns of memory latency at 3.35 TB/s: 2.01 MB must be in flight.
    assert gpu.bytes_in_flight(600e-9, 3.35e12) == pytest.approx(2.01e6)
    assert gpu.warps_needed(400) == 400
    assert gpu.warps_needed(400, 1.0, 4) == 100
    assert gpu.warps_needed(401, 1.0, 4) == 101
    assert gpu.warps_needed(20, 0.5) == 10


def test_knee_of_the_bound():
    # A = 4, latencies 4 and 400: T = 416 cycles per 5 instructions -> 83.2 warps -> 84.
    assert gpu.warps_to_saturate(4, 4, 400) == 84
    assert gpu.issue_rate_bound(84, 4, 4, 400) == 1.0
    assert gpu.issue_rate_bound(83, 4, 4, 400) == pytest.approx(83 * 5 / 416)
    assert gpu.warps_to_saturate(0, 1, 1) == 1


@pytest.mark.parametrize("call, name", [
    (lambda: gpu.littles_law(-1, 1), "latency"),
    (lambda: gpu.littles_law(1, float("nan")), "throughput"),
    (lambda: gpu.littles_law("1", 1), "latency"),
    (lambda: gpu.bytes_in_flight(-1e-9, 1e12), "latency"),
    (lambda: gpu.warps_needed(100, 1.0, 0), "instructions_in_flight_per_warp"),
    (lambda: gpu.issue_rate_bound(0, 4, 4, 400), "n_warps"),
    (lambda: gpu.warps_to_saturate(-1, 4, 400), "alu_per_mem"),
    (lambda: gpu.max_issued(4, 4, 4, 400, 0), "cycles"),
])
def test_bad_latency_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ---------------------------------------------------------------------------------------------
# The warp-scheduler simulation
# ---------------------------------------------------------------------------------------------

sim_params = st.tuples(
    st.integers(1, 80),            # n_warps
    st.integers(0, 8),             # alu_per_mem
    st.one_of(st.just(1), st.integers(1, 30)),   # alu_latency
    st.integers(1, 600),           # mem_latency
    st.integers(1, 3000),          # cycles
    st.sampled_from(gpu.POLICIES),
)


@settings(max_examples=150, deadline=None)
@given(sim_params)
def test_never_above_the_bound(p):
    n, a, la, lm, c, policy = p
    r = gpu.simulate_scheduler(n, a, la, lm, c, policy=policy)
    assert r.issued <= gpu.max_issued(n, a, la, lm, c) <= c
    # The finite-run ceiling is the Little's-law rate plus at most one loop iteration per warp.
    assert r.issue_rate <= min(1.0, r.bound + n * (a + 1) / c) + 1e-12
    assert r.bound == gpu.issue_rate_bound(n, a, la, lm)


@settings(max_examples=150, deadline=None)
@given(sim_params)
def test_accounting_and_littles_law(p):
    n, a, la, lm, c, policy = p
    r = gpu.simulate_scheduler(n, a, la, lm, c, policy=policy)
    s = r.warp_states
    assert s.total == n * c and s.selected == r.issued
    assert r.issued == r.issued_arithmetic + r.issued_memory == int(np.count_nonzero(r.trace_warp >= 0))
    assert int(np.count_nonzero(r.trace_kind == 1)) == r.issued_memory
    assert r.idle_cycles == c - r.issued
    assert np.all(r.ready_warps >= (r.trace_warp >= 0)) and np.all(r.ready_warps <= n)
    # Little's law: the latency-cycles of the issued instructions are the warp-cycles not spent
    # waiting to be selected, up to the latency still outstanding at the end of the run.
    latency_cycles = r.issued_arithmetic * la + r.issued_memory * lm
    outstanding = latency_cycles - (n * c - s.not_selected)
    assert 0 <= outstanding <= n * (max(la, lm) - 1)
    # Each warp runs its program in order: A arithmetic instructions, then a load.
    for w in range(min(n, 3)):
        kinds = r.trace_kind[r.trace_warp == w]
        expected = np.array(([0] * a + [1]) * (len(kinds) // (a + 1) + 1), dtype=np.int8)[: len(kinds)]
        assert np.array_equal(kinds, expected)


@settings(max_examples=100, deadline=None)
@given(sim_params)
def test_exact_regimes(p):
    n, a, la, lm, c, policy = p
    r = gpu.simulate_scheduler(n, a, la, lm, c, policy=policy)
    if n == 1:   # a lone warp never waits
        assert r.issued == gpu.max_issued(1, a, la, lm, c)
    if n >= max(la, lm):   # at most max latency - 1 warps can be waiting: someone is always ready
        assert r.issued == c
    r0 = gpu.simulate_scheduler(min(n, lm), 0, la, lm, c, policy=policy)   # loads only
    assert r0.issued == sum(-(-(c - i) // lm) for i in range(min(n, lm, c)))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 80), st.integers(0, 8), st.integers(1, 600), st.integers(200, 4000))
def test_gto_reaches_the_bound_with_one_cycle_arithmetic(n, a, lm, c):
    # alu_latency = 1: greedy issue makes each warp's loop one burst of A+1 cycles, and the
    # scheduler is a closed queue whose rate is exactly min(1, n(A+1)/T) from cycle 0.
    r = gpu.simulate_scheduler(n, a, 1, lm, c)
    window = c - c // 2
    assert abs(r.steady_state_issue_rate * window - r.bound * window) <= n * (a + 1)
    if n >= gpu.warps_to_saturate(a, 1, lm):
        assert r.bound == 1.0
        if n * (a + 1) > a + lm:
            assert r.issued == c


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.integers(0, 8), st.integers(2, 30), st.integers(2, 600),
       st.integers(1, 3000))
def test_gto_lower_bound(n, a, la, lm, c):
    # With no 1-cycle latency, gto serves ready warps first come first served, so a ready warp
    # waits at most n-1 cycles: the k-th instruction of every warp issues by S_k + (k+1)(n-1).
    r = gpu.simulate_scheduler(n, a, la, lm, c)
    per_warp, start, k = 0, 0, 0
    while start + (k + 1) * (n - 1) < c:
        per_warp += 1
        start += lm if k % (a + 1) == a else la
        k += 1
    assert r.issued >= n * per_warp


def test_approaches_the_bound_in_steady_state():
    # Below the knee, at it, and above it (A = 4, latencies 1 and 400: knee = 404/5 = 80.8 warps).
    for n, expected in [(20, 100 / 404), (40, 200 / 404), (81, 1.0), (100, 1.0)]:
        r = gpu.simulate_scheduler(n, 4, 1, 400, 20_000)
        assert r.bound == pytest.approx(expected)
        assert r.steady_state_issue_rate == pytest.approx(expected, abs=n * 5 / 10_000)


def test_round_robin_convoy():
    # 8 warps, 6 one-cycle arithmetic instructions per 49-cycle load: T = 55 cycles per 7
    # instructions, knee 7.9 warps, so 8 warps can issue every cycle, and gto does. Round-robin
    # interleaves the warps, which then reach their loads together and all wait: the SM idles.
    gto = gpu.simulate_scheduler(8, 6, 1, 49, 20_000)
    rr = gpu.simulate_scheduler(8, 6, 1, 49, 20_000, policy="round_robin")
    assert gto.bound == 1.0 and gto.steady_state_issue_rate == 1.0
    assert rr.steady_state_issue_rate < 0.7
    assert rr.warp_states.not_selected > gto.warp_states.not_selected


def test_trace_is_read_only():
    r = gpu.simulate_scheduler(4, 2, 4, 20, 100)
    assert r.trace_warp.shape == r.trace_kind.shape == r.ready_warps.shape == (100,)
    with pytest.raises(ValueError):
        r.trace_warp[0] = 3


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_warps=0), "n_warps"),
    (dict(alu_per_mem=-1), "alu_per_mem"),
    (dict(alu_latency=0), "alu_latency"),
    (dict(mem_latency=0), "mem_latency"),
    (dict(cycles=0), "cycles"),
    (dict(cycles=10.5), "cycles"),
    (dict(policy="lrr"), "policy"),
])
def test_bad_scheduler_input(kwargs, name):
    args = dict(n_warps=8, alu_per_mem=4, alu_latency=4, mem_latency=400, cycles=100)
    args.update(kwargs)
    policy = args.pop("policy", "gto")
    with pytest.raises(ValueError, match=name):
        gpu.simulate_scheduler(**args, policy=policy)


# ---------------------------------------------------------------------------------------------
# Tensor cores versus CUDA cores
# ---------------------------------------------------------------------------------------------

def test_tensor_vs_simt_h100():
    chip = specs.get_chip("h100-sxm")
    ratios = gpu.tensor_vs_simt("h100-sxm")
    peaks = chip.peak_flops
    assert list(ratios) == list(peaks)
    assert ratios["fp32"] == 1.0
    for dtype in peaks:
        assert ratios[dtype] == peaks[dtype] / peaks["fp32"]
    # Datasheet: 989.5 dense BF16 TFLOP/s against 67 FP32 TFLOP/s, about 14.8x.
    assert ratios["bf16"] == pytest.approx(989.5 / 67, rel=0.02)
    assert all(ratios[d] > 1 for d in ("tf32", "bf16", "fp16", "fp8", "int8") if d in ratios)
    assert gpu.tensor_vs_simt(chip) == ratios


def test_tensor_vs_simt_every_gpu_in_the_database():
    for chip in specs.chips("gpu"):
        if "fp32" in chip.peak_flops:
            ratios = gpu.tensor_vs_simt(chip)
            assert ratios["fp32"] == 1.0 and set(ratios) == set(chip.peak_flops)


def test_tensor_vs_simt_bad_input():
    with pytest.raises(KeyError, match="name"):
        gpu.tensor_vs_simt("no-such-gpu")
    with pytest.raises(ValueError, match="chip"):
        gpu.tensor_vs_simt(42)
