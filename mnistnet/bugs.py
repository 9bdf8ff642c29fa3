"""Classic backprop bugs, each planted in a copy of the correct code, and the catalogue of mistakes.

Every planted bug is ``backprop(net, X, y) -> (nabla_w, nabla_b)``, as ``check_gradients`` and
``train.sgd`` take it, and differs from ``correct_backprop`` in the lines marked ``# BUG``. Each
is a complete copy on purpose: read one and you see the whole function with its bug.
``MISTAKES`` {name: Mistake} holds the kind and advice ``mnistnet.check`` reports for each
mistake; ``BUGS`` {name: (function, summary)} the planted ones.
"""

from dataclasses import dataclass

from .functions import sigmoid_prime


def correct_backprop(net, X, y):
    """The correct batch backprop (as ``net.backprop``), to compare the bugs below with.

    δ^L = cost.delta; δ^l = (Δ^(l+1) W^(l+1)) ⊙ σ'(Z^l); ∂C/∂W^l = Δ^lᵀ A^(l−1) / B;
    ∂C/∂b^l = mean of Δ^l over rows.
    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    """
    X, _, T = net.check_data(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net.forward_batch(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)        # (B, n_L)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B                                # (n_out, n_in)
        nabla_b[l] = delta.sum(axis=0) / B                                       # (n_out,)
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])          # (B, n_l)
    return nabla_w, nabla_b


def missing_transpose(net, X, y):
    """``delta @ W.T`` for ``delta @ W``: the column formula W^(l+1)ᵀ δ^(l+1) copied into rows.

    Symptom: for a non-square W it crashes ("matmul: Input operand 1 has a mismatch", the lucky
    case); for a square W^(l+1) (e.g. [20, 10, 10]) it runs, W1, b1 wrong, W2, b2 right.
    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    """
    X, _, T = net.check_data(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net.forward_batch(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            delta = (delta @ net.weights[l].T) * sigmoid_prime(zs[l - 1])        # BUG: .T
    return nabla_w, nabla_b


def sigma_prime_of_a(net, X, y):
    """Hidden deltas use ``sigmoid_prime(a)``, σ applied twice, for σ'(z) (= a(1 − a)).

    Symptom: hidden-layer gradients off by a factor that varies from unit to unit (rel. error
    > 1e-2, 'wrong'); training still learns, only worse.
    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    """
    X, _, T = net.check_data(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net.forward_batch(X)
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

    Symptom: hidden-layer gradients too large, each unit's by its own factor 1/σ'(z) ≥ 4
    ('wrong'); the output layer's gradients are right.
    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    """
    X, _, T = net.check_data(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net.forward_batch(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            delta = delta @ net.weights[l]                                       # BUG: no σ'(z)
    return nabla_w, nabla_b


def wrong_sign(net, X, y):
    """Output error t − a instead of a − t: every gradient is exactly the negative of the true one.

    Symptom: rel. error 1, 'wrong'; gradient descent climbs the cost.
    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    """
    X, _, T = net.check_data(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net.forward_batch(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = -net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)       # BUG: minus
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])
    return nabla_w, nabla_b


def bias_wrong_axis(net, X, y):
    """Sums the bias gradient over the units, ``delta.sum(axis=1)``, not over the samples.

    Symptom: ∂C/∂b has shape (B,), not (n_out,), and b -= η ∂C/∂b fails to broadcast; with B = 10
    on [784, 30, 10], db2 (10,) is silently wrong while db1 (10,) ≠ (30,) still fails.
    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(B,), …].
    """
    X, _, T = net.check_data(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net.forward_batch(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=1) / B                                       # BUG: axis=1
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])
    return nabla_w, nabla_b


def missing_mean(net, X, y):
    """Forgets the 1/B: the gradient of the summed cost, not of the mean.

    Symptom: every gradient B times too large (rel. error (B − 1)/(B + 1)), invisible at B = 1;
    in training it acts as η·B.
    Inputs: X (B, n_in); y (B,). Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    """
    X, _, T = net.check_data(X, y)
    L = net.num_layers
    zs, activations = net.forward_batch(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l]                                    # BUG: no / B
        nabla_b[l] = delta.sum(axis=0)                                           # BUG: no / B
        if l > 0:
            delta = (delta @ net.weights[l]) * sigmoid_prime(zs[l - 1])
    return nabla_w, nabla_b


def updated_weights(net, X, y, learning_rate=3.0):
    """The update W^(l+1) -= η ∇W runs before ``delta @ W`` computes δ^l with the moved weights.

    (A local copy here: ``net`` is not touched.) Symptom: hidden-layer gradients wrong by an
    amount that grows with η.
    Inputs: X (B, n_in); y (B,); learning_rate: η of the premature update.
    Returns: nabla_w [(n1, n0), …], nabla_b [(n1,), …].
    """
    X, _, T = net.check_data(X, y)
    B, L = X.shape[0], net.num_layers
    zs, activations = net.forward_batch(X)
    nabla_w, nabla_b = [None] * L, [None] * L
    delta = net.cost_fn.delta(zs[-1], activations[-1], T, net.output_fn)
    for l in range(L - 1, -1, -1):
        nabla_w[l] = delta.T @ activations[l] / B
        nabla_b[l] = delta.sum(axis=0) / B
        if l > 0:
            W_new = net.weights[l] - learning_rate * nabla_w[l]                 # BUG: update first
            delta = (delta @ W_new) * sigmoid_prime(zs[l - 1])                   # … then use it
    return nabla_w, nabla_b


@dataclass(frozen=True)
class Mistake:
    """One classic mistake, as ``mnistnet.check`` reports it (the advice of a "factor" mistake
    is a clause that check may join with others)."""
    name: str                  # the planted bug's name, if there is one
    kind: str                  # the ``Finding.kind`` check reports
    summary: str               # one line, batch form
    advice: str                # check's sentence ({B}: the batch size, {eta}: the η found)
    backprop: object = None    # the planted bug, or None
    factor: object = None      # the constant it scales every array by ("B": the batch size)
    per_sample: str = ""       # the mistake in per-sample code with 1-D vectors (notebook 03)


_CATALOGUE = [
    # The planted bugs above, in the order the notebooks show them.
    Mistake("missing_transpose", "exception", "delta @ W.T instead of delta @ W when sending the "
            "error back", "with samples in rows the error goes back as Δ @ W (the row form of "
            "Wᵀ δ): drop the .T.", missing_transpose,
            per_sample="W2 @ delta2 instead of W2.T @ delta2 (the transpose left out)"),
    Mistake("sigma_prime_of_a", "sigma_prime_of_a", "σ'(a) instead of σ'(z) in the hidden deltas",
            "δ1 uses σ'(a1), sigmoid_prime of the activation, where σ'(z1) is meant: call "
            "sigmoid_prime(z1), or write a1 * (1 - a1).", sigma_prime_of_a,
            per_sample="sigmoid_prime(a1) instead of sigmoid_prime(z1) in delta1"),
    Mistake("missing_sigma_prime", "missing_sigma_prime", "the ⊙ σ'(z) factor left out of the "
            "hidden deltas", "δ1 is missing the factor σ'(z1): δ1 = (W2ᵀ δ2) ⊙ σ'(z1); W2ᵀ δ2 "
            "only carries the error back to a1, σ'(z1) carries it on to z1.", missing_sigma_prime,
            per_sample="delta1 = W2.T @ delta2, without the ⊙ σ'(z1)"),
    Mistake("wrong_sign", "sign", "output error t − a instead of a − t", "the sign is flipped: "
            "δ2 = (a2 - t) ⊙ σ'(z2), not (t - a2) (and the update subtracts: W -= η·dW)",
            wrong_sign, factor=-1.0,
            per_sample="delta2 from (t − a2) instead of (a2 − t)"),
    Mistake("bias_wrong_axis", "bias_axis", "bias gradient summed over axis=1 (units) instead of "
            "axis=0 (samples)", "shape ({B},), one number per sample: you summed over axis=1 (the "
            "units); average over axis=0 (the samples) instead, which gives one value per unit.",
            bias_wrong_axis,
            per_sample="none: a batch-only mistake (the bias gradient summed over the units, "
                       "not over the samples)"),
    Mistake("missing_mean", "factor", "gradient of the summed cost: the 1/B left out",
            "{B}× too large = B: you summed over the batch instead of averaging; divide by B = "
            "len(X)", missing_mean, factor="B",
            per_sample="the per-sample gradients summed over the batch, not averaged"),
    Mistake("updated_weights", "updated_w2", "δ^l computed with W^(l+1) already updated by η ∇W",
            "δ1 was sent back through a W2 that was already updated (W2 - η·dW2 with η ≈ {eta}): "
            "compute every gradient with the old weights first, then update them all.",
            updated_weights,
            per_sample="W2 -= η·outer(delta2, a1) before delta1 = W2.T @ delta2"),
    # Mistakes the checker recomputes, without a planted copy.
    Mistake("sigma_prime_of_a_output", "sigma_prime_of_a", "σ'(a) instead of σ'(z) in the output "
            "delta", "δ2 uses σ'(a2), sigmoid_prime of the activation, where σ'(z2) is meant: "
            "call sigmoid_prime(z2), or write a2 * (1 - a2) (which is σ'(z2))."),
    Mistake("missing_sigma_prime_output", "missing_sigma_prime", "the ⊙ σ'(z) factor left out of "
            "the output delta", "δ2 is missing the factor σ'(z2): for the quadratic cost δ2 = "
            "(a2 - t) ⊙ σ'(z2) ((a2 - t) alone is the δ2 of the cross-entropy cost, notebook 07)."),
    Mistake("label_as_target", "label_not_onehot", "the integer label used as the target",
            "δ2 was computed from the integer label y itself (a2 - y): subtract the one-hot "
            "target t instead (t = np.zeros(10); t[y] = 1)."),
    Mistake("z_for_a", "z_for_a", "dW2 from z1 instead of a1", "dW2 uses z1 where the layer's "
            "input a1 = σ(z1) is meant: dW2 = outer(δ2, a1)."),
    Mistake("missing_half", "factor", "the gradient of ‖a − t‖², without the ½", "2× too large: "
            "that is the gradient of ‖a - t‖² without the ½; the cost here is C = ½‖a - t‖², whose "
            "derivative is (a - t), so drop the factor 2", factor=2.0),
    Mistake("stray_half", "factor", "a stray ½", "half the right value: a stray ½ (the ½ of "
            "C = ½‖a - t‖² is already used up: dC/da = a - t)", factor=0.5),
    Mistake("mean_taken_twice", "factor", "divided by B twice", "{B}× too small = 1/B: divided by "
            "B twice (or a per-sample delta was divided by B before the mean)", factor="1/B"),
    Mistake("deltas_summed", "factor", "per-sample deltas multiplied by B", "{B}× too large = B: "
            "the deltas are per sample, one row each; nothing is summed over the batch here",
            factor="B"),
    Mistake("deltas_averaged", "factor", "per-sample deltas divided by B", "{B}× too small = 1/B: "
            "the deltas are per sample (one row each, not divided by B); the 1/B of the mean "
            "belongs to the gradients", factor="1/B"),
    Mistake("output_not_squashed", "forward_variant", "no sigmoid on the output layer",
            "the output is z2, not a2: apply the sigmoid to the last layer too, a2 = σ(z2)."),
    Mistake("hidden_not_squashed", "forward_variant", "no sigmoid on the hidden layer",
            "the hidden layer has no sigmoid: a1 = σ(z1) must go into layer 2, not z1."),
    Mistake("no_sigmoid", "forward_variant", "no sigmoid anywhere",
            "no sigmoid anywhere: a = σ(z) on both layers."),
    Mistake("missing_biases", "forward_variant", "the biases left out of z",
            "the biases are missing: z = W @ a_prev + b."),
]

MISTAKES = {m.name: m for m in _CATALOGUE}
"""Every classic mistake by name: {name: Mistake}."""

BUGS = {m.name: (m.backprop, m.summary) for m in _CATALOGUE if m.backprop is not None}
"""The planted bugs: {name: (function, one-line summary)}."""
