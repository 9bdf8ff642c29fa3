"""The network: forward pass and backpropagation, side by side.

The whole math, for layers l = 1 … L (σ on hidden layers, the chosen output
function on layer L), one sample on the left, a batch of B rows on the right::

    forward    z^l = W^l a^(l−1) + b^l          Z^l = A^(l−1) W^lᵀ + b^l      (B, n_l)
               a^l = σ(z^l)                      A^l = σ(Z^l)                  (B, n_l)
    output     δ^L = ∂C/∂z^L (cost.delta)        Δ^L                           (B, n_L)
    backward   δ^l = (W^(l+1)ᵀ δ^(l+1)) ⊙ σ'(z^l)  Δ^l = (Δ^(l+1) W^(l+1)) ⊙ σ'(Z^l)
    gradients  ∂C/∂W^l = outer(δ^l, a^(l−1))     Δ^lᵀ A^(l−1) / B              (n_l, n_(l−1))
               ∂C/∂b^l = δ^l                      Δ^l summed over rows / B      (n_l,)

with a^0 = x. In code, ``Δ @ W`` is the row form of ``Wᵀ δ``: each row of Δ
is one sample's δ, and (Wᵀδ)ᵀ = δᵀW. Python lists count from 0, so
``weights[0]`` is W^1 and ``activations[0]`` is the input x.
"""

import copy
import math
import numbers
import os
import sys
import warnings

import numpy as np

from .functions import COSTS, OUTPUTS, check_labels, one_hot, sigmoid, sigmoid_prime

INITS = ("normal", "scaled", "uniform")

# Above this many parameters Network warns (the book's networks have at most 160 000).
MAX_PARAMETERS = 50_000_000

# Random numbers are drawn in float64 this many at a time and cast into the parameters.
DRAW_CHUNK = 1 << 20

# Non-negative inputs reaching above this look like unscaled pixels (0 … 255), not [0, 1].
UNSCALED_ABOVE = 2.0

_SIZES_EXPECTED = ("sizes must be a list of at least two positive whole numbers, input first, "
                   "e.g. [784, 30, 10]")


def check_sizes(sizes):
    """[n0, n1, …, nL] as ints from a list, tuple or 1-D array of positive whole numbers (30.0 counts)."""
    if not isinstance(sizes, (list, tuple, np.ndarray)) or np.ndim(sizes) != 1:
        raise TypeError(f"{_SIZES_EXPECTED}; got {sizes!r} ({type(sizes).__name__})")
    def whole(n):
        return (isinstance(n, numbers.Real) and not isinstance(n, (bool, np.bool_))
                and math.isfinite(n) and n >= 1 and int(n) == n)
    if len(sizes) < 2 or not all(whole(n) for n in sizes):
        raise ValueError(f"{_SIZES_EXPECTED}; got {list(sizes)!r}")
    return [int(n) for n in sizes]


def check_dtype(dtype):
    """np.dtype(dtype) if it is a floating-point type, else a ValueError saying why."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a floating-point type such as np.float64 or np.float32, "
                        f"got {dtype!r}") from None
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating-point type such as np.float64 or "
                         f"np.float32, got {dt.name}: whole-number weights "
                         f"(and inputs cast to them) would lose every fraction")
    return dt


def _draw(rng, shape, init, n_in, dtype):
    """One layer's W (n_out, n_in) or b (n_out,): one float64 draw of the shape, cast chunk by chunk.

    The same seed gives the same network in either dtype; the peak is the array plus a chunk.
    """
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    for k in range(0, flat.size, DRAW_CHUNK):
        m = min(DRAW_CHUNK, flat.size - k)
        part = rng.uniform(-1.0, 1.0, m) if init == "uniform" else rng.standard_normal(m)
        if init == "scaled" and len(shape) == 2:
            part /= np.sqrt(n_in)
        flat[k:k + m] = part
    return out



def _caller_outside():
    """warnings.warn's stacklevel naming the first caller outside mnistnet (the learner's line,
    whichever of forward, cost, predict or sgd was called), not a line of the package."""
    frame, level, package = sys._getframe(1), 1, os.path.dirname(__file__)
    while frame.f_back is not None and os.path.dirname(frame.f_code.co_filename) == package:
        frame, level = frame.f_back, level + 1
    return level

class Network:
    """A fully connected sigmoid network, e.g. ``Network([784, 30, 10])``.

    Parameters:
    - sizes: layer sizes, input first, e.g. [784, 30, 10] or [784, 100, 30, 10].
    - cost: "quadratic" (C = ½‖a − t‖²) or "cross_entropy".
    - output: "sigmoid" or "softmax" for the last layer; hidden layers are sigmoid.
    - init: "normal"  weights and biases N(0, 1), the book's chapter 1;
            "scaled"  weights N(0, 1/n_in), biases N(0, 1), the book's chapter 3;
            "uniform" weights and biases U(−1, 1), like a first hand-written network.
    - seed: an int or an np.random.Generator, for reproducible weights.
    - dtype: np.float64 (for gradient checks) or np.float32 (faster training).
    - weights, biases: parameters matching sizes, instead of a random draw (``from_arrays``).

    Attributes:
    - weights: [W1 (n1, n0), W2 (n2, n1), …], stored (out, in).
    - biases:  [b1 (n1,), b2 (n2,), …].
    """

    def __init__(self, sizes, cost="quadratic", output="sigmoid", init="normal",
                 seed=None, dtype=np.float64, *, weights=None, biases=None):
        self.sizes = check_sizes(sizes)
        for key, value, allowed in (("cost", cost, sorted(COSTS)),
                                    ("output", output, sorted(OUTPUTS)),
                                    ("init", init, list(INITS))):
            if value not in allowed:
                raise ValueError(f"unknown {key} {value!r}; expected one of {allowed}")
        self.dtype = check_dtype(dtype)
        self.cost_name, self.output_name, self.init = cost, output, init
        self.cost_fn, self.output_fn = COSTS[cost], OUTPUTS[output]
        if weights is not None or biases is not None:
            self.weights, self.biases = self._given_parameters(weights, biases)
            return
        count = sum(m * (n + 1) for n, m in zip(self.sizes[:-1], self.sizes[1:]))
        if count > MAX_PARAMETERS:
            warnings.warn(f"Network({self.sizes}) has {count:,} parameters "
                          f"({count * self.dtype.itemsize / 2**20:,.0f} MiB in {self.dtype.name}, "
                          f"and training needs as much again); the book's networks have at "
                          f"most 160,000. Check the sizes.", stacklevel=2)
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            self.weights.append(_draw(rng, (n_out, n_in), init, n_in, self.dtype))
            self.biases.append(_draw(rng, (n_out,), init, n_in, self.dtype))

    def _given_parameters(self, weights, biases):
        """The given weights and biases as arrays of self.dtype, checked against self.sizes."""
        weights = [np.asarray(W, dtype=self.dtype) for W in weights]
        biases = [np.asarray(b, dtype=self.dtype) for b in biases]
        L = len(self.sizes) - 1
        if len(weights) != L or len(biases) != L:
            raise ValueError(f"sizes {self.sizes} need {L} weight matrices "
                             f"and as many bias vectors; got {len(weights)} and {len(biases)}")
        for l, (W, b) in enumerate(zip(weights, biases), start=1):
            n_in, n_out = self.sizes[l - 1], self.sizes[l]
            if W.shape != (n_out, n_in):
                raise ValueError(f"W{l} has shape {W.shape}; expected (n{l}, {n_in}), "
                                 f"stored (out, in)")
            if b.shape != (n_out,):
                raise ValueError(f"b{l} has shape {b.shape}; expected ({n_out},), "
                                 f"one bias per row of W{l}")
        return weights, biases

    @classmethod
    def from_arrays(cls, weights, biases, *, cost="quadratic", output="sigmoid", init="normal",
                    dtype=None):
        """``Network(sizes, …, weights=…, biases=…)`` with sizes read from the weights.

        weights [W1 (n1, n0), W2 (n2, n1), …] stored (out, in); biases [b1 (n1,), …];
        cost, output as for Network; init is only recorded; dtype None keeps W1's (float64
        for lists or integers); arrays that already have it are used as given, not copied.
        Raises ValueError if the shapes do not chain.
        """
        weights, biases = list(weights), list(biases)
        if not weights or len(weights) != len(biases):
            raise ValueError(f"need one bias vector per weight matrix and at least one layer; "
                             f"got {len(weights)} weight matrices and {len(biases)} bias vectors")
        if dtype is None:
            dtype = np.asarray(weights[0]).dtype
            if dtype.kind != "f":
                dtype = np.float64
        shapes = [np.shape(W) for W in weights]
        for l, shape in enumerate(shapes, start=1):
            if len(shape) != 2 or 0 in shape:
                n_in = "n0" if l == 1 else shapes[l - 2][0]     # W(l−1) passed this check
                raise ValueError(f"W{l} has shape {shape}; expected (n{l}, {n_in}), stored (out, in)")
        sizes = [shapes[0][1]] + [shape[0] for shape in shapes]
        return cls(sizes, cost=cost, output=output, init=init, dtype=dtype,
                   weights=weights, biases=biases)

    def __repr__(self):
        return (f"Network({self.sizes}, cost={self.cost_name!r}, output={self.output_name!r}, "
                f"init={self.init!r}, dtype={self.dtype.name})")

    @property
    def num_layers(self):
        """Number of weight layers L (2 for [784, 30, 10])."""
        return len(self.weights)

    # --- forward -------------------------------------------------------------

    def forward(self, X):
        """The network's output: X (n_in,) or (B, n_in) -> a (n_out,) or (B, n_out)."""
        X, single = self._check_X(X)
        A = self.forward_batch(X)[1][-1]
        return A[0] if single else A

    def forward_all(self, X):
        """Every layer's weighted input and activation, as backprop needs them.

        X: one sample (n_in,) or a batch (B, n_in). Returns zs [z1, …, zL], each (n_l,) or
        (B, n_l), and activations [x, a1, …, aL] (activations[0] is the input itself).
        """
        X, single = self._check_X(X)
        zs, activations = self.forward_batch(X)
        if single:
            zs, activations = [z[0] for z in zs], [a[0] for a in activations]
        return zs, activations

    def forward_batch(self, X):
        """The forward pass on X (B, n_in) as ``check_data`` returned it (not checked again).

        Returns zs [Z1, …, ZL], Z^l = A^(l−1) W^lᵀ + b^l (B, n_l), and activations [X, A1, …, AL].
        """
        zs, activations = [], [X]
        a, L = X, len(self.weights)
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            z = a @ W.T + b                      # (B, n_in) @ (n_in, n_out) -> (B, n_out)
            a = self.output_fn.fn(z) if l == L else sigmoid(z)
            zs.append(z)
            activations.append(a)
        return zs, activations

    # --- backward ------------------------------------------------------------

    def backprop(self, X, y):
        """Gradients of the mean cost over the batch (no L2 term), by backpropagation.

        Inputs: X, one sample (n_in,) or a batch (B, n_in), B ≥ 1; y, its label or labels (B,).
        Returns: nabla_w [∂C/∂W1 (n1, n0), …] and nabla_b [∂C/∂b1 (n1,), …], in the parameters' dtype.
        """
        X, _, T = self.check_data(X, y)
        nabla_w, nabla_b, _ = self.backprop_batch(X, T)
        return nabla_w, nabla_b

    def deltas(self, X, y):
        """The error δ^l = ∂C/∂z^l of every layer, each sample's own (not divided by B).

        X (n_in,) or (B, n_in), y a label or labels (B,) -> [δ1, …, δL], each (n_l,) or (B, n_l).
        """
        single = np.ndim(X) == 1
        X, _, T = self.check_data(X, y)
        deltas = self.backprop_batch(X, T)[2]
        return [d[0] for d in deltas] if single else deltas

    def backprop_batch(self, X, T):
        """Backpropagation on X (B, n_in), one-hot T (B, n_out) as ``check_data`` returned them.

        Returns nabla_w [Δ^lᵀ A^(l−1) / B (n_l, n_(l−1))] and nabla_b [Δ^l summed over rows
        / B (n_l,)], the mean cost's gradients, and deltas [Δ1, …, ΔL], Δ^l (B, n_l): row k
        is sample k's own δ^l.
        """
        B = X.shape[0]
        zs, activations = self.forward_batch(X)
        L = self.num_layers
        nabla_w, nabla_b, deltas = [None] * L, [None] * L, [None] * L
        delta = self.cost_fn.delta(zs[-1], activations[-1], T, self.output_fn)   # Δ^L (B, n_L)
        for l in range(L - 1, -1, -1):                  # l = L-1 … 0 is layer L … 1
            deltas[l] = delta
            nabla_w[l] = delta.T @ activations[l] / B    # (n_out, B) @ (B, n_in) -> (n_out, n_in)
            nabla_b[l] = delta.sum(axis=0) / B          # (n_out,)
            if l > 0:
                # Δ^l = (Δ^(l+1) W^(l+1)) ⊙ σ'(Z^l), the row form of (Wᵀ δ) ⊙ σ'(z).
                # σ'(Z^l) = A^l (1 − A^l), from the activation already computed.
                a = activations[l]
                delta = (delta @ self.weights[l]) * (a * (1 - a))
        return nabla_w, nabla_b, deltas

    def backprop_sample(self, x, y):
        """Backprop for ONE sample with 1-D vectors, the per-sample reference: a loop over
        layers, ``np.outer`` for the weight gradients, ``W.T @ delta`` to send the error back
        (``backprop`` agrees with its average over a batch to 1e-12 in float64).

        x (n_in,), y an integer label -> nabla_w [(n1, n0), …], nabla_b [(n1,), …].
        """
        X, _, T = self.check_data(x, y, one_sample=True)
        x, t = X[0], T[0]                                       # (n_in,), (n_out,)
        zs, activations = [], [x]
        a, L = x, self.num_layers
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            z = W @ a + b                                       # (n_out,)
            a = self.output_fn.fn(z) if l == L else sigmoid(z)
            zs.append(z)
            activations.append(a)
        nabla_w, nabla_b = [None] * L, [None] * L
        delta = self.cost_fn.delta(zs[-1], activations[-1], t, self.output_fn)     # (n_L,)
        for l in range(L - 1, -1, -1):
            nabla_w[l] = np.outer(delta, activations[l])        # (n_out,) ⊗ (n_in,) -> (n_out, n_in)
            nabla_b[l] = delta
            if l > 0:
                delta = (self.weights[l].T @ delta) * sigmoid_prime(zs[l - 1])
        return nabla_w, nabla_b

    def backprop_loop(self, X, y):
        """The mean gradient over a batch X (B, n_in), y (B,), one ``backprop_sample`` at a time.

        The slow, obvious version that ``backprop`` is checked and timed against. Returns as ``backprop``.
        """
        X, y, _ = self.check_data(X, y, targets=False)
        nabla_w = [np.zeros_like(W) for W in self.weights]
        nabla_b = [np.zeros_like(b) for b in self.biases]
        for x, label in zip(X, y):
            dnw, dnb = self.backprop_sample(x, label)
            for l in range(self.num_layers):
                nabla_w[l] += dnw[l]
                nabla_b[l] += dnb[l]
        B = X.shape[0]
        return [nw / B for nw in nabla_w], [nb / B for nb in nabla_b]

    # --- cost and predictions ---------------------------------------------------

    def cost(self, X, y):
        """The mean cost (no L2 term), a float: X (n_in,) or (B, n_in), B ≥ 1; y a label or labels (B,)."""
        X, _, T = self.check_data(X, y)
        return self.mean_cost(X, T)

    def mean_cost(self, X, T):
        """The mean cost, a float: X (B, n_in), one-hot T (B, n_out) as ``check_data`` returned them."""
        zs, activations = self.forward_batch(X)
        return float(self.cost_fn.fn(zs[-1], activations[-1], T, self.output_fn).mean())

    def predict(self, X):
        """The predicted digit, the index of the largest output: X (n_in,) or (B, n_in) -> an int or (B,)."""
        a = self.forward(X)
        return int(a.argmax()) if a.ndim == 1 else a.argmax(axis=1)

    def accuracy(self, X, y):
        """Fraction of samples classified correctly, in [0, 1]: X (B, n_in), B ≥ 1; y labels (B,)."""
        X, y, _ = self.check_data(X, y, targets=False)
        return float(np.mean(self.forward_batch(X)[1][-1].argmax(axis=1) == y))

    # --- copying ---------------------------------------------------------------

    def copy(self):
        """An independent copy of the parameters and sizes, of the same class (a subclass's
        own attributes are shared, as ``copy.copy`` shares them)."""
        new = copy.copy(self)
        new.sizes = list(self.sizes)
        new.weights = [W.copy() for W in self.weights]
        new.biases = [b.copy() for b in self.biases]
        return new

    def astype(self, dtype):
        """A copy with parameters of a floating-point dtype (np.float32 for training); ints are refused."""
        dtype = check_dtype(dtype)
        new = self.copy()
        new.dtype = dtype
        new.weights = [W.astype(dtype) for W in self.weights]
        new.biases = [b.astype(dtype) for b in self.biases]
        return new

    # --- input checks: a wrong shape or value says what was expected ---------------

    def _check_X(self, X, one_sample=False, batch_only=False):
        """(X as a (B, n_in) array of the network's dtype, whether it was one sample); one_sample,
        batch_only as in check_data; a wrong shape is a ValueError hinting at the usual mix-ups."""
        X = np.asarray(X)
        n_in = self.sizes[0]
        if X.ndim == 1 and X.shape[0] == n_in and not batch_only:
            return self._check_values(X[None, :]), True
        if one_sample:
            raise ValueError(f"x has shape {X.shape}; expected one sample of shape ({n_in},)")
        if X.ndim == 2 and X.shape[1] == n_in:
            return self._check_values(X), False
        hint = ""
        if X.shape == (n_in, 1) and not batch_only:
            hint = f" A column vector ({n_in}, 1) is the book's layout; pass x.ravel() here."
        elif X.ndim == 2 and X.shape[0] == n_in:
            hint = (f" It looks transposed: samples go in rows here (Z = X @ W.T + b), "
                    f"so pass X.T, of shape {X.shape[::-1]}.")
        elif X.ndim == 3 and X.shape[1:] == (28, 28) and n_in == 784:
            hint = " Flatten the images first: X.reshape(len(X), 784)."
        if batch_only:
            raise ValueError(f"X has shape {X.shape}; expected (N, {n_in}), N samples in rows.{hint}")
        raise ValueError(f"X has shape {X.shape}; expected ({n_in},) for one sample "
                         f"or (B, {n_in}) for a batch of B samples in rows.{hint}")

    def _check_values(self, X):
        """X (B, n_in) in the network's dtype. Refused: non-numbers, whole numbers above 1
        (raw pixels), NaN or inf (naming the row); warned: values in [0, m], m > UNSCALED_ABOVE."""
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
        if X.size == 0:
            return X.astype(self.dtype, copy=False)
        if X.dtype.kind in "iu" and X.max() > 1:
            raise ValueError(f"X holds whole numbers from {X.min()} to {X.max()} (dtype "
                             f"{X.dtype.name}): raw pixel values. Scale them to [0, 1] first: "
                             f"X = X / 255 (load_mnist does this for you)")
        X = X.astype(self.dtype, copy=False)
        lo, hi = X.min(), X.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
            col = int(np.flatnonzero(~np.isfinite(X[rows[0]]))[0])
            more = f" ({len(rows)} rows in all)" if len(rows) > 1 else ""
            raise ValueError(f"X has {X[rows[0], col]} in row {rows[0]}, column {col}{more}: the "
                             f"network's output would be meaningless. Remove or repair those "
                             f"rows (np.isfinite(X).all(axis=1) marks the good ones)")
        if lo >= 0 and hi > UNSCALED_ABOVE:
            warnings.warn(f"X's values go from {lo:g} to {hi:g}: they look like unscaled pixel "
                          f"values. This network expects pixels in [0, 1]: X = X / "
                          f"{255 if hi <= 255 else hi:g}", stacklevel=_caller_outside())
        return X

    def check_data(self, X, y, *, one_sample=False, batch_only=False, targets=True):
        """Check a batch once at the boundary; return it ready for the unchecked methods.

        - X: one sample (n_in,) or a batch (B, n_in), B ≥ 1, of real numbers. Refused: a wrong
          shape, raw whole-number pixels, NaN or inf (naming the row), no rows at all.
        - y: an integer label, or integer labels (B,), each in 0 … n_out − 1.
        - one_sample / batch_only: accept only x (n_in,) / only X (B, n_in);
          targets: False to skip building T (the labels are checked all the same).
        Returns X (B, n_in) in the network's dtype (one sample becomes a batch of one), y (B,),
        and one-hot T (B, n_out) in that dtype, or None. Raises ValueError (TypeError for
        non-numbers) naming what was expected.
        """
        X, single = self._check_X(X, one_sample, batch_only)
        y = np.asarray(y)
        n_out = self.sizes[-1]
        if not np.issubdtype(y.dtype, np.integer):
            if y.ndim >= 1 and y.shape[-1] == n_out and np.issubdtype(y.dtype, np.floating):
                raise ValueError(f"y has shape {y.shape} (one-hot vectors?); expected integer "
                                 f"labels, e.g. y = t.argmax(axis=-1)")
            raise ValueError(f"y must hold integer labels, got dtype {y.dtype}")
        expected = () if single else (X.shape[0],)
        if y.shape != expected and not (single and y.shape == (1,)):
            what = "a single integer label" if single else f"integer labels of shape ({X.shape[0]},)"
            raise ValueError(f"y has shape {y.shape}; expected {what}, one per sample in X")
        if X.shape[0] == 0:
            raise ValueError(f"X has no rows (shape {X.shape}): a cost, gradient or accuracy "
                             f"needs at least one sample")
        y = check_labels(y.reshape(-1), n_out)
        return X, y, (one_hot(y, n_out, self.dtype) if targets else None)
