"""Explain what went wrong in a learner's code: which expression, which shapes, what fix.

numpy's shape errors name shapes, not expressions. ``explain_exception`` finds the failing
sub-expression (from the instruction's columns on Python ≥ 3.11, by trying the line's
candidates on 3.10), reads its operands in the failing frame without running the learner's code
again, and names a rearrangement that works (``W2.T @ delta2`` for ``W2 @ delta2``).
``explain_shape`` does the same for an array returned with the wrong shape.
"""

import ast
import inspect
import itertools
import linecache
import re
import types
from pathlib import Path

import numpy as np

from .bugs import MISTAKES

__all__ = ["explain_exception", "explain_shape", "safe_message"]

_SHAPE_WORDS = ("mismatch in its core dimension", "not aligned", "could not be broadcast")


def safe_message(error):
    """The first line of ``str(error)`` ("" if empty), even if the learner's __str__ raises."""
    try:
        text = str(error)
    except Exception as e:                      # noqa: BLE001 - the learner's __str__ failed
        return f"(its message cannot be shown: {type(error).__name__}.__str__ raised " \
               f"{type(e).__name__})"
    return text.splitlines()[0].rstrip(" .") if text.strip() else ""


def _user_frame(tb):
    """The deepest traceback entry in the learner's code: not numpy (nor its ``<__array_function__
    internals>`` of numpy < 1.25), this module, check.py or gradcheck.py. Code without readable
    source (``exec``, a REPL) is kept: it is explained from its locals."""
    np_dir, here = str(Path(np.__file__).parent), Path(__file__).resolve()
    ours = {str(here), str(here.with_name("check.py")), str(here.with_name("gradcheck.py"))}
    chosen = None
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        numpy_code = fname.startswith(("<__array_function__", np_dir)) or \
            str(tb.tb_frame.f_globals.get("__name__", "")).startswith("numpy")
        if not numpy_code and str(Path(fname).resolve()) not in ours:
            chosen = tb
        tb = tb.tb_next
    return chosen


def _positions(code):
    """(line, end line, column, end column) of each instruction (Python ≥ 3.11), or None."""
    get = getattr(code, "co_positions", None)
    return list(get()) if get is not None else None


def _segment(tb):
    """(whole source line, failing sub-expression or None) of a traceback entry."""
    frame, lineno = tb.tb_frame, tb.tb_lineno
    line = linecache.getline(frame.f_code.co_filename, lineno, frame.f_globals).rstrip("\n")
    try:
        start, end, col, end_col = (_positions(frame.f_code) or {})[tb.tb_lasti // 2]
        if start == end == lineno and col is not None and end_col is not None:
            return line.strip(), line.encode()[col:end_col].decode()
    except (IndexError, KeyError, TypeError, ValueError, UnicodeDecodeError):
        pass
    return line.strip(), None


def _static_attribute(obj, name):
    """obj.name if it is stored data; None for a property or other descriptor (never runs them)."""
    if isinstance(obj, np.ndarray):
        return obj.T if name == "T" else None           # numpy's own code
    try:
        value = inspect.getattr_static(obj, name)
        if isinstance(value, types.MemberDescriptorType):                  # a __slots__ entry
            return value.__get__(obj, type(obj))
    except AttributeError:
        return None
    descriptor = hasattr(type(value), "__get__") and not inspect.isroutine(value)
    return None if descriptor and not isinstance(obj, types.ModuleType) else value


def _safe_eval(node, frame):
    """Evaluate a name, .attribute, [constant or name] or numpy call in the frame, else None.

    Never runs the learner's code: attributes are read statically, only lists, tuples, dicts and
    arrays are indexed, only numpy's and mnistnet.functions' functions are called."""
    if isinstance(node, ast.Name):
        scope = next((s for s in (frame.f_locals, frame.f_globals, frame.f_builtins)
                      if node.id in s), {})
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        obj = _safe_eval(node.value, frame)
        return None if obj is None else _static_attribute(obj, node.attr)
    if isinstance(node, ast.Subscript):
        obj, idx = _safe_eval(node.value, frame), node.slice
        negative = isinstance(idx, ast.UnaryOp) and isinstance(idx.op, ast.USub)
        key = (idx.value if isinstance(idx, ast.Constant) else
               -idx.operand.value if negative and isinstance(idx.operand, ast.Constant) else
               _safe_eval(idx, frame) if isinstance(idx, ast.Name) else None)
        if type(obj) in (list, tuple, dict, np.ndarray) and isinstance(key, (int, str, np.integer)):
            try:
                return obj[key]
            except (IndexError, KeyError, TypeError):
                return None
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
        func = _safe_eval(node.func, frame)
        args = [_safe_eval(a, frame) for a in node.args]
        if str(getattr(func, "__module__", "")).startswith(("numpy", "mnistnet.functions")) and \
                not node.keywords and all(type(a) in (np.ndarray, int, float) for a in args):
            try:
                return func(*args)
            except Exception:                   # noqa: BLE001
                return None
    return None


def _shape(value):
    """The shape of an array or a number; None for anything else (asks no learner object)."""
    ok = isinstance(value, (np.ndarray, np.generic, int, float, complex))
    return tuple(np.shape(value)) if ok else None


def _src(node, text):
    return ast.get_source_segment(text, node) or "?"


def _transposed(src):
    """Source text of the transpose of an operand: W2 -> W2.T, W2.T -> W2."""
    if src.endswith(".T"):
        return src[:-2]
    return f"{src}.T" if re.fullmatch(r"[\w.\[\]]+", src) else f"({src}).T"


def _product_shape(left, right):
    try:
        return np.shape(np.zeros(left) @ np.zeros(right))
    except ValueError:
        return None


def _matmul_advice(a_src, b_src, sa, sb, fmt="{} @ {}"):
    """Which rearrangement of A @ B works, as a sentence ("" if none); fmt writes the product
    the way the learner did: "{} @ {}", "np.dot({}, {})", …."""
    options = [(fmt.format(_transposed(a_src), b_src), sa[::-1], sb),
               (fmt.format(a_src, _transposed(b_src)), sa, sb[::-1]),
               (fmt.format(b_src, a_src), sb, sa),
               (fmt.format(b_src, _transposed(a_src)), sb, sa[::-1])]
    if len(sa) == 2 and len(sb) == 2:         # samples in rows: keep the batch first
        batch = sa[0] if sa[0] not in sb else sb[0] if sb[0] not in sa else None
        options.sort(key=lambda o: (_product_shape(o[1], o[2]) or (None,))[0] != batch)
    for text, left, right in options:
        shape = _product_shape(left, right)
        if shape is None or len(left) == len(right) == 1:    # a dot product is never meant
            continue
        ranks = sorted((len(sa), len(sb)))
        why = (". Weights are stored (out, in): W @ a_prev goes forward (in → out), Wᵀ @ δ goes "
               "backward (out → in), as in δ1 = (W2ᵀ δ2) ⊙ σ'(z1)." if ranks == [1, 2] else
               ". With samples in rows every product keeps the batch first: A_prev @ W.T "
               "forward, Δ @ W backward." if ranks == [2, 2] else ".")
        return f" `{text}` works and gives shape {shape}{why}"
    if len(sa) == len(sb) == 1:
        return (f" Two vectors: if you meant the weight gradient, that is an outer product, "
                f"np.outer({a_src}, {b_src}), shape ({sa[0]}, {sb[0]}).")
    return ""


def _product_operands(node, text):
    """(A, B, how it is written) for A @ B, np.dot(A, B), np.matmul(A, B) or A.dot(B); else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return node.left, node.right, "{} @ {}"
    if isinstance(node, ast.Call) and len(node.args) == 2 and \
            _src(node.func, text).split(".")[-1] in ("dot", "matmul"):
        return node.args[0], node.args[1], _src(node.func, text) + "({}, {})"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr == "dot" and len(node.args) == 1:
        return node.func.value, node.args[0], "{}.dot({})"
    return None


def _failing_node(line, frame, what):
    """The sub-expression of ``line`` that raised, found without 3.11 positions, or None.

    what: "product" (@, np.dot, np.matmul) or "broadcast" (+, -, *, / and ``W -= lr * grad``).
    Candidates are tried on arrays of their operands' shapes, innermost and leftmost first; the
    first that fails is the one, else the first that can't be tried."""
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return None
    depth, candidates = {tree: 0}, []
    for n in ast.walk(tree):                         # breadth first: parents come first
        depth.update((child, depth[n] + 1) for child in ast.iter_child_nodes(n))
        if what == "product":
            operands = _product_operands(n, line)
        elif isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Add, ast.Sub, ast.Div)):
            operands = (n.left, n.right)
        else:
            operands = (n.target, n.value) if isinstance(n, ast.AugAssign) else None
        if operands is not None:
            candidates.append((-depth[n], n.col_offset, n, operands[0], operands[1]))
    unknown = None
    for *_, n, a, b in sorted(candidates, key=lambda c: c[:2]):
        sa, sb = _shape(_safe_eval(a, frame)), _shape(_safe_eval(b, frame))
        if sa is None or sb is None:
            unknown = unknown or n
        elif what == "product" and _product_shape(sa, sb) is None:
            return n
        elif what != "product":
            try:
                np.broadcast_shapes(sa, sb)
            except ValueError:
                return n
    return unknown


def explain_exception(error, show_line=True):
    """Explain an exception raised inside a learner's function in plain words.

    For numpy shape errors (products, elementwise operations, ``W -= lr * grad``) it names the
    operands, their shapes and a rearrangement that works; without readable source, from the
    failing frame's arrays. It never runs the learner's code again.
    Inputs:
    - error: the exception, with its ``__traceback__``.
    - show_line: quote the whole source line that failed (False: only the expression).
    Returns:
    - one or two sentences, starting with the exception's type and the line, e.g.
      "ValueError in `delta1 = (W2 @ delta2) * …`: `W2 @ delta2` multiplies …".
    """
    kind, first = type(error).__name__, safe_message(error)
    tb = _user_frame(error.__traceback__)
    if tb is None:
        return f"{kind}: {first}"
    line, segment = _segment(tb)
    frame = tb.tb_frame
    is_shape_error = isinstance(error, ValueError) and any(w in first for w in _SHAPE_WORDS)
    if not line:
        return _explain_from_locals(kind, first, tb, is_shape_error)
    node, text = _failing_node_of(line, segment, frame, first, is_shape_error)
    if node is not None and segment is None:
        segment = _src(node, text)
    where = f"in `{line}`" if show_line else (f"in `{segment}`" if segment else "")
    head = f"{kind} {where}: {first}.".replace(" :", ":")
    if node is None or not is_shape_error:
        return head
    explained = (_explain_product(node, text, frame) or _explain_update(node, text, frame, first)
                 or _explain_broadcast(node, text, first))
    return f"{kind}{' ' + where if show_line else ''}: {explained}" if explained else head


def _failing_node_of(line, segment, frame, first, is_shape_error):
    """(the failing node, the text its positions refer to), or (None, line)."""
    if segment is not None:                    # Python ≥ 3.11: the failing expression itself
        for mode in ("eval", "exec"):
            try:
                tree = ast.parse(segment.strip(), mode=mode)
            except SyntaxError:
                continue
            if mode == "eval" or len(tree.body) == 1:
                return (tree.body if mode == "eval" else tree.body[0]), segment.strip()
    if is_shape_error:                         # Python 3.10, or no usable position
        return _failing_node(line, frame, "broadcast" if "broadcast" in first else "product"), line
    return None, line


def _explain_product(node, text, frame):
    """The sentence for a failing A @ B, np.dot(A, B), … ("" if node is not one)."""
    a, b, fmt = _product_operands(node, text) or (None, None, None)
    sa, sb = (_shape(_safe_eval(a, frame)), _shape(_safe_eval(b, frame))) if a else (None, None)
    if sa is None or sb is None:
        return ""
    a_src, b_src = _src(a, text), _src(b, text)
    k_a, k_b = (sa[-1] if sa else None), (sb[0] if len(sb) == 1 else sb[-2] if sb else None)
    return (f"`{fmt.format(a_src, b_src)}` multiplies {a_src} of shape {sa} by {b_src} of shape "
            f"{sb}; a matrix product needs the inner sizes to agree ({k_a} ≠ {k_b})."
            + _matmul_advice(a_src, b_src, sa, sb, fmt))


def _message_shapes(first, as_text=False):
    """The shapes a broadcast error names: "(30,784) (784,30)" -> [(30, 784), (784, 30)]."""
    found = re.findall(r"\(([\d, ]*)\)", first.split("shapes", 1)[-1])
    return found if as_text else [tuple(int(n) for n in f.split(",") if n.strip()) for f in found]


def _explain_update(node, text, frame, first):
    """The sentence for a failing update in place, ``W -= lr * grad`` ("" if node is not one)."""
    shapes = _message_shapes(first)
    if not isinstance(node, ast.AugAssign) or len(shapes) < 2:
        return ""
    (st, sv), target, value = shapes[:2], _src(node.target, text), _src(node.value, text)
    grad = next((_src(n, text) for n in ast.walk(node.value) if isinstance(
        n, (ast.Name, ast.Attribute, ast.Subscript)) and _shape(_safe_eval(n, frame)) == sv), value)
    msg = f"`{_src(node, text)}` updates {target} of shape {st} in place with `{value}` of shape "
    msg += str(sv)
    if len(st) == 2 and sv == st[::-1]:
        return (msg + f": {grad} is the transpose of {target}. A weight gradient has the shape of "
                f"its weights, (n_out, n_in) = outer(δ, a_in), δ first: swap the operands of the "
                f"outer product that made {grad}: np.outer(delta, a_in), or "
                f"np.atleast_2d(delta).T * np.atleast_2d(a_in) in row vectors.")
    return msg + f"; an update in place needs a value of shape {st} (or one that broadcasts to it)."


def _explain_broadcast(node, text, first):
    """The sentence for a failing elementwise A * B, A + B, … ("" if node is not one)."""
    shapes = _message_shapes(first, as_text=True)
    if not isinstance(node, ast.BinOp) or "broadcast" not in first or len(shapes) < 2:
        return ""
    return (f"`{_src(node, text)}` combines shape ({shapes[0]}) with shape ({shapes[1]}) "
            f"elementwise, which needs matching sizes." + (
                " If you meant a matrix product use @ (with the transpose that makes the inner "
                "sizes agree); if you meant a weight gradient, it is an outer product: "
                "np.outer(δ, a_prev)." if isinstance(node.op, ast.Mult) else ""))


def _explain_from_locals(kind, first, tb, is_shape_error):
    """The explanation when the failing line's source cannot be read: from the frame's arrays."""
    name = tb.tb_frame.f_code.co_name
    where = f"at line {tb.tb_lineno}" + (f" of `{name}`" if name.isidentifier() else "")
    msg = (f"{kind} {where} (its source cannot be read: code run with exec, typed into a REPL or "
           f"piped in): {first}.")
    arrays = {k: v for k, v in tb.tb_frame.f_locals.items() if type(v) is np.ndarray}
    if not is_shape_error or not arrays:
        return msg
    msg += " Its arrays at that moment: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    if "broadcast" in first:
        owners = [(s, [k for k, v in arrays.items() if v.shape == s])
                  for s in _message_shapes(first)[:2]]
        parts = [f"{s} is the shape of {', '.join(o)}" for s, o in owners if o]
        return msg + "." + (" " + "; ".join(parts) + ": these cannot be combined elementwise."
                            if parts else "")
    for (a, va), (b, vb) in itertools.permutations(arrays.items(), 2):
        try:
            np.zeros(va.shape) @ np.zeros(vb.shape)
        except ValueError as e:
            if safe_message(e) == first:
                return (msg + f". `{a} @ {b}` fails this way: {a} {va.shape}, {b} {vb.shape}."
                        + _matmul_advice(a, b, va.shape, vb.shape))
    return msg + "."


# --- An array returned with the wrong shape ---

def explain_shape(name, shape, expected, *, what, form, sizes, batch, values_right=False):
    """Say why an array a learner's function returned has the wrong shape, and how to fix it.

    Inputs: name ("dW1", "db1", …, "δ1", "δ2", "x", "z1", "a1", "z2", "a2"); shape and the
    expected one; what ("forward", "deltas", "backprop"); form ("one sample", "batch"); sizes
    [n0, n1, n2]; batch B; values_right (a transposed array's transpose holds the right values).
    Returns: (kind, sentence): kind "transpose", "column", "bias_scalar", "bias_axis",
    "bias_rows", "bias_matrix", "per_sample" or "shape"; the sentence names the shapes and fix.
    """
    shape, exp = tuple(shape), tuple(expected)
    formula, fix = _shape_hints(what, form, sizes)[name]
    n, batched, bias = (exp[0] if exp else None), form == "batch", name.startswith("db")
    if len(exp) == 2 and shape == exp[::-1]:
        right = " — its values are right, only transposed." if values_right else "."
        return "transpose", f"{name} has shape {shape}; expected {exp}{formula}: {fix}{right}"
    if len(exp) == 1 and shape in ((n, 1), (1, n)):
        like = " like the bias itself" if bias else ""
        hint = (": W @ x with x (784,) gives a 1-D vector; a (784, 1) column gives a column "
                "(use .ravel())" if what == "forward" else f"{like} (drop keepdims=True)"
                if batched and shape[0] == 1 else
                f"{like} (use .ravel(), and keep x and the deltas 1-D)")
        return "column", f"{name} has shape {shape}; expected {exp}, a 1-D vector{hint}."
    if bias and shape in ((), (1,)):
        how = ("sum (or average) over the samples only, axis=0, not over everything"
               if batched else "the bias gradient is the δ vector itself, not its sum")
        return "bias_scalar", (f"{name} is a single number; expected one value per unit, shape "
                               f"{exp}: {how}.")
    if bias and batched and shape == (batch,):
        return "bias_axis", MISTAKES["bias_wrong_axis"].advice.format(B=batch)
    if bias and batched and shape == (batch, n):
        return "bias_rows", (f"{name} has shape {shape}, one row per sample; average the rows: "
                             f"Δ.mean(axis=0), shape {exp}.")
    if bias and len(shape) == 2 and n in shape and shape != (n, n):
        return "bias_matrix", (f"{name} has shape {shape}, a matrix; the bias gradient is a vector "
                               f"of shape {exp} (= the δ of that layer"
                               f"{', averaged over the samples' if batched else ''}).")
    if len(exp) == 1 and shape == (n, n):
        return "bias_matrix", (f"{name} has shape {shape}, a matrix: a ({n},) vector met a "
                               f"({n}, 1) column and numpy broadcast them into ({n}, {n}); keep "
                               f"every vector 1-D, shape {exp}.")
    if name.startswith("dW") and batched and shape == (batch,) + exp:
        return "per_sample", (f"{name} has shape {shape}: one gradient per sample; average them "
                              f"over axis 0 to get {exp}.")
    return "shape", f"{name} has shape {shape}; expected {exp}{formula}."


def _shape_hints(what, form, sizes):
    """{name: (what the expected shape is, how to fix a transposed array)}."""
    n0, n1, n2 = sizes
    if what == "forward":
        fix = "with samples in rows the layer is X @ W.T + b (W @ X.T gives the transpose)"
        return dict.fromkeys(("x", "z1", "a1", "z2", "a2"),
                             (", one row per sample" if form == "batch" else "", fix))
    if what == "deltas":
        fix, one = "transpose it (samples in rows, as X)", form == "one sample"
        return {"δ1": (" = (W2ᵀ δ2) ⊙ σ'(z1), one value per hidden unit" if one else
                       " = (Δ2 @ W2) ⊙ σ'(Z1), one row per sample", fix),
                "δ2": (" = (a2 - t) ⊙ σ'(z2), one value per output" if one else
                       " = (A2 - T) ⊙ σ'(Z2), one row per sample", fix)}
    hints = {}
    for l, (d, a, n_out, n_in) in enumerate((("δ1", "x", n1, n0), ("δ2", "a1", n2, n1)), start=1):
        D, A = f"Δ{l}", "X" if l == 1 else "A1"
        hints[f"dW{l}"] = ((f" = outer({d} ({n_out},), {a} ({n_in},))",
                            f"swap the arguments: np.outer({d}, {a}), not np.outer({a}, {d})")
                           if form == "one sample" else
                           (f" = {D}ᵀ @ {A} / B with {D} (B, {n_out}), {A} (B, {n_in})",
                            "put the deltas first: Δᵀ @ A_prev (A_prevᵀ @ Δ is its transpose)"))
        hints[f"db{l}"] = (f" = {d}" if form == "one sample" else f" = {D}.mean(axis=0)",
                           "transpose it (.T)")
    return hints
