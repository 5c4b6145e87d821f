"""Measured decode step times of the running example, sized to this device, set beside the roofline.

The running example's model (accelbook.models.decoder.EXAMPLE) is sized to the device with
accelbook.measure.serving.sized_config, then its decode step is timed over the default batch sweep
and the default context sweep (serving.default_sweeps). For each point the script prints the
median step time and its spread ((p90 - p10) / median), tokens/s, the step's FLOP F and bytes Q
(decoder.layer_ops x layers), the roofline's lower bound max(F / P, Q / W) with the device's
ceilings from accelbook.measure.ceilings (spec sheet on a known GPU or TPU, measured on a CPU), and
measured / roofline: 1.0 means the step ran at the roof, 3.0 that it took three times the bound.
Timings on a shared machine swing: read the shape of the curve and the ratios, not one number.

Run: .venv/bin/python benchmarks/decode_step.py [--rounds 2] [--model llama-2-7b]
"""

import argparse
import time

from accelbook import device, measure
from accelbook.measure import serving
from accelbook.models import decoder


def table(title: str, records, peak: float, bandwidth: float) -> None:
    print(f"\n{title}")
    print(f"{'batch':>5} {'context':>7} {'median':>9} {'spread':>6} {'tokens/s':>9} {'F (FLOP)':>9} "
          f"{'Q (B)':>9} {'F/Q':>6} {'roofline':>9} {'meas/roof':>9} {'bound':>7}")
    for r in records:
        t_compute, t_memory = r.flops / peak, r.bytes / bandwidth
        roof = max(t_compute, t_memory)
        print(f"{r.batch:>5} {r.context:>7} {r.seconds * 1e3:>7.2f}ms {r.timing.spread:>6.2f} "
              f"{r.tokens_per_s:>9.0f} {r.flops:>9.3g} {r.bytes:>9.3g} {r.intensity:>6.1f} "
              f"{roof * 1e3:>7.2f}ms {r.seconds / roof:>9.2f} {'compute' if t_compute > t_memory else 'memory':>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per sweep (default 1)")
    parser.add_argument("--model", default=decoder.EXAMPLE.model, help="a key of models.toml (default: the "
                        "running example's)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    info = device.current()
    dtype = serving.default_dtype(info)
    config = serving.sized_config(decoder.get_model(args.model), info)
    sweeps = serving.default_sweeps(info)
    ceil = measure.ceilings(dtype)
    print(f"device: {info.label} ({info.backend}, {info.device_kind}); dtype {dtype}; "
          f"cache donated: {serving.donation_supported()}")
    print(f"stack: {config.name}: d_model {config.d_model}, {config.n_heads} heads of {config.head_dim}, "
          f"{config.n_kv_heads} KV heads, d_ff {config.d_ff}, {config.n_layers} layers")
    print(f"ceilings: {ceil.label}: P = {ceil.peak_flops / 1e9:.1f} GFLOP/s, "
          f"W = {ceil.memory_bandwidth / 1e9:.1f} GB/s, ridge {ceil.ridge_point:.1f} FLOP/B")
    t0 = time.perf_counter()
    batch = serving.decode_step_times(config, sweeps.batches, sweeps.batch_context, dtype, rounds=args.rounds)
    t1 = time.perf_counter()
    context = serving.context_sweep(config, sweeps.context_batch, sweeps.contexts, dtype, rounds=args.rounds)
    t2 = time.perf_counter()
    table(f"batch sweep at {sweeps.batch_context} tokens ({t1 - t0:.1f} s)", batch, ceil.peak_flops,
          ceil.memory_bandwidth)
    table(f"context sweep at batch {sweeps.context_batch} ({t2 - t1:.1f} s)", context, ceil.peak_flops,
          ceil.memory_bandwidth)
    first, last = batch[0], batch[-1]
    print(f"\nbatch {last.batch} / batch {first.batch}: step time x{last.seconds / first.seconds:.2f}, "
          f"tokens/s x{last.tokens_per_s / first.tokens_per_s:.1f} (work x{last.flops / first.flops:.0f}, "
          f"bytes x{last.bytes / first.bytes:.2f})")
    first, last = context[0], context[-1]
    print(f"context {last.context} / context {first.context}: step time x{last.seconds / first.seconds:.2f} "
          f"(bytes x{last.bytes / first.bytes:.2f})")


if __name__ == "__main__":
    main()
