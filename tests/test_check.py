"""Every diagnosis of mnistnet.check: each classic mistake is recognised, with the right hint.

Each test writes the mistake the way a learner would, runs the checker and
asserts on the finding's kind and on the key words of its sentence.
"""

import numpy as np
import pytest

from mnistnet import bugs
from mnistnet.check import (BATCH, check_backprop, check_deltas, check_forward,
                            explain_exception, from_network_backprop)
from mnistnet.functions import sigmoid, sigmoid_prime


# --- correct reference implementations, written as a learner would -------------------

def _forward(weights, biases, x):
    W1, W2 = weights
    b1, b2 = biases
    z1 = W1 @ x + b1
    a1 = sigmoid(z1)
    z2 = W2 @ a1 + b2
    return z1, a1, z2, sigmoid(z2)


def _onehot(y, n):
    t = np.zeros(n)
    t[y] = 1.0
    return t


def good(weights, biases, x, y):
    """One-sample backprop, correct."""
    W1, W2 = weights
    z1, a1, z2, a2 = _forward(weights, biases, x)
    delta2 = (a2 - _onehot(y, len(a2))) * sigmoid_prime(z2)
    delta1 = (W2.T @ delta2) * sigmoid_prime(z1)
    return [np.outer(delta1, x), np.outer(delta2, a1)], [delta1, delta2]


def good_batch(weights, biases, X, y):
    """Batch backprop (rows are samples), correct: gradient of the mean."""
    W1, W2 = weights
    b1, b2 = biases
    Z1 = X @ W1.T + b1
    A1 = sigmoid(Z1)
    Z2 = A1 @ W2.T + b2
    A2 = sigmoid(Z2)
    T = np.eye(W2.shape[0])[y]
    D2 = (A2 - T) * sigmoid_prime(Z2)
    D1 = (D2 @ W2) * sigmoid_prime(Z1)
    B = len(X)
    return [D1.T @ X / B, D2.T @ A1 / B], [D1.mean(axis=0), D2.mean(axis=0)]


def one(report):
    """The report's only finding (asserting there is exactly one)."""
    assert not report.ok
    assert len(report.findings) == 1, str(report)
    return report.findings[0]


def text(report):
    return str(report)


# --- correct functions ----------------------------------------------------------------

def test_correct_one_sample_passes():
    r = check_backprop(good)
    assert r.ok and r.form == "one sample"
    assert r.sizes == [[784, 30, 10], [784, 7, 10]]
    assert "OK" in text(r) and "< 1e-7" in text(r)


def test_correct_batch_detected_and_passes():
    r = check_backprop(good_batch)
    assert r.ok and r.form == "batch"


def test_form_can_be_forced():
    assert check_backprop(good, batched=False).ok
    r = check_backprop(good, batched=True)
    assert not r.ok and r.form == "batch"
    assert check_backprop(good_batch, batched=True).ok


def test_network_backprop_via_adapter_passes():
    assert check_backprop(from_network_backprop(bugs.correct_backprop)).ok


def test_report_is_deterministic_and_renders():
    assert text(check_backprop(good)) == text(check_backprop(good))
    md = check_backprop(good)._repr_markdown_()
    assert "| dW1 |" in md and "OK" in md


def test_checker_does_not_change_callers_arrays():
    seen = []

    def spy(weights, biases, x, y):
        seen.append([W.copy() for W in weights])
        return good(weights, biases, x, y)

    check_backprop(spy)
    check_backprop(spy)
    np.testing.assert_array_equal(seen[0][0], seen[2][0])      # the same problem every time


# --- exceptions, explained ----------------------------------------------------------------

def missing_T(weights, biases, x, y):
    W1, W2 = weights
    z1, a1, z2, a2 = _forward(weights, biases, x)
    delta2 = (a2 - _onehot(y, len(a2))) * sigmoid_prime(z2)
    delta1 = (W2 @ delta2) * sigmoid_prime(z1)
    return [np.outer(delta1, x), np.outer(delta2, a1)], [delta1, delta2]


def test_exception_W2_at_delta2_explained_with_shapes_and_transpose():
    f = one(check_backprop(missing_T))
    assert f.kind == "exception"
    m = f.message
    assert "`W2 @ delta2`" in m and "(10, 30)" in m and "(10,)" in m
    assert "30 ≠ 10" in m and "`W2.T @ delta2` works" in m and "(30,)" in m


def np_dot_missing_T(weights, biases, x, y):
    W1, W2 = weights
    z1, a1, z2, a2 = _forward(weights, biases, x)
    d2 = (a2 - _onehot(y, len(a2))) * sigmoid_prime(z2)
    d1 = np.dot(W2, d2) * sigmoid_prime(z1)
    return [np.outer(d1, x), np.outer(d2, a1)], [d1, d2]


def test_exception_np_dot_explained_in_the_learners_spelling():
    m = one(check_backprop(np_dot_missing_T)).message
    assert "`np.dot(W2, d2)`" in m and "`np.dot(W2.T, d2)` works" in m


def batch_missing_row_form(weights, biases, X, y):
    W1, W2 = weights
    b1, b2 = biases
    Z1 = X @ W1.T + b1
    A1 = sigmoid(Z1)
    Z2 = A1 @ W2.T + b2
    D2 = (sigmoid(Z2) - np.eye(10)[y]) * sigmoid_prime(Z2)
    D1 = (D2 @ W2.T) * sigmoid_prime(Z1)
    return [D1.T @ X / len(X), D2.T @ A1 / len(X)], [D1.mean(0), D2.mean(0)]


def test_exception_batch_delta_at_W_T_suggests_delta_at_W():
    r = check_backprop(batch_missing_row_form)
    f = one(r)
    assert r.form == "batch" and f.kind == "exception"
    assert "`D2 @ W2.T`" in f.message and "`D2 @ W2` works" in f.message
    assert f"({BATCH}, 30)" in f.message and "Δ @ W backward" in f.message


def broadcast(weights, biases, x, y):
    W1, W2 = weights
    z1, a1, z2, a2 = _forward(weights, biases, x)
    d2 = (a2 - _onehot(y, len(a2))) * sigmoid_prime(z2)
    d1 = d2 * sigmoid_prime(z1)
    return [np.outer(d1, x), np.outer(d2, a1)], [d1, d2]


def test_exception_broadcast_names_both_shapes():
    m = one(check_backprop(broadcast)).message
    assert "`d2 * sigmoid_prime(z1)`" in m and "(10,)" in m and "(30,)" in m
    assert "elementwise" in m


def name_error(weights, biases, x, y):
    return undefined_name(x)     # noqa: F821


def test_other_exception_reported_not_raised():
    f = one(check_backprop(name_error))
    assert f.kind == "exception" and "NameError" in f.message and "undefined_name" in f.message


def test_explain_exception_directly():
    W2, delta2 = np.zeros((10, 30)), np.zeros(10)
    try:
        W2 @ delta2
    except ValueError as e:
        m = explain_exception(e)
    assert "`W2 @ delta2`" in m and "`W2.T @ delta2` works" in m


def test_bug_from_registry_missing_transpose_explained():
    f = one(check_backprop(from_network_backprop(bugs.missing_transpose)))
    assert f.kind == "exception" and "`delta @ net.weights[l]` works" in f.message


# --- shapes -------------------------------------------------------------------------

def outer_swapped(weights, biases, x, y):
    w, b = good(weights, biases, x, y)
    return [np.outer(x, b[0]), w[1]], b


def test_dW1_outer_arguments_swapped():
    f = one(check_backprop(outer_swapped))
    assert f.kind == "transpose" and f.arrays == ["dW1"]
    assert "(784, 30)" in f.message and "expected (30, 784)" in f.message
    assert "swap the arguments" in f.message and "np.outer(δ1, x)" in f.message
    assert "values are right" in f.message


def batch_transposed_dW(weights, biases, X, y):
    w, b = good_batch(weights, biases, X, y)
    return [w[0].T, w[1]], b


def test_batch_dW_transposed():
    f = one(check_backprop(batch_transposed_dW))
    assert f.kind == "transpose" and "Δᵀ @ A_prev" in f.message


def test_dW_transposed_and_also_wrong_values():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [2 * w[0].T, w[1]], b

    r = check_backprop(fn)
    assert {"transpose", "factor"} <= r.kinds
    assert "values are right" not in text(r)


def test_weight_gradient_with_unrelated_shape():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [w[0][:, :100], w[1]], b

    f = one(check_backprop(fn))
    assert f.kind == "shape" and "(30, 100)" in f.message and "outer(δ1 (30,), x (784,))" in f.message


def reshape_for_T(weights, biases, x, y):
    w, b = good(weights, biases, x, y)
    return [np.outer(x, b[0]).reshape(w[0].shape), w[1]], b


def test_reshape_instead_of_transpose():
    f = one(check_backprop(reshape_for_T))
    assert f.kind == "reshape" and ".reshape(30, 784)" in f.message and ".T" in f.message


def test_per_sample_gradients_not_averaged():
    def fn(weights, biases, X, y):
        w, b = good_batch(weights, biases, X, y)
        return [np.stack([w[0]] * len(X)), w[1]], b

    f = one(check_backprop(fn, batched=True))
    assert f.kind == "per_sample" and "average them over axis 0" in f.message


# --- biases ----------------------------------------------------------------------------

def test_bias_collapsed_to_scalar_one_sample():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return w, [np.sum(b[0]), b[1]]

    f = one(check_backprop(fn))
    assert f.kind == "bias_scalar" and f.arrays == ["db1"]
    assert "single number" in f.message and "δ vector itself" in f.message


def test_bias_collapsed_to_scalar_batch():
    def fn(weights, biases, X, y):
        w, b = good_batch(weights, biases, X, y)
        return w, [b[0], np.float64(b[1].sum())]

    f = one(check_backprop(fn))
    assert f.kind == "bias_scalar" and "axis=0" in f.message


def test_bias_summed_over_wrong_axis():
    f = one(check_backprop(from_network_backprop(bugs.bias_wrong_axis)))
    assert f.kind == "bias_axis" and set(f.arrays) == {"db1", "db2"}
    assert f"({BATCH},)" in f.message and "axis=1" in f.message and "axis=0" in f.message


def test_bias_as_column():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return w, [b[0][:, None], b[1]]

    f = one(check_backprop(fn))
    assert f.kind == "column" and "(30, 1)" in f.message and "1-D" in f.message


def test_bias_keepdims_row_in_batch():
    def fn(weights, biases, X, y):
        w, b = good_batch(weights, biases, X, y)
        return w, [b[0][None, :], b[1]]

    f = one(check_backprop(fn))
    assert f.kind == "column" and "keepdims" in f.message


def test_bias_broadcast_into_matrix():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return w, [b[0], b[1][:, None] + np.zeros(10)]

    f = one(check_backprop(fn))
    assert f.kind == "bias_matrix" and "(10, 10)" in f.message and "broadcast" in f.message


def test_bias_one_row_per_sample():
    def fn(weights, biases, X, y):
        W1, W2 = weights
        b1, b2 = biases
        w, b = good_batch(weights, biases, X, y)
        Z1 = X @ W1.T + b1
        D2 = (sigmoid(sigmoid(Z1) @ W2.T + b2) - np.eye(10)[y]) * \
            sigmoid_prime(sigmoid(Z1) @ W2.T + b2)
        return w, [b[0], D2 / len(X)]

    f = one(check_backprop(fn))
    assert f.kind == "bias_rows" and "mean(axis=0)" in f.message


# --- constant factors and signs -----------------------------------------------------------

def scaled(factor, batch=False):
    base = good_batch if batch else good

    def fn(weights, biases, x, y):
        w, b = base(weights, biases, x, y)
        return [factor * a for a in w], [factor * a for a in b]
    return fn


def test_factor_two_missing_half():
    f = one(check_backprop(scaled(2.0)))
    assert f.kind == "factor" and set(f.arrays) == {"dW1", "db1", "dW2", "db2"}
    assert "‖a - t‖² without the ½" in f.message


def test_factor_half():
    assert "stray ½" in one(check_backprop(scaled(0.5))).message


def test_sign_flipped():
    f = one(check_backprop(scaled(-1.0)))
    assert f.kind == "sign" and "sign is flipped" in f.message and "(t - a2)" in f.message


def test_sign_and_two_together():
    m = one(check_backprop(scaled(-2.0))).message
    assert "sign is flipped" in m and "without the ½" in m


def test_summed_not_averaged_factor_B():
    f = one(check_backprop(from_network_backprop(bugs.missing_mean)))
    assert f.kind == "factor" and f"{BATCH}× too large" in f.message
    assert "summed over the batch instead of averaging" in f.message


def test_divided_by_B_twice():
    m = one(check_backprop(scaled(1.0 / BATCH, batch=True))).message
    assert "1/B" in m and "twice" in m


def test_learning_rate_inside_backprop():
    m = one(check_backprop(scaled(0.05))).message
    assert "0.05 times" in m and "learning rate" in m


def test_wrong_sign_bug_from_registry():
    assert one(check_backprop(from_network_backprop(bugs.wrong_sign))).kind == "sign"


# --- σ' mistakes, targets, wrong inputs -------------------------------------------------------

def variant(out="z", hid="z", target="onehot", dW2_from="a"):
    def fn(weights, biases, x, y):
        W1, W2 = weights
        z1, a1, z2, a2 = _forward(weights, biases, x)
        prime = {"z": lambda z, a: sigmoid_prime(z), "a": lambda z, a: sigmoid_prime(a),
                 "none": lambda z, a: 1.0}
        t = _onehot(y, len(a2)) if target == "onehot" else y
        d2 = (a2 - t) * prime[out](z2, a2)
        d1 = (W2.T @ d2) * prime[hid](z1, a1)
        return [np.outer(d1, x), np.outer(d2, a1 if dW2_from == "a" else z1)], [d1, d2]
    return fn


def test_sigma_prime_of_a_at_output():
    f = one(check_backprop(variant(out="a")))
    assert f.kind == "sigma_prime_of_a" and "σ'(a2)" in f.message and "sigmoid_prime(z2)" in f.message
    assert set(f.arrays) == {"dW1", "db1", "dW2", "db2"}


def test_sigma_prime_of_a_in_hidden_layer():
    f = one(check_backprop(variant(hid="a")))
    assert f.kind == "sigma_prime_of_a" and "σ'(a1)" in f.message
    assert set(f.arrays) == {"dW1", "db1"}


def test_sigma_prime_of_a_in_both_layers():
    r = check_backprop(variant(out="a", hid="a"))
    assert r.kinds == {"sigma_prime_of_a"} and len(r.findings) == 2


def test_sigma_prime_of_a_bug_from_registry():
    f = one(check_backprop(from_network_backprop(bugs.sigma_prime_of_a)))
    assert f.kind == "sigma_prime_of_a" and "σ'(a1)" in f.message


def test_missing_sigma_prime_at_output():
    f = one(check_backprop(variant(out="none")))
    assert f.kind == "missing_sigma_prime" and "σ'(z2)" in f.message and "cross-entropy" in f.message


def test_missing_sigma_prime_in_hidden_layer():
    f = one(check_backprop(variant(hid="none")))
    assert f.kind == "missing_sigma_prime" and "σ'(z1)" in f.message and set(f.arrays) == {"dW1", "db1"}


def test_missing_sigma_prime_bug_from_registry():
    assert one(check_backprop(from_network_backprop(bugs.missing_sigma_prime))).kind == \
        "missing_sigma_prime"


def test_label_used_as_target():
    f = one(check_backprop(variant(target="label")))
    assert f.kind == "label_not_onehot" and "one-hot" in f.message


def test_z1_used_for_a1():
    f = one(check_backprop(variant(dW2_from="z")))
    assert f.kind == "z_for_a" and f.arrays == ["dW2"] and "outer(δ2, a1)" in f.message


def test_values_wrong_for_no_known_reason():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [w[0], w[1] + 0.01], b

    f = one(check_backprop(fn))
    assert f.kind == "values" and f.arrays == ["dW2"] and "relative error" in f.message


def test_all_zeros():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [np.zeros_like(w[0]), w[1]], b

    assert one(check_backprop(fn)).kind == "zero"


def test_nan():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [w[0] * np.nan, w[1]], b

    f = one(check_backprop(fn))
    assert f.kind == "nan" and "NaN" in f.message


# --- what fn returns ---------------------------------------------------------------------------

def test_returned_none():
    def fn(weights, biases, x, y):
        good(weights, biases, x, y)

    f = one(check_backprop(fn))
    assert f.kind == "type" and "forget `return nabla_w, nabla_b`" in f.message


def test_returned_an_array():
    f = one(check_backprop(lambda weights, biases, x, y: good(weights, biases, x, y)[0][0]))
    assert f.kind == "type" and "pair (nabla_w, nabla_b)" in f.message


def test_returned_four_arrays():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return w[0], b[0], w[1], b[1]

    f = one(check_backprop(fn))
    assert f.kind == "count" and "4 things" in f.message


def test_list_with_one_array():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [w[1]], b

    f = one(check_backprop(fn))
    assert f.kind == "count" and "nabla_w holds 1" in f.message


def test_lists_output_layer_first():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return w[::-1], b[::-1]

    f = one(check_backprop(fn))
    assert f.kind == "order" and "[dW1, dW2]" in f.message and "nabla_w[::-1]" in f.message


def test_pair_swapped():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return b, w

    f = one(check_backprop(fn))
    assert f.kind == "order" and "(nabla_b, nabla_w)" in f.message


# --- inputs changed, an updated W2, sizes written into the code ------------------------------

def updates_inside(weights, biases, x, y):
    W1, W2 = weights
    z1, a1, z2, a2 = _forward(weights, biases, x)
    d2 = (a2 - _onehot(y, len(a2))) * sigmoid_prime(z2)
    dW2 = np.outer(d2, a1)
    W2 -= 3.0 * dW2                                    # the update, too early and in place
    d1 = (W2.T @ d2) * sigmoid_prime(z1)
    return [np.outer(d1, x), dW2], [d1, d2]


def test_weights_updated_in_place_and_delta1_from_new_W2():
    r = check_backprop(updates_inside)
    assert r.kinds == {"mutated_input", "updated_w2"}
    mutated = next(f for f in r.findings if f.kind == "mutated_input")
    assert mutated.arrays == ["W2"] and "in place" in mutated.message and "η ≈ 3" in mutated.message
    upd = next(f for f in r.findings if f.kind == "updated_w2")
    assert set(upd.arrays) == {"dW1", "db1"} and "already updated" in upd.message


def test_delta1_from_updated_W2_without_mutation_bug_from_registry():
    f = one(check_backprop(from_network_backprop(bugs.updated_weights)))
    assert f.kind == "updated_w2" and "η ≈ 3" in f.message


def test_other_mutation_named():
    def fn(weights, biases, x, y):
        out = good(weights, biases, x, y)
        biases[0][:] = 0.0
        return out

    f = one(check_backprop(fn))
    assert f.kind == "mutated_input" and f.arrays == ["b1"]


def test_size_written_into_the_code_caught_on_second_network():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [w[0].reshape(30, 784), w[1]], b

    r = check_backprop(fn)
    f = one(r)
    assert "right on [784, 30, 10] but not on [784, 7, 10]" in f.message
    assert "size written into your code" in f.message


# --- every planted bug of mnistnet.bugs gets its own diagnosis ---------------------------------

EXPECTED_KIND = {
    "missing_transpose": "exception", "sigma_prime_of_a": "sigma_prime_of_a",
    "missing_sigma_prime": "missing_sigma_prime", "wrong_sign": "sign",
    "bias_wrong_axis": "bias_axis", "missing_mean": "factor", "updated_weights": "updated_w2",
}


@pytest.mark.parametrize("name", sorted(bugs.BUGS))
def test_every_registered_bug_recognised(name):
    r = check_backprop(from_network_backprop(bugs.BUGS[name][0]))
    assert not r.ok
    assert r.kinds == {EXPECTED_KIND[name]}, str(r)


# --- check_deltas ---------------------------------------------------------------------------------

def deltas(weights, biases, x, y):
    w, b = good(weights, biases, x, y)
    return list(b)


def deltas_batch(weights, biases, X, y):
    W1, W2 = weights
    b1, b2 = biases
    Z1 = X @ W1.T + b1
    Z2 = sigmoid(Z1) @ W2.T + b2
    D2 = (sigmoid(Z2) - np.eye(10)[y]) * sigmoid_prime(Z2)
    return [(D2 @ W2) * sigmoid_prime(Z1), D2]


def test_deltas_correct_both_forms():
    assert check_deltas(deltas).ok and check_deltas(deltas).form == "one sample"
    r = check_deltas(deltas_batch)
    assert r.ok and r.form == "batch"


def test_deltas_reversed():
    f = one(check_deltas(lambda w, b, x, y: deltas(w, b, x, y)[::-1]))
    assert f.kind == "order" and "[δ1, δ2]" in f.message


def test_deltas_sign():
    assert one(check_deltas(lambda w, b, x, y: [-d for d in deltas(w, b, x, y)])).kind == "sign"


def test_deltas_factor_two():
    assert "without the ½" in one(check_deltas(lambda w, b, x, y: [2 * d for d in deltas(w, b, x, y)])).message


def test_deltas_sigma_prime_of_a_and_missing():
    assert one(check_deltas(lambda w, b, x, y: variant(out="a")(w, b, x, y)[1])).kind == \
        "sigma_prime_of_a"
    f = one(check_deltas(lambda w, b, x, y: variant(hid="none")(w, b, x, y)[1]))
    assert f.kind == "missing_sigma_prime" and f.arrays == ["δ1"]


def test_deltas_batch_divided_by_B():
    def fn(weights, biases, X, y):
        return [d / len(X) for d in deltas_batch(weights, biases, X, y)]

    f = one(check_deltas(fn))
    assert f.kind == "factor" and "per sample" in f.message and "belongs to the gradients" in f.message


def test_deltas_batch_transposed():
    r = check_deltas(lambda weights, biases, X, y: [d.T for d in deltas_batch(weights, biases, X, y)])
    assert r.form == "batch" and r.kinds == {"transpose"}
    assert "one row per sample" in r.findings[0].message
    assert "right for one sample, but not for a batch" in text(r)


def test_deltas_column():
    f = one(check_deltas(lambda w, b, x, y: [deltas(w, b, x, y)[0][:, None], deltas(w, b, x, y)[1]]))
    assert f.kind == "column" and "(30, 1)" in f.message


def test_deltas_exception():
    f = one(check_deltas(lambda w, b, x, y: missing_T(w, b, x, y)[1]))
    assert f.kind == "exception" and "`W2.T @ delta2` works" in f.message


def test_deltas_updated_W2():
    f = one(check_deltas(lambda w, b, x, y: updates_inside([w[0], w[1].copy()], b, x, y)[1]))
    assert f.kind == "updated_w2"


def test_deltas_not_a_list():
    assert one(check_deltas(lambda w, b, x, y: deltas(w, b, x, y)[0])).kind == "type"


# --- check_forward -------------------------------------------------------------------------------

def fwd(weights, biases, x):
    return _forward(weights, biases, x)[3]


def fwd_lists(weights, biases, x):
    z1, a1, z2, a2 = _forward(weights, biases, x)
    return [z1, z2], [x, a1, a2]


def test_forward_correct_output_and_lists():
    assert check_forward(fwd).ok
    assert check_forward(fwd_lists).ok
    assert check_forward(lambda w, b, x: ([_forward(w, b, x)[0], _forward(w, b, x)[2]],
                                          [_forward(w, b, x)[1], _forward(w, b, x)[3]])).ok


def test_forward_batch():
    def fn(weights, biases, X):
        return sigmoid(sigmoid(X @ weights[0].T + biases[0]) @ weights[1].T + biases[1])

    r = check_forward(fn)
    assert r.ok and r.form == "batch"


def test_forward_output_left_as_z2():
    f = one(check_forward(lambda w, b, x: _forward(w, b, x)[2]))
    assert f.kind == "wrong_array" and "holds z2" in f.message


def test_forward_no_hidden_sigmoid():
    f = one(check_forward(lambda w, b, x: sigmoid(w[1] @ (w[0] @ x + b[0]) + b[1])))
    assert f.kind == "forward_variant" and "hidden layer has no sigmoid" in f.message


def test_forward_no_biases():
    f = one(check_forward(lambda w, b, x: sigmoid(w[1] @ sigmoid(w[0] @ x))))
    assert f.kind == "forward_variant" and "biases are missing" in f.message


def test_forward_transposed_weights_exception():
    def fn(weights, biases, x):
        W1, W2 = weights
        a1 = sigmoid(W1.T @ x + biases[0])
        return sigmoid(W2 @ a1 + biases[1])

    f = one(check_forward(fn))
    assert f.kind == "exception" and "`W1.T @ x`" in f.message and "`W1 @ x` works" in f.message
    assert "stored (out, in)" in f.message


def test_forward_column_vector():
    def fn(weights, biases, x):
        x = x.reshape(-1, 1)
        a1 = sigmoid(weights[0] @ x + biases[0][:, None])
        return sigmoid(weights[1] @ a1 + biases[1][:, None])

    f = one(check_forward(fn))
    assert f.kind == "column" and "(10, 1)" in f.message


def test_forward_column_plus_bias_broadcast():
    def fn(weights, biases, x):
        x = x.reshape(-1, 1)
        a1 = sigmoid(weights[0] @ x + biases[0][:, None])
        return sigmoid(weights[1] @ a1 + biases[1])

    f = one(check_forward(fn))
    assert f.kind == "bias_matrix" and "(10, 10)" in f.message


def test_forward_batch_transposed():
    def fn(weights, biases, X):
        A1 = sigmoid(weights[0] @ X.T + biases[0][:, None])
        return sigmoid(weights[1] @ A1 + biases[1][:, None])

    f = one(check_forward(fn))
    assert f.kind == "transpose" and "X @ W.T + b" in f.message


def test_forward_wrong_array_in_lists():
    def fn(weights, biases, x):
        z1, a1, z2, a2 = _forward(weights, biases, x)
        return [z1, z2], [x, a1, z2]

    f = one(check_forward(fn))
    assert f.arrays == ["a2"] and "holds z2" in f.message


def test_forward_lists_wrong_length():
    f = one(check_forward(lambda w, b, x: ([_forward(w, b, x)[0]], [x])))
    assert f.kind == "count"


def test_forward_mutates_input():
    def fn(weights, biases, x):
        x *= 2
        return fwd(weights, biases, x / 2)

    assert "mutated_input" in check_forward(fn).kinds


def test_explain_exception_without_the_line():
    W2, delta2 = np.zeros((10, 30)), np.zeros(10)
    candidates = {"W2 @ delta2": lambda: W2 @ delta2}
    try:
        candidates["W2 @ delta2"]()
    except ValueError as e:
        m = explain_exception(e, show_line=False)
    assert m.startswith("ValueError: `W2 @ delta2` multiplies") and "lambda" not in m


# --- a few more branches ----------------------------------------------------------------------

def test_float32_result_accepted_within_its_precision():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [a.astype(np.float32) for a in w], [a.astype(np.float32) for a in b]

    assert check_backprop(fn).ok


def test_values_wrong_only_on_the_second_network():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return w, [b[0] if len(b[0]) == 30 else 3 * b[0], b[1]]

    f = one(check_backprop(fn))
    assert f.kind == "other_size" and "right on [784, 30, 10] but not on [784, 7, 10]" in f.message


def test_bias_returned_as_transposed_batch_deltas():
    def fn(weights, biases, X, y):
        w, b = good_batch(weights, biases, X, y)
        W1, W2 = weights
        Z1 = X @ W1.T + biases[0]
        Z2 = sigmoid(Z1) @ W2.T + biases[1]
        D2 = (sigmoid(Z2) - np.eye(10)[y]) * sigmoid_prime(Z2)
        return w, [b[0], D2.T]

    f = one(check_backprop(fn))
    assert f.kind == "bias_matrix" and f"(10, {BATCH})" in f.message and "averaged over the samples" in f.message


def test_forward_nan_and_deltas_nan():
    assert "nan" in check_forward(lambda w, b, x: fwd(w, b, x) * np.nan).kinds
    assert "nan" in check_deltas(lambda w, b, x, y: [d * np.nan for d in deltas(w, b, x, y)]).kinds


def test_forward_no_sigmoid_anywhere():
    f = one(check_forward(lambda w, b, x: w[1] @ (w[0] @ x + b[0]) + b[1]))
    assert f.kind == "forward_variant" and "no sigmoid anywhere" in f.message


def test_forward_returns_none_and_deltas_returns_none():
    assert one(check_forward(lambda w, b, x: None)).kind == "type"
    assert "return [delta1, delta2]" in one(check_deltas(lambda w, b, x, y: None)).message


def test_markdown_report_lists_problems():
    md = check_backprop(variant(out="a"))._repr_markdown_()
    assert "**Not yet**" in md and "σ'(a2)" in md and "| dW1 |" in md


# --- numpy < 1.25 and Python 3.10 ------------------------------------------------------------

def _through_array_function_internals(monkeypatch, *names):
    """numpy < 1.25 runs np.dot, np.outer, … through a generated Python wrapper whose frame
    is named '<__array_function__ internals>' and has no source: imitate it."""
    for name in names:
        scope = {"implementation": getattr(np, name)}
        exec(compile(f"def {name}(*args, **kwargs):\n    return implementation(*args, **kwargs)\n",
                     "<__array_function__ internals>", "exec"), scope)
        monkeypatch.setattr(np, name, scope[name])


def test_numpy_wrapper_frames_without_source_are_skipped(monkeypatch):
    _through_array_function_internals(monkeypatch, "dot", "outer")
    m = one(check_backprop(np_dot_missing_T)).message
    assert "`np.dot(W2, d2)`" in m and "`np.dot(W2.T, d2)` works" in m
    delta2 = np.zeros(10)
    try:
        np.outer(delta2, "x")
    except TypeError as e:
        m = explain_exception(e)
    assert "in `np.outer(delta2, \"x\")`" in m


def test_bracketed_file_names_with_source_are_the_learners_code():
    import linecache
    source = "def fn(W2, delta2):\n    return W2 @ delta2\n"
    name = "<ipython-input-7-0123456789ab>"              # IPython's name for a cell's code
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    scope = {}
    exec(compile(source, name, "exec"), scope)
    try:
        scope["fn"](np.zeros((10, 30)), np.zeros(10))
    except ValueError as e:
        m = explain_exception(e)
    finally:
        del linecache.cache[name]
    assert "in `return W2 @ delta2`" in m and "`W2.T @ delta2` works" in m


@pytest.fixture
def python_310(monkeypatch):
    """Python 3.10 has no co_positions: the failing expression must be found from the line."""
    from mnistnet import explain
    monkeypatch.setattr(explain, "_positions", lambda code: None)


def test_without_positions_products_and_broadcasts_are_still_explained(python_310):
    m = one(check_backprop(missing_T)).message
    assert "`W2 @ delta2`" in m and "(10, 30)" in m and "(10,)" in m
    assert "30 ≠ 10" in m and "`W2.T @ delta2` works" in m and "(30,)" in m
    m = one(check_backprop(np_dot_missing_T)).message
    assert "`np.dot(W2, d2)`" in m and "`np.dot(W2.T, d2)` works" in m
    f = one(check_backprop(batch_missing_row_form))
    assert "`D2 @ W2.T`" in f.message and "`D2 @ W2` works" in f.message
    m = one(check_backprop(broadcast)).message
    assert "`d2 * sigmoid_prime(z1)`" in m and "(10,)" in m and "(30,)" in m
    assert "elementwise" in m
    f = one(check_backprop(from_network_backprop(bugs.missing_transpose)))
    assert "`delta @ net.weights[l]` works" in f.message


def test_without_positions_the_failing_one_of_several_operations_is_named(python_310):
    W1, W2, x, b = np.zeros((30, 784)), np.zeros((10, 30)), np.zeros(784), np.zeros(30)
    try:
        z = (W1 @ x + b) + (W2 @ x) * np.outer(b, b).dot(b)
    except ValueError as e:
        m = explain_exception(e)
    assert "`W2 @ x` multiplies W2 of shape (10, 30) by x of shape (784,)" in m
    try:
        z = W1.dot(x) + b + W2.dot(x)
    except ValueError as e:
        m = explain_exception(e)
    assert m.startswith("ValueError in `z = W1.dot(x) + b + W2.dot(x)`: ")   # the line, and
    assert "`W2.dot(x)` multiplies" in m and "(30 ≠ 784)" in m             # the product that failed
    try:
        z = (W1 * 2) - np.outer(b, x) + (W2 * x - 1)
    except ValueError as e:
        m = explain_exception(e, show_line=False)
    assert m.startswith("ValueError: `W2 * x` combines shape (10,30) with shape (784,)")
    try:
        z = np.outer(b, x) * (W2 * b)                      # parentheses are quoted as written
    except ValueError as e:
        m = explain_exception(e, show_line=False)
    assert m.startswith("ValueError: `np.outer(b, x) * (W2 * b)` combines shape (30,784)")


def test_without_positions_the_explanation_without_the_line(python_310):
    W2, delta2 = np.zeros((10, 30)), np.zeros(10)
    candidates = {"W2 @ delta2": lambda: W2 @ delta2}
    try:
        candidates["W2 @ delta2"]()
    except ValueError as e:
        m = explain_exception(e, show_line=False)
    assert m.startswith("ValueError: `W2 @ delta2` multiplies") and "lambda" not in m


# --- a template not filled in yet (notebook 08's exercises) ------------------------------------

def test_unfilled_templates_get_a_friendly_not_written_report():
    def forward(weights, biases, x):
        raise NotImplementedError("compute z1, a1, z2 and a2")

    def deltas(weights, biases, x, y):
        raise NotImplementedError

    for checker, fn in ((check_forward, forward), (check_deltas, deltas), (check_backprop, deltas)):
        r = checker(fn)
        assert not r.ok and r.kinds == {"not_written"} and len(r.findings) == 1
        assert "NOT WRITTEN YET" in text(r) and "Traceback" not in text(r)
        assert "still raises NotImplementedError" in text(r) and "going by the name" not in text(r)
        assert "Not written yet" in r._repr_markdown_()
    assert "`forward` still raises NotImplementedError (compute z1, a1, z2 and a2)" in \
        text(check_forward(forward))


# --- explanations where the learner's code fails (issue 11 §4) -----------------------------------

class _Layer:
    pass


def _transposed_update_in_place():
    layer = _Layer()
    layer.weights = np.zeros((30, 784))
    x, delta1, lr = np.zeros(784), np.zeros(30), 0.05
    try:
        grad = np.atleast_2d(x).T * np.atleast_2d(delta1)          # (784, 30): operands swapped
        layer.weights -= lr * grad
    except ValueError as e:
        assert "(30,784) (784,30) (30,784)" in str(e)
        return explain_exception(e)


def test_transposed_gradient_applied_in_place_is_named_with_the_fix():
    m = _transposed_update_in_place()
    assert "`layer.weights -= lr * grad`" in m and "(30, 784)" in m and "(784, 30)" in m
    assert "grad is the transpose of layer.weights" in m
    assert "swap the operands of the outer product" in m


def test_transposed_gradient_applied_in_place_without_positions(python_310):
    m = _transposed_update_in_place()
    assert "grad is the transpose of layer.weights" in m and "swap the operands" in m


def test_code_without_source_is_explained_from_the_frames_arrays():
    scope = {}
    exec(compile("def backward(W2, d2):\n    d1 = W2 @ d2\n    return d1\n", "<stdin>", "exec"),
         scope)
    try:
        scope["backward"](np.zeros((10, 30)), np.zeros(10))
    except ValueError as e:
        m = explain_exception(e)
    assert m.startswith("ValueError at line 2 of `backward` (its source cannot be read")
    assert "W2 (10, 30), d2 (10,)" in m and "`W2.T @ d2` works and gives shape (30,)" in m
    exec(compile("def forward(a, b):\n    return a * b\n", "<string>", "exec"), scope)
    try:
        scope["forward"](np.zeros(10), np.zeros(30))
    except ValueError as e:
        m = explain_exception(e)
    assert "(10,) is the shape of a" in m and "(30,) is the shape of b" in m


def test_without_source_checker_reports_it_too():
    scope = {"np": np, "good": good}
    exec(compile("def fn(weights, biases, x, y):\n    W1, W2 = weights\n"
                 "    return W2 @ np.zeros(10)\n", "<stdin>", "exec"), scope)
    f = one(check_backprop(scope["fn"]))
    assert f.kind == "exception" and "source cannot be read" in f.message


# --- the checker and bad input (issue 12) ---------------------------------------------------------

class BrokenStr(Exception):
    def __str__(self):
        raise RuntimeError("no message for you")


def test_an_exception_with_a_broken_str_is_reported_not_raised():
    def fn(weights, biases, x, y):
        raise BrokenStr()

    f = one(check_backprop(fn))
    assert f.kind == "exception" and "BrokenStr" in f.message and "cannot be shown" in f.message

    def template(weights, biases, x, y):
        raise NotImplementedError(BrokenStr())

    assert check_backprop(template).kinds == {"not_written"}


def test_explaining_never_runs_the_learners_property_getters_again():
    calls = []

    class Net:
        @property
        def W2(self):
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("a getter run twice")
            return np.zeros((10, 30))

    net, delta2 = Net(), np.zeros(10)
    try:
        net.W2 @ delta2
    except ValueError as e:
        m = explain_exception(e)
    assert calls == [1]
    assert m.startswith("ValueError in `net.W2 @ delta2`")


def test_labels_changed_in_place_are_noticed():
    def fn(weights, biases, X, y):
        out = good_batch(weights, biases, X, y)
        y[:] = 0                                       # overwrites the caller's labels
        return out

    f = one(check_backprop(fn))
    assert f.kind == "mutated_input" and f.arrays == ["y"]


def test_huge_gradients_are_not_called_a_factor_of_inf():
    def fn(weights, biases, x, y):
        w, b = good(weights, biases, x, y)
        return [np.full_like(a, 1e308) for a in w], [np.full_like(a, 1e308) for a in b]

    r = check_backprop(fn)
    assert "inf times" not in text(r) and r.kinds == {"overflow"}, text(r)
    assert "1.0e+308" in text(r)


# --- one catalogue of classic mistakes (mnistnet.bugs.MISTAKES) --------------------------------

def test_findings_take_their_kind_and_advice_from_the_catalogue():
    from mnistnet.bugs import MISTAKES
    for name in ("sigma_prime_of_a", "missing_sigma_prime", "wrong_sign", "missing_mean",
                 "bias_wrong_axis", "updated_weights"):
        f = one(check_backprop(from_network_backprop(bugs.BUGS[name][0])))
        mistake = MISTAKES[name]
        assert f.kind == mistake.kind
        first_words = mistake.advice.split("{")[0][:25]
        assert first_words.lower() in f.message.lower(), (name, f.message)
    assert set(bugs.BUGS) <= set(MISTAKES)
    assert all(m.backprop is bugs.BUGS[n][0] for n, m in MISTAKES.items() if n in bugs.BUGS)


def test_planted_bugs_use_only_the_networks_public_methods():
    import inspect
    source = inspect.getsource(bugs)
    assert "net._" not in source and ".check_data(" in source and ".forward_batch(" in source


def test_the_verdict_uses_the_numerical_gradient_too(monkeypatch):
    from mnistnet import check
    real = check.numerical_gradient

    def off_by_a_bit(*args, **kwargs):
        num_w, num_b = real(*args, **kwargs)
        return [1.001 * g for g in num_w], num_b

    monkeypatch.setattr(check, "numerical_gradient", off_by_a_bit)
    r = check_backprop(good)
    assert not r.ok and r.kinds == {"numerical"}
    assert {a for f in r.findings for a in f.arrays} == {"dW1", "dW2"}
    assert "matches the reference but not the numerical gradient" in text(r)


def test_explaining_never_asks_a_learners_object_for_its_shape(python_310):
    class Sneaky:
        def __len__(self):
            raise RuntimeError("learner code ran")

        def __array__(self, *args, **kwargs):
            raise RuntimeError("learner code ran")

    W2, d2, s, first = np.zeros((10, 30)), np.zeros(10), Sneaky(), True
    try:
        z = s @ d2 if not first else W2 @ d2                # noqa: F841
    except ValueError as e:
        m = explain_exception(e)
    assert "`W2 @ d2` multiplies" in m
