"""Mini-batch SGD on small generated data: updates, stopping, η schedules, divergence, shapes."""

import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from mnistnet import Network
from mnistnet import train
from mnistnet.bugs import wrong_sign
from mnistnet.train import Diverged, History, sgd


def blobs(n, n_in=20, seed=0):
    """n samples (n, n_in) around 10 fixed class centres, with integer labels (n,)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).standard_normal((10, n_in)) * 1.5
    y = rng.integers(0, 10, n)
    return centres[y] + rng.standard_normal((n, n_in)), y


TRAIN, VALID = blobs(300), blobs(100, seed=1)


def params(net):
    return [p.copy() for p in net.weights + net.biases]


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b))


# --- it learns, and the update is the book's --------------------------------------------

@pytest.mark.parametrize("cost, output, eta", [("quadratic", "sigmoid", 3.0),
                                               ("cross_entropy", "sigmoid", 0.5),
                                               ("cross_entropy", "softmax", 0.5)])
def test_sgd_learns_and_records_a_history(cost, output, eta):
    net = Network([20, 30, 10], cost=cost, output=output, init="scaled", seed=0)
    history = sgd(net, TRAIN, 5, 10, eta, validation_data=VALID, seed=0)
    assert isinstance(history, History) and len(history) == 5
    assert history.epoch == [1, 2, 3, 4, 5] and history.batches == 5 * 30
    assert history.cost[-1] < history.start_cost / 2
    assert history.accuracy[-1] > 0.9 and history.learning_rate == [eta] * 5
    assert all(s >= 0 for s in history.seconds + history.eval_seconds)
    assert not history.stopped and history.stop_reason is None
    assert history.cost[-1] == pytest.approx(net.cost(*TRAIN), rel=1e-12)   # cost: whole training set
    assert "epoch" in repr(history)


def test_one_full_batch_step_is_w_minus_eta_nabla():
    net = Network([20, 7, 10], seed=0)
    before = net.copy()
    nabla_w, nabla_b = before.backprop(*TRAIN)
    sgd(net, TRAIN, 1, len(TRAIN[0]), 0.7)                # one mini-batch = the whole set
    for W, W0, nw in zip(net.weights, before.weights, nabla_w):
        np.testing.assert_allclose(W, W0 - 0.7 * nw, rtol=1e-13, atol=1e-15)
    for b, b0, nb in zip(net.biases, before.biases, nabla_b):
        np.testing.assert_allclose(b, b0 - 0.7 * nb, rtol=1e-13, atol=1e-15)


def test_l2_is_weight_decay_scaled_by_the_training_set_size():
    net = Network([20, 7, 10], seed=0)
    before = net.copy()
    n, eta, lam = len(TRAIN[0]), 0.5, 5.0
    nabla_w, nabla_b = before.backprop(*TRAIN)
    history = sgd(net, TRAIN, 1, n, eta, l2=lam)
    for W, W0, nw in zip(net.weights, before.weights, nabla_w):
        np.testing.assert_allclose(W, (1 - eta * lam / n) * W0 - eta * nw, rtol=1e-13, atol=1e-15)
    for b, b0, nb in zip(net.biases, before.biases, nabla_b):      # biases are not decayed
        np.testing.assert_allclose(b, b0 - eta * nb, rtol=1e-13, atol=1e-15)
    penalty = 0.5 * lam / n * sum(np.sum(W ** 2) for W in net.weights)
    assert history.cost[-1] == pytest.approx(net.cost(*TRAIN) + penalty, rel=1e-12)


def test_zero_gradient_leaves_only_the_decay():
    zero = lambda net, X, y: ([np.zeros_like(W) for W in net.weights],
                              [np.zeros_like(b) for b in net.biases])
    net = Network([20, 7, 10], seed=0)
    before = net.copy()
    n = len(TRAIN[0])
    sgd(net, TRAIN, 2, 7, 0.1, l2=3.0, backprop=zero)     # 2 × ⌈300/7⌉ = 86 updates
    np.testing.assert_allclose(net.weights[0], (1 - 0.1 * 3.0 / n) ** 86 * before.weights[0], rtol=1e-12)
    assert same(net.biases, before.biases)


def test_every_sample_is_used_once_per_epoch_in_a_shuffled_order():
    seen = []

    def spy(net, X, y):
        seen.append(X.copy())
        return net.backprop(X, y)

    X, y = TRAIN
    sgd(Network([20, 7, 10], seed=0), (X, y), 2, 32, 0.1, seed=1, backprop=spy)
    sizes = [len(b) for b in seen]
    assert sizes == ([32] * 9 + [12]) * 2                  # the last mini-batch is smaller
    for epoch in (seen[:10], seen[10:]):
        rows = np.concatenate(epoch)
        assert not np.array_equal(rows, X)                 # shuffled…
        np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(X, axis=0))   # …a permutation
    assert not np.array_equal(np.concatenate(seen[:10]), np.concatenate(seen[10:]))


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    runs = []
    for seed in (5, 5, 6):
        net = Network([20, 7, 10], seed=0, dtype=np.float32)
        sgd(net, TRAIN, 2, 10, 1.0, seed=seed)
        runs.append(params(net))
    assert same(runs[0], runs[1]) and not same(runs[0], runs[2])


def test_float32_training_stays_float32_even_with_float64_data():
    net = Network([20, 7, 10], seed=0, dtype=np.float32)
    sgd(net, TRAIN, 1, 10, lambda: np.float64(1.0))
    assert all(p.dtype == np.float32 for p in net.weights + net.biases)


# --- the callback: progress and stopping --------------------------------------------------

def test_callback_every_k_batches_and_after_each_epoch():
    calls = []
    sgd(Network([20, 7, 10], seed=0), TRAIN, 2, 10, 1.0,
        callback=lambda p: calls.append((p.epoch, p.batch, p.end_of_epoch, len(p.history))),
        callback_every=12)
    assert calls == [(1, 12, False, 0), (1, 24, False, 0), (1, 30, True, 1),
                     (2, 12, False, 1), (2, 24, False, 1), (2, 30, True, 2)]


def test_stop_mid_epoch_stops_within_the_batch_and_leaves_the_network_consistent():
    def stop_at_batch_7_of_epoch_2(progress):
        if (progress.epoch, progress.batch) == (2, 7):
            progress.stop("enough")

    net = Network([20, 7, 10], seed=0)
    history = sgd(net, TRAIN, 5, 10, 1.0, validation_data=VALID, seed=3,
                  callback=stop_at_batch_7_of_epoch_2, callback_every=1)
    assert history.stopped and history.stop_reason == "enough"
    assert history.batches == 30 + 7
    assert history.epoch == [1, pytest.approx(1 + 7 / 30)]      # the partial epoch is recorded
    assert len(history.cost) == len(history.accuracy) == 2
    assert history.cost[-1] == pytest.approx(net.cost(*TRAIN), rel=1e-12)
    # Consistent: exactly the network of a run whose η drops to 0 after 37 mini-batches.
    etas = iter([1.0] * 37 + [0.0] * 1000)
    other = Network([20, 7, 10], seed=0)
    sgd(other, TRAIN, 2, 10, lambda: next(etas), seed=3)
    assert same(params(net), params(other))


def test_stop_at_the_end_of_an_epoch():
    history = sgd(Network([20, 7, 10], seed=0), TRAIN, 10, 10, 1.0,
                  callback=lambda p: p.epoch == 3 and p.stop())
    assert history.stopped and history.stop_reason == "stopped by callback"
    assert history.epoch == [1, 2, 3] and history.batches == 90


def test_stop_from_another_thread():
    """The widget's way: train in a thread, call progress.stop() from the UI thread."""
    started, holder = threading.Event(), {}

    def callback(progress):
        holder["progress"] = progress
        started.set()

    result = {}
    worker = threading.Thread(target=lambda: result.update(h=sgd(
        Network([20, 7, 10], seed=0), TRAIN, 10 ** 6, 10, 1.0, callback=callback, callback_every=1)))
    worker.start()
    assert started.wait(30)
    holder["progress"].stop("button")
    worker.join(30)
    assert not worker.is_alive()
    assert result["h"].stopped and result["h"].stop_reason == "button"


def test_learning_rate_callable_is_read_before_every_mini_batch():
    calls = []

    def eta():
        calls.append(1)
        return 1.0 if len(calls) <= 40 else 0.25

    history = sgd(Network([20, 7, 10], seed=0), TRAIN, 2, 10, eta)
    assert len(calls) == 60
    assert history.learning_rate == [1.0, 0.25]


def test_learning_rate_change_takes_effect_mid_run():
    snapshots = []
    etas = iter([1.0] * 10 + [0.0] * 1000)                  # a slider pulled to 0 after 10 batches
    net = Network([20, 7, 10], seed=0)
    sgd(net, TRAIN, 1, 10, lambda: next(etas), seed=0,
        callback=lambda p: snapshots.append(params(p.net)), callback_every=5)
    assert not same(snapshots[0], snapshots[1])             # batches 1-5 and 6-10 moved it
    assert same(snapshots[1], snapshots[2]) and same(snapshots[1], params(net))


def test_bad_learning_rate_is_refused():
    with pytest.raises(ValueError, match="learning rate"):
        sgd(Network([20, 7, 10], seed=0), TRAIN, 1, 10, lambda: float("nan"))


# --- divergence ------------------------------------------------------------------------

@pytest.mark.parametrize("cost, output, eta", [("quadratic", "sigmoid", 3.0),
                                               ("quadratic", "softmax", 3.0),
                                               ("cross_entropy", "sigmoid", 0.5),
                                               ("cross_entropy", "softmax", 0.5)])
@pytest.mark.parametrize("init", ["normal", "scaled"])
def test_healthy_runs_never_trigger_divergence(cost, output, eta, init):
    net = Network([20, 30, 10], cost=cost, output=output, init=init, seed=0)
    history = sgd(net, TRAIN, 10, 10, eta, seed=0)          # raises Diverged if it triggers
    assert not history.diverged and len(history) == 10


@pytest.mark.parametrize("cost, output, eta, dtype, symptom", [
    ("quadratic", "sigmoid", 1000.0, np.float64, "% of the units of the output layer are saturated"),
    ("cross_entropy", "sigmoid", 100.0, np.float64, "higher than at the start"),
    ("cross_entropy", "softmax", 1000.0, np.float64, "% of the units of hidden layer 1 are saturated"),
    ("quadratic", "softmax", 1000.0, np.float64, "higher than at the start"),
    ("cross_entropy", "softmax", 1e38, np.float32, "NaN or infinite"),
])
def test_a_learning_rate_far_too_large_raises_diverged(cost, output, eta, dtype, symptom):
    net = Network([20, 30, 10], cost=cost, output=output, seed=0, dtype=dtype)
    with warnings.catch_warnings():                         # and no numpy warnings on the way
        warnings.simplefilter("error")
        with pytest.raises(Diverged, match="learning rate too large") as info:
            sgd(net, TRAIN, 5, 10, eta, seed=0)
    assert symptom in str(info.value) and "lower η" in str(info.value)
    history = info.value.history
    assert isinstance(info.value, RuntimeError)
    assert history.diverged and history.stopped and history.stop_reason == str(info.value)
    assert len({len(v) for v in (history.epoch, history.cost, history.accuracy, history.seconds,
                                 history.cpu_seconds, history.eval_seconds, history.learning_rate)}) == 1


def test_nan_parameters_are_caught_mid_epoch(monkeypatch):
    monkeypatch.setattr(train, "FINITE_CHECK_EVERY", 3)
    nan = lambda net, X, y: ([np.full_like(W, np.nan) for W in net.weights],
                             [np.zeros_like(b) for b in net.biases])
    with pytest.raises(Diverged, match="NaN or infinite during epoch 1") as info:
        sgd(Network([20, 7, 10], seed=0), TRAIN, 1, 10, 1.0, backprop=nan)
    assert info.value.history.batches == 3 and "backprop function" in str(info.value)


def test_a_wrong_sign_backprop_diverges():
    with pytest.raises(Diverged, match="higher than at the start"):
        sgd(Network([20, 7, 10], seed=0), TRAIN, 3, 10, 3.0, backprop=wrong_sign)


# --- shapes and settings -------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ((TRAIN[0].T, TRAIN[1]), r"training_data: X has shape \(20, 300\); expected \(N, 20\).*X\.T"),
    ((TRAIN[0], TRAIN[1][:-1]), r"training_data: y has shape \(299,\); expected .*\(300,\)"),
    ((TRAIN[0][0], TRAIN[1][:1]), r"expected \(N, 20\)"),
    ((TRAIN[0], TRAIN[1] * 1.0), "integer labels"),
    (TRAIN[0], r"pair \(X, y\)"),
])
def test_bad_training_data_names_the_expected_shape(data, message):
    net = Network([20, 7, 10], seed=0)
    before = params(net)
    with pytest.raises(ValueError, match=message):
        sgd(net, data, 1, 10, 1.0)
    assert same(params(net), before)


def test_bad_validation_data_is_refused_before_training():
    net = Network([20, 7, 10], seed=0)
    before = params(net)
    with pytest.raises(ValueError, match=r"validation_data: X has shape \(100, 19\); expected \(N, 20\)"):
        sgd(net, TRAIN, 1, 10, 1.0, validation_data=(VALID[0][:, :19], VALID[1]))
    with pytest.raises(ValueError, match=r"validation_data: y has shape \(99,\)"):
        sgd(net, TRAIN, 1, 10, 1.0, validation_data=(VALID[0], VALID[1][:99]))
    assert same(params(net), before)


def test_bad_settings_are_refused():
    net = Network([20, 7, 10], seed=0)
    for kwargs in ({"batch_size": 0}, {"epochs": -1}, {"l2": -1.0}, {"callback_every": 0}):
        args = {"epochs": 1, "batch_size": 10, **kwargs}
        with pytest.raises(ValueError):
            sgd(net, TRAIN, args.pop("epochs"), args.pop("batch_size"), 1.0, **args)


# --- BLAS threads ---------------------------------------------------------------------

def blas_threads():
    return [m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas"]


def test_training_runs_on_one_blas_thread_by_default_and_the_limit_is_restored():
    before = blas_threads()
    for B, threads, expected in [(10, train.BLAS_THREADS, {1}), (128, train.BLAS_THREADS, {1}),
                                 (10, None, set(before))]:
        inside = []
        history = sgd(Network([20, 7, 10], seed=0), TRAIN, 1, B, 1.0, blas_threads=threads,
                      callback=lambda p: inside.extend(blas_threads()))
        assert history.settings["blas_threads"] == threads
        assert set(inside) == expected
        assert blas_threads() == before


# --- the benchmark's functions, as notebook 05 calls them (no timing assertions) ----------

def test_speed_table_rows_on_small_data():
    from mnistnet.bench import epoch_gflop, speed_table
    X, y = TRAIN
    rows = speed_table(X, y, sizes=(20, 7, 10), batch_sizes=(10, 32), repeat=1)
    assert [(r["method"], r["batch_size"]) for r in rows] == [
        ("per-sample", 10), ("vectorised", 10), ("vectorised", 32)]
    for r in rows:
        assert r["images"] == 300 and r["seconds"] > 0 and r["cpu_seconds"] >= 0
        assert r["us_per_image"] == pytest.approx(1e6 * r["seconds"] / 300)
    assert rows[0]["speedup"] == 1.0
    # forward + weight gradient for both layers, error sent back through layer 2 only
    assert epoch_gflop(1, [784, 30, 10]) == pytest.approx(2 * (2 * (784 * 30 + 300) + 300) / 1e9)


def test_numpy_error_settings_are_restored_after_training_and_after_divergence():
    before = np.geterr()
    sgd(Network([20, 7, 10], seed=0), TRAIN, 1, 10, 1.0)
    assert np.geterr() == before
    with pytest.raises(Diverged):
        sgd(Network([20, 7, 10], seed=0), TRAIN, 3, 10, 3.0, backprop=wrong_sign)
    assert np.geterr() == before


# --- settings and data are checked before any work, naming the argument (issue 12) -------------

def counting_backprop():
    calls = []

    def backprop(net, X, y):
        calls.append(1)
        return net.backprop(X, y)
    return backprop, calls


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((1.9, 10), {}, ValueError, r"epochs must be a whole number >= 0, got 1.9"),
    ((1, 10.7), {}, ValueError, r"batch_size must be a whole number >= 1, got 10.7"),
    ((1, float("nan")), {}, ValueError, r"batch_size must be a whole number >= 1, got nan"),
    ((float("inf"), 10), {}, ValueError, r"epochs must be a whole number >= 0, got inf"),
    ((1, 10), {"l2": float("nan")}, ValueError, r"l2 must be a finite number >= 0, got nan"),
    ((1, 10), {"l2": float("inf")}, ValueError, r"l2 must be a finite number >= 0, got inf"),
    ((1, 10), {"l2": -1.0}, ValueError, r"l2 must be a finite number >= 0, got -1.0"),
    ((1, 10), {"l2": "5"}, TypeError, r"l2 must be a number >= 0, got '5' \(str\)"),
    ((1, 10), {"l2": 1000.0}, ValueError, r"l2 = 1000 is too large for η = 1 and n = 300.*1 − ηλ/n"),
    ((1, 10), {"callback": 5}, TypeError, r"callback must be a function or None, got 5"),
    ((1, 10), {"callback_every": 2.5}, ValueError, r"callback_every must be a whole number >= 1"),
    ((1, 10), {"stop": True}, TypeError, r"stop must have an is_set\(\) method"),
    ((1, 10), {"seed": -1}, ValueError, r"seed must be None, a whole number >= 0 or an np.random.Generator, got -1"),
])
def test_bad_settings_are_refused_before_any_work_naming_the_argument(args, kwargs, error, message):
    net = Network([20, 7, 10], seed=0)
    before = params(net)
    spy, calls = counting_backprop()
    with pytest.raises(error, match=message):
        sgd(net, TRAIN, *args, 1.0, backprop=spy, **kwargs)
    assert calls == [] and same(params(net), before)


def test_a_learning_rate_callable_that_makes_the_decay_factor_negative_names_l2():
    etas = iter([0.1] * 5 + [500.0] * 100)
    with pytest.raises(ValueError, match=r"l2 = 1 is too large for η = 500"):
        sgd(Network([20, 7, 10], seed=0), TRAIN, 1, 10, lambda: next(etas), l2=1.0)


@pytest.mark.parametrize("returned, message", [
    (lambda net, g: (g[0][:1], g[1][:1]), r"returned 1 arrays in nabla_w; expected 2, one per layer"),
    (lambda net, g: (g[0], [np.ones(1), np.ones(1)]),
     r"returned nabla_b\[0\] of shape \(1,\); expected \(7,\), the shape of b1"),
    (lambda net, g: (g[0][::-1], g[1]), r"nabla_w\[0\] of shape \(10, 7\); expected \(7, 20\)"),
    (lambda net, g: g[0], r"returned 7 arrays in nabla_w; expected 2"),       # (W1, W2), not a pair of lists
    (lambda net, g: None, r"must return a pair \(nabla_w, nabla_b\)"),
])
def test_a_backprop_hook_is_checked_against_the_parameters_shapes(returned, message):
    net = Network([20, 7, 10], seed=0)
    before = params(net)
    with pytest.raises((ValueError, TypeError), match=message):
        sgd(net, TRAIN, 1, 10, 1.0, backprop=lambda n, X, y: returned(n, n.backprop(X, y)))
    assert same(params(net), before)                        # refused before the first update


def test_nan_data_is_refused_naming_the_row_not_blamed_on_eta():
    X = TRAIN[0].copy()
    X[17, 3] = np.nan
    with pytest.raises(ValueError, match=r"training_data: X has nan in row 17, column 3"):
        sgd(Network([20, 7, 10], seed=0), (X, TRAIN[1]), 1, 10, 0.01)
    with pytest.raises(ValueError, match=r"validation_data: X has nan in row 17"):
        sgd(Network([20, 7, 10], seed=0), TRAIN, 1, 10, 0.01, validation_data=(X[:100], VALID[1]))


def test_raw_integer_pixels_are_refused_with_how_to_scale():
    X = (np.abs(TRAIN[0]) * 60).astype(np.uint8)
    with pytest.raises(ValueError, match=r"training_data: X holds whole numbers .*X = X / 255"):
        sgd(Network([20, 7, 10], seed=0), (X, TRAIN[1]), 1, 10, 3.0)


def test_diverged_names_unscaled_inputs_before_eta():
    X = np.abs(TRAIN[0]) * 60                               # pixel-like values up to ~255
    with pytest.warns(UserWarning, match="unscaled pixel values"):
        with pytest.raises(Diverged) as info:
            sgd(Network([20, 30, 10], seed=0), (X, TRAIN[1]), 5, 10, 10.0, seed=0)
    message = str(info.value)
    assert "likely cause is unscaled inputs" in message and "X = X / " in message
    assert "lower η" not in message and "learning rate too large" not in message


def test_diverged_names_a_weight_decay_far_too_strong_before_eta():
    n, eta = len(TRAIN[0]), 1000.0
    with pytest.raises(Diverged) as info:
        sgd(Network([20, 30, 10], seed=0), TRAIN, 5, 10, eta, l2=0.5 * n / eta, seed=0)
    assert "weight decay far too strong: l2 = λ = 0.15" in str(info.value)
    assert "lower η" not in str(info.value)


# --- one stop mechanism ------------------------------------------------------------------------

def test_one_stop_event_set_from_outside_or_by_progress_stop():
    event = threading.Event()
    seen = []

    def callback(progress):
        seen.append(progress.stop_event)
        if progress.epoch == 2 and progress.batch == 5:
            event.set()                                    # e.g. a Stop button in another thread

    history = sgd(Network([20, 7, 10], seed=0), TRAIN, 5, 10, 1.0, stop=event,
                  callback=callback, callback_every=5)
    assert seen[0] is event and history.stopped and history.stop_reason == "stop requested"
    assert history.batches == 35 and history.epoch[-1] == pytest.approx(1 + 5 / 30)
    event = threading.Event()
    history = sgd(Network([20, 7, 10], seed=0), TRAIN, 5, 10, 1.0, stop=event,
                  callback=lambda p: p.epoch == 2 and p.stop("enough"))
    assert event.is_set() and history.stop_reason == "enough" and history.epoch == [1, 2]
    already = threading.Event()
    already.set()
    history = sgd(Network([20, 7, 10], seed=0), TRAIN, 5, 10, 1.0, stop=already)
    assert history.stopped and history.batches == 0 and len(history) == 0


# --- monitoring: the cost on a fixed sample ------------------------------------------------------

def test_the_training_cost_is_measured_on_a_fixed_evenly_spaced_sample(monkeypatch):
    monkeypatch.setattr(train, "COST_SAMPLE", 100)
    net = Network([20, 7, 10], seed=0)
    history = sgd(net, TRAIN, 2, 10, 1.0)
    X, y = TRAIN
    assert history.settings["cost_sample"] == 100
    assert history.cost[-1] == pytest.approx(net.cost(X[::3], y[::3]), rel=1e-12)
    assert history.setup_seconds >= 0 and len(history.eval_seconds) == 2


# --- BLAS threads: overlapping runs ----------------------------------------------------------------

class FakeBlas:
    """A process-wide thread setting, standing in for threadpoolctl's (which is per-library)."""
    threads = 8

    def __init__(self, limits=None, user_api=None):
        self.original, FakeBlas.threads = FakeBlas.threads, limits

    def restore_original_limits(self):
        FakeBlas.threads = self.original

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore_original_limits()


@pytest.mark.parametrize("first_ends_first", [True, False])
def test_overlapping_runs_restore_the_setting_from_before_the_first(monkeypatch, first_ends_first):
    monkeypatch.setattr(train, "threadpool_limits", FakeBlas)
    monkeypatch.setattr(FakeBlas, "threads", 8)
    inside = {"first": [], "second": []}
    second_in, release = threading.Event(), {"first": threading.Event(), "second": threading.Event()}
    done = {}

    def run(name):
        def callback(progress):
            inside[name].append(FakeBlas.threads)
            if name == "second":
                second_in.set()
            release[name].wait(30)
        sgd(Network([20, 7, 10], seed=0), TRAIN, 1, 300, 1.0, callback=callback)
        done[name] = True

    first = threading.Thread(target=run, args=("first",))
    first.start()
    while not inside["first"]:
        first.join(0.01)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    assert second_in.wait(30)
    order = ["first", "second"] if first_ends_first else ["second", "first"]
    for name, thread in [(n, first if n == "first" else second) for n in order]:
        release[name].set()
        thread.join(30)
        assert done.get(name)
        if name == order[0]:
            assert FakeBlas.threads == 1                    # the other run is still going
    assert inside == {"first": [1], "second": [1]} and FakeBlas.threads == 8


def test_a_run_that_ends_removes_itself_not_another_run_with_the_same_limit(monkeypatch):
    """Runs A (1 thread), B (2), C (1) overlap; C ends first, in a worker thread: B's 2 applies."""
    monkeypatch.setattr(train, "threadpool_limits", FakeBlas)
    monkeypatch.setattr(FakeBlas, "threads", 8)
    seen = []

    def worker():
        runs = [train._blas_limit(limit) for limit in (1, 2, 1)]
        for run in runs:
            run.__enter__()
        runs[2].__exit__(None, None, None)                  # C ends: B is the newest left
        seen.append(FakeBlas.threads)
        for run in runs[1::-1]:
            run.__exit__(None, None, None)
        seen.append(FakeBlas.threads)

    t = threading.Thread(target=worker)
    t.start()
    t.join(30)
    assert seen == [2, 8] and train._blas_runs == []


@pytest.mark.parametrize("placement", ["main+thread", "thread+main", "thread+thread"])
@pytest.mark.parametrize("first_ends_first", [True, False])
def test_overlapping_runs_leave_the_real_blas_setting_as_it_was(placement, first_ends_first):
    """Two sgd runs (a cell in the main thread, a Trainer in another) that end in either order."""
    before = blas_threads()
    if max(before, default=1) < 2:
        pytest.skip("numpy's BLAS uses one thread here already")
    X = np.random.default_rng(0).random((200, 784))            # products big enough for BLAS threads
    data = (X, np.arange(200) % 10)
    where = dict(zip(("first", "second"), placement.split("+")))
    entered, go, ended = ({n: threading.Event() for n in where} for _ in range(3))
    threads = []

    def start_second():
        if where["second"] == "thread":
            threads.append(threading.Thread(target=run, args=("second",)))
            threads[-1].start()
            assert entered["second"].wait(30)

    def run(name):
        def callback(progress):
            if name == "first":
                start_second()                          # the second starts while the first runs
            entered[name].set()
            go[name].wait(30)
        sgd(Network([784, 30, 10], seed=0), data, 1, 100, 1.0, callback=callback)
        ended[name].set()

    def release():
        assert entered["first"].wait(30) and entered["second"].wait(30)
        for name in (["first", "second"] if first_ends_first else ["second", "first"]):
            go[name].set()
            ended[name].wait(30)

    releaser = threading.Thread(target=release)
    releaser.start()
    if where["first"] == "thread":
        threads.append(threading.Thread(target=run, args=("first",)))
        threads[-1].start()
        assert entered["first"].wait(30)
    if "main" in where.values():
        run(next(n for n in where if where[n] == "main"))
    for t in [releaser] + threads:
        t.join(30)
    assert all(e.is_set() for e in ended.values())
    assert blas_threads() == before                          # the main thread's view
    seen = []
    t = threading.Thread(target=lambda: seen.extend(blas_threads()))
    t.start()
    t.join()
    assert seen == before                                   # and a new thread's
