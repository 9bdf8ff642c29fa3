"""The README's commands for machines without make (Windows), run as written.

The README gives them in Windows spelling (``py``, ``.venv\\Scripts\\``); this test
translates them to this machine's spelling (``python3``, ``.venv/bin/``) and runs
them in a fresh copy of the repository, so they cannot rot. Two changes, so that
the test does not hang or take the whole suite's time: ``jupyter lab notebooks``
(which would open a browser and wait) is run as ``jupyter lab --version`` from the
same place, and the test command gets ``--collect-only``: every test and notebook
cell is found and the options are valid (``make test`` runs them for real).
"""

import re
from pathlib import Path

from installing import PYTHON, run

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_blocks():
    """The ```bat blocks of the README's "Without make" part: (set-up lines, test lines)."""
    text = README.read_text(encoding="utf-8")
    start = text.index("**Without make**")
    end = text.index("\n## ", start)
    blocks = re.findall(r"```bat\n(.*?)```", text[start:end], flags=re.S)
    assert len(blocks) == 2, "expected a set-up block and a test block in 'Without make'"
    return [[line.strip() for line in b.splitlines() if line.strip()] for b in blocks]


def posix(line):
    r"""'py -m venv .venv' -> '<python> -m venv .venv'; '.venv\Scripts\python' -> '.venv/bin/python'."""
    line = re.sub(r"^py\b", PYTHON, line)
    return line.replace(".venv\\Scripts\\", ".venv/bin/").replace("\\", "/")


def test_readme_commands_without_make(fresh_copy):
    setup, test = readme_blocks()
    assert setup[-1] == r".venv\Scripts\jupyter lab notebooks"
    for line in setup[:-1]:
        run(posix(line), cwd=fresh_copy)
    version = run(".venv/bin/jupyter lab --version", cwd=fresh_copy).strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", version), version
    *install, command = test                  # install the test tools, then the tests
    for line in install:
        run(posix(line), cwd=fresh_copy)
    collected = run(posix(command) + " --collect-only -q", cwd=fresh_copy)
    assert re.search(r"^\d+ tests collected", collected, flags=re.M), collected[-500:]
    assert "notebooks/03-backprop-shapes.ipynb::Cell 0" in collected
