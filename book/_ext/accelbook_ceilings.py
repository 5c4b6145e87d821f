"""Sphinx extension of the book: this machine's ceilings, measured once per build.

Every chapter that runs on a CPU divides by the CPU's measured peak FLOP/s and bandwidth. Measured
in each chapter's kernel, the same machine reported numbers up to 1.8x apart from page to page.
So, when the builder starts and before any notebook executes, this extension:

1. pins the build's CPU threading (:data:`CPU_AFFINITY`): the Sphinx process's CPU affinity,
   which the kernels inherit and from which XLA sizes its CPU thread pool (and says so in
   ``ACCELBOOK_CPU_PINNING``);
2. measures the ceilings in a subprocess (same Python, same environment as the kernels) with
   ``accelbook.measure.device_ceilings`` and writes them as JSON into the execution cache folder
   (``_build/.jupyter_cache/accelbook-ceilings.json``), only when that file is missing. It lives
   exactly as long as the cached notebook outputs it was quoted in: a clean build, or
   ``jupyter-book clean --all``, deletes both; ``jupyter-book clean`` keeps both;
3. sets ``ACCELBOOK_CEILINGS`` to that path. The kernels inherit the Sphinx process's environment
   (jupyter_client launches a kernel with a copy of ``os.environ``), and
   ``accelbook.measure.measured_peak`` / ``measured_bandwidth`` read the file when it describes
   the device they run on.

Nothing happens when notebooks are not executed (``execute_notebooks: off``). A failed
measurement is reported as a warning; the chapters then measure for themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

ENV = "ACCELBOOK_CEILINGS"  # the same name as accelbook.measure.device_ceilings.ENV
PINNING_ENV = "ACCELBOOK_CPU_PINNING"  # tells the kernels the build pinned them (device_summary says so)
FILENAME = "accelbook-ceilings.json"
TIMEOUT = 600  # seconds; the measurement takes under 10 on a quiet 2-vCPU builder

CPU_AFFINITY = "one core"
"""How many CPUs the build's kernels may use: 'one core' (the lowest-numbered CPU of the current
affinity mask) or 'all' (leave the mask as it is).

XLA's CPU client sizes its thread pool from the affinity mask, so with 'one core' every chapter
computes with one thread on one core. Why: the per-core peak is computable exactly (one core ×
FMA units × lanes × 2 × clock); a one-thread matmul has no second thread to wait for, so work on
the other CPU (the Sphinx process, the OS, a second test worker) does not stall it; and on the
2-vCPU builder the rounds within one process varied less pinned than unpinned. The price: "this
CPU" is one core in every chapter (``device_summary`` says so), large CPU matmuls take about twice
as long, and under heavy load from other processes a pinned kernel cannot move to an idler CPU.
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``, the usual recipe, does not make jax 0.10's CPU
matmuls single-threaded (per-thread CPU times show two to three busy threads either way), and
``intra_op_parallelism_threads`` is not an XLA flag (XLA ignores it).
"""

_MEASURE = ("import sys; from accelbook.measure.device_ceilings import main; "
            "sys.exit(main(sys.argv[1:]))")


def ceilings_path(app) -> Path:
    """Where the build's ceilings live: inside myst-nb's execution cache folder."""
    cache = getattr(app.config, "nb_execution_cache_path", "") or ""
    folder = Path(cache) if cache else Path(app.outdir).parent / ".jupyter_cache"
    return folder.resolve() / FILENAME


def pin_cpus(setting: str) -> list[int] | None:
    """Apply ``setting`` to this process's CPU affinity; return the CPUs now allowed (None where
    the platform has no affinity control)."""
    if setting not in ("one core", "all"):
        raise ValueError(f"CPU_AFFINITY={setting!r}; allowed: 'one core', 'all'")
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if setting == "one core" and len(cpus) > 1:
        cpus = cpus[:1]
        os.sched_setaffinity(0, cpus)
    os.environ[PINNING_ENV] = setting
    return cpus


def measure_once(app) -> None:
    if str(getattr(app.config, "nb_execution_mode", "")).lower() in ("off", "false"):
        return
    path = ceilings_path(app)
    cpus = pin_cpus(CPU_AFFINITY)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.info(f"[accelbook] measuring this machine's ceilings once for the build (CPUs {cpus})")
        try:
            proc = subprocess.run([sys.executable, "-c", _MEASURE, "--write", str(path)],
                                  capture_output=True, text=True, timeout=TIMEOUT, env=dict(os.environ))
        except (OSError, subprocess.SubprocessError) as err:
            logger.warning(f"[accelbook] the ceilings measurement did not run ({err}); "
                           "each chapter measures its own")
            return
        if proc.returncode != 0 or not path.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            logger.warning(f"[accelbook] the ceilings measurement failed (exit {proc.returncode}): "
                           + " | ".join(tail) + "; each chapter measures its own")
            return
        logger.info(f"[accelbook] {proc.stdout.strip()}")
    else:
        logger.info(f"[accelbook] this build's ceilings: {path}")
    os.environ[ENV] = str(path)


def setup(app):
    app.connect("builder-inited", measure_once)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
