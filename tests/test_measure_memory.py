"""measure.memory: the sysfs cache parser (fixture strings), sweep sizing, and the three probes at
small sizes, checked against NumPy and against the byte counts they claim. Chapter 07."""

import numpy as np
import pytest

from accelbook.measure import memory as mm

# /sys/devices/system/cpu/cpu0/cache/index{0..3} of a 2-vCPU AMD EPYC virtual machine
FIXTURE = [
    {"level": "1\n", "type": "Data\n", "size": "32K\n", "coherency_line_size": "64\n", "shared_cpu_list": "0\n"},
    {"level": "1\n", "type": "Instruction\n", "size": "32K\n", "coherency_line_size": "64\n", "shared_cpu_list": "0\n"},
    {"level": "2\n", "type": "Unified\n", "size": "512K\n", "coherency_line_size": "64\n", "shared_cpu_list": "0\n"},
    {"level": "3\n", "type": "Unified\n", "size": "32768K\n", "coherency_line_size": "64\n", "shared_cpu_list": "0-1\n"},
]


def test_parse_cache_size():
    assert mm.parse_cache_size("32K") == 32 * 1024
    assert mm.parse_cache_size("32768K\n") == 32 * 2**20
    assert mm.parse_cache_size("1M") == 2**20
    assert mm.parse_cache_size("512") == 512
    assert mm.parse_cache_size("2 MiB") == 2 * 2**20
    with pytest.raises(ValueError, match="text="):
        mm.parse_cache_size("lots")


def test_parse_cache_index_and_data_caches():
    levels = [mm.parse_cache_index(f) for f in FIXTURE]
    data = mm.data_caches(levels)
    assert [c.name for c in data] == ["L1d", "L2", "L3"]
    assert [c.size for c in data] == [32768, 524288, 33554432]
    assert data[-1].shared_by == 2 and data[0].line == 64
    assert mm.parse_cache_index({"level": "2", "type": "Unified", "size": "1024K",
                                 "shared_cpu_list": "0-3,8-11"}).shared_by == 8


def test_parse_cache_index_names_a_missing_file():
    with pytest.raises(KeyError, match="size"):
        mm.parse_cache_index({"level": "1", "type": "Data"})


def test_cpu_caches_reads_a_folder_like_sysfs(tmp_path):
    for i, files in enumerate(FIXTURE):
        d = tmp_path / f"index{i}"
        d.mkdir()
        for name, text in files.items():
            (d / name).write_text(text)
    assert [c.size for c in mm.cpu_caches(str(tmp_path))] == [32768, 524288, 33554432]
    assert mm.cpu_caches(str(tmp_path / "missing")) == []


def test_sweep_sizes_cover_the_range_in_steps():
    s = mm.sweep_sizes(4096, 2**20, per_octave=2)
    assert s[0] == 4096 and s[-1] == 2**20 and all(b > a for a, b in zip(s, s[1:]))
    assert len(s) == 17
    top = mm.default_sweep_sizes("cpu", [32768, 524288, 33554432])[-1]
    assert top == 128 * 2**20  # two sizes beyond the last cache
    gpu = mm.default_sweep_sizes("gpu", [50e6], memory_bytes=80e9)
    assert gpu[-1] >= 4 * 50e6 - 1024 and gpu[-1] <= 80e9 / 8
    with pytest.raises(ValueError, match="backend"):
        mm.default_sweep_sizes("npu")


def test_working_set_sweep_counts_bytes_and_checks_the_result():
    pts = mm.working_set_sweep([4096, 65536], bytes_per_call=2**20, warmup=0, min_repeats=2, min_time=0.0)
    assert [p.nbytes for p in pts] == [4096, 65536]
    assert pts[0].passes == 2**20 // (2 * 4096) and pts[1].passes == 2**20 // (2 * 65536)  # read + write
    for p in pts:
        assert p.bytes_per_s == pytest.approx(2 * p.nbytes * p.passes / p.timing.median)
        lo, hi = p.p10_p90
        assert lo <= p.bytes_per_s <= hi


def test_plateaus_take_the_median_between_cache_edges():
    from accelbook.measure.harness import Timing

    pts = [mm.SweepPoint(s, 1, Timing((2 * s / bw,))) for s, bw in
           [(1000, 10.0), (2000, 12.0), (8000, 5.0), (9000, 7.0), (40000, 1.0)]]
    assert mm.plateaus(pts, [4000, 16000]) == pytest.approx([11.0, 5.0, 1.0])
    assert mm.plateaus(pts, [4000, 5000, 16000])[1] is None  # no size from 8000 to 2500
    assert mm.plateaus(pts, [2000]) == pytest.approx([10.0, 5.0])  # median of 5, 7 and 1


def test_transfer_sweep_returns_one_result_per_size():
    res = mm.transfer_sweep([4096, 16384], samples=2)
    assert [r.nbytes for r in res] == [4096, 16384]


def test_reuse_sweep_reads_the_matrix_once_per_block():
    pts = mm.reuse_sweep(64, 8, [1, 8], warmup=0, min_repeats=1, min_time=0.0)
    assert [p.weight_reads for p in pts] == [8, 1]
    assert pts[0].flops == pts[1].flops == 2 * 64 * 64 * 8
    assert pts[0].bytes == 4 * (8 * 64 * 64 + 2 * 64 * 8)
    with pytest.raises(ValueError, match="divide"):
        mm.reuse_sweep(64, 8, [3])


def test_default_reuse_size_exceeds_the_last_cache():
    n, cols = mm.default_reuse_size("cpu", 32 * 2**20)
    assert 4 * n * n >= 64 * 2**20 and cols == 32
    n, cols = mm.default_reuse_size("gpu", 50e6)
    assert 4 * n * n >= 2**30 and cols == 256


# --- text per backend, with fake devices -------------------------------------------------------

def _result(copies=True, nbytes=2**20, t=1e-3):
    from accelbook.measure.harness import Timing
    from accelbook.measure.overhead import TransferResult

    return TransferResult(nbytes, Timing((t,)), Timing((2 * t,)), copies, copies)


def test_level_edges_per_backend():
    from accelbook import device, specs

    levels = [mm.parse_cache_index(f) for f in FIXTURE]
    assert mm.level_edges(device.describe("cpu", "cpu"), levels) == [("L1d", 32768.0), ("L2", 524288.0),
                                                                    ("L3", 33554432.0)]
    assert mm.level_edges(device.describe("gpu", "Tesla T4")) == [("L2", specs.get_chip("t4").value("l2_cache"))]
    assert mm.level_edges(device.describe("tpu", "TPU v5 lite")) == [("VMEM", 128 * 2**20)]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert mm.level_edges(device.describe("gpu", "Some Future GPU")) == []


def test_sweep_note_names_what_each_backend_can_show():
    assert "caches Linux lists" in mm.sweep_note("cpu")
    assert "launch overhead" in mm.sweep_note("gpu") and "L2" in mm.sweep_note("gpu")
    assert "VMEM" in mm.sweep_note("tpu")
    with pytest.raises(ValueError, match="backend"):
        mm.sweep_note("npu")


def test_copy_note_fits_what_the_copies_did():
    from accelbook import device

    cpu = device.describe("cpu", "cpu")
    assert "Neither direction always copied" in mm.copy_note(cpu, [_result(False)])
    assert "memcpy" in mm.copy_note(cpu, [_result(True)])
    t4 = mm.copy_note(device.describe("gpu", "Tesla T4"), [_result(True)])
    assert "host link" in t4 and "PCIe Gen3 x16" in t4 and "15.8 GB/s per direction" in t4
    v5e = mm.copy_note(device.describe("tpu", "TPU v5 lite"), [_result(True)])
    assert "TPU" in v5e and "1.05 GB/s host → device" in v5e
    with pytest.raises(ValueError, match="transfers"):
        mm.copy_note(cpu, [])
