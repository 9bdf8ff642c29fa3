"""Gradient checking: compare backprop with central differences of the mean batch cost.

For every entry θ of some W^l or b^l (no L2 term)::

    ∂C/∂θ ≈ (C(θ + h) − C(θ − h)) / 2h          error O(h²) from the Taylor series

compared with a backprop's gradient one array at a time (W1, b1, W2, b2, …) by ``rel_error``.
Why float64: C(θ + h) − C(θ − h) loses about eps·|C|/h to rounding, ≈ 1e-11 with h = 1e-5,
but ≈ 1e-2 in float32, as big as the bugs we look for. Verdicts (stricter than CS231n's,
since our cost is smooth):

    rel. error ≤ 1e-7         good
    1e-7 … 1e-4               suspicious (fine only for costs with kinks; ours is smooth)
    1e-4 … 1e-2               probably wrong
    > 1e-2                    wrong
"""

import copy as _copy
import inspect
import warnings

import numpy as np

from .network import Network
from .tables import format_table

THRESHOLDS = ((1e-7, "good"), (1e-4, "suspicious"), (1e-2, "probably wrong"))


def rel_error(a, b):
    """Relative error of two arrays of the same shape, one number per array::

        rel_error(a, b) = max|a − b| / max(1e-8, max(|a| + |b|))

    A flipped sign gives exactly 1. Unlike CS231n's entry-by-entry ratio, scaling by the whole
    array keeps nearly-zero gradients (all rounding) from dominating.
    Inputs: a, b, e.g. analytic and numerical ∂C/∂W1 (n1, n0); b is NaN where not sampled
    (ignored). Returns: a float; ``inf`` if the shapes differ or a checked value is not finite.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    sampled = ~np.isnan(b)
    a, b = a[sampled], b[sampled]
    if a.size == 0:
        return 0.0
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b))))


#: Relative errors below this print as "< 1e-8": rounding, whose digits vary with the BLAS kernel.
PRINT_FLOOR = 1e-8


def format_error(error):
    """A relative error ≥ 0 as printed: '< 1e-8' below PRINT_FLOOR, else '9.6e-01' or 'inf'."""
    return f"< {PRINT_FLOOR:.0e}".replace("e-0", "e-") if error < PRINT_FLOOR else f"{error:.1e}"


def verdict(error):
    """'good', 'suspicious', 'probably wrong' or 'wrong' for a relative error ≥ 0 (THRESHOLDS)."""
    for limit, word in THRESHOLDS:
        if error <= limit:
            return word
    return "wrong"


def param_names(net):
    """['W1', 'b1', 'W2', 'b2', …] for a Network: its rows in the check, layers counted from 1."""
    return [f"{p}{l}" for l in range(1, net.num_layers + 1) for p in ("W", "b")]


def _as_float64(net, what):
    """Warn loudly and return a float64 copy if net is not float64; else net itself."""
    if net.dtype == np.float64:
        return net
    warnings.warn(
        f"{what}: the network's parameters are {net.dtype.name}. Finite differences "
        f"need float64: (C(θ+h) − C(θ−h)) / 2h loses about eps·|C|/h to rounding, "
        f"≈ 1e-2 in float32 (eps ≈ 1.2e-7) but ≈ 1e-11 in float64. Checking a float64 "
        f"copy instead (net.astype(np.float64)); pass one yourself to silence this.",
        UserWarning, stacklevel=3)
    return net.astype(np.float64)


def numerical_gradient(net, X, y, *, h=1e-5, num_checks=None, seed=None):
    """Central-difference gradient of the mean batch cost, for every parameter or a sample.

    Each entry θ is nudged to θ ± h in place and restored exactly (also on Ctrl-C): 2 forward
    passes per entry; use ``num_checks`` for [784, 30, 10].
    Inputs:
    - net: a Network, ideally float64 (a float32 one is checked as a float64 copy, with a warning).
    - X: a batch of rows (B, n_in), or one sample (n_in,); y: integer labels (B,), or one label.
    - h: the step; num_checks: None for every entry, or k random entries of each array; seed:
      an int or a np.random.Generator choosing them.
    Returns:
    - nabla_w: [≈∂C/∂W1 (n1, n0), ≈∂C/∂W2 (n2, n1), …], float64; entries not sampled are NaN.
    - nabla_b: [≈∂C/∂b1 (n1,), …], likewise.
    """
    net = _as_float64(net, "numerical_gradient")
    X, _, T = net.check_data(X, y)
    grads = _numerical_gradient(net, X, T, h=h, num_checks=num_checks, seed=seed)
    return grads[0::2], grads[1::2]


def _numerical_gradient(net, X, T, *, h, num_checks, seed):
    """numerical_gradient on checked inputs: float64 net, X (B, n_in), one-hot T (B, n_out);
    returns one list in the order of the check, [≈∂C/∂W1, ≈∂C/∂b1, ≈∂C/∂W2, …]."""
    rng = np.random.default_rng(seed)
    grads = []
    for p in [q for W, b in zip(net.weights, net.biases) for q in (W, b)]:
        g = np.full(p.shape, np.nan)
        if num_checks is None or num_checks >= p.size:
            indices = range(p.size)
        else:
            indices = rng.choice(p.size, size=num_checks, replace=False)
        for i in indices:
            # Index p itself: p.reshape(-1) is a copy for a non-contiguous p; nudges would miss.
            idx = np.unravel_index(i, p.shape)
            old = p[idx]
            try:
                p[idx] = old + h
                c_plus = net.mean_cost(X, T)
                p[idx] = old - h
                c_minus = net.mean_cost(X, T)
            finally:                      # even on Ctrl-C: never leave the net off by ±h
                p[idx] = old                                    # restore exactly
            g[idx] = (c_plus - c_minus) / (2 * h)
        grads.append(g)
    return grads


def _call_backprop(backprop, net, X, y, original):
    """backprop(net, X, y); a method bound to ``original`` runs as its function on ``net``."""
    if inspect.ismethod(backprop) and hasattr(backprop.__self__, "weights"):
        if backprop.__self__ is not original:
            raise ValueError("backprop is a method of another network; pass the function, "
                             "e.g. Network.backprop, or a method of this network")
        return backprop.__func__(net, X, y)
    return backprop(net, X, y)


class GradCheckResult:
    """What ``check_gradients`` found, one row per parameter array; printing it shows the table.

    Attributes: names ['W1', 'b1', …]; shapes (the expected ones); errors {name: rel_error};
    verdicts {name: 'good' | 'suspicious' | 'probably wrong' | 'wrong' | 'wrong shape …'};
    analytic, numerical {name: array} (NaN where not sampled); tol (``passed`` up to it).
    """

    def __init__(self, names, shapes, analytic, numerical, tol, note=""):
        self.names, self.shapes, self.tol, self.note = names, shapes, tol, note
        self.analytic = dict(zip(names, analytic))
        self.numerical = dict(zip(names, numerical))
        self.errors = {name: rel_error(a, n) for name, a, n in zip(names, analytic, numerical)}
        self.verdicts = {name: verdict(error) for name, error in self.errors.items()}
        for name, shape, a in zip(names, shapes, analytic):
            if np.shape(a) != tuple(shape):              # say so, not just 'wrong' (error inf)
                self.verdicts[name] = f"wrong shape {np.shape(a)}"

    @property
    def max_error(self):
        """The largest relative error over all arrays."""
        return max(self.errors.values())

    @property
    def passed(self):
        """True if every array's relative error is at most ``tol``."""
        return self.max_error <= self.tol

    def __getitem__(self, name):
        return self.errors[name]

    def _rows(self):
        for name, shape in zip(self.names, self.shapes):
            checked = int(np.sum(~np.isnan(self.numerical[name])))
            yield (name, str(tuple(shape)), f"{checked}", format_error(self.errors[name]),
                   self.verdicts[name])

    def _status(self):
        return (f"{'PASSED' if self.passed else 'FAILED'}: max rel. error "
                f"{format_error(self.max_error)} (tolerance {self.tol:.0e})")

    def __str__(self):
        table = format_table(("param", "shape", "checked", "rel. error", "verdict"), self._rows())
        return "\n".join([table, self._status()] + ([self.note] if self.note else []))

    __repr__ = __str__

    def _repr_html_(self):
        colour = {"good": "#1a7f37", "suspicious": "#9a6700"}
        cells = "".join(
            f"<tr><td>{n}</td><td>{s}</td><td>{c}</td><td>{e}</td>"
            f"<td style='color:{colour.get(v, '#cf222e')}'>{v}</td></tr>"
            for n, s, c, e, v in self._rows())
        status, rest = self._status().split(":", 1)
        return ("<table><tr><th>param</th><th>shape</th><th>checked</th><th>rel. error</th>"
                f"<th>verdict</th></tr>{cells}</table><p><b>{status}</b>:{rest}"
                f"{'<br>' + self.note if self.note else ''}</p>")


def check_gradients(net, X, y, backprop=None, *, h=1e-5, num_checks=None, seed=None, tol=1e-7):
    """Check a backprop function against central differences, one parameter array at a time.

    Inputs:
    - net: a Network, ideally float64 (a float32 one is checked as a float64 copy, with a warning).
    - X: a batch of rows (B, n_in), or one sample (n_in,); y: integer labels (B,), or one.
    - backprop: None (``Network.backprop``) or any ``backprop(net, X, y) -> (nabla_w,
      nabla_b)``, [∂C/∂W1 (n1, n0), …] and [∂C/∂b1 (n1,), …] of the **mean** cost (e.g. from
      ``mnistnet.bugs``, ``net.backprop_loop``, ``from_layers``); it gets a copy of ``net``.
    - h, num_checks, seed: as ``numerical_gradient`` (num_checks=k samples k entries per array).
    - tol: the relative error up to which the check passes (1e-7: 'good').
    Returns:
    - a GradCheckResult: ``print`` it for the table; ``.errors``, ``.passed``, ``.max_error``.
    """
    note, original = "", net
    if net.dtype != np.float64:
        note = f"(checked a float64 copy of a {net.dtype.name} network)"
    net = _as_float64(net, "check_gradients")
    X64, _, T = net.check_data(X, y)                    # shape errors surface here, clearly
    if backprop is None:
        backprop = type(net).backprop
    # Backprop first: if it raises or returns the wrong count, fail before the slow numerical part.
    nabla_w, nabla_b = _call_backprop(backprop, net.copy(), X, y, original)
    if len(nabla_w) != net.num_layers or len(nabla_b) != net.num_layers:
        raise ValueError(f"backprop returned {len(nabla_w)} weight and {len(nabla_b)} bias "
                         f"gradients; the network has {net.num_layers} layers")
    numerical = _numerical_gradient(net, X64, T, h=h, num_checks=num_checks, seed=seed)
    shapes = [g.shape for g in numerical]                # the parameters' shapes
    analytic = [np.asarray(g) for pair in zip(nabla_w, nabla_b) for g in pair]
    return GradCheckResult(param_names(net), shapes, analytic, numerical, tol, note)


def from_layers(net, step, *, learning_rate=None, copy=True):
    """Make class-based code with ``net.layers`` checkable by check_gradients and check_backprop.

    Such code often updates its layers in place in the backward pass (``layer.weights -= lr *
    grad``); the wrapper runs it on a fresh copy of the parameters each time.
    Inputs:
    - net: your object; ``net.layers[l].weights`` (n_out, n_in), ``.biases`` (n_out,), input first.
    - step: ``step(net, x, y)``, one training step on ONE sample x (n_in,), y an integer: forward,
      backprop and, if you like, the update; e.g. ``lambda net, x, y: (net.feed_forward(x),
      net.propagate_back(x, y))``, or a method bound to ``net`` (run on the copy).
    - learning_rate: η of your update. If step returns None the gradients are read from the
      update, (W_before − W_after) / η; if it returns (nabla_w, nabla_b), those are used.
    - copy: True: each call runs on a shallow copy of ``net`` with fresh arrays, so an update
      in place changes nothing; False: the checker's arrays go into ``net`` (an update is reported).
    Returns:
    - fn, for ``check_backprop(fn)`` (called ``fn(weights, biases, x, y)``) and for
      ``check_gradients(net64, X, y, backprop=fn)`` (called ``fn(network, X, y)``); a batch
      X (B, n_in) runs the step once per row from the same parameters and averages: the
      gradient of the mean cost, ([dW1 (n1, n0), …], [db1 (n1,), …]).
    """
    if not hasattr(net, "layers"):
        raise TypeError(f"from_layers: net must have a list net.layers of layers with .weights "
                        f"and .biases; got a {type(net).__name__} without .layers")

    def one_sample(weights, biases, x, y):
        target = _copy.copy(net) if copy else net
        if copy:
            target.layers = [_copy.copy(layer) for layer in net.layers]
        for layer, W, b in zip(target.layers, weights, biases):
            layer.weights, layer.biases = (np.array(W, float), np.array(b, float)) if copy \
                else (W, b)
        before = [(np.array(l.weights), np.array(l.biases)) for l in target.layers]
        bound = inspect.ismethod(step) and step.__self__ is net
        result = step.__func__(target, x, y) if bound else step(target, x, y)
        if result is not None:
            return result
        if learning_rate is None:
            raise ValueError("from_layers: step returned None, so the gradients must be read "
                             "from its update: pass learning_rate=, the η your step uses")
        return ([(W0 - l.weights) / learning_rate for (W0, _), l in zip(before, target.layers)],
                [(b0 - l.biases) / learning_rate for (_, b0), l in zip(before, target.layers)])

    def fn(*args):
        if len(args) == 3:                             # check_gradients: (network, X, y)
            args = (args[0].weights, args[0].biases, args[1], args[2])
        weights, biases, x, y = args
        if np.ndim(x) == 1:
            return one_sample(weights, biases, x, y)
        grads = [one_sample(weights, biases, row, label) for row, label in zip(x, np.ravel(y))]
        return tuple([np.mean([np.asarray(g[part][l]) for g in grads], axis=0)
                      for l in range(len(grads[0][part]))] for part in (0, 1))

    fn.__name__ = getattr(step, "__name__", "step")
    return fn


def from_network_backprop(backprop, **network_kwargs):
    """Turn ``backprop(net, X, y)`` into the ``fn(weights, biases, X, y)`` the checkers take.

    Inputs: backprop (net, X (B, n0), y (B,)) -> (nabla_w, nabla_b), e.g. a planted bug of
    ``mnistnet.bugs``; network_kwargs for ``Network.from_arrays`` (cost, output, init, dtype;
    float64 unless given). Returns: fn(weights [W1 (n1, n0), …], biases [b1 (n1,), …], X, y),
    a batch function calling backprop on a Network built from them.
    """
    network_kwargs.setdefault("dtype", np.float64)   # gradients are checked in float64

    def fn(weights, biases, X, y):
        return backprop(Network.from_arrays(weights, biases, **network_kwargs), X, y)

    fn.__name__ = getattr(backprop, "__name__", "backprop")
    fn.__doc__ = getattr(backprop, "__doc__", None)
    return fn
