"""The network's forward pass, its two backprops, and numerically stable activations and costs."""

import warnings

import numpy as np
import pytest

from mnistnet import Network
from mnistnet.train import sgd
from mnistnet.functions import (COSTS, OUTPUTS, CrossEntropyCost, QuadraticCost, Sigmoid,
                                Softmax, one_hot, sigmoid, sigmoid_prime, softmax)

CONFIGS = [(cost, output) for cost in COSTS for output in OUTPUTS]


def batch(n_in, B, seed=0, n_out=10):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, n_in)), rng.integers(0, n_out, B)


# --- the vectorised backprop against the per-sample reference -----------------------

@pytest.mark.parametrize("cost, output", CONFIGS)
@pytest.mark.parametrize("sizes", [[20, 7, 10], [20, 1, 10], [784, 30, 10], [20, 9, 6, 10], [5, 10]])
def test_backprop_matches_per_sample_loop(sizes, cost, output):
    net = Network(sizes, cost=cost, output=output, seed=1)
    X, y = batch(sizes[0], 13, seed=2)
    nabla_w, nabla_b = net.backprop(X, y)
    loop_w, loop_b = net.backprop_loop(X, y)
    for a, b in zip(nabla_w + nabla_b, loop_w + loop_b):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cost, output", CONFIGS)
def test_backprop_of_one_sample_is_backprop_sample(cost, output):
    net = Network([20, 7, 10], cost=cost, output=output, seed=1)
    X, y = batch(20, 1)
    for (a, b) in [(net.backprop(X[0], y[0]), net.backprop_sample(X[0], y[0])),
                   (net.backprop(X, y), net.backprop_sample(X[0], y[0]))]:
        for g, h in zip(a[0] + a[1], b[0] + b[1]):
            np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-15)


def test_gradient_shapes_and_dtypes_follow_the_parameters():
    for dtype in (np.float32, np.float64):
        net = Network([784, 30, 10], seed=0, dtype=dtype)
        X, y = batch(784, 4)
        nabla_w, nabla_b = net.backprop(X, y)              # X is float64: still dtype out
        assert [g.shape for g in nabla_w] == [(30, 784), (10, 30)]
        assert [g.shape for g in nabla_b] == [(30,), (10,)]
        assert all(g.dtype == dtype for g in nabla_w + nabla_b)
        assert net.forward(X).dtype == dtype


def test_deltas_are_per_sample_and_the_bias_gradient_is_their_mean():
    net = Network([20, 7, 10], seed=3)
    X, y = batch(20, 6)
    deltas = net.deltas(X, y)
    assert [d.shape for d in deltas] == [(6, 7), (6, 10)]
    _, nabla_b = net.backprop(X, y)
    for d, nb in zip(deltas, nabla_b):
        np.testing.assert_allclose(d.mean(axis=0), nb, rtol=1e-12)


def test_forward_one_sample_equals_its_row_in_a_batch():
    net = Network([20, 7, 10], seed=0)
    X, _ = batch(20, 5)
    np.testing.assert_allclose(net.forward(X[2]), net.forward(X)[2], rtol=1e-14)
    assert net.predict(X[2]) == net.predict(X)[2]


def test_same_seed_same_network_and_copy_is_independent():
    a, b = Network([20, 7, 10], seed=5), Network([20, 7, 10], seed=5)
    assert all(np.array_equal(p, q) for p, q in zip(a.weights + a.biases, b.weights + b.biases))
    c = a.copy()
    c.weights[0][0, 0] += 1.0
    assert a.weights[0][0, 0] != c.weights[0][0, 0]


def test_cost_is_the_mean_of_per_sample_costs():
    net = Network([20, 7, 10], cost="cross_entropy", seed=0)
    X, y = batch(20, 8)
    assert net.cost(X, y) == pytest.approx(np.mean([net.cost(x, t) for x, t in zip(X, y)]), rel=1e-12)


@pytest.mark.parametrize("bad, expected", [
    (np.zeros((784, 3)), r"\(B, 784\)"),            # transposed
    (np.zeros((3, 28, 28)), r"784"),                 # not flattened
    (np.zeros((784, 1)), r"ravel"),                  # the book's column vector
])
def test_wrong_input_shapes_name_the_expected_shape(bad, expected):
    net = Network([784, 30, 10], seed=0)
    with pytest.raises(ValueError, match=expected):
        net.forward(bad)


def test_wrong_labels_are_refused():
    net = Network([20, 7, 10], seed=0)
    X, y = batch(20, 4)
    with pytest.raises(ValueError, match=r"\(4,\)"):
        net.backprop(X, y[:3])
    with pytest.raises(ValueError, match="integer"):
        net.backprop(X, one_hot(y))
    with pytest.raises(ValueError, match="0 … 9"):
        net.backprop(X, y + 10)


# --- numerics: no overflow, no log(0) ------------------------------------------------

# Underflow to 0 (e^(−2e4)) is intended and numpy ignores it by default; overflow,
# log(0) and 0/0 must never happen.
EXTREME = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_never_overflows_or_warns(dtype):
    z = EXTREME.astype(dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        a, s = sigmoid(z), sigmoid_prime(z)
    assert a.dtype == dtype and np.all(np.isfinite(a)) and np.all(np.isfinite(s))
    assert a[0] == 0.0 and a[-1] == 1.0 and a[3] == 0.5
    assert np.all(np.diff(a) >= 0) and np.all((s >= 0) & (s <= 0.25))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_cross_entropy_are_stable_for_extreme_z(dtype):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [800.0, 799.0, -800.0]], dtype=dtype)
    T = np.eye(3, dtype=dtype)[[1, 0, 0]]
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        A = softmax(Z)
        C_soft = CrossEntropyCost.fn(Z, A, T, Softmax)
        C_sig = CrossEntropyCost.fn(Z, sigmoid(Z), T, Sigmoid)
        C_quad = QuadraticCost.fn(Z, sigmoid(Z), T)
        deltas = [CrossEntropyCost.delta(Z, A, T, Softmax), QuadraticCost.delta(Z, A, T, Softmax),
                  QuadraticCost.delta(Z, sigmoid(Z), T, Sigmoid)]
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(A[1], 1 / 3, rtol=1e-6)
    # −ln a_y from z: row 0 wants class 1, 2e4 below the max (C = 2e4); row 2 class 0 (ln(1 + e^−1)).
    np.testing.assert_allclose(C_soft, [2e4, np.log(3.0), np.log1p(np.exp(-1.0))], rtol=1e-6)
    assert np.all(np.isfinite(C_sig)) and C_sig[0] == pytest.approx(2e4 + np.log(2), rel=1e-6)
    assert np.all(np.isfinite(C_quad)) and all(np.all(np.isfinite(d)) for d in deltas)


def test_a_saturated_network_has_finite_cost_and_gradients():
    for cost, output in CONFIGS:
        net = Network([20, 7, 10], cost=cost, output=output, seed=0)
        net.weights = [W * 1e4 for W in net.weights]            # every unit saturated
        X, y = batch(20, 5)
        with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
            warnings.simplefilter("error")
            c = net.cost(X, y)
            nabla_w, nabla_b = net.backprop(X, y)
        assert np.isfinite(c) and all(np.all(np.isfinite(g)) for g in nabla_w + nabla_b)


def test_every_cost_takes_output_the_same_way():
    Z = np.random.default_rng(0).standard_normal((4, 10))
    T = one_hot([1, 2, 3, 4])
    for cost in COSTS.values():
        default = cost.fn(Z, sigmoid(Z), T)
        assert np.array_equal(default, cost.fn(Z, sigmoid(Z), T, None))
        assert np.array_equal(default, cost.fn(Z, sigmoid(Z), T, Sigmoid))    # None is sigmoid
        assert np.array_equal(default, cost.fn(Z, sigmoid(Z), T, output=Sigmoid))


def test_one_hot_refuses_labels_out_of_range():
    assert one_hot(9).tolist() == [0] * 9 + [1]
    np.testing.assert_array_equal(one_hot([0, 2], n=3), [[1, 0, 0], [0, 0, 1]])
    assert one_hot(np.array([], dtype=int)).shape == (0, 10)
    for bad, n in ((-1, 10), (10, 10), ([0, 3], 3), ([-2, 1], 3)):
        with pytest.raises(ValueError, match=f"labels must lie in 0 … {n - 1}"):
            one_hot(bad, n)
    for bad in (3.0, [1.0, 2.0], np.array([0.5])):     # an IndexError deep in numpy, before
        with pytest.raises(ValueError, match="labels must be integers, got dtype float64"):
            one_hot(bad)
    assert one_hot(np.uint8(3), dtype=np.float32).dtype == np.float32
    # Labels of any shape: each gets its own one-hot row (a (B, B) array was silently wrong).
    y2 = np.array([[0, 1], [1, 0]])
    np.testing.assert_array_equal(one_hot(y2, n=2), [[[1, 0], [0, 1]], [[0, 1], [1, 0]]])


def test_copy_and_astype_keep_a_subclass():
    class Recording(Network):
        pass

    net = Recording([20, 7, 10], seed=0)
    for other in (net.copy(), net.astype(np.float32)):
        assert type(other) is Recording and other.sizes == net.sizes
        assert other.weights[0] is not net.weights[0]
    np.testing.assert_array_equal(net.copy().weights[0], net.weights[0])


def test_from_arrays_uses_the_given_parameters_and_checks_them():
    ref = Network([5, 4, 3], cost="cross_entropy", output="softmax", init="scaled", seed=1)
    net = Network.from_arrays(ref.weights, ref.biases, cost="cross_entropy", output="softmax",
                              init="scaled")
    assert net.sizes == [5, 4, 3] and net.dtype == np.float64 and repr(net) == repr(ref)
    assert all(a is b for a, b in zip(net.weights + net.biases, ref.weights + ref.biases))
    assert Network.from_arrays(ref.weights, ref.biases, dtype=np.float32).weights[0].dtype \
        == np.float32
    with pytest.raises(ValueError, match="unknown cost 'hinge'"):
        Network.from_arrays(ref.weights, ref.biases, cost="hinge")
    with pytest.raises(ValueError, match=r"W2 has shape \(4, 3\); expected \(n2, 4\)"):
        Network.from_arrays([ref.weights[0], ref.weights[1].T], ref.biases)
    with pytest.raises(ValueError, match=r"b1 has shape \(3,\); expected \(4,\)"):
        Network.from_arrays(ref.weights, ref.biases[::-1])


def test_whole_number_dtypes_are_refused_and_lists_are_accepted():
    # An int64 network would truncate every weight (and every pixel in [0, 1)) to 0.
    for bad in (np.int64, np.int32, bool):
        with pytest.raises(ValueError, match="dtype must be a floating-point type"):
            Network([3, 2], dtype=bad)
    with pytest.raises(ValueError, match="got int64"):
        Network.from_arrays([np.array([[1, 2]])], [np.array([0])], dtype=np.int64)
    # Integer or nested-list parameters without a dtype: a float64 network.
    net = Network.from_arrays([[[1, 2]]], [[0]])
    assert net.dtype == np.float64 and net.sizes == [2, 1]
    assert net.forward(np.array([0.5, 0.5]))[0] == pytest.approx(1 / (1 + np.exp(-1.5)))


def test_copy_shares_nothing_that_training_changes():
    net = Network([4, 3, 2], seed=0)
    twin = net.copy()
    assert twin.sizes == net.sizes and twin.sizes is not net.sizes
    assert all(a is not b for a, b in zip(twin.weights + twin.biases, net.weights + net.biases))


# --- bad input is refused at the boundary, in the package's words (issue 12) ------------------

def test_non_finite_inputs_are_refused_naming_the_row():
    net = Network([20, 7, 10], seed=0)
    X, y = batch(20, 30)
    X[17, 3] = np.nan
    for call in (lambda: net.forward(X), lambda: net.predict(X), lambda: net.cost(X, y),
                 lambda: net.backprop(X, y), lambda: net.accuracy(X, y)):
        with pytest.raises(ValueError, match=r"X has nan in row 17, column 3"):
            call()
    with pytest.raises(ValueError, match=r"X has inf in row 0, column 5"):
        net.predict(np.where(np.arange(20) == 5, np.inf, 0.0))      # one sample: row 0


def test_raw_integer_pixels_are_refused_and_unscaled_floats_warned():
    net = Network([784, 30, 10], seed=0)
    X = (np.random.default_rng(0).random((5, 784)) * 256).astype(np.uint8)
    with pytest.raises(ValueError, match=r"whole numbers from 0 to 255 .*X = X / 255"):
        net.forward(X)
    with pytest.warns(UserWarning, match=r"unscaled pixel values.*X = X / 25"):
        net.forward(X.astype(np.float64))
    # The warning names the caller's line, whichever entry point it went through.
    y = np.zeros(5, int)
    for call in (lambda X: net.forward(X), lambda X: net.predict(X), lambda X: net.cost(X, y),
                 lambda X: net.accuracy(X, y), lambda X: net.backprop(X, y),
                 lambda X: sgd(net.copy(), (X, y), 0, 5, 0.1)):
        with pytest.warns(UserWarning, match="unscaled pixel values") as record:
            call(X.astype(np.float64))
        assert [w.filename for w in record] == [__file__]
    net.forward(np.array([[0, 1] * 392]))                 # 0/1 integers are fine as they are
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.forward(X / 255.0)                             # scaled: no warning


def test_an_empty_batch_is_a_clear_error_not_nan():
    net = Network([20, 7, 10], seed=0)
    X, y = np.zeros((0, 20)), np.zeros(0, int)
    for call in (lambda: net.backprop(X, y), lambda: net.cost(X, y), lambda: net.accuracy(X, y)):
        with pytest.raises(ValueError, match=r"X has no rows \(shape \(0, 20\)\)"):
            call()
    assert net.forward(X).shape == (0, 10)                 # an empty forward pass is still fine


def test_astype_refuses_whole_number_dtypes_as_the_constructor_does():
    net = Network([3, 2], seed=0)
    with pytest.raises(ValueError, match="dtype must be a floating-point type.*got int64"):
        net.astype(np.int64)
    assert net.astype(np.float32).weights[0].dtype == np.float32


@pytest.mark.parametrize("sizes, error", [([784, float("nan"), 10], ValueError), (784, TypeError),
                                          ((n for n in [784, 30, 10]), TypeError),
                                          ([784], ValueError), ([784, 0, 10], ValueError),
                                          ([784, 2.5, 10], ValueError), ([784, True, 10], ValueError),
                                          ("784", TypeError)])
def test_bad_sizes_get_the_packages_sizes_message(sizes, error):
    with pytest.raises(error, match=r"sizes must be a list of at least two positive whole numbers"):
        Network(sizes)
    assert Network((4, 3.0, np.int64(2))).sizes == [4, 3, 2]


def test_a_huge_network_warns_and_is_drawn_without_a_float64_copy(monkeypatch):
    import tracemalloc
    from mnistnet import network
    monkeypatch.setattr(network, "MAX_PARAMETERS", 10_000)
    with pytest.warns(UserWarning, match=r"Network\(\[784, 30, 10\]\) has 23,860 parameters"):
        Network([784, 30, 10], seed=0)
    monkeypatch.setattr(network, "MAX_PARAMETERS", 10**9)
    monkeypatch.setattr(network, "DRAW_CHUNK", 4096)
    tracemalloc.start()
    try:
        net = Network([784, 500, 10], seed=0, dtype=np.float32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = sum(p.nbytes for p in net.weights + net.biases)
    assert peak < 1.2 * size                      # a float64 draw then a cast would be 3 × size
    # the same numbers as one float64 draw of the whole layer, in either dtype
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((500, 784))
    np.testing.assert_array_equal(net.weights[0], W1.astype(np.float32))
    np.testing.assert_array_equal(Network([784, 500, 10], seed=0).weights[0], W1)
    scaled = Network([784, 500, 10], init="scaled", seed=0, dtype=np.float32)
    np.testing.assert_array_equal(scaled.weights[0], (W1 / np.sqrt(784)).astype(np.float32))


def test_from_arrays_goes_through_the_constructor():
    calls = []

    class Recording(Network):
        def __init__(self, *args, **kwargs):
            calls.append(kwargs.get("init"))
            super().__init__(*args, **kwargs)

    ref = Network([5, 4, 3], seed=1)
    net = Recording.from_arrays(ref.weights, ref.biases, init="scaled")
    assert type(net) is Recording and calls == ["scaled"] and net.sizes == [5, 4, 3]
    with pytest.raises(ValueError, match=r"W1 has shape \(5,\); expected \(n1, n0\)"):
        Network.from_arrays([np.zeros(5)], [np.zeros(1)])


def test_the_public_batch_methods_are_what_backprop_and_cost_use():
    net = Network([20, 7, 10], cost="cross_entropy", seed=0)
    X, y = batch(20, 6)
    Xc, yc, T = net.check_data(X, y)
    assert Xc.shape == (6, 20) and yc.tolist() == y.tolist() and T.shape == (6, 10)
    nabla_w, nabla_b, deltas = net.backprop_batch(Xc, T)
    for a, b in zip(nabla_w + nabla_b, sum(net.backprop(X, y), [])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(nabla_w[0], deltas[0].T @ Xc / 6, rtol=1e-14)     # Δᵀ X / B
    assert net.mean_cost(Xc, T) == net.cost(X, y)
    assert net.forward_batch(Xc)[1][-1].shape == (6, 10)
    x1, y1, T1 = net.check_data(X[0], y[0])                # one sample: a batch of one
    assert x1.shape == (1, 20) and y1.shape == (1,) and T1.shape == (1, 10)
