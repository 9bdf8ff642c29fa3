"""An interactive trainer: sliders, Train / Stop / Reset, and a live plot::

    trainer = Trainer()          # loads MNIST here, for this Trainer, so Train starts at once
    trainer                      # shows the controls

Training runs ``train.sgd`` in a background thread, so the kernel stays free: ``sgd`` reads η
from the slider before every mini-batch and checks the run's stop event (set by Stop). The
curves are drawn by ``mnistnet.plots`` (no pyplot, safe in the thread) and sent as PNG bytes
to an ``ipywidgets.Image``: no flicker, nothing added to a cell's output. Where that cannot
work (README, "Where this runs": Colab, VS Code), ``background=False`` trains in the
foreground and ``train_now()`` in the calling cell, drawing in its output.
"""

import html
import os
import re
import sys
import threading
import time
import traceback
import warnings

import ipywidgets as widgets
import numpy as np

from . import data as mnist_data
from . import plots
from .network import Network
from .train import Diverged, sgd

COST_OPTIONS = (("quadratic", "quadratic"), ("cross-entropy", "cross_entropy"))
TRAIN_SIZES = (1_000, 10_000)          # subsets offered for quick runs, besides "all"
LIMITS = {"hidden": (5, 200), "batch_size": (1, 100), "epochs": (1, 60)}   # the sliders' ranges
# η on a 1-2-3-5 ladder, 0.001 … 100, so the slider lands exactly on 3, 0.5 or 0.05. Written as
# decimals: float("3e-1") is the float nearest 0.3, the same as the literal 0.3.
LEARNING_RATES = tuple(float(f"{m}e{k}") for k in range(-3, 2) for m in (1, 2, 3, 5)) + (100.0,)
STOP_REASON = "stopped by the Stop button"
RED = "#b00020"
END_BAR_STYLE = {"done": "success", "diverged": "danger", "error": "danger"}   # else "warning"
COLAB_NOTE = ("Colab does not show widget updates sent from a background thread "
              "(googlecolab/colabtools#3373), so this Trainer trains in the foreground: "
              "during a run the kernel is busy, and Stop and η changes wait until it ends "
              "(Colab's interrupt button stops it). trainer.train_now() in a cell does the "
              "same and draws each epoch in the cell's output.")
FOREGROUND_NOTE = ("training in the foreground: the kernel is busy until the run ends, and Stop "
                   "and η changes wait until then (the kernel's interrupt stops it).")


def front_end(environ=None, modules=None):
    """The notebook front end running this kernel, as far as it can tell (environ, modules:
    default os.environ, sys.modules): "colab" (google.colab loaded or COLAB_RELEASE_TAG set),
    "vscode" (VSCODE_PID or VSCODE_CWD set: VS Code started the kernel), else "jupyter"."""
    environ = os.environ if environ is None else environ
    if "google.colab" in (sys.modules if modules is None else modules) or "COLAB_RELEASE_TAG" in environ:
        return "colab"
    return "vscode" if "VSCODE_PID" in environ or "VSCODE_CWD" in environ else "jupyter"


def _plain(html_text):
    """The text of a little HTML: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def _whole(e):
    """True for a whole number of epochs (a stopped run ends part way through one)."""
    return abs(e - round(e)) < 1e-9


def _images(n):
    return f"{n:,} images".replace(",", " ")        # 50 000 images


def _epoch_text(h, epochs, prefix=""):
    """The status line for a History: 'epoch 3/30 · validation accuracy … · 0.52 s per epoch · η = 3'."""
    e = h.epoch[-1]
    where = f"epoch {round(e)}/{epochs}" if _whole(e) else f"during epoch {int(np.ceil(e))}/{epochs}"
    acc = "" if h.accuracy[-1] is None else f" · validation accuracy {100 * h.accuracy[-1]:.2f} %"
    # Seconds per epoch from whole epochs only: a stopped run's last entry is a fraction of one.
    full = [s + v for e, s, v in zip(h.epoch, h.seconds, h.eval_seconds) if _whole(e)]
    secs = f" · {np.mean(full[-3:]):.2f} s per epoch" if full else ""
    return (f"{prefix}{where}{acc} · cost {h.cost[-1]:.4g}{secs} · "
            f"η = {plots.eta_text(h.learning_rate[-1])}")


def _check_int(name, value, low, high):
    """An int setting in [low, high], or a ValueError naming it (a slider would clamp it silently)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"Trainer: {name}={value!r}; expected a whole number from {low} to {high}")
    return int(value)


def _eta_options(learning_rate):
    """The slider's (label, η) stops: the ladder, plus learning_rate if it is not on it."""
    eta = float(learning_rate) if isinstance(learning_rate, (int, float, np.number)) else np.nan
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"Trainer: learning_rate={learning_rate!r}; expected a number > 0, "
                         f"e.g. one of {', '.join(plots.eta_text(v) for v in LEARNING_RATES[::4])}")
    return [(plots.eta_text(v), v) for v in sorted(set(LEARNING_RATES) | {eta})]


class Trainer:
    """Train a Network([784, hidden, 10]) on MNIST with sliders and a live plot.

    Parameters:
    - data: what ``load_mnist()`` returns, ((X, y), (X_valid, y_valid), (X_test, y_test)),
      images in rows X (N, 784), labels y (N,); the test pair is optional (validation stands
      in). Checked once, here, and kept as float32 for this Trainer only; None loads MNIST.
    - seed: an int ≥ 0 for the initial weights and the shuffling: same settings, same run.
    - hidden (5–200), learning_rate (> 0), batch_size (1–100), epochs (1–60), cost,
      train_size (None: all): the controls' first values.
    - draw: False draws no curves and results (for scripts and tests that need the numbers).
    - background: True trains in a thread; False in the foreground, where Stop and η changes
      wait until the run ends; None: False on Colab, True elsewhere.
    Raises ValueError, naming the argument, for a setting out of range or bad data (TypeError
    for data that is not two or three (X, y) pairs).

    Controls (set ``.value`` or ``.click()`` from code, then ``wait()`` for the History):
    hidden_slider, learning_rate_slider, batch_size_slider, epochs_slider, cost_choice,
    train_size_choice, train_button, stop_button, reset_button. Views: progress_bar, status,
    note (what a change did), plot (the curves), results (misclassified digits, confusion
    matrix). State: net, history (filled live), previous ((label, History) of the run before),
    error and exception (of a diverged or failed run), lr_log ([(mini-batches done, η)] at
    each change of η), first_point_seconds (Train click to the first point), running.
    Every Train starts from the same seeded weights, so the previous run's faded curve is a
    fair comparison. stop_timeout (30 s): how long Reset and ``close()`` wait for a stopped
    run to end. While a run trains, numpy's BLAS uses ``train.BLAS_THREADS`` thread.
    """

    stop_timeout = 30.0

    def __init__(self, data=None, *, seed=0, hidden=30, learning_rate=3.0, batch_size=10,
                 epochs=30, cost="quadratic", train_size=None, draw=True, background=None):
        for name, value in dict(hidden=hidden, batch_size=batch_size, epochs=epochs).items():
            _check_int(name, value, *LIMITS[name])
        self.seed, self.draw = _check_int("seed", seed, 0, 2**32 - 1), draw
        if cost not in dict(COST_OPTIONS).values():
            raise ValueError(f"Trainer: cost={cost!r}; expected 'quadratic' or 'cross_entropy'")
        self.front_end = front_end()
        self.background = self.front_end != "colab" if background is None else bool(background)
        self._lock = threading.RLock()
        self._thread = self._t_click = self._cell = None
        self._stop = threading.Event()        # the run's one stop signal, new for each run
        self._last_bar, self.running = 0.0, False
        self.history = self.previous = self.error = self.exception = None
        self.lr_log, self.first_point_seconds = [], None
        self.net = self._take_data(data, int(hidden), cost)
        self._make_controls(hidden, learning_rate, batch_size, epochs, cost, train_size)
        self.widget = self._layout()
        self._show_empty_plot()
        self._set_status(f"ready: network {self._arch()}, random weights (seed {seed}). Click Train.")
        self._set_note(COLAB_NOTE if self.front_end == "colab" and not self.background else "")

    def _take_data(self, data, hidden, cost):
        """Check the data pairs once, keep them (float32); return the seeded network."""
        if data is None:
            data = mnist_data.load_mnist(dtype=np.float32)
        try:
            (X, y), valid, *rest = data
            pairs = [(X, y), tuple(valid)] + [tuple(p) for p in rest]
        except (TypeError, ValueError):
            pairs = []
        if not 2 <= len(pairs) <= 3 or any(len(p) != 2 for p in pairs):
            raise TypeError("Trainer: data must be what load_mnist() returns: ((X, y), "
                            "(X_valid, y_valid), (X_test, y_test)), the test pair optional")
        n_in = np.shape(X)[1] if np.ndim(X) == 2 else 784
        net = Network([n_in, hidden, 10], cost=cost, seed=self.seed, dtype=np.float32)
        checked = []
        for (Xi, yi), name in zip(pairs, ("training", "validation", "test")):
            try:
                checked.append(net.check_data(Xi, yi, batch_only=True, targets=False)[:2])
            except (ValueError, TypeError) as e:
                hint = " load_mnist() gives rows by default (flatten=True)." if np.ndim(Xi) == 3 else ""
                raise type(e)(f"Trainer: the {name} data: {e}{hint}") from None
        (self._X, self._y), self._valid = checked[:2]
        # What the final report is on: the test pair, or the validation pair standing in.
        self._test, self._test_name = (checked[2], "test") if rest else (self._valid, "validation")
        return net

    def _make_controls(self, hidden, learning_rate, batch_size, epochs, cost, train_size):
        n = len(self._X)
        sizes = [(_images(k), k) for k in TRAIN_SIZES if k < n] + [(f"all {_images(n)}", n)]
        if train_size is not None and train_size not in dict(sizes).values():
            _check_int("train_size", train_size, 1, n)
            sizes = sorted(sizes + [(_images(train_size), train_size)], key=lambda s: s[1])

        def control(kind, name, width="360px", on_change=None, **kw):
            widget = kind(description=name, style={"description_width": "90px"},
                          layout=widgets.Layout(width=width), **kw)
            widget.observe(on_change or self._on_setting, names="value")
            return widget

        def slider(name, value, on_change=None):        # an IntSlider over LIMITS[name]
            low, high = LIMITS[name]
            return control(widgets.IntSlider, name.replace("_", " "), value=value, min=low,
                           max=high, continuous_update=False, on_change=on_change)

        def button(name, icon, on_click, tooltip, style="", **kw):
            b = widgets.Button(description=name, icon=icon, tooltip=tooltip, button_style=style,
                               layout=widgets.Layout(width="96px"), **kw)
            b.on_click(on_click)
            return b

        self.hidden_slider = slider("hidden", hidden, self._on_hidden)
        self.learning_rate_slider = control(widgets.SelectionSlider, "learning rate",
                                            options=_eta_options(learning_rate),
                                            value=float(learning_rate), continuous_update=False)
        self.batch_size_slider = slider("batch_size", batch_size)
        self.epochs_slider = slider("epochs", epochs)
        self.cost_choice = control(widgets.Dropdown, "cost", "300px", options=COST_OPTIONS, value=cost)
        self.train_size_choice = control(widgets.Dropdown, "training set", "300px", options=sizes,
                                         value=train_size or n)
        self.train_button = button("Train", "play", self._on_train,
                                   "train a fresh network with these settings", "primary")
        self.stop_button = button("Stop", "stop", self._on_stop, "stop after the current mini-batch",
                                  "warning", disabled=True)
        self.reset_button = button("Reset", "undo", self._on_reset,
                                   "stop, clear the curves, back to the seeded weights")

    def _layout(self):
        """Make the views and return the box that holds everything."""
        def view(name, kind, **layout):                # a CSS class each, for the browser test
            widget = kind(layout=widgets.Layout(**layout))
            widget.add_class(f"mnistnet-trainer-{name}")
            return widget

        self.progress_bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress",
                                                  style={"description_width": "60px"},
                                                  layout=widgets.Layout(width="300px"))
        self.status = view("status", widgets.HTML, min_height="24px")
        self.note = view("note", widgets.HTML, min_height="20px")
        self.plot = view("plot", widgets.Image, width="774px")          # PNG, the default format
        self.results = view("results", widgets.Image, width="774px", display="none")
        sliders = widgets.VBox([self.hidden_slider, self.learning_rate_slider, self.batch_size_slider,
                                self.epochs_slider])
        buttons = widgets.HBox([self.train_button, self.stop_button, self.reset_button])
        right = widgets.VBox([self.cost_choice, self.train_size_choice, buttons, self.progress_bar])
        box = widgets.VBox([widgets.HBox([sliders, right]), self.status, self.note, self.plot, self.results])
        box.add_class("mnistnet-trainer")
        return box

    # --- display -----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        """The widget view, with a text that says what to do where widgets are not drawn."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.text_view()
        return bundle

    def text_view(self):
        """What a front end that draws no widgets shows instead of the Trainer."""
        return (f"{self!r}: the trainer's sliders and buttons are widgets. If you see this text "
                f"instead, this front end has not drawn them (VS Code with ipywidgets 8.1.9: "
                f"microsoft/vscode-jupyter#17504; Colab with ipywidgets 8: googlecolab/colabtools"
                f"#4525). trainer.train_now() trains with the current settings and draws each epoch "
                f"in the cell's output; set them in code, e.g. trainer.learning_rate_slider.value = 0.5.")

    def __repr__(self):
        return f"Trainer({self._arch()}, {'training' if self.running else 'idle'})"

    # --- settings and helpers ---------------------------------------------------------

    def settings(self):
        """The current control values, as a dict."""
        return dict(hidden=self.hidden_slider.value, learning_rate=self.learning_rate_slider.value,
                    batch_size=self.batch_size_slider.value, epochs=self.epochs_slider.value,
                    cost=self.cost_choice.value, train_size=self.train_size_choice.value)

    def _arch(self, hidden=None):
        return f"{self._X.shape[1]}-{hidden or self.net.sizes[1]}-10"

    def _new_network(self):
        return Network([self._X.shape[1], self.hidden_slider.value, 10], cost=self.cost_choice.value,
                       seed=self.seed, dtype=np.float32)

    def _show_in_cell(self, key, obj):
        """train_now's view: obj (PNG bytes, or a line of text) as the running cell's output
        ``key``, replacing the last one in place (self._cell holds the IPython display handles).
        Outside IPython the text is printed."""
        from IPython.display import Image, display
        raw = not isinstance(obj, bytes)
        obj = {"text/plain": obj} if raw else Image(data=obj, format="png")
        if key in self._cell:
            return self._cell[key].update(obj, raw=raw)
        handle = display(obj, raw=raw, display_id=True)
        if handle is not None:
            self._cell[key] = handle
        elif raw:                                  # no IPython shell: nothing was shown
            print(obj["text/plain"])

    def _set_status(self, text, color=None):
        style = f' style="color:{color}"' if color else ""
        self.status.value = f"<span{style}>{html.escape(text)}</span>"
        if self._cell is not None:
            self._show_in_cell("status", text)

    def _set_note(self, text):
        self.note.value = f"<i>{html.escape(text)}</i>" if text else ""

    def _set_image(self, image, fig):
        png = plots.png_bytes(fig)
        image.value = png
        if self._cell is not None:
            self._show_in_cell("plot" if image is self.plot else "results", png)

    def _draw_curves(self, history, epochs, title=None):
        faded = [self.previous] if self.previous else ()          # the run before, in grey
        self._set_image(self.plot, plots.plot_curves([history], [self.label(history)], faded=faded,
                                                     epochs=epochs, title=title))

    def _buttons(self, running):
        self.train_button.disabled = running
        self.stop_button.disabled = not running

    def _show_empty_plot(self):
        if self.draw:
            self.plot.value = plots.png_bytes(plots.plot_curves(
                [], epochs=self.epochs_slider.value,
                title="click Train: the curves appear epoch by epoch"))

    # --- control callbacks (run in the kernel's main thread) ------------------------------

    def _on_hidden(self, change):
        with self._lock:
            if self.running:
                return self._set_note(f"hidden = {change['new']}: takes effect at the next Train, "
                                      f"which builds a new network {self._arch(change['new'])}; this "
                                      f"run keeps {self.net.sizes[1]} hidden units.")
            self.net = self._new_network()
        self._set_note(f"hidden = {change['new']}: network re-initialised as {self._arch()} "
                       f"(new random weights, seed {self.seed}).")
        self.results.layout.display = "none"   # they were of the replaced network; the curves stay
        self._set_status(f"ready: network {self._arch()}, random weights (seed {self.seed}). Click Train.")

    def _on_setting(self, change):
        """Say in the note what a changed control (other than hidden) does, and when."""
        owner, value = change["owner"], change["new"]
        if owner is self.learning_rate_slider:          # sgd reads it before every mini-batch
            what, when = f"learning rate η = {plots.eta_text(value)}", "from the next mini-batch of this run"
        else:
            value = {v: k for k, v in COST_OPTIONS}.get(value, value)    # a cost by its label
            what, when = f"{owner.description} = {value}", "at the next Train"
        self._set_note(f"{what} {when if self.running else 'for the next run'}.")
        if not self.running and owner is self.epochs_slider and self.history is None:
            self._show_empty_plot()

    def _begin(self, cell=None):
        """Set up a run from the seeded weights; return (net, settings), or None if one is going
        on. cell: {} for train_now to show the run in its cell (_show_in_cell), else None."""
        with self._lock:
            if self.running:
                self._set_note("already training: that click was ignored (Stop first).")
                return None
            self.running, self._cell, self._t_click = True, cell, time.perf_counter()
            self._stop, s = threading.Event(), self.settings()
            if self.history:                   # a run with at least one point: shown faded
                self.previous = (self.label(), self.history)
            self.history = self.error = self.exception = None
            self.lr_log, self.first_point_seconds = [], None
            self.net = self._new_network()
            self._buttons(True)
        self.progress_bar.bar_style, self.progress_bar.value = "info", 0.0
        self.results.layout.display = "none"
        self._set_note("" if self.background else FOREGROUND_NOTE)
        self._set_status(f"training {self._arch(s['hidden'])} on {_images(s['train_size'])}: "
                         f"{s['epochs']} epochs, batch size {s['batch_size']}, "
                         f"η = {plots.eta_text(s['learning_rate'])}…")
        return self.net, s

    def _on_train(self, _button=None):
        started = self._begin()
        if started and self.background:
            self._thread = threading.Thread(target=self._run, args=started, daemon=True,
                                            name="mnistnet-trainer")
            self._thread.start()
        elif started:
            self._run(*started)

    def train_now(self, show=True):
        """Train one run with the current settings in the calling cell; return its History.

        With ``show``, the status line, the curves (after each epoch) and the results are the
        cell's own outputs, replaced in place: no widget support needed. The kernel is busy
        until the run ends (its interrupt stops it). RuntimeError if a run is going on.
        """
        started = self._begin({} if show else None)
        if started is None:
            raise RuntimeError("a run is already going on: trainer.wait() for it, or Stop it")
        try:
            self._run(*started)
        finally:
            self._cell = None
        return self.history

    def _on_stop(self, _button=None):
        with self._lock:
            if not self.running:
                return
            self._stop.set()                   # sgd checks it before every mini-batch
        self._set_note("stopping after the current mini-batch…")

    def _stop_and_wait(self):
        """Stop the run, if any; True once none is going on, False if still running after stop_timeout."""
        self._on_stop()
        try:
            self.wait(timeout=self.stop_timeout)
        except TimeoutError:
            return False
        return True

    def _on_reset(self, _button=None):
        if not self._stop_and_wait():          # never reset half way under a running thread
            return self._set_note(f"Reset: the run has not stopped after {self.stop_timeout:g} s; "
                                  f"nothing was reset. Click Reset again once it has stopped.")
        with self._lock:
            self.history = self.previous = self.error = self.exception = None
            self.lr_log, self.first_point_seconds = [], None
            self.net = self._new_network()
        self.progress_bar.value, self.progress_bar.bar_style = 0.0, ""
        self.results.layout.display, self.results.value = "none", b""
        self._show_empty_plot()
        self._set_status(f"reset: network {self._arch()}, its seeded initial weights "
                         f"(seed {self.seed}); earlier curves cleared.")
        self._set_note("")

    # --- the training run (in the training thread, or in the foreground) ------------------

    def _eta(self):
        """The learning rate for the next mini-batch: read from the slider (sgd calls this)."""
        eta = float(self.learning_rate_slider.value)
        if not self.lr_log or eta != self.lr_log[-1][1]:          # a new η: log where it starts
            self.lr_log.append((self.history.batches if self.history is not None else 0, eta))
        return eta

    def _callback(self, progress):
        self.history = progress.history           # filled live, so other cells can look at it
        now = time.perf_counter()
        if progress.end_of_epoch:
            if self.draw:
                self._draw_curves(progress.history, progress.epochs)
            if self.first_point_seconds is None:
                self.first_point_seconds = now - self._t_click
            self._set_status(_epoch_text(progress.history, progress.epochs))
        if progress.end_of_epoch or now - self._last_bar > 0.1:
            self._last_bar = now
            done = progress.epoch - 1 + progress.batch / progress.batches_per_epoch
            self.progress_bar.value = min(1.0, done / progress.epochs)

    def _run(self, net, s):
        """One run: sgd, then the final plot, status and results. Every failure, in training
        or in drawing, ends in the status line (in red), not only in a traceback."""
        n = s["train_size"]
        try:
            history = sgd(net, (self._X[:n], self._y[:n]), s["epochs"], s["batch_size"], self._eta,
                          validation_data=self._valid, seed=self.seed, callback=self._callback,
                          callback_every=max(1, 1000 // s["batch_size"]), stop=self._stop)
            outcome = "stopped" if history.stopped else "done"
            if history.stopped:
                history.stop_reason = STOP_REASON     # the History says who stopped it
        except Diverged as e:
            history, outcome, self.error = e.history, "diverged", str(e)
        except KeyboardInterrupt:          # the kernel's interrupt, in a foreground run
            outcome, self.error = "interrupted", "interrupted (the kernel's interrupt)"
        except Exception as e:             # a bug must show in the UI, not vanish with the thread
            outcome, self.error, self.exception = "error", f"{type(e).__name__}: {e}", e
            traceback.print_exc()
        if outcome in ("interrupted", "error"):
            history = self.history                # as far as it got (None before the first callback)
        try:
            self._finish(net, history, outcome, s["epochs"])
        except Exception as e:
            self.error, self.exception = f"{type(e).__name__}: {e}", e
            traceback.print_exc()
            self.progress_bar.bar_style = "danger"
            self._set_status(f"training ended ({outcome}), but showing its results failed: "
                             f"{self.error}", color=RED)
        finally:
            # Under the lock: a Train click cannot start the next run before the buttons are set.
            with self._lock:
                self.history, self.running = history, False
                self._buttons(False)

    def _finish(self, net, history, outcome, epochs):
        """Final plot, status and results of a run; the note (of the run going on) is cleared."""
        self._set_note("")
        if self.draw and history:                  # None, or a History with no epoch yet: no curves
            self._draw_curves(history, epochs, title={"done": None, "error": "failed"}.get(outcome, outcome))
        self.progress_bar.bar_style = END_BAR_STYLE.get(outcome, "warning")
        if outcome in ("diverged", "error", "interrupted"):
            where = f" after epoch {history.epoch[-1]:g}/{epochs}" if history else ""
            head = {"diverged": f"diverged{where}", "error": "training failed",
                    "interrupted": f"stopped{where}"}[outcome]
            return self._set_status(f"{head}: {self.error}", color=None if outcome == "interrupted" else RED)
        if len(history) == 0:
            return self._set_status("stopped before the first mini-batch: nothing trained.")
        X_test, y_test = self._test
        predicted = net.predict(X_test)
        if self.draw:
            self._set_image(self.results, plots.results_figure(X_test, y_test, predicted,
                                                               name=self._test_name))
            self.results.layout.display = ""
        if outcome == "done":
            prefix, self.progress_bar.value = "done: ", 1.0
        else:   # "stopped during epoch 3/30", or "stopped after epoch 2/30" at a boundary
            prefix = "stopped after " if _whole(history.epoch[-1]) else "stopped "
        self._set_status(_epoch_text(history, epochs, prefix) + f" · {self._test_name} accuracy "
                         f"{100 * np.mean(predicted == y_test):.2f} %")

    # --- for code and tests ----------------------------------------------------------

    def label(self, history=None):
        """run_label of the current or last run, with every η the slider gave it."""
        history = history if history is not None else self.history
        return plots.run_label(history, [eta for _, eta in self.lr_log]) if history is not None else ""

    def wait(self, timeout=None):
        """Block until the current run (if any) has ended; return its History (TimeoutError after timeout s)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"training still running after {timeout} s")
        return self.history

    @property
    def status_text(self):
        """The status line as plain text."""
        return _plain(self.status.value)

    @property
    def note_text(self):
        """The note line (what the last change did) as plain text."""
        return _plain(self.note.value)

    def close(self):
        """Stop any run and close every widget (no widget state is left behind). A run that has
        not stopped after ``stop_timeout`` s ends by itself at its next mini-batch (RuntimeWarning)."""
        if not self._stop_and_wait():
            warnings.warn(f"the training thread has not stopped after {self.stop_timeout:g} s; "
                          f"closing the widgets anyway (it ends at its next mini-batch)",
                          RuntimeWarning, stacklevel=2)
        for widget in self._all_widgets():
            widget.close()

    def _all_widgets(self):
        seen, todo = [], [self.widget]
        while todo:
            seen.append(todo.pop())
            todo.extend(getattr(seen[-1], "children", ()))
        return seen
