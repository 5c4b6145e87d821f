"""This device's two roofline ceilings (peak FLOP/s and memory bandwidth): from the spec sheet, or
measured.

On a GPU or TPU the ceilings come from the chip's cited spec sheet in the database
(:mod:`accelbook.device` finds the chip); on TPU v2 and v3, where a JAX device is one of the chip's
two TensorCores, the chip's numbers are divided between them. On a CPU, or on a device the
database does not know, no spec sheet applies: the ceilings are measured and labelled as such.
``ceilings(dtype, source="measured")`` measures them on any backend, to set beside the spec sheet.

The measurement (:func:`measure_ceilings`) runs in interleaved rounds: each round times the large
matmul of every dtype, then the STREAM triad, so that a change in the machine's load falls on all
of them alike; each ceiling is the best round's rate (other work on the machine only ever slows
a round down, so the fastest round is the least disturbed, and a ceiling is a rate the machine did
reach; the per-round rates are kept, so their spread can be shown). A book build runs
it ONCE, before any chapter executes (``book/_ext/accelbook_ceilings.py`` writes the JSON file
named by the environment variable ``ACCELBOOK_CEILINGS``), so that every chapter of one build
quotes the same numbers. A process reads that file when it describes this device (same backend,
device kind, CPU and CPU affinity); otherwise it measures for itself, once per process.
:mod:`accelbook.measure` re-exports the public names, so a chapter writes
``measure.ceilings("fp32")``.

Taught in: "Introduction" (what is this machine?) and every chapter's measurement section.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from accelbook.device import DeviceInfo, current, host_cpu, matmul_peak_dtype
from accelbook.checks import boolean, instance, one_of, positive_int, sequence
from accelbook.measure.harness import (PRECISIONS, default_matmul_sizes, default_triad_elements, matmul_probe,
                                       time_call, triad_probe)
from accelbook.specs import check_dtype

ENV = "ACCELBOOK_CEILINGS"
"""Environment variable naming the build's ceilings file (set by the book's Sphinx extension)."""

PINNING_ENV = "ACCELBOOK_CPU_PINNING"
"""Set by the book's Sphinx extension to the CPU pinning it applied ('one core' or 'all')."""

FORMAT = 1
"""Version of the ceilings file's layout; a file of another version is ignored."""

SOURCES = ("auto", "spec sheet", "measured")


def _spread(samples: tuple[float, ...]) -> float | None:
    """(max − min) / median of the per-round rates; None without samples."""
    if not samples:
        return None
    return (max(samples) - min(samples)) / statistics.median(samples)


@dataclasses.dataclass(frozen=True)
class Ceilings:
    """The two roofline ceilings of one device for one dtype.

    For measured ceilings, ``peak_samples`` and ``bandwidth_samples`` are the per-round best
    rates whose best they are, ``once_per_build`` says that they come from the book build's
    single measurement, and ``cpu_cores`` is how many CPU cores the measurement ran on (None off
    CPU). ``per_device_fraction`` is the share of the chip's spec sheet one JAX device has (1/2
    on TPU v2 and v3).
    """

    peak_flops: float  # FLOP/s
    memory_bandwidth: float  # bytes/s
    dtype: str
    source: str  # 'spec sheet' or 'measured'
    label: str  # e.g. 'NVIDIA L4 (spec sheet, tf32)' or 'this CPU (measured, fp32)'
    peak_samples: tuple[float, ...] = ()
    bandwidth_samples: tuple[float, ...] = ()
    once_per_build: bool = False
    cpu_cores: int | None = None
    per_device_fraction: float = 1.0

    def __post_init__(self):
        from accelbook.checks import real, text

        real("peak_flops", self.peak_flops, positive=True)
        real("memory_bandwidth", self.memory_bandwidth, positive=True)
        check_dtype(self.dtype)
        one_of("source", self.source, ("spec sheet", "measured"))
        text("label", self.label)
        for name in ("peak_samples", "bandwidth_samples"):
            sequence(name, getattr(self, name), nonempty=False, of=lambda n, v: real(n, v, positive=True))
        boolean("once_per_build", self.once_per_build)
        if self.cpu_cores is not None:
            positive_int("cpu_cores", self.cpu_cores)
        real("per_device_fraction", self.per_device_fraction, positive=True, maximum=1)

    @property
    def ridge_point(self) -> float:
        """FLOP per byte where the two ceilings meet."""
        return self.peak_flops / self.memory_bandwidth

    @property
    def peak_spread(self) -> float | None:
        """(max − min) / median of the measured peak's per-round rates (None from a spec sheet)."""
        return _spread(self.peak_samples)

    @property
    def bandwidth_spread(self) -> float | None:
        """(max − min) / median of the measured bandwidth's per-round rates."""
        return _spread(self.bandwidth_samples)


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One run of the interleaved protocol on this device: every case's per-round best rates.

    ``peaks`` maps 'dtype/precision' (say 'fp32/default') to the per-round best FLOP/s;
    ``bandwidth`` holds the triad's per-round best bytes/s (empty when it was not run).
    ``identity`` says which device, software and CPU affinity it was measured with.
    """

    identity: dict
    rounds: int
    matmul_n: int
    triad_elements: int | None
    peaks: dict[str, tuple[float, ...]]
    bandwidth: tuple[float, ...]
    seconds: float
    date: str
    from_build: bool = False

    def peak(self, dtype: str, precision: str = "default") -> float | None:
        """The best round's matmul rate for ``dtype`` at ``precision`` (FLOP/s); None if not measured."""
        check_dtype(dtype)
        one_of("precision", precision, PRECISIONS)
        samples = self.peaks.get(f"{dtype}/{precision}")
        return max(samples) if samples else None

    @property
    def memory_bandwidth(self) -> float | None:
        """The best round's triad bandwidth (bytes/s); None if not measured."""
        return max(self.bandwidth) if self.bandwidth else None

    def to_json(self) -> dict:
        """The layout of the build's ceilings file (see :data:`FORMAT`)."""
        return {"format": FORMAT, "date": self.date, "identity": self.identity,
                "protocol": {"rounds": self.rounds, "matmul_n": self.matmul_n,
                             "triad_elements": self.triad_elements,
                             "statistic": "the best round's rate (each round's best of its repeats); "
                                          "the rounds interleave every matmul dtype and the triad"},
                "peaks": {k: {"flop_per_s": max(v), "samples": list(v)}
                          for k, v in self.peaks.items()},
                "bandwidth": ({"bytes_per_s": max(self.bandwidth), "samples": list(self.bandwidth)}
                              if self.bandwidth else None),
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: dict, *, from_build: bool = True) -> "Measurement":
        """Read :meth:`to_json`'s layout; ``ValueError`` for another format version."""
        instance("data", data, dict)
        if data.get("format") != FORMAT:
            raise ValueError(f"ceilings file format {data.get('format')!r}; this accelbook reads {FORMAT}")
        protocol = data["protocol"]
        bandwidth = data.get("bandwidth") or {}
        return cls(dict(data["identity"]), int(protocol["rounds"]), int(protocol["matmul_n"]),
                   protocol.get("triad_elements"),
                   {k: tuple(float(x) for x in v["samples"]) for k, v in data["peaks"].items()},
                   tuple(float(x) for x in bandwidth.get("samples", ())), float(data["seconds"]),
                   str(data["date"]), from_build)


def identity(info: DeviceInfo | None = None) -> dict:
    """What a measurement is valid for: backend, device kind and jax version, and on a CPU the CPU
    model, its cores, and the CPU affinity this process runs with (XLA sizes its CPU thread pool
    from it; the book build's pinning is recorded beside it). Not the device count: eight virtual
    CPU devices share the same cores."""
    import jax

    info = current() if info is None else instance("info", info, DeviceInfo)
    out = {"backend": info.backend, "device_kind": info.device_kind, "jax": jax.__version__}
    if info.backend == "cpu":
        cpu = host_cpu()
        affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        out["cpu"] = {"model_name": cpu.model_name, "microarchitecture": cpu.microarchitecture,
                      "logical_cpus": cpu.logical_cpus, "cores": cpu.cores, "simd": cpu.simd,
                      "clock_hz": cpu.clock_hz, "peak_fp32": cpu.peak_flops("fp32")}
        out["affinity"] = affinity
        out["pinning"] = os.environ.get(PINNING_ENV)
    return out


def _matches(recorded: dict, now: dict) -> bool:
    keys = ("backend", "device_kind", "jax", "affinity")
    if any(recorded.get(k) != now.get(k) for k in keys):
        return False
    if now.get("cpu") is not None:
        mine, theirs = now["cpu"], recorded.get("cpu") or {}
        return all(theirs.get(k) == mine[k] for k in ("model_name", "logical_cpus", "cores"))
    return True


def build_cases(backend: str) -> list[tuple[str, str]]:
    """The (dtype, precision) peaks a build measures: the dtypes the chapters' sweeps run."""
    if backend not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"backend={backend!r} is not known; allowed: cpu, gpu, tpu")
    dtypes = ["fp32", "bf16", "fp16"] if backend == "gpu" else ["fp32", "bf16"]
    return [(d, "default") for d in dtypes]


def _matmul_n(backend: str) -> int:
    """The square matmul size the ceilings are measured at."""
    return default_matmul_sizes(backend)[-1]


def measure_ceilings(cases=None, *, bandwidth: bool = True, rounds: int = 5, repeats: int = 1,
                     n: int | None = None, elements: int | None = None) -> Measurement:
    """Measure this device's ceilings by interleaved rounds.

    Each of ``rounds`` rounds times, in turn, an n × n matmul for every (dtype, precision) of
    ``cases`` (default :func:`build_cases`) ``repeats`` times, then (if ``bandwidth``) the STREAM
    triad over ``elements`` values (default :func:`~accelbook.measure.harness.default_triad_elements`)
    ``repeats + 3`` times. Every probe is compiled and checked against NumPy before round one.
    A ceiling is the best round's rate; the per-round rates are kept in the result.
    """
    rounds = positive_int("rounds", rounds)
    repeats = positive_int("repeats", repeats)
    bandwidth = boolean("bandwidth", bandwidth)
    info = current()
    if cases is None:
        cases = build_cases(info.backend)
    else:
        cases = [tuple(c) for c in sequence("cases", cases, of=lambda name, c: sequence(name, c), nonempty=False)]
        for i, case in enumerate(cases):
            if len(case) != 2:
                raise ValueError(f"cases[{i}]={case!r} must be a (dtype, precision) pair")
            check_dtype(case[0])
            one_of(f"cases[{i}] precision", case[1], PRECISIONS)
    if not cases and not bandwidth:
        raise ValueError("cases=[] with bandwidth=False: nothing to measure")
    n = _matmul_n(info.backend) if n is None else positive_int("n", n)
    elements = (default_triad_elements(info) if elements is None else positive_int("elements", elements))
    start = time.perf_counter()
    probes = {f"{d}/{p}": matmul_probe(n, d, precision=p) for d, p in cases}
    if bandwidth:
        probes["triad"] = triad_probe(elements)
    for probe in probes.values():  # compile, run once, and check before any timing
        time_call(probe.run, warmup=1, min_repeats=1, max_repeats=1, min_time=0)
        probe.check()
    samples: dict[str, list[float]] = {k: [] for k in probes}
    for _ in range(rounds):
        for key, probe in probes.items():
            count = repeats + 3 if key == "triad" else repeats
            t = time_call(probe.run, warmup=0, min_repeats=count, max_repeats=count, min_time=0)
            samples[key].append(probe.work / t.best)
    peaks = {k: tuple(v) for k, v in samples.items() if k != "triad"}
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Measurement(identity(info), rounds, n, elements if bandwidth else None, peaks,
                       tuple(samples.get("triad", ())), time.perf_counter() - start, date)


def write_build_file(path, **kwargs: Any) -> Measurement:
    """Measure (:func:`measure_ceilings`) and write the result as JSON to ``path`` (atomically)."""
    path = Path(instance("path", path, (str, os.PathLike)))
    result = measure_ceilings(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return result


@functools.lru_cache(maxsize=1)
def build_measurement() -> Measurement | None:
    """The build's once-per-build measurement, if ``ACCELBOOK_CEILINGS`` names a readable file
    that describes this device (same backend, device kind, jax version, CPU and CPU affinity);
    else None. Read once per process; the file is never written from here."""
    path = os.environ.get(ENV)
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        found = Measurement.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if _matches(found.identity, identity()) else None


@functools.lru_cache(maxsize=None)
def _live(dtype: str | None, precision: str = "default") -> Measurement:
    """A process's own measurement of one matmul case (``dtype``) or of the triad (None)."""
    if dtype is None:
        return measure_ceilings([], bandwidth=True)
    return measure_ceilings([(dtype, precision)], bandwidth=False)


def _peak_measurement(dtype: str, precision: str) -> Measurement:
    found = build_measurement()
    if found is not None and found.peak(dtype, precision) is not None:
        return found
    return _live(dtype, precision)


def _bandwidth_measurement() -> Measurement:
    found = build_measurement()
    if found is not None and found.memory_bandwidth is not None:
        return found
    return _live(None)


def measured_peak(dtype: str = "fp32", precision: str = "default") -> float:
    """This device's matmul ceiling in FLOP/s for ``dtype`` inputs at JAX ``precision``.

    From the build's once-per-build measurement when there is one for this device and case
    (:func:`build_measurement`); otherwise measured here, once per process, by
    :func:`measure_ceilings` (a case missing from the build's file is measured, not written back).
    """
    check_dtype(dtype)
    return _peak_measurement(dtype, precision).peak(dtype, precision)


def measured_bandwidth() -> float:
    """This device's memory bandwidth in bytes/s: a STREAM-style triad far larger than the caches,
    from the build's measurement when there is one for this device, else measured once per process."""
    return _bandwidth_measurement().memory_bandwidth


def ceilings(dtype: str = "fp32", info: DeviceInfo | None = None, precision: str = "default",
             source: str = "auto") -> Ceilings:
    """Peak FLOP/s and memory bandwidth for matmuls of ``dtype`` on ``info`` (default: this device).

    ``source='auto'``: from the spec sheet when the database has the chip, otherwise measured on
    this device (:func:`measured_peak` at ``precision``, :func:`measured_bandwidth`). An unknown
    GPU is measured at its real default precision, so an Ampere-or-newer GPU missing from the
    database reports its TF32 rate. ``'spec sheet'`` or ``'measured'`` asks for one of them: the
    measured ceilings of a GPU or TPU set beside its spec sheet show what it really reaches.
    On TPU v2 and v3 the spec sheet's peak and bandwidth are per chip and a JAX device is one of
    its two TensorCores: both are multiplied by ``info.per_device_fraction``.
    """
    info = current() if info is None else instance("info", info, DeviceInfo)
    check_dtype(dtype)
    if source not in SOURCES:
        raise ValueError(f"source={source!r} is not allowed; allowed: {', '.join(map(repr, SOURCES))}")
    peak_dtype = matmul_peak_dtype(info, dtype, precision)
    has_spec = info.has_spec_sheet and peak_dtype in info.chip.peak_flops
    if source == "spec sheet" and not has_spec:
        raise ValueError(f"source='spec sheet': the database has no {dtype} (precision {precision!r}) "
                         f"peak for {info.device_kind!r}")
    if has_spec and source != "measured":
        fraction = info.per_device_fraction
        where = "" if fraction == 1 else f", one TensorCore = 1/{round(1 / fraction)} chip"
        return Ceilings(info.chip.peak_flops[peak_dtype] * fraction, info.chip.memory_bandwidth * fraction,
                        peak_dtype, "spec sheet", f"{info.chip.name} (spec sheet, {peak_dtype}{where})",
                        per_device_fraction=fraction)
    if info != current():
        raise ValueError(f"no spec-sheet {dtype} ceilings for {info.device_kind!r}, and only the "
                         "device running this process can be measured")
    peak_run, bw_run = _peak_measurement(dtype, precision), _bandwidth_measurement()
    cores = None
    if info.backend == "cpu":
        affinity = peak_run.identity.get("affinity")
        cores = min(host_cpu().cores, len(affinity)) if affinity else host_cpu().cores
    return Ceilings(peak_run.peak(dtype, precision), bw_run.memory_bandwidth, dtype, "measured",
                    f"{info.label} (measured, {dtype}{'' if precision == 'default' else ', ' + precision})",
                    peak_samples=peak_run.peaks[f"{dtype}/{precision}"], bandwidth_samples=bw_run.bandwidth,
                    once_per_build=peak_run.from_build and bw_run.from_build, cpu_cores=cores)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--write PATH [--rounds N]`` measures (:func:`write_build_file`) and writes."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m accelbook.measure.device_ceilings",
                                     description="Measure this device's ceilings once and write them as JSON.")
    parser.add_argument("--write", required=True, help="path of the JSON file to write")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = write_build_file(args.write, rounds=args.rounds)
    peaks = ", ".join(f"{k} {result.peak(*k.split('/')) / 1e9:.1f} GFLOP/s" for k in result.peaks)
    bw = result.memory_bandwidth
    print(f"ceilings of {result.identity['device_kind']}: {peaks}; triad "
          f"{bw / 1e9:.1f} GB/s; {result.rounds} rounds in {result.seconds:.1f} s -> {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["ENV", "Ceilings", "Measurement", "build_cases", "build_measurement", "ceilings", "identity", "main",
           "measure_ceilings", "measured_bandwidth", "measured_peak", "write_build_file"]
