"""Does the book's timing harness report the matmul rate the machine really delivers?

For n = 1024 and 2048 (float32), this script measures in one run, interleaved round by round:
  - the harness: accelbook.measure.matmul (jitted JAX matmul, warm-up, block_until_ready, median);
  - NumPy: numpy.matmul timed with a plain perf_counter loop (its BLAS, no JAX involved).
It prints both medians and the ratio harness / NumPy. A ratio near 1 means the harness adds no
overhead of its own and JAX's CPU matmul is as fast as NumPy's BLAS on this machine.
Timings on a shared machine swing: read the ratio, not the absolute numbers.

Run: make bench   (or .venv/bin/python benchmarks/matmul_vs_numpy.py [--rounds 5])
"""

import argparse
import statistics
import time

import numpy as np

from accelbook import measure


def numpy_rate(n: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    np.matmul(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per size (default 5)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    print(f"{'n':>6} {'harness (JAX)':>16} {'NumPy':>16} {'ratio':>7}")
    for n in (1024, 2048):
        repeats = 10 if n == 1024 else 5
        jax_rates, np_rates = [], []
        for _ in range(args.rounds):
            jax_rates.append(measure.matmul(n, "fp32", min_repeats=repeats, max_repeats=repeats).flop_per_s)
            np_rates.append(numpy_rate(n, repeats))
        j, m = statistics.median(jax_rates), statistics.median(np_rates)
        ratios = [a / b for a, b in zip(jax_rates, np_rates)]
        print(f"{n:>6} {j / 1e9:>10.1f} GFLOP/s {m / 1e9:>10.1f} GFLOP/s {j / m:>7.3f}"
              f"   (per-round ratios {min(ratios):.2f}–{max(ratios):.2f})")


if __name__ == "__main__":
    main()
