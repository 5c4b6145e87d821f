"""Measurement with JAX: the one timing harness and its shared probes, the device's ceilings, then
one module per chapter topic that measures something.

``from accelbook import measure`` gives the harness (:mod:`~accelbook.measure.harness`:
``measure.time_call``, ``measure.matmul``, ``measure.triad``, ...) and the ceilings
(:mod:`~accelbook.measure.device_ceilings`: ``measure.ceilings("fp32")``, measured once per book
build on a CPU) by name, and each topic's
probes by module: ``measure.sweeps`` (chapter 03), ``measure.overhead`` (05), ``measure.roofline``
(02), ``measure.memory`` (07), ``measure.serving`` (a decoder stack with a KV cache: 08 and 09), ``measure.collectives`` (collectives
across devices: 10). A measure module imports no Matplotlib and no :mod:`accelbook.plots` (``tests/test_layers.py``
checks it).
"""

from accelbook.measure import collectives, device_ceilings, harness, memory, overhead, roofline, serving, sweeps
from accelbook.measure.device_ceilings import (Ceilings, Measurement, build_measurement, ceilings,
                                               measure_ceilings, measured_bandwidth, measured_peak)
from accelbook.measure.harness import (PRECISIONS, BandwidthResult, MatmulResult, MeasurementError, Probe, Timing,
                                       default_matmul_sizes, default_triad_elements, dispatch_time,
                                       first_call_time, freivalds_error, matmul, matmul_probe, time_call, triad,
                                       triad_probe)

__all__ = ["PRECISIONS", "BandwidthResult", "Ceilings", "collectives", "MatmulResult", "Measurement", "MeasurementError", "Probe",
           "Timing", "build_measurement", "ceilings", "default_matmul_sizes", "default_triad_elements",
           "device_ceilings", "dispatch_time", "first_call_time", "freivalds_error", "harness", "matmul",
           "matmul_probe", "measure_ceilings", "measured_bandwidth", "measured_peak", "memory", "overhead",
           "roofline", "serving", "sweeps", "time_call", "triad", "triad_probe"]
