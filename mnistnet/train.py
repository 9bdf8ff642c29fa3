"""Mini-batch stochastic gradient descent, vectorised over each mini-batch.

``sgd`` is first used in ``notebooks/04-gradient-check.ipynb`` (training with
planted backprop bugs); ``notebooks/05-minibatch-vectorised.ipynb`` explains the
vectorised mini-batch loop; ``Diverged`` first appears in
``notebooks/06-train-interactive.ipynb`` (η too large).

One epoch shuffles the n training samples and walks through them in
mini-batches of B rows. For each mini-batch (X_b (B, 784), one-hot T_b (B, 10))::

    nabla_w, nabla_b = ∂C/∂W, ∂C/∂b of the mean cost over the B samples   (backprop)
    W ← (1 − ηλ/n) W − η nabla_w          weight decay: the L2 term (λ/2n) Σ‖W‖²
    b ←            b − η nabla_b          biases are not decayed

as in the book (chapter 3, with λ = 0 it is chapter 1's update). The
parameters are updated in place, so the caller's ``net`` is the trained one.

Usage::

    import numpy as np
    from mnistnet import Network, load_mnist
    from mnistnet.train import sgd
    (X, y), (X_val, y_val), _ = load_mnist(dtype=np.float32)
    net = Network([784, 30, 10], seed=0, dtype=np.float32)
    history = sgd(net, (X, y), epochs=30, batch_size=10, learning_rate=3.0,
                  validation_data=(X_val, y_val), seed=0)
    print(history)
"""

import contextlib
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

# numpy's BLAS threads while sgd runs. Measured on the 2-core machine this was
# written on, shared with other jobs (python -m mnistnet.bench --speed --threads,
# 50 000 images, [784, 30, 10], float32, load average 2.5), one epoch took,
# with 1 BLAS thread vs 2:
#     batch 10: 0.265 s vs 0.260 s     batch 128: 0.115 s vs 0.752 s
#     batch 1024: 0.104 s vs 0.624 s
# The products are small ((B, 784) @ (784, 30)); a second thread only adds
# synchronisation, and stalls when the other core is busy. So: 1 thread.
BLAS_THREADS = 1

# Rows per forward pass when the training cost is evaluated on the whole training set.
COST_CHUNK = 10_000

# How often (in mini-batches) the parameters are checked for NaN/inf mid-epoch.
FINITE_CHECK_EVERY = 50

# A unit is "dead" when it is saturated, |z| > SATURATED_Z (σ'(z) < 2.1e-9), on
# every one of a fixed sample of training inputs: its output is then the same
# whatever the input, and almost no gradient reaches its weights, so it
# never recovers. Training has failed when at least DEAD_FRACTION of the units
# of some sigmoid layer are dead. Healthy runs have none (bench.py); η = 100
# on [784, 30, 10] kills 90 % of the output units (quadratic cost) or of the
# hidden units (cross-entropy) within the first epoch.
SATURATED_Z = 20.0
DEAD_FRACTION = 0.5


class Diverged(RuntimeError):
    """Training failed: non-finite parameters or cost, dead (saturated) units, or a cost worse than guessing.

    Attributes:
    - history: the History up to the point where it was detected (``diverged=True``).

    Introduced in ``notebooks/06-train-interactive.ipynb``.
    """

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


class History:
    """What happened during training, one entry per epoch.

    Lists (one entry per epoch; a stopped run adds its last, partial epoch):
    - epoch: epochs done at that point, a float: 1, 2, … (2.5 = stopped half way through epoch 3).
    - cost: training cost with the end-of-epoch weights: the mean cost over the
      **whole** training set, plus the L2 penalty (λ/2n) Σ‖W‖² when l2 > 0
      (the objective that the updates minimise).
    - accuracy: validation accuracy in [0, 1] (None without validation data).
    - seconds: wall time of the epoch's mini-batch updates (and mid-epoch
      callbacks; the end-of-epoch evaluation is excluded).
    - cpu_seconds: the CPU time of the same (all threads of the process): less
      disturbed than wall time when other jobs share the machine.
    - eval_seconds: wall time of the end-of-epoch evaluation (cost and accuracy).
    - learning_rate: η used for the epoch's last mini-batch.
    Other attributes:
    - start_cost: the training cost before the first update (without L2 penalty).
    - guess_cost: the cost of always outputting the class frequencies (see Diverged).
    - batches: mini-batch updates done in all; stopped / stop_reason: whether and
      why training ended early (callback, divergence); diverged: True if Diverged
      was raised; settings: the arguments of the run.

    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """

    def __init__(self, **settings):
        self.epoch, self.cost, self.accuracy = [], [], []
        self.seconds, self.cpu_seconds, self.eval_seconds, self.learning_rate = [], [], [], []
        self.batches, self.start_cost, self.guess_cost = 0, None, None
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
    """Training progress, passed to ``sgd``'s callback.

    The same object is updated in place for the whole run (so a widget may keep
    it and call ``stop()`` from another thread).

    Attributes:
    - epoch: the current epoch, 1 … epochs.
    - epochs: the number of epochs asked for.
    - batch: mini-batches done in this epoch, 1 … batches_per_epoch.
    - batches_per_epoch: ⌈n / B⌉.
    - end_of_epoch: True if this call follows an epoch's evaluation.
    - learning_rate: the η of the last mini-batch.
    - seconds: wall time since training started.
    - history: the History so far (its last entry is the last finished epoch).
    - net: the network being trained (its parameters are consistent: no update is in flight).

    Introduced in ``notebooks/07-going-further.ipynb``.
    """

    def __init__(self, net, history, epochs, batches_per_epoch):
        self.net, self.history = net, history
        self.epochs, self.batches_per_epoch = epochs, batches_per_epoch
        self.epoch, self.batch, self.end_of_epoch = 0, 0, False
        self.learning_rate, self.seconds = None, 0.0
        self.stop_requested, self.stop_reason = False, None

    def stop(self, reason="stopped by callback"):
        """Ask training to stop; it does so before the next mini-batch."""
        self.stop_reason = reason
        self.stop_requested = True

    def __repr__(self):
        return (f"Progress(epoch {self.epoch}/{self.epochs}, batch {self.batch}/"
                f"{self.batches_per_epoch}, η={self.learning_rate}, {self.seconds:.1f} s)")


def _check_data(net, data, name, targets=True):
    """Return (X (N, n_in) in net's dtype, integer labels y (N,), one-hot T (N, n_out)).

    With targets=False the labels are checked all the same, but T is None (not built).
    """
    try:
        X, y = data
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (X, y): X of shape (N, {net.sizes[0]}), "
                         f"y integer labels of shape (N,)") from None
    try:
        X, T, _ = net._check_Xy(X, y, batch_only=True, targets=targets)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return X, np.asarray(y).reshape(-1), T


def _guess_cost(net, y):
    """The cost of a network that ignores its input and always outputs the class frequencies.

    Its output is a = p, p_k the fraction of labels y (n,) equal to k; the mean
    cost over the training set is then Σ_k p_k C(a = p, t = e_k). A network
    that does worse than this after an epoch has learned less than nothing.
    """
    n_out = net.sizes[-1]
    p = np.clip(np.bincount(y, minlength=n_out) / len(y), 1e-7, 1 - 1e-7)
    z = np.log(p) if net.output_name == "softmax" else np.log(p) - np.log1p(-p)
    Z = np.tile(z, (n_out, 1))                                  # row k: the output for label k
    C = net.cost_fn.fn(Z, net.output_fn.fn(Z), np.eye(n_out), net.output_fn)   # (n_out,)
    return float(p @ C)


def _dead_units(net, X):
    """Fraction of dead units in each sigmoid layer (list, layer 1 first), on rows of X (B, n_in)."""
    zs, _ = net._forward(X)
    if net.output_name != "sigmoid":      # softmax is unchanged by shifting z: |z| says nothing
        zs = zs[:-1]
    return [float(np.mean(np.all(np.abs(z) > SATURATED_Z, axis=0))) for z in zs]


def _diverged_message(what, eta, batch_size, custom_backprop):
    also = (" (or the backprop function passed to sgd is wrong: check it with "
            "mnistnet.gradcheck.check_gradients)") if custom_backprop else ""
    return (f"training diverged: {what}. The likely cause is a learning rate too large "
            f"for this network and cost (η = {eta:g}, batch size {batch_size}){also}: the "
            f"steps overshoot and the weights blow up or saturate. Remedy: lower η (try "
            f"η/10) and start again from a fresh network, since these weights are now useless.")


def sgd(net, training_data, epochs, batch_size, learning_rate, *, l2=0.0,
        validation_data=None, seed=None, callback=None, callback_every=None,
        backprop=None, blas_threads=BLAS_THREADS):
    """Train ``net`` in place by mini-batch SGD; return a History.

    Inputs:
    - net: a Network (float32 trains about twice as fast as float64).
    - training_data: (X, y) with X (n, n_in) samples in rows, y integer labels (n,).
    - epochs: number of passes over the training data.
    - batch_size: B, rows per mini-batch (the last mini-batch of an epoch may be smaller).
    - learning_rate: η, a float, or a zero-argument callable returning the
      current η; it is called before every mini-batch, so an interactive slider
      can change η while training runs (η = 0 pauses learning; η < 0 or NaN is
      a ValueError).
    - l2: λ, the L2 regularisation parameter, scaled by the training-set size n:
      W ← (1 − ηλ/n) W − η ∇W (biases are not decayed).
    - validation_data: (X_val (m, n_in), y_val (m,)) for the accuracy after each epoch, or None.
    - seed: int or np.random.Generator for the shuffling (the network has its own seed).
    - callback: called as ``callback(progress)`` after each epoch's evaluation
      and, if ``callback_every`` = k, also after every k-th mini-batch of an
      epoch; ``progress`` is a Progress. To stop training, call
      ``progress.stop()``: training ends before the next mini-batch, the
      network holds the parameters after the last full update, the partial
      epoch is evaluated and ``history.stopped`` is True.
    - callback_every: k, in mini-batches, or None for only after each epoch.
    - backprop: None for the fast path (``net._backprop`` on precomputed one-hot
      targets), or any ``backprop(net, X_b, y_b) -> (nabla_w, nabla_b)``, e.g.
      a bug from ``mnistnet.bugs``, to see what it does to training.
    - blas_threads: numpy's BLAS threads while training: 1 (the default, fastest
      here at every batch size, see BLAS_THREADS), another number, or None to
      leave numpy's setting alone. The limit is process-wide: until sgd returns,
      every numpy product in the process uses it, in other threads too (e.g. a
      notebook's own cells while the Trainer of notebook 06 trains in a background
      thread); the previous setting is restored when sgd returns.
    Returns:
    - a History (per-epoch training cost, validation accuracy, seconds, η, …).
    Raises:
    - ValueError for wrong shapes (naming the expected shape) or bad settings.
    - Diverged (a RuntimeError, with ``.history``) when the parameters or the
      cost become NaN/inf (checked every FINITE_CHECK_EVERY mini-batches and
      after each epoch), or when after an epoch either
        * the training cost (without L2 penalty) is higher than at the start
          AND higher than that of always guessing the class frequencies, or
        * at least half of the units of some sigmoid layer are dead: saturated,
          |z| > 20, on every one of 500 training inputs, so they cannot learn.
      These are what a learning rate far too large does (η = 100 for [784, 30, 10]).

    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, y, T = _check_data(net, training_data, "training_data")
    if validation_data is not None:
        validation_data = _check_data(net, validation_data, "validation_data", targets=False)[:2]
    epochs, batch_size = int(epochs), int(batch_size)
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    if callback_every is not None and int(callback_every) < 1:
        raise ValueError(f"callback_every must be a positive number of mini-batches, got {callback_every}")
    eta_of = learning_rate if callable(learning_rate) else (lambda: learning_rate)
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    batches_per_epoch = -(-n // batch_size)
    history = History(epochs=epochs, batch_size=batch_size, l2=l2, seed=seed, n=n,
                      sizes=list(net.sizes), cost=net.cost_name, output=net.output_name,
                      dtype=net.dtype.name)
    progress = Progress(net, history, epochs, batches_per_epoch)
    history.settings["blas_threads"] = blas_threads

    limits = (threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads
              else contextlib.nullcontext())
    # Overflow to inf / NaN is detected below and reported as Diverged, with the
    # likely cause; numpy's own warnings would only come first and say less.
    with limits, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _sgd(net, X, y, T, epochs, batch_size, eta_of, l2, validation_data, rng,
                    callback, callback_every, backprop, history, progress)


def _sgd(net, X, y, T, epochs, batch_size, eta_of, l2, validation_data, rng,
         callback, callback_every, backprop, history, progress):
    """The training loop of ``sgd``, after its checks, under its BLAS and errstate settings."""
    n, batches_per_epoch = X.shape[0], progress.batches_per_epoch
    if validation_data is not None:
        X_val, y_val = validation_data
    # A fixed sample of training inputs on which to look for dead units.
    probe = X[::max(1, n // 500)][:500]
    start_cost = history.start_cost = net._mean_cost(X, T, chunk=COST_CHUNK)
    guess_cost = history.guess_cost = _guess_cost(net, y)
    start = time.perf_counter()

    def current_eta():
        eta = float(eta_of())
        if not (math.isfinite(eta) and eta >= 0):
            raise ValueError(f"the learning rate must be a number >= 0, got {eta!r}")
        return eta

    def finish_epoch(epoch_done, seconds, cpu_seconds, eta):
        """Evaluate the network, record the epoch in history, and raise Diverged if it failed."""
        t0 = time.perf_counter()
        cost = net._mean_cost(X, T, chunk=COST_CHUNK)
        penalty = 0.5 * l2 / n * sum(float(np.sum(W * W)) for W in net.weights) if l2 else 0.0
        cost += penalty
        acc = None if validation_data is None else float(np.mean(net.predict(X_val) == y_val))
        history.epoch.append(epoch_done)
        history.cost.append(cost)
        history.accuracy.append(acc)
        history.seconds.append(seconds)
        history.cpu_seconds.append(cpu_seconds)
        history.eval_seconds.append(time.perf_counter() - t0)
        history.learning_rate.append(eta)
        if not np.isfinite(cost) or not _finite(net):
            fail(f"the parameters or the training cost became NaN or infinite in epoch "
                 f"{int(np.ceil(epoch_done))} (cost {cost})", eta)
        dead = _dead_units(net, probe)
        if dead and max(dead) >= DEAD_FRACTION:
            l = int(np.argmax(dead))
            which = "the output layer" if l == net.num_layers - 1 else f"hidden layer {l + 1}"
            fail(f"after epoch {epoch_done:g} {100 * dead[l]:.0f}% of the units of {which} are "
                 f"saturated on every input (|z| > {SATURATED_Z:g}, so σ'(z) < 2.1e-9): they give "
                 f"the same output whatever the input and can no longer learn; the training cost "
                 f"is {cost - penalty:.4g} (it started at {start_cost:.4g})", eta)
        if cost - penalty > max(start_cost, guess_cost):
            fail(f"after epoch {epoch_done:g} the training cost is {cost - penalty:.4g}: higher "
                 f"than at the start ({start_cost:.4g}) and than the cost of always guessing "
                 f"the class frequencies ({guess_cost:.4g})", eta)

    def fail(what, eta):
        history.stopped, history.diverged = True, True
        history.stop_reason = _diverged_message(what, eta, batch_size, backprop is not None)
        raise Diverged(history.stop_reason, history)

    eta = None
    for epoch in range(1, epochs + 1):
        progress.epoch, progress.batch, progress.end_of_epoch = epoch, 0, False
        t0, c0 = time.perf_counter(), time.process_time()      # the shuffle counts too
        perm = rng.permutation(n)
        for j in range(batches_per_epoch):
            if progress.stop_requested:
                break
            idx = perm[j * batch_size:(j + 1) * batch_size]
            eta = current_eta()
            if backprop is None:
                nabla_w, nabla_b, _ = net._backprop(X[idx], T[idx])
                for nw, nb in zip(nabla_w, nabla_b):   # fresh arrays: scale them in place
                    nw *= eta
                    nb *= eta
            else:
                nabla_w, nabla_b = backprop(net, X[idx], y[idx])
                nabla_w = [eta * nw for nw in nabla_w]
                nabla_b = [eta * nb for nb in nabla_b]
            for W, b, step_w, step_b in zip(net.weights, net.biases, nabla_w, nabla_b):
                if l2:
                    W *= 1.0 - eta * l2 / n              # weight decay
                W -= step_w                              # W ← W − η ∇W
                b -= step_b
            history.batches += 1
            progress.batch, progress.learning_rate = j + 1, eta
            if (j + 1) % FINITE_CHECK_EVERY == 0 and not _finite(net):
                fail(f"the parameters became NaN or infinite during epoch {epoch}", eta)
            if (callback is not None and callback_every and (j + 1) % callback_every == 0
                    and j + 1 < batches_per_epoch):
                progress.seconds = time.perf_counter() - start
                callback(progress)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        if progress.batch == 0 and progress.stop_requested:
            break                                  # stopped exactly at an epoch boundary
        finish_epoch(epoch - 1 + progress.batch / batches_per_epoch, seconds, cpu_seconds, eta)
        if progress.stop_requested:
            break
        if callback is not None:
            progress.end_of_epoch = True
            progress.seconds = time.perf_counter() - start
            callback(progress)
            progress.end_of_epoch = False
        if progress.stop_requested:
            break
    if progress.stop_requested:
        history.stopped = True
        history.stop_reason = progress.stop_reason
    return history


def _finite(net):
    """True if every weight and bias is finite (a sum is NaN/inf if any entry is)."""
    return all(np.isfinite(W.sum()) and np.isfinite(b.sum())
               for W, b in zip(net.weights, net.biases))
