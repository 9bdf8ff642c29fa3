"""Explain what went wrong in a learner's code: which expression, which shapes, what fix.

numpy's own message for a shape error names shapes but not the expressions
they belong to: "matmul: Input operand 1 has a mismatch in its core dimension
0 … (size 10 is different from 30)". ``explain_exception`` walks the traceback
to the deepest frame of the learner's code, finds the failing sub-expression
(from the instruction's column positions on Python ≥ 3.11, by trying the
candidate products on the line on 3.10), reads its operands in that frame
without running any of the learner's code again, and writes one or two
sentences: the operands, their shapes, and a rearrangement that works, e.g.
``W2.T @ delta2`` for ``W2 @ delta2``. ``explain_shape`` does the same for an
array a learner's function returned with the wrong shape; the checkers of
``mnistnet.check`` use both.
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


def safe_message(error):
    """The first line of ``str(error)``, without ever raising.

    The error comes from the learner's code, so its ``__str__`` may itself be
    broken; then the message says so instead of crashing the checker.
    Inputs: error, an exception. Returns: a str ("" for an empty message).
    """
    try:
        text = str(error)
    except Exception as e:                      # noqa: BLE001 - the learner's __str__ failed
        kind = type(error).__name__
        return f"(its message cannot be shown: {kind}.__str__ raised {type(e).__name__})"
    return text.splitlines()[0].rstrip(" .") if text.strip() else ""


def _user_frame(tb):
    """The deepest frame of the traceback in the learner's code.

    Skipped: frames inside numpy, this module or the checkers (check.py, which
    calls the learner's function, and gradcheck.py, whose adapters do), and
    numpy's generated wrapper ``<__array_function__ internals>``, through which
    numpy < 1.25 runs np.dot, np.outer, …. A frame whose source cannot be read (code
    run with ``exec``, typed into a REPL or piped in) is the learner's code and is
    kept: it is then explained from its local variables.
    """
    np_dir = str(Path(np.__file__).parent)
    here = Path(__file__).resolve()
    ours = {str(here), str(here.with_name("check.py")), str(here.with_name("gradcheck.py"))}
    chosen = None
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        numpy_wrapper = fname.startswith("<__array_function__") or \
            str(tb.tb_frame.f_globals.get("__name__", "")).startswith("numpy")
        if not numpy_wrapper and not fname.startswith(np_dir) and \
                str(Path(fname).resolve()) not in ours:
            chosen = tb
        tb = tb.tb_next
    return chosen


def _positions(code):
    """(line, end line, column, end column) of each instruction of a code object, or None.

    Python 3.11 and later know them (``co_positions``); on 3.10 the failing
    sub-expression is found from the line instead (``_failing_node``).
    """
    get = getattr(code, "co_positions", None)
    return list(get()) if get is not None else None


def _segment(tb):
    """(whole source line, failing sub-expression or None) of a traceback entry."""
    frame, lineno = tb.tb_frame, tb.tb_lineno
    line = linecache.getline(frame.f_code.co_filename, lineno, frame.f_globals).rstrip("\n")
    segment = None
    try:
        positions = _positions(frame.f_code)
        if positions is not None:
            start, end, col, end_col = positions[tb.tb_lasti // 2]
            if start == end == lineno and col is not None and end_col is not None:
                segment = line.encode()[col:end_col].decode()
    except (IndexError, TypeError, ValueError, UnicodeDecodeError):
        pass
    return line.strip(), segment


_CONTAINERS = (list, tuple, dict, np.ndarray)


def _static_attribute(obj, name):
    """obj.name without running any of the learner's code (no property getter, no __getattr__).

    A numpy array's ``.T`` is numpy's own code and is allowed; any other
    attribute is looked up statically and given only if it is stored data (an
    instance attribute, a slot, a module's or class's plain value).
    """
    if isinstance(obj, np.ndarray):
        return obj.T if name == "T" else None
    try:
        value = inspect.getattr_static(obj, name)
    except AttributeError:
        return None
    if isinstance(value, types.MemberDescriptorType):          # a __slots__ entry
        try:
            return value.__get__(obj, type(obj))
        except AttributeError:
            return None
    if hasattr(type(value), "__get__") and not isinstance(obj, types.ModuleType) and \
            not inspect.isroutine(value):
        return None                                            # a property or other descriptor
    return value


def _safe_eval(node, frame):
    """Evaluate a name, .attribute, [subscript] or numpy call in the frame; None if not simple.

    Never runs the learner's code again: attributes are read statically (no
    property getters), subscripts only index lists, tuples, dicts and arrays,
    and only numpy's and mnistnet.functions' functions are called, on arrays.
    """
    if isinstance(node, ast.Name):
        for scope in (frame.f_locals, frame.f_globals, frame.f_builtins):
            if node.id in scope:
                return scope[node.id]
        return None
    if isinstance(node, ast.Attribute):
        obj = _safe_eval(node.value, frame)
        return None if obj is None else _static_attribute(obj, node.attr)
    if isinstance(node, ast.Subscript):
        obj = _safe_eval(node.value, frame)
        idx = node.slice
        if isinstance(idx, ast.Constant):
            key = idx.value
        elif isinstance(idx, ast.UnaryOp) and isinstance(idx.op, ast.USub) and \
                isinstance(idx.operand, ast.Constant):
            key = -idx.operand.value
        elif isinstance(idx, ast.Name):
            key = _safe_eval(idx, frame)
        else:
            return None
        if type(obj) not in _CONTAINERS or not isinstance(key, (int, str, np.integer)):
            return None
        try:
            return obj[key]
        except Exception:                       # noqa: BLE001
            return None
    if isinstance(node, ast.Call):
        func = _safe_eval(node.func, frame) if isinstance(node.func, (ast.Name, ast.Attribute)) \
            else None
        module = getattr(func, "__module__", "") or ""
        pure = module.startswith("numpy") or module.startswith("mnistnet.functions")
        if pure and not node.keywords:
            args = [_safe_eval(a, frame) for a in node.args]
            if all(type(a) in (np.ndarray, int, float) for a in args):
                try:
                    return func(*args)
                except Exception:               # noqa: BLE001
                    return None
    return None


def _shape(value):
    """The shape of an array or a number; None for anything else (asks no learner object)."""
    if isinstance(value, (np.ndarray, np.generic, int, float, complex)):
        return tuple(np.shape(value))
    return None


def _src(node, text):
    return ast.get_source_segment(text, node) or "?"


def _transposed(src):
    """Source text of the transpose of an operand: W2 -> W2.T, W2.T -> W2."""
    if src.endswith(".T"):
        return src[:-2]
    return f"{src}.T" if re.fullmatch(r"[\w.\[\]]+", src) else f"({src}).T"


def _result_first(l, r):
    try:
        return np.shape(np.zeros(l) @ np.zeros(r))[0]
    except (ValueError, IndexError):
        return None


def _matmul_advice(a_src, b_src, sa, sb, fmt="{} @ {}"):
    """Which rearrangement of A @ B works, best first, as a sentence ("" if none).

    fmt writes the product the way the learner did: "{} @ {}" or "np.dot({}, {})".
    """
    if sa is None or sb is None or not sa or not sb:
        return ""
    options = [(fmt.format(_transposed(a_src), b_src), sa[::-1], sb),
               (fmt.format(a_src, _transposed(b_src)), sa, sb[::-1]),
               (fmt.format(b_src, a_src), sb, sa),
               (fmt.format(b_src, _transposed(a_src)), sb, sa[::-1])]
    if len(sa) == 2 and len(sb) == 2:
        # Samples in rows: prefer the arrangement whose result keeps the batch first.
        batch = sa[0] if sa[0] not in sb else sb[0] if sb[0] not in sa else None
        options.sort(key=lambda o: _result_first(o[1], o[2]) != batch)
    for text, l, r in options:
        if len(l) == 1 and len(r) == 1:
            continue                      # a dot product of two vectors is never what was meant
        try:
            shape = np.shape(np.zeros(l) @ np.zeros(r))
        except ValueError:
            continue
        advice = f" `{text}` works and gives shape {shape}"
        if len(sa) + len(sb) == 3:
            advice += (". Weights are stored (out, in): W @ a_prev goes forward (in → out), "
                       "Wᵀ @ δ goes backward (out → in), as in δ1 = (W2ᵀ δ2) ⊙ σ'(z1).")
        elif len(sa) == 2 and len(sb) == 2:
            advice += (". With samples in rows every product keeps the batch first: A_prev @ W.T "
                       "forward, Δ @ W backward.")
        else:
            advice += "."
        return advice
    if len(sa) == 1 and len(sb) == 1:
        return (f" Two vectors: if you meant the weight gradient, that is an outer product, "
                f"np.outer({a_src}, {b_src}), shape ({sa[0]}, {sb[0]}).")
    return ""


def _product_operands(node, text):
    """(A, B, how it is written) for ``A @ B``, ``np.dot(A, B)``, ``np.matmul(A, B)`` or
    ``A.dot(B)``; None for any other node."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        return node.left, node.right, "{} @ {}"
    if isinstance(node, ast.Call) and len(node.args) == 2 and \
            _src(node.func, text).split(".")[-1] in ("dot", "matmul"):
        return node.args[0], node.args[1], _src(node.func, text) + "({}, {})"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr == "dot" and len(node.args) == 1:
        return node.func.value, node.args[0], "{}.dot({})"
    return None


_ELEMENTWISE = (ast.Mult, ast.Add, ast.Sub, ast.Div)


def _failing_node(line, frame, what):
    """The sub-expression of ``line`` that raised a shape error, found without 3.11 positions.

    what: "product" (a @, np.dot or np.matmul) or "broadcast" (an elementwise
    +, -, *, /). Each such sub-expression whose operands can be evaluated in the
    frame is tried on arrays of their shapes; the first that fails is the one.
    If none can be evaluated, the first (innermost, leftmost) of its kind is
    taken. None if the line has no such sub-expression.
    """
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return None
    candidates = []
    for n in ast.walk(tree):
        if what == "product":
            operands = _product_operands(n, line)
        elif isinstance(n, ast.BinOp) and isinstance(n.op, _ELEMENTWISE):
            operands = (n.left, n.right)
        elif isinstance(n, ast.AugAssign):      # W -= lr * grad: the update in place
            operands = (n.target, n.value)
        else:
            operands = None
        if operands is not None:
            candidates.append((n, operands[0], operands[1]))
    # Python evaluates inner expressions first, and left to right.
    candidates.sort(key=lambda c: (-_depth(tree, c[0]), c[0].col_offset))
    unknown = None
    for n, a, b in candidates:
        sa, sb = _shape(_safe_eval(a, frame)), _shape(_safe_eval(b, frame))
        if sa is None or sb is None:
            unknown = unknown or n
            continue
        try:
            if what == "product":
                np.zeros(sa) @ np.zeros(sb)
            else:
                np.broadcast_shapes(sa, sb)
        except ValueError:
            return n
    return unknown


def _depth(tree, node):
    """How deep node lies in tree (the root is 0)."""
    todo = [(tree, 0)]
    while todo:
        n, d = todo.pop()
        if n is node:
            return d
        todo.extend((child, d + 1) for child in ast.iter_child_nodes(n))
    return 0


_SHAPE_WORDS = ("mismatch in its core dimension", "not aligned", "could not be broadcast")


def explain_exception(error, show_line=True):
    """Explain an exception raised inside a learner's function in plain words.

    It finds the line of the learner's code that failed and, for numpy shape
    errors (matrix products, elementwise operations, updates in place such as
    ``W -= lr * grad``), names the operands, their shapes, and a rearrangement
    that works (e.g. ``W2.T @ delta2`` for ``W2 @ delta2``). When the source
    cannot be read (code run with ``exec``, typed into a REPL or piped in), the
    explanation comes from the shapes of the arrays in the failing frame. It
    never runs the learner's code again (no property getters, no methods).

    Inputs:
    - error: the exception, with its ``__traceback__``.
    - show_line: quote the whole source line that failed (False: only the expression).
    Returns:
    - a string of one or two sentences, starting with the exception's type and the
      line, e.g. "ValueError in `delta1 = (W2 @ delta2) * …`: `W2 @ delta2` multiplies …".
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
    prefix = f"{kind}{' ' + where if show_line else ''}: "
    explained = (_explain_product(node, text, frame, first)
                 or _explain_update(node, text, frame, first)
                 or _explain_broadcast(node, text, first))
    return prefix + explained if explained else head


def _failing_node_of(line, segment, frame, first, is_shape_error):
    """(the failing node, the text its positions refer to), or (None, line)."""
    if segment is not None:                    # Python ≥ 3.11: the failing expression itself
        text = segment.strip()
        for mode in ("eval", "exec"):
            try:
                tree = ast.parse(text, mode=mode)
            except SyntaxError:
                continue
            body = tree.body if mode == "eval" else (tree.body[0] if len(tree.body) == 1 else None)
            if body is not None:
                return body, text
    if is_shape_error:                         # Python 3.10, or no usable position
        return _failing_node(line, frame, "broadcast" if "broadcast" in first else "product"), line
    return None, line


def _explain_product(node, text, frame, first):
    """The sentence for a failing A @ B, np.dot(A, B), … ("" if node is not one)."""
    a, b, fmt = _product_operands(node, text) or (None, None, None)
    if a is None:
        return ""
    a_src, b_src = _src(a, text), _src(b, text)
    sa, sb = _shape(_safe_eval(a, frame)), _shape(_safe_eval(b, frame))
    if sa is None or sb is None:
        return ""
    k_a = sa[-1] if sa else None
    k_b = sb[0] if len(sb) == 1 else (sb[-2] if len(sb) >= 2 else None)
    return (f"`{fmt.format(a_src, b_src)}` multiplies {a_src} of shape {sa} by {b_src} of shape "
            f"{sb}; a matrix product needs the inner sizes to agree ({k_a} ≠ {k_b})."
            + _matmul_advice(a_src, b_src, sa, sb, fmt))


def _message_shapes(first):
    """The shapes a broadcast error names: "(30,784) (784,30)" -> [(30, 784), (784, 30)]."""
    found = re.findall(r"\(([\d, ]*)\)", first.split("shapes", 1)[-1])
    return [tuple(int(n) for n in f.replace(" ", "").split(",") if n) for f in found]


def _explain_update(node, text, frame, first):
    """The sentence for a failing update in place, ``W -= lr * grad`` ("" if node is not one)."""
    shapes = _message_shapes(first)
    if not isinstance(node, ast.AugAssign) or len(shapes) < 2:
        return ""
    target, value = _src(node.target, text), _src(node.value, text)
    st, sv = shapes[0], shapes[1]
    grad = next((_src(n, text) for n in ast.walk(node.value)
                 if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript))
                 and _shape(_safe_eval(n, frame)) == sv), value)
    msg = (f"`{_src(node, text)}` updates {target} of shape {st} in place with `{value}` of shape "
           f"{sv}")
    if len(st) == 2 and sv == st[::-1]:
        return (msg + f": {grad} is the transpose of {target}. A weight gradient has the shape of "
                f"its weights, (n_out, n_in) = outer(δ, a_in), δ first: swap the operands of the "
                f"outer product that made {grad}: np.outer(delta, a_in), or "
                f"np.atleast_2d(delta).T * np.atleast_2d(a_in) in row vectors.")
    return msg + f"; an update in place needs a value of shape {st} (or one that broadcasts to it)."


def _explain_broadcast(node, text, first):
    """The sentence for a failing elementwise A * B, A + B, … ("" if node is not one)."""
    shapes = re.findall(r"\(([\d, ]*)\)", first.split("shapes", 1)[-1])
    if not isinstance(node, ast.BinOp) or "broadcast" not in first or len(shapes) < 2:
        return ""
    msg = (f"`{_src(node, text)}` combines shape ({shapes[0]}) with shape ({shapes[1]}) "
           f"elementwise, which needs matching sizes.")
    if isinstance(node.op, ast.Mult):
        msg += (" If you meant a matrix product use @ (with the transpose that makes "
                "the inner sizes agree); if you meant a weight gradient, it is an outer "
                "product: np.outer(δ, a_prev).")
    return msg


def _explain_from_locals(kind, first, tb, is_shape_error):
    """The explanation when the failing line's source cannot be read: from the frame's arrays."""
    frame = tb.tb_frame
    name = frame.f_code.co_name
    where = "at line %d of `%s`" % (tb.tb_lineno, name) if name.isidentifier() else \
        "at line %d" % tb.tb_lineno
    msg = (f"{kind} {where} (its source cannot be read: code run with exec, typed into a REPL or "
           f"piped in): {first}.")
    arrays = {k: v for k, v in frame.f_locals.items() if type(v) is np.ndarray}
    if not is_shape_error or not arrays:
        return msg
    msg += " Its arrays at that moment: " + ", ".join(
        f"{k} {v.shape}" for k, v in arrays.items()) + "."
    if "broadcast" in first:
        shapes = _message_shapes(first)[:2]
        owners = [[k for k, v in arrays.items() if v.shape == s] for s in shapes]
        parts = [f"{s} is the shape of {', '.join(o)}" for s, o in zip(shapes, owners) if o]
        return msg + (" " + "; ".join(parts) + ": these cannot be combined elementwise."
                      if parts else "")
    for (a, va), (b, vb) in itertools.permutations(arrays.items(), 2):
        try:
            np.zeros(va.shape) @ np.zeros(vb.shape)
        except ValueError as e:
            if safe_message(e) == first:
                return (msg + f" `{a} @ {b}` fails this way: {a} {va.shape}, {b} {vb.shape}."
                        + _matmul_advice(a, b, va.shape, vb.shape))
    return msg


# --- An array returned with the wrong shape ---

def explain_shape(name, shape, expected, *, what, form, sizes, batch, values_right=False):
    """Say why an array a learner's function returned has the wrong shape, and how to fix it.

    Inputs:
    - name: the array, as the checkers name it: "dW1", "db1", … (gradients), "δ1", "δ2"
      (deltas) or "x", "z1", "a1", "z2", "a2" (forward pass).
    - shape, expected: the shape returned and the right one, tuples.
    - what: "forward", "deltas" or "backprop"; form: "one sample" or "batch".
    - sizes: the layer sizes [n0, n1, n2]; batch: the batch size B.
    - values_right: for a transposed array, whether its transpose holds the right values.
    Returns:
    - (kind, sentence): kind "transpose", "column", "bias_scalar", "bias_axis",
      "bias_rows", "bias_matrix", "per_sample" or "shape"; the sentence names both
      shapes and the fix.
    """
    shape, exp = tuple(shape), tuple(expected)
    formula, fix = _shape_hints(what, form, sizes)[name]
    n = exp[-1] if exp else None
    if len(exp) == 2 and shape == exp[::-1]:
        right = " — its values are right, only transposed." if values_right else "."
        return "transpose", f"{name} has shape {shape}; expected {exp}{formula}: {fix}{right}"
    if len(exp) == 1 and shape in ((n, 1), (1, n)):
        return "column", (f"{name} has shape {shape}; expected {exp}, a 1-D vector"
                          f"{_column_hint(what, name, form, shape)}.")
    if name.startswith("db"):
        found = _bias_shape(name, shape, exp, form, batch)
        if found:
            return found
    if len(exp) == 1 and shape == (n, n):
        return "bias_matrix", (f"{name} has shape {shape}, a matrix: a ({n},) vector met a "
                               f"({n}, 1) column and numpy broadcast them into ({n}, {n}); keep "
                               f"every vector 1-D, shape {exp}.")
    if name.startswith("dW") and form == "batch" and shape == (batch,) + exp:
        return "per_sample", (f"{name} has shape {shape}: one gradient per sample; average them "
                              f"over axis 0 to get {exp}.")
    return "shape", f"{name} has shape {shape}; expected {exp}{formula}."


def _shape_hints(what, form, sizes):
    """{name: (what the expected shape is, how to fix a transposed array)}."""
    n0, n1, n2 = sizes
    if what == "forward":
        rows = ", one row per sample" if form == "batch" else ""
        fix = "with samples in rows the layer is X @ W.T + b (W @ X.T gives the transpose)"
        return {n: (rows, fix) for n in ("x", "z1", "a1", "z2", "a2")}
    if what == "deltas":
        fix = "transpose it (samples in rows, as X)"
        if form == "one sample":
            return {"δ1": (" = (W2ᵀ δ2) ⊙ σ'(z1), one value per hidden unit", fix),
                    "δ2": (" = (a2 - t) ⊙ σ'(z2), one value per output", fix)}
        return {"δ1": (" = (Δ2 @ W2) ⊙ σ'(Z1), one row per sample", fix),
                "δ2": (" = (A2 - T) ⊙ σ'(Z2), one row per sample", fix)}
    if form == "one sample":
        return {"dW1": (f" = outer(δ1 ({n1},), x ({n0},))",
                        "swap the arguments: np.outer(δ1, x), not np.outer(x, δ1)"),
                "db1": (" = δ1", "transpose it (.T)"),
                "dW2": (f" = outer(δ2 ({n2},), a1 ({n1},))",
                        "swap the arguments: np.outer(δ2, a1), not np.outer(a1, δ2)"),
                "db2": (" = δ2", "transpose it (.T)")}
    fix = "put the deltas first: Δᵀ @ A_prev (A_prevᵀ @ Δ is its transpose)"
    return {"dW1": (f" = Δ1ᵀ @ X / B with Δ1 (B, {n1}), X (B, {n0})", fix),
            "db1": (" = Δ1.mean(axis=0)", "transpose it (.T)"),
            "dW2": (f" = Δ2ᵀ @ A1 / B with Δ2 (B, {n2}), A1 (B, {n1})", fix),
            "db2": (" = Δ2.mean(axis=0)", "transpose it (.T)")}


def _column_hint(what, name, form, shape):
    if what == "forward":
        return (": W @ x with x (784,) gives a 1-D vector; a (784, 1) column gives a column "
                "(use .ravel())")
    like = " like the bias itself" if name.startswith("db") else ""
    if form == "batch" and shape[0] == 1:
        return f"{like} (drop keepdims=True)"
    return f"{like} (use .ravel(), and keep x and the deltas 1-D)"


def _bias_shape(name, shape, exp, form, batch):
    """(kind, sentence) for a bias gradient collapsed, per sample or a matrix; or None."""
    n = exp[0]
    if shape in ((), (1,)):
        how = ("sum (or average) over the samples only, axis=0, not over everything"
               if form == "batch" else "the bias gradient is the δ vector itself, not its sum")
        return "bias_scalar", (f"{name} is a single number; expected one value per unit, shape "
                               f"{exp}: {how}.")
    if form == "batch" and shape == (batch,):
        return "bias_axis", MISTAKES["bias_wrong_axis"].advice.format(B=batch)
    if form == "batch" and shape == (batch, n):
        return "bias_rows", (f"{name} has shape {shape}, one row per sample; average the rows: "
                             f"Δ.mean(axis=0), shape {exp}.")
    if len(shape) == 2 and n in shape and shape != (n, n):
        return "bias_matrix", (f"{name} has shape {shape}, a matrix; the bias gradient is a vector "
                               f"of shape {exp} (= the δ of that layer"
                               f"{', averaged over the samples' if form == 'batch' else ''}).")
    return None
