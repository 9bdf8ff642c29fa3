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


def _fake_runs(tests):
    """accuracy_run replaced by a table lookup: {(name, seed): test accuracy}."""
    def run(name, data, seed, epochs=None, dtype=None, verbose=False, init=None):
        acc = tests[name, seed]
        init = bench.ACCURACY_RUNS[name]["init"] if init is None else init
        return dict(name=name, seed=seed, epochs=epochs, init=init, test=acc, test_at_best_val=acc,
                    best_val=acc, best_epoch=epochs, last_val=acc, s_per_epoch=0.1,
                    target=bench.ACCURACY_RUNS[name]["target"])
    return run


@pytest.mark.parametrize("ch3, verdict", [((0.9790, 0.9764, 0.9769), "MISSED"),
                                          ((0.9790, 0.9795, 0.9785), "met")])
def test_accuracy_targets_are_judged_on_the_mean_over_seeds(ch3, verdict, monkeypatch, capsys):
    # One seed at the target is not enough: the mean of the seeds must reach it.
    tests = {("ch1-quadratic", s): 0.951 for s in range(3)}
    tests.update({("ch3-cross-entropy-l2", s): a for s, a in enumerate(ch3)})
    monkeypatch.setattr(bench, "accuracy_run", _fake_runs(tests))
    args = bench.argparse.Namespace(quick=False, epochs=30, seeds=[0, 1, 2], verbose=False,
                                    runs=None, init=None)
    assert bench.run_accuracy(None, args) is (verdict == "met")
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("  ch3-cross-entropy-l2: mean"))
    mean = 100 * sum(ch3) / 3
    assert f"{mean:.2f}%" in line and line.endswith(f"target 97.9%: {verdict}")
    assert "ch1-quadratic: mean test accuracy over 3 seed(s) 95.10%" in out


def test_a_changed_initialisation_or_a_single_run_is_reported_but_not_judged(monkeypatch, capsys):
    tests = {("ch3-cross-entropy-l2", s): 0.970 for s in range(2)}
    monkeypatch.setattr(bench, "accuracy_run", _fake_runs(tests))
    args = bench.argparse.Namespace(quick=False, epochs=30, seeds=[0, 1], verbose=False,
                                    runs=["ch3-cross-entropy-l2"], init="normal")
    assert bench.run_accuracy(None, args) is True          # below target, but not judged
    out = capsys.readouterr().out
    assert "ch1-quadratic" not in out
    assert "not judged (init 'normal', the target is for 'scaled')" in out
    with pytest.raises(SystemExit):
        bench.main(["--run", "ch2"])                        # only the known runs
