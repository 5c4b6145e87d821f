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


# -- interleaved rounds -------------------------------------------------------------------------------

def test_interleaved_runs_rounds_in_order_and_merges_samples():
    from accelbook.measure.harness import Timing

    order = []

    def probe(key, value):
        def run():
            order.append(key)
            return Timing((value,))
        return run

    out = overhead.interleaved({"a": probe("a", 1.0), "b": probe("b", 2.0)}, rounds=3)
    assert order == ["a", "b"] * 3  # every key once per round, not all rounds of one key first
    assert out["a"].samples == (1.0,) * 3 and out["b"].samples == (2.0,) * 3


def test_interleaved_keeps_the_record_type():
    from accelbook import measure

    out = overhead.interleaved({"t": lambda: measure.triad(1000, warmup=0, min_repeats=2, min_time=0)}, rounds=2)
    assert out["t"].elements == 1000 and out["t"].timing.n == 4


@pytest.mark.parametrize("probes", [{}, {"a": 3}])
def test_interleaved_rejects_bad_probes(probes):
    with pytest.raises(ValueError):
        overhead.interleaved(probes)


# -- traces ---------------------------------------------------------------------------------------------

def _synthetic_trace():
    m = lambda pid, tid, what, name: {"ph": "M", "pid": pid, "tid": tid, "name": what, "args": {"name": name}}
    x = lambda tid, ts, dur, name, **args: {"ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur, "name": name,
                                           "args": args}
    return {"traceEvents": [
        {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/host:CPU"}},
        m(1, 10, "thread_name", "python"), m(1, 20, "thread_name", "tf_XLAPjRtCpuClient/123"),
        x(10, 100.0, 100.0, "region A"),
        x(10, 110.0, 20.0, "PjitFunction(f)"), x(10, 111.0, 18.0, "PjitFunction(f)"),  # nested: dropped
        x(10, 112.0, 1e-6, "ThreadpoolListener::Record"),  # marker: dropped
        x(20, 120.0, 30.0, "fusion", hlo_op="fusion"), x(20, 140.0, 20.0, "dot", hlo_op="dot"),  # overlap 10
        x(10, 130.0, 5.0, "ParseArguments"),  # neither: dropped
        x(10, 300.0, 50.0, "region B"), x(20, 310.0, 10.0, "fusion", hlo_op="fusion"),
    ]}


def test_parse_trace_keeps_regions_dispatches_and_kernels():
    tr = overhead.parse_trace(_synthetic_trace(), regions=["region A", "region B"])
    assert list(tr.regions()) == ["region A", "region B"]
    assert tr.regions()["region A"] == pytest.approx((0.0, 100e-6))  # times from the first kept event
    a = tr.within("region A")
    assert [(e.kind, e.lane) for e in a] == [("dispatch", "host: Python thread"), ("kernel", "host: XLA CPU executor"),
                                             ("kernel", "host: XLA CPU executor")]
    # kernels cover 120-160 µs (union of 120-150 and 140-160) of a 100 µs region
    assert tr.busy_fraction("region A") == pytest.approx(0.4)
    assert tr.busy_fraction("region B") == pytest.approx(0.2)
    with pytest.raises(KeyError):
        tr.within("region C")


def test_parse_trace_reads_a_gzipped_file(tmp_path):
    import gzip
    import json

    path = tmp_path / "perfetto_trace.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump(_synthetic_trace(), f)
    assert overhead.parse_trace(str(path), regions=["region A"]).path == str(path)
    with pytest.raises(ValueError):
        overhead.parse_trace({"events": []})


def test_capture_trace_sees_each_regime():
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda a: a @ a)
    x = jnp.ones((64, 64))
    f(x).block_until_ready()
    tr = overhead.capture_trace({"mm": (f, (x,)), "add": (lambda a: a + 1.0, (x,))}, calls=2)
    assert list(tr.regions()) == ["mm", "add"]
    for r in ("mm", "add"):
        kinds = [e.kind for e in tr.within(r)]
        assert kinds.count("kernel") >= 2  # one XLA kernel (at least) per call
        assert 0 < tr.busy_fraction(r) <= 1
    with pytest.raises(ValueError):
        overhead.capture_trace({"bad": 3})


# -- the running example's layer ------------------------------------------------------------------------

def test_decoder_layer_matches_numpy():
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    b, d, h, f, ctx = 2, 16, 4, 24, 5
    dh = d // h
    x, wqkv, wo, wgu, wd = (rng.standard_normal(s) / 4 for s in ((b, d), (d, 3 * d), (d, d), (d, 2 * f), (f, d)))
    kc, vc = rng.standard_normal((2, b, h, ctx, dh))
    got = np.asarray(overhead.decoder_layer(*(jnp.asarray(a, jnp.float32) for a in (x, wqkv, wo, wgu, wd, kc, vc))))

    def rms(z):
        return z / np.sqrt(np.mean(z * z, axis=-1, keepdims=True) + 1e-6)

    want = np.empty((b, d))
    for i in range(b):  # one sequence at a time, one head at a time
        q, k, v = np.split(rms(x[i]) @ wqkv, 3)
        att = np.empty(d)
        for j in range(h):
            keys = np.vstack([kc[i, j], k[j * dh:(j + 1) * dh]])
            vals = np.vstack([vc[i, j], v[j * dh:(j + 1) * dh]])
            s = keys @ q[j * dh:(j + 1) * dh] / np.sqrt(dh)
            p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            att[j * dh:(j + 1) * dh] = p @ vals
        y = x[i] + att @ wo
        g, u = np.split(rms(y) @ wgu, 2)
        want[i] = y + (g / (1 + np.exp(-g)) * u) @ wd
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_decoder_layer_counts_fusion_reduces_kernels():
    eager, kernels, summary = overhead.decoder_layer_counts(d_model=64, n_heads=4, d_ff=96, context=8)
    assert summary.ops_after.get("dot", 0) + summary.ops_after.get("fusion", 0) >= 1
    assert eager > kernels >= 4  # four projections at least survive as separate kernels
    with pytest.raises(ValueError):
        overhead.decoder_layer_counts(d_model=10, n_heads=4)
