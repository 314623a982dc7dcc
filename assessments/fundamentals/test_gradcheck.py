"""The gradient checker itself, checked: every backward in the fundamentals is certified by it, so
a checker that reports agreement too easily would certify wrong gradients.

Pinned here: the stencils' errors are the Taylor remainders they must be (a central difference
is off by h^2/6 f''', the five-point stencil by O(h^4)), the comparison numbers are CS231n's
definitions exactly, and a NaN is never read as agreement.
"""
import numpy as np
import pytest

from implementations.fundamentals.gradcheck import (eval_numerical_gradient, eval_numerical_gradient_array,
                                                    rel_error, tensor_rel_error)

H = 1e-3


def sine_sum(weights: np.ndarray):
    """f(x) = sum(w * sin(x)): f' = w cos(x), f''' = -w cos(x), so the remainders are known."""
    return lambda x: float(np.sum(weights * np.sin(x)))


def test_central_difference_is_off_by_its_taylor_remainder(evidence):
    rng = np.random.default_rng(0)
    x, w = rng.uniform(-3, 3, size=(3, 4)), rng.uniform(0.5, 2.0, size=(3, 4))
    exact = w * np.cos(x)
    two_point = eval_numerical_gradient(sine_sum(w), x.copy(), h=H, order=2)
    # (f(x+h) - f(x-h)) / 2h = f' + h^2/6 f''' + O(h^4): the deviation is -h^2/6 w cos(x)
    assert np.allclose(two_point - exact, -H**2 / 6 * exact, rtol=1e-3, atol=1e-12)
    five_point = eval_numerical_gradient(sine_sum(w), x.copy(), h=H)  # order 4 is the default
    evidence.metric("two_point_max_error", float(np.max(np.abs(two_point - exact))))
    evidence.metric("five_point_max_error", float(np.max(np.abs(five_point - exact))), threshold=1e-11,
                    direction="lower", key=True)
    assert np.max(np.abs(five_point - exact)) < 1e-11
    assert np.max(np.abs(two_point - exact)) > 1e3 * np.max(np.abs(five_point - exact))


def test_checker_restores_its_input_and_works_in_float64():
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    before = x.copy()
    grad = eval_numerical_gradient(lambda z: float(np.sum(z.astype(np.float64) ** 2)), x, h=1e-2)
    assert np.array_equal(x, before), "the input must be restored after each perturbation"
    assert grad.dtype == np.float64
    assert np.allclose(grad, 2 * before.astype(np.float64), atol=1e-5)


def test_array_form_is_the_gradient_of_the_weighted_sum_at_the_given_order():
    rng = np.random.default_rng(1)
    x, df = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    for order in (2, 4):
        via_array = eval_numerical_gradient_array(np.sin, x.copy(), df, h=H, order=order)
        direct = eval_numerical_gradient(lambda z: float(np.sum(np.sin(z) * df)), x.copy(), h=H, order=order)
        assert np.array_equal(via_array, direct), order
    two = eval_numerical_gradient_array(np.sin, x.copy(), df, h=H, order=2)
    assert np.max(np.abs(two - df * np.cos(x))) > 1e-9, "order=2 must reach the two-point stencil"


def test_order_must_be_two_or_four():
    with pytest.raises(ValueError, match="order must be 2 or 4, got 3"):
        eval_numerical_gradient(np.sum, np.zeros(2), order=3)


def test_relative_errors_are_cs231ns_definitions():
    # elementwise: max |x - y| / max(1e-8, |x| + |y|)
    assert rel_error([1.0, 0.1], [1.1, 0.2]) == pytest.approx(max(0.1 / 2.1, 0.1 / 0.3), rel=1e-12)
    assert rel_error([0.0], [1e-10]) == pytest.approx(1e-10 / 1e-8, rel=1e-12)  # the floor
    assert rel_error([3, 4], [3, 4]) == 0.0
    # over the tensor: max |x - y| / max(1e-8, max(|x| + |y|))
    assert tensor_rel_error([1.0, 1e-8], [1.0, 3e-8]) == pytest.approx(2e-8 / 2.0, rel=1e-12)
    assert tensor_rel_error([0.2, 0.1], [0.3, 0.1]) == pytest.approx(0.1 / 0.5, rel=1e-12)
    assert tensor_rel_error([0.0], [1e-10]) == pytest.approx(1e-10 / 1e-8, rel=1e-12)


def test_a_nan_is_never_agreement():
    for error in (rel_error, tensor_rel_error):
        value = error([1.0, np.nan], [1.0, 1.0])
        assert not value <= 1e-7, f"{error.__name__} must not report a NaN as a small error"
