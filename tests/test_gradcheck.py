"""The gradient check: backprop passes it, and every planted bug fails it."""

import numpy as np
import pytest

from mnistnet import Network
from mnistnet.bugs import BUGS, bias_wrong_axis, correct_backprop, missing_mean, missing_transpose, updated_weights
from mnistnet.gradcheck import check_gradients, numerical_gradient, rel_error, verdict

CONFIGS = [("quadratic", "sigmoid"), ("quadratic", "softmax"),
           ("cross_entropy", "sigmoid"), ("cross_entropy", "softmax")]


def batch(n_in, B, seed=0, n_out=10):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, n_in)), rng.integers(0, n_out, B)


# --- backprop agrees with central differences ---------------------------------------

@pytest.mark.parametrize("cost, output", CONFIGS)
@pytest.mark.parametrize("hidden, B", [(1, 1), (1, 64), (7, 5), (30, 1), (30, 16), (100, 64)])
def test_backprop_passes_for_every_cost_output_hidden_size_and_batch(cost, output, hidden, B):
    net = Network([20, hidden, 10], cost=cost, output=output, seed=hidden + B)
    X, y = batch(20, B, seed=B)
    result = check_gradients(net, X, y)               # every entry, biases included
    assert result.passed, str(result)
    assert result.max_error < 1e-7
    assert result.names == ["W1", "b1", "W2", "b2"]


@pytest.mark.parametrize("cost, output", CONFIGS)
def test_backprop_passes_for_a_deeper_network(cost, output):
    net = Network([12, 9, 7, 10], cost=cost, output=output, init="uniform", seed=4)
    X, y = batch(12, 8, seed=1)
    result = check_gradients(net, X, y)
    assert result.passed, str(result)
    assert list(result.errors) == ["W1", "b1", "W2", "b2", "W3", "b3"]


@pytest.mark.parametrize("cost, output", [("quadratic", "sigmoid"), ("cross_entropy", "softmax")])
def test_backprop_passes_on_784_30_10_with_sampled_entries(cost, output):
    net = Network([784, 30, 10], cost=cost, output=output, init="scaled", seed=0)
    X = np.random.default_rng(1).random((16, 784))        # like MNIST: pixels in [0, 1]
    y = np.random.default_rng(2).integers(0, 10, 16)
    result = check_gradients(net, X, y, num_checks=30, seed=0)
    assert result.passed, str(result)
    checked = {k: int(np.sum(~np.isnan(g))) for k, g in result.numerical.items()}
    assert checked == {"W1": 30, "b1": 30, "W2": 30, "b2": 10}


def test_per_sample_reference_and_bound_methods_can_be_checked():
    net = Network([20, 7, 10], seed=0)
    X, y = batch(20, 6)
    assert check_gradients(net, X, y, Network.backprop_loop).passed
    assert check_gradients(net, X, y, net.backprop_loop).passed
    assert check_gradients(net, X, y, correct_backprop).passed


# --- the numerical gradient itself -----------------------------------------------

def test_numerical_gradient_restores_the_parameters_exactly():
    net = Network([20, 7, 10], seed=0)
    before = [p.copy() for p in net.weights + net.biases]
    numerical_gradient(net, *batch(20, 4))
    assert all(np.array_equal(p, q) for p, q in zip(before, net.weights + net.biases))


def test_numerical_gradient_shapes_sampling_and_seed():
    net = Network([20, 7, 10], seed=0)
    X, y = batch(20, 4)
    full_w, full_b = numerical_gradient(net, X, y)
    assert [g.shape for g in full_w] == [(7, 20), (10, 7)]
    assert [g.shape for g in full_b] == [(7,), (10,)]
    assert not any(np.isnan(g).any() for g in full_w + full_b)
    w1, b1 = numerical_gradient(net, X, y, num_checks=5, seed=3)
    w2, _ = numerical_gradient(net, X, y, num_checks=5, seed=3)
    assert [int(np.sum(~np.isnan(g))) for g in w1 + b1] == [5, 5, 5, 5]
    assert all(np.array_equal(np.isnan(a), np.isnan(b)) for a, b in zip(w1, w2))
    sampled = ~np.isnan(w1[0])
    np.testing.assert_array_equal(w1[0][sampled], full_w[0][sampled])


def test_numerical_gradient_of_a_known_function():
    # One weight, no hidden layer: C = ½(σ(w x + b) − t)², so ∂C/∂w = (a − t) σ'(z) x.
    net = Network([1, 1], seed=0)
    net.weights[0][:] = 0.7
    net.biases[0][:] = -0.2
    x, t = 1.5, 1.0
    a = 1 / (1 + np.exp(-(0.7 * x - 0.2)))
    exact = (a - t) * a * (1 - a) * x
    nw, nb = numerical_gradient(net, np.array([[x]]), np.array([0]))
    assert nw[0][0, 0] == pytest.approx(exact, rel=1e-9)
    assert nb[0][0] == pytest.approx(exact / x, rel=1e-9)


def test_float32_networks_get_a_loud_warning_and_a_float64_check():
    net = Network([20, 7, 10], seed=0, dtype=np.float32)
    X, y = batch(20, 4)
    with pytest.warns(UserWarning, match="float64"):
        result = check_gradients(net, X, y)
    assert result.passed and "float64 copy" in str(result)
    assert net.dtype == np.float32                      # the caller's network is untouched
    with pytest.warns(UserWarning, match="rounding"):
        numerical_gradient(net, X, y, num_checks=2, seed=0)


# --- rel_error and the report ---------------------------------------------------

def test_rel_error_definition():
    a = np.array([1.0, -2.0, 0.5])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == 1.0                                    # a sign flip
    assert rel_error(a, a + [0, 1e-6, 0]) == pytest.approx(1e-6 / 4)  # max|a−b| / max(|a|+|b|)
    assert rel_error(np.zeros(3), np.full(3, 1e-12)) == pytest.approx(1e-4)   # the 1e-8 floor
    assert rel_error(a, a[:2]) == float("inf")                        # shape mismatch
    assert rel_error(a, [1.0, np.nan, 0.5]) == 0.0                    # NaN = not sampled
    assert rel_error([1.0, np.nan, 0.5], a) == float("inf")           # NaN from backprop


def test_verdicts_follow_the_cs231n_thresholds():
    assert [verdict(e) for e in (1e-9, 1e-7, 1e-5, 1e-3, 0.5)] == [
        "good", "good", "suspicious", "probably wrong", "wrong"]


def test_report_is_a_readable_table():
    net = Network([20, 7, 10], seed=0)
    X, y = batch(20, 4)
    text = str(check_gradients(net, X, y))
    for word in ("param", "shape", "rel. error", "verdict", "W1", "(7, 20)", "b2", "good", "PASSED"):
        assert word in text
    assert repr(check_gradients(net, X, y)) == text
    bad = check_gradients(net, X, y, BUGS["wrong_sign"][0])
    assert "FAILED" in str(bad) and "wrong" in str(bad) and "FAILED" in bad._repr_html_()


# --- the check must be able to fail: every planted bug is flagged ------------------------

# [20, 10, 10]: W2 is square, so the missing transpose runs instead of crashing;
# B = 8 differs from the layer sizes, so the bias summed over the wrong axis has the wrong shape.
HIDDEN_BUGS = {"missing_transpose", "sigma_prime_of_a", "missing_sigma_prime", "updated_weights"}


@pytest.mark.parametrize("cost, output", CONFIGS)
@pytest.mark.parametrize("name", sorted(BUGS))
def test_every_planted_bug_is_flagged(name, cost, output):
    net = Network([20, 10, 10], cost=cost, output=output, seed=7)
    X, y = batch(20, 8, seed=3)
    bug, description = BUGS[name]
    assert bug.__doc__ and description
    result = check_gradients(net, X, y, bug)
    assert not result.passed, str(result)
    flagged = {k for k, e in result.errors.items() if e > 1e-2}
    if name in HIDDEN_BUGS:                       # the output layer's gradients are still right
        assert flagged == {"W1", "b1"}, str(result)
        assert result.errors["W2"] < 1e-7 and result.errors["b2"] < 1e-7
    elif name == "bias_wrong_axis":
        assert flagged == {"b1", "b2"} and result.verdicts["b1"].startswith("wrong shape")
    else:                                         # wrong sign, missing 1/B: everything
        assert flagged == {"W1", "b1", "W2", "b2"}, str(result)


def test_bias_summed_over_the_wrong_axis_is_flagged_even_when_the_shape_fits():
    net = Network([20, 10, 10], seed=7)
    X, y = batch(20, 10)                                  # B = 10 = n1 = n2: shapes match
    result = check_gradients(net, X, y, bias_wrong_axis)
    assert result.verdicts["b1"] == "wrong" and result.verdicts["b2"] == "wrong"
    assert result.verdicts["W1"] == "good"


def test_missing_transpose_crashes_when_the_layers_are_not_square():
    net = Network([20, 7, 10], seed=0)
    with pytest.raises(ValueError, match="mismatch"):
        missing_transpose(net, *batch(20, 4))


def test_missing_mean_is_invisible_at_batch_size_one_only():
    net = Network([20, 7, 10], seed=0)
    assert check_gradients(net, *batch(20, 1), missing_mean).passed
    result = check_gradients(net, *batch(20, 3), missing_mean)
    assert result.max_error == pytest.approx((3 - 1) / (3 + 1), rel=1e-6)   # (B − 1)/(B + 1)


def test_updated_weights_error_grows_with_the_learning_rate():
    net = Network([20, 7, 10], cost="cross_entropy", seed=0)
    X, y = batch(20, 8)
    errors = [check_gradients(net, X, y, lambda n, X, y: updated_weights(n, X, y, eta)).max_error
              for eta in (1e-9, 0.1, 3.0)]
    assert errors[0] < 1e-7 < errors[1] < errors[2]
    assert errors[2] > 1e-2


def test_non_contiguous_parameters_are_nudged_in_place():
    # p.reshape(-1) copies a Fortran-ordered array: nudging the copy would leave
    # the cost unchanged and report a correct backprop as 'wrong'.
    net = Network([20, 7, 10], seed=0)
    net.weights = [np.asfortranarray(W) for W in net.weights]
    net.biases = [b[::-1].copy()[::-1] for b in net.biases]       # a reversed view: strides < 0
    X, y = batch(20, 4)
    result = check_gradients(net, X, y)
    assert result.passed, str(result)
    contiguous = Network([20, 7, 10], seed=0)
    full_w, full_b = numerical_gradient(contiguous, X, y)
    got_w, got_b = numerical_gradient(net, X, y)
    for a, b in zip(full_w + full_b, got_w + got_b):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    sampled_w, _ = numerical_gradient(net, X, y, num_checks=5, seed=3)
    reference_w, _ = numerical_gradient(contiguous, X, y, num_checks=5, seed=3)
    assert all(np.array_equal(np.isnan(a), np.isnan(b)) for a, b in zip(sampled_w, reference_w))


def test_an_interrupted_numerical_gradient_leaves_the_network_unchanged(monkeypatch):
    net = Network([20, 7, 10], seed=0)
    before = [p.copy() for p in net.weights + net.biases]
    real, calls = Network.mean_cost, []

    def interrupted(*args, **kwargs):                 # Ctrl-C while θ is nudged to θ − h
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(Network, "mean_cost", interrupted)
    with pytest.raises(KeyboardInterrupt):
        numerical_gradient(net, *batch(20, 4))
    assert len(calls) == 6
    assert all(np.array_equal(p, q) for p, q in zip(before, net.weights + net.biases))


def test_backprop_runs_before_the_slow_numerical_gradient(monkeypatch):
    from mnistnet import gradcheck
    numerical_calls = []
    slow = gradcheck._numerical_gradient                 # what check_gradients calls
    monkeypatch.setattr(gradcheck, "_numerical_gradient",
                        lambda *a, **k: numerical_calls.append(1) or slow(*a, **k))
    net = Network([20, 7, 10], seed=0)

    def crashes(net, X, y):
        raise RuntimeError("a bug in backprop")

    with pytest.raises(RuntimeError, match="a bug in backprop"):
        check_gradients(net, *batch(20, 4), crashes)
    with pytest.raises(ValueError, match="returned 1 weight and 1 bias"):
        check_gradients(net, *batch(20, 4), lambda n, X, y: ([n.weights[0]], [n.biases[0]]))
    assert numerical_calls == []
    assert check_gradients(net, *batch(20, 4)).passed and numerical_calls == [1]


# --- class-based code that updates its weights in place: from_layers -----------------------------

class RowLayer:
    """A learner-style layer: weights (out, in), biases (out,), row vectors made with atleast_2d."""

    def __init__(self, n_in, n_out, rng):
        self.weights = rng.uniform(-1, 1, (n_out, n_in))
        self.biases = rng.uniform(-1, 1, n_out)

    def feed_forward(self, a_in):
        self.a_in = np.atleast_2d(a_in)                                  # (1, n_in)
        self.z = self.a_in @ self.weights.T + self.biases                # (1, n_out)
        self.a = 1 / (1 + np.exp(-self.z))
        self.dz = self.a * (1 - self.a)                                   # σ'(z), not δ


class LearnerNet:
    def __init__(self, sizes, lr=0.05, seed=0, eager=False):
        rng = np.random.default_rng(seed)
        self.layers = [RowLayer(a, b, rng) for a, b in zip(sizes[:-1], sizes[1:])]
        self.lr, self.eager = lr, eager

    def feed_forward(self, x):
        a = x
        for layer in self.layers:
            layer.feed_forward(a)
            a = layer.a

    def propagate_back(self, x, y):
        hidden, output = self.layers
        t = np.zeros(output.a.shape[1])
        t[y] = 1.0
        delta2 = (output.a - t) * output.dz                                 # (1, 10)
        grad2 = np.atleast_2d(delta2).T * np.atleast_2d(hidden.a)           # (10, 30)
        if self.eager:                                                      # W2 updated too early
            output.weights -= self.lr * grad2
        delta1 = (delta2 @ output.weights) * hidden.dz                      # (1, 30)
        grad1 = np.atleast_2d(delta1).T * np.atleast_2d(x)                  # (30, 784)
        if not self.eager:
            output.weights -= self.lr * grad2
        hidden.weights -= self.lr * grad1                                   # in place, after
        output.biases -= self.lr * delta2[0]
        hidden.biases -= self.lr * delta1[0]

    def train_step(self, x, y):
        self.feed_forward(x)
        self.propagate_back(x, y)


def test_from_layers_checks_correct_in_place_code_as_correct():
    from mnistnet.check import check_backprop, from_layers
    learner = LearnerNet([784, 30, 10])
    before = [layer.weights.copy() for layer in learner.layers]
    fn = from_layers(learner, LearnerNet.train_step, learning_rate=0.05)
    report = check_backprop(fn)
    assert report.ok, str(report)
    assert check_backprop(from_layers(learner, learner.train_step, learning_rate=0.05)).ok
    assert all(np.array_equal(b, layer.weights) for b, layer in zip(before, learner.layers))
    net = Network([784, 12, 10], seed=1, dtype=np.float64)
    X, y = np.random.default_rng(0).random((3, 784)), np.array([1, 5, 7])
    result = check_gradients(net, X, y, backprop=fn, num_checks=20, seed=0)
    assert result.passed, str(result)


def test_from_layers_copy_false_reports_the_update_in_place_and_eager_updates_are_named():
    from mnistnet.check import check_backprop, from_layers
    r = check_backprop(from_layers(LearnerNet([784, 30, 10]), LearnerNet.train_step,
                                   learning_rate=0.05, copy=False))
    assert r.kinds == {"mutated_input"} and "η ≈ 0.05" in str(r)
    r = check_backprop(from_layers(LearnerNet([784, 30, 10], eager=True), LearnerNet.train_step,
                                   learning_rate=0.05))
    assert r.kinds == {"updated_w2"}, str(r)


def test_from_layers_uses_returned_gradients_and_asks_for_the_learning_rate():
    from mnistnet.check import check_backprop, from_layers

    def returns_gradients(net, x, y):
        fake = Network.from_arrays([l.weights for l in net.layers], [l.biases for l in net.layers],
                                   dtype=np.float64)
        return fake.backprop(np.atleast_2d(x), np.atleast_1d(y))

    assert check_backprop(from_layers(LearnerNet([784, 30, 10]), returns_gradients)).ok
    f = check_backprop(from_layers(LearnerNet([784, 30, 10]), LearnerNet.train_step)).findings[0]
    assert f.kind == "exception" and "learning_rate=" in f.message
    with pytest.raises(TypeError, match="net.layers"):
        from_layers(object(), LearnerNet.train_step)


def test_printed_errors_do_not_depend_on_rounding_noise():
    from mnistnet.gradcheck import format_error
    assert [format_error(e) for e in (0.0, 3e-10, 2.345e-5, 0.96, float("inf"))] == \
        ["< 1e-8", "< 1e-8", "2.3e-05", "9.6e-01", "inf"]
    net = Network([20, 7, 10], seed=0)
    X, y = batch(20, 4)
    result = check_gradients(net, X, y)
    assert result.max_error < 1e-8 and "e-1" not in str(result)      # no digits of the noise
    assert "PASSED: max rel. error < 1e-8 (tolerance 1e-07)" in str(result)
    assert "< 1e-8" in result._repr_html_()


def test_every_planted_bug_has_its_per_sample_form():
    from mnistnet.bugs import MISTAKES
    assert all(MISTAKES[name].per_sample for name in BUGS)
    assert "W2.T @ delta2" in MISTAKES["missing_transpose"].per_sample
