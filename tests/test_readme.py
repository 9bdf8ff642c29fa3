"""README.md's module map is the design as built: this keeps it true.

- every module of mnistnet/ has a row, and every row a module;
- imports flow one way, down the table: a module imports only modules listed
  above it (``__init__`` and ``__main__``, which gather the others, aside);
- the "first imported in" column names the first notebook whose code imports the
  module by name (``from mnistnet.X import``, ``from mnistnet import X``, or a name
  that ``mnistnet/__init__.py`` re-exports from X), or — where no notebook does.
"""

import ast
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mnistnet"
ROW = re.compile(r"^\| `([\w.]+)\.py` \|.*\| (—|\d\d) \|$")
FACADES = {"__init__", "__main__"}


def readme_rows():
    """[(module, first notebook or None)] in the table's order."""
    rows = [ROW.match(line) for line in (ROOT / "README.md").read_text().splitlines()]
    return [(m.group(1), None if m.group(2) == "—" else m.group(2)) for m in rows if m]


def reexports():
    """{name: module} for the names mnistnet/__init__.py imports from its modules."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    return {alias.asname or alias.name: node.module
            for node in tree.body if isinstance(node, ast.ImportFrom) and node.level == 1
            for alias in node.names}


def imported_modules(tree, package_relative):
    """The mnistnet modules an AST imports (relative imports inside the package, or absolute)."""
    names, modules = reexports(), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if package_relative and node.level == 1:
            base = node.module
        elif not package_relative and node.level == 0 and (node.module or "").split(".")[0] == "mnistnet":
            base = node.module.partition(".")[2] or None
        else:
            continue
        if base:
            modules.add(base)
        else:                                   # from . import X / from mnistnet import X
            for alias in node.names:
                modules.add(names.get(alias.name, alias.name))
    return modules


def notebook_imports(path):
    """Modules of mnistnet that a notebook's code cells import."""
    modules = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith(("%", "!")))
        modules |= imported_modules(ast.parse(code), package_relative=False)
    return modules


def test_every_module_has_one_row():
    listed = [name for name, _ in readme_rows()]
    assert len(listed) == len(set(listed)), "a module is listed twice"
    present = {p.stem for p in PACKAGE.glob("*.py")}
    assert set(listed) == present, (f"not in README's module map: {sorted(present - set(listed))}; "
                                    f"listed but missing: {sorted(set(listed) - present)}")


def test_imports_flow_down_the_table():
    order = [name for name, _ in readme_rows()]
    for i, name in enumerate(order):
        if name in FACADES:
            continue
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        for used in imported_modules(tree, package_relative=True) - FACADES:
            assert used in order[:i], f"{name}.py imports {used}, which README lists below it"


def test_first_imported_in_column():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    first = {}
    for path in notebooks:
        for module in notebook_imports(path):
            first.setdefault(module, path.name[:2])
    for name, column in readme_rows():
        if name in FACADES:
            continue
        assert first.get(name) == column, (
            f"README says {name}.py is first imported in {column or '—'}; "
            f"the notebooks say {first.get(name, '—')}")
