"""Binder, simulated: what repo2docker does with binder/, in a fresh virtualenv.

repo2docker (the tool behind mybinder.org) installs binder/requirements.txt with pip
from the repository's root, then runs binder/postBuild there. This test does the
same in a new virtualenv (instead of repo2docker's conda environment in a container:
there is no Docker engine here), then executes a notebook with that environment's
Jupyter, as a Binder user would. What it cannot show: the download of MNIST at
build time (fetch finds the local cache here) and the container itself.
"""

import json

from installing import PYTHON, run


def test_binder_build_installs_runtime_only_fetches_and_runs_a_notebook(fresh_copy, tmp_path):
    venv = tmp_path / "binder-venv"
    run(f"{PYTHON} -m venv {venv}", cwd=fresh_copy)
    bin_dir = venv / "bin"
    pip = f"{bin_dir}/python -m pip --disable-pip-version-check"
    run(f"{pip} install -r binder/requirements.txt", cwd=fresh_copy)      # repo2docker's step
    run("bash binder/postBuild", cwd=fresh_copy, path_first=bin_dir)      # then postBuild

    # No test tools, and the package installed as a normal (not editable) install.
    listed = json.loads(run(f"{pip} list --format=json", cwd=fresh_copy))
    installed = {p["name"].lower(): p for p in listed}
    assert "mnistnet" in installed
    assert "editable_project_location" not in installed["mnistnet"], "mnistnet is installed editable"
    for tool in ("pytest", "nbval", "playwright"):
        assert tool not in installed, f"Binder installed the test tool {tool}"
    location = run(f"{bin_dir}/python -c 'import mnistnet; print(mnistnet.__file__)'",
                   cwd=tmp_path).strip()
    assert location.startswith(str(venv)), f"mnistnet imported from {location}, not the venv"

    # JupyterLab's news pop-up is off.
    settings = venv / "share/jupyter/lab/settings/overrides.json"
    notification = json.loads(settings.read_text())["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false"

    # A notebook runs top to bottom with Binder's environment and the fetched data.
    run(f"{bin_dir}/jupyter nbconvert --to notebook --execute --output-dir {tmp_path} "
        "notebooks/01-mnist-data.ipynb", cwd=fresh_copy, path_first=bin_dir)
    executed = json.loads((tmp_path / "01-mnist-data.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
