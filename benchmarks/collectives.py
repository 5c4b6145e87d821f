"""What do the five collectives of accelbook.measure.collectives cost on this machine?

Asks for 8 virtual CPU devices (only a CPU backend uses them: a multi-GPU machine or a TPU slice
uses its own chips), then runs a sweep of each collective over the default sizes and prints, per
op, the median time of each size, the bus bandwidth at the largest size, and the fitted α (s) and
β (s/byte) with their standard errors; then the host-to-device and device-to-device copies. On
virtual CPU devices every number is memory copies and reductions inside one process: the shape of
t = α + n·β, not a link. Timings on a shared machine swing; nothing here is asserted.

Run: .venv/bin/python benchmarks/collectives.py [--ranks 8] [--dtype fp32]
"""

import argparse
import time

from accelbook.measure import collectives as mc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=8, help="virtual CPU devices to ask for (default 8)")
    parser.add_argument("--dtype", default="fp32", choices=sorted(mc.DTYPES))
    args = parser.parse_args()
    requested = mc.request_virtual_devices(args.ranks)
    devices = mc.collective_devices()
    print(f"request_virtual_devices({args.ranks}) -> {requested}; {devices.p} {devices.platform} devices "
          f"({devices.device_kind}), virtual={devices.virtual}")
    print(devices.note)
    start = time.perf_counter()
    for op in mc.MEASURED_OPS:
        t0 = time.perf_counter()
        sweep = mc.collective_sweep(op, devices=devices, dtype=args.dtype)
        fit = sweep.fit()
        print(f"\n{op} ({mc.DEFAULT_ALGORITHM[op]}), {time.perf_counter() - t0:.1f} s of wall time")
        for pt in sweep.points:
            print(f"  S = {pt.n_bytes:>9d} B  t = {pt.seconds * 1e6:9.1f} us  (p10 {pt.spread[0] * 1e6:.1f}, "
                  f"p90 {pt.spread[1] * 1e6:.1f}, {pt.samples} calls)  busbw = {pt.busbw / 1e9:7.3f} GB/s")
        a_err = fit.alpha_stderr
        b_err = fit.beta_stderr
        print(f"  fit: alpha = {fit.alpha * 1e6:.1f} ± {a_err * 1e6:.1f} us, beta = {fit.beta * 1e12:.1f} "
              f"± {b_err * 1e12:.1f} ps/B (1/beta = {fit.bandwidth / 1e9:.2f} GB/s), "
              f"rms relative error {fit.rms_relative_error:.2f} {fit.note}")
    print(f"\nfive sweeps: {time.perf_counter() - start:.1f} s of wall time")
    print("\ncopies: " + mc.copy_note(devices.platform, devices.virtual))
    for c in mc.copy_sweep(devices=devices):
        print(f"  {c.kind:16s} {c.n_bytes:>9d} B  t = {c.seconds * 1e6:9.1f} us  "
              f"{c.bandwidth / 1e9:7.2f} GB/s  copied={c.copied}")


if __name__ == "__main__":
    main()
