"""The API contract, checked on every public callable of accelbook.

The walk imports every module of the package and collects its public callables (names not starting
with ``_`` and defined in that module: functions, classes and the classes' public methods). Each one
needs an entry in :data:`BASES`: a valid call (a function returning the keyword arguments, so that
figures, axes and records are fresh for every case). The test then substitutes bad values into one
argument at a time and requires, for every case, either

* a ``ValueError``, ``KeyError`` or ``TypeError`` whose message names the argument, or
* a sane result: nothing NaN or infinite in it (record fields, arrays, tuples and dicts are
  scanned), and no negative number where the entry does not allow one.

Some bad values must be rejected outright: a bool, a numeric string or a list where a number is
expected, NaN, None where None is not the default, a number or a string where True/False is
expected, a bare string where a sequence is expected. numpy scalars (``np.int64``, ``np.float64``,
``np.bool_``) in place of Python ones must be accepted. Each case runs under a 2-second alarm: a
hang fails the test.

A callable without an entry fails ``test_every_public_callable_has_a_base``: add one to BASES
(``B(lambda: dict(...))``; ``B(..., obj=lambda: instance)`` for a method; ``Skip("why")`` only for
callables that cannot be called cheaply and safely here, such as those that execute notebooks).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import signal
import tomllib
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import accelbook  # noqa: E402

CASE_SECONDS = 2.0


# -- the walk -------------------------------------------------------------------------------------

def _public_callables() -> dict[str, tuple[Any, Any]]:
    """``{"module.Name": (owner, callable)}`` and ``{"module.Class.method": (Class, function)}``."""
    found = {}
    for info in pkgutil.walk_packages(accelbook.__path__, "accelbook."):
        if info.name == "accelbook.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if not callable(obj):
                continue
            key = f"{module.__name__.removeprefix('accelbook.')}.{name}"
            found[key] = (module, obj)
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for mname, member in vars(obj).items():
                    if mname.startswith("_"):
                        continue
                    if inspect.isfunction(member) or isinstance(member, (staticmethod, classmethod)):
                        found[f"{key}.{mname}"] = (obj, getattr(obj, mname))
    return found


CALLABLES = _public_callables()


# -- the table of valid base calls ----------------------------------------------------------------

@dataclasses.dataclass
class B:
    """A valid call: ``kwargs()`` returns fresh keyword arguments (``"*args"``: extra positionals).

    ``obj``: for a method, returns the instance. ``arrays``: parameters that take arrays as well as
    scalars. ``negative``: the result may be negative. ``params``: fuzz only these (default: every
    parameter in the base call). ``none``: parameters for which None is valid though the
    signature does not say so. ``seconds``: the time cap of one case (JAX compiles take a while).
    ``known``: ``{param: reason}`` for cases left failing on purpose.
    """

    kwargs: Callable[[], dict] = dict
    obj: Callable[[], Any] | None = None
    arrays: tuple = ()
    negative: bool = False
    params: tuple | None = None
    none: tuple = ()
    seconds: float = CASE_SECONDS
    known: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Skip:
    reason: str


def _chip(key="h100-sxm"):
    from accelbook import specs
    return specs.get_chip(key)


def _info():
    from accelbook import device
    return device.describe("gpu", _chip().device_kinds[0])


def _ax():
    return plt.subplots(figsize=(3, 2), dpi=40)[1]


def _fig():
    return plt.figure(figsize=(3, 2), dpi=40)


def _run():
    from accelbook.models import systolic
    return systolic.simulate(np.arange(6.0).reshape(3, 2), np.arange(6.0).reshape(2, 3), 2, 2, "ws")


def _timing():
    from accelbook.measure.harness import Timing
    return Timing((1e-3, 2e-3, 3e-3))


def _rows():
    from accelbook.models import roofline
    return roofline.ridge_table([_chip(), _chip("tpu-v5e")], ("bf16",))


def _chips_toml():
    from importlib.resources import files
    return tomllib.loads(files("accelbook.data").joinpath("chips.toml").read_text())


def _arch_toml():
    from importlib.resources import files
    return tomllib.loads(files("accelbook.data").joinpath("cuda_arch.toml").read_text())


def _explorable():
    from accelbook import explore

    def draw(x, on):
        fig = plt.figure(figsize=(1, 1), dpi=30)
        return fig, f"x={x}"
    return explore.Explorable(lambda: explore.Redraw(draw), [explore.slider("x", [1, 2, 3]),
                                                              explore.toggle("on")], name="contract", dpi=30)


def _add(x, y):
    return x + y


def _jitted_add():
    import jax
    return jax.jit(_add)


def _f32(*shape):
    return np.ones(shape, np.float32)


def _record(n=64):
    from types import SimpleNamespace
    flops = 2.0 * n ** 3
    return SimpleNamespace(n=n, flops=flops, flop_per_s=flops / 1e-3, dtype="fp32", precision="default",
                           timing=SimpleNamespace(median=1e-3, p10=0.9e-3, p90=1.2e-3))


VIEW = "called by explore with values already checked against its explorable's parameters"
RENDER = "renders every frame of an explorable (covered by tests/test_explore.py)"

BASES: dict[str, B | Skip] = {
    # checks (the flags and names are the library's own literals: only the checked value is fuzzed)
    "checks.show": B(lambda: dict(value=3), params=()),
    "checks.is_bool": B(lambda: dict(value=True), params=()),
    "checks.is_real": B(lambda: dict(value=3), params=()),
    "checks.real": B(lambda: dict(name="value", value=2.0, positive=True), params=("value",)),
    "checks.integer": B(lambda: dict(name="value", value=2, minimum=0), params=("value",)),
    "checks.positive_int": B(lambda: dict(name="value", value=2), params=("value",)),
    "checks.nonneg_int": B(lambda: dict(name="value", value=2), params=("value",)),
    "checks.boolean": B(lambda: dict(name="value", value=True), params=("value",)),
    "checks.text": B(lambda: dict(name="value", value="a"), params=("value",)),
    "checks.one_of": B(lambda: dict(name="value", value="a", allowed=("a", "b")), params=("value",)),
    "checks.sequence": B(lambda: dict(name="value", value=[1, 2]), params=()),  # any items; tests/test_checks.py
    "checks.instance": B(lambda: dict(name="value", value=3, cls=int), params=()),
    "checks.callable_": B(lambda: dict(name="value", value=len), params=("value",)),
    "checks.finite_result": B(lambda: dict(names={"a": 1.0}, value=2.0), params=()),
    "checks.size_limit": B(lambda: dict(name="value", value=3, needed=10, limit=100, what="bytes"), params=()),
    # units
    "units.to_si": B(lambda: dict(value=2.0, unit="GB/s")),
    "units.fmt": B(lambda: dict(value=2.5e9, unit="B/s", digits=3, binary=False)),
    # specs
    "specs.Source": B(lambda: dict(key="k", title="T", url="https://x.org", kind="datasheet")),
    "specs.Spec": B(lambda: dict(field="bf16", value=1e15, si_unit="FLOP/s", raw=1000, unit="TFLOP/s",
                                 source=_chip().peak["bf16"].source), none=("source",)),
    "specs.Chip": Skip("a record built only by specs.parse from the checked data file"),
    "specs.Chip.value": B(lambda: dict(field="memory_bandwidth"), obj=_chip),
    "specs.Chip.ridge_point": B(lambda: dict(dtype="bf16"), obj=_chip),
    "specs.itemsize": B(lambda: dict(dtype="bf16")),
    "specs.check_dtype": B(lambda: dict(dtype="bf16")),
    "specs.parse_sources": B(lambda: dict(table=_chips_toml()["sources"])),
    "specs.parse": B(lambda: dict(data=_chips_toml())),
    "specs.chips": B(lambda: dict(kind="gpu")),
    "specs.get_chip": B(lambda: dict(name="h100-sxm")),
    "specs.as_chip": B(lambda: dict(name="value", value="h100-sxm"), params=("value",)),
    "specs.chip_for_device_kind": B(lambda: dict(kind="NVIDIA H100 80GB HBM3")),
    "specs.UnknownDeviceWarning": Skip("a warning class"),
    # device
    "device.DeviceInfo": B(lambda: dict(backend="gpu", device_kind="x", device_count=1, chip=None)),
    "device.describe": B(lambda: dict(backend="gpu", device_kind="NVIDIA H100 80GB HBM3", device_count=1)),
    "device.current": B(),
    "device.matmul_peak_dtype": B(lambda: dict(info=_info(), dtype="fp32", precision="default")),
    # device: the host CPU and GPU clocks
    "device.CpuInfo": Skip("a record built only by device.parse_cpuinfo"),
    "device.CpuInfo.flop_per_cycle": B(lambda: dict(dtype="fp32"), obj=lambda: _cpu()),
    "device.CpuInfo.peak_flops": B(lambda: dict(dtype="fp32"), obj=lambda: _cpu()),
    "device.parse_cpuinfo": B(lambda: dict(text=_cpuinfo_text(), max_freq_khz=3e6, cpu_quota=None,
                                           sve_vector_bits=None, fallback_name="", machine="x86_64")),
    "device.parse_cpu_max": B(lambda: dict(text="200000 100000")),
    "device.host_cpu": B(),
    "device.cpu_info": B(lambda: dict(info=None)),
    "device.GpuClocks": Skip("a record built only by device.parse_gpu_clocks"),
    "device.parse_gpu_clocks": B(lambda: dict(text="NVIDIA H100, 1980 MHz, 1980 MHz, 70.5 W, 700.00 W")),
    "device.gpu_clocks": Skip("runs nvidia-smi"),
    # models.roofline
    "models.roofline.attainable": B(lambda: dict(intensity=10.0, peak_flops=1e12, bandwidth=1e11),
                                    arrays=("intensity",)),
    "models.roofline.ridge_point": B(lambda: dict(peak_flops=1e12, bandwidth=1e11)),
    "models.roofline.min_time": B(lambda: dict(flops=1e9, bytes_moved=1e6, peak_flops=1e12, bandwidth=1e11)),
    "models.roofline.matmul_intensity": B(lambda: dict(m=64, n=64, k=64, bytes_per_element=2)),
    "models.roofline.elementwise_intensity": B(lambda: dict(flops_per_element=1.0, inputs=2, outputs=1,
                                                            bytes_per_element=4)),
    "models.roofline.Prediction": B(lambda: dict(flops=1e9, bytes_moved=1e6, peak_flops=1e12, bandwidth=1e11)),
    "models.roofline.predict": B(lambda: dict(flops=1e9, bytes_moved=1e6, peak_flops=1e12, bandwidth=1e11)),
    "models.roofline.min_batch_for_compute_bound": B(lambda: dict(d_in=1024, d_out=1024, peak_flops=1e12,
                                                                  bandwidth=1e11, bytes_per_element=2)),
    "models.roofline.square_matmul_crossover": B(lambda: dict(peak_flops=1e12, bandwidth=1e11,
                                                              bytes_per_element=2)),
    "models.roofline.RidgeRow": B(lambda: dict(chip=_chip(), dtype="bf16", peak_flops=1e12, bandwidth=1e11)),
    "models.roofline.ridge_table": B(lambda: dict(chip_list=[_chip()], dtypes=("bf16",))),
    "models.roofline.generation_growth": B(lambda: dict(rows=_rows(), lines=None)),
    "models.roofline.group_ops": B(lambda: dict(ops=_ops())),
    # models.overhead
    "models.overhead.call_time": B(lambda: dict(flops=1e9, bytes_moved=1e6, t0=1e-5, peak_flops=1e12,
                                                bandwidth=1e11, pipelined=False), arrays=("flops", "bytes_moved")),
    "models.overhead.regime": B(lambda: dict(flops=1e9, bytes_moved=1e6, t0=1e-5, peak_flops=1e12,
                                             bandwidth=1e11), arrays=("flops", "bytes_moved")),
    "models.overhead.overhead_crossover_bytes": B(lambda: dict(t0=1e-5, bandwidth=1e11)),
    "models.overhead.MatmulRegimes": B(lambda: dict(n_memory=10.0, n_ridge=100.0, n_compute=1000.0)),
    "models.overhead.square_matmul_regimes": B(lambda: dict(t0=1e-5, peak_flops=1e12, bandwidth=1e11,
                                                            bytes_per_element=2)),
    "models.overhead.spans": B(lambda: dict(x=[1.0, 2.0, 3.0], labels=["a", "a", "b"])),
    "models.overhead.chain_bytes": B(lambda: dict(n_ops=4, elements=1000, bytes_per_element=4, fused=True)),
    "models.overhead.chain_time": B(lambda: dict(n_ops=4, elements=1000, t_op=1e-6, bandwidth=1e11, fused=True,
                                                 t0=1e-5, bytes_per_element=4, flops_per_op=1, peak_flops=1e12)),
    "models.overhead.chain_times": B(lambda: dict(n_ops=4, elements=1000, t_op=1e-6, bandwidth=1e11, t0=1e-5,
                                                  bytes_per_element=4, flops_per_op=1, peak_flops=1e12),
                                     arrays=("n_ops", "elements")),
    "models.overhead.amortized_time": B(lambda: dict(t_call=1e-3, t_compile=1.0, calls=10), arrays=("calls",)),
    "models.overhead.break_even_calls": B(lambda: dict(t_compile=1.0, t_slow=1e-3, t_fast=1e-4)),
    "models.overhead.pow2_bucket": B(lambda: dict(length=100, minimum=1)),
    "models.overhead.BucketPlan": B(lambda: dict(lengths=(3, 5), padded=(4, 8))),
    "models.overhead.bucket_plan": B(lambda: dict(lengths=[3, 5, 9], minimum=1)),
    "models.overhead.expected_distinct": B(lambda: dict(values=100, draws=10)),
    "models.overhead.sync_step_time": B(lambda: dict(t_host=1e-3, t_device=2e-3, sync_every=1),
                                        arrays=("sync_every",)),
    # models.matmul
    "models.matmul.unit_roundoff": B(lambda: dict(dtype="bf16")),
    "models.matmul.peak_dtype": B(lambda: dict(chip=_chip(), dtype="fp32", precision="default"), none=("chip",)),
    "models.matmul.OverheadModel": B(lambda: dict(t0=1e-5, peak=1e12)),
    "models.matmul.OverheadModel.seconds": B(lambda: dict(flops=1e9), obj=lambda: _om(), arrays=("flops",)),
    "models.matmul.OverheadModel.rate": B(lambda: dict(flops=1e9), obj=lambda: _om(), arrays=("flops",)),
    "models.matmul.fit_overhead_model": B(lambda: dict(flops=[1e6, 1e8, 1e10], seconds=[1e-5, 1e-4, 1e-2])),
    "models.matmul.padding_efficiency": B(lambda: dict(m=100, n=100, k=100, tile=16)),
    "models.matmul.Waves": B(lambda: dict(tiles=10, sm_count=4, waves=2.5)),
    "models.matmul.waves": B(lambda: dict(m=1000, n=1000, sm_count=108, tile=(128, 128))),
    "models.matmul.chip_model": B(lambda: dict(chip=_chip(), dtype="bf16", t0=1e-5, utilization=0.5,
                                               precision="default")),
    # models.systolic
    "models.systolic.Fold": Skip("a record built only by systolic.simulate"),
    "models.systolic.SystolicRun": Skip("a record built only by systolic.simulate"),
    "models.systolic.EdgeTraffic": Skip("a record built only by systolic.edge_traffic"),
    "models.systolic.cycles": B(lambda: dict(M=8, N=8, K=8, rows=4, cols=4, dataflow="ws")),
    "models.systolic.cycles_double_buffered": B(lambda: dict(M=8, N=8, K=8, rows=4, cols=4, dataflow="ws")),
    "models.systolic.padded_shape": B(lambda: dict(M=8, N=8, K=8, rows=4, cols=4, dataflow="ws")),
    "models.systolic.shape_efficiency": B(lambda: dict(M=8, N=8, K=8, rows=4, cols=4, dataflow="ws")),
    "models.systolic.simulate": B(lambda: dict(A=np.ones((3, 2)), B=np.ones((2, 3)), rows=2, cols=2, dataflow="ws",
                                               double_buffer=False, max_cycles=1000)),
    "models.systolic.mac_schedule": B(lambda: dict(run=_run())),
    "models.systolic.cycles_pipelined": B(lambda: dict(M=8, N=8, K=8, rows=4, cols=4, dataflow="ws")),
    "models.systolic.edge_traffic": B(lambda: dict(M=8, N=8, K=8, rows=4, cols=4, dataflow="ws")),
    "models.systolic.utilization": B(lambda: dict(M=8, N=8, K=8, rows=4, cols=4, dataflow="ws",
                                                  double_buffer=False)),
    "models.systolic.mxu_peak": B(lambda: dict(chip=_chip("tpu-v5e"))),
    # models.memory
    "models.memory.Value": Skip("a record built only by memory.parse from the checked data file"),
    "models.memory.Link": Skip("a record built only by memory.parse from the checked data file"),
    "models.memory.Measurement": Skip("a record built only by memory.parse from the checked data file"),
    "models.memory.Measurement.seconds": B(obj=lambda: _mem().measurements()[0]),
    "models.memory.MemoryData": Skip("a record built only by memory.parse from the checked data file"),
    "models.memory.parse": B(lambda: dict(data=_memory_toml())),
    "models.memory.data": B(),
    "models.memory.link": B(lambda: dict(key=next(iter(_mem().data().links)))),
    "models.memory.pcie_bandwidth": B(lambda: dict(generation=4, lanes=16)),
    "models.memory.measurements": B(lambda: dict(chip=None, level=None, quantity=None)),
    "models.memory.clock": B(lambda: dict(chip="a100-80gb")),
    "models.memory.latency": B(lambda: dict(chip="a100-80gb", level="l2")),
    "models.memory.sm_latencies": B(lambda: dict(chip="a100-80gb")),
    "models.memory.Level": Skip("a record built only by memory.hierarchy"),
    "models.memory.Level.move_time": B(lambda: dict(q_bytes=1e6), obj=lambda: _mem().hierarchy("a100-80gb")[-1],
                                       arrays=("q_bytes",)),
    "models.memory.hierarchy": B(lambda: dict(chip="a100-80gb")),
    "models.memory.move_time": B(lambda: dict(q_bytes=1e6, bandwidth=1e12, latency_s=1e-6), arrays=("q_bytes",)),
    "models.memory.bytes_in_flight": B(lambda: dict(bandwidth=1e12, latency_s=1e-6)),
    "models.memory.effective_bandwidth": B(lambda: dict(q_bytes=1e6, bandwidth=1e12, latency_s=1e-6),
                                           arrays=("q_bytes",)),
    "models.memory.TileTraffic": Skip("a record built only by memory.tiled_matmul_traffic"),
    "models.memory.tiled_matmul_traffic": B(lambda: dict(m=64, n=64, k=64, bm=16, bn=16, bk=1, bytes_per_value=4)),
    "models.memory.tile_footprint": B(lambda: dict(bm=16, bn=16, bk=1)),
    "models.memory.largest_square_tile": B(lambda: dict(capacity_bytes=2**16, bytes_per_value=2, bk=None)),
    "models.memory.intensity_ceiling": B(lambda: dict(tile=64, bytes_per_value=2)),
    "models.memory.io_lower_bound": B(lambda: dict(m=64, n=64, k=64, fast_words=1024.0)),
    "models.memory.Trace": Skip("a record built only by memory.matmul_trace and memory.sweep_trace"),
    "models.memory.matmul_trace": B(lambda: dict(n=8, order="ijk", tile=None)),
    "models.memory.sweep_trace": B(lambda: dict(words=64, sweeps=2)),
    "models.memory.simulate_lru": B(lambda: dict(trace=_mem().sweep_trace(64, 2), capacity_lines=4, line_words=8)),
    "models.memory.StackDistances": B(lambda: dict(trace=_mem().sweep_trace(64, 2), line_words=8)),
    "models.memory.StackDistances.fills": B(lambda: dict(capacity_lines=4), obj=lambda: _stack()),
    "models.memory.StackDistances.writebacks": B(lambda: dict(capacity_lines=4), obj=lambda: _stack()),
    "models.memory.StackDistances.traffic_words": B(lambda: dict(capacity_lines=4), obj=lambda: _stack()),
    "models.memory.StackDistances.curve": B(lambda: dict(capacities=[1, 2, 4]), obj=lambda: _stack()),
    "models.memory.naive_traffic_words": B(lambda: dict(n=64, line_words=8)),
    "models.memory.fits_traffic_words": B(lambda: dict(n=64)),
    "models.memory.Bounce": B(lambda: dict(unfused_bytes=2e6, fused_bytes=1e6, bandwidth=1e12)),
    "models.memory.hbm_bounce": B(lambda: dict(ops=_ops(), bandwidth=1e12)),
    "models.memory.Offload": Skip("a record built only by memory.offload_step"),
    "models.memory.Offload.slowdown": B(lambda: dict(hbm_bandwidth=2e12), obj=lambda: _mem().offload_step(1e9, 0.5, 2e12, 6.4e10)),
    "models.memory.offload_step": B(lambda: dict(weight_bytes=1e9, offloaded_fraction=0.5, hbm_bandwidth=2e12,
                                                 link_bandwidth=6.4e10, overlap=True)),
    "models.memory.max_offload_for_slowdown": B(lambda: dict(slowdown=2.0, hbm_bandwidth=2e12, link_bandwidth=6.4e10)),
    # models.decoder (more)
    "models.decoder.Prediction": Skip("a record built only by decoder.predict"),
    "models.decoder.RunningExample": B(lambda: dict(model="llama-2-7b", context=1024, small_batch=1, large_batch=64,
                                                    chips=("t4", "h100-sxm"))),
    "models.decoder.crossing_batch": B(lambda: dict(config=_llama(), peak_flops=1e15, bandwidth=3e12, bytes_per_value=2)),
    "models.decoder.kv_cache_bytes": B(lambda: dict(config=_llama(), tokens=128, bytes_per_value=2)),
    "models.decoder.predict": B(lambda: dict(ops=_ops(), peak_flops=1e15, bandwidth=3e12, t0=1e-5)),
    # models.gpu (data tables)
    "models.gpu.parse_memory_access": Skip("parses a table of the checked data file (tests/test_models_gpu*.py)"),
    "models.gpu.parse_tensor_core_table": Skip("parses a table of the checked data file (tests/test_models_gpu*.py)"),
    "models.gpu.parse_sm_units": Skip("parses a table of the checked data file (tests/test_models_gpu*.py)"),
    "models.gpu.SMUnits": Skip("a record built only by gpu.parse_sm_units"),
    "models.gpu.sm_units": B(lambda: dict(compute_capability="8.0")),
    # models.overhead (more)
    "models.overhead.LaunchBudget": B(lambda: dict(kernels=10, launch_time=1e-5, bytes=1e6, elementwise_bytes=1e5,
                                                   memory_time=1e-6)),
    "models.overhead.launch_budget": B(lambda: dict(ops=_ops(), t_launch=5e-6, bandwidth=1e12)),
    # models.roofline (more)
    "models.roofline.above_roof_reason": B(lambda: dict(intensity=10.0, achieved=1e11, peak_flops=1e12,
                                                        bandwidth=1e11, measured=True)),
    # models.systolic (more)
    "models.systolic.layout_tile": B(lambda: dict(dtype="bf16")),
    "models.systolic.layout_padding": B(lambda: dict(shape=(100, 100), dtype="bf16")),
    "models.systolic.k_cliff_sweep": B(lambda: dict(T=128, backend="tpu")),
    # models.decoder
    "models.decoder.DecoderConfig": B(lambda: dict(name="tiny", d_model=64, n_heads=4, n_kv_heads=2, d_ff=128,
                                                   n_layers=2, explicit_head_dim=32, sliding_window=16,
                                                   qkv_bias=False, params_total=1e6)),
    "models.decoder.model_keys": B(),
    # models.collectives
    "models.collectives.LinkValue": Skip("a record built only by collectives.parse_links from the checked data file"),
    "models.collectives.LinkValue.per_direction": B(obj=lambda: _col().get_link("nvlink4").value("device_bandwidth")),
    "models.collectives.Link": Skip("a record built only by collectives.parse_links from the checked data file"),
    "models.collectives.Link.value": B(lambda: dict(quantity="links"), obj=lambda: _col().get_link("nvlink4")),
    "models.collectives.Link.bandwidth": B(lambda: dict(quantity="device_bandwidth", direction="per direction"),
                                           obj=lambda: _col().get_link("nvlink4")),
    "models.collectives.Measurement": Skip("a record built only by collectives.parse_links from the checked data file"),
    "models.collectives.Sweep": Skip("a record built only by collectives.parse_links from the checked data file"),
    "models.collectives.LinkData": Skip("a record built only by collectives.parse_links from the checked data file"),
    "models.collectives.parse_links": B(lambda: dict(data=_links_toml())),
    "models.collectives.link_data": B(),
    "models.collectives.links": B(lambda: dict(family=None)),
    "models.collectives.get_link": B(lambda: dict(key="nvlink4")),
    "models.collectives.measurements": B(lambda: dict(link=None, quantity=None)),
    "models.collectives.get_sweep": B(lambda: dict(key="a100-allreduce-8")),
    "models.collectives.ChipLinks": Skip("a record built only by collectives.chip_links from the checked data files"),
    "models.collectives.chip_links": B(lambda: dict(chip="h100-sxm")),
    "models.collectives.CostTerms": Skip("a record built only by collectives.cost_terms"),
    "models.collectives.CostTerms.time": B(lambda: dict(n_bytes=1e6, alpha=1e-6, beta=1e-9, gamma=0.0),
                                           obj=lambda: _col().cost_terms("allreduce", "ring", 4), arrays=("n_bytes",)),
    "models.collectives.cost_terms": B(lambda: dict(op="allreduce", algorithm="ring", p=4)),
    "models.collectives.collective_time": B(lambda: dict(op="allreduce", algorithm="ring", n_bytes=1e6, p=4,
                                                         alpha=1e-6, beta=1e-9, gamma=0.0), arrays=("n_bytes",)),
    "models.collectives.LowerBound": Skip("a record built only by collectives.lower_bound"),
    "models.collectives.lower_bound": B(lambda: dict(op="allreduce", n_bytes=1e6, p=4, alpha=1e-6, beta=1e-9,
                                                     gamma=0.0)),
    "models.collectives.crossover_bytes": B(lambda: dict(op="allreduce", alg_a="recursive_doubling", alg_b="ring",
                                                         p=8, alpha=1e-6, beta=1e-9, gamma=0.0)),
    "models.collectives.Fit": Skip("a record built only by collectives.fit_alpha_beta"),
    "models.collectives.fit_alpha_beta": B(lambda: dict(op="allreduce", algorithm="ring", p=8,
                                                        n_bytes=np.array([1e3, 1e6, 1e9]),
                                                        seconds=np.array([2e-5, 3e-5, 5e-3])),
                                           arrays=("n_bytes", "seconds")),
    "models.collectives.bus_bandwidth_factor": B(lambda: dict(op="allreduce", n=8)),
    "models.collectives.nccl_size_bytes": B(lambda: dict(op="allgather", count=1000, bytes_per_element=4, n=8)),
    "models.collectives.algorithm_bandwidth": B(lambda: dict(size_bytes=1e9, seconds=1e-2),
                                                arrays=("size_bytes", "seconds")),
    "models.collectives.bus_bandwidth": B(lambda: dict(op="allreduce", size_bytes=1e9, seconds=1e-2, n=8),
                                          arrays=("size_bytes", "seconds")),
    "models.collectives.time_from_bus_bandwidth": B(lambda: dict(op="allreduce", size_bytes=1e9, bus_bw=3.7e11, n=8),
                                                    arrays=("size_bytes", "bus_bw")),
    "models.collectives.algorithm_from_bus_bandwidth": B(lambda: dict(op="allreduce", bus_bw=3.7e11, n=8),
                                                         arrays=("bus_bw",)),
    "models.collectives.torus_allreduce_time": B(lambda: dict(n_bytes=1e6, dims=(4, 4), alpha=1e-6, link_beta=2e-11,
                                                              gamma=0.0), arrays=("n_bytes",)),
    "models.decoder.as_model": B(lambda: dict(name="value", value="llama-3-8b"), params=("value",)),
    "models.collectives.fsdp_comm_time": B(lambda: dict(weight_bytes=1e6, grad_bytes=1e6, p=8, alpha=1e-6, beta=1e-9,
                                                        algorithm="ring")),
    "models.collectives.alltoall_bisection_time": B(lambda: dict(n_bytes=1e6,
                                                                 topology=_col().ring_topology(8, 10e9, 1e-6))),
    "models.collectives.rail_allreduce_time": B(lambda: dict(n_bytes=1e6, nodes=4, per_node=8, intra_alpha=1e-6,
                                                             intra_beta=1 / 450e9, inter_alpha=5e-6, inter_beta=2e-11,
                                                             gamma=0.0), arrays=("n_bytes",)),
    "models.collectives.hierarchical_allreduce_time": B(lambda: dict(n_bytes=1e6, nodes=2, per_node=8,
                                                                     intra_alpha=1e-6, intra_beta=1 / 450e9,
                                                                     inter_alpha=5e-6, inter_beta=2e-11, gamma=0.0),
                                                        arrays=("n_bytes",)),
    "models.collectives.Topology": Skip("a record built only by ring_topology, torus_topology, switch_topology "
                                        "and two_level_topology"),
    "models.collectives.Topology.allreduce_time": B(lambda: dict(n_bytes=1e6, gamma=0.0),
                                                    obj=lambda: _col().torus_topology((4, 4), 5e10, 1e-6),
                                                    arrays=("n_bytes",)),
    "models.collectives.ring_topology": B(lambda: dict(p=8, link_bandwidth=1e11, alpha=1e-6)),
    "models.collectives.torus_topology": B(lambda: dict(dims=(4, 4), link_bandwidth=5e10, alpha=1e-6)),
    "models.collectives.switch_topology": B(lambda: dict(p=8, device_bandwidth=4.5e11, alpha=1e-6)),
    "models.collectives.two_level_topology": B(lambda: dict(nodes=2, per_node=8, intra_bandwidth=4.5e11,
                                                            inter_bandwidth=5e10, intra_alpha=1e-6, inter_alpha=5e-6)),
    "models.collectives.layer_shape": B(lambda: dict(d_model=1024, n_heads=16, n_kv_heads=16, d_ff=4096, n_layers=8)),
    "models.collectives.layer_flops": B(lambda: dict(config=_col().layer_shape(1024, 16, 16, 4096, 8), batch=2,
                                                     seq_len=128, training=True)),
    "models.collectives.TensorParallelCost": Skip("a record built only by collectives.tensor_parallel"),
    "models.collectives.tensor_parallel": B(lambda: dict(config=_col().layer_shape(1024, 16, 16, 4096, 8), tp=4,
                                                         batch=2, seq_len=128, peak_flops=1e15, alpha=1e-6,
                                                         beta=1e-9, bytes_per_value=2, training=True,
                                                         algorithm="ring")),
    "models.collectives.max_tensor_parallel": B(lambda: dict(config=_col().layer_shape(1024, 16, 16, 4096, 8),
                                                             batch=2, seq_len=128, peak_flops=1e15, alpha=1e-6,
                                                             beta=1e-9, bytes_per_value=2, training=True,
                                                             algorithm="ring", max_degree=16)),
    "models.collectives.pipeline_bubble": B(lambda: dict(stages=4, microbatches=8)),
    "models.collectives.PipelineCost": Skip("a record built only by collectives.pipeline_parallel"),
    "models.collectives.pipeline_parallel": B(lambda: dict(config=_col().layer_shape(1024, 16, 16, 4096, 8),
                                                           stages=4, microbatches=8, micro_batch=2, seq_len=128,
                                                           peak_flops=1e15, alpha=1e-6, beta=1e-9,
                                                           bytes_per_value=2, training=True)),
    "models.collectives.DataParallelCost": Skip("a record built only by collectives.data_parallel"),
    "models.collectives.TPDecodeStep": Skip("a record built only by collectives.tp_decode_step"),
    "models.collectives.tp_decode_step": B(lambda: dict(config=_toy_decoder(), tp=2, batch=4, context=32,
                                                        peak_flops=1e12, memory_bandwidth=1e11, alpha=1e-6,
                                                        beta=1e-9, bytes_per_param=2, bytes_per_value=2,
                                                        kv_bytes_per_value=2, algorithm="ring")),
    "models.collectives.devices_needed": B(lambda: dict(config=_toy_decoder(), memory_capacity=1e6, batch=4,
                                                        context=32, bytes_per_param=2, kv_bytes_per_value=2,
                                                        max_devices=64)),
    "models.collectives.data_parallel": B(lambda: dict(params=10**9, dp=8, tokens_per_replica=4096,
                                                       peak_flops=1e15, alpha=1e-6, beta=1e-9, bytes_per_grad=2,
                                                       buckets=10, algorithm="ring", gamma=0.0)),
    # models.choose
    "models.choose.Achieved": Skip("a record built only by choose.parse_achieved from the checked data file"),
    "models.choose.parse_achieved": B(lambda: dict(data=_achieved_toml())),
    "models.choose.achieved_table": B(),
    "models.choose.achieved": B(lambda: dict(chip="h100-sxm", dtype="bf16")),
    "models.choose.Workload": B(lambda: dict(mode="finetune", model="llama-3-8b", dtype="bf16", kv_dtype="bf16",
                                             batch=1, context=4096, tpot_target=None, tokens_per_step=65536,
                                             devices=4, optimizer_bytes=16, trainable_fraction=0.01,
                                             recompute=True, micro_tokens=4096)),
    "models.choose.Verdict": Skip("a record built only by choose.evaluate"),
    "models.choose.evaluate": B(lambda: dict(workload=_choose_serve(), chip="h100-sxm", t0=0.0)),
    "models.choose.train_memory": B(lambda: dict(workload=_choose_train(), devices=8)),
    "models.choose.train_flops": B(lambda: dict(workload=_choose_train())),
    "models.choose.skipped": B(lambda: dict(workload=_choose_serve(), chips=None)),
    "models.choose.rank": B(lambda: dict(workload=_choose_serve(), chips=["h100-sxm", "l4"], t0=0.0)),
    "models.choose.table_rows": B(lambda: dict(verdicts=[_choose().evaluate(_choose_serve(), "h100-sxm")])),
    "models.choose.DecodeTimes": B(lambda: dict(workload=_choose_serve(),
                                                verdict=_choose().evaluate(_choose_serve(), "h100-sxm")), params=()),
    "models.choose.DecodeTimes.terms": B(lambda: dict(b=4), obj=lambda: _choose().DecodeTimes(
        _choose_serve(), _choose().evaluate(_choose_serve(), "h100-sxm"))),
    "models.choose.PrefillTimes": B(lambda: dict(workload=_choose_serve(),
                                                 verdict=_choose().evaluate(_choose_serve(), "h100-sxm")), params=()),
    "models.choose.simplest": B(lambda: dict(verdicts=[_choose().evaluate(_choose_serve(), "h100-sxm")])),
    "models.choose.explain": B(lambda: dict(verdicts=[_choose().evaluate(_choose_serve(), "h100-sxm")], top=3)),
    "models.choose.Tail": Skip("a record built only by choose.serve_tail"),
    "models.choose.serve_tail": B(lambda: dict(workload=_choose_serve(), chip="h100-sxm", rate=50.0, output=16,
                                               prompt=64, requests=20, seed=0, t0=0.0)),
    "models.choose.Load": Skip("a record built only by choose.max_load"),
    "models.choose.saturation_rate": B(lambda: dict(workload=_choose_serve(), chip="h100-sxm", output=16, prompt=64,
                                                    t0=0.0)),
    "models.choose.max_load": B(lambda: dict(workload=_choose_serve(), chip="h100-sxm", ttft_target=1.0, output=16,
                                             prompt=64, requests=20, seed=0, t0=0.0, rel_tol=0.5)),
    "models.choose.tpot_bound_rate": B(lambda: dict(batch=16, output=256, tpot_target=0.02)),
    "models.choose.explain_loads": B(lambda: dict(loads=[_choose().max_load(
        _choose_serve(), "h100-sxm", ttft_target=1.0, output=16, prompt=64, requests=20, rel_tol=0.5)])),
    # plots.choose
    "plots.choose.ranked_bars": B(lambda: dict(ax=_ax(), verdicts=[_choose().evaluate(_choose_serve(), "h100-sxm")],
                                              metric="tokens_per_s_per_chip", target=0.05, label="serve")),
    "plots.choose.step_breakdown": B(lambda: dict(ax=_ax(), verdicts=[_choose().evaluate(_choose_serve(), "h100-sxm")],
                                                 label="serve")),
    "plots.choose.view_workload": B(lambda: dict(model="llama-3-8b", mode="train", batch=16)),
    "plots.choose.ChooseView": B(lambda: dict(models=["llama-3-8b"], chips=["h100-sxm", "l4"])),
    "plots.choose.ChooseView.update": Skip(VIEW),
    "plots.choose.ChooseView.background": Skip(VIEW),
    # plots.collectives
    "plots.collectives.alg_name": B(lambda: dict(algorithm="recursive_doubling")),
    "plots.collectives.bandwidth_ladder": B(lambda: dict(ax=_ax(), bars=[("HBM", 3e12, "memory", "", ""),
                                                                       ("PCIe", 63e9, "host", "quoted 128 GB/s, both ways", "")])),
    "plots.collectives.ring_schedule": B(lambda: dict(ax=_ax(), p=4)),
    "plots.collectives.alpha_beta": B(lambda: dict(ax_time=_ax(), ax_bus=_ax(), op="allreduce", p=8, alpha=5e-6, beta=1e-11,
                                                   sizes=[1e3, 1e6, 1e9], published=None, link_label="", pairs=None)),
    "plots.collectives.measured_collectives": Skip("takes measured sweeps (tests/test_plots_collectives.py)"),
    "plots.collectives.degree_curves": B(lambda: dict(ax=_ax(), degrees=[2, 4, 8], curves={"a": [0.1, 0.5, 2.0]},
                                                      ylabel="ratio", threshold=1.0)),
    "plots.collectives.plan_bars": B(lambda: dict(ax=_ax(), plans=[("one", 0.01, 0.002, "100 tokens/s")])),
    "plots.collectives.CollectiveView": B(lambda: dict(links={"NVLink 4": 450e9, "PCIe": 63e9}, alpha=4e-6, sizes=[1e3, 1e6, 1e9],
                                                       max_ranks=64, alpha_label="")),
    "plots.collectives.CollectiveView.update": Skip(VIEW),
    "plots.collectives.CollectiveView.values": Skip(VIEW),
    # models.serving
    "models.serving.RooflineStep": B(lambda: dict(flops_per_seq=2e9, flops_per_context=4e3, weight_bytes=2e9,
                                                  bytes_per_seq=1e5, bytes_per_context=1e3, peak_flops=1e15,
                                                  bandwidth=3e12, t0=1e-5, context=128.0)),
    "models.serving.RooflineStep.flops": B(lambda: dict(batch=8.0, context=128.0), obj=lambda: _roof_step(),
                                           arrays=("batch", "context")),
    "models.serving.RooflineStep.bytes": B(lambda: dict(batch=8.0, context=128.0), obj=lambda: _roof_step(),
                                           arrays=("batch", "context")),
    "models.serving.RooflineStep.seconds": B(lambda: dict(batch=8.0, context=128.0), obj=lambda: _roof_step(),
                                             arrays=("batch", "context")),
    "models.serving.RooflineStep.compute_bound_batch": B(lambda: dict(context=128.0), obj=lambda: _roof_step()),
    "models.serving.decode_step": B(lambda: dict(config=_llama(), context=1024, peak_flops=1e15, bandwidth=3e12,
                                                 t0=1e-5, bytes_per_value=2, lm_head=True, fused=False)),
    "models.serving.prefill_step": B(lambda: dict(config=_llama(), peak_flops=1e15, bandwidth=3e12, t0=1e-5,
                                                  bytes_per_value=2)),
    "models.serving.StepTable": B(lambda: dict(batch=[1, 2, 4], seconds=[1e-3, 1.5e-3, 2e-3])),
    "models.serving.StepTable.seconds": B(lambda: dict(batch=2.0), obj=lambda: _step_table(), arrays=("batch",)),
    "models.serving.throughput": B(lambda: dict(step_time=_step_table(), batch=2.0, context=None), arrays=("batch",)),
    "models.serving.BatchLimits": Skip("a record built only by serving.batch_limits"),
    "models.serving.BatchLimits.regime": B(lambda: dict(batch=8), obj=lambda: _limits()),
    "models.serving.batch_limits": B(lambda: dict(step=_roof_step(), capacity_bytes=8e10, weight_bytes=1.4e10,
                                                  kv_bytes_per_token=5e5, context=1024.0)),
    "models.serving.arrival_times": B(lambda: dict(n=100, rate=10.0, scv=1.0, seed=0)),
    "models.serving.Requests": B(lambda: dict(arrival=np.array([0.0, 0.5, 1.0]), prompt=np.array([4, 4, 4]),
                                              output=np.array([2, 3, 1]), service=None)),
    "models.serving.make_requests": B(lambda: dict(arrival=np.array([0.0, 0.5, 1.0]), prompt=4, output=2,
                                                   service=None, seed=0), arrays=("prompt", "output")),
    "models.serving.ServingRun": Skip("a record built only by serving.simulate"),
    "models.serving.ServingRun.summary": B(lambda: dict(percentiles=(50, 90, 99)), obj=lambda: _serving_run()),
    "models.serving.simulate": B(lambda: dict(requests=_requests(), step_time=_step_table(), policy="continuous",
                                              max_batch=4, max_wait=None, kv_capacity=64, prefill_time=None)),
    # measure.serving
    # measure.collectives
    "measure.collectives.request_virtual_devices": B(lambda: dict(n=8)),
    "measure.collectives.xla_flags_with_device_count": B(lambda: dict(flags="--xla_cpu_foo=1", n=8)),
    "measure.collectives.describe": B(lambda: dict(platform="cpu", device_count=8, device_kind="cpu", default_backend="gpu")),
    "measure.collectives.DeviceSet": Skip("a record built only by measure.collectives.device_set and collective_devices"),
    "measure.collectives.device_set": B(lambda: dict(devices=_one_cpu(), default_backend=None)),
    "measure.collectives.collective_devices": Skip("needs two devices; tests/test_measure_collectives.py runs it in a subprocess"),
    "measure.collectives.collective": B(lambda: dict(op="permute", devices=_one_cpu()), params=("op",), seconds=10),
    "measure.collectives.shard_blocks": B(lambda: dict(blocks=np.ones((1, 4), np.float32), devices=_one_cpu()),
                                          params=("blocks",), arrays=("blocks",)),
    "measure.collectives.reference": B(lambda: dict(op="alltoall", blocks=np.arange(8.0).reshape(2, 4)), arrays=("blocks",),
                                       negative=True),
    "measure.collectives.elements_per_rank": B(lambda: dict(op="allgather", n_bytes=1024, p=8, dtype="fp32")),
    "measure.collectives.default_sizes": B(lambda: dict(platform="gpu", p=8)),
    "measure.collectives.CollectivePoint": Skip("a record built only by measure.collectives.collective_sweep"),
    "measure.collectives.CollectiveSweep": Skip("a record built only by measure.collectives.collective_sweep"),
    "measure.collectives.CollectiveSweep.fit": B(lambda: dict(algorithm="ring"), obj=lambda: _col_sweep()),
    "measure.collectives.collective_sweep": B(lambda: dict(op="allreduce", sizes=[64], devices=_one_cpu(), dtype="fp32",
                                                           min_repeats=1, max_repeats=2, min_time=1e-4, warmup=1),
                                              params=("op", "sizes", "dtype"), seconds=10),  # the timing keywords: time_call's
    "measure.collectives.copy_table": B(lambda: dict(copies=[_copy_point()], label="copies")),
    "measure.collectives.host_link_note": B(lambda: dict(point=_copy_point(), chip_name="NVIDIA L4",
                                                         host_bandwidth=31.5e9)),
    "measure.collectives.copy_note": B(lambda: dict(platform="gpu", virtual=False)),
    "measure.collectives.default_copy_sizes": B(lambda: dict(platform="tpu")),
    "measure.collectives.CopyPoint": Skip("a record built only by measure.collectives.copy_sweep"),
    "measure.collectives.copy_sweep": B(lambda: dict(sizes=[64], devices=_one_cpu(), min_repeats=1, max_repeats=2,
                                                     min_time=1e-4, warmup=1), params=("sizes",), seconds=10),
    "measure.serving.Sweeps": Skip("a record built only by measure.serving.default_sweeps"),
    "measure.serving.default_sweeps": B(lambda: dict(backend="gpu")),
    "measure.serving.default_dtype": B(lambda: dict(backend="gpu")),
    "measure.serving.sized_config": B(lambda: dict(config=_llama(), backend="gpu", memory_bytes=16e9, dtype="bf16",
                                                   tokens=4096)),
    "measure.serving.Stack": Skip("a record built only by measure.serving.make_stack"),
    "measure.serving.make_stack": B(lambda: dict(config=_tiny_decoder(), dtype="fp32", seed=0, rope_base=10000.0)),
    "measure.serving.donation_supported": B(lambda: dict(backend=None)),
    "measure.serving.KVCache": Skip("a record built only by measure.serving.empty_cache, prefill and decode_step"),
    "measure.serving.empty_cache": B(lambda: dict(stack=_tiny_stack(), batch=2, max_context=8)),
    "measure.serving.decode_step": B(lambda: dict(stack=_tiny_stack(), cache=_tiny_cache(), x=np.ones((2, 16), np.float32),
                                                  pos=3), seconds=10),
    "measure.serving.prefill": B(lambda: dict(stack=_tiny_stack(), x=np.ones((2, 3, 16), np.float32), max_context=8),
                                 seconds=10),
    "measure.serving.reference_forward": B(lambda: dict(stack=_tiny_stack(), x=np.ones((2, 3, 16)), past=None)),
    "measure.serving.StepTime": Skip("a record built only by measure.serving.decode_step_times and context_sweep"),
    "measure.serving.decode_step_times": B(lambda: dict(config=_tiny_decoder(), batches=[2], context=8, dtype="fp32",
                                                        seed=0, rounds=1, warmup=0, min_repeats=1, max_repeats=2,
                                                        min_time=0.0), seconds=20,
                                           params=("config", "batches", "context", "dtype", "seed", "rounds")),
    "measure.serving.context_sweep": B(lambda: dict(config=_tiny_decoder(), batch=2, contexts=[8], dtype="fp32",
                                                    seed=0, rounds=1, warmup=0, min_repeats=1, max_repeats=2,
                                                    min_time=0.0), seconds=20,
                                       params=("config", "batch", "contexts", "dtype", "seed", "rounds")),
    # plots.kvcache
    "plots.kvcache.bars": B(lambda: dict(ax=_ax(), rows=[("a", 1000.0, "GQA"), ("b", 4000.0, "MHA")], unit="B",
                                         xlabel="bytes per token", log=True, colors={"GQA": "#0072b2"})),
    "plots.kvcache.capacity_curves": B(lambda: dict(ax=_ax(), curves={"chip": ([1024, 2048], [8, 4])},
                                                    xlabel="context", ylabel="batch")),
    "plots.kvcache.measured_sweep": B(lambda: dict(ax=_ax(), contexts=[128, 256], median=[1e-3, 2e-3],
                                                   p10=[0.9e-3, 1.8e-3], p90=[1.1e-3, 2.2e-3], predicted=[1e-3, 2e-3],
                                                   label="measured", predicted_label="bound")),
    "plots.kvcache.step_curves": B(lambda: dict(ax=_ax(), contexts=[1024, 2048],
                                                curves={"batch 8": ([1e-3, 2e-3], [True, False])},
                                                reference=("compute", [1e-4, 2e-4]))),
    "plots.kvcache.MemoryMapView": B(lambda: dict(weight_dtype="bf16", memory_fraction=0.9, block_size=16)),
    "plots.kvcache.MemoryMapView.update": B(lambda: dict(model="llama-3-8b", chip="h100-sxm", context=4096, batch=8,
                                                         kv_dtype="bf16"),
                                            obj=lambda: importlib.import_module("accelbook.plots.kvcache").MemoryMapView()),
    "plots.kvcache.MemoryMapView.values": B(lambda: dict(model="llama-3-8b", chip="h100-sxm", context=4096, batch=8,
                                                         kv_dtype="bf16"),
                                            obj=lambda: importlib.import_module("accelbook.plots.kvcache").MemoryMapView()),
    # plots.serving
    "plots.serving.throughput_curves": B(lambda: dict(ax=_ax(), steps={"chip": _roof_step()}, limits={"chip": _limits()},
                                                      batches=[1, 8, 64, 512], legend=True)),
    "plots.serving.measured_steps": B(lambda: dict(ax=_ax(), batch=[1, 2, 4], median=[1e-3, 1.5e-3, 2e-3],
                                                   low=[0.9e-3, 1.4e-3, 1.9e-3], high=[1.1e-3, 1.6e-3, 2.1e-3],
                                                   predicted=[1e-3, 1e-3, 1.5e-3], label="test")),
    "plots.serving.latency_vs_throughput": B(lambda: dict(ax=_ax(), series={"dynamic": [_serving_run()]}, unit="requests")),
    "plots.serving.BatchingView": Skip("an explorable view (tests/test_plots_serving.py)"),
    "plots.serving.BatchingView.update": Skip(VIEW),
    "plots.serving.BatchingView.run": B(lambda: dict(rate=2.0, max_batch=2, max_wait=0.1, policy="dynamic"), obj=lambda: _bview()),
    # models.kvcache
    "models.kvcache.dtype_bits": B(lambda: dict(dtype="bf16")),
    "models.kvcache.kv_bytes_per_token": B(lambda: dict(model="llama-3-8b", dtype="bf16")),
    "models.kvcache.cached_tokens": B(lambda: dict(model="mistral-7b", context=8192)),
    "models.kvcache.kv_bytes": B(lambda: dict(model="mistral-7b", dtype="bf16", batch=4, context=8192)),
    "models.kvcache.weight_params": B(lambda: dict(model="mixtral-8x7b")),
    "models.kvcache.weight_bytes": B(lambda: dict(model="llama-3-8b", dtype="fp8")),
    "models.kvcache.routed_expert_params": B(lambda: dict(model="deepseek-v3")),
    "models.kvcache.params_read": B(lambda: dict(model="mixtral-8x7b", batch=4)),
    "models.kvcache.active_params": B(lambda: dict(model="deepseek-v3")),
    "models.kvcache.DeviceMemory": B(lambda: dict(chip="h100-sxm", capacity=8.5e10, visible=True)),
    "models.kvcache.device_memory": B(lambda: dict(chip="h100-sxm")),
    "models.kvcache.MemoryFit": Skip("a record built only by kvcache.max_batch and kvcache.max_context"),
    "models.kvcache.max_batch": B(lambda: dict(model="llama-3-8b", chip="h100-sxm", context=4096, dtype="bf16",
                                               kv_dtype="fp8", memory_fraction=0.9, block_size=16)),
    "models.kvcache.max_context": B(lambda: dict(model="mistral-7b", chip="a100-80gb", batch=8, dtype="bf16",
                                                 kv_dtype="bf16", memory_fraction=0.9, block_size=16)),
    "models.kvcache.attention_flops": B(lambda: dict(model=_dsv3(), batch=2, context=1024)),
    "models.kvcache.DecodeStep": Skip("a record built only by kvcache.decode_step"),
    "models.kvcache.decode_step": B(lambda: dict(model="llama-3-8b", chip="h100-sxm", batch=8, context=2048,
                                                 dtype="bf16", kv_dtype="bf16", compute_dtype="bf16")),
    "models.kvcache.crossover_context": B(lambda: dict(model="llama-3-8b", batch=4, dtype="bf16", kv_dtype="fp8")),
    "models.decoder.Op": Skip("a record built only by decoder.layer_ops"),
    "models.decoder.get_model": B(lambda: dict(key="llama-2-7b")),
    "models.decoder.layer_params": B(lambda: dict(config=_llama())),
    "models.decoder.model_params": B(lambda: dict(config=_llama())),
    "models.decoder.layer_ops": B(lambda: dict(config=_llama(), batch=1, context=128, phase="decode",
                                               bytes_per_value=2)),
    "models.decoder.totals": B(lambda: dict(ops=_ops())),
    # models.gpu
    "models.gpu.tensor_core_half_dtype": B(lambda: dict(chip=_chip())),
    "models.gpu.MemoryAccessRules": Skip("a record built only by gpu.memory_access from the checked data file"),
    "models.gpu.memory_access": B(),
    "models.gpu.WarpAccess": Skip("a record built only by gpu.sectors_per_request"),
    "models.gpu.sectors_per_request": B(lambda: dict(stride_bytes=4, element_bytes=4, offset_bytes=0, warp_size=32)),
    "models.gpu.bank_conflict_degree": B(lambda: dict(stride_words=2, warp_size=32)),
    "models.gpu.TensorCoreGeneration": Skip("a record built only by gpu.tensor_core_generations from the data file"),
    "models.gpu.tensor_core_generations": B(),
    "models.gpu.mma_fill": B(lambda: dict(m=20, n=20, k=20, mma_shape=(16, 8, 16))),
    "models.gpu.ArchLimits": Skip("a record built only by gpu.parse_arch_table from the checked data file"),
    "models.gpu.parse_arch_table": B(lambda: dict(data=_arch_toml())),
    "models.gpu.compute_capabilities": B(),
    "models.gpu.arch": B(lambda: dict(compute_capability="8.0")),
    "models.gpu.Occupancy": Skip("a record built only by gpu.occupancy"),
    "models.gpu.occupancy": B(lambda: dict(compute_capability="8.0", threads_per_block=256, registers_per_thread=32,
                                           shared_mem_per_block=0, shared_mem_carveout=None, shared_mem_opt_in=True)),
    "models.gpu.littles_law": B(lambda: dict(latency=400.0, throughput=0.5)),
    "models.gpu.bytes_in_flight": B(lambda: dict(latency_s=6e-7, bandwidth_Bps=3e12)),
    "models.gpu.warps_needed": B(lambda: dict(latency=400.0, issue_rate=1.0, instructions_in_flight_per_warp=1.0)),
    "models.gpu.issue_rate_bound": B(lambda: dict(n_warps=4, alu_per_mem=2, alu_latency=4, mem_latency=20)),
    "models.gpu.warps_to_saturate": B(lambda: dict(alu_per_mem=2, alu_latency=4, mem_latency=20)),
    "models.gpu.max_issued": B(lambda: dict(n_warps=4, alu_per_mem=2, alu_latency=4, mem_latency=20, cycles=100)),
    "models.gpu.WarpStates": Skip("a record built only by gpu.simulate_scheduler"),
    "models.gpu.WarpStates.as_dict": Skip("no arguments; a record built only by gpu.simulate_scheduler"),
    "models.gpu.SchedulerRun": Skip("a record built only by gpu.simulate_scheduler"),
    "models.gpu.simulate_scheduler": B(lambda: dict(n_warps=4, alu_per_mem=2, alu_latency=4, mem_latency=20,
                                                    cycles=100, policy="gto")),
    "models.gpu.tensor_vs_simt": B(lambda: dict(chip=_chip())),
    "models.gpu.SMAnatomy": Skip("a record built only by gpu.sm_anatomy"),
    "models.gpu.sm_anatomy": B(lambda: dict(chip=_chip())),
    "models.gpu.anatomy_chips": B(),
    "models.gpu.MemoryLevel": Skip("a record built only by gpu.memory_levels"),
    "models.gpu.simt_operand_bandwidth": B(lambda: dict(chip=_chip())),
    "models.gpu.memory_levels": B(lambda: dict(chip=_chip())),
    "models.gpu.MemoryParallelism": Skip("a record built only by gpu.memory_parallelism"),
    "models.gpu.memory_parallelism": B(lambda: dict(chip=_chip(), latency_s=6e-7, bytes_per_thread=4)),
    "models.gpu.OccupancyCurve": Skip("a record built only by gpu.occupancy_vs_registers"),
    "models.gpu.OccupancyCurve.max_registers_for": B(lambda: dict(occupancy=0.5), obj=lambda: _curve()),
    "models.gpu.occupancy_vs_registers": B(lambda: dict(compute_capability="8.0", threads_per_block=256,
                                                        shared_mem_per_block=0, registers=[32, 64])),
    "models.gpu.IssueRateCurve": Skip("a record built only by gpu.issue_rate_curve"),
    "models.gpu.issue_rate_curve": B(lambda: dict(warps=[1, 2, 4], alu_per_mem=2, alu_latency=4, mem_latency=20,
                                                  cycles=200, policy="gto")),
    # measure
    "measure.harness.MeasurementError": Skip("an exception class"),
    "measure.harness.Timing": B(lambda: dict(samples=(1e-3, 2e-3))),
    "measure.harness.time_call": B(lambda: {"fn": _add, "*args": (1, 2), "warmup": 1, "min_repeats": 2,
                                            "max_repeats": 3, "min_time": 1e-4}),
    "measure.harness.MatmulResult": Skip("a record built only by measure.matmul"),
    "measure.harness.BandwidthResult": Skip("a record built only by measure.triad"),
    "measure.harness.matmul": B(lambda: dict(n=8, dtype="fp32", m=8, k=8, precision="default", seed=0,
                                             min_repeats=1, max_repeats=2, min_time=1e-4, warmup=1)),
    "measure.harness.Probe": Skip("a record built only by measure.matmul_probe and measure.triad_probe"),
    "measure.harness.matmul_probe": B(lambda: dict(n=8, dtype="fp32", m=8, k=8, precision="default", seed=0)),
    "measure.harness.triad_probe": B(lambda: dict(elements=64, scalar=3.0)),
    "measure.harness.freivalds_error": B(lambda: dict(a=np.eye(4), b=np.eye(4), c=np.eye(4),
                                                      rng=np.random.default_rng(0), vectors=2)),
    "measure.harness.triad": B(lambda: dict(elements=64, scalar=3.0, min_repeats=1, max_repeats=2,
                                            min_time=1e-4, warmup=1)),
    "measure.harness.default_matmul_sizes": B(lambda: dict(backend="gpu")),
    "measure.harness.default_triad_elements": B(lambda: dict(backend="gpu", memory_bytes=16e9)),
    "measure.harness.first_call_time": B(lambda: {"fn": _jitted_add(), "*args": (1.0, 2.0)}),
    "measure.harness.dispatch_time": B(lambda: {"fn": _jitted_add(), "*args": (1.0, 2.0), "repeats": 2}),
    "measure.overhead.LoopTiming": Skip("a record built only by measure.loop_time"),
    "measure.overhead.loop_time": B(lambda: {"fn": _jitted_add(), "*args": (1.0, 2.0), "calls": 2, "repeats": 1,
                                             "warmup": 1}),
    "measure.overhead.Timeline": Skip("a record built only by measure.dispatch_timeline"),
    "measure.overhead.dispatch_timeline": B(lambda: {"fn": _jitted_add(), "*args": (1.0, 2.0), "calls": 2}),
    "measure.overhead.sync_loop_time": B(seconds=10, kwargs=lambda: dict(step=_step(), carry=np.float32(0), steps=2,
                                                      host_seconds=1e-5, sync=True, repeats=1)),
    "measure.overhead.RequestRun": Skip("a record built only by measure.run_requests"),
    "measure.overhead.run_requests": B(lambda: dict(fn=_jitted_add(), requests=[(1.0, 2.0), (3.0, 4.0)])),
    "measure.overhead.TransferResult": Skip("a record built only by measure.transfer"),
    "measure.overhead.transfer": B(lambda: dict(nbytes=64, samples=2)),
    "measure.overhead.HloSummary": Skip("a record built only by measure.hlo_summary"),
    "measure.overhead.hlo_summary": B(lambda: {"fn": _add, "*args": (_f32(4), _f32(4))}),
    "measure.roofline.Cost": B(lambda: dict(flops=1e6, bytes_accessed=1e4, transcendentals=0.0)),
    "measure.roofline.xla_cost": B(lambda: {"fn": _add, "*args": (_f32(4), _f32(4))}),
    "measure.roofline.unfused_cost": B(lambda: {"fn": _add, "*args": (_f32(4), _f32(4))}),
    "measure.sweeps.sweep_dtypes": B(lambda: dict(backend="gpu")),
    "measure.sweeps.matmul_sweep": B(lambda: dict(sizes=[8], cases=("fp32",), rounds=1, min_repeats=1,
                                                  max_repeats=2, min_time=1e-4, warmup=1)),
    "measure.sweeps.PrecisionErrors": Skip("a record built only by measure.precision_errors"),
    "measure.sweeps.precision_errors": B(lambda: dict(n=8, dtype="bf16", precision="default", seed=0)),
    "measure.sweeps.shapes_sweep": B(lambda: dict(shapes=[(8, 8, 8)], dtype="fp32", rounds=1, seed=0, min_repeats=1,
                                                  max_repeats=2, min_time=1e-4, warmup=1)),
    "measure.overhead.decoder_layer": Skip("a JAX function traced by measure.overhead.decoder_layer_counts"),
    "measure.overhead.decoder_layer_counts": B(lambda: dict(d_model=64, n_heads=2, d_ff=128, context=8, batch=1),
                                               seconds=10),
    "measure.sweeps.nearby_sizes": B(lambda: dict(n=100)),
    "measure.device_ceilings.Ceilings": B(lambda: dict(peak_flops=1e12, memory_bandwidth=1e11, dtype="fp32",
                                                       source="spec sheet", label="x")),
    "measure.device_ceilings.ceilings": B(lambda: dict(dtype="bf16", info=_info(), precision="default")),
    "measure.device_ceilings.measured_peak": Skip("runs the device's peak benchmark (seconds)"),
    "measure.device_ceilings.measured_bandwidth": Skip("runs a STREAM benchmark (seconds)"),
    "measure.device_ceilings.Measurement": Skip("a record built only by measure.measure_ceilings"),
    "measure.device_ceilings.Measurement.peak": Skip("needs a measurement (tests/test_measure_device_ceilings.py)"),
    "measure.device_ceilings.Measurement.to_json": Skip("needs a measurement (tests/test_measure_device_ceilings.py)"),
    "measure.device_ceilings.Measurement.from_json": Skip("needs a measurement (tests/test_measure_device_ceilings.py)"),
    "measure.device_ceilings.identity": B(lambda: dict(info=_info()), seconds=10),
    "measure.device_ceilings.build_cases": B(lambda: dict(backend="gpu")),
    "measure.device_ceilings.measure_ceilings": Skip("measures the device (seconds)"),
    "measure.device_ceilings.write_build_file": Skip("measures the device and writes a file"),
    "measure.device_ceilings.build_measurement": Skip("reads the build's measurement file"),
    "measure.device_ceilings.main": Skip("measures the device and writes a file"),
    "measure.memory.CacheLevel": B(lambda: dict(level=1, type="Data", size=32768, line=64, shared_by=1)),
    "measure.memory.parse_cache_size": B(lambda: dict(text="32K")),
    "measure.memory.parse_cache_index": B(lambda: dict(files={"level": "1", "type": "Data", "size": "32K",
                                                             "coherency_line_size": "64",
                                                             "shared_cpu_list": "0"})),
    "measure.memory.data_caches": B(lambda: dict(levels=[_cache()])),
    "measure.memory.cpu_caches": Skip("reads /sys"),
    "measure.memory.SweepPoint": B(lambda: dict(nbytes=4096, passes=2, timing=_timing())),
    "measure.memory.sweep_sizes": B(lambda: dict(smallest=1024, largest=65536, per_octave=2)),
    "measure.memory.default_sweep_sizes": B(lambda: dict(backend="gpu", caches=(), memory_bytes=16e9)),
    "measure.memory.working_set_sweep": B(lambda: dict(sizes=[4096], bytes_per_call=65536, max_passes=4,
                                                       min_repeats=1, max_repeats=2, min_time=1e-4, warmup=1),
                                          params=("sizes", "bytes_per_call", "max_passes")),
    "measure.memory.plateaus": Skip("takes sweep points of a measurement (tests/test_measure_memory.py)"),
    "measure.memory.transfer_sweep": B(lambda: dict(sizes=[64], samples=2)),
    "measure.memory.ReusePoint": B(lambda: dict(n=64, columns=8, width=2, timing=_timing())),
    "measure.memory.reuse_sweep": B(lambda: dict(n=64, columns=8, widths=[2], min_repeats=1, max_repeats=2,
                                                 min_time=1e-4, warmup=1), seconds=10,
                                    params=("n", "columns", "widths")),  # the timing keywords: time_call's
    "measure.memory.default_reuse_size": B(lambda: dict(backend="gpu", last_cache=None)),
    "measure.memory.level_edges": B(lambda: dict(info=_info(), caches=())),
    "measure.memory.sweep_note": B(lambda: dict(backend="gpu")),
    "measure.memory.copy_note": Skip("takes transfer results of a measurement (tests/test_measure_memory.py)"),
    "measure.overhead.interleaved": Skip("times probes (tests/test_measure_overhead.py)"),
    "measure.overhead.TraceEvent": B(lambda: dict(lane="host", name="x", start=0.0, duration=1e-3, kind="host")),
    "measure.overhead.Trace": Skip("a record built only by measure.parse_trace"),
    "measure.overhead.Trace.regions": Skip("needs a profiler trace (tests/test_measure_overhead.py)"),
    "measure.overhead.Trace.within": Skip("needs a profiler trace (tests/test_measure_overhead.py)"),
    "measure.overhead.Trace.busy_fraction": Skip("needs a profiler trace (tests/test_measure_overhead.py)"),
    "measure.overhead.parse_trace": Skip("parses a profiler trace (tests/test_measure_overhead.py)"),
    "measure.overhead.capture_trace": Skip("runs the JAX profiler (seconds)"),
    "measure.roofline.cache_resident_elements": B(lambda: dict(info=_info())),
    "measure.roofline.repeated_add": B(lambda: dict(steps=4)),
    # plots: figures added with the chapters (explorable views are covered by their own tests)
    "plots.intro.link_summary": B(lambda: dict(chip=_chip())),
    "plots.intro.hardware_picture": B(lambda: dict(chip=_chip(), dtype="bf16", figsize=(7.3, 4.6), fig=None)),
    "plots.matmul.MatmulModelView.caption": Skip(VIEW),
    "plots.memory.hierarchy": B(lambda: dict(ax=_ax(), chip_name="A100", levels=_mem().hierarchy("a100-80gb"),
                                             xlim=None, ylim=None)),
    "plots.memory.hierarchy_figure": B(lambda: dict(chips={"A100": _mem().hierarchy("a100-80gb")}, fig=None)),
    "plots.memory.sweep": Skip("takes sweep points of a measurement (tests/test_plots_memory.py)"),
    "plots.memory.trace_panels": Skip("takes simulated traces (tests/test_plots_memory.py)"),
    "plots.memory.TilingView": Skip("an explorable view (tests/test_plots_memory.py)"),
    "plots.memory.TilingView.update": Skip(VIEW),
    "plots.memory.TilingView.values": Skip(VIEW),
    "plots.overhead.draw_regimes": Skip("draws families of curves built in the chapter (tests/test_plots_overhead.py)"),
    "plots.overhead.regime_legend": Skip("draws families of curves built in the chapter (tests/test_plots_overhead.py)"),
    "plots.overhead.trace_timeline": Skip("needs a profiler trace (tests/test_plots_overhead.py)"),
    "plots.roofline.measured_points": B(lambda: dict(ax=_log_ax(), points=[("a", 10.0, 1e11, 0.9e11, 1.1e11)],
                                                     fontsize=8.5)),
    "plots.roofline.op_points": Skip("draws the running example's ops (tests/test_plots_roofline.py)"),
    "plots.systolic.tensorcore_diagram": B(lambda: dict(ax=_ax(), chip=_chip("tpu-v5e"))),
    # notebook
    "notebook.glue": B(lambda: dict(name="contract-test", value=1.5, display=False), params=("name", "display")),
    "notebook.fill": B(lambda: dict(template="x ⟪a:.1f⟫", values={"a": 1.5})),
    "notebook.render": B(lambda: {"*args": ("plain text",), "summary": None}),
    "notebook.preview": B(lambda: {"*args": ("text ⟪a:.1f⟫",), "summary": "Solution"}),
    "notebook.Code": B(lambda: dict(source="x = 1", shown=True)),
    "notebook.Code.run": B(lambda: dict(namespace={}), obj=lambda: _code()),
    "notebook.markdown_table": B(lambda: dict(headers=["a", "b"], rows=[[1, 2]])),
    "notebook.show": B(lambda: dict(markdown="**x**")),
    "notebook.format_spec": B(lambda: dict(spec=_chip().peak["bf16"])),
    "notebook.spec_table": B(lambda: dict(chip_list=[_chip()], fields=["bf16"], source_links=True)),
    "notebook.source_table": B(lambda: dict(chip_list=[_chip()])),
    "notebook.device_summary": B(lambda: dict(info=_info(), ceilings=None)),
    "notebook.field_label": B(lambda: dict(field="bf16")),
    "notebook.fields_present": B(lambda: dict(chip_list=[_chip()], fields=["bf16"])),
    "notebook.field_table": B(lambda: dict(fields=["bf16"])),
    "notebook.notes_table": B(lambda: dict(chip_list=[_chip()])),
    "notebook.device_kind_table": B(lambda: dict(chip_list=[_chip()])),
    # explore
    "explore.mode": B(),
    "explore.Param": Skip("a record built only by explore.choice/slider/toggle"),
    "explore.choice": B(lambda: dict(name="c", options=["a", "b"], value="a", label="C", static=None)),
    "explore.slider": B(lambda: dict(name="s", values=[1, 2, 3], value=2, label="S", static=None, format=None)),
    "explore.toggle": B(lambda: dict(name="t", value=False, label="T")),
    "explore.View": Skip("a base class"),
    "explore.View.update": Skip(VIEW),
    "explore.View.background": Skip(VIEW),
    "explore.Redraw": B(lambda: dict(draw=lambda: plt.figure())),
    "explore.Redraw.update": Skip(VIEW),
    "explore.Renderer": Skip("built by Explorable.renderer"),
    "explore.Renderer.frame": Skip(VIEW),
    "explore.TextStamps": B(lambda: dict(size=16)),
    "explore.TextStamps.attach": Skip("takes a Matplotlib artist inside a View"),
    "explore.TextStamps.wrap": Skip("takes a Matplotlib renderer inside a draw"),
    "explore.difference": B(lambda: dict(a=np.zeros((2, 2, 3), np.uint8), b=np.ones((2, 2, 3), np.uint8))),
    "explore.Palette": B(lambda: dict(colors=16)),
    "explore.Palette.png": B(lambda: dict(img=_pil()), obj=lambda: _palette()),
    "explore.Static": Skip("a record built only by Explorable.render_static"),
    "explore.Live": Skip("a record built only by Explorable.show_live"),
    "explore.live": B(),
    "explore.Explorable": B(lambda: dict(make=lambda: None, params=[_slider()], name="contract", description="d",
                                         dpi=30, colors=16, max_frames=10, max_bytes=10 ** 6)),
    "explore.Explorable.grid": B(obj=_explorable),
    "explore.Explorable.index": B(lambda: dict(values={"x": 2, "on": True}), obj=_explorable),
    "explore.Explorable.values": B(lambda: dict(x=2, on=True), obj=_explorable),
    "explore.Explorable.alt": B(lambda: dict(values={"x": 2, "on": True}), obj=_explorable),
    "explore.Explorable.renderer": Skip(RENDER),
    "explore.Explorable.frame": Skip(RENDER),
    "explore.Explorable.random_walk": Skip(RENDER),
    "explore.Explorable.reference": Skip(RENDER),
    "explore.Explorable.png": B(lambda: dict(rgb=np.zeros((4, 4, 4), np.uint8), colors=16), obj=_explorable),
    "explore.Explorable.start_figure": Skip(RENDER),
    "explore.Explorable.render_static": Skip(RENDER),
    "explore.Explorable.widgets": Skip("builds ipywidgets"),
    "explore.Explorable.show_live": Skip(RENDER),
    "explore.Explorable.check_settings": B(obj=_explorable),
    "explore.Explorable.check": Skip(RENDER),
    "explore.Explorable.export": Skip(RENDER),
    "explore.Explorable.show": Skip(RENDER),
    "explore.show": Skip(RENDER),
    # figures
    "figures.FigureError": Skip("an exception class"),
    "figures.ChapterError": Skip("an exception class"),
    "figures.Figure": Skip("a record built only by figures.collect"),
    "figures.find_book": Skip("reads the file system around the package"),
    "figures.chapters": Skip("reads the book's folder"),
    "figures.select": Skip("works on the book's chapter paths"),
    "figures.collect": B(lambda: dict(nb={"cells": []}, chapter="x")),
    "figures.kernel_setup": Skip("changes the kernel's Matplotlib setup"),
    "figures.execute": Skip("executes a notebook"),
    "figures.run_chapter": Skip("executes a notebook"),
    "figures.main": Skip("executes the book"),
    "figures.ceilings_once": Skip("measures the device once for a figures run and writes a file"),
    # plots.style
    "plots.style.use_style": B(),
    "plots.style.style": B(),
    "plots.style.si_formatter": B(lambda: dict(unit="B/s")),
    "plots.style.log_axes": B(lambda: dict(ax=_ax(), x_unit="FLOP/B", y_unit="FLOP/s")),
    "plots.style.place_labels": B(lambda: dict(ax=_ax(), points=[("a", 1.0, 2.0)], fontsize=8, bold=(),
                                               offsets=None, marker_radius=5.0)),
    "plots.style.labelled_points": B(lambda: dict(ax=_ax(), points=[("a", 1.0, 2.0)], offsets=None)),
    "plots.style.chip_label": B(lambda: dict(chip=_chip())),
    "plots.style.vendor_colors": B(lambda: dict(vendors=["NVIDIA", "Google"])),
    "plots.style.short_name": B(lambda: dict(name="NVIDIA H100 SXM")),
    "plots.style.standalone_figure": B(lambda: dict(figsize=(3, 2), dpi=40)),
    "plots.style.describe": B(lambda: dict(fig=_ax().figure)),
    "plots.style.describe_figures": B(),
    # plots.roofline
    "plots.roofline.roofline_plot": B(lambda: dict(ax=_ax(), ceilings=[("chip", 1e12, 1e11)], points=[("p", 10.0, 1e11)],
                                                   intensity_range=(0.1, 1000.0), title="t")),
    "plots.roofline.intensity_markers": B(lambda: dict(ax=_log_ax(), items=[("x", 10.0)], color="#555555")),
    "plots.roofline.ridge_lines": B(lambda: dict(ax=_log_ax(), ridges=(30, 100))),
    "plots.roofline.chip_map": B(lambda: dict(ax=_ax(), rows=_rows(), highlight=None, main_dtype="bf16",
                                              marker_radius=5.0)),
    "plots.roofline.ridge_bars": B(lambda: dict(ax=_ax(), rows=_rows(), main_dtype="bf16")),
    "plots.roofline.ChipMapView": Skip("an explorable view (tests/test_plots_roofline.py)"),
    "plots.roofline.ChipMapView.update": Skip(VIEW),
    "plots.roofline.RooflineView": Skip("an explorable view (tests/test_plots_roofline.py)"),
    "plots.roofline.RooflineView.update": Skip(VIEW),
    # plots.gpu
    "plots.gpu.sm_diagram": B(lambda: dict(ax=_ax(), chip=_chip())),
    "plots.gpu.chip_diagram": B(lambda: dict(ax=_ax(), chip=_chip(), highlight=0)),
    "plots.gpu.AnatomyView": Skip("an explorable view (tests/test_plots_gpu.py)"),
    "plots.gpu.AnatomyView.update": Skip(VIEW),
    "plots.gpu.occupancy_staircase": B(lambda: dict(ax=_ax(), compute_capability="8.0", block_sizes=(128, 256),
                                                    shared_mem_per_block=0, mark=(128, 32))),
    "plots.gpu.occupancy_limits": B(lambda: dict(ax=_ax(), occ=_occ(), top=None)),
    "plots.gpu.occupancy_explorer": B(lambda: dict(fig=_fig(), compute_capability="8.0", threads_per_block=256,
                                                   registers_per_thread=32, shared_mem_per_block=0,
                                                   shared_mem_carveout=None)),
    "plots.gpu.OccupancyView": Skip("an explorable view (tests/test_plots_gpu.py)"),
    "plots.gpu.OccupancyView.update": Skip(VIEW),
    "plots.gpu.latency_hiding_plot": B(lambda: dict(ax=_ax(), curve=_issue_curve(), max_warps=None, label="x",
                                                    color=None)),
    "plots.gpu.LatencyView": Skip("an explorable view (tests/test_plots_gpu.py)"),
    "plots.gpu.LatencyView.update": Skip(VIEW),
    "plots.gpu.ratio_table": B(lambda: dict(ax=_ax(), chips=[_chip(), _chip("a100-80gb")], dtypes=("bf16", "fp8"))),
    # plots.matmul
    "plots.matmul.measured_rates": B(lambda: dict(ax=_ax(), records=[_record(64), _record(128)], color="k",
                                                  marker="o", label="m")),
    "plots.matmul.MatmulModelView": Skip("an explorable view (tests/test_plots_matmul.py)"),
    "plots.matmul.MatmulModelView.update": Skip(VIEW),
    # plots.overhead
    "plots.overhead.ChainView": Skip("an explorable view (tests/test_plots_overhead.py)"),
    "plots.overhead.ChainView.update": Skip(VIEW),
    # plots.systolic
    "plots.systolic.stationary_tile": B(lambda: dict(run=_run(), t=1), negative=True),
    "plots.systolic.draw_cycle": B(lambda: dict(ax=_ax(), run=_run(), t=1, queue=2, schedule=None, fontsize=7.5)),
    "plots.systolic.snapshots": B(lambda: dict(fig=_fig(), run=_run(), cycles=[0, 1], ncols=None, queue=2,
                                               fontsize=7.5)),
    "plots.systolic.animation_html": Skip("encodes an animation (seconds; tests/test_plots_systolic.py)"),
    "plots.systolic.self_contained_player": B(lambda: dict(html=_player_html())),
    "plots.systolic.busy_timeline": B(lambda: dict(ax=_ax(), run=_run(), color=None, label=None, fraction=False)),
    "plots.systolic.by_word": B(lambda: dict(text=_ax().set_title("a b"))),
    "plots.systolic.activity_figure": B(lambda: dict(fig=_fig(), run=_run())),
    "plots.systolic.ActivityView": Skip("an explorable view (tests/test_plots_systolic.py)"),
    "plots.systolic.ActivityView.simulate": B(lambda: dict(R=2, dataflow="ws", M=3, N=3, K=2, schedule="single")),
    "plots.systolic.ActivityView.update": Skip(VIEW),
    "plots.systolic.activity_caption": B(lambda: dict(run=_run())),
}


def _llama():
    from accelbook.models import decoder
    return decoder.LLAMA2_7B


def _roof_step():
    from accelbook.models import serving
    return serving.RooflineStep(flops_per_seq=2e9, flops_per_context=4e3, weight_bytes=2e9, bytes_per_seq=1e5,
                                bytes_per_context=1e3, peak_flops=1e15, bandwidth=3e12, t0=1e-5, context=128.0)


def _step_table():
    from accelbook.models import serving
    return serving.StepTable([1, 2, 4], [1e-3, 1.5e-3, 2e-3])


def _requests():
    from accelbook.models import serving
    return serving.Requests(np.array([0.0, 0.5, 1.0]), np.array([4, 4, 4]), np.array([2, 3, 1]))


def _serving_run():
    from accelbook.models import serving
    return serving.simulate(_requests(), _step_table(), policy="dynamic", max_batch=2, max_wait=0.1)


def _limits():
    from accelbook.models import serving
    return serving.batch_limits(_roof_step(), 8e10, 1.4e10, 5e5, context=1024.0)


def _tiny_decoder():
    from accelbook.models.decoder import DecoderConfig
    return DecoderConfig("tiny", d_model=16, n_heads=2, n_kv_heads=1, d_ff=24, n_layers=1)


def _tiny_stack():
    from accelbook.measure import serving
    return serving.make_stack(_tiny_decoder())


def _tiny_cache():
    from accelbook.measure import serving
    return serving.empty_cache(_tiny_stack(), 2, 8)


def _bview():
    from accelbook.plots import serving as ps
    return ps.BatchingView(_step_table(), None, n=20, prompt=1, mean_output=2, latency_range=(1e-4, 10.0),
                           max_batch_limit=4)


def _choose():
    from accelbook.models import choose
    return choose


def _choose_serve():
    return _choose().Workload("serve", "llama-3-8b", batch=8, context=2048, tpot_target=0.05)


def _choose_train():
    return _choose().Workload("train", "llama-3-8b", tokens_per_step=2 ** 20, devices=None)


def _achieved_toml():
    from importlib.resources import files
    return tomllib.loads(files("accelbook.data").joinpath("achieved.toml").read_text())


def _copy_point():
    from accelbook.measure import collectives as mc
    return mc.CopyPoint("host_to_device", 2**20, 1e-4, (1e-4, 2e-4), 5, 2**20 / 1e-4, True)


def _one_cpu():
    import jax
    return jax.devices("cpu")[:1]


def _col_sweep():
    from accelbook.measure import collectives as mc
    pts = tuple(mc.CollectivePoint("allreduce", 8, s, s // 4, t, (t, t), 5, s / t, s / t * 1.75, 0.0)
                for s, t in ((512, 1e-4), (4096, 2e-4), (32768, 6e-4)))
    return mc.CollectiveSweep("allreduce", 8, "cpu", "cpu", True, "fp32", pts, "")


def _toy_decoder():
    from accelbook.models import decoder
    return decoder.DecoderConfig("toy", 64, 8, 2, 256, n_layers=4, vocab_size=100)


def _col():
    from accelbook.models import collectives
    return collectives


def _links_toml():
    from importlib.resources import files
    return tomllib.loads(files("accelbook.data").joinpath("links.toml").read_text())


def _dsv3():
    from accelbook.models import decoder
    return decoder.get_model("deepseek-v3")


def _ops():
    from accelbook.models import decoder
    return decoder.layer_ops(decoder.LLAMA2_7B, batch=1, context=128)


def _mem():
    from accelbook.models import memory
    return memory


def _memory_toml():
    from importlib.resources import files
    return tomllib.loads(files("accelbook.data").joinpath("memory.toml").read_text())


def _stack():
    return _mem().StackDistances(_mem().sweep_trace(64, 2), 8)


def _cache():
    from accelbook.measure.memory import CacheLevel
    return CacheLevel(1, "Data", 32768, 64, 1)


def _code():
    from accelbook import notebook

    return notebook.Code("x = 1")


def _cpu():
    from accelbook import device
    return device.parse_cpuinfo(_cpuinfo_text(), max_freq_khz=3e6, machine="x86_64")


def _cpuinfo_text():
    return "\n".join(["processor\t: 0", "vendor_id\t: GenuineIntel", "model name\t: Intel(R) Xeon(R) CPU",
                      "flags\t\t: fpu sse sse2 avx avx2 fma avx512f", "physical id\t: 0", "core id\t\t: 0",
                      "cpu MHz\t\t: 3000.000", ""])


def _om():
    from accelbook.models.matmul import OverheadModel
    return OverheadModel(1e-5, 1e12)


def _curve():
    from accelbook.models import gpu
    return gpu.occupancy_vs_registers("8.0", 256)


def _occ():
    from accelbook.models import gpu
    return gpu.occupancy("8.0", 256, 32, 0)


def _issue_curve():
    from accelbook.models import gpu
    return gpu.issue_rate_curve([1, 2, 4], 2, 4, 20, cycles=200)


def _slider():
    from accelbook import explore
    return explore.slider("x", [1, 2, 3])


def _pil():
    from PIL import Image
    return Image.fromarray(np.zeros((4, 4, 3), np.uint8))


def _palette():
    from accelbook.explore import Palette
    return Palette(16)


def _log_ax():
    ax = _ax()
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, 1e4)
    ax.set_ylim(1e9, 1e13)
    return ax


def _step():
    import jax

    @jax.jit
    def step(carry):
        return carry + 1, carry
    return step


def _player_html():
    return ('<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/4.4.0/css/font-awesome.min.css">'
            '<div class="animation"><button><i class="fa fa-play"></i></button></div>')


# -- the bad values -------------------------------------------------------------------------------

MUST = "must be rejected"
EITHER = "rejected or a sane result"
ACCEPT = "must be accepted"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def battery(base: Any, default: Any, takes_arrays: bool) -> list[tuple[str, Any, str]]:
    """``(label, bad value, expectation)`` for a parameter whose valid base value is ``base``."""
    none = [] if default is None else [("None", None, MUST)]
    if _is_number(base):
        cases = [("True", True, MUST), ("numeric str", str(base), MUST), *none,
                 ("nan", math.nan, MUST), ("inf", math.inf, EITHER), ("-1", -1, EITHER), ("0", 0, EITHER),
                 ("2**64", 2 ** 64, EITHER),
                 ("numpy scalar", (np.int64 if isinstance(base, int) else np.float64)(base), ACCEPT)]
        if isinstance(base, float) and base == int(base) and abs(base) < 2 ** 53:
            pass
        cases.append(("list", [base, base], EITHER if takes_arrays else MUST))
        return cases
    if isinstance(base, (bool, np.bool_)):
        return [("1", 1, MUST), ("str", str(base), MUST), *none, ("np.bool_", np.bool_(base), ACCEPT)]
    if isinstance(base, str):
        return [*none, ("int", 1, EITHER), ("True", True, EITHER), ("list", [base], EITHER),
                ("empty str", "", EITHER), ("unknown str", "no-such-name", EITHER)]
    if isinstance(base, (list, tuple)) and not isinstance(base, str):
        return [*none, ("str", "ab", MUST if not (base and isinstance(base[0], tuple)) else EITHER),
                ("number", 3, EITHER), ("empty", type(base)(), EITHER), ("[None]", [None], EITHER),
                ("[nan]", [math.nan], EITHER)]
    if isinstance(base, np.ndarray):
        return [*none, ("str", "ab", EITHER), ("empty", base[:0], EITHER), ("bool array", base.astype(bool), EITHER),
                ("nan array", np.full_like(base, np.nan, dtype=float), EITHER)]
    return [*none, ("int", 3, EITHER), ("str", "x", EITHER), ("True", True, EITHER)]


# -- checking one case ----------------------------------------------------------------------------

class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("took longer than its time cap")


def _call(fn, kwargs: dict):
    kwargs = dict(kwargs)
    extra = kwargs.pop("*args", None)
    if extra is None:
        return fn(**kwargs)
    sig = inspect.signature(fn)
    positional = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            break
        positional.append(kwargs.pop(p.name))
    return fn(*positional, *extra, **kwargs)


RAISES = "<raises>"


def insane(value, negative_ok: bool, depth: int = 0) -> str | None:
    """Why ``value`` is not a sane result (NaN, inf, a negative where none is allowed), or None."""
    if depth > 4:
        return None
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        if not math.isfinite(float(value)):
            return f"non-finite number {value!r}"
        if value < 0 and not negative_ok and depth == 0:
            return f"negative result {value!r}"
        return None
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return "an array with NaN or inf"
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            why = insane(getattr(value, f.name), True, depth + 1)
            if why:
                return f"field {f.name}: {why}"
        for name, attr in vars(type(value)).items():
            if isinstance(attr, property) and not name.startswith("_"):
                try:
                    got = getattr(value, name)
                except (ValueError, KeyError, TypeError):
                    continue
                except Exception as e:  # noqa: BLE001
                    return f"{RAISES} property {name}: {type(e).__name__}: {str(e)[:120]}"
                why = insane(got, True, depth + 1)
                if why:
                    return f"property {name}: {why}"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            why = insane(v, True, depth + 1)
            if why:
                return f"[{k!r}]: {why}"
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value[:50]):
            why = insane(v, True, depth + 1)
            if why:
                return f"[{i}]: {why}"
    return None


def run_case(fn, kwargs: dict, param: str, expect: str, negative_ok: bool,
             seconds: float = CASE_SECONDS) -> str | None:
    """None if the case keeps the contract, else what went wrong."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        result = _call(fn, kwargs)
    except Hang as e:
        return f"HANG: {e}"
    except (ValueError, KeyError, TypeError) as e:
        if expect == ACCEPT:
            return f"rejected a valid value: {type(e).__name__}: {e}"
        if param not in str(e):
            return f"UNCLEAR: {type(e).__name__} does not name {param!r}: {str(e)[:200]}"
        return None
    except Exception as e:  # noqa: BLE001 (the point of the test)
        return f"CRASH: {type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        plt.close("all")
    if expect == MUST:
        return f"SILENT: accepted, returned {_short(result)}"
    why = insane(result, negative_ok)
    if why and RAISES in why:
        return "CRASH: the result's " + why.replace(RAISES + " ", "")
    return f"SILENT: {why}" if why else None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


def cases_for(key: str):
    """Every ``(param, label, fn, kwargs, expect)`` for one callable, after checking its base call."""
    owner, obj = CALLABLES[key]
    entry = BASES[key]
    base = entry.kwargs()
    fn = obj
    if entry.obj is not None:
        fn = getattr(entry.obj(), key.rsplit(".", 1)[1])
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    # None is a valid value where it is the default or the annotation allows it ("Chip | None")
    defaults = {} if sig is None else {n: None if "None" in str(p.annotation) else p.default
                                       for n, p in sig.parameters.items()}
    params = [p for p in base if p != "*args"] if entry.params is None else list(entry.params)
    out = []
    for param in params:
        if param in entry.known:
            continue
        default = None if param in entry.none else defaults.get(param, inspect.Parameter.empty)
        for label, value, expect in battery(base[param], default,
                                            param in entry.arrays):
            out.append((param, label, value, expect))
    return fn, entry, out


# -- the tests ------------------------------------------------------------------------------------

def test_every_public_callable_has_a_base():
    missing = sorted(set(CALLABLES) - set(BASES))
    assert not missing, ("public callables without an entry in tests/test_api_contract.py BASES "
                         f"(add a valid base call for each): {missing}")
    gone = sorted(set(BASES) - set(CALLABLES))
    assert not gone, f"BASES entries for callables that no longer exist: {gone}"


FUZZED = sorted(k for k in CALLABLES if isinstance(BASES.get(k), B))


@pytest.mark.parametrize("key", FUZZED)
def test_bad_input_is_rejected_by_name_or_gives_a_sane_result(key):
    owner, obj = CALLABLES[key]
    entry = BASES[key]
    fn, entry, cases = cases_for(key)
    problem = run_case(fn, entry.kwargs(), "<base>", EITHER, entry.negative, entry.seconds)
    assert problem is None, f"{key}: the base call of BASES is not valid: {problem}"
    failures = []
    for param, label, value, expect in cases:
        kwargs = entry.kwargs()
        kwargs[param] = value
        if entry.obj is not None:
            fn = getattr(entry.obj(), key.rsplit(".", 1)[1])
        problem = run_case(fn, kwargs, param, expect, entry.negative, entry.seconds)
        if problem:
            failures.append(f"{param}={label} ({expect}): {problem}")
    assert not failures, f"{key}: {len(failures)} of {len(cases)} cases break the contract:\n" + "\n".join(failures)


def main() -> None:
    """``python tests/test_api_contract.py``: the counts of the whole walk, by module and by kind."""
    import collections
    import time

    counts = collections.Counter()
    by_module = collections.defaultdict(collections.Counter)
    start = time.perf_counter()
    for key in sorted(CALLABLES):
        entry = BASES.get(key)
        if not isinstance(entry, B):
            counts["skipped" if entry else "no base"] += 1
            continue
        counts["callables fuzzed"] += 1
        fn, entry, cases = cases_for(key)
        module = key.rsplit(".", 2 if inspect.isclass(CALLABLES[key][0]) else 1)[0]
        for param, label, value, expect in cases:
            kwargs = entry.kwargs()
            kwargs[param] = value
            if entry.obj is not None:
                fn = getattr(entry.obj(), key.rsplit(".", 1)[1])
            problem = run_case(fn, kwargs, param, expect, entry.negative, entry.seconds)
            kind = "OK" if problem is None else problem.split(":")[0]
            kind = kind if kind in ("OK", "CRASH", "SILENT", "UNCLEAR", "HANG") else "REJECTED VALID"
            counts[kind] += 1
            by_module[module][kind] += 1
            if problem:
                print(f"{key}: {param}={label}: {problem}")
    print(f"\ncallables walked: {len(CALLABLES)}; {dict(counts)}; {time.perf_counter() - start:.1f} s")
    for module, c in sorted(by_module.items()):
        print(f"  {module}: {dict(c)}")


if __name__ == "__main__":
    main()
