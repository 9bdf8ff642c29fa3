"""Pictures: digits, training curves, confusion matrices, hidden units.

Each function draws into a matplotlib Axes (a new figure if none is given) and
returns the Figure, so notebooks show it and widgets can render it to PNG.
Nothing here knows about training or widgets.
"""

import matplotlib.pyplot as plt
import numpy as np


def _grid(n, cols):
    cols = min(cols, n)
    return int(np.ceil(n / cols)), cols


def show_digits(X, labels=None, predicted=None, cols=10, size=1.0):
    """A grid of digit images with their labels.

    Introduced in ``notebooks/01-mnist-data.ipynb``.

    Inputs:
    - X: images (N, 784) or (N, 28, 28), values in [0, 1].
    - labels: optional integer labels (N,), shown above each image.
    - predicted: optional predicted labels (N,); a wrong prediction is shown in red
      as "pred / true".
    - cols: images per row; size: inches per image.
    Returns:
    - the Figure.
    """
    X = np.asarray(X).reshape(len(X), 28, 28)
    rows, cols = _grid(len(X), cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.15),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(X):
            continue
        ax.imshow(X[i], cmap="gray_r", vmin=0, vmax=1)
        if predicted is not None and labels is not None:
            wrong = predicted[i] != labels[i]
            ax.set_title(f"{predicted[i]} / {labels[i]}" if wrong else f"{labels[i]}",
                         color="red" if wrong else "black", fontsize=9)
        elif labels is not None:
            ax.set_title(str(labels[i]), fontsize=9)
    fig.tight_layout(pad=0.2)
    return fig


def show_weights(W, cols=10, size=1.0):
    """Each hidden unit's incoming weights drawn as a 28×28 image.

    Introduced in ``notebooks/07-going-further.ipynb``. Row j of W1 holds the
    784 weights from every pixel into hidden unit j, so it has the image's
    shape: red pixels excite the unit, blue ones inhibit it.

    Inputs:
    - W: first-layer weights (n_hidden, 784).
    Returns:
    - the Figure.
    """
    W = np.asarray(W)
    rows, cols = _grid(len(W), cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(W):
            w = W[i].reshape(28, 28)
            m = np.abs(w).max() or 1.0
            ax.imshow(w, cmap="RdBu_r", vmin=-m, vmax=m)
    fig.tight_layout(pad=0.2)
    return fig


def confusion_matrix(y_true, y_pred, n=10):
    """Counts of (true, predicted) pairs.

    Inputs:
    - y_true, y_pred: integer labels (N,).
    Returns:
    - M: (n, n) integers, M[i, j] = number of digits i predicted as j.
    """
    M = np.zeros((n, n), dtype=np.int64)
    np.add.at(M, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return M


def plot_confusion(y_true, y_pred, n=10, ax=None):
    """The confusion matrix as a heat map, with the counts written in.

    Inputs:
    - y_true, y_pred: integer labels (N,).
    Returns:
    - the Figure.
    """
    M = confusion_matrix(y_true, y_pred, n)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.2))
    off = M.astype(float)
    np.fill_diagonal(off, np.nan)          # colour the mistakes, not the (large) diagonal
    ax.imshow(off, cmap="Reds")
    for i in range(n):
        for j in range(n):
            if M[i, j]:
                ax.text(j, i, M[i, j], ha="center", va="center", fontsize=7,
                        color="black" if i != j else "tab:green")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true",
           title=f"accuracy {np.trace(M) / max(M.sum(), 1):.2%}")
    return ax.figure
