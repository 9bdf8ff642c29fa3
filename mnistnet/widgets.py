"""An interactive trainer: sliders, Train / Stop / Reset, and a live plot.

Introduced in ``notebooks/06-train-interactive.ipynb``::

    from mnistnet.widgets import Trainer
    trainer = Trainer()          # loads MNIST once, here, so Train starts at once
    trainer                      # shows the controls

How it works, and why
---------------------
* Training runs ``mnistnet.train.sgd`` in a **background thread**. The kernel
  stays free, so a slider moved or a button clicked during training reaches
  the Python side at once (a loop run in the cell itself would hold the kernel
  until it ends, and every click would wait for it).
* The learning-rate slider is passed to ``sgd`` as a zero-argument callable
  that ``sgd`` reads before every mini-batch, so a new η takes effect within
  one mini-batch. Stop calls ``progress.stop()``, which ``sgd`` checks before
  every mini-batch, so it takes effect within milliseconds.
* Every Train starts from freshly initialised weights drawn with the same
  seed, so two runs differ only in the settings that were changed, and the
  faded curve of the previous run is a fair comparison. Changing the hidden
  size builds the new network (new weights) straight away, and the note line
  says so.
* The curves are drawn with matplotlib's object-oriented API on an Agg canvas
  (no ``pyplot``) and sent as PNG bytes to an ``ipywidgets.Image``. Replacing
  an image's bytes does not flicker, never adds a figure to any cell's output
  (pyplot figures made in a thread can be flushed into whichever cell runs
  next), is safe to do from the training thread, and works without a browser,
  so tests can drive the same object.

Headless use (tests, or a notebook cell that checks itself)::

    trainer = Trainer(data, seed=0)
    trainer.hidden_slider.value = 50
    trainer.train_button.click()
    history = trainer.wait()     # the mnistnet.train.History of the run
"""

import functools
import html
import io
import re
import threading
import time
import traceback
import warnings

import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from . import plots
from .network import Network
from .train import Diverged, sgd

COST_OPTIONS = (("quadratic", "quadratic"), ("cross-entropy", "cross_entropy"))
TRAIN_SIZES = (1_000, 10_000)          # subsets offered for quick runs, besides "all"
STOP_REASON = "stopped by the Stop button"
FADED_COLOR = "0.7"


@functools.lru_cache(maxsize=1)
def _default_data():
    """MNIST as float32, loaded once per process (the cache makes a second Trainer instant)."""
    from .data import load_mnist
    return load_mnist(dtype=np.float32)


def _png(fig, dpi=90):
    """Render a Figure made without pyplot to PNG bytes."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)                # an Agg canvas: no pyplot, no GUI, fine in any thread
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _plain(html_text):
    """The text of a little HTML: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def _whole(e):
    """True for a whole number of epochs (a stopped run ends part way through one)."""
    return abs(e - round(e)) < 1e-9


def _epoch_text(h, epochs, prefix=""):
    """The status line for a History: 'epoch 3/30 · validation accuracy … · 0.52 s per epoch · η = 3'."""
    e = h.epoch[-1]
    where = f"epoch {round(e)}/{epochs}" if _whole(e) else f"during epoch {int(np.ceil(e))}/{epochs}"
    acc = h.accuracy[-1]
    acc = "" if acc is None else f" · validation accuracy {100 * acc:.2f} %"
    # Seconds per epoch from whole epochs only: a stopped run's last entry is a fraction of one.
    full = [s + v for e, s, v in zip(h.epoch, h.seconds, h.eval_seconds) if _whole(e)]
    secs = f" · {np.mean(full[-3:]):.2f} s per epoch" if full else ""
    return f"{prefix}{where}{acc} · cost {h.cost[-1]:.4g}{secs} · η = {h.learning_rate[-1]:.3g}"


def run_label(history, etas=None):
    """A short description of a run, e.g. 'η 3, 30 hidden, quadratic, B 10'.

    Inputs:
    - history: the run's train.History.
    - etas: the learning rates used, in order (default: η per epoch from the History;
      the Trainer passes every value the slider took during the run).

    Introduced in ``notebooks/06-train-interactive.ipynb`` (the legends of its curves).
    """
    s = history.settings
    if etas is None:
        etas = [e for e in history.learning_rate if e is not None]
    if not etas:
        eta = ""
    elif min(etas) == max(etas):
        eta = f"η {etas[0]:g}, "
    else:
        eta = f"η {etas[0]:g}→{etas[-1]:g}, "
    sizes = s.get("sizes", [])
    hidden = "-".join(str(n) for n in sizes[1:-1]) or "no"
    cost = s.get("cost", "").replace("_", "-")
    return f"{eta}{hidden} hidden, {cost}, B {s.get('batch_size', '?')}"


def plot_curves(histories, labels=None, *, faded=(), epochs=None, title=None, styles=None,
                fig=None):
    """Training cost and validation accuracy per epoch, side by side.

    Inputs:
    - histories: a list of mnistnet.train.History, drawn in colour (C0, C1, …).
    - labels: one legend label per history (default: run_label of each).
    - faded: (label, History) pairs drawn first, in light grey (earlier runs, for comparison).
    - epochs: the x-axis extent (default: the longest run).
    - title: optional figure title.
    - styles: optional matplotlib line settings per history, e.g.
      ``[dict(color="C0", ls="--"), …]``, to pair related runs by colour.
    - fig: a Figure to draw into (it is cleared); default a new one made
      WITHOUT pyplot, so it is safe in threads and never shown by itself.
    Returns:
    - the Figure. Non-finite costs (a diverged run) are left out; the cost
      axis is logarithmic so quadratic and cross-entropy costs both read well.
      The legend sits below the axes, where it cannot hide a point.

    Introduced in ``notebooks/06-train-interactive.ipynb``.
    """
    if fig is None:
        fig = Figure(figsize=(8.6, 3.3))
    fig.clear()
    ax_cost, ax_acc = fig.subplots(1, 2)
    labels = list(labels) if labels is not None else [run_label(h) for h in histories]
    longest = max([h.epoch[-1] for h in histories if len(h)] +
                  [h.epoch[-1] for _, h in faded if len(h)] + [1])
    epochs = epochs or int(np.ceil(longest))
    all_acc = []

    def draw(h, label, **style):
        e = np.asarray(h.epoch, dtype=float)
        c = np.asarray(h.cost, dtype=float)
        ok = np.isfinite(c) & (c > 0)
        ax_cost.plot(e[ok], c[ok], **style)
        acc = [np.nan if a is None else 100 * a for a in h.accuracy]
        all_acc.extend(a for a in acc if np.isfinite(a))
        ax_acc.plot(e, acc, label=label, **style)

    for label, h in faded:
        draw(h, f"before: {label}", color=FADED_COLOR, lw=1.5, marker="o", ms=3)
    for k, (h, label) in enumerate(zip(histories, labels)):
        style = dict(color=f"C{k}", lw=2, marker="o", ms=4)
        style.update(styles[k] if styles else {})
        draw(h, label, **style)

    ax_cost.set(xlabel="epoch", ylabel="training cost", title="training cost (log scale)",
                xlim=(0, epochs + 0.5))
    if any(line.get_xdata().size for line in ax_cost.lines):
        ax_cost.set_yscale("log")
        low, high = ax_cost.get_ylim()
        # Label 1, 2, 5 × 10^k; more values when the costs span a narrower range.
        ratio = high / low
        subs = ((1.0, 2.0, 5.0) if ratio > 8 else (1.0, 2.0, 3.0, 5.0, 7.0) if ratio > 2.5
                else tuple(range(1, 10)))
        ax_cost.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax_cost.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax_cost.yaxis.set_minor_formatter(NullFormatter())
    low = min(all_acc, default=0.0)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy",
               xlim=(0, epochs + 0.5), ylim=(max(0.0, 10 * np.floor(low / 10) - 2), 100.5))
    ax_acc.axhline(10, color="0.8", lw=1, ls="--", zorder=0)   # chance: 1 in 10
    for ax in (ax_cost, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    n_lines = len(histories) + len(faded)
    per_row = n_lines if n_lines <= 4 else 3
    if n_lines:
        fig.legend(*ax_acc.get_legend_handles_labels(), loc="lower center",
                   ncol=per_row, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    # Fixed margins (in inches), not tight_layout: it would draw the figure twice, and this
    # is redrawn after every epoch while training waits.
    w, h = fig.get_size_inches()
    rows = -(-n_lines // per_row) if n_lines else 0
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.15 / w, wspace=0.9 / (w / 2),
                        top=1 - (0.55 if title else 0.35) / h,
                        bottom=(0.55 + 0.22 * rows) / h)
    return fig


def results_figure(X, y, predicted, n_show=12, name="test"):
    """Misclassified digits (predicted / true, in red) beside the confusion matrix.

    Drawn without pyplot (safe in the training thread) into axes laid out here:
    the digits by plots.show_digits, the matrix by plots.plot_confusion.

    Inputs:
    - X: test images (N, 784); y: true labels (N,); predicted: predicted labels (N,).
    - n_show: how many misclassified digits to show, at most 12 (the first ones).
    - name: what the images are, for the caption ("test", or "validation").
    Returns:
    - the Figure.

    Introduced in ``notebooks/06-train-interactive.ipynb`` (what the Trainer shows after a run).
    """
    y, predicted = np.asarray(y), np.asarray(predicted)
    fig = Figure(figsize=(8.6, 3.4))
    outer = fig.add_gridspec(1, 2, width_ratios=(1.35, 1), wspace=0.15)
    wrong = np.flatnonzero(predicted != y)[:n_show]
    cols = 6
    grid = outer[0].subgridspec(2, cols, hspace=0.45, wspace=0.1)
    axes = [fig.add_subplot(grid[i // cols, i % cols]) for i in range(2 * cols)]
    plots.show_digits(X[wrong], y[wrong], predicted[wrong], axes=axes)
    fig.text(0.03, 0.95, f"misclassified {name} digits (predicted / true): "
             f"{int(np.sum(predicted != y))} of {len(y)}", fontsize=9, va="top")
    plots.plot_confusion(y, predicted, ax=fig.add_subplot(outer[1]))
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.13)
    return fig


class Trainer:
    """Train a Network([784, hidden, 10]) on MNIST with sliders and a live plot.

    Parameters:
    - data: what ``load_mnist()`` returns, ((X, y), (X_valid, y_valid), (X_test, y_test));
      the test pair is optional (the validation pair is used instead). None loads
      MNIST once (cached for the process), so Train starts without delay.
    - seed: seeds the initial weights and the shuffling: same settings, same run.
    - hidden, learning_rate, batch_size, epochs, cost, train_size: initial
      control values (train_size None means the whole training set).
    - draw: False skips drawing the curves and results, for scripts and tests
      that only need the numbers (faster, and no images are kept in the widgets).

    Controls (ipywidgets; set ``.value`` or call ``.click()`` from code):
    hidden_slider, learning_rate_slider, batch_size_slider, epochs_slider,
    cost_choice, train_size_choice, train_button, stop_button, reset_button.
    Views: progress_bar, status (epoch, accuracy, seconds per epoch), note
    (what a change did), plot (Image of the curves), results (Image of
    misclassified digits and the confusion matrix, after a run).

    State: net (the network of the current or last run), history (its
    train.History, filled live), previous ((label, History) of the run before),
    error (the message of a diverged or failed run, else None), lr_log
    ([(mini-batches done, η)] each time η changed during the run),
    first_point_seconds (Train click to the first plotted epoch), running.

    stop_timeout: how long Reset and ``close()`` wait for a stopped run to end
    (30 s); a run still going after that is reported, not raised.

    While a run trains, numpy's BLAS is limited to ``train.BLAS_THREADS`` (1)
    thread for the whole process (``sgd``'s ``blas_threads``): the notebook's own
    cells run their matrix products single-threaded until the run ends.

    Introduced in ``notebooks/06-train-interactive.ipynb``.
    """

    stop_timeout = 30.0

    def __init__(self, data=None, *, seed=0, hidden=30, learning_rate=3.0, batch_size=10,
                 epochs=30, cost="quadratic", train_size=None, draw=True):
        if data is None:
            data = _default_data()
        (X, y), (X_valid, y_valid), *rest = data
        self._X, self._y = X, np.asarray(y)
        self._valid = (X_valid, np.asarray(y_valid))
        self._test = (rest[0][0], np.asarray(rest[0][1])) if rest else self._valid
        self._test_name = "test" if rest else "validation"      # what the last report is on
        self.seed = seed
        self.draw = draw
        self._lock = threading.RLock()
        self._thread = None
        self._progress = None
        self._stop = threading.Event()
        self._last_eta = None
        self._last_bar = 0.0
        self._t_click = None
        self.running = False
        self.history = None
        self.previous = None
        self.error = None
        self.exception = None
        self.lr_log = []
        self.first_point_seconds = None

        n = len(X)
        sizes = [(f"{k:,} images".replace(",", " "), k) for k in TRAIN_SIZES if k < n]
        sizes.append((f"all {n:,} images".replace(",", " "), n))
        slider = dict(continuous_update=False, style={"description_width": "90px"},
                      layout=widgets.Layout(width="360px"))
        self.hidden_slider = widgets.IntSlider(value=hidden, min=5, max=200, step=1,
                                               description="hidden", **slider)
        self.learning_rate_slider = widgets.FloatLogSlider(value=learning_rate, base=10, min=-3, max=2,
                                                           step=0.1, readout_format=".3",
                                                           description="learning rate", **slider)
        self.batch_size_slider = widgets.IntSlider(value=batch_size, min=1, max=100, step=1,
                                                   description="batch size", **slider)
        self.epochs_slider = widgets.IntSlider(value=epochs, min=1, max=60, step=1,
                                               description="epochs", **slider)
        choice = dict(style={"description_width": "90px"}, layout=widgets.Layout(width="300px"))
        self.cost_choice = widgets.Dropdown(options=COST_OPTIONS, value=cost, description="cost",
                                            **choice)
        self.train_size_choice = widgets.Dropdown(options=sizes,
                                                  value=n if train_size is None else train_size,
                                                  description="training set", **choice)
        self.train_button = widgets.Button(description="Train", button_style="primary", icon="play",
                                           tooltip="train a fresh network with these settings")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop",
                                          disabled=True, tooltip="stop after the current mini-batch")
        self.reset_button = widgets.Button(description="Reset", icon="undo",
                                           tooltip="stop, clear the curves, back to the seeded "
                                                   "initial weights")
        for b in (self.train_button, self.stop_button, self.reset_button):
            b.layout = widgets.Layout(width="96px")
        self.progress_bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress",
                                                  style={"description_width": "60px"},
                                                  layout=widgets.Layout(width="300px"))
        self.status = widgets.HTML(layout=widgets.Layout(min_height="24px"))
        self.note = widgets.HTML(layout=widgets.Layout(min_height="20px"))
        self.plot = widgets.Image(format="png", layout=widgets.Layout(width="774px"))
        self.results = widgets.Image(format="png", layout=widgets.Layout(width="774px", display="none"))
        # CSS classes, so a browser test can find each part.
        for widget, name in ((self.status, "status"), (self.note, "note"), (self.plot, "plot"),
                             (self.results, "results")):
            widget.add_class(f"mnistnet-trainer-{name}")

        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(self._on_stop)
        self.reset_button.on_click(self._on_reset)
        self.hidden_slider.observe(self._on_hidden, names="value")
        self.learning_rate_slider.observe(self._on_learning_rate, names="value")
        for w in (self.batch_size_slider, self.epochs_slider, self.cost_choice, self.train_size_choice):
            w.observe(self._on_setting, names="value")

        self.widget = widgets.VBox([
            widgets.HBox([
                widgets.VBox([self.hidden_slider, self.learning_rate_slider,
                              self.batch_size_slider, self.epochs_slider]),
                widgets.VBox([self.cost_choice, self.train_size_choice,
                              widgets.HBox([self.train_button, self.stop_button, self.reset_button]),
                              self.progress_bar]),
            ]),
            self.status, self.note, self.plot, self.results,
        ])
        self.widget.add_class("mnistnet-trainer")
        self.net = self._new_network()
        self._show_empty_plot()
        self._set_status(f"ready: network {self._arch()}, random weights (seed {seed}). "
                         f"Click Train.")

    # --- display -----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self):
        state = "training" if self.running else "idle"
        return f"Trainer({self._arch()}, {state})"

    # --- settings and helpers ---------------------------------------------------------

    def settings(self):
        """The current control values, as a dict."""
        return dict(hidden=self.hidden_slider.value, learning_rate=self.learning_rate_slider.value,
                    batch_size=self.batch_size_slider.value, epochs=self.epochs_slider.value,
                    cost=self.cost_choice.value, train_size=self.train_size_choice.value)

    def _arch(self, hidden=None):
        return f"{self._X.shape[1]}-{hidden or self.hidden_slider.value}-10"

    def _new_network(self):
        return Network([self._X.shape[1], self.hidden_slider.value, 10], cost=self.cost_choice.value,
                       seed=self.seed, dtype=np.float32)

    def _set_status(self, text, color=None):
        style = f' style="color:{color}"' if color else ""
        self.status.value = f"<span{style}>{html.escape(text)}</span>"

    def _set_note(self, text):
        self.note.value = f"<i>{html.escape(text)}</i>" if text else ""

    def _buttons(self, running):
        self.train_button.disabled = running
        self.stop_button.disabled = not running

    def _show_empty_plot(self):
        if not self.draw:
            return
        self.plot.value = _png(plot_curves([], epochs=self.epochs_slider.value,
                                           title="click Train: the curves appear epoch by epoch"))

    # --- control callbacks (run in the kernel's main thread) ------------------------------

    def _on_hidden(self, change):
        with self._lock:
            if self.running:
                self._set_note(f"hidden = {change['new']}: takes effect at the next Train, which "
                               f"builds a new network {self._arch(change['new'])}; this run keeps "
                               f"{self.net.sizes[1]} hidden units.")
                return
            self.net = self._new_network()
        self._set_note(f"hidden = {change['new']}: network re-initialised as {self._arch()} "
                       f"(new random weights, seed {self.seed}).")
        # The results described the network just replaced; the curves stay, for comparison.
        self.results.layout.display = "none"
        self._set_status(f"ready: network {self._arch()}, random weights (seed {self.seed}). "
                         f"Click Train.")

    def _on_learning_rate(self, change):
        when = "from the next mini-batch of this run" if self.running else "for the next run"
        self._set_note(f"learning rate η = {change['new']:.3g} {when}.")

    def _on_setting(self, change):
        name = change["owner"].description
        value = change["new"]
        value = dict((v, k) for k, v in COST_OPTIONS).get(value, value)
        when = "at the next Train" if self.running else "for the next run"
        self._set_note(f"{name} = {value} {when}.")
        if not self.running and change["owner"] is self.epochs_slider and self.history is None:
            self._show_empty_plot()

    def _on_train(self, _button=None):
        with self._lock:
            if self.running:
                self._set_note("already training: that click was ignored (Stop first).")
                return
            self.running = True
            self._t_click = time.perf_counter()
            self._stop.clear()
            self._progress = None
            s = self.settings()
            if self.history is not None and len(self.history):
                self.previous = (self.label(), self.history)
            self.history, self.error, self.exception = None, None, None
            self.lr_log, self._last_eta, self.first_point_seconds = [], None, None
            self.net = self._new_network()          # every run starts from the seeded weights
            net = self.net
            self._thread = threading.Thread(target=self._run, args=(net, s), daemon=True,
                                            name="mnistnet-trainer")
            self._buttons(True)
        self.progress_bar.bar_style = "info"
        self.progress_bar.value = 0.0
        self.results.layout.display = "none"
        self._set_note("")
        n = f"{s['train_size']:,}".replace(",", " ")              # 50 000
        self._set_status(f"training {self._arch(s['hidden'])} on {n} images: "
                         f"{s['epochs']} epochs, batch size {s['batch_size']}, "
                         f"η = {s['learning_rate']:.3g}…")
        self._thread.start()

    def _on_stop(self, _button=None):
        with self._lock:
            if not self.running:
                return
            self._stop.set()
            if self._progress is not None:
                self._progress.stop(STOP_REASON)
        self._set_note("stopping after the current mini-batch…")

    def _stop_and_wait(self):
        """Stop the run, if any, and wait up to ``stop_timeout`` s for it to end.

        Returns True once no run is going on, False if it is still running (it
        then ends by itself, at its next mini-batch).
        """
        self._on_stop()
        try:
            self.wait(timeout=self.stop_timeout)
        except TimeoutError:
            return False
        return True

    def _on_reset(self, _button=None):
        if not self._stop_and_wait():          # never reset half way under a running thread
            self._set_note(f"Reset: the run has not stopped after {self.stop_timeout:g} s; "
                           f"nothing was reset. Click Reset again once it has stopped.")
            return
        with self._lock:
            self.history, self.previous, self.error, self.exception = None, None, None, None
            self.lr_log, self.first_point_seconds = [], None
            self.net = self._new_network()
        self.progress_bar.value = 0.0
        self.progress_bar.bar_style = ""
        self.results.layout.display = "none"
        self.results.value = b""
        self._show_empty_plot()
        self._set_status(f"reset: network {self._arch()}, its seeded initial weights "
                         f"(seed {self.seed}); earlier curves cleared.")
        self._set_note("")

    # --- the training thread ---------------------------------------------------------

    def _eta(self):
        """The learning rate for the next mini-batch: read from the slider (sgd calls this)."""
        eta = float(self.learning_rate_slider.value)
        if eta != self._last_eta:
            done = self._progress.history.batches if self._progress is not None else 0
            self.lr_log.append((done, eta))
            self._last_eta = eta
        return eta

    def _callback(self, progress):
        if self._progress is None:
            with self._lock:
                self._progress = progress
                self.history = progress.history
                if self._stop.is_set():
                    progress.stop(STOP_REASON)
        now = time.perf_counter()
        if progress.end_of_epoch:
            h = progress.history
            if self.draw:
                self.plot.value = _png(plot_curves([h], [self.label()], epochs=progress.epochs,
                                                   faded=[self.previous] if self.previous else ()))
            if self.first_point_seconds is None:
                self.first_point_seconds = time.perf_counter() - self._t_click
            self._set_status(_epoch_text(h, progress.epochs))
        if progress.end_of_epoch or now - self._last_bar > 0.1:
            self._last_bar = now
            done = progress.epoch - 1 + progress.batch / progress.batches_per_epoch
            self.progress_bar.value = min(1.0, done / progress.epochs)

    def _run(self, net, s):
        n = s["train_size"]
        every = max(1, 1000 // s["batch_size"])
        history, outcome = None, "error"
        try:
            history = sgd(net, (self._X[:n], self._y[:n]), s["epochs"], s["batch_size"], self._eta,
                          validation_data=self._valid, seed=self.seed, callback=self._callback,
                          callback_every=every)
            outcome = "stopped" if history.stopped else "done"
        except Diverged as e:
            history, outcome = e.history, "diverged"
            self.error = str(e)
        except Exception as e:           # a bug must show in the UI, not vanish with the thread
            history = self._progress.history if self._progress is not None else None
            self.error = f"{type(e).__name__}: {e}"
            self.exception = e
            traceback.print_exc()
        try:
            self._finish(net, history, outcome, s["epochs"])
        finally:
            # Under the lock, so a Train click cannot start the next run between
            # `running = False` and the buttons (it would be left with Stop disabled).
            # No other run can have started: Train starts one only once running is False.
            with self._lock:
                self.history = history
                self._progress = None
                self.running = False
                self._buttons(False)

    def _finish(self, net, history, outcome, epochs):
        """Final plot, status and results of a run (in the training thread)."""
        faded = [self.previous] if self.previous else ()
        if self.draw and history is not None and len(history):
            title = {"stopped": "stopped", "diverged": "diverged", "error": "failed"}.get(outcome)
            self.plot.value = _png(plot_curves([history], [self.label(history)], faded=faded,
                                               epochs=epochs, title=title))
        if outcome == "diverged":
            self.progress_bar.bar_style = "danger"
            where = f"diverged after epoch {history.epoch[-1]:g}/{epochs}" if len(history) else "diverged"
            self._set_status(f"{where}: {self.error}", color="#b00020")
            return
        if outcome == "error":
            self.progress_bar.bar_style = "danger"
            self._set_status(f"training failed: {self.error}", color="#b00020")
            return
        if len(history) == 0:
            self.progress_bar.bar_style = "warning"
            self._set_status("stopped before the first mini-batch: nothing trained.")
            self._set_note("")
            return
        X_test, y_test = self._test
        predicted = net.predict(X_test)
        test_acc = float(np.mean(predicted == y_test))
        if self.draw:
            self.results.value = _png(results_figure(X_test, y_test, predicted,
                                                     name=self._test_name))
            self.results.layout.display = ""
        if outcome == "done":
            prefix = "done: "
        else:   # "stopped during epoch 3/30", or "stopped after epoch 2/30" at a boundary
            prefix = "stopped after " if _whole(history.epoch[-1]) else "stopped "
        self.progress_bar.bar_style = "warning" if outcome == "stopped" else "success"
        if outcome == "done":
            self.progress_bar.value = 1.0
        self._set_status(_epoch_text(history, epochs, prefix) +
                         f" · {self._test_name} accuracy {100 * test_acc:.2f} %")
        self._set_note("")

    # --- for code and tests ----------------------------------------------------------

    def label(self, history=None):
        """run_label of the current or last run, with every η the slider gave it."""
        history = history if history is not None else self.history
        return run_label(history, [eta for _, eta in self.lr_log]) if history is not None else ""

    def wait(self, timeout=None):
        """Block until the current run (if any) has ended; return its History.

        Raises TimeoutError if it is still running after ``timeout`` seconds.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"training still running after {timeout} s")
        return self.history

    join = wait

    @property
    def status_text(self):
        """The status line as plain text."""
        return _plain(self.status.value)

    @property
    def note_text(self):
        """The note line (what the last change did) as plain text."""
        return _plain(self.note.value)

    def close(self):
        """Stop any run and close every widget (a closed trainer leaves no widget state behind).

        Waits up to ``stop_timeout`` seconds for the run to stop; if it has not, the
        widgets are closed all the same (with a RuntimeWarning) and the run ends by
        itself at its next mini-batch.
        """
        if not self._stop_and_wait():
            warnings.warn(f"the training thread has not stopped after {self.stop_timeout:g} s; "
                          f"closing the widgets anyway (it ends at its next mini-batch)",
                          RuntimeWarning, stacklevel=2)
        for widget in self._all_widgets():
            widget.close()

    def _all_widgets(self):
        seen, todo = [], [self.widget]
        while todo:
            w = todo.pop()
            seen.append(w)
            todo.extend(getattr(w, "children", ()))
        return seen
