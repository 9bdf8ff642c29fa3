"""Merge each cell's consecutive stream outputs of the same name (stdout, stderr).

How a cell's printed text is split into "stream" outputs depends on timing (a cell
that prints 5 lines may come back as 1, 2 or 3 outputs), so re-executing a notebook
would change lines in git that say nothing. `make notebooks` runs this after
executing; the text itself is unchanged (nbval compares streams merged anyway).

usage: python .ci/tidy_notebooks.py NOTEBOOK.ipynb ...
"""
import sys

import nbformat


def merge_streams(outputs):
    merged = []
    for out in outputs:
        if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == out.name):
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


if __name__ == "__main__":
    for path in sys.argv[1:]:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = merge_streams(cell.outputs)
        nbformat.write(nb, path)
