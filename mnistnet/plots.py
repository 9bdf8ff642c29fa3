"""Pictures: digits, training curves, confusion matrices, hidden units, shape diagrams.

Each function draws into the Axes it is given (``ax=``/``axes=``) or into a new Figure from
``new_figure``, and returns the Figure. ``new_figure`` does not use pyplot, so drawing is safe
in any thread (the Trainer's) and a figure never turns up in another cell. A returned Figure
shows when it is a cell's last value (or with ``display(fig)``), not with ``plt.show()``;
to draw into a pyplot figure of your own, pass its Axes: ``plot_confusion(y, p, ax=ax2)``.
"""

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

FADED_COLOR = "0.7"          # earlier runs drawn for comparison


def new_figure(figsize):
    """A blank Figure (width, height in inches) with an Agg canvas, made without pyplot."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig, dpi=90):
    """The Figure rendered to PNG bytes (for an ``ipywidgets.Image``, or a file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _image_grid(images, draw_one, cols, size, *, height=1.0, axes=None):
    """Call draw_one(ax, i) for each image i, in a grid of Axes; return the Figure.

    A new figure has ``cols`` images per row, each ``size`` × ``size * height`` inches, tidied
    by tight_layout; the caller's ``axes`` are used in order instead, extra ones left blank.
    """
    new = axes is None
    if new:
        cols = min(cols, len(images))
        rows = -(-len(images) // cols)             # rounded up
        axes = new_figure((cols * size, rows * size * height)).subplots(rows, cols, squeeze=False)
    axes = np.ravel(np.asarray(axes, dtype=object))
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(images):
            draw_one(ax, i)
    if new:
        axes[0].figure.tight_layout(pad=0.2)
    return axes[0].figure


def show_digits(X, labels=None, predicted=None, cols=10, size=1.0, *, axes=None):
    """A grid of digit images with their labels.

    Inputs:
    - X: images (N, 784) or (N, 28, 28), values in [0, 1].
    - labels: optional integer labels (N,), shown above each image; predicted: optional
      predicted labels (N,), a wrong one shown in red as "pred / true".
    - cols: images per row; size: inches per image (of a new figure).
    - axes: Axes to draw into instead, one image each in order (no tight_layout).
    Returns: the Figure.
    """
    X = np.asarray(X).reshape(len(X), 28, 28)

    def draw(ax, i):
        ax.imshow(X[i], cmap="gray_r", vmin=0, vmax=1)
        if labels is not None:
            wrong = predicted is not None and predicted[i] != labels[i]
            ax.set_title(f"{predicted[i]} / {labels[i]}" if wrong else f"{labels[i]}",
                         color="red" if wrong else "black", fontsize=9)

    return _image_grid(X, draw, cols, size, height=1.15, axes=axes)


def show_weights(W, cols=10, size=1.0):
    """Each hidden unit's incoming weights as a 28×28 image (red excites, blue inhibits).

    Inputs:
    - W: first-layer weights (n_hidden, 784); row j holds the weights from every pixel into unit j.
    Returns: the Figure.
    """
    W = np.asarray(W)

    def draw(ax, i):
        w = W[i].reshape(28, 28)
        m = np.abs(w).max() or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-m, vmax=m)

    return _image_grid(W, draw, cols, size)


def confusion_matrix(y_true, y_pred, n=10):
    """Counts of (true, predicted) pairs.

    Inputs:
    - y_true, y_pred: integer labels (N,), each in 0 … n − 1; n: the number of classes.
    Returns:
    - M: (n, n) integers, M[i, j] = number of digits i predicted as j.
    """
    M = np.zeros((n, n), dtype=np.int64)
    np.add.at(M, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return M


def plot_confusion(y_true, y_pred, n=10, ax=None):
    """The confusion matrix as a heat map of the mistakes, with the counts written in.

    Inputs:
    - y_true, y_pred: integer labels (N,), each in 0 … n − 1; n: the classes, the matrix is (n, n).
    - ax: an Axes to draw into (default: a new figure).
    Returns: the Figure.
    """
    M = confusion_matrix(y_true, y_pred, n)
    if ax is None:
        ax = new_figure((4.2, 4.2)).subplots()
    off = M.astype(float)
    np.fill_diagonal(off, np.nan)          # colour the mistakes, not the (large) diagonal
    image = ax.imshow(off, cmap="Reds")
    for i, j in np.argwhere(M):            # the diagonal in green; white on the darkest reds
        color = "tab:green" if i == j else "white" if image.norm(off[i, j]) > 0.6 else "black"
        ax.text(j, i, M[i, j], ha="center", va="center", fontsize=7, color=color)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true",
           title=f"accuracy {np.trace(M) / max(M.sum(), 1):.2%}")
    return ax.figure


# --- training curves ----------------------------------------------------------------

def eta_text(eta):
    """η as a person writes it: 3, 0.5, 0.001 (3 significant digits, no float noise)."""
    return f"{float(eta):.3g}"


def run_label(history, etas=None):
    """A short description of a run, e.g. 'η 3, 30 hidden, quadratic, B 10'.

    Inputs:
    - history: the run's train.History.
    - etas: the learning rates used, in order (default: η per epoch from the History;
      the Trainer passes every value the slider took during the run).
    Returns:
    - the label (str); a run whose η changed reads 'η 0.01→3, …' (first → last).
    """
    s = history.settings
    if etas is None:
        etas = [e for e in history.learning_rate if e is not None]
    ends = [] if not etas else etas[:1] if min(etas) == max(etas) else [etas[0], etas[-1]]
    eta = f"η {'→'.join(eta_text(e) for e in ends)}, " if ends else ""
    hidden = "-".join(str(n) for n in s.get("sizes", [])[1:-1]) or "no"
    cost = s.get("cost", "").replace("_", "-")
    return f"{eta}{hidden} hidden, {cost}, B {s.get('batch_size', '?')}"


def _log_cost_axis(ax):
    """A log scale for the cost, labelled 1, 2, 5 × 10^k (more values on a narrow range)."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ratio = high / low
    subs = ((1.0, 2.0, 5.0) if ratio > 8 else (1.0, 2.0, 3.0, 5.0, 7.0) if ratio > 2.5
            else tuple(range(1, 10)))
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _draw_run(ax_cost, ax_acc, history, label, style):
    """One run's cost and accuracy lines; returns its finite accuracies (%)."""
    e = np.asarray(history.epoch, dtype=float)
    c = np.asarray(history.cost, dtype=float)
    ok = np.isfinite(c) & (c > 0)                  # a diverged run's inf/NaN costs are left out
    ax_cost.plot(e[ok], c[ok], **style)
    acc = [np.nan if a is None else 100 * a for a in history.accuracy]
    ax_acc.plot(e, acc, label=label, **style)
    return [a for a in acc if np.isfinite(a)]


def plot_curves(histories, labels=None, *, faded=(), epochs=None, title=None, styles=None,
                fig=None):
    """Training cost (log scale) and validation accuracy per epoch, side by side.

    Inputs:
    - histories: a list of train.History, drawn in colour (C0, C1, …).
    - labels: one legend label per history (default: run_label of each).
    - faded: (label, History) pairs drawn first, in light grey (earlier runs, for comparison).
    - epochs: the x-axis extent (default: the longest run); title: optional figure title.
    - styles: optional line settings per history, e.g. ``[dict(color="C0", ls="--"), …]``.
    - fig: a Figure to draw into (it is cleared); default ``new_figure((8.6, 3.3))``.
    Returns: the Figure. Non-finite costs (a diverged run) are left out; the legend sits below.
    """
    fig = fig if fig is not None else new_figure((8.6, 3.3))
    fig.clear()
    ax_cost, ax_acc = fig.subplots(1, 2)
    labels = list(labels) if labels is not None else [run_label(h) for h in histories]
    if len(labels) != len(histories):
        raise ValueError(f"plot_curves: {len(histories)} histories but {len(labels)} labels; "
                         f"give one label per history")
    longest = max([h.epoch[-1] for h in [*histories, *(h for _, h in faded)] if len(h)] + [1])
    epochs = epochs or int(np.ceil(longest))
    all_acc = []
    for label, h in faded:
        style = dict(color=FADED_COLOR, lw=1.5, marker="o", ms=3)
        all_acc += _draw_run(ax_cost, ax_acc, h, f"before: {label}", style)
    for k, (h, label) in enumerate(zip(histories, labels)):
        style = {"color": f"C{k}", "lw": 2, "marker": "o", "ms": 4, **(styles[k] if styles else {})}
        all_acc += _draw_run(ax_cost, ax_acc, h, label, style)

    ax_cost.set(xlabel="epoch", ylabel="training cost", title="training cost (log scale)",
                xlim=(0, epochs + 0.5))
    if any(line.get_xdata().size for line in ax_cost.lines):
        _log_cost_axis(ax_cost)
    low = min(all_acc, default=0.0)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy",
               xlim=(0, epochs + 0.5), ylim=(max(0.0, 10 * np.floor(low / 10) - 2), 100.5))
    ax_acc.axhline(10, color="0.8", lw=1, ls="--", zorder=0)   # chance: 1 in 10
    for ax in (ax_cost, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    n_lines = len(histories) + len(faded)
    per_row = n_lines if n_lines <= 4 else 3
    if n_lines:
        fig.legend(*ax_acc.get_legend_handles_labels(), loc="lower center",
                   ncol=per_row, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    # Fixed margins (in inches), not tight_layout: it would draw the figure twice, and this
    # is redrawn after every epoch while training waits.
    w, h = fig.get_size_inches()
    rows = -(-n_lines // per_row) if n_lines else 0
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.15 / w, wspace=0.9 / (w / 2),
                        top=1 - (0.55 if title else 0.35) / h,
                        bottom=(0.55 + 0.22 * rows) / h)
    return fig


def results_figure(X, y, predicted, n_show=12, name="test"):
    """Misclassified digits (predicted / true, in red) beside the confusion matrix.

    Inputs:
    - X: images (N, 784); y: true labels (N,); predicted: predicted labels (N,).
    - n_show: how many misclassified digits to show, at most 12 (the first ones).
    - name: what the images are, for the caption ("test", or "validation").
    Returns: the Figure.
    """
    y, predicted = np.asarray(y), np.asarray(predicted)
    fig = new_figure((8.6, 3.4))
    outer = fig.add_gridspec(1, 2, width_ratios=(1.35, 1), wspace=0.15)
    wrong = np.flatnonzero(predicted != y)
    shown = wrong[:n_show]
    show_digits(X[shown], y[shown], predicted[shown],
                axes=outer[0].subgridspec(2, 6, hspace=0.45, wspace=0.1).subplots())
    fig.text(0.03, 0.95, f"misclassified {name} digits (predicted / true): {len(wrong)} of {len(y)}",
             fontsize=9, va="top")
    plot_confusion(y, predicted, ax=fig.add_subplot(outer[1]))
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.13)
    return fig


# --- shape diagrams ---------------------------------------------------------------

_MATRIX, _VECTOR, _RESULT = "#cfe2f3", "#fde3c8", "#d9ead3"
_EDGE, _OK, _BAD, _WARN, _NOTE = "#333333", "#2e7d32", "#c62828", "#e65100", "#555555"
_UNIT_IN = 0.2            # inches per drawing unit
_SYMBOLIC = 7.0           # drawn length of a symbolic dimension such as "B"


def _length(n, break_at=100):
    """(drawn length of a dimension of size n, in drawing units; whether it is compressed):
    √n up to ``break_at`` (1 is one unit), then logarithmic with a break mark (784 is about 12
    units, not 28). A symbolic "B" is 7 units."""
    if isinstance(n, str):
        return _SYMBOLIC, False
    n = int(n)
    if n <= break_at:
        return float(np.sqrt(max(n, 1))), False
    return float(np.sqrt(break_at) + 2.0 * np.log10(n / break_at)), True


def _shape_text(shape):
    """numpy's way of writing a shape: (784,) for 1-D, (30, 784) for 2-D."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _parse_operand(term):
    """(name, shape[, "row"|"col"]) -> (name, shape tuple, (rows, cols) of the block drawn):
    a 1-D vector is drawn as a column unless told "row"."""
    name, shape, *rest = term
    shape = (shape,) if isinstance(shape, (int, np.integer, str)) else tuple(shape)
    if not 1 <= len(shape) <= 2:
        raise ValueError(f"{name}: only 1-D and 2-D shapes can be drawn, got {shape}")
    orient = rest[0] if rest else "col"
    if orient not in ("row", "col"):
        raise ValueError(f"{name}: orientation must be 'row' or 'col', got {orient!r}")
    drawn = shape if len(shape) == 2 else (1, shape[0]) if orient == "row" else (shape[0], 1)
    return str(name), shape, drawn


def _check_op(op, ls, rs):
    """What to say under an operator, and the shape of the result so far.

    ls: the shape of everything left of the operator; rs: the operand right of it.
    Returns ((text, colour) or None, result shape or None), by the rules shape_diagram lists.
    """
    if op == "@":           # a 1-D left operand acts as a row, a 1-D right one as a column
        if ls[-1] != rs[0]:
            return (f"✗ {ls[-1]} ≠ {rs[0]}\nnot aligned", _BAD), None
        out = (ls[:-1] if len(ls) == 2 else ()) + (rs[1:] if len(rs) == 2 else ())
        return (f"✓ {ls[-1]} = {rs[0]}\nsummed over", _OK), out
    if op in ("+", "⊙", "*"):
        if ls == rs:
            return None, ls
        if any(isinstance(d, str) for d in ls + rs):
            return ("broadcast", _NOTE), ls if len(ls) >= len(rs) else rs
        try:
            out = np.broadcast_shapes(ls, rs)
        except ValueError:
            return ("✗ cannot\nbroadcast", _BAD), None
        if out in (ls, rs):
            return (f"broadcast\nto {_shape_text(out)}", _NOTE), out
        return (f"⚠ broadcasts\nto {_shape_text(out)}!", _WARN), out
    if op == "⊗":
        return ("outer:\nnothing summed", _NOTE), tuple(ls) + tuple(rs)
    return None, None


def _break_mark(ax, x0, y0, w, h, horizontal):
    """Two slanted strokes with a white gap across a block: 'drawn shorter than to scale'."""
    s, e, t = 0.35, 0.25, 0.3                  # half the gap, overhang, half the slant
    mid, lo, hi = (x0 + w / 2, y0, y0 + h) if horizontal else (y0 + h / 2, x0, x0 + w)

    def at(d, far):                            # a stroke's end: d along the long axis, near or far side
        point = (mid + d + (t if far else -t), hi + e if far else lo - e)
        return point if horizontal else point[::-1]

    ax.add_patch(Polygon([at(-s, 0), at(s, 0), at(s, 1), at(-s, 1)], closed=True, facecolor="white",
                         edgecolor="none", zorder=3, gid="break"))
    for d in (-s, s):
        ax.plot(*zip(at(d, 0), at(d, 1)), color=_EDGE, lw=1.0, zorder=4)


def _layout(items, break_at):
    """Place operands and operators on the line y = 0, checking each operator.

    Returns (boxes, notes, width): a box (kind, item, x0, w, h, is_result) per item; a note
    (x centre, row 0 or 1, (text, colour)) per operator that has something to say, one row
    lower when it is close to the last; width: the drawing's length.
    """
    gap, op_w = 0.9, 1.6
    boxes, notes, x, result = [], [], 0.0, False
    current, fresh = None, True                # the shape of the expression read so far
    for i, (kind, it) in enumerate(items):
        if kind == "op":
            right = next((v for k, v in items[i + 1:] if k == "arr"), None)
            if it == "=":
                result, current, fresh = True, None, True
            elif current is not None and right is not None:
                note, current = _check_op(it, current, right[1])
                if note:
                    xc = x + op_w / 2
                    close = notes and xc - notes[-1][0] < 5.0 and notes[-1][1] == 0
                    notes.append((xc, 1 if close else 0, note))
            boxes.append((kind, it, x, op_w, 0.0, False))
            x += op_w
            continue
        name, shape, (rows, cols) = it
        if fresh:
            current, fresh = shape, False
        w, h = _length(cols, break_at)[0], _length(rows, break_at)[0]
        # the slot is wide enough for the block and for its labels (name above, shape below)
        slot = max(w, 0.62 * len(name), 0.5 * len(_shape_text(shape))) + gap
        boxes.append((kind, it, x + (slot - w) / 2, w, h, result))
        x += slot
    return boxes, notes, x


def _draw_box(ax, box, break_at):
    """Draw one operator, or one operand block with its name above and its shape below."""
    kind, it, x0, w, h, res = box
    if kind == "op":
        ax.text(x0 + w / 2, 0, it, ha="center", va="center", fontsize=15, gid="op")
        return
    name, shape, (rows, cols) = it
    y0 = -h / 2
    color = _RESULT if res else (_VECTOR if len(shape) == 1 else _MATRIX)
    ax.add_patch(Rectangle((x0, y0), w, h, facecolor=color, edgecolor=_EDGE, lw=1.2,
                           zorder=2, gid=f"block:{name}"))
    for n, horizontal in ((cols, True), (rows, False)):
        if _length(n, break_at)[1]:
            _break_mark(ax, x0, y0, w, h, horizontal)
    ax.text(x0 + w / 2, h / 2 + 0.7, name, ha="center", va="bottom", fontsize=11,
            fontweight="bold", gid="name")
    ax.text(x0 + w / 2, -h / 2 - 0.5, _shape_text(shape), ha="center", va="top",
            fontsize=9, color=_NOTE, gid="shape")


def shape_diagram(*terms, ax=None, title=None, break_at=100):
    """Draw an array expression as blocks sized by their dimensions.

    A 2-D array (r, c) is a block r tall and c wide; a 1-D array (n,) a column one unit thick,
    or a row if asked. Sides grow like √n up to ``break_at``, then logarithmically (with a
    break mark: not to scale); the name is written above, the true numpy shape below. Read
    left to right (write ``W @ x + b``), each operator is checked as numpy would:
    ``"@"``: the inner dimensions must match (green ✓ with the summed size, red ✗ if not);
    ``"+"``, ``"⊙"``, ``"*"``: broadcasting is noted, in orange when it makes a shape neither
    operand has ((30, 1) + (30,) → (30, 30)); ``"⊗"``: an outer product, nothing summed;
    ``"="`` starts a new expression, coloured as a result; any other string is not checked.

    Inputs:
    - terms: operands and operator strings, alternating. An operand is ``(name, shape)`` or
      ``(name, shape, "row")``; shape: an int n (a 1-D (n,)), (n,) or (r, c); a dimension may
      be a string such as "B".
    - ax: an Axes to draw into (default: a new figure sized to the drawing); title: optional.
    - break_at: dimensions larger than this are drawn compressed.
    Returns: the Figure. Raises ValueError for a 3-D shape, a bad orientation or no operand.
    E.g. ``shape_diagram(("W1", (30, 784)), "@", ("x", 784), "+", ("b1", 30), "=", ("z1", 30))``.
    """
    items = [("op", t) if isinstance(t, str) else ("arr", _parse_operand(t)) for t in terms]
    if not any(kind == "arr" for kind, _ in items):
        raise ValueError("shape_diagram needs at least one operand")
    boxes, notes, width = _layout(items, break_at)
    height = max(box[4] for box in boxes if box[0] == "arr")
    bottom = -height / 2 - 2.0 - (1.9 * (1 + max(r for _, r, _ in notes)) if notes else 0.0)
    top = height / 2 + 2.2
    if ax is None:
        ax = new_figure((max(width, 8) * _UNIT_IN + 0.4,
                         (top - bottom) * _UNIT_IN + (0.35 if title else 0.1))).subplots()
    for box in boxes:
        _draw_box(ax, box, break_at)
    for xc, row, (text, color) in notes:
        ax.text(xc, -height / 2 - 2.3 - 1.9 * row, text, ha="center", va="top", fontsize=8,
                color=color, linespacing=1.1, gid="check")
    ax.set(xlim=(-0.2, width + 0.2), ylim=(bottom, top), aspect="equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return ax.figure


def draw_matvec(m, n, W="W", x="x", b="b", out="z", ax=None, title=None):
    """One sample through a layer, ``W @ x + b = out``: W (m, n), x (n,), b and out (m,).

    W, x, b, out name the blocks; b=None leaves the bias out (backwards:
    ``draw_matvec(30, 10, W="W2ᵀ", x="δ2", b=None, out="∂C/∂a1")``). ax, title: as
    ``shape_diagram``. Returns: the Figure.
    """
    bias = ["+", (b, m)] if b is not None else []
    return shape_diagram((W, (m, n)), "@", (x, n), *bias, "=", (out, m), ax=ax, title=title)


def draw_outer(m, n, u="δ", v="x", out="∂C/∂W", ax=None, title=None):
    """An outer product ``np.outer(u, v) = out``: u (m,) a column, v (n,) a row, out (m, n).

    E.g. ``draw_outer(30, 784, u="δ1", v="x", out="∂C/∂W1")``: ∂C/∂W1 has W1's shape.
    u, v, out name the blocks; ax, title: as ``shape_diagram``. Returns: the Figure.
    """
    return shape_diagram((u, m), "⊗", (v, n, "row"), "=", (out, (m, n)), ax=ax, title=title)


def draw_batched(B, n_in, n_out, X="X", W="W", b="b", out="Z", ax=None, title=None):
    """A batch of rows through one layer, ``X @ W.T + b = out``: one row of out per sample.

    X is (B, n_in) (B an int, or a string such as "B"); W is (n_out, n_in), drawn as W.T
    (n_in, n_out); b (n_out,) is a row broadcast down; out is (B, n_out). X, W, b, out name
    the blocks (W gets a ᵀ); b=None leaves it out. ax, title: as ``shape_diagram``.
    Returns: the Figure.
    """
    bias = ["+", (b, n_out, "row")] if b is not None else []
    return shape_diagram((X, (B, n_in)), "@", (f"{W}ᵀ", (n_in, n_out)), *bias, "=",
                         (out, (B, n_out)), ax=ax, title=title)
