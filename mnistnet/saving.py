"""Save a trained network to one ``.npz`` file and load it back.

Introduced in ``notebooks/07-going-further.ipynb``, which saves the network
that reaches 98 % and loads it again.

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

Every field is checked on loading; a file that is not such an archive, lacks
a key, has a version this code does not know, or whose arrays do not match
``sizes``, raises ``NetworkFileError`` naming the file and what is wrong.
"""

import zipfile
from pathlib import Path

import numpy as np

from ._files import atomic_savez
from .network import Network

__all__ = ["save_network", "load_network", "NetworkFileError", "FORMAT_VERSION"]

FORMAT_NAME = "mnistnet.Network"
FORMAT_VERSION = 1
_META = ("format", "version", "sizes", "cost", "output", "init", "dtype")


class NetworkFileError(ValueError):
    """A file given to ``load_network`` is not a valid saved network. The message says why."""


def save_network(net, path):
    """Write a network to ``path`` as an ``.npz`` file (exactly that name: no suffix is added).

    Introduced in ``notebooks/07-going-further.ipynb``.

    The file is written under a temporary name and renamed when complete, so an
    interrupted save never leaves half a file under ``path``; it gets the
    permissions of any new file (0o666 less the umask, e.g. 0o644).

    Inputs:
    - net: a Network, e.g. Network([784, 30, 10]) with W1 (30, 784), W2 (10, 30),
      b1 (30,), b2 (10,).
    - path: a str or pathlib.Path, conventionally ending in ".npz".
    Returns:
    - the path written, as a pathlib.Path.
    """
    if not isinstance(net, Network):
        raise TypeError(f"save_network expects a Network, got {type(net).__name__}")
    path = Path(path)
    arrays = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(FORMAT_VERSION),
        "sizes": np.array(net.sizes, dtype=np.int64),
        "cost": np.array(net.cost_name),
        "output": np.array(net.output_name),
        "init": np.array(net.init),
        "dtype": np.array(net.dtype.name),
    }
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W{l}"] = np.asarray(W)
        arrays[f"b{l}"] = np.asarray(b)
    return atomic_savez(path, arrays)


def _text(data, key, path):
    value = data[key]
    if value.shape != () or value.dtype.kind != "U":
        raise NetworkFileError(f"{path}: '{key}' should be a single string, got an array of "
                               f"shape {value.shape} and dtype {value.dtype}")
    return str(value[()])


def load_network(path):
    """Read a network written by ``save_network``.

    Introduced in ``notebooks/07-going-further.ipynb``.

    Inputs:
    - path: a str or pathlib.Path to an ``.npz`` file.
    Returns:
    - a Network with the saved sizes, cost, output, init, dtype, weights
      [W1 (n1, n0), …] and biases [b1 (n1,), …].
    Raises:
    - FileNotFoundError if there is no such file;
    - NetworkFileError if it is not an .npz archive, a key is missing, the format
      name or version is not one this code reads, a setting is unknown, or an
      array's shape or dtype does not match ``sizes`` and ``dtype``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved network at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise NetworkFileError(f"{path} is not a saved network: numpy cannot read it as an "
                               f".npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise NetworkFileError(f"{path} is a single .npy array, not an .npz archive written "
                               f"by save_network")
    with archive as data:
        try:
            keys = set(data.files)
            missing = [k for k in _META if k not in keys]
            if "format" in missing:
                raise NetworkFileError(
                    f"{path} is an .npz archive but not a saved network: it has no 'format' key "
                    f"(its keys: {', '.join(sorted(keys)) or 'none'})")
            fmt = _text(data, "format", path)
            if fmt != FORMAT_NAME:
                raise NetworkFileError(f"{path}: format is {fmt!r}, expected {FORMAT_NAME!r}")
            if missing:
                raise NetworkFileError(f"{path}: missing key(s) {', '.join(missing)}")
            version = data["version"]
            if version.shape != () or version.dtype.kind not in "iu":
                raise NetworkFileError(f"{path}: 'version' should be one integer")
            version = int(version)
            if version != FORMAT_VERSION:
                newer = " (written by a newer mnistnet: upgrade it)" if version > FORMAT_VERSION \
                    else ""
                raise NetworkFileError(f"{path}: format version {version}; this mnistnet reads "
                                       f"version {FORMAT_VERSION}{newer}")
            sizes = data["sizes"]
            if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) < 2 or \
                    np.any(sizes < 1):
                raise NetworkFileError(f"{path}: 'sizes' should list at least two positive "
                                       f"integers, got {sizes.tolist()}")
            sizes = [int(n) for n in sizes]
            cost, output, init = (_text(data, k, path) for k in ("cost", "output", "init"))
            dtype_name = _text(data, "dtype", path)
            if dtype_name not in ("float64", "float32"):
                raise NetworkFileError(f"{path}: dtype {dtype_name!r}; expected 'float64' or "
                                       f"'float32'")
            dtype = np.dtype(dtype_name)
            L = len(sizes) - 1
            expected = {}
            for l in range(1, L + 1):
                expected[f"W{l}"] = (sizes[l], sizes[l - 1])
                expected[f"b{l}"] = (sizes[l],)
            missing = [k for k in expected if k not in keys]
            if missing:
                raise NetworkFileError(f"{path}: sizes {sizes} need {L} weight matrices and "
                                       f"{L} bias vectors; missing {', '.join(missing)}")
            extra = sorted(k for k in keys if k[:1] in "Wb" and k[1:].isdigit()
                           and k not in expected)
            if extra:
                raise NetworkFileError(f"{path}: sizes {sizes} describe {L} layers, but the file "
                                       f"also holds {', '.join(extra)}")
            params = {}
            for key, shape in expected.items():
                arr = data[key]
                if arr.shape != shape:
                    what = "weights, stored (out, in)," if key[0] == "W" else "biases"
                    hint = " (transposed?)" if arr.shape == shape[::-1] and len(shape) == 2 else ""
                    raise NetworkFileError(f"{path}: {key} has shape {arr.shape}; sizes {sizes} "
                                           f"need {what} of shape {shape}{hint}")
                if arr.dtype != dtype:
                    raise NetworkFileError(f"{path}: {key} is {arr.dtype}, but the file says "
                                           f"dtype {dtype_name}")
                if not np.all(np.isfinite(arr)):
                    raise NetworkFileError(f"{path}: {key} contains NaN or inf (saved after "
                                           f"training diverged?)")
                params[key] = arr
        except NetworkFileError:
            raise
        except (KeyError, ValueError) as e:   # a member unreadable, or a pickled object array
            raise NetworkFileError(f"{path}: cannot read it as a saved network ({e})") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise NetworkFileError(f"{path}: the archive is damaged ({e})") from None

    # Each np.load read is a new, writable array: no copy needed to detach it from the file.
    try:
        return Network.from_arrays([params[f"W{l}"] for l in range(1, L + 1)],
                                   [params[f"b{l}"] for l in range(1, L + 1)],
                                   cost=cost, output=output, init=init, dtype=dtype)
    except ValueError as e:       # an unknown cost, output or init
        raise NetworkFileError(f"{path}: {e}") from None
