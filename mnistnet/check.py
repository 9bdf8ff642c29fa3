"""Check a backprop you wrote yourself, and say what is wrong with it in one sentence.

    check_forward(fn)    fn(weights, biases, x)    -> a2 (10,)   or (zs, activations)
    check_deltas(fn)     fn(weights, biases, x, y) -> [δ1 (30,), δ2 (10,)]
    check_backprop(fn)   fn(weights, biases, x, y) -> ([dW1, dW2], [db1, db2]), shaped as W, b

weights [W1 (30, 784), W2 (10, 30)] stored (out, in), biases [b1 (30,), b2 (10,)], x one image
(784,), y its integer label; sigmoid layers, C = ½‖a − t‖² with t one-hot. Each also takes the
batch form, X (B, 784), y (B,): ``batched=None`` tries both (first the one the third argument's
name suggests: ``X`` or "batch" → batch) and the report says which it assumed.

``fn`` gets copies of its inputs on random float64 networks [784, 30, 10], then [784, 7, 10] (so
that a size written into the code shows up). An array matches when ``gradcheck.rel_error`` is
at most ``RTOL`` = 1e-7 (1e-5 for a float32 result); ``check_backprop`` also compares with the
numerical gradient. A wrong array is matched against the classic mistakes of ``bugs.MISTAKES``;
an exception is explained (``mnistnet.explain``). ``print(report)`` shows a table and one
sentence per problem. Class-based code is checked through ``from_layers``.
"""

import copy
import functools
import inspect
import itertools
from dataclasses import dataclass, field

import numpy as np

from .bugs import MISTAKES
from .explain import explain_exception, explain_shape, safe_message
from .functions import one_hot, sigmoid, sigmoid_prime
from .gradcheck import from_layers, from_network_backprop, numerical_gradient, rel_error
from .network import Network
from .tables import format_table

__all__ = ["check_forward", "check_deltas", "check_backprop", "CheckReport", "Finding",
           "explain_exception", "from_network_backprop", "from_layers"]

#: The networks every function is checked on, in this order.
SIZES = ([784, 30, 10], [784, 7, 10])
#: Samples in a batch: unlike any layer size, so that a factor or an axis B stands out.
BATCH = 5
#: Largest relative error (gradcheck.rel_error) of "the same array" in float64.
RTOL = 1e-7
#: Entries of each array checked numerically (all of them for the small arrays).
NUM_CHECKS = 60
#: Larger than any gradient or activation of these networks can be: an overflow on the way.
HUGE = 1e100
#: The gradients' names in the report (and in ``_reference``'s dict).
GRADIENT_NAMES = ("dW1", "db1", "dW2", "db2")


# --- The report ---

@dataclass
class Finding:
    """One problem: kind, a short key ("shape", "transpose", "factor", a ``Mistake.kind``,
    "exception", "not_written", "mutated_input", "nan", …); arrays, the names concerned, e.g.
    ["dW1"] ([] for the function as a whole); message, the sentence shown to the learner."""
    kind: str
    arrays: list = field(default_factory=list)
    message: str = ""

    def __str__(self):
        where = ", ".join(self.arrays)
        return f"{where}: {self.message}" if where else self.message


class CheckReport:
    """What a checker found; ``print`` it for the table and one line per finding (a notebook
    renders it as Markdown). Attributes: ok (every array right on every network); what
    ("forward", "deltas", "backprop"); form ("one sample" or "batch"); findings (Finding list,
    in order found); kinds (their set); rows (name, shape returned, shape expected, error vs
    reference, vs numerical); sizes (the networks checked)."""

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
        one = self.form == "one sample"
        y = "" if self.what == "forward" else ", y an integer" if one else ", y (B,)"
        form = f"one sample: x (784,){y}" if one else f"a batch: X (B, 784){y}, here B = {BATCH}"
        nets = " and ".join(str(s) for s in self.sizes)
        note = f"\nChecked as {'a one-sample' if one else 'a batch'} function: {self.note}" \
            if self.note else ""
        return f"check_{self.what}: fn called with {form}, on random networks {nets}.{note}"

    def _table(self, markdown=False):
        head = ("array", "returned", "expected", "vs reference", "vs numerical")
        n = 5 if self.what == "backprop" else 4
        rows = [r[:n] for r in self.rows]
        if markdown:
            rows = [[f"`{c}`" if c and c[0] == "(" else c for c in r] for r in rows]
        return format_table(head[:n], rows, markdown=markdown)

    def _render(self, markdown):
        lines = [self._header(), ""]
        if self.rows:
            table = self._table(markdown)
            lines += [table if markdown else "\n".join("  " + t for t in table.splitlines()), ""]
        if self.ok:
            lines.append("**OK** ✔ every array matches." if markdown else
                         "OK: every array matches the reference"
                         + (" and the numerical gradient." if self.what == "backprop" else "."))
        elif self.kinds == {"not_written"}:
            lines.append(("**Not written yet**: " if markdown else "NOT WRITTEN YET: ")
                         + self.findings[0].message)
        elif markdown:
            lines += [f"**Not yet** ✘ {len(self.findings)} problem(s):", ""]
            lines += [f"- **{', '.join(f.arrays) or 'fn'}**: {f.message}" for f in self.findings]
        else:
            n = len(self.findings)
            lines.append(f"NOT YET: {n} problem{'s' if n > 1 else ''}.")
            lines += [f"- {f}" for f in self.findings]
        return "\n".join(lines)

    def __str__(self):
        return self._render(markdown=False)

    __repr__ = __str__

    def _repr_markdown_(self):
        return self._render(markdown=True)


# --- Test problems, and the reference with classic mistakes switched on ---

def _problem(sizes, seed, batched):
    """(net, X (B, n0), y (B,)), B = BATCH or 1: float64, hidden z around ±1 (where σ'(z) and
    σ'(σ(z)) differ clearly), pixels in [0.05, 1) (every column of ∂C/∂W1 carries information)."""
    rng = np.random.default_rng(seed)
    net = Network(sizes, init="scaled", seed=rng)
    net.biases = [0.5 * b for b in net.biases]
    B = BATCH if batched else 1
    X = rng.uniform(0.05, 1.0, (B, sizes[0]))
    y = rng.integers(0, sizes[-1], B)
    return net, X, y


def _slope(z, of_activation=False, missing=False):
    """σ'(z), or a classic wrong version: σ'(σ(z)) (σ' of the activation) or 1 (σ' left out)."""
    if missing:
        return 1.0
    return sigmoid_prime(sigmoid(z)) if of_activation else sigmoid_prime(z)


def _reference(weights, biases, X, y, mistakes=(), back_through=None):
    """The forward and backward pass on rows X (B, n0): right, or with classic mistakes switched on.

    weights [W1 (n1, n0), W2 (n2, n1)], biases [b1 (n1,), b2 (n2,)], y (B,); mistakes: names
    from ``bugs.MISTAKES``; back_through: the matrix sending δ2 back in place of W2. Returns a
    dict by the report's names: x, z1, a1, z2, a2, δ1, δ2 (B, n); dW1, db1, dW2, db2 (mean cost).
    """
    on = set(mistakes).__contains__
    (W1, W2), (b1, b2) = weights, biases
    with_bias = not on("missing_biases")
    Z1 = X @ W1.T + (b1 if with_bias else 0)
    A1 = Z1 if on("hidden_not_squashed") or on("no_sigmoid") else sigmoid(Z1)
    Z2 = A1 @ W2.T + (b2 if with_bias else 0)
    A2 = Z2 if on("output_not_squashed") or on("no_sigmoid") else sigmoid(Z2)
    T = one_hot(y, A2.shape[-1], A2.dtype)
    if on("label_as_target"):
        T = np.asarray(y, dtype=float)[:, None] * np.ones_like(A2)
    D2 = (A2 - T) * _slope(Z2, on("sigma_prime_of_a_output"), on("missing_sigma_prime_output"))
    D1 = (D2 @ (W2 if back_through is None else back_through)) * \
        _slope(Z1, on("sigma_prime_of_a"), on("missing_sigma_prime"))
    B = X.shape[0]
    return {"x": X, "z1": Z1, "a1": A1, "z2": Z2, "a2": A2, "δ1": D1, "δ2": D2,
            "dW1": D1.T @ X / B, "db1": D1.mean(axis=0),
            "dW2": D2.T @ (Z1 if on("z_for_a") else A1) / B, "db2": D2.mean(axis=0)}


#: The mistakes recomputed for the backward pass, alone or one per layer together.
_BACKWARD_MISTAKES = [tuple(n for n in pair if n) for pair in itertools.product(
    (None, "sigma_prime_of_a_output", "missing_sigma_prime_output"),
    (None, "sigma_prime_of_a", "missing_sigma_prime"))][1:] + [("label_as_target",), ("z_for_a",)]
#: The mistakes recomputed for the forward pass.
_FORWARD_MISTAKES = [("output_not_squashed",), ("hidden_not_squashed",), ("no_sigmoid",),
                     ("missing_biases",)]


@dataclass
class _Setting:
    """What one check compares with: the reference, its classic variants, numerical gradients."""
    what: str
    batched: bool
    sizes: list
    B: int
    ref: dict
    variants: list                 # [([Mistake, …], reference dict with them)]
    updated: dict = None           # the backward pass sending δ2 back through dW2 in place of W2
    numerical: dict = None         # {name: numerical gradient} (check_backprop)

    def pick(self, arrays, name):
        """The array `name` of a reference dict, as fn should return it (one row for one sample)."""
        return arrays[name] if self.batched or name in GRADIENT_NAMES else arrays[name][0]


def _setting(what, net, X, y, batched, seed):
    weights, biases = list(net.weights), list(net.biases)
    ref = _reference(weights, biases, X, y)
    names = _FORWARD_MISTAKES if what == "forward" else _BACKWARD_MISTAKES
    variants = [([MISTAKES[n] for n in m], _reference(weights, biases, X, y, m)) for m in names]
    setting = _Setting(what, batched, net.sizes, X.shape[0], ref, variants)
    if what != "forward":
        setting.updated = _reference(weights, biases, X, y, back_through=ref["dW2"])
    if what == "backprop":
        num_w, num_b = numerical_gradient(net, X if batched else X[0], y if batched else int(y[0]),
                                          num_checks=NUM_CHECKS, seed=seed)
        setting.numerical = dict(zip(GRADIENT_NAMES, (num_w[0], num_b[0], num_w[1], num_b[1])))
    return setting


# --- Calling fn: copies, exceptions, inputs changed in place ---

def _call(fn, weights, biases, *rest):
    """Call fn on copies of its inputs: (result, failure, changed). failure is None, or (kind,
    sentence) with kind "exception" or "not_written" (a template still raising
    NotImplementedError); changed lists (name, before, after) for each input changed in place."""
    w_in, b_in = [W.copy() for W in weights], [b.copy() for b in biases]
    rest_in = [copy.deepcopy(r) for r in rest]
    result = failure = None
    try:
        result = fn(w_in, b_in, *rest_in)
    except NotImplementedError as e:            # a template whose body is still `raise ...`
        hint, name = safe_message(e), getattr(fn, "__name__", "fn")
        name = f"`{name}`" if name.isidentifier() else "fn"
        failure = ("not_written", f"{name} still raises NotImplementedError"
                   f"{f' ({hint})' if hint else ''}: write its body in place of the raise, "
                   f"then run the check again.")
    except Exception as e:                      # noqa: BLE001 - explained, not hidden
        failure = ("exception", "fn raised " + explain_exception(e))
    names = [f"W{i + 1}" for i in range(len(weights))] + [f"b{i + 1}" for i in range(len(biases))]
    given = zip(names + ["x", "y"], [*weights, *biases, *rest], w_in + b_in + rest_in)
    changed = [(name, before, after) for name, before, after in given
               if isinstance(before, np.ndarray) and not (
                   isinstance(after, np.ndarray) and after.shape == before.shape
                   and np.array_equal(after, before))]
    return result, failure, changed


def _mutation_findings(report, changed, grads=None):
    """Explain inputs that fn changed in place; grads {"dW1": …} (those fn returned, else the
    reference) estimate η from each change, W_before − W_after = η·dW."""
    if not changed:
        return
    names = [name for name, _, _ in changed]
    etas = [_fit_factor(np.asarray(before, float) - np.asarray(after, float), grads["d" + name])
            if grads and "d" + name in grads and
            np.shape(after) == np.shape(before) == np.shape(grads["d" + name]) else None
            for name, before, after in changed]
    if all(e is not None and e > 0 for e in etas) and max(etas) - min(etas) <= 1e-6 * max(etas):
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


def _tolerance(got):
    """RTOL, or the precision of a float32 (1e-5) or float16 (1e-2) result."""
    return {np.dtype(np.float32): 1e-5, np.dtype(np.float16): 1e-2}.get(np.asarray(got).dtype, RTOL)


def _same(got, ref):
    """got equals ref: their relative error (gradcheck.rel_error) is within got's tolerance."""
    return rel_error(got, ref) <= _tolerance(got)


def _fmt_err(e, tol=RTOL):
    """A table cell for a relative error: '< 1e-7 ✓', '3.1e-06 ✓' (within tol) or '2.0e-01 ✗'."""
    if e is None or not np.isfinite(e):
        return "" if e is None else "—"
    return "< 1e-7 ✓" if e < RTOL else f"{e:.1e} {'✓' if e <= tol else '✗'}"


# --- Naming the mistake behind wrong values ---

def _factor_sentence(c, B, per_sample=False):
    """A sentence explaining a constant factor c (those of ``bugs.MISTAKES``: sign, ½, 2, B or
    1/B, alone or combined), or None if c = 1. per_sample: the arrays are deltas (no mean), so a
    factor 1/B is a mean taken too early rather than twice."""
    if abs(c - 1) < 1e-6:
        return None
    constants = [(m.factor, m.advice) for m in MISTAKES.values() if isinstance(m.factor, float)]
    combos = [combo for n in (1, 2) for combo in itertools.combinations(constants, n)
              if not {2.0, 0.5} <= {f for f, _ in combo}]          # ×2 and ×½ would cancel
    names = ("deltas_summed", "deltas_averaged") if per_sample else ("missing_mean",
                                                                      "mean_taken_twice")
    batch = [(1.0, None)] + [(B if MISTAKES[n].factor == "B" else 1.0 / B,
                              MISTAKES[n].advice.format(B=B)) for n in names if B > 1]
    for combo, (b_factor, b_sentence) in itertools.product(combos + [()], batch):
        f = np.prod([f for f, _ in combo]) * b_factor
        if (combo or b_sentence) and abs(c - f) <= 1e-6 * abs(f):
            return "; ".join([s for _, s in combo] + ([b_sentence] if b_sentence else [])) + "."
    return (f"exactly {c:.4g} times the right value: a stray constant factor (did you multiply "
            f"by the learning rate inside backprop? The update W -= η·dW belongs outside).")


def _diagnose_values(report, setting, name, got, ref):
    """Explain why got, of the right shape, differs from ref; add the finding. True if it matched.

    Tried in turn: another forward array in its place; all zeros; a classic mistake (exactly,
    or times a constant factor for the backward pass); an updated W2; a reshape for a transpose.
    """
    if _same(got, ref):
        return True
    forward = setting.what == "forward"
    for other in ("z2", "a1", "z1") if forward else ():
        value = setting.pick(setting.ref, other)
        if other != name and value.shape == ref.shape and _same(got, value):
            report.add("wrong_array", [name], f"{name} holds {other}, not {name}.")
            return False
    if not forward and not np.any(got):
        report.add("zero", [name], f"{name} is all zeros: nothing was ever added to it "
                                   f"(an accumulator created but not filled, or overwritten).")
        return False
    for mistakes, v in [([], ref)] + [(m, setting.pick(v, name)) for m, v in setting.variants]:
        c = _fit_factor(got, v)
        if c is None or (forward and abs(c - 1) > 1e-6):
            continue
        for m in mistakes:
            report.add(m.kind, [name], m.advice)
        sentence = _factor_sentence(c, setting.B, per_sample=setting.what == "deltas")
        if sentence:
            report.add("sign" if abs(c + 1) < 1e-6 else "factor", [name],
                       sentence[0].upper() + sentence[1:])
        return False
    # δ1 sent back through a W2 that was already updated: δ1 = ((W2 − ηG)ᵀ δ2) ⊙ σ'(z1).
    eta = _fit_factor(ref - got, setting.pick(setting.updated, name)) \
        if name in ("dW1", "db1", "δ1") else None
    if eta is not None and eta > 0:
        report.add("updated_w2", [name],
                   MISTAKES["updated_weights"].advice.format(eta=f"{eta:.3g}"))
        return False
    if got.ndim == 2 and ref.ndim == 2 and _same(got, ref.T.reshape(ref.shape)):
        report.add("reshape", [name],
                   f"{name} holds the right numbers in the wrong places: .reshape{ref.shape} keeps "
                   f"the order of the numbers and only regroups them; a transpose (.T) is what "
                   f"turns {ref.shape[::-1]} into {ref.shape}.")
        return False
    hint = ("check z = W @ a_prev + b and a = σ(z), layer by layer, against the notebook 02 "
            "formulas" if forward else "matches none of the classic mistakes; print it next to "
            "the reference and look at its first row, or check the step that produces it")
    report.add("values", [name], f"{name} has the right shape but wrong values (relative error "
                                 f"{rel_error(got, ref):.1e}){';' if forward else ' and'} {hint}.")
    return False


def _diagnose_shape(report, setting, name, got, ref, form):
    """Explain a wrong shape for array `name` (``explain_shape``). Returns got transposed or
    flattened when that has the right shape and its values are still to be checked, else None."""
    right = got.ndim == 2 and got.shape == ref.shape[::-1] and _same(got.T, ref)
    kind, sentence = explain_shape(name, got.shape, ref.shape, what=setting.what, form=form,
                                   sizes=setting.sizes, batch=setting.B, values_right=right)
    report.add(kind, [name], sentence)
    if kind == "transpose" and not right:
        return got.T
    return got.reshape(ref.shape) if kind == "column" else None


# --- Form detection (one sample or batch) ---

def _signature_says_batch(fn):
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return len(params) >= 3 and (params[2][:1].isupper() or "batch" in params[2].lower())


def _choose_form(fn, batched, score):
    """(batched, note): whether fn is checked as a one-sample or a batch function.

    score(batched): 0 = raised, 1… = wrong, 2 = right (``_check_on``). The name of fn's third
    argument gives the first guess; the other form wins only if it does better.
    """
    if batched is not None:
        return batched, ""
    hint = _signature_says_batch(fn)
    s_hint = score(hint)
    if s_hint >= 2:
        return hint, ""
    s_other = score(not hint)
    guessed, other = ("a batch", "one sample") if hint else ("one sample", "a batch")
    if s_other >= 2 and s_hint > 0:
        return hint, (f"right for {other}, but not for {guessed} (its argument is named "
                      f"{'X' if hint else 'x'}); pass batched={not hint} if the other form is "
                      f"what you meant.")
    if s_other > s_hint:
        return (not hint), ""
    if s_other == s_hint:
        return hint, (f"going by the name of its third argument ({'X' if hint else 'x'}); pass "
                      f"batched={not hint} if it takes {other}.")
    return hint, ""


# --- What fn returned, as named arrays ---

def _as_array(value):
    try:
        arr = np.asarray(value)
    except Exception:                           # noqa: BLE001
        return None
    return arr if arr.dtype.kind in "fiub" else None


def _returned_forward(report, result):
    """[(name, array or None)] from a forward pass's result (a2, or (zs, activations)); or None."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2
            and all(isinstance(p, (list, tuple)) for p in result)):
        return [("a2", _as_array(result))]
    zs, acts = result
    if len(zs) != 2 or len(acts) not in (2, 3):
        report.add("count", [], f"fn returned {len(zs)} z's and {len(acts)} activations; expected "
                                f"zs = [z1, z2] and activations = [x, a1, a2] (or [a1, a2]).")
        return None
    names = ["z1", "z2"] + (["x", "a1", "a2"] if len(acts) == 3 else ["a1", "a2"])
    return list(zip(names, [_as_array(a) for a in list(zs) + list(acts)]))


def _returned_deltas(report, result):
    """[("δ1", Δ1), ("δ2", Δ2)] from a deltas function's result; or None."""
    if isinstance(result, np.ndarray) or not isinstance(result, (list, tuple)) or len(result) != 2:
        listed = isinstance(result, (list, tuple))
        got = f"{len(result)} things" if listed else f"a {type(result).__name__}"
        report.add("count" if listed else "type", [], f"fn returned {got}; expected a list "
                   f"[δ1, δ2], one δ per layer, input side first.")
        return None
    arrays = [_as_array(r) for r in result]
    if any(a is None for a in arrays):
        report.add("type", [], "fn returned something that is not a numeric array.")
        return None
    return list(zip(("δ1", "δ2"), arrays))


def _returned_backprop(report, result):
    """[("dW1", …), ("db1", …), ("dW2", …), ("db2", …)] from (nabla_w, nabla_b); or None."""
    if isinstance(result, np.ndarray) or not isinstance(result, (tuple, list)):
        report.add("type", [], f"fn returned a {type(result).__name__}; expected a pair "
                               f"(nabla_w, nabla_b) of lists: ([dW1, dW2], [db1, db2]).")
        return None
    if len(result) != 2:
        report.add("count", [], f"fn returned {len(result)} things; expected a pair "
                                f"(nabla_w, nabla_b) = ([dW1, dW2], [db1, db2]).")
        return None
    parts = []
    for what, part in zip(("nabla_w", "nabla_b"), result):
        if isinstance(part, np.ndarray) or not isinstance(part, (list, tuple)):
            report.add("type", [], f"{what} is a {type(part).__name__}; expected a list with one "
                                   f"array per layer, e.g. [dW1, dW2].")
            return None
        if len(part) != 2:
            report.add("count", [], f"{what} holds {len(part)} arrays; expected 2, one per layer "
                                    f"({'[dW1, dW2]' if what == 'nabla_w' else '[db1, db2]'}).")
            return None
        parts.append([_as_array(p) for p in part])
        if any(a is None for a in parts[-1]):
            report.add("type", [], f"{what} holds something that is not a numeric array.")
            return None
    return list(zip(GRADIENT_NAMES, (parts[0][0], parts[1][0], parts[0][1], parts[1][1])))


def _order_mistake(report, setting, returned):
    """Report a list in the wrong order (deltas reversed, layers or pair swapped). True if so."""
    got = [np.shape(a) for _, a in returned]                # [δ1, δ2] or [dW1, db1, dW2, db2]
    exp = [np.shape(setting.pick(setting.ref, name)) for name, _ in returned]
    if setting.what == "deltas" and got == exp[::-1]:
        report.add("order", [], "the list is [δ2, δ1], the order backprop finds them in; return "
                                "[δ1, δ2], input side first (e.g. deltas[::-1]).")
    elif setting.what == "backprop" and got == [exp[1], exp[0], exp[3], exp[2]]:
        report.add("order", [], "the pair is (nabla_b, nabla_w): return (nabla_w, nabla_b), "
                                "weights first.")
    elif setting.what == "backprop" and (got[0], got[2]) == (exp[2], exp[0]):
        report.add("order", ["nabla_w", "nabla_b"],
                   "the lists run from the output layer back ([dW2, dW1]), the order backprop "
                   "computes them in; list them input first: [dW1, dW2] (e.g. nabla_w[::-1]).")
    else:
        return False
    return True


_RETURNED = {"forward": (_returned_forward, "a2"), "deltas": (_returned_deltas, "[delta1, delta2]"),
             "backprop": (_returned_backprop, "nabla_w, nabla_b")}


# --- Checking fn on one network ---

def _check_array(report, setting, name, got, ref):
    """Compare one returned array with the reference; add its findings and row. True if right."""
    if got is None:
        report.add("type", [name], f"{name} is not a numeric array.")
        return False
    e_ref = e_num = None
    matched = False
    if not np.all(np.isfinite(got)):
        report.add("nan", [name], f"{name} contains NaN or inf: an overflow (np.exp of a large "
                                  f"number?) or a 0/0; use mnistnet.functions.sigmoid, which "
                                  f"never overflows, and check for divisions.")
    elif float(np.abs(got).max(initial=0)) > HUGE:
        report.add("overflow", [name], f"{name} holds values as large as {np.abs(got).max():.1e}"
                                       f": an overflow (np.exp of a large number?) or a runaway "
                                       f"factor.")
    elif got.shape != ref.shape:
        fixed = _diagnose_shape(report, setting, name, got, ref, report.form)
        if fixed is not None and fixed.shape == ref.shape:
            _diagnose_values(report, setting, name, fixed, ref)
    else:
        e_ref = rel_error(got, ref)
        matched = _diagnose_values(report, setting, name, got, ref)
        if setting.numerical is not None:
            e_num = rel_error(got, setting.numerical[name])
            if matched and e_num > _tolerance(got):
                report.add("numerical", [name], f"{name} matches the reference but not the "
                                                f"numerical gradient (relative error {e_num:.1e}).")
                matched = False
    cell = _fmt_err(e_ref, _tolerance(got)) or ("wrong shape" if got.shape != ref.shape else "—")
    num_cell = _fmt_err(e_num, _tolerance(got))
    report.rows.append((name, str(got.shape), str(ref.shape), cell, num_cell))
    return matched


def _check_on(what, fn, sizes, batched, seed):
    """Check fn on one network: (report, score), the score for ``_choose_form``: 0 if fn raised,
    2 if right, else 1 + (arrays right)/10 (+ 0.05 per gradient of the right shape)."""
    report = CheckReport(what, "batch" if batched else "one sample", [sizes])
    net, X, y = _problem(sizes, seed, batched)
    args = (X, y) if batched else (X[0], int(y[0]))
    result, failure, changed = _call(fn, list(net.weights), list(net.biases),
                                     *args[:1 if what == "forward" else 2])
    setting = _setting(what, net, X, y, batched, seed)
    unpack, should_return = _RETURNED[what]
    returned = None
    if failure is not None:
        report.add(failure[0], [], failure[1])
    elif result is None:
        report.add("type", [], f"fn returned None: did you forget `return {should_return}`?")
    else:
        returned = unpack(report, result)
    if returned is None or (what != "forward" and _order_mistake(report, setting, returned)):
        _mutation_findings(report, changed, setting.ref if what == "backprop" else None)
        return report, (0 if failure else 1)
    _mutation_findings(report, changed, dict(returned) if what == "backprop" else None)
    good = sum(_check_array(report, setting, name, got, setting.pick(setting.ref, name))
               for name, got in returned)
    shapes_right = sum(got is not None and got.shape == setting.pick(setting.ref, name).shape
                       for name, got in returned) if what == "backprop" else 0
    return report, (2 if report.ok else 1 + good / 10 + 0.05 * shapes_right)


def _run_all(what, fn, batched, seed):
    """Detect the form, then check on every network of SIZES; stop at the first that fails."""
    attempt = functools.cache(lambda b: _check_on(what, fn, list(SIZES[0]), b, seed))
    b, note = _choose_form(fn, batched, lambda b: attempt(b)[1])
    report = attempt(b)[0]
    if not report.ok:
        report.note = note if report.kinds != {"not_written"} else ""
        return report
    report.sizes = [list(s) for s in SIZES]
    for i, sizes in enumerate(SIZES[1:], start=1):
        rep, _ = _check_on(what, fn, list(sizes), b, seed + i)
        if not rep.ok:
            report.sizes = [list(s) for s in SIZES[:i + 1]]
            report.rows = rep.rows
            for f in rep.findings:
                msg = f"right on {list(SIZES[0])} but not on {list(sizes)}: {f.message}"
                if f.kind in ("exception", "shape", "count"):
                    msg += (" Is a size written into your code (30, 784, …)? Take sizes from the "
                            "arrays instead, e.g. W1.shape[0].")
                report.add("other_size" if f.kind != "exception" else "exception", f.arrays, msg)
            break
    return report


# --- The three checkers ---

def check_forward(fn, *, batched=None, seed=0):
    """Check a hand-written forward pass.

    Inputs:
    - fn: ``fn(weights, biases, x) -> a2 (10,)`` for one image x (784,), or ``-> (zs,
      activations)``, zs = [z1 (30,), z2 (10,)], activations = [x, a1, a2] (or [a1, a2]); or
      the batch form X (B, 784) -> A2 (B, 10) (or the lists, one row per sample).
    - batched: None (detect), True or False; seed: an int choosing the networks and inputs.
    Returns:
    - a CheckReport (``.ok``; print it for the hints). Diagnoses: exceptions, column vectors, a
      batch transposed, the output left as z2, a missing sigmoid, missing biases, the wrong
      array returned, NaNs, inputs changed in place, a template not written yet.
    """
    return _run_all("forward", fn, batched, seed)


def check_deltas(fn, *, batched=None, seed=0):
    """Check a hand-written computation of the deltas δ1 = ∂C/∂z1 and δ2 = ∂C/∂z2.

    Inputs:
    - fn: ``fn(weights, biases, x, y) -> [delta1 (30,), delta2 (10,)]`` for one image x (784,)
      and its integer label y; or the batch form X (B, 784), y (B,) -> [Delta1 (B, 30),
      Delta2 (B, 10)], one row per sample, not divided by B.
    - batched: None (detect), True or False; seed: an int choosing the networks and inputs.
    Returns:
    - a CheckReport (``.ok``; print it for the hints). Diagnoses: the list reversed, wrong
      shapes, sign, factor 2, σ'(a) for σ'(z), a missing σ', the label as target, an updated
      W2, a misplaced 1/B, NaNs, inputs changed in place, exceptions, a template not written.
    """
    return _run_all("deltas", fn, batched, seed)


def check_backprop(fn, *, batched=None, seed=0):
    """Check a hand-written backprop and explain each mistake in one sentence.

    Inputs:
    - fn: ``fn(weights, biases, x, y) -> (nabla_w, nabla_b)`` for one image x (784,) and its
      integer label y: nabla_w = [dW1 (30, 784), dW2 (10, 30)], nabla_b = [db1 (30,), db2 (10,)],
      the gradient of C = ½‖a − t‖²; or the batch form X (B, 784), y (B,) -> the gradient of
      the mean cost. Class-based code with layers: wrap it with ``from_layers``.
    - batched: None (detect), True or False; seed: an int choosing the networks and inputs
      (the second network uses seed + 1).
    Returns:
    - a CheckReport: ``.ok`` (every array matches the reference and the numerical gradient),
      ``print(report)`` for the table and the hints. Diagnoses: wrong types, counts and order,
      wrong shapes (with the fix), biases collapsed or broadcast, constant factors (sign, ½,
      1/B), σ'(a) for σ'(z), a missing σ', the label as target, z1 for a1, δ1 from an updated
      W2, inputs changed in place, NaNs and overflows, exceptions, a template not written yet.
    """
    return _run_all("backprop", fn, batched, seed)
