"""The network: forward pass and backpropagation, side by side.

``Network`` is first built in ``notebooks/02-forward-pass-shapes.ipynb`` (forward,
cost, accuracy); ``notebooks/03-backprop-shapes.ipynb`` backpropagates one sample
(``backprop_sample``), and ``notebooks/05-minibatch-vectorised.ipynb`` derives the
batched formulas below from it.

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

import numpy as np

from .functions import COSTS, OUTPUTS, _check_labels, one_hot, sigmoid, sigmoid_prime

INITS = ("normal", "scaled", "uniform")


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

    Attributes:
    - weights: [W1 (n1, n0), W2 (n2, n1), …], stored (out, in).
    - biases:  [b1 (n1,), b2 (n2,), …].

    Introduced in ``notebooks/02-forward-pass-shapes.ipynb``.
    """

    def __init__(self, sizes, cost="quadratic", output="sigmoid", init="normal",
                 seed=None, dtype=np.float64):
        if len(sizes) < 2 or any(int(n) != n or n < 1 for n in sizes):
            raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes!r}")
        self._set_settings(cost, output, init, dtype)
        self.sizes = [int(n) for n in sizes]
        rng = np.random.default_rng(seed)
        # Draw in float64, then cast: the same seed gives the same network in
        # either dtype (up to rounding).
        self.weights, self.biases = [], []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            if init == "uniform":
                W = rng.uniform(-1.0, 1.0, (n_out, n_in))
                b = rng.uniform(-1.0, 1.0, n_out)
            else:
                W = rng.standard_normal((n_out, n_in))
                if init == "scaled":
                    W /= np.sqrt(n_in)
                b = rng.standard_normal(n_out)
            self.weights.append(W.astype(self.dtype))
            self.biases.append(b.astype(self.dtype))

    def _set_settings(self, cost, output, init, dtype):
        """Check the cost, output and init names and store them with the dtype."""
        for key, value, allowed in (("cost", cost, sorted(COSTS)),
                                    ("output", output, sorted(OUTPUTS)),
                                    ("init", init, list(INITS))):
            if value not in allowed:
                raise ValueError(f"unknown {key} {value!r}; expected one of {allowed}")
        if np.dtype(dtype).kind != "f":
            raise ValueError(f"dtype must be a floating-point type such as np.float64 or "
                             f"np.float32, got {np.dtype(dtype).name}: whole-number weights "
                             f"(and inputs cast to them) would lose every fraction")
        self.cost_name, self.output_name, self.init = cost, output, init
        self.cost_fn, self.output_fn = COSTS[cost], OUTPUTS[output]
        self.dtype = np.dtype(dtype)

    @classmethod
    def from_arrays(cls, weights, biases, *, cost="quadratic", output="sigmoid", init="normal",
                    dtype=None):
        """A network with the given parameters (no random draw), e.g. a loaded one.

        Inputs:
        - weights: [W1 (n1, n0), W2 (n2, n1), …], stored (out, in); sizes are read from them.
        - biases:  [b1 (n1,), b2 (n2,), …].
        - cost, output: as for Network; init: only recorded (how the weights were first drawn).
        - dtype: the parameters' dtype, a floating-point one; None keeps W1's (float64
          when W1 is a nested list or holds integers). Arrays that already have it are
          used as given, not copied.
        Returns:
        - a Network with sizes [n0, n1, …, nL].
        Raises:
        - ValueError for an unknown cost, output or init, a dtype that is not floating
          point, or shapes that do not chain.

        Used by ``load_network`` (``notebooks/07-going-further.ipynb``) and by
        ``check.from_network_backprop`` (``notebooks/09-bug-zoo.ipynb``).
        """
        weights, biases = list(weights), list(biases)
        if not weights or len(weights) != len(biases):
            raise ValueError(f"need one bias vector per weight matrix and at least one layer; "
                             f"got {len(weights)} weight matrices and {len(biases)} bias vectors")
        if dtype is None:
            dtype = np.asarray(weights[0]).dtype
            if dtype.kind != "f":
                dtype = np.float64
        net = cls.__new__(cls)
        net._set_settings(cost, output, init, dtype)
        weights = [np.asarray(W, dtype=net.dtype) for W in weights]
        biases = [np.asarray(b, dtype=net.dtype) for b in biases]
        if weights[0].ndim != 2 or 0 in weights[0].shape:
            raise ValueError(f"W1 has shape {weights[0].shape}; expected (n1, n0), stored (out, in)")
        sizes = [weights[0].shape[1]]
        for l, (W, b) in enumerate(zip(weights, biases), start=1):
            if W.ndim != 2 or W.shape[1] != sizes[-1] or W.shape[0] < 1:
                raise ValueError(f"W{l} has shape {W.shape}; expected (n{l}, {sizes[-1]}), "
                                 f"stored (out, in)")
            sizes.append(W.shape[0])
            if b.shape != (W.shape[0],):
                raise ValueError(f"b{l} has shape {b.shape}; expected ({W.shape[0]},), "
                                 f"one bias per row of W{l}")
        net.sizes, net.weights, net.biases = sizes, weights, biases
        return net

    def __repr__(self):
        return (f"Network({self.sizes}, cost={self.cost_name!r}, output={self.output_name!r}, "
                f"init={self.init!r}, dtype={self.dtype.name})")

    @property
    def num_layers(self):
        """Number of weight layers L (2 for [784, 30, 10])."""
        return len(self.weights)

    # --- forward -------------------------------------------------------------

    def forward(self, X):
        """The network's output.

        Inputs:
        - X: one sample (n_in,) or a batch of rows (B, n_in).
        Returns:
        - a: (n_out,) for one sample, (B, n_out) for a batch.

        Introduced in ``notebooks/02-forward-pass-shapes.ipynb``.
        """
        X, single = self._check_X(X)
        A = self._forward(X)[1][-1]
        return A[0] if single else A

    def forward_all(self, X):
        """Every layer's weighted input and activation, as backprop needs them.

        Inputs:
        - X: one sample (n_in,) or a batch (B, n_in).
        Returns:
        - zs: [z1, …, zL], each (n_l,) for one sample or (B, n_l) for a batch.
        - activations: [x, a1, …, aL]; activations[0] is the input itself.

        Introduced in ``notebooks/06-train-interactive.ipynb``.
        """
        X, single = self._check_X(X)
        zs, activations = self._forward(X)
        if single:
            zs, activations = [z[0] for z in zs], [a[0] for a in activations]
        return zs, activations

    def _forward(self, X):
        """Unchecked forward pass on a batch X (B, n_in): ([Z1 … ZL], [X, A1 … AL])."""
        zs, activations = [], [X]
        a = X
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ W.T + b                      # (B, n_in) @ (n_in, n_out) -> (B, n_out)
            last = l == self.num_layers - 1
            a = self.output_fn.fn(z) if last else sigmoid(z)
            zs.append(z)
            activations.append(a)
        return zs, activations

    # --- backward ------------------------------------------------------------

    def backprop(self, X, y):
        """Gradients of the mean cost over the batch (no L2 term), by backpropagation.

        Inputs:
        - X: one sample (n_in,) or a batch of rows (B, n_in).
        - y: its integer label, or integer labels (B,).
        Returns:
        - nabla_w: [∂C/∂W1 (n1, n0), …], the shapes of ``weights``, in their dtype.
        - nabla_b: [∂C/∂b1 (n1,), …], the shapes of ``biases``.

        Introduced in ``notebooks/04-gradient-check.ipynb``.
        """
        X, T, _ = self._check_Xy(X, y)
        nabla_w, nabla_b, _ = self._backprop(X, T)
        return nabla_w, nabla_b

    def deltas(self, X, y):
        """The error δ^l = ∂C/∂z^l of every layer (for one sample's own cost, not divided by B).

        Inputs:
        - X: one sample (n_in,) or a batch (B, n_in).
        - y: its integer label, or labels (B,).
        Returns:
        - deltas: [δ1, …, δL], each (n_l,) for one sample or (B, n_l) for a batch.

        Not called in the notebooks: the δ's of notebook 03, batched as in notebook 05.
        """
        X, T, single = self._check_Xy(X, y)
        deltas = self._backprop(X, T)[2]
        return [d[0] for d in deltas] if single else deltas

    def _backprop(self, X, T):
        """Unchecked backprop on X (B, n_in) with one-hot targets T (B, n_out).

        Returns (nabla_w, nabla_b, deltas), deltas[l] of shape (B, n_(l+1)).
        """
        B = X.shape[0]
        zs, activations = self._forward(X)
        L = self.num_layers
        nabla_w, nabla_b, deltas = [None] * L, [None] * L, [None] * L
        delta = self.cost_fn.delta(zs[-1], activations[-1], T, self.output_fn)   # (B, n_L)
        for l in range(L - 1, -1, -1):                  # l = L-1 … 0 is layer L … 1
            deltas[l] = delta
            # δ is divided by B before the product: B·n_out divisions instead of
            # n_out·n_in, fewer whenever B < n_in (the input layer: 784).
            nabla_w[l] = (delta / B).T @ activations[l]   # (n_out, B) @ (B, n_in) -> (n_out, n_in)
            nabla_b[l] = delta.sum(axis=0) / B          # (n_out,)
            if l > 0:
                # δ^(l) = (W^(l+1)ᵀ δ^(l+1)) ⊙ σ'(z^l), one sample per row.
                # σ'(z^l) = a^l (1 − a^l), from the activation already computed.
                a = activations[l]
                delta = (delta @ self.weights[l]) * (a * (1 - a))
        return nabla_w, nabla_b, deltas

    def backprop_sample(self, x, y):
        """Backprop for ONE sample with 1-D vectors: the per-sample reference.

        This is notebook 03's algorithm, kept as written there: a loop over
        layers, ``np.outer`` for the weight gradients, ``W.T @ delta`` to send
        the error back one layer. ``backprop`` must agree with its average over
        a batch (tests check it to 1e-12 in float64).

        Inputs:
        - x: one image (n_in,).
        - y: its integer label.
        Returns:
        - nabla_w: [(n1, n0), …]; nabla_b: [(n1,), …]: the gradient of this sample's cost.

        Introduced in ``notebooks/03-backprop-shapes.ipynb``.
        """
        X, T, _ = self._check_Xy(x, y, one_sample=True)
        x, t = X[0], T[0]                                       # (n_in,), (n_out,)
        zs, activations = [], [x]
        a = x
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = W @ a + b                                       # (n_out,)
            a = self.output_fn.fn(z) if l == self.num_layers - 1 else sigmoid(z)
            zs.append(z)
            activations.append(a)
        L = self.num_layers
        nabla_w, nabla_b = [None] * L, [None] * L
        delta = self.cost_fn.delta(zs[-1], activations[-1], t, self.output_fn)     # (n_L,)
        for l in range(L - 1, -1, -1):
            nabla_w[l] = np.outer(delta, activations[l])        # (n_out,) ⊗ (n_in,) -> (n_out, n_in)
            nabla_b[l] = delta
            if l > 0:
                delta = (self.weights[l].T @ delta) * sigmoid_prime(zs[l - 1])
        return nabla_w, nabla_b

    def backprop_loop(self, X, y):
        """The mean gradient over a batch, one sample at a time with ``backprop_sample``.

        The slow, obvious version: the per-sample reference that the
        vectorised ``backprop`` is checked and timed against.

        Inputs:
        - X: (B, n_in); y: integer labels (B,).
        Returns:
        - nabla_w, nabla_b: as ``backprop``.

        Introduced in ``notebooks/04-gradient-check.ipynb``.
        """
        X, _, _ = self._check_Xy(X, y, targets=False)
        y = np.asarray(y).reshape(-1)
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
        """The mean cost over the batch (no L2 term).

        Inputs:
        - X: (n_in,) or (B, n_in); y: a label or labels (B,).
        Returns:
        - a Python float.

        Introduced in ``notebooks/02-forward-pass-shapes.ipynb``.
        """
        X, T, _ = self._check_Xy(X, y)
        return self._mean_cost(X, T)

    def _mean_cost(self, X, T, chunk=None):
        """Unchecked mean cost over the rows of X (B, n_in) with one-hot targets T (B, n_out).

        chunk=None: one forward pass and one ``.mean()`` (``cost``, the gradient check).
        chunk=k: k rows at a time, the per-chunk sums added up and divided by B at
        the end, so memory stays bounded on the whole training set (``train.sgd``).
        The two round differently in the last bits; each caller keeps its own.
        """
        if chunk is None:
            zs, activations = self._forward(X)
            return float(self.cost_fn.fn(zs[-1], activations[-1], T, self.output_fn).mean())
        total = 0.0
        for k in range(0, X.shape[0], chunk):
            zs, activations = self._forward(X[k:k + chunk])
            total += float(self.cost_fn.fn(zs[-1], activations[-1], T[k:k + chunk],
                                           self.output_fn).sum())
        return total / X.shape[0]

    def predict(self, X):
        """The predicted digit: the index of the largest output.

        Inputs:
        - X: (n_in,) or (B, n_in).
        Returns:
        - an int for one sample, or integer labels (B,).

        Not called in the notebooks; ``accuracy`` (notebook 02) is built on it.
        """
        a = self.forward(X)
        return int(a.argmax()) if a.ndim == 1 else a.argmax(axis=1)

    def accuracy(self, X, y):
        """Fraction of samples classified correctly, a float in [0, 1].

        Inputs:
        - X: (B, n_in); y: integer labels (B,).

        Introduced in ``notebooks/02-forward-pass-shapes.ipynb``.
        """
        X, _, _ = self._check_Xy(X, y, targets=False)
        return float(np.mean(self.predict(X) == np.asarray(y).reshape(-1)))

    # --- copying ---------------------------------------------------------------

    def copy(self):
        """An independent copy (same sizes, cost, output, dtype and parameters).

        Of the same class: a subclass of Network stays that subclass. Its other
        attributes (a subclass's own) are shared with the original, as ``copy.copy``
        shares them.

        Introduced in ``notebooks/04-gradient-check.ipynb``.
        """
        new = copy.copy(self)
        new.sizes = list(self.sizes)
        new.weights = [W.copy() for W in self.weights]
        new.biases = [b.copy() for b in self.biases]
        return new

    def astype(self, dtype):
        """A copy whose parameters have the given dtype (e.g. np.float32 for training).

        Introduced in ``notebooks/04-gradient-check.ipynb``.
        """
        new = self.copy()
        new.dtype = np.dtype(dtype)
        new.weights = [W.astype(new.dtype) for W in self.weights]
        new.biases = [b.astype(new.dtype) for b in self.biases]
        return new

    # --- input checks: a wrong shape says what was expected -----------------------

    def _check_X(self, X, one_sample=False, batch_only=False):
        """Return (X as a (B, n_in) array of the network's dtype, whether it was one sample).

        one_sample: accept only one sample x (n_in,); batch_only: accept only a
        data set of rows X (N, n_in), as ``train.sgd`` does. A wrong shape is a
        ValueError naming the expected one, with a hint for the usual mix-ups.
        """
        X = np.asarray(X)
        n_in = self.sizes[0]
        if X.ndim == 1 and X.shape[0] == n_in and not batch_only:
            return X.astype(self.dtype, copy=False)[None, :], True
        if one_sample:
            raise ValueError(f"x has shape {X.shape}; expected one sample of shape ({n_in},)")
        if X.ndim == 2 and X.shape[1] == n_in:
            return X.astype(self.dtype, copy=False), False
        hint = ""
        if X.shape == (n_in, 1) and not batch_only:
            hint = f" A column vector ({n_in}, 1) is the book's layout; pass x.ravel() here."
        elif X.ndim == 2 and X.shape[0] == n_in:
            hint = (f" It looks transposed: samples go in rows here (Z = X @ W.T + b), "
                    f"so pass X.T, of shape {X.shape[::-1]}.")
        elif X.ndim == 3 and X.shape[1:] in ((28, 28),) and n_in == 784:
            hint = " Flatten the images first: X.reshape(len(X), 784)."
        if batch_only:
            raise ValueError(f"X has shape {X.shape}; expected (N, {n_in}), N samples in rows.{hint}")
        raise ValueError(f"X has shape {X.shape}; expected ({n_in},) for one sample "
                         f"or (B, {n_in}) for a batch of B samples in rows.{hint}")

    def _check_Xy(self, X, y, one_sample=False, batch_only=False, targets=True):
        """Return (X (B, n_in), one-hot T (B, n_out), whether it was one sample).

        With targets=False the labels are checked all the same, but T is None (not built).
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
        y = y.reshape(-1)
        if not targets:
            _check_labels(y, n_out)
            return X, None, single
        return X, one_hot(y, n_out, self.dtype), single  # one_hot checks the label range
