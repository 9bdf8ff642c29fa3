"""Mini-batch stochastic gradient descent, vectorised over each mini-batch.

One epoch shuffles the n training samples and walks through them in
mini-batches of B rows. For each mini-batch (X_b (B, 784), one-hot T_b (B, 10))::

    nabla_w, nabla_b = ∂C/∂W, ∂C/∂b of the mean cost over the B samples   (backprop)
    W ← (1 − ηλ/n) W − η nabla_w          weight decay: the L2 term (λ/2n) Σ‖W‖²
    b ←            b − η nabla_b          biases are not decayed

as in the book (chapter 3; with λ = 0 it is chapter 1's update). The parameters
are updated in place. ``_train`` is that loop and nothing else; ``Monitor`` does
the rest (timing, the cost per epoch, divergence checks, the callback, stopping).

Usage::

    (X, y), (X_val, y_val), _ = load_mnist(dtype=np.float32)
    net = Network([784, 30, 10], seed=0, dtype=np.float32)
    history = sgd(net, (X, y), epochs=30, batch_size=10, learning_rate=3.0,
                  validation_data=(X_val, y_val), seed=0)
"""

import contextlib
import math
import numbers
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from .network import UNSCALED_ABOVE

# numpy's BLAS threads while sgd runs: the products are small, and a second thread only
# adds waiting (batch 128: 0.115 s vs 0.752 s per epoch on 2 cores; bench --speed --threads).
BLAS_THREADS = 1

# The training cost is measured on this many evenly spaced training images (all if fewer).
COST_SAMPLE = 5_000

# How often (in mini-batches) the parameters are checked for NaN/inf mid-epoch.
FINITE_CHECK_EVERY = 50

# A unit is "dead" when |z| > SATURATED_Z (σ'(z) < 2.1e-9) on each of the first PROBE_SIZE
# images of the cost sample: same output whatever the input, almost no gradient, no recovery.
# Training has failed when DEAD_FRACTION of some sigmoid layer is dead (healthy runs have none).
SATURATED_Z, DEAD_FRACTION, PROBE_SIZE = 20.0, 0.5, 500

# A weight decay ηλ/n above this per step is named as the likely cause of a failure.
STRONG_DECAY = 0.1


class Diverged(RuntimeError):
    """Training failed: non-finite parameters or cost, dead (saturated) units, or a cost worse than guessing.

    The message names the likely cause, checked in this order: unscaled inputs, a
    weight decay far too strong, the backprop function passed to sgd, the learning rate.
    Attribute ``history``: the History up to the failure (``diverged=True``).
    """

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


class History:
    """What happened during training.

    Lists, one entry per epoch (a stopped run adds its last, partial epoch):
    - epoch: epochs done, a float (2.5 = stopped half way through epoch 3).
    - cost: the mean cost over a fixed sample of min(n, COST_SAMPLE) training images
      with the end-of-epoch weights, plus the L2 penalty (λ/2n) Σ‖W‖² (what the updates minimise).
    - accuracy: validation accuracy in [0, 1] (None without validation data).
    - seconds, cpu_seconds: wall and CPU time of the epoch's shuffle and updates
      (and mid-epoch callbacks), not of its evaluation.
    - eval_seconds: wall time of the end-of-epoch evaluation; learning_rate: η of its last mini-batch.
    Other attributes: start_cost (the sample's cost before training, no penalty);
    guess_cost (always answering the class frequencies, see Diverged); setup_seconds;
    batches (updates done); stopped, stop_reason, diverged; settings (the run's arguments).
    """

    def __init__(self, **settings):
        self.epoch, self.cost, self.accuracy = [], [], []
        self.seconds, self.cpu_seconds, self.eval_seconds, self.learning_rate = [], [], [], []
        self.batches, self.start_cost, self.guess_cost, self.setup_seconds = 0, None, None, None
        self.stopped, self.stop_reason, self.diverged = False, None, False
        self.settings = settings

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        lines = [f"{'epoch':>6}  {'cost':>9}  {'val. acc':>8}  {'η':>7}  {'seconds':>7}"]
        for e, c, a, lr, s in zip(self.epoch, self.cost, self.accuracy,
                                  self.learning_rate, self.seconds):
            acc = "" if a is None else f"{100 * a:7.2f}%"
            lines.append(f"{e:6.4g}  {c:9.5f}  {acc:>8}  {lr:7.4g}  {s:7.3f}")
        if self.stopped:
            lines.append(f"stopped: {self.stop_reason}")
        return "\n".join(lines)


class Progress:
    """Training progress, passed to ``sgd``'s callback; one object, updated in place.

    Attributes: epoch (1 … epochs), epochs, batch (done in this epoch, 1 …
    batches_per_epoch), batches_per_epoch (⌈n / B⌉), end_of_epoch (True after an
    epoch's evaluation), learning_rate (of the last mini-batch), seconds (since
    training started), history, net (consistent: no update in flight), and
    stop_event: the run's one stop signal (sgd's ``stop``, or an Event of its own).
    """

    def __init__(self, net, history, epochs, batches_per_epoch, stop_event):
        self.net, self.history, self.stop_event = net, history, stop_event
        self.epochs, self.batches_per_epoch = epochs, batches_per_epoch
        self.epoch, self.batch, self.end_of_epoch = 0, 0, False
        self.learning_rate, self.seconds, self.stop_reason = None, 0.0, None

    def stop(self, reason="stopped by callback"):
        """Set the stop event, with a reason for the History: training stops before the next mini-batch."""
        self.stop_reason = reason
        self.stop_event.set()

    def __repr__(self):
        return (f"Progress(epoch {self.epoch}/{self.epochs}, batch {self.batch}/"
                f"{self.batches_per_epoch}, η={self.learning_rate}, {self.seconds:.1f} s)")


# --- the algorithm ------------------------------------------------------------------------

def sgd(net, training_data, epochs, batch_size, learning_rate, *, l2=0.0,
        validation_data=None, seed=None, callback=None, callback_every=None,
        backprop=None, stop=None, blas_threads=BLAS_THREADS):
    """Train ``net`` in place by mini-batch SGD; return a History.

    Inputs:
    - net: a Network (float32 trains about twice as fast as float64).
    - training_data: (X, y), X (n, n_in) samples in rows, y integer labels (n,).
    - epochs: passes over the data, a whole number >= 0; batch_size: B, a whole number >= 1.
    - learning_rate: η >= 0, or a zero-argument callable returning it, called before
      every mini-batch (a slider may change η while training runs; η = 0 pauses).
    - l2: λ >= 0: W ← (1 − ηλ/n) W − η ∇W (biases are not decayed); 1 − ηλ/n must be > 0.
    - validation_data: (X_val (m, n_in), y_val (m,)) for the accuracy after each epoch, or None.
    - seed: int or np.random.Generator for the shuffling (the network has its own seed).
    - callback: ``callback(progress)`` after each epoch's evaluation and, with
      ``callback_every`` = k, after every k-th mini-batch; progress is a Progress.
    - stop: the one way to stop: any object with ``is_set()`` (a threading.Event), checked
      before every mini-batch (None: sgd makes its own, set by ``progress.stop(reason)``);
      the partial epoch is then evaluated, and ``history.stopped`` is True.
    - backprop: None for ``net.backprop_batch``, or any ``backprop(net, X_b, y_b) ->
      (nabla_w, nabla_b)``, e.g. a bug from ``mnistnet.bugs`` (its first result is
      checked against the parameters' shapes).
    - blas_threads: numpy's BLAS threads while training (BLAS_THREADS), or None to leave
      them alone (the limit is process-wide: see ``_blas_limit``).
    Returns a History. Raises:
    - ValueError/TypeError, before any work, for a wrong shape, bad data (NaN/inf rows,
      raw integer pixels) or a bad setting, naming the argument and the value received.
    - Diverged (a RuntimeError, with ``.history``) when the parameters or the cost become
      NaN/inf (checked every FINITE_CHECK_EVERY mini-batches and after each epoch), or
      after an epoch in which half the units of a sigmoid layer died (see SATURATED_Z),
      or whose training cost is above both the start's and always guessing's.
    """
    t0 = time.perf_counter()
    X, y, T = _check_data(net, training_data, "training_data")
    if validation_data is not None:
        validation_data = _check_data(net, validation_data, "validation_data", targets=False)[:2]
    epochs, batch_size = _whole("epochs", epochs, 0), _whole("batch_size", batch_size, 1)
    eta_of, l2 = _check_rates(learning_rate, l2, X.shape[0])
    callback_every = None if callback_every is None else _whole("callback_every", callback_every, 1)
    blas_threads = None if blas_threads is None else _whole("blas_threads", blas_threads, 1)
    for name, f in (("callback", callback), ("backprop", backprop)):
        if f is not None and not callable(f):
            raise TypeError(f"{name} must be a function or None, got {f!r}")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise TypeError(f"stop must have an is_set() method (e.g. a threading.Event), got {stop!r}")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise type(e)(f"seed must be None, a whole number >= 0 or an np.random.Generator, "
                      f"got {seed!r} ({e})") from None
    settings = dict(epochs=epochs, batch_size=batch_size, l2=l2, seed=seed, n=X.shape[0],
                    sizes=list(net.sizes), cost=net.cost_name, output=net.output_name,
                    dtype=net.dtype.name, blas_threads=blas_threads)
    # Overflow to inf/NaN is reported as Diverged, with its likely cause; numpy's warnings would say less.
    with _blas_limit(blas_threads), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        monitor = Monitor(net, X, y, T, validation_data, settings, eta_of, l2, callback,
                          callback_every, stop or threading.Event(), custom=backprop is not None)
        monitor.history.setup_seconds = time.perf_counter() - t0
        _train(net, X, y, T, epochs, batch_size, l2, rng,
               None if backprop is None else _checked_once(backprop), monitor)
    return monitor.finish()


def _train(net, X, y, T, epochs, batch_size, l2, rng, backprop, monitor):
    """The training loop itself: shuffle, slice, backprop, update; the monitor watches.

    X (n, n_in), y (n,), T (n, n_out) are checked; ``monitor`` gives η and the stop event.
    """
    n, stop = X.shape[0], monitor.stop_event
    for epoch in range(1, epochs + 1):
        monitor.begin_epoch(epoch)
        perm = rng.permutation(n)                               # a new order every epoch
        for k in range(0, n, batch_size):
            if stop.is_set():
                break
            idx = perm[k:k + batch_size]                        # the next mini-batch's rows
            X_b, T_b = X.take(idx, axis=0), T.take(idx, axis=0)  # X[idx], T[idx], but faster
            eta = monitor.learning_rate()
            if backprop is None:
                nabla_w, nabla_b, _ = net.backprop_batch(X_b, T_b)
            else:
                nabla_w, nabla_b = backprop(net, X_b, y[idx])
            for W, b, nw, nb in zip(net.weights, net.biases, nabla_w, nabla_b):
                if l2:
                    W *= 1.0 - eta * l2 / n                      # weight decay
                W -= eta * nw                                   # W ← W − η ∇W
                b -= eta * nb                                   # b ← b − η ∇b
            monitor.batch_done(eta)                             # every k-th: NaN check, callback
        if not monitor.end_epoch():                             # evaluate, record, callback
            break


# --- checks at the boundary ----------------------------------------------------------------

def _check_data(net, data, name, targets=True):
    """(X (N, n_in), y (N,), one-hot T (N, n_out) or None), checked by net.check_data, errors prefixed by name."""
    try:
        X, y = data
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (X, y): X of shape (N, {net.sizes[0]}), "
                         f"y integer labels of shape (N,)") from None
    try:
        return net.check_data(X, y, batch_only=True, targets=targets)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{name}: {e}") from None


def _number(name, value, expected):
    """value as a float, or a TypeError naming the argument (bools and strings are not numbers)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    return float(value)


def _whole(name, value, minimum):
    """value as an int >= minimum; 1.9 or NaN is a ValueError, not truncated."""
    x = _number(name, value, f"a whole number >= {minimum}")
    if not (math.isfinite(x) and x == int(x) and x >= minimum):
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(x)


def _check_rates(learning_rate, l2, n):
    """(a zero-argument function returning a checked η, λ): a constant η is checked once, here."""
    l2 = _number("l2", l2, "a number >= 0")
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    if callable(learning_rate):
        return (lambda: _learning_rate(learning_rate(), l2, n)), l2
    eta = _learning_rate(learning_rate, l2, n)
    return (lambda: eta), l2


def _learning_rate(eta, l2, n):
    """η as a float, after checking it is a number >= 0 and that 1 − ηλ/n > 0."""
    eta = _number("the learning rate", eta, "a number >= 0")
    if not (math.isfinite(eta) and eta >= 0):
        raise ValueError(f"the learning rate must be a number >= 0, got {eta!r}")
    if 1.0 - eta * l2 / n <= 0:
        raise ValueError(f"l2 = {l2:g} is too large for η = {eta:g} and n = {n} training samples: "
                         f"the weight decay factor 1 − ηλ/n = {1 - eta * l2 / n:.3g} must stay "
                         f"above 0; use l2 < n/η = {n / eta:.4g} (the book: λ = 5 for n = 50 000)")
    return eta


def _checked_once(backprop):
    """backprop(net, X, y), its first result checked against the parameters' shapes."""
    checked = []

    def hook(net, X, y):
        result = backprop(net, X, y)
        if not checked:
            _check_gradients(net, result)
            checked.append(True)
        return result
    return hook


def _check_gradients(net, result):
    """A ValueError/TypeError unless result is (nabla_w, nabla_b) shaped like net's parameters."""
    what = "the backprop function passed to sgd"
    try:
        nabla_w, nabla_b = (list(g) for g in result)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return a pair (nabla_w, nabla_b) of lists of arrays; it "
                        f"returned {type(result).__name__}") from None
    for name, g, params, letter in (("nabla_w", nabla_w, net.weights, "W"),
                                    ("nabla_b", nabla_b, net.biases, "b")):
        shapes = [p.shape for p in params]
        if len(g) != len(params):
            raise ValueError(f"{what} returned {len(g)} arrays in {name}; expected "
                             f"{len(params)}, one per layer, of shapes {shapes}")
        for l, (a, shape) in enumerate(zip(g, shapes), start=1):
            if np.shape(a) != shape:
                raise ValueError(f"{what} returned {name}[{l - 1}] of shape {np.shape(a)}; "
                                 f"expected {shape}, the shape of {letter}{l}")


# --- BLAS threads: overlapping runs restore the setting from before the first -------------------

_blas_lock = threading.Lock()
_blas_runs = []            # [limit] of each run going on, oldest first (a list per run: its identity)
_blas_before = []          # the threadpool_limits object that remembers the setting before the first


@contextlib.contextmanager
def _blas_limit(limit):
    """numpy's BLAS limited to ``limit`` threads inside the block (None: left alone).

    Runs may overlap (two Trainers, a Trainer and a cell) and end in any order: the newest
    run's limit applies; the setting from before the first comes back when the last ends, or
    when a run in the main thread ends (OpenBLAS ignores a count set from another thread
    once the main thread has set one).
    """
    if limit is None:
        yield
        return
    mine = [limit]
    with _blas_lock:
        limiter = threadpool_limits(limits=limit, user_api="blas")
        if not _blas_runs:
            _blas_before.append(limiter)
        _blas_runs.append(mine)
    try:
        yield
    finally:
        with _blas_lock:
            # By identity: list.remove compares with ==, and another run may have the same limit.
            del _blas_runs[next(i for i, run in enumerate(_blas_runs) if run is mine)]
            if not _blas_runs:
                _blas_before.pop().restore_original_limits()
            elif threading.current_thread() is threading.main_thread():
                _blas_before[0].restore_original_limits()
            else:
                threadpool_limits(limits=_blas_runs[-1][0], user_api="blas")


# --- monitoring: timing, evaluation, divergence, callback, stopping -----------------------------

class Monitor:
    """Everything around the update. The loop calls ``learning_rate()`` before each mini-batch,
    ``batch_done`` after it (every k-th: NaN check, callback) and ``begin_epoch``/``end_epoch``
    (evaluate on the cost sample and the validation data, record, check, callback).
    """

    def __init__(self, net, X, y, T, validation, settings, eta_of, l2, callback,
                 callback_every, stop_event, custom):
        n = X.shape[0]
        step = -(-n // COST_SAMPLE)
        self.X_cost, self.T_cost = np.ascontiguousarray(X[::step]), np.ascontiguousarray(T[::step])
        self.net, self.n, self.validation, self.l2 = net, n, validation, l2
        self.callback, self.custom, self.stop_event = callback, custom, stop_event
        self.history = History(cost_sample=len(self.X_cost), **settings)
        self.progress = Progress(net, self.history, settings["epochs"],
                                 -(-n // settings["batch_size"]), stop_event)
        self.callback_every = callback_every if callback is not None else None
        self.learning_rate = eta_of         # η for the next mini-batch, checked (see _check_rates)
        self.history.start_cost = self._cost_and_dead()[0]
        self.history.guess_cost = _guess_cost(net, y)
        self.start = time.perf_counter()

    def begin_epoch(self, epoch):
        p = self.progress
        p.epoch, p.batch, p.end_of_epoch = epoch, 0, False
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def batch_done(self, eta):
        """Count the update; a NaN check every FINITE_CHECK_EVERY, a callback every k-th."""
        p = self.progress
        p.batch += 1
        p.learning_rate = eta
        self.history.batches += 1
        if p.batch % FINITE_CHECK_EVERY == 0 and not _finite(self.net):
            self._fail(f"the parameters became NaN or infinite during epoch {p.epoch}")
        mid_epoch = p.batch < p.batches_per_epoch        # the last one's callback is end_epoch's
        if self.callback_every and p.batch % self.callback_every == 0 and mid_epoch:
            self._call_back()

    def end_epoch(self):
        """Evaluate, record, check and call back; False when training must stop."""
        seconds, cpu_seconds = time.perf_counter() - self.t0, time.process_time() - self.c0
        p, h = self.progress, self.history
        if p.batch == 0 and self.stop_event.is_set():
            return False                                   # stopped before this epoch began
        t0 = time.perf_counter()
        cost, dead = self._cost_and_dead()
        penalty = 0.5 * self.l2 / self.n * sum(float(np.sum(W * W)) for W in self.net.weights)
        acc = None
        if self.validation is not None:
            X_val, y_val = self.validation
            acc = float(np.mean(self.net.forward_batch(X_val)[1][-1].argmax(axis=1) == y_val))
        for values, value in ((h.epoch, p.epoch - 1 + p.batch / p.batches_per_epoch),
                              (h.cost, cost + penalty), (h.accuracy, acc), (h.seconds, seconds),
                              (h.cpu_seconds, cpu_seconds), (h.learning_rate, p.learning_rate),
                              (h.eval_seconds, time.perf_counter() - t0)):
            values.append(value)
        self._check_epoch(cost, dead)
        if self.callback is not None and not self.stop_event.is_set():
            p.end_of_epoch = True
            self._call_back()
            p.end_of_epoch = False
        return not self.stop_event.is_set()

    def finish(self):
        """The History, marked stopped if the stop event was set."""
        if self.stop_event.is_set():
            self.history.stopped = True
            self.history.stop_reason = self.progress.stop_reason or "stop requested"
        return self.history

    def _call_back(self):
        self.progress.seconds = time.perf_counter() - self.start
        self.callback(self.progress)

    def _cost_and_dead(self):
        """(mean cost on the cost sample, fraction of dead units per sigmoid layer)."""
        net = self.net
        zs, activations = net.forward_batch(self.X_cost)
        cost = float(net.cost_fn.fn(zs[-1], activations[-1], self.T_cost, net.output_fn).mean())
        if net.output_name != "sigmoid":      # softmax is unchanged by shifting z: |z| says nothing
            zs = zs[:-1]
        return cost, [float(np.mean(np.all(np.abs(z[:PROBE_SIZE]) > SATURATED_Z, axis=0)))
                      for z in zs]

    def _check_epoch(self, cost, dead):
        """Raise Diverged if the epoch left NaN/inf, dead units, or a cost worse than guessing."""
        h = self.history
        epoch = h.epoch[-1]
        if not np.isfinite(cost) or not _finite(self.net):
            self._fail(f"the parameters or the training cost became NaN or infinite in epoch "
                       f"{int(np.ceil(epoch))} (cost {cost})")
        if dead and max(dead) >= DEAD_FRACTION:
            l = int(np.argmax(dead))
            which = "the output layer" if l == self.net.num_layers - 1 else f"hidden layer {l + 1}"
            self._fail(f"after epoch {epoch:g} {100 * dead[l]:.0f}% of the units of {which} are "
                       f"saturated on every input (|z| > {SATURATED_Z:g}, so σ'(z) < 2.1e-9): "
                       f"they give the same output whatever the input and can no longer learn; "
                       f"the training cost is {cost:.4g} (it started at {h.start_cost:.4g})")
        if cost > max(h.start_cost, h.guess_cost):
            self._fail(f"after epoch {epoch:g} the training cost is {cost:.4g}: higher than at "
                       f"the start ({h.start_cost:.4g}) and than the cost of always guessing "
                       f"the class frequencies ({h.guess_cost:.4g})")

    def _fail(self, what):
        h = self.history
        h.stopped, h.diverged = True, True
        h.stop_reason = f"training diverged: {what}. {self._likely_cause()}"
        raise Diverged(h.stop_reason, h)

    def _likely_cause(self):
        """The likely cause of a failure and its remedy: the first of data, λ, backprop, η."""
        eta, hi = self.progress.learning_rate, float(self.X_cost.max())
        fresh = "start again from a fresh network, since these weights are now useless"
        decay = (eta or 0.0) * self.l2 / self.n
        if self.X_cost.min() >= 0 and hi > UNSCALED_ABOVE:
            return (f"The likely cause is unscaled inputs: the training images' values reach "
                    f"{hi:g}, where this network expects pixels in [0, 1], so every unit saturates. "
                    f"Remedy: scale them (X = X / {255 if hi <= 255 else hi:g}) and {fresh}.")
        if decay > STRONG_DECAY:
            return (f"The likely cause is a weight decay far too strong: l2 = λ = {self.l2:g} with "
                    f"η = {eta:g} and n = {self.n} shrinks every weight by {100 * decay:.0f}% at "
                    f"each step (ηλ/n = {decay:.3g}). Remedy: lower λ (the book uses λ = 5 for "
                    f"n = 50 000) and {fresh}.")
        if self.custom:
            return (f"The likely cause is the backprop function passed to sgd: check it with "
                    f"mnistnet.gradcheck.check_gradients (if it is right, the learning rate "
                    f"η = {eta:g} may be too large: try η/10).")
        return (f"The likely cause is a learning rate too large for this network and cost "
                f"(η = {eta:g}, batch size {self.history.settings['batch_size']}): the steps "
                f"overshoot and the weights blow up or saturate. Remedy: lower η (try η/10) "
                f"and {fresh}.")


def _guess_cost(net, y):
    """Σ_k p_k C(a = p, t = e_k): the mean cost of always answering a = p, p_k the fraction
    of labels y (n,) equal to k. A network that does worse after an epoch learned less than nothing.
    """
    n_out = net.sizes[-1]
    p = np.clip(np.bincount(y, minlength=n_out) / len(y), 1e-7, 1 - 1e-7)
    z = np.log(p) if net.output_name == "softmax" else np.log(p) - np.log1p(-p)
    Z = np.tile(z, (n_out, 1))                                  # row k: the output for label k
    C = net.cost_fn.fn(Z, net.output_fn.fn(Z), np.eye(n_out), net.output_fn)   # (n_out,)
    return float(p @ C)


def _finite(net):
    """True if every weight and bias is finite (a sum is NaN/inf if any entry is)."""
    return all(np.isfinite(W.sum()) and np.isfinite(b.sum())
               for W, b in zip(net.weights, net.biases))
