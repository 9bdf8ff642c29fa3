"""The drawing functions of mnistnet.plots: what they put on the figure (Agg backend, fast)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from mnistnet import plots  # noqa: E402
from mnistnet.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig, gid=None):
    return [t.get_text() for ax in fig.axes for t in ax.texts if gid is None or t.get_gid() == gid]


def blocks(fig):
    """{name: (width, height)} of the drawn operand blocks."""
    out = {}
    for ax in fig.axes:
        for p in ax.patches:
            if isinstance(p, Rectangle) and (p.get_gid() or "").startswith("block:"):
                out[p.get_gid()[len("block:"):]] = (p.get_width(), p.get_height())
    return out


def n_breaks(fig):
    return sum(p.get_gid() == "break" for ax in fig.axes for p in ax.patches)


def test_matvec_labels_every_block_with_name_and_true_shape():
    fig = plots.draw_matvec(30, 784, W="W1", x="x", b="b1", out="z1", title="layer 1")
    assert isinstance(fig, plt.Figure)
    assert texts(fig, "name") == ["W1", "x", "b1", "z1"]
    assert texts(fig, "shape") == ["(30, 784)", "(784,)", "(30,)", "(30,)"]
    assert texts(fig, "op") == ["@", "+", "="]
    assert fig.axes[0].get_title() == "layer 1"


def test_matvec_inner_dimensions_line_up_and_are_checked():
    fig = plots.draw_matvec(30, 784, W="W1", x="x", b="b1", out="z1")
    size = blocks(fig)
    assert size["W1"][0] == pytest.approx(size["x"][1])      # W1's width is x's height: both 784
    assert size["W1"][1] == pytest.approx(size["z1"][1])     # W1's height is z1's: both 30
    assert size["x"][0] == pytest.approx(1.0)                # a 1-D vector is one unit thick
    checks = texts(fig, "check")
    assert len(checks) == 1 and checks[0].startswith("✓ 784 = 784")   # b1 (30,) + (30,): no note


def test_long_dimensions_are_compressed_with_a_break_mark():
    fig = plots.draw_matvec(30, 784, W="W1", x="x", b="b1", out="z1")
    assert n_breaks(fig) == 2                                # W1's columns and x's rows
    size = blocks(fig)
    assert size["x"][1] < np.sqrt(784)                       # drawn shorter than √784
    assert size["x"][1] > size["z1"][1]                      # but still longer than 30
    assert n_breaks(plots.draw_matvec(10, 30, W="W2", x="a1", b="b2", out="z2")) == 0


def test_outer_is_a_column_times_a_row():
    fig = plots.draw_outer(30, 784, u="δ1", v="x", out="∂C/∂W1")
    size = blocks(fig)
    assert size["δ1"][1] > size["δ1"][0]                     # column
    assert size["x"][0] > size["x"][1]                       # row
    assert size["∂C/∂W1"] == pytest.approx((size["x"][0], size["δ1"][1]))
    assert texts(fig, "shape") == ["(30,)", "(784,)", "(30, 784)"]
    assert any("nothing summed" in t for t in texts(fig, "check"))


def test_transposed_weights_backwards():
    fig = plots.draw_matvec(30, 10, W="W2ᵀ", x="δ2", b=None, out="∂C/∂a1")
    assert texts(fig, "name") == ["W2ᵀ", "δ2", "∂C/∂a1"]
    assert texts(fig, "shape") == ["(30, 10)", "(10,)", "(30,)"]
    assert texts(fig, "check")[0].startswith("✓ 10 = 10")


def test_mismatched_product_is_flagged():
    fig = plots.shape_diagram(("W2", (10, 30)), "@", ("δ2", 10), "⊙", ("σ'(z1)", 30))
    checks = texts(fig, "check")
    assert checks[0].startswith("✗ 30 ≠ 10")
    assert len(checks) == 1                                  # after a failed product, nothing more is claimed


def test_silent_broadcast_into_a_matrix_is_flagged():
    fig = plots.shape_diagram(("z", 30, "row"), "+", ("b1", (30, 1)), "=", ("?", (30, 30)))
    (check,) = texts(fig, "check")
    assert check.startswith("⚠") and "(30, 30)" in check
    fig = plots.shape_diagram(("z", 30), "+", ("b", 10))
    assert texts(fig, "check")[0].startswith("✗")


def test_batched_product_and_symbolic_batch_size():
    fig = plots.draw_batched("B", 784, 30, X="X", W="W1", b="b1", out="Z1")
    assert texts(fig, "name") == ["X", "W1ᵀ", "b1", "Z1"]
    assert texts(fig, "shape") == ["(B, 784)", "(784, 30)", "(30,)", "(B, 30)"]
    size = blocks(fig)
    assert size["b1"][0] > size["b1"][1]                     # the bias is a row, broadcast down
    assert texts(fig, "check")[0].startswith("✓ 784 = 784")


def test_draws_into_a_given_axes():
    fig, (ax1, ax2) = plt.subplots(1, 2)
    assert plots.draw_outer(10, 30, u="δ2", v="a1", out="∂C/∂W2", ax=ax2) is fig
    assert not ax1.patches and blocks(fig)["∂C/∂W2"]


def test_bad_operands_raise():
    with pytest.raises(ValueError, match="1-D and 2-D"):
        plots.shape_diagram(("T", (2, 3, 4)))
    with pytest.raises(ValueError, match="orientation"):
        plots.shape_diagram(("x", 3, "diagonal"))
    with pytest.raises(ValueError, match="at least one operand"):
        plots.shape_diagram("=")


def test_lengths_grow_with_the_dimension():
    lengths = [plots._length(n)[0] for n in (1, 10, 30, 100, 784, 50_000)]
    assert lengths == sorted(lengths) and lengths[0] == 1.0
    assert [plots._length(n)[1] for n in (100, 101)] == [False, True]


def test_existing_pictures_still_work():
    rng = np.random.default_rng(0)
    fig = plots.show_digits(rng.random((12, 784)), labels=np.arange(12) % 10, cols=6)
    assert len(fig.axes) == 12 and fig.axes[3].get_title() == "3"
    fig = plots.show_weights(rng.standard_normal((5, 784)))
    assert len(fig.axes) == 5
    M = plots.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], n=3)
    assert M.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    fig = plots.plot_confusion([0, 1, 1, 2], [0, 1, 2, 2], n=3)
    assert fig.axes[0].get_title() == "accuracy 75.00%"


def test_confusion_counts_stay_readable_on_dark_cells():
    # 3 → 5 is the most common mistake (darkest red): its count is written in white;
    # a rare mistake (pale) in black; the diagonal, left uncoloured, in green.
    y_true = [3] * 40 + [5] * 3 + [0] * 10
    y_pred = [5] * 30 + [3] * 10 + [3] * 3 + [0] * 10
    fig = plots.plot_confusion(y_true, y_pred)
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert colours == {"30": "white", "3": "black", "10": "tab:green"}
    plt.close(fig)


def test_show_digits_draws_into_given_axes_without_pyplot():
    from matplotlib.figure import Figure
    before = plt.get_fignums()
    X = np.random.default_rng(0).random((5, 784))
    fig = Figure()
    axes = fig.subplots(2, 4)
    assert plots.show_digits(X, [0, 1, 2, 3, 4], [0, 7, 2, 3, 9], axes=axes) is fig
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["0", "7 / 1", "2", "3", "9 / 4", "", "", ""]
    assert fig.axes[1].title.get_color() == "red" and not fig.axes[5].images
    assert plt.get_fignums() == before


def test_curve_styles_given_by_the_caller_win():
    from mnistnet.train import History
    h = History(sizes=[784, 30, 10], cost="quadratic", batch_size=10)
    h.epoch, h.cost, h.accuracy, h.learning_rate = [1, 2], [0.1, 0.05], [0.8, 0.9], [3.0, 3.0]
    fig = plots.plot_curves([h, h], ["a", "b"], styles=[dict(color="C0", ls="--"), dict(color="C0")])
    cost_lines = fig.axes[0].lines
    assert [line.get_color() for line in cost_lines] == ["C0", "C0"]
    assert [line.get_linestyle() for line in cost_lines] == ["--", "-"]


def test_plot_curves_wants_one_label_per_history():
    h = History()                                   # a second history was silently not drawn
    with pytest.raises(ValueError, match="2 histories but 1 labels"):
        plots.plot_curves([h, h], ["only one"])
