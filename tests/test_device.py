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


# --- TPU v2/v3: a JAX device is one TensorCore -----------------------------------------------------

@pytest.mark.parametrize("kind, backend, cores", [
    ("TPU v2", "tpu", 2), ("TPU v3", "tpu", 2),  # each TensorCore is its own JAX device
    ("TPU v4", "tpu", None), ("TPU v5", "tpu", None),  # megacore: one device per chip
    ("TPU v5 lite", "tpu", None), ("TPU v6 lite", "tpu", None), ("Tesla T4", "gpu", None), ("cpu", "cpu", None)])
def test_per_device_fraction_splits_only_v2_and_v3_chips(kind, backend, cores):
    info = device.describe(backend, kind)
    assert info.tensorcores_per_device == cores
    if cores is None:
        assert info.per_device_fraction == 1.0
        assert info.memory_bytes == info.chip.memory_bytes
    else:
        # the database's own count of TensorCores per chip; a 'TPU v2' device gets 8 GB of the
        # chip's 16 GB (JAX's TPU table) and a 'TPU v3' device 16 GiB of 32 (Google's v3 page)
        assert cores == info.chip.value("tensorcores_per_chip")
        assert info.per_device_fraction == 0.5
        assert info.memory_bytes == {"TPU v2": 8 * 10**9, "TPU v3": 16 * 2**30}[kind]


# --- The CPU: parse_cpuinfo on other machines' /proc/cpuinfo ---------------------------------------

XEON_AVX512 = """\
processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) CPU @ 2.20GHz
cpu MHz		: 2200.152
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 1
flags		: fpu sse sse2 avx fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl

processor	: 1
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R) CPU @ 2.20GHz
cpu MHz		: 2200.152
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 1
flags		: fpu sse sse2 avx fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl
"""

EPYC_ROME = "\n".join(f"""\
processor	: {p}
vendor_id	: AuthenticAMD
cpu family	: 23
model		: 49
model name	: AMD EPYC 7742 64-Core Processor
cpu MHz		: 1500.000
physical id	: 0
siblings	: 4
core id		: {p // 2}
cpu cores	: 2
flags		: fpu sse sse2 avx fma avx2 clwb wbnoinvd
""" for p in range(4))

NEOVERSE_N1 = "\n".join(f"""\
processor	: {p}
BogoMIPS	: 243.75
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1
""" for p in range(2))


def test_parse_cpuinfo_xeon_with_avx512_and_hyperthreading():
    cpu = device.parse_cpuinfo(XEON_AVX512)
    assert cpu.model_name == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert (cpu.simd, cpu.vector_bits, cpu.fp32_lanes) == ("AVX-512", 512, 16)
    assert (cpu.fma_units, cpu.fma_bits, cpu.fma_assumed) == (2, 512, False)
    # two hyperthreads of ONE core: the FMA units are shared, so the peak counts one core
    assert (cpu.logical_cpus, cpu.total_cpus, cpu.physical_cores, cpu.cores) == (2, 2, 1, 1)
    assert cpu.clock_hz == pytest.approx(2.200152e9) and not cpu.clock_is_max
    # 1 core x 2 FMA units x 16 fp32 lanes x 2 FLOP x 2.200152 GHz; fp64 has half the lanes
    assert cpu.peak_flops("fp32") == pytest.approx(1 * 2 * 16 * 2 * 2.200152e9)
    assert cpu.peak_flops("fp64") == pytest.approx(cpu.peak_flops("fp32") / 2)
    assert "Intel" in cpu.fma_source.title


def test_parse_cpuinfo_epyc_rome_is_zen2_with_smt_siblings_counted_once():
    cpu = device.parse_cpuinfo(EPYC_ROME, max_freq_khz=3.4e6)
    assert cpu.microarchitecture == "AMD Zen 2"
    assert (cpu.simd, cpu.fp32_lanes, cpu.fma_units, cpu.fma_bits) == ("AVX2", 8, 2, 256)
    assert (cpu.logical_cpus, cpu.physical_cores) == (4, 2)
    assert cpu.clock_hz == 3.4e9 and cpu.clock_is_max  # cpufreq's maximum wins over 'cpu MHz'
    assert cpu.peak_flops("fp32") == pytest.approx(2 * 2 * 8 * 2 * 3.4e9)
    # only CPUs 0 and 1 allowed: they are the two hyperthreads of core 0
    one = device.parse_cpuinfo(EPYC_ROME, affinity={0, 1})
    assert (one.logical_cpus, one.total_cpus, one.physical_cores, one.cores) == (2, 4, 1, 1)


def test_parse_cpuinfo_arm_neoverse_n1_from_its_part_number():
    cpu = device.parse_cpuinfo(NEOVERSE_N1)
    assert cpu.model_name == "Arm Neoverse N1" == cpu.microarchitecture
    assert (cpu.simd, cpu.vector_bits, cpu.fma_units, cpu.fma_bits) == ("NEON", 128, 2, 128)
    assert cpu.physical_cores is None and cpu.cores == 2  # no core ids: logical CPUs count
    assert cpu.clock_hz is None and cpu.peak_flops() is None  # no clock reported: no peak
    assert cpu.flop_per_cycle("fp32") == 2 * 4 * 2
    assert cpu.flop_per_cycle("fp16") is None  # asimdhp: fp16 arithmetic, rate not in the table
    with_clock = device.parse_cpuinfo(NEOVERSE_N1, max_freq_khz=2.5e6)
    assert with_clock.peak_flops("fp32") == pytest.approx(2 * 16 * 2.5e9)


THIS_MACHINE = """\
processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 1
model name	: AMD EPYC
stepping	: 1
cpu MHz		: 2445.406
cache size	: 512 KB
physical id	: 0
siblings	: 2
core id		: 0
cpu cores	: 2
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr wbnoinvd arat umip pku ospke vaes vpclmulqdq rdpid fsrm
bogomips	: 4890.81

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 1
model name	: AMD EPYC
stepping	: 1
cpu MHz		: 2445.406
cache size	: 512 KB
physical id	: 0
siblings	: 2
core id		: 1
cpu cores	: 2
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr wbnoinvd arat umip pku ospke vaes vpclmulqdq rdpid fsrm
bogomips	: 4890.81
"""


def test_parse_cpuinfo_of_the_book_builder():
    # family 25 (19h) model 1 without AVX-512 is Zen 3 (EPYC 7003 'Milan'), as lscpu's family
    # and model say; the hypervisor hides the SKU in the model name.
    cpu = device.parse_cpuinfo(THIS_MACHINE, affinity={0, 1})
    assert (cpu.model_name, cpu.microarchitecture) == ("AMD EPYC", "AMD Zen 3")
    assert (cpu.simd, cpu.fp32_lanes, cpu.fma_units, cpu.fma_bits) == ("AVX2", 8, 2, 256)
    assert (cpu.cores, cpu.clock_hz) == (2, 2.445406e9)
    assert cpu.peak_flops("fp32") == pytest.approx(2 * 2 * 8 * 2 * 2.445406e9)
    assert cpu.peak_flops("fp32", cores=1) == pytest.approx(cpu.peak_flops("fp32") / 2)
    # no bf16 instructions: a bf16 matmul computes in fp32, so its ceiling is the fp32 rate
    assert cpu.bf16_instructions == () and cpu.peak_flops("bf16") == cpu.peak_flops("fp32")
    assert "AMD Zen 3" in cpu.summary and "AVX2" in cpu.summary


@pytest.mark.parametrize("flags, family, arch, fma_bits, vector_lanes", [
    ("avx avx2 fma avx512f avx512_bf16", 25, "AMD Zen 4", 256, 16),  # 512-bit ISA, 256-bit FMA units
    ("avx avx2 fma", 25, "AMD Zen 3", 256, 8),
    ("avx avx2 fma avx512f", 26, "AMD Zen 5", 512, 16),
])
def test_parse_cpuinfo_tells_amd_generations_apart(flags, family, arch, fma_bits, vector_lanes):
    text = f"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: 17\n" \
           f"model name\t: AMD EPYC\ncpu MHz\t\t: 2000.0\nflags\t\t: sse2 {flags}\n"
    cpu = device.parse_cpuinfo(text)
    assert (cpu.microarchitecture, cpu.fma_bits, cpu.fp32_lanes) == (arch, fma_bits, vector_lanes)
    # FLOP/cycle from the datapath, not the ISA: Zen 4's 512-bit FMAs take two passes
    assert cpu.flop_per_cycle("fp32") == 2 * (fma_bits // 32) * 2


def test_parse_cpuinfo_leaves_bf16_units_uncounted():
    text = XEON_AVX512.replace("avx512vl", "avx512vl amx_bf16 amx_tile avx512_bf16")
    cpu = device.parse_cpuinfo(text)
    assert cpu.bf16_instructions == ("avx512_bf16", "amx_bf16")
    assert cpu.peak_flops("bf16") is None and cpu.peak_flops("fp32") is not None


def test_parse_cpuinfo_unknown_cpu_gets_the_labelled_default():
    text = "processor\t: 0\nvendor_id\t: HygonGenuine\ncpu family\t: 24\nmodel\t\t: 1\n" \
           "model name\t: Hygon C86 7185\ncpu MHz\t\t: 2000.0\nflags\t\t: sse2 avx avx2 fma\n"
    cpu = device.parse_cpuinfo(text)
    assert cpu.fma_assumed and cpu.microarchitecture is None and cpu.fma_source is None
    assert (cpu.fma_units, cpu.fma_bits) == (2, 256) and "assumed" in cpu.fma_note
    assert "(assumed)" in cpu.summary
    # no /proc/cpuinfo at all (macOS): platform's name, unknown clock, no peak
    bare = device.parse_cpuinfo("", fallback_name="arm", machine="arm64")
    assert (bare.model_name, bare.simd, bare.clock_hz, bare.peak_flops()) == ("arm", "NEON", None, None)


def test_parse_cpuinfo_container_quota_caps_the_cores():
    cpu = device.parse_cpuinfo(EPYC_ROME, cpu_quota=device.parse_cpu_max("150000 100000"))
    assert cpu.cpu_quota == 1.5 and cpu.cores == 1
    assert device.parse_cpu_max("max 100000") is None
    assert device.parse_cpu_max("200000 100000") == 2.0


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(text=None), TypeError, "text=None"),
    (dict(text=XEON_AVX512, affinity=set()), ValueError, "affinity"),
    (dict(text=XEON_AVX512, affinity={-1}), ValueError, "affinity item=-1"),
    (dict(text=XEON_AVX512, cpu_quota=0), ValueError, "cpu_quota=0"),
])
def test_parse_cpuinfo_rejects_bad_input(kwargs, error, match):
    text = kwargs.pop("text")
    with pytest.raises(error, match=match):
        device.parse_cpuinfo(text, **kwargs)


def test_cpu_peak_rejects_bad_dtype_and_cores():
    cpu = device.parse_cpuinfo(XEON_AVX512)
    with pytest.raises(ValueError, match="dtype='int8'"):
        cpu.peak_flops("int8")
    with pytest.raises(ValueError, match="cores=0"):
        cpu.peak_flops("fp32", cores=0)


def test_cpu_info_describes_this_cpu_and_nothing_off_cpu():
    assert device.cpu_info(device.describe("gpu", "Tesla T4")) is None
    assert device.cpu_info(device.describe("tpu", "TPU v5 lite")) is None
    cpu = device.cpu_info(device.describe("cpu", "cpu"))
    assert cpu is device.host_cpu() and cpu.logical_cpus >= 1 and cpu.cores >= 1


# --- An NVIDIA GPU's clocks: nvidia-smi's CSV --------------------------------------------------------

def test_parse_gpu_clocks_reads_mhz_and_watts_and_na():
    text = "Tesla T4, 585, 1590, 27.83, 70.00\nNVIDIA L4, [N/A], 2040, [N/A], 72.00\n"
    t4, l4 = device.parse_gpu_clocks(text)
    assert (t4.name, t4.sm_clock_hz, t4.max_sm_clock_hz, t4.power_draw_w, t4.power_limit_w) == \
        ("Tesla T4", 585e6, 1590e6, 27.83, 70.0)
    assert t4.clock_fraction == pytest.approx(585 / 1590)
    assert l4.sm_clock_hz is None and l4.power_draw_w is None and l4.clock_fraction is None
    assert device.parse_gpu_clocks("") == []
    with pytest.raises(ValueError, match="expected 5"):
        device.parse_gpu_clocks("Tesla T4, 585")


def _fake_smi(tmp_path, body):
    exe = tmp_path / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return str(exe)


def test_gpu_clocks_runs_nvidia_smi_when_present(tmp_path, monkeypatch):
    monkeypatch.setattr(device.shutil, "which", lambda name: None)
    assert device.gpu_clocks() is None
    exe = _fake_smi(tmp_path, 'echo "Tesla T4, 1005, 1590, 64.10, 70.00"')
    monkeypatch.setattr(device.shutil, "which", lambda name: exe)
    got = device.gpu_clocks()
    assert got.name == "Tesla T4" and got.sm_clock_hz == 1005e6
    slow = _fake_smi(tmp_path, "sleep 5")
    monkeypatch.setattr(device.shutil, "which", lambda name: slow)
    assert device.gpu_clocks(timeout=0.2) is None
    with pytest.raises(ValueError, match="timeout=0"):
        device.gpu_clocks(timeout=0)


def test_describe_names_bad_strings_and_a_kind_of_another_backend():
    import pytest

    from accelbook import device

    for bad in (None, 3, ["cpu"]):
        with pytest.raises(ValueError, match="^device_kind="):
            device.describe("gpu", bad)
    with pytest.raises(ValueError, match="device_kind='TPU v5 lite' is a TPU"):
        device.describe("gpu", "TPU v5 lite")
    with pytest.raises(TypeError, match="^info=None"):
        device.matmul_peak_dtype(None, "fp32")
    with pytest.raises(ValueError, match="^device_count="):
        device.DeviceInfo("gpu", "x", True, None)
