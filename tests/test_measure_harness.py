"""The timing harness and the probes: counted calls, honest statistics, checked results; the first
call (compilation) and what timing without waiting reports."""

import time

import numpy as np
import pytest

from accelbook import measure


def test_time_call_warms_up_then_times_at_least_min_repeats():
    calls = []
    t = measure.time_call(lambda: calls.append(1), warmup=3, min_repeats=7, max_repeats=7, min_time=0)
    assert len(calls) == 3 + 7 and t.n == 7


def test_time_call_keeps_going_until_min_time():
    import time

    start = time.perf_counter()
    t = measure.time_call(lambda: time.sleep(0.002), warmup=0, min_repeats=1, max_repeats=500, min_time=0.05)
    assert time.perf_counter() - start >= 0.05  # it stopped only after min_time had passed...
    assert sum(t.samples[:-1]) < 0.05  # ...and not one call later: before the last, less had passed
    assert t.n > 1 and t.best >= 0.002


def test_timing_statistics_match_numpy():
    t = measure.Timing((0.1, 0.3, 0.2, 0.5, 0.4))
    assert t.median == 0.3 and t.best == 0.1 and t.n == 5
    assert t.p10 == pytest.approx(np.percentile([0.1, 0.2, 0.3, 0.4, 0.5], 10))
    assert t.spread == pytest.approx((t.p90 - t.p10) / 0.3)


def test_time_call_waits_for_jax_results():
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda x: x @ x)
    x = jnp.ones((256, 256))
    t = measure.time_call(f, x, min_repeats=3, min_time=0)
    assert t.median > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"warmup": -1}, "warmup=-1"), ({"min_repeats": 0}, "min_repeats=0"),
    ({"min_repeats": 5, "max_repeats": 2}, "max_repeats=2"), ({"min_time": -1.0}, "min_time=-1.0")])
def test_time_call_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure.time_call(lambda: None, **kwargs)


def test_matmul_probe_counts_flops_and_checks_its_answer():
    r = measure.matmul(96, "fp32", m=64, k=80, min_time=0, min_repeats=2)
    assert (r.m, r.n, r.k) == (64, 96, 80)
    assert r.flops == 2 * 64 * 96 * 80
    assert r.bytes == 4 * (64 * 80 + 80 * 96 + 64 * 96)
    assert r.rel_error < 1e-5  # fp32 on CPU: rounding error only
    assert r.flop_per_s == pytest.approx(r.flops / r.timing.median)
    assert r.backend == "cpu"


def test_bf16_matmul_error_is_bf16_sized():
    r = measure.matmul(128, "bf16", min_time=0, min_repeats=2)
    assert 1e-4 < r.rel_error < 5e-2  # bf16 keeps 8 significant bits: about 2**-8 relative


def test_freivalds_error_separates_right_from_wrong_products():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 40)), rng.standard_normal((40, 30))
    assert measure.freivalds_error(a, b, a @ b, rng) < 1e-13
    wrong = a @ b
    wrong[3, 7] += 10.0
    assert measure.freivalds_error(a, b, wrong, rng) > 1e-2
    assert measure.freivalds_error(a, b, (b.T @ a.T).T * 1.01, rng) == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize("args, kwargs, match", [
    ((0,), {}, "n=0"), ((-4,), {}, "n=-4"), ((8,), {"m": 2.5}, "m=2.5"),
    ((8,), {"dtype": "fp7"}, "dtype='fp7'"), ((8,), {"dtype": "fp8"}, "cannot be run"),
    ((8,), {"precision": "max"}, "precision='max'"), ((8,), {"dtype": "fp64"}, "jax_enable_x64")])
def test_matmul_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure.matmul(*args, **kwargs)


def test_triad_moves_three_arrays_and_checks_its_answer():
    r = measure.triad(1 << 16, min_time=0, min_repeats=3)
    assert r.bytes == 3 * 4 * (1 << 16)
    assert r.bytes_per_s == pytest.approx(r.bytes / r.timing.median)


def test_triad_rejects_bad_sizes():
    with pytest.raises(ValueError, match="elements=0"):
        measure.triad(0)


def test_default_sizes_depend_on_the_backend():
    cpu, gpu = measure.default_matmul_sizes("cpu"), measure.default_matmul_sizes("gpu")
    assert max(cpu) < max(gpu) and cpu == sorted(cpu)
    assert measure.default_triad_elements("gpu", memory_bytes=16e9) == 2**27
    assert measure.default_triad_elements("gpu", memory_bytes=1e9) == int(1e9 // 64)
    with pytest.raises(ValueError, match="backend='npu'"):
        measure.default_matmul_sizes("npu")


def test_first_call_time_includes_compilation():
    import jax
    import jax.numpy as jnp

    x = jnp.ones((64, 64))
    f = jax.jit(lambda a: jnp.tanh(a @ a) + 1.0)
    first = measure.first_call_time(f, x)
    steady = measure.time_call(f, x, min_repeats=5, min_time=0)
    assert first > steady.median  # the first call traced and compiled


def test_first_call_time_waits_for_the_work():
    assert measure.first_call_time(lambda: time.sleep(0.01)) >= 0.01


def test_dispatch_time_counts_calls_and_rejects_bad_repeats():
    calls = []
    t = measure.dispatch_time(lambda: calls.append(1), repeats=7)
    assert t.n == 7 and len(calls) == 7
    with pytest.raises(ValueError, match="repeats=0"):
        measure.dispatch_time(lambda: None, repeats=0)
    with pytest.raises(TypeError):
        measure.first_call_time(3)


def test_probes_check_their_sizes_before_allocating():
    import numpy as np
    import pytest

    from accelbook.measure import harness

    with pytest.raises(ValueError, match="^n=.* is too large"):
        harness.matmul_probe(2**20)  # 3 · 2**40 · 4 bytes: refused before any allocation
    with pytest.raises(ValueError, match="^elements=.* is too large"):
        harness.triad_probe(2**40)
    with pytest.raises(ValueError, match="^scalar=nan"):
        harness.triad_probe(16, scalar=float("nan"))
    with pytest.raises(ValueError, match="^seed=-1"):
        harness.matmul_probe(4, seed=-1)
    with pytest.raises(ValueError, match="^warmup=True"):
        harness.time_call(lambda: None, warmup=True)
    t = harness.time_call(lambda: None, warmup=np.int64(0), min_repeats=np.int64(1), max_repeats=np.int64(2),
                          min_time=np.float32(0))
    assert 1 <= t.n <= 2


def test_freivalds_error_checks_shapes_and_degenerate_products():
    import numpy as np
    import pytest

    from accelbook.measure import harness

    rng = np.random.default_rng(0)
    eye = np.eye(3)
    assert harness.freivalds_error(eye, eye, eye, rng) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        harness.freivalds_error(eye, np.eye(4), eye, rng)
    with pytest.raises(ValueError, match="product is zero"):
        harness.freivalds_error(np.zeros((3, 3)), eye, eye, rng)
    with pytest.raises(TypeError, match="^rng=None"):
        harness.freivalds_error(eye, eye, eye, None)
    with pytest.raises(ValueError, match="^memory_bytes=-1"):
        harness.default_triad_elements("gpu", -1)
