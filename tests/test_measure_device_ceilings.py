"""Where the ceilings come from (accelbook.measure.device_ceilings): the spec sheet, or a measurement."""

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


def test_this_cpu_is_measured_and_labelled_so():
    info = device.current()
    assert info.backend == "cpu" and info.device_kind == "cpu"
    assert info.chip.key == "host-cpu" and not info.has_spec_sheet
    c = measure.ceilings("fp32")
    assert c.source == "measured" and "measured" in c.label
    # A real measurement: a 2-core CPU does more than 1 GFLOP/s and 0.5 GB/s, and far less
    # than any datacenter accelerator's peak.
    assert 1e9 < c.peak_flops < 1e14
    assert 5e8 < c.memory_bandwidth < 1e12
