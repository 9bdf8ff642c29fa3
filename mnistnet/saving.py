"""Save a trained network to one ``.npz`` file and load it back.

The file is a plain numpy ``.npz`` archive (a zip of ``.npy`` arrays, read
with ``allow_pickle=False``, so loading a file never runs code) holding::

    format       "mnistnet.Network"      what the file is
    version      1                       the layout version (FORMAT_VERSION)
    sizes        int64 (L+1,)            e.g. [784, 30, 10]
    cost         "quadratic" | "cross_entropy"
    output       "sigmoid" | "softmax"
    init         "normal" | "scaled" | "uniform"   (how the weights were first drawn)
    dtype        "float64" | "float32"
    W1, W2, …    (n1, n0), (n2, n1), …   weights, stored (out, in)
    b1, b2, …    (n1,), (n2,), …         biases

One set of rules, ``_network_from``, checks what ``load_network`` reads and what
``save_network`` is about to write: a file that breaks them raises ``NetworkFileError`` saying
what is wrong (not an archive, a key missing, an unknown version or setting, arrays that do
not match ``sizes`` and ``dtype`` or hold NaN); ``save_network`` refuses with the same words.
"""

import os
import zipfile
from pathlib import Path

import numpy as np

from ._files import atomic_savez
from .network import Network

__all__ = ["save_network", "load_network", "NetworkFileError", "FORMAT_VERSION"]

FORMAT_NAME = "mnistnet.Network"
FORMAT_VERSION = 1
DTYPES = ("float64", "float32")   # a file's dtype: the same on every platform
_META = ("format", "version", "sizes", "cost", "output", "init", "dtype")


class NetworkFileError(ValueError):
    """A file given to ``load_network`` is not a valid saved network. The message says why."""


def _as_path(path):
    """`path` as a pathlib.Path; a TypeError naming it if it is not a str or a path."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__} {path!r}")
    return Path(path)


def save_network(net, path):
    """Write a network to ``path`` as an ``.npz`` file (exactly that name: no suffix is added),
    never half written; a network ``load_network`` would refuse raises before anything is written.

    - net: a Network, e.g. Network([784, 30, 10]) with W1 (30, 784), W2 (10, 30), b1 (30,), b2 (10,).
    - path: a str or pathlib.Path, conventionally ending in ".npz".
    Returns the path written, as a pathlib.Path. Raises:
    - TypeError if net is not a Network or path is not a str or path;
    - ValueError, in load_network's words, if it would refuse the file (module docstring);
    - OSError naming ``path`` if it cannot be written (no such folder, say).
    """
    if not isinstance(net, Network):
        raise TypeError(f"save_network expects a Network, got {type(net).__name__}")
    path = _as_path(path)
    sizes = np.asarray(net.sizes)
    try:
        dtype_name = np.dtype(net.dtype).name
    except TypeError:                   # not a dtype at all: refused below, named as it is
        dtype_name = str(net.dtype)
    fields = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
              "sizes": sizes.astype(np.int64) if sizes.dtype.kind in "iu" else sizes,
              "cost": net.cost_name, "output": net.output_name, "init": net.init,
              "dtype": dtype_name}
    fields.update({f"W{l}": W for l, W in enumerate(net.weights, start=1)})
    fields.update({f"b{l}": b for l, b in enumerate(net.biases, start=1)})
    arrays = {key: np.asarray(value) for key, value in fields.items()}
    try:
        _network_from(arrays)
    except NetworkFileError as e:
        raise ValueError(f"save_network: net cannot be saved, load_network would refuse the "
                         f"file: {e}. Nothing was written to {path}") from None
    return atomic_savez(path, arrays)


def load_network(path):
    """Read a network written by ``save_network`` from ``path``, a str or pathlib.Path.

    Returns a Network with the saved sizes, cost, output, init, dtype, weights
    [W1 (n1, n0), …] and biases [b1 (n1,), …]. Raises:
    - TypeError if path is not a str or path;
    - FileNotFoundError if there is no such file, IsADirectoryError if it is a folder,
      another OSError naming ``path`` if it cannot be read (permissions, say);
    - NetworkFileError if it is not a valid saved network (see the module docstring).
    """
    path = _as_path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "a folder, not a saved network", str(path))
    if not path.is_file():
        raise FileNotFoundError(f"no saved network at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, OSError) and e.errno is not None:   # cannot be opened: permissions, I/O
            raise type(e)(e.errno, e.strerror, str(path)) from None
        raise NetworkFileError(f"{path} is not a saved network: numpy cannot read it as an "
                               f".npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise NetworkFileError(f"{path} is a single .npy array, not an .npz archive written "
                               f"by save_network")
    with archive as data:
        try:
            return _network_from(data)
        except NetworkFileError as e:
            raise NetworkFileError(f"{path}: {e}") from None
        except (KeyError, ValueError) as e:     # a member unreadable
            raise NetworkFileError(f"{path}: cannot read it as a saved network ({e})") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise NetworkFileError(f"{path}: the archive is damaged ({e})") from None


# --- The rules of the file, for both directions ------------------------------

def _network_from(data):
    """The Network described by ``data``, a mapping key -> array (an open ``.npz`` archive, or
    the arrays about to be written), every field checked; NetworkFileError (without the path)."""
    sizes, dtype = _check_header(data)
    weights, biases = _check_parameters(data, sizes, dtype)
    settings = {key: _text(data, key) for key in ("cost", "output", "init")}
    try:
        return Network.from_arrays(weights, biases, dtype=dtype, **settings)
    except ValueError as e:       # an unknown cost, output or init
        raise NetworkFileError(str(e)) from None


def _field(data, key):
    """data[key] as an array; NetworkFileError if it holds Python objects (never unpickled)."""
    try:
        value = np.asarray(data[key])
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise
        value = np.empty((), dtype=object)   # what np.load refused to unpickle
    if value.dtype.hasobject:
        raise NetworkFileError(f"'{key}' holds Python objects, which are never unpickled; "
                               f"expected numbers or text")
    return value


def _text(data, key):
    """data[key] as a str; NetworkFileError if it is not a single string."""
    value = _field(data, key)
    if value.shape != () or value.dtype.kind != "U":
        raise NetworkFileError(f"'{key}' should be a single string, got an array of "
                               f"shape {value.shape} and dtype {value.dtype}")
    return str(value[()])


def _check_header(data):
    """The format, version and missing keys; returns (sizes [n0, …, nL], dtype)."""
    keys = set(data.keys())
    if "format" not in keys:
        raise NetworkFileError(f"an .npz archive but not a saved network: it has no 'format' "
                               f"key (its keys: {', '.join(sorted(keys)) or 'none'})")
    fmt = _text(data, "format")
    if fmt != FORMAT_NAME:
        raise NetworkFileError(f"format is {fmt!r}, expected {FORMAT_NAME!r}")
    missing = [k for k in _META if k not in keys]
    if missing:
        raise NetworkFileError(f"missing key(s) {', '.join(missing)}")
    version = _field(data, "version")
    if version.shape != () or version.dtype.kind not in "iu":
        raise NetworkFileError("'version' should be one integer")
    if int(version) != FORMAT_VERSION:
        newer = " (written by a newer mnistnet: upgrade it)" if version > FORMAT_VERSION else ""
        raise NetworkFileError(f"format version {int(version)}; this mnistnet reads "
                               f"version {FORMAT_VERSION}{newer}")
    sizes = _field(data, "sizes")
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) < 2 or np.any(sizes < 1):
        raise NetworkFileError(f"'sizes' should list at least two positive integers, "
                               f"got {sizes.tolist()}")
    dtype_name = _text(data, "dtype")
    if dtype_name not in DTYPES:
        raise NetworkFileError(f"dtype {dtype_name!r}; expected 'float64' or 'float32' "
                               f"(convert with net.astype(np.float32))")
    return [int(n) for n in sizes], np.dtype(dtype_name)


def _check_parameters(data, sizes, dtype):
    """W1, b1, … against sizes and dtype, finite; returns (weights, biases)."""
    keys, L = set(data.keys()), len(sizes) - 1
    expected = {f"W{l}": (sizes[l], sizes[l - 1]) for l in range(1, L + 1)}
    expected.update({f"b{l}": (sizes[l],) for l in range(1, L + 1)})
    missing = [k for k in expected if k not in keys]
    if missing:
        raise NetworkFileError(f"sizes {sizes} need {L} weight matrices and {L} bias vectors; "
                               f"missing {', '.join(missing)}")
    extra = sorted(k for k in keys if k[:1] in "Wb" and k[1:].isdigit() and k not in expected)
    if extra:
        raise NetworkFileError(f"sizes {sizes} describe {L} layers, but it "
                               f"also holds {', '.join(extra)}")
    params = {}
    for key, shape in expected.items():
        arr = params[key] = _field(data, key)
        if arr.shape != shape:
            what = "weights, stored (out, in)," if key[0] == "W" else "biases"
            hint = " (transposed?)" if arr.shape == shape[::-1] and len(shape) == 2 else ""
            raise NetworkFileError(f"{key} has shape {arr.shape}; sizes {sizes} need {what} "
                                   f"of shape {shape}{hint}")
        if arr.dtype != dtype:
            raise NetworkFileError(f"{key} is {arr.dtype}, but dtype is {dtype.name}")
        if not np.all(np.isfinite(arr)):
            raise NetworkFileError(f"{key} contains NaN or inf (did training diverge?)")
    return ([params[f"W{l}"] for l in range(1, L + 1)],
            [params[f"b{l}"] for l in range(1, L + 1)])
