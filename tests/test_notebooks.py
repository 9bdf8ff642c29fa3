"""Every notebook follows the series' conventions (see notebooks/ and README.md).

- valid nbformat, kernelspec python3, language python;
- first cell: markdown, ``# NN · Title`` (NN = the file's number), then the lines
  ``**This notebook answers:**`` and ``**It assumes:**``;
- last cell: one navigation line ``[← NN · Prev](…) · [Index](../README.md) · [NN · Next →](…)``
  whose links resolve, point to the neighbours in the numbering and quote their titles;
- executed top to bottom in one run (execution counts 1, 2, 3, …), no error outputs,
  no memory addresses in the outputs (they would break nbval);
- no stored widget state and no per-cell timings (`make notebooks` stores neither), so
  that re-executing a notebook with no code change gives a small diff;
- README.md lists every notebook.

The outputs themselves are checked by nbval (``make test-notebooks``).
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]-*.ipynb"))
NUMBERS = {int(p.name[:2]): p for p in NOTEBOOKS}

TITLE = re.compile(r"^# (\d\d) · (\S.*)$")
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}")


def ids(paths):
    return [p.name for p in paths]


def read(path):
    return nbformat.read(path, as_version=4)


def title_of(path):
    """'NN · Title' from the first line of the notebook's first cell."""
    first = read(path).cells[0].source.splitlines()[0]
    return first[2:].strip()


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no NN-name.ipynb in {NB_DIR}"
    for p in NB_DIR.glob("*.ipynb"):
        assert re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", p.name), f"{p.name}: name it NN-lower-case.ipynb"
    assert len(NUMBERS) == len(NOTEBOOKS), "two notebooks share a number"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_valid_nbformat_and_python3_kernel(path):
    nb = read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec must be python3"
    assert nb.metadata.get("language_info", {}).get("name") == "python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_first_cell_title_answers_assumes(path):
    cell = read(path).cells[0]
    assert cell.cell_type == "markdown", "the first cell must be markdown"
    lines = cell.source.splitlines()
    m = TITLE.match(lines[0])
    assert m, f"first line must be '# NN · Title' (middle dot U+00B7), got {lines[0]!r}"
    assert m.group(1) == path.name[:2], f"title number {m.group(1)} does not match the file name"
    assert any(l.startswith("**This notebook answers:**") for l in lines), \
        "missing a line starting '**This notebook answers:**'"
    assert any(l.startswith("**It assumes:**") for l in lines), \
        "missing a line starting '**It assumes:**'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_last_cell_navigation(path):
    cell = read(path).cells[-1]
    assert cell.cell_type == "markdown", "the last cell must be the markdown navigation line"
    lines = [l for l in cell.source.splitlines() if l.strip()]
    assert len(lines) == 1, f"the navigation cell must hold exactly one line, got {len(lines)}"
    links = LINK.findall(lines[0])
    assert lines[0] == " · ".join(f"[{t}]({u})" for t, u in links), \
        "the line must be links joined by ' · ' and nothing else"

    n = int(path.name[:2])
    prev = [(t, u) for t, u in links if t.startswith("← ")]
    nxt = [(t, u) for t, u in links if t.endswith(" →")]
    index = [(t, u) for t, u in links if t == "Index"]
    assert index == [("Index", "../README.md")], "needs one [Index](../README.md) link"
    assert len(links) == len(prev) + len(nxt) + len(index), f"unexpected links in {lines[0]!r}"
    assert links.index(index[0]) == len(prev), "order: prev · Index · next"

    for target in (u for _, u in links):
        assert (NB_DIR / target).resolve().is_file(), f"link target {target} does not exist"

    # prev: every notebook but the first links to the one numbered just before it
    if n == min(NUMBERS):
        assert not prev, "the first notebook has no previous link"
    else:
        assert len(prev) == 1, "missing the '← NN · Title' link to the previous notebook"
        text, target = prev[0]
        assert target[:2] == f"{n - 1:02d}", f"previous link must point to notebook {n - 1:02d}"
        assert text == f"← {title_of(NB_DIR / target)}", "link text must quote the target's title"
    # next: present exactly when the series goes on
    if n + 1 in NUMBERS or nxt:
        assert len(nxt) == 1, f"notebook {n + 1:02d} exists: link to it ('NN · Title →')"
        text, target = nxt[0]
        assert target[:2] == f"{n + 1:02d}", f"next link must point to notebook {n + 1:02d}"
        assert text == f"{title_of(NB_DIR / target)} →", "link text must quote the target's title"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_executed_in_order_without_errors(path):
    code = [c for c in read(path).cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    counts = [c.execution_count for c in code]
    assert None not in counts, f"cells {[i for i, c in enumerate(counts) if c is None]} were not executed"
    assert counts == list(range(1, len(code) + 1)), \
        "execution counts must be 1, 2, 3, …: re-run the whole notebook (make notebooks)"
    for i, c in enumerate(code):
        for out in c.outputs:
            assert out.output_type != "error", f"code cell {i} has an error output: {out.get('ename')}"
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            assert not ADDRESS.search(text), \
                f"code cell {i} prints a memory address (end the line with ';'): {text[:80]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_readme_lists_notebook(path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert path.name in readme, f"README.md does not list {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_widget_state_or_timings_stored(path):
    nb = read(path)
    assert "widgets" not in nb.metadata, (
        "the notebook stores widget state (ids that change on every run): re-execute it "
        "with `make notebooks NB=...`, which stores none")
    timed = [i for i, cell in enumerate(nb.cells) if "execution" in cell.get("metadata", {})]
    assert not timed, f"cells {timed} store execution timings: re-execute with `make notebooks`"
