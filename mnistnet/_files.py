"""Writing a file atomically: under a temporary name beside it, renamed when complete.

Used by ``data`` (the MNIST cache) and ``saving`` (``save_network``).
"""

import os
import secrets
from pathlib import Path

import numpy as np


def atomic_savez(path, arrays):
    """Write ``arrays`` (a dict of name: array) to ``path`` as an uncompressed ``.npz``.

    The archive is written to a temporary file in the same folder and renamed
    to ``path`` only when complete, so ``path`` is never half written. An
    interrupted write (an error, a full disk, Ctrl-C) removes the temporary file
    and re-raises. The file gets the permissions of any newly created file
    (0o666 less the umask, e.g. 0o644), not the private 0o600 of
    ``tempfile.mkstemp``: the kernel applies the umask when the file is created.

    Inputs:
    - path: a str or pathlib.Path, written exactly as named (no suffix is added).
    - arrays: {name: array}, as for ``np.savez``.
    Returns:
    - path, as a pathlib.Path.
    Raises:
    - OSError if the folder cannot be written.
    """
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
            break
        except FileExistsError:            # 2^-48 per try: only a left-over of the same name
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
