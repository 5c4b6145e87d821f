"""How fast is the serving simulator (accelbook.models.serving.simulate)?

For each policy (fixed, dynamic, continuous) this script simulates 100,000 requests (Poisson
arrivals, prompts of 16 to 511 tokens, geometric outputs of mean 100 tokens) on the roofline step
time of Llama-2-7B on an H100 SXM (chip numbers from the spec database), at a light load (small
batches: the most batches, the slowest case for the dynamic policy's loop) and at a heavy one. It
also times the fixed and dynamic policies with a measured-style StepTable (no context), and the
M/M/1 queue (service times, batch 1). It prints, per case, the median and the spread of several
runs and the simulated requests per second of wall time. Timings on a shared machine swing.

Run: .venv/bin/python benchmarks/serving_sim.py [--requests 100000] [--repeats 5]
"""

import argparse
import statistics
import time

import numpy as np

from accelbook import specs
from accelbook.models import decoder, serving


def timed(fn, repeats: int) -> list[float]:
    """Wall seconds of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000, help="requests per run (default 100,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (default 5)")
    args = parser.parse_args()
    if args.requests < 1 or args.repeats < 1:
        parser.error("--requests and --repeats must be >= 1")

    chip = specs.get_chip("h100-sxm")
    model = decoder.LLAMA2_7B
    peak, bandwidth = chip.peak["bf16"].value, chip.memory_bandwidth
    step = serving.decode_step(model, 1024, peak, bandwidth, t0=0.0)
    prefill = serving.prefill_step(model, peak, bandwidth)
    weights = 2 * decoder.model_params(model)
    kv_tokens = int((chip.memory_bytes - weights) // decoder.kv_cache_bytes(model, 1))
    table = serving.StepTable(np.arange(1, 65), step(np.arange(1, 65)))
    n = args.requests

    def workload(rate):
        return serving.make_requests(serving.arrival_times(n, rate, seed=0),
                                     prompt=lambda rng, k: rng.integers(16, 512, k),
                                     output=lambda rng, k: rng.geometric(1 / 100, k), seed=0)

    cases = []
    for label, rate in (("light", 2.0), ("heavy", 40.0)):
        r = workload(rate)
        cases += [
            (f"fixed      b=16, roofline, {label}", lambda r=r: serving.simulate(
                r, step, policy="fixed", max_batch=16, prefill_time=prefill)),
            (f"dynamic    b=16, roofline, {label}", lambda r=r: serving.simulate(
                r, step, policy="dynamic", max_batch=16, max_wait=0.05, prefill_time=prefill)),
            (f"fixed      b=16, table,    {label}", lambda r=r: serving.simulate(
                r, table, policy="fixed", max_batch=16, prefill_time=prefill)),
            (f"dynamic    b=16, table,    {label}", lambda r=r: serving.simulate(
                r, table, policy="dynamic", max_batch=16, max_wait=0.05, prefill_time=prefill)),
            (f"continuous b=64, roofline, {label}", lambda r=r: serving.simulate(
                r, step, policy="continuous", max_batch=64, kv_capacity=kv_tokens, prefill_time=prefill)),
        ]
    mm1 = serving.make_requests(serving.arrival_times(n, 0.8, seed=0),
                                service=lambda rng, k: rng.exponential(1.0, k), seed=0)
    cases.append(("fixed      b=1,  M/M/1 service times", lambda: serving.simulate(mm1, policy="fixed", max_batch=1)))
    cases.append(("dynamic    b=1,  M/M/1 service times", lambda: serving.simulate(
        mm1, policy="dynamic", max_batch=1, max_wait=0.0)))

    print(f"{n:,} requests per run; median of {args.repeats} runs (min-max)")
    print(f"{'case':40} {'median s':>9} {'min-max s':>15} {'requests/s':>12} {'batches':>9} {'mean batch':>10}")
    for label, fn in cases:
        times = timed(fn, args.repeats)
        run = fn()
        med = statistics.median(times)
        print(f"{label:40} {med:9.3f} {min(times):7.3f}-{max(times):<7.3f} {n / med:12,.0f} "
              f"{run.batch_size.size:9,d} {run.mean_batch:10.1f}")


if __name__ == "__main__":
    main()
