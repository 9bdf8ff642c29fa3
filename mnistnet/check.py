"""Check a backprop you wrote yourself, and say what is wrong with it in one sentence.

Introduced in ``notebooks/08-check-your-backprop.ipynb`` (exercises) and used
in ``notebooks/09-bug-zoo.ipynb``.

Three checkers, one per step of the exercise, all called the same way::

    check_forward(fn)    fn(weights, biases, x)    -> a2 (10,)   or (zs, activations)
    check_deltas(fn)     fn(weights, biases, x, y) -> [δ1 (30,), δ2 (10,)]
    check_backprop(fn)   fn(weights, biases, x, y) -> (nabla_w, nabla_b)
                         nabla_w = [∂C/∂W1 (30, 784), ∂C/∂W2 (10, 30)]
                         nabla_b = [∂C/∂b1 (30,),     ∂C/∂b2 (10,)]

with ``weights = [W1 (30, 784), W2 (10, 30)]`` (stored (out, in)),
``biases = [b1 (30,), b2 (10,)]``, ``x`` one image (784,) and ``y`` its
integer label. The cost is the quadratic ``C = ½‖a − t‖²`` with ``t`` the
one-hot target, hidden and output layers are sigmoid.

Each function may instead work on a **batch**: ``X (B, 784)`` with samples in
rows and labels ``y (B,)``; then the forward pass returns ``A2 (B, 10)``, the
deltas are ``[Δ1 (B, 30), Δ2 (B, 10)]`` (one row per sample, *not* divided by
B) and the gradients are those of the **mean** cost (divided by B). By default
(``batched=None``) the checker calls ``fn`` both ways and keeps the form in
which it works; if it works in neither, it picks the batch form when the
argument after ``biases`` is spelled with a capital (``X``) or contains
"batch", the one-sample form otherwise. Pass ``batched=True`` / ``False`` to
decide yourself. The report says which form it assumed.

How a function is checked: it is called on small random float64 networks,
``[784, 30, 10]`` first and then ``[784, 7, 10]`` (a different hidden size,
so that sizes written into the code, or shapes that fit only by coincidence,
show up), with a random input and label (seeded: the same every time). Every
array it returns is compared with the package's reference (``Network``) and,
for ``check_backprop``, with numerical gradients (``gradcheck``). The inputs
are copies; the checker also notices if ``fn`` changes them.

When something is wrong the report does not just say "wrong": it recomputes
the classic mistakes (σ'(a) for σ'(z), a missing σ', a flipped sign, a missing
½ or 1/B, transposes, a W2 already updated, …) and names the one that matches
your numbers, and it turns an exception inside ``fn`` (such as the shape error
of ``W2 @ delta2``) into an explanation with the shapes and the fix
(``mnistnet.explain``).

The report: ``report.ok`` is True when everything matches; ``print(report)``
shows a table (one row per array: shape, relative errors) and one sentence per
problem; ``report.findings`` lists them (``.kind``, ``.arrays``, ``.message``).
Its rows name the gradients as the notebooks write them, dW1 = nabla_w[0] =
∂C/∂W1, db1 = nabla_b[0], …; ``gradcheck``'s table names the same arrays after
the parameters, W1, b1, ….
"""

import copy
import inspect
import itertools
import re
from dataclasses import dataclass, field

import numpy as np

from .explain import explain_exception, safe_message
from .functions import one_hot, sigmoid, sigmoid_prime
from .gradcheck import from_layers, numerical_gradient, rel_error
from .network import Network
from .tables import format_table

__all__ = ["check_forward", "check_deltas", "check_backprop", "CheckReport", "Finding",
           "explain_exception", "from_network_backprop", "from_layers"]

#: The networks every function is checked on, in this order.
SIZES = ([784, 30, 10], [784, 7, 10])
#: Samples in the batch used for batched functions: a size unlike any layer size,
#: so that a factor B or an axis of length B can be told apart from the others.
BATCH = 5
#: Relative tolerance for "the same array" (float64, same formula, other order of operations).
RTOL = 1e-7
#: Entries of each array checked numerically (all of them for the small arrays).
NUM_CHECKS = 60

_ARRAY_NAMES = ("dW1", "db1", "dW2", "db2")


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------

@dataclass
class Finding:
    """One problem: what kind, which arrays it concerns, and one sentence on how to fix it.

    - kind: a short key, e.g. "shape", "transpose", "factor", "sign", "sigma_prime_of_a",
      "missing_sigma_prime", "exception", "mutated_input", "nan", "type", "count".
    - arrays: the names of the arrays concerned, e.g. ["dW1"] ([] for the function as a whole).
    - message: the sentence shown to the learner.
    """
    kind: str
    arrays: list = field(default_factory=list)
    message: str = ""

    def __str__(self):
        where = ", ".join(self.arrays)
        return f"{where}: {self.message}" if where else self.message


class CheckReport:
    """What a checker found. ``ok`` is True when the function is right.

    Attributes:
    - ok: True if every array matches the reference on every network checked.
    - what: "forward", "deltas" or "backprop".
    - form: "one sample" or "batch" (how fn was called).
    - findings: list of Finding, in the order found (empty if ok).
    - rows: one tuple per array: (name, shape returned, shape expected, rel. error
      vs the reference, rel. error vs numerical gradients or "").
    - sizes: the network sizes checked.
    - kinds: the set of finding kinds (handy in tests).

    ``print(report)`` (or ``str(report)``) gives the table and one line per
    finding; in a notebook, a report left last in a cell renders as Markdown.
    """

    def __init__(self, what, form, sizes):
        self.what, self.form, self.sizes = what, form, sizes
        self.findings, self.rows = [], []
        self.note = ""

    @property
    def ok(self):
        return not self.findings

    @property
    def kinds(self):
        return {f.kind for f in self.findings}

    def add(self, kind, arrays, message):
        """Add a finding, or merge its arrays into an existing one with the same sentence."""
        for f in self.findings:
            if f.kind == kind and f.message == message:
                f.arrays += [a for a in arrays if a not in f.arrays]
                return
        self.findings.append(Finding(kind, list(arrays), message))

    def _header(self):
        y = "" if self.what == "forward" else (", y an integer" if self.form == "one sample"
                                               else ", y (B,)")
        form = (f"one sample: x (784,){y}" if self.form == "one sample"
                else f"a batch: X (B, 784){y}, here B = {BATCH}")
        nets = " and ".join(str(s) for s in self.sizes)
        note = f"\nChecked as {'a batch' if self.form == 'batch' else 'a one-sample'} function: " \
            f"{self.note}" if self.note else ""
        return f"check_{self.what}: fn called with {form}, on random networks {nets}.{note}"

    def _table(self, markdown=False):
        head = ("array", "returned", "expected", "vs reference", "vs numerical")
        n = 5 if self.what == "backprop" else 4
        rows = [r[:n] for r in self.rows]
        if markdown:
            rows = [[f"`{c}`" if c and c[0] == "(" else c for c in r] for r in rows]
        return format_table(head[:n], rows, markdown=markdown)

    def __str__(self):
        lines = [self._header()]
        if self.rows:
            lines += [""] + ["  " + line for line in self._table().splitlines()]
        lines.append("")
        if self.ok:
            lines.append("OK: every array matches the reference"
                         + (" and the numerical gradient." if self.what == "backprop" else "."))
        elif self.kinds == {"not_written"}:
            lines.append(f"NOT WRITTEN YET: {self.findings[0].message}")
        else:
            n = len(self.findings)
            lines.append(f"NOT YET: {n} problem{'s' if n > 1 else ''}.")
            lines += [f"- {f}" for f in self.findings]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_markdown_(self):
        md = [self._header(), ""]
        if self.rows:
            md.append(self._table(markdown=True))
            md.append("")
        if self.ok:
            md.append("**OK** ✔ every array matches.")
        elif self.kinds == {"not_written"}:
            md.append(f"**Not written yet**: {self.findings[0].message}")
        else:
            md.append(f"**Not yet** ✘ {len(self.findings)} problem(s):")
            md.append("")
            md += [f"- **{', '.join(f.arrays) or 'fn'}**: {f.message}" for f in self.findings]
        return "\n".join(md)


# ---------------------------------------------------------------------------
# Test problems: random networks and inputs, and the reference with switches
# ---------------------------------------------------------------------------

def _problem(sizes, seed, batched):
    """A float64 network with unsaturated units, an input and labels.

    Weights N(0, 1/n_in) and biases N(0, 0.25) keep the hidden z around ±1, where
    σ'(z) and σ'(σ(z)) differ clearly. The input is uniform in [0.05, 1): no
    zero pixels, so every column of ∂C/∂W1 carries information.
    """
    rng = np.random.default_rng(seed)
    net = Network(sizes, init="scaled", seed=rng)
    net.biases = [0.5 * b for b in net.biases]
    B = BATCH if batched else 1
    X = rng.uniform(0.05, 1.0, (B, sizes[0]))
    y = rng.integers(0, sizes[-1], B)
    return net, X, y


def _family(W1, b1, W2, b2, X, y, out="z", hid="z", target="onehot", dW2_from="a",
            W2_delta=None, act_hid=True, act_out=True, use_bias=True):
    """The reference computation for rows X (B, n0), with one classic mistake switched on.

    Switches: out/hid = "z" (right), "a" (σ'(a) for σ'(z)) or "none" (σ' missing) for
    δ2/δ1; target = "onehot" or "label" (a − y with y the integer label); dW2_from =
    "a" or "z" (outer(δ2, z1)); W2_delta: the matrix used to send δ2 back (W2 itself
    by default); act_hid/act_out/use_bias: forward-pass mistakes.
    Returns a dict of arrays: Z1, A1, Z2, A2 (B, n), D1, D2 (B, n), dW1, db1, dW2, db2
    (gradients of the mean over the B rows).
    """
    B = X.shape[0]
    Z1 = X @ W1.T + (b1 if use_bias else 0)
    A1 = sigmoid(Z1) if act_hid else Z1
    Z2 = A1 @ W2.T + (b2 if use_bias else 0)
    A2 = sigmoid(Z2) if act_out else Z2
    T = one_hot(y, A2.shape[-1], A2.dtype)
    if target == "label":
        T = np.asarray(y, dtype=float)[:, None] * np.ones_like(A2)
    prime = {"z": sigmoid_prime, "a": lambda z: sigmoid_prime(sigmoid(z)),
             "none": lambda z: 1.0}
    D2 = (A2 - T) * prime[out](Z2)
    D1 = (D2 @ (W2 if W2_delta is None else W2_delta)) * prime[hid](Z1)
    return dict(Z1=Z1, A1=A1, Z2=Z2, A2=A2, D1=D1, D2=D2,
                dW1=D1.T @ X / B, db1=D1.mean(axis=0),
                dW2=D2.T @ (A1 if dW2_from == "a" else Z1) / B, db2=D2.mean(axis=0))


def _start(what, sizes, seed, batched):
    """An empty report for one network, and its test problem.

    Returns (report, net, X, y, weights, biases): weights [W1, W2] and biases
    [b1, b2] are new lists holding the network's arrays.
    """
    report = CheckReport(what, "batch" if batched else "one sample", [sizes])
    net, X, y = _problem(sizes, seed, batched)
    return report, net, X, y, list(net.weights), list(net.biases)


# The classic mistakes the backward pass is compared with, each with its sentences.
_S_OUT_A = ("δ2 uses σ'(a2), sigmoid_prime of the activation, where σ'(z2) is meant: "
            "call sigmoid_prime(z2), or write a2 * (1 - a2) (which is σ'(z2)).")
_S_HID_A = ("δ1 uses σ'(a1), sigmoid_prime of the activation, where σ'(z1) is meant: "
            "call sigmoid_prime(z1), or write a1 * (1 - a1).")
_S_OUT_NONE = ("δ2 is missing the factor σ'(z2): for the quadratic cost δ2 = (a2 - t) ⊙ σ'(z2) "
               "((a2 - t) alone is the δ2 of the cross-entropy cost, notebook 07).")
_S_HID_NONE = ("δ1 is missing the factor σ'(z1): δ1 = (W2ᵀ δ2) ⊙ σ'(z1); "
               "W2ᵀ δ2 only carries the error back to a1, σ'(z1) carries it on to z1.")
_S_LABEL = ("δ2 was computed from the integer label y itself (a2 - y): subtract the one-hot "
            "target t instead (t = np.zeros(10); t[y] = 1).")
_S_DW2_Z = ("dW2 uses z1 where the layer's input a1 = σ(z1) is meant: dW2 = outer(δ2, a1).")

_BACKPROP_VARIANTS = (
    [(dict(out=o, hid=h), [s for s in (so, sh) if s])
     for (o, so), (h, sh) in itertools.product(
         [("z", None), ("a", _S_OUT_A), ("none", _S_OUT_NONE)],
         [("z", None), ("a", _S_HID_A), ("none", _S_HID_NONE)])]
    + [(dict(target="label"), [_S_LABEL]), (dict(dW2_from="z"), [_S_DW2_Z])]
)


# ---------------------------------------------------------------------------
# Calling fn: copies, exceptions, mutated inputs
# ---------------------------------------------------------------------------

@dataclass
class _Call:
    result: object = None
    error: BaseException = None
    explanation: str = ""
    kind: str = ""                                   # "exception", or "not_written" for a template
    mutated: list = field(default_factory=list)     # (name, before, after)


def _call(fn, weights, biases, *rest):
    """Call fn on copies of its inputs; catch and explain an exception; note mutations."""
    w_in, b_in = [W.copy() for W in weights], [b.copy() for b in biases]
    rest_in = [copy.deepcopy(r) for r in rest]
    call = _Call()
    try:
        call.result = fn(w_in, b_in, *rest_in)
    except NotImplementedError as e:            # a template whose body is still `raise ...`
        call.error, call.kind = e, "not_written"
        hint, name = safe_message(e), getattr(fn, "__name__", "fn")
        name = f"`{name}`" if name.isidentifier() else "fn"
        call.explanation = (f"{name} still raises NotImplementedError" + (f" ({hint})" if hint else "")
                            + ": write its body in place of the raise, then run the check again.")
    except Exception as e:                      # noqa: BLE001 - explained, not hidden
        call.error, call.kind = e, "exception"
        call.explanation = "fn raised " + explain_exception(e)
    names = [f"W{i + 1}" for i in range(len(weights))] + [f"b{i + 1}" for i in range(len(biases))]
    for name, before, after in zip(names, list(weights) + list(biases), w_in + b_in):
        if not (isinstance(after, np.ndarray) and after.shape == before.shape
                and np.array_equal(after, before)):
            call.mutated.append((name, before, after))
    for name, before, after in zip(("x", "y"), rest, rest_in):        # the sample(s) and labels
        if isinstance(before, np.ndarray) and not (
                isinstance(after, np.ndarray) and after.shape == before.shape
                and np.array_equal(after, before)):
            call.mutated.append((name, before, after))
    return call


def _mutation_findings(report, call, grads=None):
    """Explain inputs that fn changed in place (e.g. a weight update inside backprop).

    grads: {"dW1": …, "db1": …} to estimate η from each change (W_before − W_after = η·dW);
    pass the gradients fn returned (they are what an in-place update used), else the reference.
    """
    if not call.mutated:
        return
    names = [name for name, _, _ in call.mutated]
    etas = []
    for name, before, after in call.mutated:
        g = None if grads is None else grads.get("d" + name)
        if g is None or np.shape(after) != np.shape(before) or np.shape(g) != np.shape(before):
            etas.append(None)
            continue
        etas.append(_fit_factor(np.asarray(before, float) - np.asarray(after, float), g))
    if etas and all(e is not None and e > 0 for e in etas) and \
            max(etas) - min(etas) <= 1e-6 * max(etas):
        msg = (f"changed in place by fn: it already did the update W -= η·dW (η ≈ "
               f"{etas[0]:.3g}). A backprop must only return the gradients; the training loop "
               f"updates the parameters after it returns.")
    else:
        msg = ("changed in place by fn (e.g. with -=, +=, *= or [...] = ...): a backprop "
               "(or forward pass) must only compute and return; leave the update W -= η·dW to "
               "the training loop, after it returns.")
    report.add("mutated_input", names, msg)


def _fit_factor(got, ref, rtol=1e-6):
    """The c with got ≈ c·ref (to rtol of ‖got‖), or None if no single factor fits."""
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    if got.shape != ref.shape:
        return None
    rr = float(np.vdot(ref, ref))
    if rr == 0.0 or not np.all(np.isfinite(got)):
        return None
    c = float(np.vdot(got, ref)) / rr
    if not np.isfinite(c):
        return None
    scale = max(np.abs(got).max(), abs(c) * np.abs(ref).max())
    if scale == 0.0 or np.abs(got - c * ref).max() > rtol * scale:
        return None
    return c


#: Larger than any gradient or activation of these networks can be: an overflow on the way.
HUGE = 1e100


def _huge_sentence(name, got):
    return (f"{name} holds values as large as {np.abs(got).max():.1e}, far beyond any gradient of "
            f"this network: an overflow on the way (np.exp of a large number?) or a runaway factor.")


def _same(got, ref, rtol=RTOL):
    """got equals ref up to rtol of ref's largest entry (float32 arrays get 1e-5: their precision)."""
    if np.asarray(got).dtype in (np.float32, np.float16):
        rtol = max(rtol, 1e-5 if np.asarray(got).dtype == np.float32 else 1e-2)
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    if got.shape != ref.shape or not np.all(np.isfinite(got)):
        return False
    scale = max(np.abs(ref).max(), 1e-12)
    return bool(np.abs(got - ref).max() <= rtol * scale)


# ---------------------------------------------------------------------------
# Comparing one array with the reference, and naming the mistake
# ---------------------------------------------------------------------------

_ATOMS = [
    # (factor, sentence); several may combine.
    (-1.0, "the sign is flipped: δ2 = (a2 - t) ⊙ σ'(z2), not (t - a2) (and the update "
           "subtracts: W -= η·dW)"),
    (2.0, "2× too large: that is the gradient of ‖a - t‖² without the ½; the cost here is "
          "C = ½‖a - t‖², whose derivative is (a - t), so drop the factor 2"),
    (0.5, "half the right value: a stray ½ (the ½ of C = ½‖a - t‖² is already used up: "
          "dC/da = a - t)"),
]


def _factor_sentence(c, B, per_sample=False):
    """A sentence explaining a constant factor c, or None if c = 1.

    per_sample: the arrays are deltas (one row per sample, no mean), so a factor
    1/B is a mean taken too early rather than twice.
    """
    if abs(c - 1) < 1e-6:
        return None
    batch_atoms = [(1.0, None)]
    if B > 1 and per_sample:
        batch_atoms += [(float(B), f"{B}× too large = B: the deltas are per sample, one row each; "
                                   f"nothing is summed over the batch here"),
                        (1.0 / B, f"{B}× too small = 1/B: the deltas are per sample (one row "
                                  f"each, not divided by B); the 1/B of the mean belongs to the "
                                  f"gradients")]
    elif B > 1:
        batch_atoms += [(float(B), f"{B}× too large = B: you summed over the batch instead of "
                                   f"averaging; divide by B = len(X)"),
                        (1.0 / B, f"{B}× too small = 1/B: divided by B twice (or a per-sample "
                                  f"delta was divided by B before the mean)")]
    for n in range(1, 3):
        for combo in itertools.combinations(_ATOMS, n):
            for batch in batch_atoms:
                f = np.prod([a[0] for a in combo]) * batch[0]
                if abs(c - f) <= 1e-6 * abs(f):
                    parts = [a[1] for a in combo] + ([batch[1]] if batch[1] else [])
                    if 2.0 in [a[0] for a in combo] and 0.5 in [a[0] for a in combo]:
                        continue
                    return "; ".join(parts) + "."
    for batch in batch_atoms[1:]:
        if abs(c - batch[0]) <= 1e-6 * batch[0]:
            return batch[1] + "."
    return (f"exactly {c:.4g} times the right value: a stray constant factor (did you multiply "
            f"by the learning rate inside backprop? The update W -= η·dW belongs outside).")


def _diagnose_values(report, name, got, ref, variants, B, old_w2_dir=None, per_sample=False):
    """Explain why got (right shape) differs from ref; add the finding. Returns True if it matched."""
    if _same(got, ref):
        return True
    if not np.any(got):
        report.add("zero", [name], f"{name} is all zeros: nothing was ever added to it "
                                   f"(an accumulator created but not filled, or overwritten).")
        return False
    # The reference and each classic mistake, times a constant factor.
    for sentences, v in [([], ref)] + variants:
        c = _fit_factor(got, v)
        if c is None:
            continue
        fs = _factor_sentence(c, B, per_sample)
        kind = ("sign" if abs(c + 1) < 1e-6 else "factor") if fs else None
        if sentences:
            for s in sentences:
                report.add(_variant_kind(s), [name], s)
        if fs:
            report.add(kind, [name], f"{fs[0].upper()}{fs[1:]}")
        return False
    # δ1 sent back through a W2 that was already updated: δ1 = ((W2 − ηG)ᵀ δ2) ⊙ σ'(z1).
    if old_w2_dir is not None:
        eta = _fit_factor(ref - got, old_w2_dir)
        if eta is not None and eta > 0:
            report.add("updated_w2", [name],
                       f"δ1 was sent back through a W2 that was already updated (W2 - η·dW2 with "
                       f"η ≈ {eta:.3g}): compute every gradient with the old weights first, then "
                       f"update them all.")
            return False
    # A reshape where a transpose was meant: same shape, the numbers regrouped.
    if got.ndim == 2 and ref.ndim == 2 and _same(got, ref.T.reshape(ref.shape)):
        report.add("reshape", [name],
                   f"{name} holds the right numbers in the wrong places: .reshape{ref.shape} keeps "
                   f"the order of the numbers and only regroups them; a transpose (.T) is what "
                   f"turns {ref.shape[::-1]} into {ref.shape}.")
        return False
    err = rel_error(got, ref)
    report.add("values", [name],
               f"{name} has the right shape but wrong values (relative error {err:.1e}) and "
               f"matches none of the classic mistakes; print it next to the reference and "
               f"look at its first row, or check the step that produces it.")
    return False


def _variant_kind(sentence):
    return {_S_OUT_A: "sigma_prime_of_a", _S_HID_A: "sigma_prime_of_a",
            _S_OUT_NONE: "missing_sigma_prime", _S_HID_NONE: "missing_sigma_prime",
            _S_LABEL: "label_not_onehot", _S_DW2_Z: "z_for_a"}.get(sentence, "variant")


def _diagnose_shape(report, name, got, ref, form, sizes, B, formula):
    """Explain a wrong shape for array `name`. Returns got.T if that has the right shape
    (so its values can be checked too), else None."""
    exp, sh = tuple(ref.shape), tuple(got.shape)
    is_vector = len(exp) == 1
    n = exp[-1] if exp else None
    if len(exp) == 2 and sh == exp[::-1]:
        if form == "one sample" and name.startswith("dW"):
            d, a = ("δ1", "x") if name == "dW1" else ("δ2", "a1")
            fix = f"swap the arguments: np.outer({d}, {a}), not np.outer({a}, {d})"
        elif name.startswith("dW"):
            fix = "put the deltas first: Δᵀ @ A_prev (A_prevᵀ @ Δ is its transpose)"
        else:
            fix = "transpose it (.T)"
        right = _same(got.T, ref)
        report.add("transpose", [name],
                   f"{name} has shape {sh}; expected {exp} = {formula}: {fix}"
                   + (" — its values are right, only transposed." if right else "."))
        return None if right else got.T
    if is_vector and (sh in ((n, 1), (1, n))):
        hint = (" (drop keepdims=True)" if sh == (1, n) and form == "batch"
                else " (use .ravel(), and keep x and the deltas 1-D)")
        report.add("column", [name], f"{name} has shape {sh}; expected {exp}, a 1-D vector like "
                                     f"the bias itself{hint}.")
        flat = got.reshape(exp)
        return flat
    if is_vector and (sh == () or sh == (1,)):
        if form == "batch":
            msg = (f"{name} is a single number; expected one value per unit, shape {exp}: sum "
                   f"(or average) over the samples only, axis=0, not over everything.")
        else:
            msg = (f"{name} is a single number; expected one value per unit, shape {exp}: the "
                   f"bias gradient is the δ vector itself, not its sum.")
        report.add("bias_scalar", [name], msg)
        return None
    if is_vector and form == "batch" and sh == (B,):
        report.add("bias_axis", [name], f"shape ({B},), one number per sample: you summed over "
                                        f"axis=1 (the units); average over axis=0 (the samples) "
                                        f"instead, which gives one value per unit.")
        return None
    if is_vector and form == "batch" and sh == (B, n):
        report.add("bias_rows", [name], f"{name} has shape {sh}, one row per sample; average the "
                                        f"rows: Δ.mean(axis=0), shape {exp}.")
        return None
    if is_vector and sh == (n, n):
        report.add("bias_matrix", [name],
                   f"{name} has shape {sh}, a matrix: a ({n},) vector met a ({n}, 1) column and "
                   f"numpy broadcast them into ({n}, {n}); keep every vector 1-D, shape {exp}.")
        return None
    if is_vector and len(sh) == 2 and n in sh:
        report.add("bias_matrix", [name],
                   f"{name} has shape {sh}, a matrix; the bias gradient is a vector of shape {exp} "
                   f"(= the δ of that layer{', averaged over the samples' if form == 'batch' else ''}).")
        return None
    if not is_vector and form == "batch" and sh == (B,) + exp:
        report.add("per_sample", [name], f"{name} has shape {sh}: one gradient per sample; "
                                         f"average them over axis 0 to get {exp}.")
        return None
    report.add("shape", [name], f"{name} has shape {sh}; expected {exp} = {formula}.")
    return None


# ---------------------------------------------------------------------------
# Normalising what fn returned
# ---------------------------------------------------------------------------

def _as_array(value):
    try:
        arr = np.asarray(value)
    except Exception:                           # noqa: BLE001
        return None
    return arr if arr.dtype.kind in "fiub" else None


def _structure_backprop(report, result, L=2):
    """Check the (nabla_w, nabla_b) structure; return ([dW1, dW2], [db1, db2]) arrays or None."""
    if result is None:
        report.add("type", [], "fn returned None: did you forget `return nabla_w, nabla_b`?")
        return None
    if isinstance(result, np.ndarray) or not isinstance(result, (tuple, list)):
        report.add("type", [], f"fn returned a {type(result).__name__}; expected a pair "
                               f"(nabla_w, nabla_b) of lists: ([dW1, dW2], [db1, db2]).")
        return None
    if len(result) != 2:
        report.add("count", [], f"fn returned {len(result)} things; expected a pair "
                                f"(nabla_w, nabla_b) = ([dW1, dW2], [db1, db2]).")
        return None
    out = []
    for what, part in zip(("nabla_w", "nabla_b"), result):
        if isinstance(part, np.ndarray) or not isinstance(part, (list, tuple)):
            report.add("type", [], f"{what} is a {type(part).__name__}; expected a list with one "
                                   f"array per layer, e.g. [dW1, dW2].")
            return None
        if len(part) != L:
            report.add("count", [], f"{what} holds {len(part)} arrays; expected {L}, one per layer "
                                    f"({'[dW1, dW2]' if what == 'nabla_w' else '[db1, db2]'}).")
            return None
        arrays = [_as_array(p) for p in part]
        if any(a is None for a in arrays):
            report.add("type", [], f"{what} holds something that is not a numeric array.")
            return None
        out.append(arrays)
    return out


# ---------------------------------------------------------------------------
# Form detection (one sample or batch)
# ---------------------------------------------------------------------------

def _signature_says_batch(fn):
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    if len(params) < 3:
        return False
    name = params[2]
    return name[:1].isupper() or "batch" in name.lower()


def _choose_form(fn, batched, attempt):
    """Decide whether fn is checked as a one-sample or a batch function.

    attempt(batched) -> (score, report): 0 = raised, 1… = returned something
    wrong, 2 = right. The name of fn's third argument gives the first guess (X or
    *batch* → batch); the other form wins only if it is right and the guess raised,
    or if it does clearly better. Returns (batched, note).
    """
    if batched is not None:
        return batched, ""
    hint = _signature_says_batch(fn)
    s_hint, _ = attempt(hint)
    if s_hint >= 2:
        return hint, ""
    s_other, _ = attempt(not hint)
    if s_other >= 2 and s_hint == 0:
        return (not hint), ""
    if s_other >= 2:
        return hint, ("right for " + ("one sample" if hint else "a batch") + ", but not for "
                      + ("a batch" if hint else "one sample") + " (its argument is named "
                      + ("X" if hint else "x") + "); pass batched="
                      + ("False" if hint else "True") + " if the other form is what you meant.")
    if s_other > s_hint:
        return (not hint), ""
    if s_other == s_hint:
        return hint, ("going by the name of its third argument ("
                      + ("X); pass batched=False if it takes one sample."
                         if hint else "x); pass batched=True if it takes a batch."))
    return hint, ""


# ---------------------------------------------------------------------------
# check_backprop
# ---------------------------------------------------------------------------

def _backprop_formulas(form, sizes):
    n0, n1, n2 = sizes
    if form == "one sample":
        return {"dW1": f"outer(δ1 ({n1},), x ({n0},))", "db1": "δ1",
                "dW2": f"outer(δ2 ({n2},), a1 ({n1},))", "db2": "δ2"}
    return {"dW1": f"Δ1ᵀ @ X / B with Δ1 (B, {n1}), X (B, {n0})", "db1": "Δ1.mean(axis=0)",
            "dW2": f"Δ2ᵀ @ A1 / B with Δ2 (B, {n2}), A1 (B, {n1})", "db2": "Δ2.mean(axis=0)"}


def _add_row(report, name, got, ref, err, numerical=""):
    """One table row: name, shape returned, shape expected, error vs the reference, vs numerical."""
    cell = _fmt_err(err) if err is not None else ("wrong shape" if got.shape != ref.shape else "—")
    report.rows.append((name, str(got.shape), str(ref.shape), cell, numerical))


def _scored(report, good, bonus=0.0):
    """(report, score) for ``_choose_form``: 2 if right, else 1 + good/10 + bonus
    (good: arrays that matched; bonus: partial credit such as right shapes)."""
    return report, (2 if report.ok else 1 + good / 10 + bonus)


def _fmt_err(e):
    if e is None:
        return ""
    if not np.isfinite(e):
        return "—"
    return "< 1e-7 ✓" if e < 1e-7 else f"{e:.1e} ✗"


def _check_backprop_on(fn, sizes, batched, seed, numerical=True):
    """One network: call fn, diagnose. Returns (report, score)."""
    report, net, X, y, weights, biases = _start("backprop", sizes, seed, batched)
    args = (X, y) if batched else (X[0], int(y[0]))
    call = _call(fn, weights, biases, *args)
    W1, b1, W2, b2 = weights[0], biases[0], weights[1], biases[1]
    ref = _family(W1, b1, W2, b2, X, y)
    grads = {k: ref[k] for k in _ARRAY_NAMES}
    if call.error is not None:
        report.add(call.kind, [], call.explanation)
        _mutation_findings(report, call, grads)
        return report, 0
    parts = _structure_backprop(report, call.result)
    if parts is None:
        _mutation_findings(report, call, grads)
        return report, 1
    (dW1, dW2), (db1, db2) = parts
    got = {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}
    _mutation_findings(report, call, got)
    exp_shapes = {k: grads[k].shape for k in _ARRAY_NAMES}
    # Whole-structure mix-ups: the pair swapped, or the layers listed output first.
    if [dW1.shape, dW2.shape] == [exp_shapes["db1"], exp_shapes["db2"]] and \
            [db1.shape, db2.shape] == [exp_shapes["dW1"], exp_shapes["dW2"]]:
        report.add("order", [], "the pair is (nabla_b, nabla_w): return (nabla_w, nabla_b), "
                                "weights first.")
        return report, 1
    if [dW1.shape, dW2.shape] == [exp_shapes["dW2"], exp_shapes["dW1"]]:
        report.add("order", ["nabla_w", "nabla_b"],
                   "the lists run from the output layer back ([dW2, dW1]), the order backprop "
                   "computes them in; list them input first: [dW1, dW2] (e.g. nabla_w[::-1]).")
        return report, 1
    formulas = _backprop_formulas(report.form, sizes)
    B = X.shape[0]
    # Variants of the whole computation, and δ1 sent back through W2 already updated
    # by its own gradient (for one sample, dW2 = outer(δ2, a1), the 1/B being 1/1).
    variants = [(s, _family(W1, b1, W2, b2, X, y, **kw)) for kw, s in _BACKPROP_VARIANTS]
    upd = _family(W1, b1, W2, b2, X, y, W2_delta=ref["dW2"])
    num = None
    if numerical:
        num_w, num_b = numerical_gradient(net, X if batched else X[0], y if batched else int(y[0]),
                                          num_checks=NUM_CHECKS, seed=seed)
        num = {"dW1": num_w[0], "db1": num_b[0], "dW2": num_w[1], "db2": num_b[1]}
    ok_arrays = 0
    for name in _ARRAY_NAMES:
        g, r = got[name], grads[name]
        e_ref = e_num = None
        if not np.all(np.isfinite(g)):
            report.add("nan", [name], f"{name} contains NaN or inf: an overflow (np.exp of a large "
                                      f"number?) or a 0/0; use mnistnet.functions.sigmoid, which "
                                      f"never overflows, and check for divisions.")
        elif float(np.abs(g).max()) > HUGE:
            report.add("overflow", [name], _huge_sentence(name, g))
        elif g.shape != r.shape:
            fixed = _diagnose_shape(report, name, g, r, report.form, sizes, B, formulas[name])
            if fixed is not None and fixed.shape == r.shape:
                _diagnose_values(report, name, fixed, r, [(s, v[name]) for s, v in variants], B,
                                 upd[name] if name in ("dW1", "db1") else None)
        else:
            e_ref = rel_error(g, r)
            if num is not None:
                e_num = rel_error(g, num[name])
            if _diagnose_values(report, name, g, r, [(s, v[name]) for s, v in variants], B,
                                upd[name] if name in ("dW1", "db1") else None):
                ok_arrays += 1
        _add_row(report, name, g, r, e_ref, _fmt_err(e_num) if numerical else "")
    return _scored(report, ok_arrays, 0.05 * sum(got[k].shape == grads[k].shape
                                                 for k in _ARRAY_NAMES))


def _run_all(what, fn, batched, seed, check_one, sizes_list=SIZES):
    """Detect the form, then check on every network; stop at the first that fails."""
    cache = {}

    def attempt(b):
        if b not in cache:
            cache[b] = check_one(fn, list(sizes_list[0]), b, seed)
        rep, score = cache[b]
        return score, rep

    b, note = _choose_form(fn, batched, attempt)
    _, first = attempt(b)
    final = CheckReport(what, first.form, [list(s) for s in sizes_list])
    final.rows = first.rows
    if not first.ok:
        final.findings = first.findings
        final.sizes = [list(sizes_list[0])]
        final.note = note if first.kinds != {"not_written"} else ""
        return final
    for sizes in sizes_list[1:]:
        rep, _ = check_one(fn, list(sizes), b, seed + 1)
        if not rep.ok:
            final.sizes = [list(s) for s in sizes_list[:sizes_list.index(sizes) + 1]]
            final.rows = rep.rows
            for f in rep.findings:
                msg = (f"right on {list(sizes_list[0])} but not on {list(sizes)}: {f.message}")
                if f.kind in ("exception", "shape", "count"):
                    msg += (" Is a size written into your code (30, 784, …)? Take sizes from the "
                            "arrays instead, e.g. W1.shape[0].")
                final.add("other_size" if f.kind != "exception" else "exception", f.arrays, msg)
            break
    return final


def check_backprop(fn, *, batched=None, seed=0):
    """Check a hand-written backprop and explain each mistake in one sentence.

    Introduced in ``notebooks/08-check-your-backprop.ipynb``; used on the planted
    bugs in ``notebooks/09-bug-zoo.ipynb``.

    Inputs:
    - fn: your function ``fn(weights, biases, x, y) -> (nabla_w, nabla_b)``:
      weights = [W1 (30, 784), W2 (10, 30)], biases = [b1 (30,), b2 (10,)], x one
      image (784,), y its integer label; returns nabla_w = [dW1 (30, 784), dW2 (10, 30)]
      and nabla_b = [db1 (30,), db2 (10,)], the gradient of C = ½‖a − t‖².
      Or the batch form: X (B, 784), y (B,) -> the gradient of the mean cost.
    - batched: None (detect, see the module docstring), True or False.
    - seed: an int; chooses the random networks and inputs (the same seed, the same
      check). The second network is drawn with seed + 1.
    Returns:
    - a CheckReport: ``.ok``, ``print(report)`` for the table and the hints.

    Diagnoses: wrong types or counts, lists in the wrong order, wrong shapes (with
    the transpose / outer-product order that fixes them), biases collapsed to a
    number or broadcast into a matrix, constant factors (sign, ½, 1/B), σ'(a) for
    σ'(z), a missing σ', the label used as target, z1 for a1, δ1 from an already
    updated W2, weights changed in place, NaNs, and exceptions inside fn
    (explained, not re-raised).
    """
    return _run_all("backprop", fn, batched, seed, _check_backprop_on)


# ---------------------------------------------------------------------------
# check_deltas
# ---------------------------------------------------------------------------

def _check_deltas_on(fn, sizes, batched, seed):
    report, _, X, y, weights, biases = _start("deltas", sizes, seed, batched)
    W1, b1, W2, b2 = weights[0], biases[0], weights[1], biases[1]
    args = (X, y) if batched else (X[0], int(y[0]))
    call = _call(fn, weights, biases, *args)
    _mutation_findings(report, call)
    if call.error is not None:
        report.add(call.kind, [], call.explanation)
        return report, 0
    res = call.result
    if res is None:
        report.add("type", [], "fn returned None: did you forget `return [delta1, delta2]`?")
        return report, 1
    if isinstance(res, np.ndarray) or not isinstance(res, (list, tuple)) or len(res) != 2:
        what = (f"{len(res)} things" if isinstance(res, (list, tuple))
                else f"a {type(res).__name__}")
        report.add("count" if isinstance(res, (list, tuple)) else "type", [],
                   f"fn returned {what}; expected a list [δ1, δ2], one δ per layer, input side first.")
        return report, 1
    d1, d2 = (_as_array(r) for r in res)
    if d1 is None or d2 is None:
        report.add("type", [], "fn returned something that is not a numeric array.")
        return report, 1
    ref = _family(W1, b1, W2, b2, X, y)
    R = {"δ1": ref["D1"], "δ2": ref["D2"]}
    if not batched:
        R = {k: v[0] for k, v in R.items()}
    if d1.shape == R["δ2"].shape and d2.shape == R["δ1"].shape:
        report.add("order", [], "the list is [δ2, δ1], the order backprop finds them in; return "
                                "[δ1, δ2], input side first (e.g. deltas[::-1]).")
        return report, 1
    variants = [(s, _family(W1, b1, W2, b2, X, y, **kw))
                for kw, s in _BACKPROP_VARIANTS if "dW2_from" not in kw]
    upd = _family(W1, b1, W2, b2, X, y, W2_delta=ref["dW2"])
    B = X.shape[0]
    good = 0
    formulas = {"δ1": "(W2ᵀ δ2) ⊙ σ'(z1), one value per hidden unit",
                "δ2": "(a2 - t) ⊙ σ'(z2), one value per output"}
    if batched:
        formulas = {"δ1": "(Δ2 @ W2) ⊙ σ'(Z1), one row per sample",
                    "δ2": "(A2 - T) ⊙ σ'(Z2), one row per sample"}
    for name, g, key in (("δ1", d1, "D1"), ("δ2", d2, "D2")):
        r = R[name]
        pick = (lambda v: v[key]) if batched else (lambda v: v[key][0])
        e = None
        if not np.all(np.isfinite(g)):
            report.add("nan", [name], f"{name} contains NaN or inf (an overflow in np.exp?).")
        elif g.shape != r.shape:
            if batched and g.shape == r.shape[::-1]:
                right = _same(g.T, r)
                report.add("transpose", [name],
                           f"{name} has shape {g.shape}; expected {r.shape}, one row per sample "
                           f"(samples in rows, as X): transpose it"
                           + (" — its values are right." if right else "."))
            elif not batched and g.shape in ((r.shape[0], 1), (1, r.shape[0])):
                report.add("column", [name], f"{name} has shape {g.shape}; expected {r.shape}, a "
                                             f"1-D vector: keep x and the deltas 1-D (or .ravel()).")
            else:
                report.add("shape", [name], f"{name} has shape {g.shape}; expected {r.shape} = "
                                            f"{formulas[name]}.")
        else:
            e = rel_error(g, r)
            variant_arrays = [(s, pick(v)) for s, v in variants]
            if _diagnose_values(report, name, g, r, variant_arrays, B if batched else 1,
                                pick(upd) if name == "δ1" else None, per_sample=True):
                good += 1
        _add_row(report, name, g, r, e)
    return _scored(report, good)


def check_deltas(fn, *, batched=None, seed=0):
    """Check a hand-written computation of the deltas δ1 = ∂C/∂z1 and δ2 = ∂C/∂z2.

    Introduced in ``notebooks/08-check-your-backprop.ipynb``.

    Inputs:
    - fn: ``fn(weights, biases, x, y) -> [delta1 (30,), delta2 (10,)]`` for one
      image x (784,) and its integer label y, C = ½‖a − t‖²; or the batch form
      X (B, 784), y (B,) -> [Delta1 (B, 30), Delta2 (B, 10)], one row per sample,
      not divided by B.
    - batched: None (detect), True or False.
    - seed: an int; chooses the random networks and inputs (as for check_backprop).
    Returns:
    - a CheckReport (``.ok``; print it for the hints).

    Diagnoses: the list reversed, wrong shapes (columns, transposed batches), sign,
    factor 2, σ'(a) for σ'(z), a missing σ', the label used as target, an updated W2,
    a misplaced 1/B, NaNs, inputs changed in place, and exceptions (explained).
    """
    return _run_all("deltas", fn, batched, seed, _check_deltas_on)


# ---------------------------------------------------------------------------
# check_forward
# ---------------------------------------------------------------------------

_FORWARD_VARIANTS = [
    (dict(act_out=False), "the output is z2, not a2: apply the sigmoid to the last layer too, "
                          "a2 = σ(z2)."),
    (dict(act_hid=False), "the hidden layer has no sigmoid: a1 = σ(z1) must go into layer 2, "
                          "not z1."),
    (dict(act_hid=False, act_out=False), "no sigmoid anywhere: a = σ(z) on both layers."),
    (dict(use_bias=False), "the biases are missing: z = W @ a_prev + b."),
]


def _check_forward_on(fn, sizes, batched, seed):
    report, _, X, y, weights, biases = _start("forward", sizes, seed, batched)
    W1, b1, W2, b2 = weights[0], biases[0], weights[1], biases[1]
    call = _call(fn, weights, biases, X if batched else X[0])
    _mutation_findings(report, call)
    if call.error is not None:
        report.add(call.kind, [], call.explanation)
        return report, 0
    ref = _family(W1, b1, W2, b2, X, y)
    pick = (lambda a: a) if batched else (lambda a: a[0])
    res = call.result
    if res is None:
        report.add("type", [], "fn returned None: did you forget `return a2`?")
        return report, 1
    # (zs, activations) or just the output
    if isinstance(res, (tuple, list)) and len(res) == 2 and all(
            isinstance(p, (list, tuple)) for p in res):
        zs, acts = res
        expected = [("z1", ref["Z1"]), ("z2", ref["Z2"])]
        if len(acts) == 3:
            expected_a = [("x", X), ("a1", ref["A1"]), ("a2", ref["A2"])]
        else:
            expected_a = [("a1", ref["A1"]), ("a2", ref["A2"])]
        if len(zs) != 2 or len(acts) not in (2, 3):
            report.add("count", [], f"fn returned {len(zs)} z's and {len(acts)} activations; "
                                    f"expected zs = [z1, z2] and activations = [x, a1, a2] "
                                    f"(or [a1, a2]).")
            return report, 1
        pairs = list(zip(expected + expected_a, list(zs) + list(acts)))
    else:
        pairs = [(("a2", ref["A2"]), res)]
    variants = [(s, _family(W1, b1, W2, b2, X, y, **kw)) for kw, s in _FORWARD_VARIANTS]
    good = 0
    for (name, r_full), g in pairs:
        r = pick(r_full)
        g = _as_array(g)
        if g is None:
            report.add("type", [name], f"{name} is not a numeric array.")
            continue
        e = None
        if not np.all(np.isfinite(g)):
            report.add("nan", [name], f"{name} contains NaN or inf (np.exp overflowed? use "
                                      f"mnistnet.functions.sigmoid).")
        elif g.shape != r.shape:
            if batched and g.shape == r.shape[::-1]:
                report.add("transpose", [name],
                           f"{name} has shape {g.shape}; expected {r.shape}, one row per sample: "
                           f"with samples in rows the layer is X @ W.T + b (W @ X.T gives the "
                           f"transpose).")
            elif g.shape in ((r.shape[-1], 1), (1, r.shape[-1])) and not batched:
                report.add("column", [name], f"{name} has shape {g.shape}; expected {r.shape}, a "
                                             f"1-D vector: W @ x with x (784,) gives a 1-D vector; "
                                             f"a (784, 1) column gives a column (use .ravel()).")
            elif not batched and g.shape == (r.shape[0], r.shape[0]):
                report.add("bias_matrix", [name],
                           f"{name} has shape {g.shape}: a ({r.shape[0]}, 1) column plus the bias "
                           f"({r.shape[0]},) broadcast into a matrix; keep x 1-D.")
            else:
                report.add("shape", [name], f"{name} has shape {g.shape}; expected {r.shape}.")
        else:
            e = rel_error(g, r)
            if _same(g, r):
                good += 1
            else:
                for other, val in (("z2", ref["Z2"]), ("a1", ref["A1"]), ("z1", ref["Z1"])):
                    if other != name and pick(val).shape == r.shape and _same(g, pick(val)):
                        report.add("wrong_array", [name], f"{name} holds {other}, not {name}.")
                        break
                else:
                    key = {"z1": "Z1", "z2": "Z2", "a1": "A1", "a2": "A2"}.get(name)
                    sentence = next((s for s, v in variants if key and _same(g, pick(v[key]))),
                                    None)
                    if sentence is not None:
                        report.add("forward_variant", [name], sentence)
                    else:
                        report.add("values", [name],
                                   f"{name} has the right shape but wrong values (relative error "
                                   f"{e:.1e}); check z = W @ a_prev + b and a = σ(z), layer by "
                                   f"layer, against the notebook 02 formulas.")
        _add_row(report, name, g, r, e)
    return _scored(report, good)


def check_forward(fn, *, batched=None, seed=0):
    """Check a hand-written forward pass.

    Introduced in ``notebooks/08-check-your-backprop.ipynb``.

    Inputs:
    - fn: ``fn(weights, biases, x) -> a2 (10,)`` for one image x (784,), or
      ``-> (zs, activations)`` with zs = [z1 (30,), z2 (10,)] and activations =
      [x, a1, a2] (or [a1, a2]); or the batch form X (B, 784) -> A2 (B, 10)
      (or the lists with one row per sample).
    - batched: None (detect), True or False.
    - seed: an int; chooses the random networks and inputs (as for check_backprop).
    Returns:
    - a CheckReport (``.ok``; print it for the hints).

    Diagnoses: exceptions (the shapes of ``W1 @ x`` and friends), column vectors,
    a batch transposed, the output left as z2, a missing hidden sigmoid, missing
    biases, the wrong array returned, NaNs, inputs changed in place.
    """
    return _run_all("forward", fn, batched, seed, _check_forward_on)


# ---------------------------------------------------------------------------
# Adapter: a backprop written against a Network, e.g. from mnistnet.bugs
# ---------------------------------------------------------------------------

def from_network_backprop(backprop, **network_kwargs):
    """Turn ``backprop(net, X, y)`` into the ``fn(weights, biases, X, y)`` the checkers take.

    Introduced in ``notebooks/09-bug-zoo.ipynb``, to run the planted bugs of
    ``mnistnet.bugs`` (and ``Network.backprop`` itself) through ``check_backprop``.

    Inputs:
    - backprop: a function (net, X (B, n0), y (B,)) -> (nabla_w, nabla_b).
    - network_kwargs: passed to ``Network.from_arrays``: cost, output, init, dtype
      (defaults: cost="quadratic", output="sigmoid", dtype float64).
    Returns:
    - fn(weights, biases, X, y): builds a Network with these weights [W1 (n1, n0), …]
      and biases [b1 (n1,), …] and calls backprop on it (a batch function).
    """
    network_kwargs.setdefault("dtype", np.float64)   # gradients are checked in float64

    def fn(weights, biases, X, y):
        return backprop(Network.from_arrays(weights, biases, **network_kwargs), X, y)

    fn.__name__ = getattr(backprop, "__name__", "backprop")
    fn.__doc__ = getattr(backprop, "__doc__", None)
    return fn
