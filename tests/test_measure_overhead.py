"""The additions to the harness for chapter 05 ("Overheads: launch, sync and Python"): queued
versus waited-for loops, the dispatch timeline, sync points, compilations per shape, transfers."""

import time

import numpy as np
import pytest

from accelbook.measure import overhead


def _slow(a):
    """A host function that takes about 2 ms and returns at once when waited for."""
    time.sleep(0.002)
    return a


def test_loop_time_reports_three_per_call_timings():
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda a: (a * 2.0).sum())
    r = overhead.loop_time(f, jnp.ones(1000), calls=8, repeats=3)
    assert r.calls == 8
    assert r.returned.n == r.finished.n == r.blocking.n == 3
    for a, b in zip(r.returned.samples, r.finished.samples):
        assert a <= b  # the loop returns before (or when) its results are ready


def test_loop_time_of_a_synchronous_function_is_its_duration_per_call():
    r = overhead.loop_time(_slow, 1, calls=3, repeats=2, warmup=0)
    assert r.returned.median >= 0.002 and r.blocking.median >= 0.002


@pytest.mark.parametrize("kw", [dict(calls=0), dict(repeats=0)])
def test_loop_time_rejects_bad_counts(kw):
    with pytest.raises(ValueError):
        overhead.loop_time(lambda: None, **kw)
    with pytest.raises(TypeError):
        overhead.loop_time(3)


def test_dispatch_timeline_is_ordered():
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda a: a @ a)
    x = jnp.ones((64, 64))
    f(x).block_until_ready()
    t = overhead.dispatch_timeline(f, x, calls=6)
    assert len(t.returned) == len(t.ready) == 6
    assert list(t.returned) == sorted(t.returned) and list(t.ready) == sorted(t.ready)
    assert all(r <= d for r, d in zip(t.returned, t.ready))
    assert t.ready[0] >= t.returned[-1]  # results are waited for after the last call


def test_sync_loop_time_runs_the_steps_and_counts_host_time():
    import jax
    import jax.numpy as jnp

    calls = []

    def step(c, k):
        calls.append(1)
        return c + k, c.sum()

    jstep = jax.jit(step)
    t = overhead.sync_loop_time(jstep, jnp.zeros(4), 1.0, steps=5, host_seconds=0.002, sync=True, repeats=2)
    assert t.n == 2 and t.median >= 0.002
    assert overhead.sync_loop_time(jstep, jnp.zeros(4), 1.0, steps=5, host_seconds=0.0, sync=False).n == 3
    with pytest.raises(ValueError, match="host_seconds"):
        overhead.sync_loop_time(jstep, jnp.zeros(4), 1.0, host_seconds=-1)


def test_run_requests_counts_one_trace_per_new_shape():
    import jax.numpy as jnp

    reqs = [(jnp.ones(n),) for n in (3, 3, 5, 3, 5, 7)]
    run = overhead.run_requests(lambda a: a.sum(), reqs)
    assert run.traces == 3 and len(run.seconds) == 6
    assert run.total == pytest.approx(sum(run.seconds))
    dtypes = overhead.run_requests(lambda a: a * 2, [(jnp.ones(3),), (jnp.ones(3, jnp.int32),)])
    assert dtypes.traces == 2  # a new dtype is a new program
    with pytest.raises(ValueError):
        overhead.run_requests(lambda a: a, [])


def test_transfer_round_trip_and_copy_flags():
    r = overhead.transfer(1 << 16, samples=3)
    assert r.nbytes == 1 << 16
    assert r.to_device.n == r.to_host.n == 3
    assert r.to_device_bytes_per_s > 0 and r.to_host_bytes_per_s > 0
    assert isinstance(r.to_device_copies, bool) and isinstance(r.to_host_copies, bool)
    with pytest.raises(ValueError, match="nbytes"):
        overhead.transfer(0)


def test_shares_is_false_for_objects_without_buffers():
    assert overhead._shares(object(), np.zeros(3)) is False


def test_hlo_summary_shows_a_chain_fused_into_one_kernel():
    import jax
    import jax.numpy as jnp

    def chain(a):
        for i in range(6):
            a = a * 1.5 if i % 2 == 0 else a + 0.5
        return a

    s = overhead.hlo_summary(chain, jax.ShapeDtypeStruct((4096,), jnp.float32))
    assert s.ops_before["stablehlo.multiply"] == 3 and s.ops_before["stablehlo.add"] == 3
    assert s.kernels == 1 and s.ops_after.get("fusion") == 1
    assert s.entry.startswith("ENTRY") and s.entry.endswith("}")
    assert "metadata=" not in s.entry
    jitted = overhead.hlo_summary(jax.jit(chain), jnp.ones(16))  # a jitted function works too
    assert jitted.kernels == 1
    with pytest.raises(TypeError):
        overhead.hlo_summary(None)
