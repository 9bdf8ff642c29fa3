"""Shared helpers for the install tests (`make test-install`): each builds a fresh
virtualenv from a copy of this repository's tracked files, as a new user would.

They are slow (a virtualenv and ~120 packages each, from pip's cache when it is warm)
and are run by `make test-install`, not by `make test`. They use no internet beyond
what pip needs, and MNIST comes from the cache that `python -m mnistnet fetch` filled.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_copy(tmp_path):
    """A copy of the repository's tracked (and new, not ignored) files, without .venv or caches."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    copy = tmp_path / "repo"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy
