"""Device detection with fake device-kind strings."""

import pytest

from accelbook import device, specs


@pytest.mark.parametrize("chip", [c for c in specs.chips() if c.device_kinds], ids=lambda c: c.key)
def test_describe_finds_every_chip_from_its_device_kind(chip):
    backend = {"gpu": "gpu", "tpu": "tpu", "cpu": "cpu"}[chip.kind]
    for kind in chip.device_kinds:
        info = device.describe(backend, kind, 1)
        assert info.chip is chip
        assert info.has_spec_sheet == (chip.kind != "cpu")


def test_describe_reads_cuda_and_rocm_as_gpu():
    assert device.describe("cuda", "Tesla T4").backend == "gpu"
    assert device.describe("rocm", "AMD Instinct MI300X").backend == "gpu"


def test_unknown_device_falls_back_without_crashing():
    with pytest.warns(specs.UnknownDeviceWarning):
        info = device.describe("gpu", "NVIDIA RTX PRO 6000 Blackwell Server Edition", 1)
    assert info.chip is None and not info.has_spec_sheet
    assert info.label == "NVIDIA RTX PRO 6000 Blackwell Server Edition"


@pytest.mark.parametrize("backend, count, match", [
    ("metal", 1, "backend='metal'"), ("cpu", 0, "device_count=0"), ("cpu", 1.5, "device_count=1.5")])
def test_describe_rejects_bad_input(backend, count, match):
    with pytest.raises(ValueError, match=match):
        device.describe(backend, "cpu", count)


# jax.lax.Precision documents: DEFAULT uses TF32 on GPUs that have it and one bf16 pass on TPU;
# HIGHEST is true fp32 (emulated with several bf16 passes on TPU).
@pytest.mark.parametrize("kind_backend, dtype, precision, expected", [
    (("NVIDIA A100-SXM4-40GB", "gpu"), "fp32", "default", "tf32"),
    (("NVIDIA H100 80GB HBM3", "gpu"), "fp32", "highest", "fp32"),
    (("Tesla T4", "gpu"), "fp32", "default", "fp32"),  # Turing has no TF32
    (("Tesla V100-SXM2-16GB", "gpu"), "fp32", "default", "fp32"),
    (("TPU v5 lite", "tpu"), "fp32", "default", "bf16"),
    (("TPU v5 lite", "tpu"), "fp32", "highest", None),
    (("TPU v6 lite", "tpu"), "bf16", "default", "bf16"),
    (("NVIDIA L4", "gpu"), "bf16", "highest", "bf16"),
    (("cpu", "cpu"), "fp32", "default", "fp32"),
])
def test_matmul_peak_dtype_follows_jax_precision_rules(kind_backend, dtype, precision, expected):
    kind, backend = kind_backend
    info = device.describe(backend, kind)
    assert device.matmul_peak_dtype(info, dtype, precision) == expected


def test_matmul_peak_dtype_rejects_bad_precision():
    with pytest.raises(ValueError, match="precision='max'"):
        device.matmul_peak_dtype(device.describe("cpu", "cpu"), "fp32", "max")
