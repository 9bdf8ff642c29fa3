"""Fixtures for the real-browser tests: a private JupyterLab server and a headless chromium.

The server runs from this repository's .venv (its JupyterLab settings, overrides.json
included, as `make lab` uses them) on 127.0.0.1, on a free port, with
a random token, in its own process group, with every Jupyter/IPython folder
(config, data, runtime, settings, workspaces) in a temporary directory, so it
neither reads nor changes the user's setup. It is shut down at the end of the
session, also when a test fails.

Chromium is Debian's ($MNISTNET_CHROMIUM, else `chromium` on the PATH as .ci/run
finds it, else /usr/bin/chromium): Playwright
cannot download its own browsers on this machine.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("MNISTNET_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _die_with_parent():
    """In the child, before exec: get SIGTERM when the test process dies, however it dies."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except OSError:
        pass


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: ``url(path)`` gives an address with the token."""

    def __init__(self, root, port, token, proc, log):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def log_tail(self, n=40):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """Start JupyterLab on a temp folder of notebooks; stop it (and its kernels) afterwards."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    env = dict(os.environ)
    for var, name in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (base / name).mkdir()
        env[var] = str(base / name)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.pop("JUPYTER_PATH", None)
    # The kernel trains with one BLAS thread anyway; keep numpy from grabbing both cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    token = secrets.token_hex(16)
    port = _free_port()
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={base / 'settings'}",
           f"--LabApp.workspaces_dir={base / 'workspaces'}",
           "--LabApp.expose_app_in_browser=True"]
    # No news pop-up and no update check: the same settings file `make lab` uses,
    # binder/overrides.json, which `make setup` copies into .venv's JupyterLab settings.
    log = base / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,   # own process group: kernels die with it
                                preexec_fn=_die_with_parent)
    # A SIGTERM (e.g. from `timeout`) should still run the teardown below.
    previous_handler = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    server = Lab(root, port, token, proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(server.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer within 60 s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        _stop(proc)
        signal.signal(signal.SIGTERM, previous_handler)
        print(f"\nJupyterLab log: {log}")


def _stop(proc):
    """SIGTERM lets the server shut its kernels down; then make sure the whole group is gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # stray kernels of this server's own group only
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def artifacts():
    """The folder for test artefacts (screenshots), artifacts/ at the repository root (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install chromium "
                    f"(or set MNISTNET_CHROMIUM)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-failure.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"\nfailure screenshot: {path}")
        except Exception as e:            # the page may be gone; the report matters more
            print(f"\nno failure screenshot: {e}")
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Record each phase's result on the test item, so fixtures know whether it failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
