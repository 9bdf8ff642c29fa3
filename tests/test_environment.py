"""environment.yml (conda) and pyproject.toml (pip) must name the same dependencies."""

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:      # Python 3.10
    import tomli as tomllib

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

def _name(requirement):
    """'ipywidgets>=8,<9' -> 'ipywidgets' (names compared case- and -/_-insensitively)."""
    name = re.split(r"[\s<>=!~\[;]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def _spec(requirement):
    """'tomli>=1.1; python_version < "3.11"' -> '>=1.1' (conda has no environment markers)."""
    return requirement.split(";")[0].strip()[len(_name(requirement)):].replace(" ", "")


def _pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return project, {_name(r): _spec(r) for r in reqs}


def _environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep.get("pip", [])
        else:
            conda[_name(dep)] = _spec(dep)
    return env, conda, pip


def test_environment_uses_conda_forge_only_and_is_named_mnistnet():
    env, _, _ = _environment()
    assert env["name"] == "mnistnet"
    assert env["channels"] == ["conda-forge"]


def test_same_dependencies_and_versions():
    _, pypi = _pyproject()
    _, conda, _ = _environment()
    conda_only = {"python", "pip"}
    assert set(conda) - conda_only == set(pypi), (
        f"only in environment.yml: {sorted(set(conda) - conda_only - set(pypi))}; "
        f"only in pyproject.toml: {sorted(set(pypi) - set(conda))}")
    for name, spec in pypi.items():
        assert conda[name] == spec, f"{name}: pyproject says {spec!r}, environment.yml {conda[name]!r}"


def test_same_python_and_package_installed_with_pip():
    project, _ = _pyproject()
    _, conda, pip = _environment()
    assert conda["python"] == project["requires-python"]
    assert pip == ["-e ."], "environment.yml installs the package itself with pip"


def _minimums_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("minimums", ROOT / ".ci" / "minimums.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_test_min_pins_every_runtime_dependency_to_its_lower_bound():
    minimums = _minimums_module().minimums
    assert minimums(["numpy>=1.24", "ipywidgets>=8,<9", "jupyterlab >= 4"]) == [
        "numpy==1.24.*", "ipywidgets==8.0.*", "jupyterlab==4.0.*"]
    project, _ = _pyproject()
    pins = minimums(project["dependencies"])
    assert [_name(p) for p in pins] == [_name(r) for r in project["dependencies"]]
    with pytest.raises(SystemExit, match="no '>=' lower bound"):
        minimums(["numpy"])


# --- the lock files (`make lock`) -------------------------------------------------

def _lock(name):
    """{package: (version, marker or None)} for every pin in a lock file written by `make lock`.

    A universal lock can pin a package twice, for different Pythons: each marker is kept.
    """
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (version,) = [s.version for s in req.specifier if s.operator == "=="]
        pins.setdefault(_name(req.name), []).append((version, req.marker))
    return pins


def _active(pins):
    """The one version of each package that applies to this Python and platform."""
    active = {}
    for name, versions in pins.items():
        chosen = [v for v, marker in versions if marker is None or marker.evaluate()]
        assert len(chosen) <= 1, f"{name}: several pins apply here: {chosen}"
        if chosen:
            active[name] = chosen[0]
    return active


@pytest.mark.parametrize("lock, extras", [("requirements.lock", False),
                                          ("requirements-test.lock", True)])
def test_lock_pins_every_dependency_inside_its_declared_range(lock, extras):
    from packaging.requirements import Requirement

    project, _ = _pyproject()
    declared = list(project["dependencies"])
    if extras:
        declared += project["optional-dependencies"]["test"]
    active = _active(_lock(lock))
    for requirement in map(Requirement, declared):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = _name(requirement.name)
        assert name in active, f"{lock} pins no version of {name}: run `make lock`"
        assert requirement.specifier.contains(active[name], prereleases=True), (
            f"{lock} pins {name}=={active[name]}, outside pyproject.toml's {requirement}: "
            f"run `make lock`")


def test_runtime_lock_is_the_test_lock_without_the_test_tools():
    runtime, test = _lock("requirements.lock"), _lock("requirements-test.lock")
    assert not set(runtime) - set(test), f"only in requirements.lock: {set(runtime) - set(test)}"
    for name, versions in runtime.items():
        assert versions == test[name], f"{name}: {versions} in one lock, {test[name]} in the other"
    assert "pytest" in test and "pytest" not in runtime


def test_environment_yml_admits_the_locked_versions():
    """conda users resolve environment.yml themselves; it must not exclude what CI ran."""
    from packaging.specifiers import SpecifierSet

    _, conda, _ = _environment()
    pins = _lock("requirements-test.lock")
    for name, spec in conda.items():
        if name in ("python", "pip"):
            continue
        assert name in pins, f"environment.yml names {name}, which the lock does not pin"
        for version, marker in pins[name]:        # every Python's pin, not only this one's
            assert SpecifierSet(spec).contains(version, prereleases=True), (
                f"environment.yml asks {name}{spec}, but the lock pins {name}=={version}"
                + (f" for {marker}" if marker else ""))
