"""mnistnet.bench: runs where the Unix-only bits are missing, and refuses settings it cannot run."""

import os
import subprocess
import sys

import pytest

from mnistnet import bench


def test_bench_imports_without_the_unix_only_resource_module():
    code = "import sys; sys.modules['resource'] = None; import mnistnet.bench; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_max_rss_is_unknown_without_resource(monkeypatch):
    assert bench._max_rss_mib() > 0
    monkeypatch.setitem(sys.modules, "resource", None)         # `import resource` fails
    assert bench._max_rss_mib() is None


def test_load_average_is_unknown_where_the_system_does_not_say(monkeypatch):
    assert bench.load_average().endswith(f"(on {os.cpu_count()} cores)")
    monkeypatch.delattr(os, "getloadavg")                       # as on Windows
    assert bench.load_average() == "unknown"

    def unavailable():
        raise OSError("load average unobtainable")

    monkeypatch.setattr(os, "getloadavg", unavailable, raising=False)
    assert bench.load_average() == "unknown"


@pytest.mark.parametrize("option", ["--epochs", "--repeat"])
@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_counts_below_one_are_refused_with_a_clear_message(option, value, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main([option, value])                             # before any data is loaded
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and "a whole number >= 1" in err


def test_the_mnistnet_command_passes_bench_arguments_and_exit_codes_through(monkeypatch, capsys):
    from mnistnet.__main__ import main
    monkeypatch.setattr(bench, "main", lambda argv: 1 if argv == ["--seeds", "0"] else 0)
    assert main(["bench", "--seeds", "0"]) == 1 and main(["bench"]) == 0
    monkeypatch.undo()
    with pytest.raises(SystemExit) as info:
        main(["bench", "--epochs", "0"])
    assert info.value.code == 2 and "argument --epochs" in capsys.readouterr().err
