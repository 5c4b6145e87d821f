"""XLA's cost analysis (accelbook.measure.roofline) against hand counts of FLOP and bytes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from accelbook import device, measure, models, specs


@pytest.mark.parametrize("m, k, n", [(64, 32, 16), (128, 128, 128), (7, 300, 5)])
def test_xla_cost_of_a_matmul_equals_the_hand_count(m, k, n):
    a, b = jnp.ones((m, k), jnp.float32), jnp.ones((k, n), jnp.float32)
    cost = measure.roofline.xla_cost(lambda x, y: x @ y, a, b)
    assert cost.flops == 2 * m * n * k
    assert cost.bytes_accessed == 4 * (m * k + k * n + m * n)
    assert cost.intensity == pytest.approx(models.roofline.matmul_intensity(m, n, k, 4))


def test_xla_cost_of_elementwise_add_and_of_a_prejitted_function():
    x = jnp.ones((1000,), jnp.float32)
    cost = measure.roofline.xla_cost(jax.jit(lambda a, b: a + b), x, x)
    assert cost.flops == 1000 and cost.bytes_accessed == 12 * 1000
    assert cost.intensity == pytest.approx(models.roofline.elementwise_intensity(1, 2, 1, 4))


def test_xla_cost_counts_transcendentals_separately():
    x = jnp.ones((512,), jnp.float32)
    cost = measure.roofline.xla_cost(jnp.exp, x)
    assert cost.transcendentals == 512


def test_cost_intensity_needs_memory_traffic():
    with pytest.raises(ValueError, match="no memory"):
        measure.roofline.Cost(1.0, 0.0, 0.0).intensity


def test_unfused_cost_counts_more_bytes_than_the_fused_program():
    import jax.numpy as jnp

    x = jnp.ones(1 << 16, jnp.float32)
    f = lambda a: jnp.exp(a * 2 + 1)  # noqa: E731
    fused, unfused = measure.roofline.xla_cost(f, x), measure.roofline.unfused_cost(f, x)
    assert unfused is not None
    assert fused.bytes_accessed == pytest.approx(2 * 4 * x.size, rel=0.01)  # read x, write the result
    assert unfused.bytes_accessed > 2 * fused.bytes_accessed
    assert unfused.flops == fused.flops == 2 * x.size
    with pytest.raises(TypeError):
        measure.roofline.unfused_cost(3)


@pytest.mark.parametrize("analysis", [
    {"flops": -1.0, "bytes accessed": -1.0},            # jax 0.4.26-0.4.31 on the CPU: unknown
    {"flops": 2048.0, "bytes accessed": -1.0},
    [{"flops": -1.0, "bytes accessed": 100.0}],         # one dict per device, older JAX
    {}, [], None,
])
def test_unknown_counts_give_no_cost_instead_of_numbers(analysis):
    assert measure.roofline._cost(analysis) is None


def test_known_counts_give_a_cost_and_a_missing_flops_entry_is_zero():
    assert measure.roofline._cost([{"flops": 8.0, "bytes accessed": 48.0}]) == measure.roofline.Cost(8.0, 48.0, 0.0)
    assert measure.roofline._cost({"bytes accessed": 64.0, "transcendentals": 4.0}) == \
        measure.roofline.Cost(0.0, 64.0, 4.0)


def test_repeated_add_adds_y_steps_times():
    x, y = jnp.arange(1000, dtype=jnp.float32), jnp.full((1000,), 0.5, jnp.float32)
    out = measure.roofline.repeated_add(7)(x, y)
    np.testing.assert_allclose(np.asarray(out), np.arange(1000) + 7 * 0.5)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="steps="):
            measure.roofline.repeated_add(bad)


def test_cache_resident_elements_follow_the_backend_and_the_l2_size():
    cpu = device.describe("cpu", "cpu")
    assert measure.roofline.cache_resident_elements(cpu) == measure.roofline.CPU_CACHED_ELEMENTS
    assert measure.roofline.cache_resident_elements(device.describe("tpu", "TPU v5 lite")) is None
    for kind in ("NVIDIA H100 80GB HBM3", "Tesla T4"):
        info = device.describe("gpu", kind)
        n, l2 = measure.roofline.cache_resident_elements(info), info.chip.value("l2_cache")
        # three float32 arrays fill at most half the L2, and twice as many elements would not
        assert n & (n - 1) == 0 and 12 * n <= l2 / 2 < 12 * 2 * n
    with pytest.warns(specs.UnknownDeviceWarning):
        unknown = device.describe("gpu", "Some Future GPU")
    assert measure.roofline.cache_resident_elements(unknown) == measure.roofline.CPU_CACHED_ELEMENTS
    with pytest.raises(TypeError, match="info="):
        measure.roofline.cache_resident_elements("cpu")
