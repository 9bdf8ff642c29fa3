"""save_network / load_network: round trips, and a clear error for every kind of bad file."""

import os
import stat
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
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        d[f"W{l}"], d[f"b{l}"] = W, b
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
