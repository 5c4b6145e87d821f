import numpy as np
import pytest

from accelbook.checks import positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(200)])
def test_positive_int_accepts_integers_from_one(value):
    assert positive_int("n", value) == int(value) and type(positive_int("n", value)) is int


@pytest.mark.parametrize("value", [0, -2, 2.0, 1.5, True, np.bool_(True), "3", None])
def test_positive_int_names_the_argument_and_the_value(value):
    with pytest.raises(ValueError, match=rf"^rows={value!r} must be a positive integer$".replace("(", r"\(").replace(")", r"\)")):
        positive_int("rows", value)


from accelbook import checks  # noqa: E402


@pytest.mark.parametrize("value", [3, 2.5, np.int64(3), np.float32(2.5), np.uint8(7)])
def test_real_accepts_python_and_numpy_scalars(value):
    assert checks.real("x", value, positive=True) == float(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), "2", None, float("nan"), float("inf"), 2 ** 64,
                                   [1.0], np.array([1.0, 2.0]), 1 + 2j, object()])
def test_real_rejects_non_numbers_naming_the_argument(value):
    with pytest.raises(ValueError, match=r"^peak_flops="):
        checks.real("peak_flops", value)


@pytest.mark.parametrize("kw, value", [({"positive": True}, 0), ({"nonnegative": True}, -1e-9),
                                       ({"minimum": 1}, 0.5), ({"maximum": 1}, 1.5)])
def test_real_bounds(kw, value):
    with pytest.raises(ValueError, match="x="):
        checks.real("x", value, **kw)


def test_real_inf_only_when_not_finite_and_nan_never():
    assert checks.real("x", float("inf"), finite=False) == float("inf")
    with pytest.raises(ValueError):
        checks.real("x", float("nan"), finite=False)


def test_real_arrays_when_allowed():
    out = checks.real("x", [1, 2, 3], positive=True, allow_array=True)
    assert out.dtype == float and out.tolist() == [1.0, 2.0, 3.0]
    for bad in ([], [True, False], ["1"], [1.0, float("nan")], [0.0, 1.0], [2 ** 60]):
        with pytest.raises(ValueError, match="x="):
            checks.real("x", bad, positive=True, allow_array=True)


def test_positive_int_maximum_and_huge_ints():
    assert checks.positive_int("n", 2 ** 53) == 2 ** 53
    with pytest.raises(ValueError, match=r"n=9007199254740993 must be a positive integer <= 2\*\*53"):
        checks.positive_int("n", 2 ** 53 + 1)
    with pytest.raises(ValueError, match="<= 10"):
        checks.positive_int("n", 11, maximum=10)


def test_nonneg_int_and_integer():
    assert checks.nonneg_int("q", 0) == 0 and checks.nonneg_int("q", np.int16(4)) == 4
    for bad in (-1, 1.0, True, "1", None, 2 ** 54):
        with pytest.raises(ValueError, match="q="):
            checks.nonneg_int("q", bad)
    assert checks.integer("i", -5, minimum=-10) == -5


def test_boolean_only_bools():
    assert checks.boolean("fused", np.bool_(True)) is True
    for bad in (0, 1, "True", None, 1.0):
        with pytest.raises(ValueError, match="fused=.* must be True or False"):
            checks.boolean("fused", bad)


def test_one_of_does_not_confuse_bools_with_numbers():
    assert checks.one_of("d", "fp32", ("fp32", "bf16")) == "fp32"
    for bad in ("fp64", True, ["fp32"], None, np.array([1, 2])):
        with pytest.raises(ValueError, match=r"d=.* is not allowed; allowed: 'fp32', 'bf16', 1"):
            checks.one_of("d", bad, ("fp32", "bf16", 1))


def test_sequence_rejects_strings_scalars_and_empty():
    assert checks.sequence("s", (1, 2), of=checks.positive_int) == [1, 2]
    assert checks.sequence("s", iter([3])) == [3]
    for bad in ("ab", None, 3, {"a": 1}, []):
        with pytest.raises(ValueError, match="s="):
            checks.sequence("s", bad)
    with pytest.raises(ValueError, match=r"s\[1\]=0 must be a positive integer"):
        checks.sequence("s", [1, 0], of=checks.positive_int)


def test_instance_and_callable_raise_type_errors():
    assert checks.instance("x", 3, int) == 3
    with pytest.raises(TypeError, match=r"ax=None must be a .*Axes \(got NoneType\)"):
        import matplotlib.axes
        checks.instance("ax", None, matplotlib.axes.Axes)
    with pytest.raises(TypeError, match="fn=3 must be callable"):
        checks.callable_("fn", 3)


def test_finite_result_names_the_inputs():
    assert checks.finite_result({"a": 1.0}, 2.0) == 2.0
    with pytest.raises(ValueError, match=r"a=1e\+300, b=1e-300: the result is not finite"):
        checks.finite_result({"a": 1e300, "b": 1e-300}, 1e300 / 1e-300)
    with pytest.raises(ValueError):
        checks.finite_result("x", np.array([1.0, np.inf]))


def test_size_limit_and_show():
    checks.size_limit("n", 10, 100, 1000, "bytes")
    with pytest.raises(ValueError, match=r"n=10\*\*9 is too large|n=1000000000 is too large"):
        checks.size_limit("n", 10 ** 9, 8e9, 1e9, "bytes")
    assert len(checks.show("x" * 1000)) <= 80
