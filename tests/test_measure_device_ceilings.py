"""Where the ceilings come from (accelbook.measure.device_ceilings): the spec sheet, or a measurement."""

import dataclasses
import functools
import json
import os

import numpy as np
import pytest

from accelbook import device, measure, specs


def test_spec_sheet_ceilings_for_a_known_gpu():
    info = device.describe("gpu", "NVIDIA A100-SXM4-80GB")
    c = measure.ceilings("fp32", info)
    chip = specs.get_chip("a100-80gb")
    assert c.source == "spec sheet" and c.dtype == "tf32"
    assert c.peak_flops == chip.peak_flops["tf32"]
    assert c.memory_bandwidth == chip.memory_bandwidth
    assert c.ridge_point == pytest.approx(chip.ridge_point("tf32"))


def test_ceilings_of_another_machine_without_a_spec_sheet_cannot_be_measured():
    with pytest.warns(specs.UnknownDeviceWarning):
        info = device.describe("gpu", "Mystery GPU")
    with pytest.raises(ValueError, match="only the device running this process"):
        measure.ceilings("fp32", info)


def test_this_cpu_is_measured_and_labelled_so(monkeypatch):
    monkeypatch.delenv(measure.device_ceilings.ENV, raising=False)
    measure.device_ceilings.build_measurement.cache_clear()
    small = functools.lru_cache(lambda dtype, precision="default": measure.device_ceilings.measure_ceilings(
        [] if dtype is None else [(dtype, precision)], bandwidth=dtype is None, rounds=2, n=512, elements=2**22))
    monkeypatch.setattr(measure.device_ceilings, "_live", small)  # the protocol, at a smaller size
    info = device.current()
    assert info.backend == "cpu" and info.device_kind == "cpu"
    assert info.chip.key == "host-cpu" and not info.has_spec_sheet
    c = measure.ceilings("fp32")
    assert not c.once_per_build and len(c.peak_samples) == 2 and len(c.bandwidth_samples) == 2
    assert c.source == "measured" and "measured" in c.label
    # A real measurement: a 2-core CPU does more than 1 GFLOP/s and 0.5 GB/s, and far less
    # than any datacenter accelerator's peak.
    assert 1e9 < c.peak_flops < 1e14
    assert 5e8 < c.memory_bandwidth < 1e12


# --- TPU v2/v3: spec-sheet ceilings per JAX device (one TensorCore) --------------------------------

@pytest.mark.parametrize("kind, key", [("TPU v2", "tpu-v2"), ("TPU v3", "tpu-v3")])
def test_tpu_v2_v3_ceilings_are_per_tensorcore(kind, key):
    info = device.describe("tpu", kind)
    chip = specs.get_chip(key)
    c = measure.ceilings("bf16", info)
    halves = 1 / chip.value("tensorcores_per_chip")
    assert c.peak_flops == pytest.approx(chip.peak_flops["bf16"] * halves)
    assert c.memory_bandwidth == pytest.approx(chip.memory_bandwidth * halves)
    assert c.per_device_fraction == halves and "TensorCore" in c.label
    # the ridge point is the chip's: both ceilings are halved
    assert c.ridge_point == pytest.approx(chip.ridge_point("bf16"))


def test_megacore_tpus_keep_whole_chip_ceilings():
    info = device.describe("tpu", "TPU v4")
    c = measure.ceilings("bf16", info)
    assert c.peak_flops == specs.get_chip("tpu-v4").peak_flops["bf16"] and c.per_device_fraction == 1


def test_triad_is_sized_to_one_device():
    v2 = device.describe("tpu", "TPU v2")
    assert measure.default_triad_elements(v2) == measure.default_triad_elements("tpu", v2.memory_bytes)
    # each of the three float32 arrays takes at most 1/16 of a device's memory
    small = device.describe("gpu", "Tesla T4")
    n = measure.default_triad_elements(small)
    assert n * 4 <= small.memory_bytes / 16 and n == 2**27  # 1.5 GiB in all on a 16 GB T4
    with pytest.raises(ValueError, match="backend='metal'"):
        measure.default_triad_elements("metal")


@pytest.mark.parametrize("kwargs, match", [
    (dict(source="datasheet"), "source='datasheet'"),
    (dict(source="spec sheet"), "no fp32"),  # a CPU has no spec sheet
])
def test_ceilings_rejects_bad_source(kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure.ceilings("fp32", device.describe("cpu", "cpu"), **kwargs)


def test_measured_ceilings_of_another_device_cannot_be_asked_for():
    with pytest.raises(ValueError, match="only the device running this process"):
        measure.ceilings("fp32", device.describe("gpu", "Tesla T4"), source="measured")


# --- The interleaved protocol and the build's file ---------------------------------------------------

dc = measure.device_ceilings


@pytest.fixture
def no_build_file(monkeypatch):
    monkeypatch.delenv(dc.ENV, raising=False)
    dc.build_measurement.cache_clear()
    yield
    dc.build_measurement.cache_clear()


def test_measure_ceilings_interleaves_rounds_and_takes_the_best_round(no_build_file):
    m = dc.measure_ceilings([("fp32", "default"), ("bf16", "default")], rounds=3, n=128, elements=2**16)
    assert set(m.peaks) == {"fp32/default", "bf16/default"} and len(m.bandwidth) == 3
    for samples in m.peaks.values():
        assert len(samples) == 3 and all(s > 0 for s in samples)
    assert m.peak("fp32") == float(np.max(m.peaks["fp32/default"]))
    assert m.memory_bandwidth == float(np.max(m.bandwidth))
    assert m.peak("fp16") is None
    assert m.identity["backend"] == "cpu" and m.identity["affinity"] == sorted(os.sched_getaffinity(0))
    again = dc.Measurement.from_json(json.loads(json.dumps(m.to_json())), from_build=False)
    assert again == m


def _write(path, identity, peaks, bandwidth, fmt=1):
    data = {"format": fmt, "date": "2026-12-07T00:00:00Z", "identity": identity,
            "protocol": {"rounds": len(bandwidth), "matmul_n": 2048, "triad_elements": 2**24},
            "peaks": {k: {"flop_per_s": float(np.max(v)), "samples": v} for k, v in peaks.items()},
            "bandwidth": {"bytes_per_s": float(np.max(bandwidth)), "samples": bandwidth},
            "seconds": 5.0}
    path.write_text(json.dumps(data))
    return path


def test_a_build_file_for_this_device_is_read_and_never_re_measured(tmp_path, monkeypatch, no_build_file):
    live = []
    monkeypatch.setattr(dc, "_live", lambda *a: live.append(a) or pytest.fail("measured instead of read"))
    path = _write(tmp_path / "c.json", dc.identity(), {"fp32/default": [1e11, 3e11, 2e11]}, [2e10, 1e10, 3e10])
    monkeypatch.setenv(dc.ENV, str(path))
    assert measure.measured_peak("fp32") == 3e11 and measure.measured_bandwidth() == 3e10  # the best round
    c = measure.ceilings("fp32")
    assert (c.peak_flops, c.memory_bandwidth, c.source, c.once_per_build) == (3e11, 3e10, "measured", True)
    assert c.peak_samples == (1e11, 3e11, 2e11) and c.peak_spread == pytest.approx(1.0)
    assert c.cpu_cores == min(device.host_cpu().cores, len(os.sched_getaffinity(0)))
    assert live == []


def test_a_case_missing_from_the_build_file_is_measured_here(tmp_path, monkeypatch, no_build_file):
    fake = dc.Measurement({}, 1, 64, None, {"bf16/default": (5e10,)}, (), 0.1, "now")
    monkeypatch.setattr(dc, "_live", lambda dtype, precision="default": fake)
    path = _write(tmp_path / "c.json", dc.identity(), {"fp32/default": [1e11]}, [2e10])
    before = path.read_text()
    monkeypatch.setenv(dc.ENV, str(path))
    assert measure.measured_peak("bf16") == 5e10
    assert path.read_text() == before  # read-only for the kernels


@pytest.mark.parametrize("change", ["device_kind", "affinity", "cpu", "format", "missing"])
def test_a_build_file_for_another_setup_is_ignored(tmp_path, monkeypatch, no_build_file, change):
    ident = dc.identity()
    if change == "device_kind":
        ident["device_kind"] = "TPU v5 lite"
    elif change == "affinity":
        ident["affinity"] = ident["affinity"] + [999]
    elif change == "cpu":
        ident["cpu"] = dict(ident["cpu"], model_name="Some Other CPU")
    path = _write(tmp_path / "c.json", ident, {"fp32/default": [1e11]}, [2e10], fmt=2 if change == "format" else 1)
    monkeypatch.setenv(dc.ENV, str(tmp_path / "nope.json") if change == "missing" else str(path))
    assert dc.build_measurement() is None


def test_write_build_file_round_trips_through_the_environment(tmp_path, monkeypatch, no_build_file):
    path = tmp_path / "sub" / "ceilings.json"
    m = dc.write_build_file(path, cases=[("fp32", "default")], rounds=2, n=64, elements=2**12)
    monkeypatch.setenv(dc.ENV, str(path))
    found = dc.build_measurement()
    assert found.from_build and found.peaks == m.peaks and found.bandwidth == m.bandwidth
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left behind


# --- device_summary: the CPU named, its computed peak beside the measured one -------------------------

def test_device_summary_names_the_cpu_and_both_peaks(monkeypatch):
    from accelbook import notebook

    cpu = device.host_cpu()
    info = device.describe("cpu", "cpu")
    peak = cpu.peak_flops("fp32", 1)
    assert peak is not None, "this test needs a CPU whose clock the system reports"
    above = dc.Ceilings(peak * 1.2, 2e10, "fp32", "measured", "this CPU (measured, fp32)",
                        (peak * 1.1, peak * 1.2, peak * 1.3), (1e10, 2e10, 3e10), True, 1)
    md = notebook.device_summary(info, above)
    assert cpu.model_name in md and cpu.simd in md and f"{cpu.fp32_lanes} fp32 lanes" in md
    assert "computed peak (fp32)" in md and "1 core ×" in md
    assert "once for this build" in md and "3 interleaved rounds" in md
    assert "best of 3" in md and "17%" in md and "100%" in md  # (1.3 - 1.1) / 1.2 and (3 - 1) / 2
    # a measured peak above the computed one is never shown without its reason
    assert "1.20 (above the computed peak:" in md
    below = dataclasses.replace(above, peak_flops=peak * 0.5, once_per_build=False)
    md = notebook.device_summary(info, below)
    assert "0.50 (of the computed peak)" in md and "in this notebook's process" in md


def test_device_summary_says_a_tpu_v3_device_is_one_tensorcore():
    from accelbook import notebook

    info = device.describe("tpu", "TPU v3")
    md = notebook.device_summary(info, measure.ceilings("bf16", info))
    assert "one of the chip's 2 TensorCores" in md and "CPU" not in md
