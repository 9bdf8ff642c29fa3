"""A zoo of classic backprop bugs, each planted in a copy of the correct code.

Introduced in ``notebooks/04-gradient-check.ipynb`` (the gradient check must
flag every one of them); ``notebooks/09-bug-zoo.ipynb`` shows what each does,
and the learner-feedback checker (``mnistnet.check``) reuses them.

Every function has the signature of ``gradcheck.check_gradients``' backprop
argument and of ``train.sgd``'s::

    backprop(net, X, y) -> (nabla_w, nabla_b)
    X (B, n_in), y integer labels (B,);  nabla_w [(n1, n0), …], nabla_b [(n1,), …]

and differs from ``correct_backprop`` in one or two lines, marked ``# BUG``.
``BUGS`` maps each name to (function, one-line description).
"""

from .functions import sigmoid_prime


def correct_backprop(net, X, y):
    """The correct batch backprop, written out for comparison with the bugs below.

    δ^L = cost.delta; δ^l = (Δ^(l+1) W^(l+1)) ⊙ σ'(Z^l); ∂C/∂W^l = Δ^lᵀ A^(l−1) / B;
    ∂C/∂b^l = mean of Δ^l over rows. The same gradients as ``net.backprop(X, y)``, up to
    rounding (≈ 1e-17: there the 1/B is applied to Δ before the product).

    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].

    Not called in the notebooks: the reference each bug below is a copy of.
    """
    X, T, _ = net._check_Xy(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)        # (B, n_L)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B                                # (n_out, n_in)
        nabla_b[l] = delta.sum(axis=0) / B                                       # (n_out,)
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])          # (B, n_l)
    return nabla_w, nabla_b


def missing_transpose(net, X, y):
    """Sends the error back with Wᵀ in row form: ``delta @ W.T`` instead of ``delta @ W``.

    The column formula δ^l = W^(l+1)ᵀ δ^(l+1) copied literally into row form.
    With weights stored (out, in) the row form is Δ @ W. Symptom: for
    non-square W it crashes ("matmul: Input operand 1 has a mismatch", the
    lucky case); when W^(l+1) is square (e.g. [20, 10, 10]) it runs and the
    hidden-layer gradients (W1, b1) are wrong while W2, b2 are right.

    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, T, _ = net._check_Xy(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            delta = (delta @ net.weights[l].T) * sigmoid_prime(zs[l - 1])        # BUG: .T
    return nabla_w, nabla_b


def sigma_prime_of_a(net, X, y):
    """Uses σ'(a) instead of σ'(z) in the hidden deltas.

    σ'(z) = σ(z)(1 − σ(z)) is the same number as a(1 − a), since a = σ(z): both
    ``sigmoid_prime(z)`` and ``a * (1 - a)`` are right. The mistake is to call
    ``sigmoid_prime`` on the activation, which computes σ(a)(1 − σ(a)), the
    sigmoid applied twice. Symptom: hidden-layer gradients off by a factor that
    varies from unit to unit (rel. error > 1e-2, 'wrong'; how large depends on
    the network); training still learns, only worse, so only a check catches it.

    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, T, _ = net._check_Xy(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(activations[l])     # BUG: a, not z
    return nabla_w, nabla_b


def missing_sigma_prime(net, X, y):
    """Forgets the ⊙ σ'(z) factor when sending the error back to a hidden layer.

    Symptom: hidden-layer gradients too large, each unit's by its own factor
    1/σ'(z) ≥ 4 (rel. error > 1e-2, 'wrong'; how large depends on the network);
    the output layer's gradients are right.

    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, T, _ = net._check_Xy(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            delta = delta @ net.weights[l]                                       # BUG: no σ'(z)
    return nabla_w, nabla_b


def wrong_sign(net, X, y):
    """Output error with the sign flipped: t − a instead of a − t.

    Every gradient is exactly the negative of the true one (rel. error 1,
    'wrong'), so gradient descent climbs the cost: training makes it worse.

    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, T, _ = net._check_Xy(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = -net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)       # BUG: minus
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])
    return nabla_w, nabla_b


def bias_wrong_axis(net, X, y):
    """Sums the bias gradient over the wrong axis: ``delta.sum(axis=1)`` (per sample, over units).

    Symptom: ∂C/∂b has shape (B,) instead of (n_out,), which the check reports
    as 'wrong shape' (and b -= η ∂C/∂b then fails to broadcast or, worse,
    broadcasts); if B happens to equal n_out the shape fits and the values are
    simply wrong.

    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(B,), …].
    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, T, _ = net._check_Xy(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=1) / B                                       # BUG: axis=1
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])
    return nabla_w, nabla_b


def missing_mean(net, X, y):
    """Forgets the 1/B: returns the gradient of the summed cost, not of the mean.

    Symptom: every gradient B times too large (rel. error (B − 1)/(B + 1));
    invisible at B = 1. In training it acts as η·B, so results change with
    the batch size.

    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, T, _ = net._check_Xy(X, y)
    L = net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l]                                    # BUG: no / B
        nabla_b[l] = delta.sum(axis=0)                                           # BUG: no / B
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])
    return nabla_w, nabla_b


def updated_weights(net, X, y, learning_rate=3.0):
    """Updates W^(l+1) with η first, then uses the NEW W^(l+1) to compute δ^l.

    The mistake of fusing the update into the backward loop: ``W -= η ∇W``
    runs before ``delta @ W`` sends the error back, so δ^l is computed with
    weights that have already moved. Modelled here without touching ``net``
    (the updated weights are a local copy). Symptom: hidden-layer gradients
    wrong by an amount that grows with η (rel. error → 0 as η → 0).

    Inputs: X (B, n_in); y (B,); learning_rate: η used for the premature update.
    Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].

    Introduced in ``notebooks/04-gradient-check.ipynb``.
    """
    X, T, _ = net._check_Xy(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net._forward(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            W_new = net.weights[l] - learning_rate * nabla_w[l]                 # BUG: update first
            delta = (delta @ W_new) * sigmoid_prime(zs[l - 1])                   # … then use it
    return nabla_w, nabla_b


BUGS = {
    "missing_transpose": (missing_transpose, "delta @ W.T instead of delta @ W when sending the error back"),
    "sigma_prime_of_a": (sigma_prime_of_a, "σ'(a) instead of σ'(z) in the hidden deltas"),
    "missing_sigma_prime": (missing_sigma_prime, "the ⊙ σ'(z) factor left out of the hidden deltas"),
    "wrong_sign": (wrong_sign, "output error t − a instead of a − t"),
    "bias_wrong_axis": (bias_wrong_axis, "bias gradient summed over axis=1 (units) instead of axis=0 (samples)"),
    "missing_mean": (missing_mean, "gradient of the summed cost: the 1/B left out"),
    "updated_weights": (updated_weights, "δ^l computed with W^(l+1) already updated by η ∇W"),
}
