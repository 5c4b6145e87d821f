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
