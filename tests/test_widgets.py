"""The interactive Trainer, driven from plain Python (no browser, no kernel).

Small generated data: each digit class is a random binary "prototype" image
plus noise, so a network learns it in an epoch or two and runs stay fast.
"""

import re
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mnistnet import Network
from mnistnet.train import History
from mnistnet.plots import plot_curves, results_figure
from mnistnet.widgets import STOP_REASON, Trainer

PNG = b"\x89PNG"


def _is_png(value):
    return bytes(value[:4]) == PNG


def _fake(n, rng, prototypes):
    y = rng.integers(0, 10, n)
    X = np.clip(prototypes[y] + 0.3 * rng.standard_normal((n, 784)), 0, 1).astype(np.float32)
    return X, y


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    prototypes = (rng.random((10, 784)) < 0.2).astype(np.float32)
    return _fake(2000, rng, prototypes), _fake(300, rng, prototypes), _fake(300, rng, prototypes)


@pytest.fixture
def trainer(data):
    t = Trainer(data, seed=0, epochs=3)
    yield t
    t._on_stop()
    t.wait(timeout=30)


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.002)


def _start_long_run(t):
    """A run of many epochs, one sample per mini-batch: seconds long, for stop/η tests."""
    t.batch_size_slider.value = 1
    t.epochs_slider.value = 60
    t.train_button.click()
    _wait_for(lambda: t.history is not None and t.history.batches > 0)


def test_controls_are_labelled_and_have_the_documented_ranges(trainer):
    assert trainer.hidden_slider.description == "hidden"
    assert (trainer.hidden_slider.min, trainer.hidden_slider.max, trainer.hidden_slider.value) == (5, 200, 30)
    lr = trainer.learning_rate_slider
    assert type(lr).__name__ == "SelectionSlider" and lr.description == "learning rate"
    assert (lr.options[0][1], lr.options[-1][1], lr.value) == (0.001, 100, 3.0)
    assert trainer.batch_size_slider.description == "batch size"
    assert trainer.epochs_slider.description == "epochs"
    for s in (trainer.hidden_slider, lr, trainer.batch_size_slider, trainer.epochs_slider):
        assert s.continuous_update is False
    assert [v for _, v in trainer.cost_choice.options] == ["quadratic", "cross_entropy"]
    assert [v for _, v in trainer.train_size_choice.options] == [1000, 2000]   # a subset, or all
    assert trainer.train_size_choice.value == 2000
    assert [b.description for b in (trainer.train_button, trainer.stop_button, trainer.reset_button)] \
        == ["Train", "Stop", "Reset"]
    assert trainer.stop_button.disabled and not trainer.train_button.disabled
    assert _is_png(trainer.plot.value)
    assert "ready" in trainer.status.value


def test_display_is_the_widget_view(trainer):
    bundle = trainer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_train_uses_the_slider_values(trainer, data):
    trainer.hidden_slider.value = 12
    trainer.learning_rate_slider.value = 0.5
    trainer.batch_size_slider.value = 20
    trainer.epochs_slider.value = 2
    trainer.cost_choice.value = "cross_entropy"
    trainer.train_size_choice.value = 1000
    trainer.train_button.click()
    history = trainer.wait(timeout=60)
    assert trainer.net.sizes == [784, 12, 10]
    assert trainer.net.cost_name == "cross_entropy"
    assert history.settings["batch_size"] == 20 and history.settings["n"] == 1000
    assert history.settings["epochs"] == 2 and history.epoch == [1, 2]
    assert history.learning_rate == [0.5, 0.5]
    assert history.batches == 2 * 1000 // 20
    assert not history.stopped and trainer.error is None
    assert "done: epoch 2/2" in trainer.status.value and "validation accuracy" in trainer.status.value
    assert "s per epoch" in trainer.status.value
    assert history.accuracy[-1] > 0.9                        # the fake digits are easy
    assert _is_png(trainer.plot.value)
    assert _is_png(trainer.results.value) and trainer.results.layout.display != "none"
    assert not trainer.running and trainer.stop_button.disabled and not trainer.train_button.disabled
    assert trainer.first_point_seconds is not None


def test_runs_are_seeded_and_the_previous_run_is_kept(trainer):
    trainer.train_button.click()
    first = trainer.wait(timeout=60)
    trainer.train_button.click()
    second = trainer.wait(timeout=60)
    assert second is not first
    assert second.cost == first.cost and second.accuracy == first.accuracy
    label, previous = trainer.previous
    assert previous is first and "η 3" in label and "30 hidden" in label


def test_stop_ends_a_long_run_early(trainer):
    _start_long_run(trainer)
    full_run = 60 * trainer.settings()["train_size"]   # one-sample batches: some 20 s
    assert trainer.running and not trainer.stop_button.disabled and trainer.train_button.disabled
    clicked = time.perf_counter()
    trainer.stop_button.click()
    _wait_for(lambda: trainer.history.stopped, timeout=10.0)     # sgd has returned
    assert time.perf_counter() - clicked < 10.0                  # generous: a loaded CI machine
    history = trainer.wait(timeout=10)                           # final plot and results drawn
    assert history.stopped and history.stop_reason == STOP_REASON
    assert history.epoch[-1] < 60 and history.batches < full_run // 4   # far from the full run
    assert re.search(r"stopped (during|after) epoch \d+/60", trainer.status.value)
    assert not trainer.running and not trainer.train_button.disabled


def test_a_second_train_click_is_ignored(trainer):
    _start_long_run(trainer)
    thread, history = trainer._thread, trainer.history
    trainer.train_button.click()
    assert trainer._thread is thread and trainer.history is history
    assert "ignored" in trainer.note.value
    trainer.stop_button.click()
    trainer.wait(timeout=10)


def test_changing_hidden_reinitialises_the_network_and_says_so(trainer):
    before = trainer.net
    trainer.hidden_slider.value = 50
    assert trainer.net is not before and trainer.net.sizes == [784, 50, 10]
    fresh = Network([784, 50, 10], seed=0, dtype=np.float32)
    assert np.array_equal(trainer.net.weights[0], fresh.weights[0])
    assert "re-initialised" in trainer.note.value and "784-50-10" in trainer.note.value


def test_changing_hidden_during_a_run_applies_at_the_next_train(trainer):
    _start_long_run(trainer)
    running_net = trainer.net
    trainer.hidden_slider.value = 40
    assert trainer.net is running_net and running_net.sizes == [784, 30, 10]
    assert "next Train" in trainer.note.value and "784-40-10" in trainer.note.value
    trainer.stop_button.click()
    trainer.wait(timeout=10)
    trainer.epochs_slider.value = 1
    trainer.batch_size_slider.value = 10
    trainer.train_button.click()
    trainer.wait(timeout=60)
    assert trainer.net.sizes == [784, 40, 10]


def test_learning_rate_changed_mid_run_is_used(trainer):
    _start_long_run(trainer)
    trainer.learning_rate_slider.value = 0.01
    assert "next mini-batch" in trainer.note.value
    _wait_for(lambda: trainer.lr_log[-1][1] == 0.01)
    _wait_for(lambda: trainer.history.batches > trainer.lr_log[-1][0] + 10)
    trainer.stop_button.click()
    history = trainer.wait(timeout=10)
    (b0, eta0), (b1, eta1) = trainer.lr_log
    assert (b0, eta0) == (0, 3.0) and b1 > 0 and eta1 == 0.01
    assert history.learning_rate[-1] == 0.01              # η of the last mini-batch
    assert trainer.label().startswith("η 3→0.01")


def test_divergence_is_reported_in_the_status_not_raised(trainer):
    trainer.learning_rate_slider.value = 100
    trainer.train_button.click()
    history = trainer.wait(timeout=60)                     # no exception escapes
    assert history.diverged and trainer.error
    assert "diverged" in trainer.status.value
    assert "training diverged" in trainer.status.value     # train.Diverged's own message
    assert trainer.progress_bar.bar_style == "danger"
    assert trainer.exception is None and not trainer.running and trainer.note_text == ""
    assert _is_png(trainer.plot.value)


def test_reset_clears_everything(trainer):
    trainer.train_button.click()
    trainer.wait(timeout=60)
    trainer.train_button.click()
    trainer.wait(timeout=60)
    assert trainer.history is not None and trainer.previous is not None
    trainer.reset_button.click()
    assert trainer.history is None and trainer.previous is None and trainer.error is None
    assert trainer.lr_log == [] and trainer.progress_bar.value == 0
    assert trainer.results.layout.display == "none"
    assert "reset" in trainer.status.value
    fresh = Network([784, 30, 10], seed=0, dtype=np.float32)
    assert np.array_equal(trainer.net.weights[0], fresh.weights[0])


def test_reset_during_a_run_stops_it(trainer):
    _start_long_run(trainer)
    trainer.reset_button.click()
    assert not trainer.running and trainer.history is None
    assert not trainer._thread.is_alive()


def test_draw_false_trains_without_images(data):
    t = Trainer(data, seed=0, epochs=2, draw=False)
    t.train_button.click()
    history = t.wait(timeout=60)
    assert len(history) == 2 and "done: epoch 2/2" in t.status_text
    assert len(t.plot.value) == 0 and len(t.results.value) == 0
    assert t.results.layout.display == "none"


def test_plain_text_views_and_close(trainer):
    trainer.hidden_slider.value = 20
    assert trainer.note_text.startswith("hidden = 20: network re-initialised as 784-20-10")
    assert trainer.status_text.startswith("ready: network 784-20-10")
    trainer.close()
    assert all(w.comm is None for w in trainer._all_widgets())


def test_figures_never_touch_pyplot(data):
    before = plt.get_fignums()
    h = History(sizes=[784, 30, 10], cost="quadratic", batch_size=10)
    h.epoch, h.cost, h.accuracy, h.learning_rate = [1, 2], [0.1, float("nan")], [0.9, 0.1], [3.0, 3.0]
    fig = plot_curves([h], faded=[("earlier", h)], epochs=5, title="t")
    assert len(fig.axes) == 2
    X, y = data[2]
    fig = results_figure(X, y, (y + 1) % 10)
    assert len(fig.axes) == 13                             # 12 digits + the confusion matrix
    assert plt.get_fignums() == before


def test_a_fast_train_click_as_a_run_ends_leaves_stop_enabled(trainer):
    """The next run may start the moment the last one sets running = False: the finishing
    thread must not then disable Stop (and enable Train) under the new run."""
    import threading
    ended, clicked = threading.Event(), threading.Event()
    real = trainer._buttons

    def buttons(running):             # the finishing thread pauses here, as a slow thread might
        if not running and threading.current_thread().name == "mnistnet-trainer" \
                and not ended.is_set():
            ended.set()
            clicked.wait(timeout=1.0)
        real(running)

    trainer._buttons = buttons
    trainer.epochs_slider.value = 1
    trainer.batch_size_slider.value = 100
    trainer.train_button.click()
    assert ended.wait(timeout=60)
    first = trainer._thread
    trainer.batch_size_slider.value = 1                    # the next run is long
    trainer.epochs_slider.value = 60
    trainer.train_button.click()                           # the fast click
    clicked.set()
    first.join(timeout=30)
    assert trainer._thread is not first and trainer.running
    assert not trainer.stop_button.disabled and trainer.train_button.disabled
    trainer.stop_button.click()
    trainer.wait(timeout=30)
    assert trainer.stop_button.disabled and not trainer.train_button.disabled


def _hold_the_training_thread(t):
    """Make the training thread stop in its callback until the returned Event is set."""
    import threading
    release, real = threading.Event(), t._callback

    def held(progress):
        real(progress)
        release.wait(timeout=60)

    t._callback = held
    return release


def test_reset_waits_for_the_run_and_says_so_when_it_has_not_stopped(trainer):
    release = _hold_the_training_thread(trainer)
    _start_long_run(trainer)
    history, net = trainer.history, trainer.net
    trainer.stop_timeout = 0.05
    trainer.reset_button.click()                           # no TimeoutError, and nothing half done
    assert "nothing was reset" in trainer.note_text and "0.05 s" in trainer.note_text
    assert trainer.running and trainer.history is history and trainer.net is net
    release.set()
    trainer.wait(timeout=30)
    trainer.reset_button.click()
    assert trainer.history is None and "reset" in trainer.status_text and trainer.note_text == ""


def test_close_closes_the_widgets_even_if_the_run_has_not_stopped(trainer):
    release = _hold_the_training_thread(trainer)
    _start_long_run(trainer)
    trainer.stop_timeout = 0.05
    with pytest.warns(RuntimeWarning, match="has not stopped after 0.05 s"):
        trainer.close()
    assert all(w.comm is None for w in trainer._all_widgets())
    release.set()
    history = trainer.wait(timeout=30)                     # it ended by itself, at once
    assert history.stopped and not trainer.running


def test_status_texts_say_what_the_report_is_on(data):
    # With a test pair: "test accuracy"; without one the validation pair stands in,
    # and the texts say so instead of calling it a test.
    train, valid, test = data
    for pair, name in (((train, valid, test), "test"), ((train, valid), "validation")):
        t = Trainer(pair, seed=0, epochs=1, draw=False)
        seen = []
        t.status.observe(lambda change: seen.append(change["new"]), "value")
        t.train_button.click()
        t.wait(timeout=60)
        assert "training 784-30-10 on 2 000 images: 1 epochs, batch size 10, η = 3…" in seen[0]
        assert t.status_text.endswith(f" · {name} accuracy "
                                      f"{100 * t.net.accuracy(*pair[-1]):.2f} %"), t.status_text
        t.reset_button.click()
        assert "its seeded initial weights (seed 0)" in t.status_text
    fig = results_figure(test[0], test[1], test[1][::-1].copy(), name="validation")
    assert fig.texts[0].get_text().startswith("misclassified validation digits")


# --- issue 14 §2.4: the learning-rate slider lands on the values the notebooks use ---------

def test_learning_rate_slider_lands_on_round_values(trainer):
    lr = trainer.learning_rate_slider
    offered = [v for _, v in lr.options]
    assert offered == [0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5,
                       1, 2, 3, 5, 10, 20, 30, 50, 100]
    for eta in (0.001, 0.01, 0.05, 0.3, 0.5, 3, 100):         # notebook 06 and the learner's η
        lr.value = eta
        assert lr.value == eta and lr.label == f"{eta:g}"      # exactly, not 3.16 or 0.501
        assert trainer.note_text == f"learning rate η = {eta:g} for the next run."
    assert [label for label, _ in lr.options][9:12] == ["0.2", "0.3", "0.5"]   # no float noise


def test_a_learning_rate_off_the_ladder_is_added_and_a_bad_one_refused(data):
    t = Trainer(data, learning_rate=0.07, draw=False)
    assert t.learning_rate_slider.value == 0.07 and (0.07 in [v for _, v in t.learning_rate_slider.options])
    for bad in (0, -1, float("nan"), "3"):
        with pytest.raises(ValueError, match="learning_rate="):
            Trainer(data, learning_rate=bad, draw=False)


def test_legends_write_eta_without_float_noise():
    from mnistnet.plots import run_label
    h = History(sizes=[784, 30, 10], cost="quadratic", batch_size=10)
    h.learning_rate = [0.01, 3.0]
    assert run_label(h).startswith("η 0.01→3, 30 hidden")
    assert run_label(h, [0.1 + 0.2, 10 ** 0.5]).startswith("η 0.3→3.16, ")   # 0.30000000000000004


# --- issue 12: data checked when the Trainer is built; every failure reaches the status line ---

def test_unflattened_images_are_refused_with_the_flatten_hint(data):
    (X, y), valid, test = data
    with pytest.raises(ValueError, match=r"the training data: X has shape \(2000, 28, 28\); "
                                         r"expected \(N, 784\).*flatten=True"):
        Trainer(((X.reshape(-1, 28, 28), y), valid, test))
    with pytest.raises(ValueError, match=r"the validation data: X has shape \(300, 100\)"):
        Trainer(((X, y), (valid[0][:, :100], valid[1]), test))
    with pytest.raises(ValueError, match="the test data: y"):
        Trainer(((X, y), valid, (test[0], test[1][:10])))
    with pytest.raises(TypeError, match="what load_mnist"):
        Trainer((X, y))


def test_settings_out_of_range_are_refused_not_clamped(data):
    for kw in (dict(batch_size=500), dict(epochs=0), dict(hidden=1000), dict(hidden=2.5),
               dict(train_size=10**6), dict(seed="x"), dict(cost="hinge")):
        (name, value), = kw.items()
        with pytest.raises(ValueError, match=f"{name}={value!r}"):
            Trainer(data, draw=False, **kw)
    t = Trainer(data, train_size=500, draw=False)                    # any size up to n is offered
    assert t.train_size_choice.value == 500


def test_a_failure_while_drawing_the_results_reaches_the_status_line(data, monkeypatch):
    from mnistnet import plots

    def broken(*args, **kwargs):
        raise RuntimeError("no room for the confusion matrix")

    monkeypatch.setattr(plots, "plot_confusion", broken)
    t = Trainer(data, seed=0, epochs=1)
    t.train_button.click()
    t.wait(timeout=60)
    assert "no room for the confusion matrix" in t.status_text, t.status_text
    assert t.status_text.startswith("training ended (done), but showing its results failed")
    assert t.error and isinstance(t.exception, RuntimeError)
    assert t.progress_bar.bar_style == "danger" and not t.running
    assert not t.train_button.disabled and t.stop_button.disabled


def test_a_failure_while_drawing_an_epoch_reaches_the_status_line(data, monkeypatch):
    from mnistnet import plots
    t = Trainer(data, seed=0, epochs=2)

    def broken(*args, **kwargs):
        raise MemoryError("figure too big")

    monkeypatch.setattr(plots, "plot_curves", broken)
    t.train_button.click()
    t.wait(timeout=60)
    assert "figure too big" in t.status_text and not t.running


# --- issue 13 §6: no process-wide cache of MNIST ------------------------------------------

def test_mnist_is_loaded_per_trainer_and_freed_with_it(data, monkeypatch):
    import gc
    import weakref
    from mnistnet import data as mnist_data
    calls = []

    def load_mnist(**kwargs):
        calls.append(kwargs)
        return tuple((X.copy(), y.copy()) for X, y in data)

    monkeypatch.setattr(mnist_data, "load_mnist", load_mnist)
    t = Trainer(draw=False)
    X_loaded = weakref.ref(t._X)
    Trainer(draw=False).close()
    assert len(calls) == 2 and calls[0]["dtype"] == np.float32
    t.close()
    del t
    gc.collect()
    assert X_loaded() is None                   # nothing kept the 2000 images alive


# --- issue 10 §4: front ends where live updates cannot work ------------------------------

def test_front_end_detection():
    from mnistnet.widgets import front_end
    assert front_end({}, {}) == "jupyter"
    assert front_end({"COLAB_RELEASE_TAG": "release-colab_20260101"}, {}) == "colab"
    assert front_end({}, {"google.colab": object()}) == "colab"
    assert front_end({"VSCODE_PID": "4242"}, {}) == "vscode"
    assert front_end({"VSCODE_CWD": "/home/me"}, {}) == "vscode"


def test_on_colab_the_trainer_trains_in_the_foreground_and_says_why(data, monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260101")
    t = Trainer(data, seed=0, epochs=2)
    assert t.front_end == "colab" and not t.background
    assert "colabtools#3373" in t.note_text and "foreground" in t.note_text
    t.train_button.click()                     # returns when the run has ended
    assert t._thread is None and not t.running and len(t.history) == 2
    assert t.status_text.startswith("done: epoch 2/2") and _is_png(t.results.value)
    assert Trainer(data, epochs=1, background=True, draw=False).background   # it can be asked for


def test_foreground_mode_draws_each_epoch_and_reports_an_interrupt(data):
    t = Trainer(data, seed=0, epochs=3, background=False)
    assert t.note_text == ""                   # asked for: no front-end excuse to give
    plots_seen, real = [], t._callback

    def interrupted_at_epoch_2(progress):
        real(progress)
        if progress.end_of_epoch:
            plots_seen.append(bytes(t.plot.value))
            if progress.epoch == 2:
                raise KeyboardInterrupt        # what the kernel's interrupt does in a cell

    t._callback = interrupted_at_epoch_2
    t.train_button.click()
    assert len(plots_seen) == 2 and all(_is_png(p) for p in plots_seen)
    assert plots_seen[0] != plots_seen[1]      # redrawn after each epoch
    assert t.status_text == "stopped after epoch 2/3: interrupted (the kernel's interrupt)"
    assert t.note_text == ""                   # the foreground note ended with the run
    assert not t.running and not t.train_button.disabled and len(t.history) == 2


def test_train_now_needs_no_widgets(data, monkeypatch):
    import IPython.display
    shown = []                                 # (display_id, kind, update?) of each output

    class Handle:
        def __init__(self, n):
            self.n = n

        def update(self, obj, raw=False):
            shown.append((self.n, "text" if raw else "png", "update"))

    def display(obj, raw=False, display_id=None):
        shown.append((len(shown), "text" if raw else "png", "new"))
        return Handle(shown[-1][0])

    monkeypatch.setattr(IPython.display, "display", display)
    t = Trainer(data, seed=0, epochs=2)
    history = t.train_now()
    assert len(history) == 2 and not t.running and t.status_text.startswith("done: epoch 2/2")
    new = [s for s in shown if s[2] == "new"]
    assert [kind for _, kind, _ in new] == ["text", "png", "png"]   # status, curves, results
    updates = {n: sum(1 for m, _, u in shown if m == n and u == "update") for n, _, _ in new}
    assert updates[new[1][0]] == 2             # curves: epoch 1, then epoch 2, final (in place)
    with pytest.raises(RuntimeError, match="already going on"):
        _start_long_run(t)
        t.train_now()
    t.stop_button.click()
    t.wait(timeout=30)


def test_train_now_outside_ipython_prints_the_status(data, capsys):
    t = Trainer(data, seed=0, epochs=1, draw=False)
    t.train_now()
    out = capsys.readouterr().out
    assert "training 784-30-10 on 2 000 images" in out and "done: epoch 1/1" in out


def test_where_widgets_are_not_drawn_the_text_says_what_to_do(trainer):
    text = trainer._repr_mimebundle_()["text/plain"]
    assert text.startswith("Trainer(784-30-10, idle)")
    assert "train_now()" in text and "vscode-jupyter#17504" in text
