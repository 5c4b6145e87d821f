"""The roofline model against its closed forms, and XLA's cost analysis against hand counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from accelbook import roofline

pos = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(i=pos, p=pos, w=pos)
def test_attainable_is_the_lower_of_the_two_roofs(i, p, w):
    a = roofline.attainable(i, p * 1e9, w * 1e9)
    assert a <= p * 1e9 * (1 + 1e-12) and a <= w * 1e9 * i * (1 + 1e-12)
    assert a == pytest.approx(min(p, w * i) * 1e9)


@given(p=pos, w=pos)
def test_ridge_point_is_where_the_roofs_meet(p, w):
    ridge = roofline.ridge_point(p, w)
    assert ridge == pytest.approx(p / w)
    assert roofline.attainable(ridge, p, w) == pytest.approx(p)
    assert roofline.attainable(ridge / 2, p, w) == pytest.approx(p / 2)


def test_attainable_is_vectorised_and_monotone():
    i = np.geomspace(0.01, 1e4, 200)
    a = roofline.attainable(i, 1e12, 1e11)
    assert a.shape == i.shape and np.all(np.diff(a) >= 0) and a.max() == 1e12


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), [1, -1]])
def test_attainable_rejects_non_positive_input(bad):
    with pytest.raises(ValueError, match="intensity="):
        roofline.attainable(bad, 1e12, 1e11)
    with pytest.raises(ValueError, match="peak_flops="):
        roofline.attainable(1.0, bad, 1e11)


def test_min_time_is_the_slower_of_compute_and_memory():
    assert roofline.min_time(1e12, 1e9, 1e12, 1e11) == pytest.approx(1.0)  # compute-bound
    assert roofline.min_time(1e9, 1e12, 1e12, 1e11) == pytest.approx(10.0)  # memory-bound
    with pytest.raises(ValueError, match="flops=-1"):
        roofline.min_time(-1, 1, 1, 1)
    with pytest.raises(ValueError, match="both be 0"):
        roofline.min_time(0, 0, 1, 1)


@given(n=st.integers(1, 10**5), b=st.sampled_from([1, 2, 4, 8]))
def test_square_matmul_intensity_closed_form(n, b):
    assert roofline.matmul_intensity(n, n, n, b) == pytest.approx(2 * n / (3 * b))


def test_matmul_intensity_rejects_bad_shapes():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="must be a positive integer"):
            roofline.matmul_intensity(bad, 4, 4)


def test_elementwise_intensity():
    assert roofline.elementwise_intensity(1, 2, 1, 4) == pytest.approx(1 / 12)
    with pytest.raises(ValueError, match="inputs"):
        roofline.elementwise_intensity(1, 0, 0)


@pytest.mark.parametrize("m, k, n", [(64, 32, 16), (128, 128, 128), (7, 300, 5)])
def test_xla_cost_of_a_matmul_equals_the_hand_count(m, k, n):
    a, b = jnp.ones((m, k), jnp.float32), jnp.ones((k, n), jnp.float32)
    cost = roofline.xla_cost(lambda x, y: x @ y, a, b)
    assert cost.flops == 2 * m * n * k
    assert cost.bytes_accessed == 4 * (m * k + k * n + m * n)
    assert cost.intensity == pytest.approx(roofline.matmul_intensity(m, n, k, 4))


def test_xla_cost_of_elementwise_add_and_of_a_prejitted_function():
    x = jnp.ones((1000,), jnp.float32)
    cost = roofline.xla_cost(jax.jit(lambda a, b: a + b), x, x)
    assert cost.flops == 1000 and cost.bytes_accessed == 12 * 1000
    assert cost.intensity == pytest.approx(roofline.elementwise_intensity(1, 2, 1, 4))


def test_xla_cost_counts_transcendentals_separately():
    x = jnp.ones((512,), jnp.float32)
    cost = roofline.xla_cost(jnp.exp, x)
    assert cost.transcendentals == 512


def test_cost_intensity_needs_memory_traffic():
    with pytest.raises(ValueError, match="no memory"):
        roofline.Cost(1.0, 0.0, 0.0).intensity
