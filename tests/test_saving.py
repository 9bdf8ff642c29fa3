"""save_network / load_network: round trips, and a clear error for every kind of bad file."""

import os
import stat
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from mnistnet import Network
from mnistnet.saving import FORMAT_VERSION, NetworkFileError, load_network, save_network


def _arrays(net):
    """What save_network writes, as a dict, to be altered by the tests."""
    d = {"format": np.array("mnistnet.Network"), "version": np.array(FORMAT_VERSION),
         "sizes": np.array(net.sizes), "cost": np.array(net.cost_name),
         "output": np.array(net.output_name), "init": np.array(net.init),
         "dtype": np.array(net.dtype.name)}
    d.update({f"W{l}": W for l, W in enumerate(net.weights, start=1)})
    d.update({f"b{l}": b for l, b in enumerate(net.biases, start=1)})
    return d


@pytest.fixture
def net():
    return Network([784, 30, 10], seed=1)


@pytest.mark.parametrize("kwargs", [
    dict(sizes=[784, 30, 10]),
    dict(sizes=[784, 100, 10], cost="cross_entropy", output="softmax", init="scaled"),
    dict(sizes=[5, 4, 3, 2], init="uniform", dtype=np.float32),
])
def test_round_trip_keeps_everything(tmp_path, kwargs):
    sizes = kwargs.pop("sizes")
    net = Network(sizes, seed=3, **kwargs)
    path = save_network(net, tmp_path / "net.npz")
    assert path == tmp_path / "net.npz" and path.is_file()
    back = load_network(path)
    assert back.sizes == net.sizes
    assert (back.cost_name, back.output_name, back.init, back.dtype) == \
        (net.cost_name, net.output_name, net.init, net.dtype)
    for a, b in zip(back.weights + back.biases, net.weights + net.biases):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    X = np.random.default_rng(0).uniform(size=(3, sizes[0]))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))


def test_exact_name_no_suffix_added_and_no_temp_left(tmp_path, net):
    save_network(net, tmp_path / "trained")          # no .npz suffix: written as given
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained"]
    assert load_network(str(tmp_path / "trained")).sizes == [784, 30, 10]


def test_loaded_network_is_independent_of_the_file(tmp_path, net):
    path = save_network(net, tmp_path / "n.npz")
    back = load_network(path)
    back.weights[0][0, 0] += 1.0                      # writable, and does not touch net
    assert back.weights[0][0, 0] != net.weights[0][0, 0]


def test_save_rejects_non_network(tmp_path):
    with pytest.raises(TypeError, match="expects a Network"):
        save_network({"W1": np.zeros(3)}, tmp_path / "x.npz")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved network"):
        load_network(tmp_path / "nope.npz")


def test_not_an_npz(tmp_path):
    p = tmp_path / "notes.npz"
    p.write_text("hello, not a zip file\n")
    with pytest.raises(NetworkFileError, match="not a saved network.*npz"):
        load_network(p)


def test_truncated_archive(tmp_path, net):
    p = save_network(net, tmp_path / "n.npz")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetworkFileError):
        load_network(p)


def test_single_npy_array(tmp_path):
    p = tmp_path / "w.npy"
    np.save(p, np.zeros((30, 784)))
    with pytest.raises(NetworkFileError, match="single .npy array"):
        load_network(p)


def test_other_npz_without_format(tmp_path):
    p = tmp_path / "weights.npz"
    np.savez(p, w=np.zeros(3))
    with pytest.raises(NetworkFileError, match="no 'format' key.*w"):
        load_network(p)


def _write(tmp_path, d, name="bad.npz"):
    p = tmp_path / name
    np.savez(p, **d)
    return p


def test_wrong_format_name(tmp_path, net):
    d = _arrays(net)
    d["format"] = np.array("someone.else")
    with pytest.raises(NetworkFileError, match="format is 'someone.else'"):
        load_network(_write(tmp_path, d))


@pytest.mark.parametrize("key", ["version", "sizes", "cost", "output", "init", "dtype"])
def test_missing_metadata_key(tmp_path, net, key):
    d = _arrays(net)
    del d[key]
    with pytest.raises(NetworkFileError, match=f"missing key.*{key}"):
        load_network(_write(tmp_path, d))


def test_newer_version(tmp_path, net):
    d = _arrays(net)
    d["version"] = np.array(FORMAT_VERSION + 1)
    with pytest.raises(NetworkFileError, match="version 2.*newer"):
        load_network(_write(tmp_path, d))


def test_older_unknown_version(tmp_path, net):
    d = _arrays(net)
    d["version"] = np.array(0)
    with pytest.raises(NetworkFileError, match="format version 0; this mnistnet reads version 1"):
        load_network(_write(tmp_path, d))


def test_missing_weight_array(tmp_path, net):
    d = _arrays(net)
    del d["W2"]
    with pytest.raises(NetworkFileError, match="missing W2"):
        load_network(_write(tmp_path, d))


def test_weights_not_matching_sizes(tmp_path, net):
    d = _arrays(net)
    d["sizes"] = np.array([784, 20, 10])
    with pytest.raises(NetworkFileError, match=r"W1 has shape \(30, 784\).*\(20, 784\)"):
        load_network(_write(tmp_path, d))


def test_transposed_weights_hint(tmp_path, net):
    d = _arrays(net)
    d["W2"] = d["W2"].T
    with pytest.raises(NetworkFileError, match=r"W2 has shape \(30, 10\).*transposed"):
        load_network(_write(tmp_path, d))


def test_bias_wrong_shape(tmp_path, net):
    d = _arrays(net)
    d["b1"] = d["b1"][:, None]
    with pytest.raises(NetworkFileError, match=r"b1 has shape \(30, 1\).*biases"):
        load_network(_write(tmp_path, d))


def test_extra_layer_arrays(tmp_path, net):
    d = _arrays(net)
    d["W3"] = np.zeros((5, 10))
    with pytest.raises(NetworkFileError, match="also holds W3"):
        load_network(_write(tmp_path, d))


@pytest.mark.parametrize("key,value,match", [
    ("cost", "hinge", "unknown cost 'hinge'"),
    ("output", "relu", "unknown output 'relu'"),
    ("init", "xavier", "unknown init 'xavier'"),
    ("dtype", "int8", "dtype 'int8'"),
])
def test_unknown_settings(tmp_path, net, key, value, match):
    d = _arrays(net)
    d[key] = np.array(value)
    with pytest.raises(NetworkFileError, match=match):
        load_network(_write(tmp_path, d))


def test_bad_sizes(tmp_path, net):
    d = _arrays(net)
    d["sizes"] = np.array([784])
    with pytest.raises(NetworkFileError, match="at least two positive"):
        load_network(_write(tmp_path, d))


def test_dtype_mismatch(tmp_path, net):
    d = _arrays(net)
    d["W1"] = d["W1"].astype(np.float32)
    with pytest.raises(NetworkFileError, match="W1 is float32.*float64"):
        load_network(_write(tmp_path, d))


def test_nan_weights(tmp_path, net):
    d = _arrays(net)
    d["b2"] = d["b2"].copy()
    d["b2"][0] = np.nan
    with pytest.raises(NetworkFileError, match="b2 contains NaN"):
        load_network(_write(tmp_path, d))


def test_pickled_object_arrays_are_refused(tmp_path, net):
    d = _arrays(net)
    d["cost"] = np.array([{"evil": 1}], dtype=object)
    p = _write(tmp_path, d)
    with pytest.raises(NetworkFileError):
        load_network(p)


def test_npz_is_a_plain_zip_of_npy(tmp_path, net):
    p = save_network(net, tmp_path / "n.npz")
    with zipfile.ZipFile(p) as z:
        names = set(z.namelist())
    assert {"format.npy", "version.npy", "sizes.npy", "W1.npy", "b2.npy"} <= names


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_saved_file_has_ordinary_permissions(tmp_path, net, umask, mode):
    old = os.umask(umask)
    try:
        p = save_network(net, tmp_path / "n.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == mode           # not mkstemp's private 0o600


def test_an_interrupted_save_leaves_nothing_and_keeps_the_old_file(tmp_path, net, monkeypatch):
    path = save_network(net, tmp_path / "n.npz")
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_network(Network([5, 3, 2], seed=0), path)
    assert [p.name for p in tmp_path.iterdir()] == ["n.npz"] and path.read_bytes() == before


# ---------------------------------------------------------------------------
# save_network refuses, before writing anything, what load_network would refuse
# ---------------------------------------------------------------------------


def _with_dtype(dtype):
    def change(net):
        net.weights = [W.astype(dtype) for W in net.weights]
        net.biases = [b.astype(dtype) for b in net.biases]
        net.dtype = np.dtype(dtype)
    return change


def _set(attribute, value):
    return lambda net: setattr(net, attribute, value)


def _nan_weight(net):
    net.weights[0][2, 3] = np.nan


def _transposed_W2(net):
    net.weights[1] = net.weights[1].T


def _int_weights(net):
    net.weights[0] = np.zeros(net.weights[0].shape, dtype=np.int64)


def _one_bias_missing(net):
    net.biases = net.biases[:1]


BAD_NETWORKS = {
    "float16": (_with_dtype(np.float16), "dtype 'float16'; expected 'float64' or 'float32'"),
    "longdouble": (_with_dtype(np.longdouble), f"dtype '{np.dtype(np.longdouble).name}'; expected"),
    "int weights": (_int_weights, "W1 is int64, but dtype is float64"),
    "NaN weight": (_nan_weight, "W1 contains NaN or inf"),
    "transposed W2": (_transposed_W2, r"W2 has shape \(4, 3\).*\(3, 4\) \(transposed\?\)"),
    "sizes": (_set("sizes", [5, 6, 3]), r"W1 has shape \(4, 5\); sizes \[5, 6, 3\]"),
    "cost": (_set("cost_name", "hinge"), "unknown cost 'hinge'"),
    "init": (_set("init", None), "'init' holds Python objects"),
    "one bias missing": (_one_bias_missing, "missing b2"),
}
if np.dtype(np.longdouble) == np.float64:           # Windows: long double is float64
    del BAD_NETWORKS["longdouble"]


@pytest.mark.parametrize("case", list(BAD_NETWORKS))
def test_save_refuses_what_load_would_refuse_with_the_same_words(tmp_path, case):
    change, match = BAD_NETWORKS[case]
    net = Network([5, 4, 3], seed=0)
    change(net)
    # What load_network says about such a file (written here without save_network) ...
    written = _write(tmp_path, _arrays(net), "raw.npz")
    with pytest.raises(NetworkFileError, match=match) as on_load:
        load_network(written)
    written.unlink()
    reason = str(on_load.value).removeprefix(f"{written}: ")
    # ... save_network says before writing anything, as a ValueError naming the argument.
    with pytest.raises(ValueError, match=match) as on_save:
        save_network(net, tmp_path / "n.npz")
    assert reason in str(on_save.value) and "net" in str(on_save.value)
    assert list(tmp_path.iterdir()) == []


def test_save_names_the_users_path_when_the_folder_does_not_exist(tmp_path, net, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        save_network(net, "no/such/dir/n.npz")
    message = str(e.value)
    assert "no/such/dir/n.npz" in message and "no/such/dir" in message
    assert ".tmp" not in message and ".n.npz." not in message
    assert e.value.filename == "no/such/dir/n.npz"


def test_save_onto_a_folder_names_the_users_path(tmp_path, net):
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError) as e:
        save_network(net, tmp_path / "adir")
    assert str(tmp_path / "adir") in str(e.value) and ".tmp" not in str(e.value)
    assert [p.name for p in tmp_path.iterdir()] == ["adir"] and not any((tmp_path / "adir").iterdir())


def test_save_in_a_folder_it_may_not_write_names_the_users_path(tmp_path, net, monkeypatch):
    # Root ignores file modes, so the refusal is simulated: os.open raises as for a read-only folder.
    real_open = os.open

    def refused(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(PermissionError) as e:
        save_network(net, tmp_path / "n.npz")
    assert str(tmp_path / "n.npz") in str(e.value) and ".tmp" not in str(e.value)


@pytest.mark.parametrize("function", [save_network, load_network])
def test_a_path_that_is_not_a_path_is_named(function, net):
    args = (net, 5) if function is save_network else (5,)
    with pytest.raises(TypeError, match="path must be a str or pathlib.Path, got int 5"):
        function(*args)


def _dead_pid():
    """The id of a process that has ended (a child that ran and was reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_a_save_removes_stale_temporary_files_of_the_same_name(tmp_path, net):
    dead = _dead_pid()
    stale = [f".n.npz.{dead}-0123456789ab.tmp",      # its process is gone (killed mid-save)
             ".n.npz.0123456789ab.tmp"]              # older naming, untouched for two hours
    kept = [f".n.npz.{os.getppid()}-0123456789ab.tmp",  # its process still runs: maybe saving now
            f".other.npz.{dead}-0123456789ab.tmp",   # another file's: left to its own saves
            ".n.npz.fedcba987654.tmp"]               # older naming, fresh
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"PK half a zip")
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / stale[1], (two_hours_ago, two_hours_ago))
    save_network(net, tmp_path / "n.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["n.npz"])


def test_load_names_a_folder_and_an_unreadable_file_as_such(tmp_path, net, monkeypatch):
    with pytest.raises(IsADirectoryError, match="a folder, not a saved network") as e:
        load_network(tmp_path)
    assert e.value.filename == str(tmp_path)

    path = save_network(net, tmp_path / "n.npz")
    real_load = np.load

    def unreadable(file, *args, **kwargs):    # root ignores file modes: the refusal is simulated
        if os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_load(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", unreadable)
    with pytest.raises(PermissionError) as e:       # not "not a saved network": the file is fine
        load_network(path)
    assert e.value.filename == str(path)


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM is POSIX")
def test_a_sigterm_during_a_save_leaves_no_temporary_file(tmp_path):
    script = f"""
import os, signal, numpy as np
from mnistnet import Network, save_network
def slow(file, **arrays):
    file.write(b"PK half a zip"); file.flush()
    os.kill(os.getpid(), signal.SIGTERM)        # a kernel restart, in the middle of the write
    raise AssertionError("not reached")
np.savez = slow
save_network(Network([5, 4, 3], seed=0), {str(tmp_path / "n.npz")!r})
"""
    import mnistnet
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mnistnet.__file__)))
    child = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert child.returncode == -15, child.stderr        # ended by the SIGTERM, as asked
    assert list(tmp_path.iterdir()) == []
