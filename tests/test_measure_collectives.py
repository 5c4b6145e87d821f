"""measure.collectives: the NumPy reference on hand-worked 2- and 3-rank cases, the pure helpers
(sizes, XLA flags, which shard_map and which device-count option), argument errors, and, in two
subprocesses (this process already runs JAX with one CPU device), the five collectives on 8 and 3
virtual CPU devices checked against NumPy written here, nccl-tests' S and busbw factor, the fit,
the copies, and the XLA_FLAGS fallback. Chapter 10."""

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

from accelbook.measure import collectives as mc
from accelbook.models import collectives as model

# -- the reference, by hand ------------------------------------------------------------------------

B2 = np.array([[1.0, 2.0, 3.0, 4.0],
               [10.0, 20.0, 30.0, 40.0]])
B3 = np.array([[1.0, 2.0, 3.0],
               [4.0, 5.0, 6.0],
               [7.0, 8.0, 9.0]])


def test_reference_two_ranks_by_hand():
    assert mc.reference("allreduce", B2).tolist() == [[11, 22, 33, 44], [11, 22, 33, 44]]
    assert mc.reference("allgather", B2).tolist() == [[1, 2, 3, 4, 10, 20, 30, 40]] * 2
    # the sum is [11, 22, 33, 44]: rank 0 keeps its first half, rank 1 the second
    assert mc.reference("reducescatter", B2).tolist() == [[11, 22], [33, 44]]
    # rank 0 gets chunk 0 of rank 0 then chunk 0 of rank 1; rank 1 the chunks 1
    assert mc.reference("alltoall", B2).tolist() == [[1, 2, 10, 20], [3, 4, 30, 40]]
    # rank r receives from rank r-1: with two ranks they swap
    assert mc.reference("permute", B2).tolist() == [[10, 20, 30, 40], [1, 2, 3, 4]]


def test_reference_three_ranks_by_hand():
    assert mc.reference("allreduce", B3).tolist() == [[12, 15, 18]] * 3
    assert mc.reference("allgather", B3).tolist() == [[1, 2, 3, 4, 5, 6, 7, 8, 9]] * 3
    assert mc.reference("reducescatter", B3).tolist() == [[12], [15], [18]]
    # with one value per chunk, all-to-all is the transpose
    assert mc.reference("alltoall", B3).tolist() == [[1, 4, 7], [2, 5, 8], [3, 6, 9]]
    assert mc.reference("permute", B3).tolist() == [[7, 8, 9], [1, 2, 3], [4, 5, 6]]


def test_reference_shapes():
    blocks = np.arange(4 * 8.0).reshape(4, 8)
    shapes = {op: mc.reference(op, blocks).shape for op in mc.MEASURED_OPS}
    assert shapes == {"allreduce": (4, 8), "allgather": (4, 32), "reducescatter": (4, 2),
                      "alltoall": (4, 8), "permute": (4, 8)}


def test_reference_rejects_bad_input():
    with pytest.raises(ValueError, match="op="):
        mc.reference("broadcast", B2)
    with pytest.raises(ValueError, match="blocks"):
        mc.reference("allreduce", np.ones(4))
    with pytest.raises(ValueError, match="blocks.*divisible"):
        mc.reference("reducescatter", np.ones((3, 4)))
    with pytest.raises(ValueError, match="blocks"):
        mc.reference("allreduce", np.array([[1.0, np.nan]]))


# -- sizes -----------------------------------------------------------------------------------------

def test_elements_per_rank_follows_nccl_size():
    # nccl-tests' count argument per op, written out: S = count·size·(n for the per-rank ops)
    p, size = 8, 4
    for op, m in (("allreduce", 64), ("allgather", 64), ("reducescatter", 64), ("alltoall", 64), ("permute", 64)):
        nccl_count = {"allgather": m, "reducescatter": m // p, "alltoall": m // p}.get(op, m)
        s = model.nccl_size_bytes(op, nccl_count, size, p)
        assert mc.elements_per_rank(op, s, p, "fp32") == m
    assert mc.elements_per_rank("allgather", 1024, 8, "fp32") == 32  # a rank ends with 1024 B, sends 128 B
    assert mc.elements_per_rank("allreduce", 1024, 8, "bf16") == 512
    with pytest.raises(ValueError, match="n_bytes=100"):
        mc.elements_per_rank("allreduce", 100, 8, "fp32")  # not a multiple of 8·4


@pytest.mark.parametrize("platform", ["cpu", "gpu", "tpu"])
@pytest.mark.parametrize("p", [2, 3, 8])
def test_default_sizes_divide_evenly(platform, p):
    sizes = mc.default_sizes(platform, p)
    assert sizes == sorted(set(sizes)) and 6 <= len(sizes) <= 10
    assert all(s % (p * p * 8) == 0 for s in sizes)
    assert sizes[-1] <= (4 if platform == "cpu" else 64) * 2**20
    assert sizes[-1] >= (1 if platform == "cpu" else 16) * 2**20


# -- the branches: device-count option, XLA flag, shard_map ---------------------------------------

def test_xla_flags_appends_or_replaces():
    flag = "--xla_force_host_platform_device_count"
    assert mc.xla_flags_with_device_count("", 8) == f"{flag}=8"
    assert mc.xla_flags_with_device_count("--xla_cpu_foo=1", 4) == f"--xla_cpu_foo=1 {flag}=4"
    assert mc.xla_flags_with_device_count(f"--a=1 {flag}=2 --b=2", 8) == f"--a=1 {flag}=8 --b=2"
    with pytest.raises(ValueError, match="n="):
        mc.xla_flags_with_device_count("", 0)


def test_which_device_count_option():
    assert mc._has_num_cpu_devices(SimpleNamespace(_value_holders={"jax_num_cpu_devices": 1}))
    assert not mc._has_num_cpu_devices(SimpleNamespace(_value_holders={"jax_platforms": 1}))
    assert mc._has_num_cpu_devices(SimpleNamespace(jax_num_cpu_devices=-1))
    assert not mc._has_num_cpu_devices(SimpleNamespace())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jax.experimental.shard_map on new JAX
def test_which_shard_map():
    def new(f, /, *, out_specs, in_specs=None, mesh=None, axis_names=frozenset(), check_vma=True):
        pass

    def old(f, mesh, in_specs, out_specs, check_rep=True, auto=frozenset()):
        pass

    assert mc._shard_map_call(SimpleNamespace(shard_map=new)) == (new, {"check_vma": False})
    fn, extra = mc._shard_map_call(SimpleNamespace())  # no jax.shard_map: the experimental one
    assert extra == {"check_rep": False} or extra == {"check_vma": False}
    assert mc._shard_map_call(SimpleNamespace(shard_map=old)) == (old, {"check_rep": False})


# -- notes -----------------------------------------------------------------------------------------

def test_describe_per_platform():
    cpu = mc.describe("cpu", 8)
    assert "8 virtual CPU devices" in cpu and "not a network" in cpu
    fallback = mc.describe("cpu", 8, default_backend="gpu")
    assert "one GPU" in fallback and "host CPU" in fallback
    assert "one TPU chip" in mc.describe("cpu", 8, default_backend="tpu")
    gpu = mc.describe("gpu", 4, "NVIDIA H100 80GB HBM3")
    assert "4 GPUs" in gpu and "NCCL" in gpu and "NVLink" in gpu and "PCIe" in gpu
    assert "ICI" in mc.describe("tpu", 8, "TPU v5 lite")
    with pytest.raises(ValueError, match="platform="):
        mc.describe("npu", 2)
    assert "memcpy" in mc.copy_note("cpu") and "PCIe" in mc.copy_note("gpu") and "ICI" in mc.copy_note("tpu")


# -- this process: one CPU device, JAX already running --------------------------------------------

def test_one_device_process():
    import jax

    jax.devices()  # the backend is up
    assert mc.request_virtual_devices(8) is False
    if len(jax.devices("cpu")) >= 2:
        pytest.skip("this process was started with several CPU devices")
    with pytest.raises(RuntimeError, match="request_virtual_devices"):
        mc.collective_devices()


def test_bad_arguments_name_themselves():
    import jax

    one = jax.devices()[:1]
    with pytest.raises(ValueError, match="op="):
        mc.collective_sweep("allsum", sizes=[64], devices=one)
    with pytest.raises(ValueError, match="dtype="):
        mc.collective_sweep("allreduce", sizes=[64], devices=one, dtype="int8")
    with pytest.raises(ValueError, match="sizes"):
        mc.collective_sweep("allreduce", sizes=[6], devices=one)  # not a multiple of 4 bytes
    with pytest.raises(ValueError, match="sizes"):
        mc.collective_sweep("allreduce", sizes=[0], devices=one)
    with pytest.raises(ValueError, match="max_devices="):
        mc.collective_devices(max_devices=1)
    with pytest.raises(ValueError, match="sizes"):
        mc.copy_sweep(sizes=[6], devices=one)
    with pytest.raises(TypeError, match="devices"):
        mc.device_set(["cpu:0"])


def test_one_rank_sweep_moves_nothing():
    import jax

    sweep = mc.collective_sweep("allreduce", sizes=[64, 256], devices=jax.devices()[:1],
                                warmup=1, min_repeats=1, max_repeats=2, min_time=0)
    assert sweep.p == 1 and sweep.platform == "cpu"
    assert np.all(sweep.busbw == 0)  # factor 2(p-1)/p = 0
    assert np.all(sweep.algbw == sweep.n_bytes / sweep.seconds)
    with pytest.raises(ValueError, match="p=1"):
        sweep.fit()


# -- 8 and 3 virtual devices, in a subprocess -----------------------------------------------------

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from accelbook.measure import collectives as mc
    first = mc.request_virtual_devices(8)
    import jax
    out = {"first": first, "devices": len(jax.devices())}
    out["second"] = mc.request_virtual_devices(8)
    ds = mc.collective_devices()
    out["set"] = dict(p=ds.p, platform=ds.platform, virtual=ds.virtual, note=ds.note)
    rng = np.random.default_rng(7)
    out["runs"] = []
    for p in (8, 3):
        sub = mc.collective_devices(max_devices=p)
        for op in mc.MEASURED_OPS:
            blocks = rng.standard_normal((p, 2 * p)).astype(np.float32)
            got = np.asarray(mc.collective(op, sub)(mc.shard_blocks(blocks, sub)))
            out["runs"].append(dict(op=op, p=sub.p, blocks=blocks.tolist(), got=got.tolist()))
    fast = dict(warmup=1, min_repeats=2, max_repeats=3, min_time=0)
    out["sweeps"] = []
    for op in mc.MEASURED_OPS:
        sw = mc.collective_sweep(op, sizes=[256, 1024, 4096, 16384], devices=ds, **fast)
        fit = sw.fit()
        out["sweeps"].append(dict(op=op, p=sw.p, virtual=sw.virtual, platform=sw.platform,
            points=[dict(n_bytes=pt.n_bytes, elements=pt.elements, seconds=pt.seconds, spread=pt.spread,
                         algbw=pt.algbw, busbw=pt.busbw, max_error=pt.max_error) for pt in sw.points],
            fit=dict(alpha=fit.alpha, beta=fit.beta, alpha_stderr=fit.alpha_stderr,
                     beta_stderr=fit.beta_stderr)))
    bf = mc.collective_sweep("allreduce", sizes=[256], devices=ds, dtype="bf16", **fast)
    out["bf16_error"] = bf.points[0].max_error
    out["copies"] = [dict(kind=c.kind, n_bytes=c.n_bytes, seconds=c.seconds, bandwidth=c.bandwidth, copied=c.copied)
                     for c in mc.copy_sweep(sizes=[4096, 65536], devices=ds, **fast)]
    print(json.dumps(out))
""")

FALLBACK = textwrap.dedent("""
    import json, os
    from accelbook.measure import collectives as mc
    mc._has_num_cpu_devices = lambda config: False  # as on JAX 0.4.33, which lacks the option
    ok = mc.request_virtual_devices(4)
    import jax
    print(json.dumps(dict(ok=ok, flags=os.environ.get("XLA_FLAGS", ""), devices=len(jax.devices()))))
""")


def _run(script):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def virtual():
    return _run(SCRIPT)


def _expected(op, blocks):
    """Written out independently of mc.reference."""
    p = len(blocks)
    if op == "allreduce":
        return np.stack([np.sum(blocks, axis=0)] * p)
    if op == "allgather":
        return np.stack([np.concatenate(list(blocks))] * p)
    if op == "reducescatter":
        return np.stack(np.split(np.sum(blocks, axis=0), p))
    if op == "alltoall":
        return np.stack([np.concatenate([np.split(blocks[i], p)[r] for i in range(p)]) for r in range(p)])
    return np.stack([blocks[(r - 1) % p] for r in range(p)])


def test_virtual_devices_are_requested_once(virtual):
    assert virtual["first"] is True and virtual["devices"] == 8
    assert virtual["second"] is False  # the backend is up: nothing changes
    assert virtual["set"]["p"] == 8 and virtual["set"]["platform"] == "cpu" and virtual["set"]["virtual"] is True
    assert "virtual CPU devices" in virtual["set"]["note"]


def test_collectives_match_numpy(virtual):
    seen = set()
    for run in virtual["runs"]:
        blocks = np.array(run["blocks"])
        p = run["p"]
        got = np.array(run["got"]).reshape(p, -1)
        want = _expected(run["op"], blocks)
        assert got.shape == want.shape, run["op"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{run['op']} on {p} ranks")
        np.testing.assert_allclose(mc.reference(run["op"], blocks), want, rtol=1e-12)
        seen.add((run["op"], p))
    assert seen == {(op, p) for op in mc.MEASURED_OPS for p in (8, 3)}


def test_sweeps_follow_nccl_tests(virtual):
    for sw in virtual["sweeps"]:
        op, p = sw["op"], sw["p"]
        assert p == 8 and sw["virtual"] is True and sw["platform"] == "cpu"
        factor = model.bus_bandwidth_factor(op, p)
        for pt in sw["points"]:
            m = pt["elements"]
            nccl_count = {"allgather": m, "reducescatter": m // p, "alltoall": m // p}.get(op, m)
            assert pt["n_bytes"] == model.nccl_size_bytes(op, nccl_count, 4, p)
            assert pt["max_error"] == 0.0
            assert pt["algbw"] == pytest.approx(pt["n_bytes"] / pt["seconds"], rel=1e-12)
            assert pt["busbw"] / pt["algbw"] == pytest.approx(factor, rel=1e-12)
            assert pt["spread"][0] <= pt["seconds"] <= pt["spread"][1]
        assert [pt["n_bytes"] for pt in sw["points"]] == [256, 1024, 4096, 16384]
        fit = sw["fit"]
        for key in ("alpha", "beta", "alpha_stderr", "beta_stderr"):
            assert np.isfinite(fit[key]) and fit[key] >= 0, (op, key, fit[key])
    assert virtual["bf16_error"] == 0.0


def test_copies(virtual):
    kinds = [(c["kind"], c["n_bytes"]) for c in virtual["copies"]]
    assert kinds == [("host_to_device", 4096), ("device_to_device", 4096),
                     ("host_to_device", 65536), ("device_to_device", 65536)]
    for c in virtual["copies"]:
        assert c["bandwidth"] == pytest.approx(c["n_bytes"] / c["seconds"], rel=1e-12)
        assert c["copied"] is True  # the host array sits off the alignment JAX would alias


def test_off_alignment_copy():
    values = np.arange(1000, dtype=np.float32)
    moved = mc._off_alignment(values)
    assert moved.ctypes.data % 64 == 4 and np.array_equal(moved, values)


def test_xla_flags_fallback_gives_the_devices():
    got = _run(FALLBACK)
    assert got["ok"] is True and "--xla_force_host_platform_device_count=4" in got["flags"]
    assert got["devices"] == 4


def test_copy_table_puts_each_size_on_one_row_and_the_host_link_note_reads_the_ratio():
    pts = [mc.CopyPoint("host_to_device", 4096, 1e-5, (1e-5, 2e-5), 5, 4096 / 1e-5, True),
           mc.CopyPoint("device_to_device", 4096, 2e-5, (2e-5, 3e-5), 5, 4096 / 2e-5, False),
           mc.CopyPoint("host_to_device", 2**20, 1e-4, (1e-4, 2e-4), 5, 2**20 / 1e-4, True)]
    head, rows = mc.copy_table(pts, "copies")
    assert head == ["copies: size", "host → device: median time", "host → device: bandwidth",
                    "device → device: median time", "device → device: bandwidth"]
    assert rows[0] == ("4 KiB", "10 µs", "410 MB/s", "20 µs (aliased, no copy)", "205 MB/s")
    assert rows[1] == ("1 MiB", "100 µs", "10.5 GB/s", "", "")
    head, rows = mc.copy_table(pts[2:], "host")
    assert len(head) == 3 and rows == [("1 MiB", "100 µs", "10.5 GB/s")]
    # 10.5 GB/s of a 31.5 GB/s PCIe 4.0 link, one way: 33 %
    note = mc.host_link_note(pts[2], "NVIDIA L4", 31.5e9)
    assert "10.5 GB/s at 1 MiB (measured), 33 % of the 31.5 GB/s one way" in note
    assert "%" not in mc.host_link_note(pts[2], "TPU v5 lite", None)
    with pytest.raises(TypeError, match="copies"):
        mc.copy_table([object()], "x")
