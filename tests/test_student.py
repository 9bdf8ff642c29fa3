"""Notebook 08's exercises and the learners' copy without solutions (`make student`).

The exercise cells are found by their tags:

- ``exercise``: a template the learner fills in (its body raises NotImplementedError);
- ``check``: runs a checker on the learner's function;
- ``solution``: a hidden solution (and the sentence pointing to it), removed from the
  student copy;
- ``puzzle``: a first attempt with planted mistakes, and its check, which prints the
  report only once the learner has written a prediction.

Every solution is run through its checker here, every template must give the friendly
"not written yet" report, every puzzle must be diagnosed as the notebook says, and no
stored output may give away an answer the learner has not written yet.
"""

import contextlib
import inspect
import io
import linecache
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mnistnet.check import check_backprop, check_deltas, check_forward

ROOT = Path(__file__).resolve().parents[1]
NB08 = ROOT / "notebooks" / "08-check-your-backprop.ipynb"

# template name: (its checker, the hidden solution, the puzzle's attempt, what the attempt's report finds)
EXERCISES = {
    "forward": (check_forward, "forward_solution", "forward_attempt", {"forward_variant"}),
    "deltas": (check_deltas, "deltas_solution", "deltas_attempt", {"exception"}),
    "backprop": (check_backprop, "backprop_solution", "backprop_attempt",
                 {"transpose", "sigma_prime_of_a"}),
    "backprop_batch": (check_backprop, "backprop_batch_solution", "backprop_batch_attempt",
                       {"factor", "bias_scalar"}),
}
# Stored outputs must not spell out any of these: each is (part of) an exercise's answer.
SPOILERS = ["`W2.T @ delta2`", "np.outer(δ1, x)", "σ(z1) must go into layer 2", "sigmoid_prime(z1)",
            "sigmoid_prime(z2)", "divide by B", "axis=0", "_solution"]


def read(path=NB08):
    return nbformat.read(path, as_version=4)


def tagged(nb, tag, cell_type="code"):
    return [c for c in nb.cells if c.cell_type == cell_type and tag in c.metadata.get("tags", [])]


def output_text(cell):
    return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


def setup_namespace(nb):
    """The notebook's first code cell (its imports) run in a fresh namespace, magics left out."""
    first = next(c for c in nb.cells if c.cell_type == "code")
    ns = {}
    exec("\n".join(l for l in first.source.splitlines() if not l.startswith("%")), ns)
    return ns


def run(source, ns):
    """Execute a cell's source in ns, as IPython does (its lines readable for tracebacks);
    return what it printed."""
    filename = f"<cell {hash(source) & 0xFFFFFFFF:08x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, filename, "exec"), ns)
    return out.getvalue()


def defined_by(cells, ns):
    """Run cells one by one; return {function name defined: the cell's source}."""
    found = {}
    for cell in cells:
        before = set(ns)
        run(cell.source, ns)
        found.update({name: cell.source for name in set(ns) - before if callable(ns[name])})
    return found


def test_every_exercise_has_template_check_solution_and_puzzle():
    nb = read()
    ns = setup_namespace(nb)
    assert set(defined_by(tagged(nb, "exercise"), ns)) == set(EXERCISES)
    assert set(defined_by(tagged(nb, "solution"), ns)) == {v[1] for v in EXERCISES.values()}
    assert {v[2] for v in EXERCISES.values()} <= set(defined_by(tagged(nb, "puzzle"), ns))
    checks = [c.source for c in tagged(nb, "check")]
    for name, (checker, *_) in EXERCISES.items():
        assert f"print({checker.__name__}({name}))" in checks, f"no check cell for {name}"


def test_solution_cells_hidden_for_jupyterlab_and_colab_and_print_nothing():
    solutions = tagged(read(), "solution")
    assert len(solutions) == len(EXERCISES)
    for cell in solutions:
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True   # JupyterLab
        assert cell.metadata.get("cellView") == "form"                         # Colab ...
        assert cell.source.startswith("#@title ")                              # ... shows the title
        assert not cell.outputs, "a solution's output would show under its collapsed source"


def test_each_solution_passes_its_checker_and_matches_the_template_signature():
    nb = read()
    ns = setup_namespace(nb)
    defined_by(tagged(nb, "exercise"), ns)
    defined_by(tagged(nb, "solution"), ns)          # each cell also asserts its own check
    for name, (checker, solution, _, _) in EXERCISES.items():
        report = checker(ns[solution])
        assert report.ok, f"{solution}:\n{report}"
        assert inspect.signature(ns[solution]) == inspect.signature(ns[name])
    assert check_backprop(ns["backprop_batch_solution"]).form == "batch"


def test_unfilled_templates_get_a_friendly_not_written_yet_report():
    nb = read()
    ns = setup_namespace(nb)
    defined_by(tagged(nb, "exercise"), ns)
    for name, (checker, *_) in EXERCISES.items():
        report = checker(ns[name])
        assert not report.ok and report.kinds == {"not_written"}, str(report)
        assert "NOT WRITTEN YET" in str(report) and "Traceback" not in str(report)


def test_stored_checks_show_not_written_yet_and_puzzles_wait_for_a_prediction():
    nb = read()
    for cell in tagged(nb, "check"):
        if "predictions" in cell.source:            # the warm-up: no prediction made yet
            assert output_text(cell).count("(no prediction yet)") == 6
        else:
            assert "NOT WRITTEN YET" in output_text(cell) and "OK" not in output_text(cell)
    gated = [c for c in tagged(nb, "puzzle") if "is ...:" in c.source]
    assert len(gated) == len(EXERCISES)
    for cell in gated:
        assert output_text(cell).startswith("Predict first")


def test_no_stored_output_gives_an_answer_away():
    for i, cell in enumerate(read().cells):
        if cell.cell_type == "code":
            text = output_text(cell)
            for spoiler in SPOILERS:
                assert spoiler not in text, f"cell {i} shows {spoiler!r}"


def test_puzzles_are_diagnosed_as_the_notebook_says():
    nb = read()
    ns = setup_namespace(nb)
    defined_by(tagged(nb, "puzzle"), ns)            # the gated checks print "Predict first"
    for name, (checker, _, attempt, kinds) in EXERCISES.items():
        report = checker(ns[attempt])
        assert report.kinds == kinds, f"{attempt}:\n{report}"
    gated = [c for c in tagged(nb, "puzzle") if "is ...:" in c.source]
    for n, cell in enumerate(gated, start=1):
        ns[f"prediction_{n}"] = "my guess"
        assert "NOT YET" in run(cell.source, ns)


def test_warm_up_compares_predictions_with_what_numpy_does():
    nb = read()
    ns = setup_namespace(nb)
    warm_up = next(c for c in nb.cells if "predictions = {" in c.source)
    check = next(c for c in tagged(nb, "check") if "predictions" in c.source)
    run(warm_up.source, ns)
    ns["predictions"] = {"W2 @ delta2": "error", "W2.T @ delta2": (30,), "delta2 @ W2": (30,),
                         "np.outer(x, delta1)": (784, 30), "np.outer(delta1, x)": (30, 784),
                         "delta1 * x": "error"}
    lines = [l for l in run(check.source, ns).splitlines() if not l.startswith(" ")]
    assert len(lines) == 6 and all(l.endswith("as you predicted") for l in lines), lines
    ns["predictions"]["W2 @ delta2"] = (30,)
    printed = run(check.source, ns)
    assert "W2 @ delta2          -> error: you predicted (30,)" in printed
    assert "W2.T @ delta2" in printed                # the explanation names the fix, once asked


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make (the README gives the command)")
def test_make_student_strips_the_solutions_and_the_copy_runs_clean(tmp_path):
    pytest.importorskip("nbconvert")
    nbclient = pytest.importorskip("nbclient")
    # -o: use the environment running this test as it is (no install from the lock files).
    subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "student",
                    f"STUDENT_DIR={tmp_path}", f"PY={sys.executable}"],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == \
        sorted(p.name for p in NB08.parent.glob("[0-9][0-9]-*.ipynb"))
    original, student = read(), read(tmp_path / NB08.name)
    removed = {c.id for c in original.cells if "solution" in c.metadata.get("tags", [])}
    assert removed and [c.id for c in student.cells] == \
        [c.id for c in original.cells if c.id not in removed]
    assert not any("solution" in c.metadata.get("tags", []) or "_solution" in c.source
                   for c in student.cells)
    for tag in ("exercise", "check", "puzzle"):
        assert [c.source for c in tagged(student, tag)] == [c.source for c in tagged(original, tag)]
    client = nbclient.NotebookClient(student, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in student.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors, errors
    for cell in tagged(student, "check"):
        if "predictions" not in cell.source:
            assert "NOT WRITTEN YET" in output_text(cell)
