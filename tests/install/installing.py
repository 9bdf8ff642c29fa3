"""Run a command as a user would type it (used by the install tests)."""

import os
import subprocess
import sys

PYTHON = sys.executable


def run(command, cwd, path_first=None, timeout=900):
    """Run a shell command as a user would type it; fail the test with its output if it fails."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    if path_first:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    result = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"`{command}` failed with exit code {result.returncode}\n"
        f"--- stdout (end)\n{result.stdout[-3000:]}\n--- stderr (end)\n{result.stderr[-3000:]}")
    return result.stdout

