"""Activations and costs, each with its derivative right beside it.

Every function works elementwise or along the **last** axis, so the same code
serves one sample ``(n,)`` and a batch of rows ``(B, n)``.
"""

import numpy as np


# --- activations -----------------------------------------------------------

def sigmoid(z):
    """The logistic function σ(z) = 1 / (1 + e^(−z)), elementwise.

    Written as ½(1 + tanh(z/2)), the same function, which never overflows (the
    textbook e^(−z) is inf for z = −1000). It is right to about 1e-16 absolute in
    float64 (6e-8 in float32): below z ≈ −38 it rounds to exactly 0, harmless since
    the costs compute ln σ(z) from z (np.logaddexp), never as log(sigmoid(z)).

    z: array of any shape -> a: the same shape and float dtype, values in [0, 1].
    """
    z = np.asarray(z)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def sigmoid_prime(z):
    """The derivative σ'(z) = σ(z)(1 − σ(z)), elementwise.

    It takes **z**, not the activation a = σ(z): passing a is a classic bug (notebook 04).
    z: array of any shape -> the same shape, values in [0, 0.25].
    """
    s = sigmoid(z)
    return s * (1.0 - s)


def softmax(z):
    """Softmax along the last axis: a_j = e^(z_j) / Σ_k e^(z_k).

    The row maximum is subtracted first: the result is unchanged and e^(·) cannot overflow.
    z: (n,) or (B, n) -> a: the same shape; each row is positive and sums to 1.
    """
    z = np.asarray(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_sigmoid(z):
    """ln σ(z) = −ln(1 + e^(−z)), computed without overflow or log(0)."""
    return -np.logaddexp(0.0, -z)


class Sigmoid:
    """Sigmoid output layer: a = σ(z), each output on its own in (0, 1)."""

    name = "sigmoid"
    fn = staticmethod(sigmoid)          # z (..., n) -> a (..., n)

    @staticmethod
    def backward(z, a, grad_a):
        """δ = ∂C/∂z from grad_a = ∂C/∂a: each a_j depends only on z_j (a diagonal
        Jacobian), so δ = ∂C/∂a ⊙ σ'(z). z, a, grad_a: (..., n) -> delta: (..., n).
        """
        return grad_a * a * (1.0 - a)


class Softmax:
    """Softmax output layer: a = softmax(z), outputs positive and summing to 1."""

    name = "softmax"
    fn = staticmethod(softmax)          # z (..., n) -> a (..., n)

    @staticmethod
    def backward(z, a, grad_a):
        """δ = ∂C/∂z from grad_a = ∂C/∂a: every a_j depends on every z_k
        (∂a_j/∂z_k = a_j(1[j=k] − a_k)), so δ_k = a_k (∂C/∂a_k − Σ_j ∂C/∂a_j a_j).
        z, a, grad_a: (..., n) -> delta: (..., n).
        """
        return a * (grad_a - (grad_a * a).sum(axis=-1, keepdims=True))


OUTPUTS = {"sigmoid": Sigmoid, "softmax": Softmax}


# --- costs --------------------------------------------------------------------
# Each cost gives the cost of each sample (`fn`) and the error of the output
# layer, δ^L = ∂C/∂z^L (`delta`). Batch costs are the mean of `fn` over rows.

class QuadraticCost:
    """C = ½‖a − t‖² per sample, t the one-hot target."""

    name = "quadratic"

    @staticmethod
    def fn(z, a, t, output=None):
        """Per-sample cost: z, a, t (n,) or (B, n) (weighted input, output, one-hot
        target) -> C, a float or (B,). output is unused, taken so every cost is called alike.
        """
        return 0.5 * ((a - t) ** 2).sum(axis=-1)

    @staticmethod
    def delta(z, a, t, output):
        """δ^L = ∂C/∂z^L: ∂C/∂a = (a − t), passed back through the output layer (Sigmoid
        or Softmax). With a sigmoid output this is the learner's (a − t) ⊙ σ'(z): small when
        the output saturates, which is why quadratic cost learns slowly from bad starts.
        z, a, t: (n,) or (B, n) -> delta: the same shape.
        """
        return output.backward(z, a, a - t)


class CrossEntropyCost:
    """Cross-entropy, for either output layer.

    - sigmoid outputs: C = −Σ_j [t_j ln a_j + (1 − t_j) ln(1 − a_j)]  (the book's chapter 3)
    - softmax outputs: C = −ln a_y, y the true class.

    The logs are computed from z (ln σ(z) = −ln(1 + e^(−z))), so a saturated
    output gives a large finite cost, never log(0).
    """

    name = "cross_entropy"

    @staticmethod
    def fn(z, a, t, output=None):
        """Per-sample cost: z, a, t (n,) or (B, n) -> C, a float or (B,).
        output (Sigmoid or Softmax; None means Sigmoid) chooses the formula.
        """
        if output is Softmax:
            # −ln a_y = ln Σ_k e^(z_k) − z_y, with the row max m taken out of both
            # terms before subtracting: no cancellation of two large numbers, and
            # e^(z_k − m) <= 1 cannot overflow.
            shifted = z - z.max(axis=-1, keepdims=True)
            return np.log(np.exp(shifted).sum(axis=-1)) - (t * shifted).sum(axis=-1)
        return -(t * _log_sigmoid(z) + (1 - t) * _log_sigmoid(-z)).sum(axis=-1)

    @staticmethod
    def delta(z, a, t, output):
        """δ^L = a − t, for both output layers, for two different reasons.

        - sigmoid: ∂C/∂a_j = (a_j − t_j) / (a_j (1 − a_j)), and σ'(z_j) = a_j (1 − a_j):
          the factor cancels, δ_j = a_j − t_j.
        - softmax: ∂C/∂a_j = −t_j / a_j, and the softmax Jacobian (``Softmax.backward``)
          turns it into δ_k = a_k (−t_k / a_k + Σ_j t_j) = a_k Σ_j t_j − t_k = a_k − t_k,
          because the one-hot target sums to 1. No a(1 − a) factor is involved.

        Either way no σ'(z) is left to shrink the gradient when an output saturates.
        z, a, t: (n,) or (B, n) -> delta: the same shape.
        """
        return a - t


COSTS = {"quadratic": QuadraticCost, "cross_entropy": CrossEntropyCost}


def check_labels(y, n):
    """y, an integer label or labels of any shape (e.g. (B,)), as an array of that shape.

    Raises ValueError, naming what was received, unless every label is an integer in 0 … n − 1.
    """
    y = np.asarray(y)
    if y.size and y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {y.dtype.name} (first label "
                         f"{y.reshape(-1)[0]!r}); convert them with y.astype(int)")
    if y.size and (y.min() < 0 or y.max() >= n):
        raise ValueError(f"labels must lie in 0 … {n - 1}; got {y.min()} … {y.max()}")
    return y


def one_hot(y, n=10, dtype=np.float64):
    """One-hot targets: label 3 becomes t = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0].

    y: an integer label -> t (n,), or labels (B,) -> t (B, n) (any shape S -> S + (n,));
    n classes; dtype: t's dtype. Raises ValueError for a label outside 0 … n − 1 (numpy would
    take −1 as the last class) or labels that are not integers (3.0 is refused).
    """
    y = check_labels(y, n)
    t = np.zeros(y.shape + (n,), dtype=dtype)
    t.reshape(-1, n)[np.arange(y.size), y.reshape(-1)] = 1.0      # one 1 per label, in its row
    return t
