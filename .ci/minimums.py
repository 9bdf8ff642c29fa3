"""Print pip requirements that pin each runtime dependency to its declared minimum.

``numpy>=1.24`` becomes ``numpy==1.24.*`` and ``jupyterlab>=4`` becomes
``jupyterlab==4.0.*``: the oldest minor release we claim to support, with its
latest bug-fix release. ``make test-min`` installs these into a
separate virtualenv and runs the tests there, so the lower bounds in
pyproject.toml are tested, not just written down. A dependency without a lower
bound is an error: there would be nothing to test.
"""
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10: the test extras install tomli
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def minimums(dependencies):
    """['numpy>=1.24', 'ipywidgets>=8,<9'] -> ['numpy==1.24.*', 'ipywidgets==8.0.*']."""
    pins = []
    for requirement in dependencies:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9.]*)\s*(,.*)?", requirement)
        if not match:
            raise SystemExit(f"{PYPROJECT.name}: {requirement!r} has no '>=' lower bound to test")
        name, version = match.group(1), match.group(2).rstrip(".")
        if "." not in version:
            version += ".0"
        pins.append(f"{name}=={version}.*")
    return pins


if __name__ == "__main__":
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    print("\n".join(minimums(project["dependencies"])))
