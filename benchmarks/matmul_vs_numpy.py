"""Does the book's timing harness report the matmul rate the machine really delivers?

For n = 1024 and 2048 (float32), this script measures in one run, interleaved round by round:
  - the harness: accelbook.measure.matmul (jitted JAX matmul, warm-up, block_until_ready, median);
  - bare JAX: the same jitted matmul in a plain perf_counter loop (no harness);
  - NumPy: numpy.matmul in the same plain loop (its BLAS, no JAX involved).
It prints the three rates and two ratios: harness / bare JAX is what the harness itself costs
(1.00 means nothing), harness / NumPy compares XLA's CPU matmul kernel with NumPy's BLAS.
Timings on a shared machine swing: read the ratios, not the absolute numbers.

Run: make bench   (or .venv/bin/python benchmarks/matmul_vs_numpy.py [--rounds 5])
"""

import argparse
import statistics
import time

import numpy as np

from accelbook import measure


def loop_rate(fn, n: int, repeats: int) -> float:
    """Rate of ``fn()`` (a square n x n matmul) from a plain loop: one warm-up, median of repeats."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per size (default 5)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    import jax
    import jax.numpy as jnp

    print(f"{'n':>5} {'harness':>10} {'bare JAX':>10} {'NumPy':>10}   harness/bare  harness/NumPy  (GFLOP/s)")
    for n in (1024, 2048):
        repeats = 10 if n == 1024 else 5
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        f = jax.jit(jnp.matmul)
        rates = {"harness": [], "bare": [], "numpy": []}
        for _ in range(args.rounds):
            rates["harness"].append(measure.matmul(n, "fp32", min_repeats=repeats, max_repeats=repeats).flop_per_s)
            rates["bare"].append(loop_rate(lambda: f(ja, jb).block_until_ready(), n, repeats))
            rates["numpy"].append(loop_rate(lambda: np.matmul(a, b), n, repeats))
        h, j, m = (statistics.median(rates[k]) for k in ("harness", "bare", "numpy"))
        print(f"{n:>5} {h / 1e9:>10.1f} {j / 1e9:>10.1f} {m / 1e9:>10.1f}   {h / j:>12.3f}  {h / m:>13.3f}")


if __name__ == "__main__":
    main()
