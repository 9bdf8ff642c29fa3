"""Writing files safely, and removing what a killed process left behind.

Used by ``data`` (the MNIST cache and its downloads) and ``saving`` (``save_network``):

- ``atomic_savez`` writes under a temporary name beside the target and renames
  when complete, so the target is never half written;
- every temporary name carries the id of the process that made it, so
  ``remove_stale`` can later remove the ones whose process is gone (killed by
  SIGKILL, say, when no clean-up code could run);
- ``sigterm_unwinds`` lets a SIGTERM (a Jupyter kernel restart) remove the
  temporary files before the process ends.
"""

import os
import re
import secrets
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# A leftover untouched this long is stale even if its process id is in use again
# (or cannot be checked, as on Windows). A live download writes at least every
# minute (data.HTTP_TIMEOUT), a cache write takes seconds.
STALE_AFTER = 3600.0

# .NAME.PID-HEX.tmp (PID- absent in files of mnistnet versions before this one)
TEMP_FILE = re.compile(r"^\..+\.(?:(?P<pid>\d+)-)?[0-9a-f]{12}\.tmp$")


def temp_file_name(path):
    """A new temporary name beside `path`: ``.NAME.PID-HEX.tmp`` (a pathlib.Path)."""
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"


def atomic_savez(path, arrays):
    """Write ``arrays`` (a dict of name: array) to ``path`` as an uncompressed ``.npz``.

    The archive is written to a temporary file in the same folder and renamed
    to ``path`` only when complete, so ``path`` is never half written. An
    interrupted write (an error, a full disk, Ctrl-C, a SIGTERM) removes the
    temporary file and re-raises; stale temporary files of the same target,
    left by a killed process, are removed first. The file gets the permissions
    of any new file (0o666 less the umask, e.g. 0o644), not the private 0o600
    of ``tempfile.mkstemp``: the kernel applies the umask when it is created.

    Inputs:
    - path: a str or pathlib.Path, written exactly as named (no suffix is added).
    - arrays: {name: array}, as for ``np.savez``.
    Returns:
    - path, as a pathlib.Path.
    Raises:
    - OSError (of the same kind: FileNotFoundError, PermissionError, …) naming
      ``path``, never the temporary name, if it cannot be written.
    """
    path = Path(path)
    remove_stale(path.parent, TEMP_FILE, lambda name: name.startswith(f".{path.name}."))
    tmp = temp_file_name(path)
    try:
        with sigterm_unwinds():
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    except OSError as e:
        raise _in_users_terms(e, path) from None
    return path


def _in_users_terms(error, path):
    """The OSError `error`, about a temporary file, retold about `path` (same class, same errno)."""
    folder = path.parent
    if not folder.exists():
        why = f"No folder {folder} to write it in"
    elif not folder.is_dir():
        why = f"{folder} is not a folder"
    else:
        why = error.strerror or str(error)
    return type(error)(error.errno, why, str(path))    # "[Errno 2] <why>: '<path>'"


def remove_stale(folder, pattern, also=lambda name: True):
    """Remove the leftovers in `folder` whose process is gone; never raises.

    A leftover is an entry (file or folder) whose name matches the regex
    `pattern` (its group "pid", if any, is the process that made it) and for
    which ``also(name)`` is true. It is stale when that process no longer runs
    on this machine, or when nothing in it has changed for STALE_AFTER seconds.

    Inputs:
    - folder: a pathlib.Path (which may not exist).
    - pattern: a compiled regex with an optional named group "pid".
    - also: a further test on the name.
    Returns:
    - the list of names removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or not also(entry.name):
            continue
        pid = match.groupdict().get("pid")
        if _process_is_gone(int(pid) if pid else None) or _untouched_for(entry) > STALE_AFTER:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(entry.name)
            except OSError:
                pass            # removed by another process meanwhile, or not ours to remove
    return removed


def _process_is_gone(pid):
    """True if no process `pid` runs on this machine; False if it does or one cannot tell."""
    if pid is None or pid == os.getpid() or os.name != "posix":
        return False            # on Windows os.kill would end the process, not test it
    try:
        os.kill(pid, 0)         # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except OSError:             # PermissionError: it exists, under another user
        return False
    return False


def _untouched_for(entry):
    """Seconds since the entry, or for a folder anything directly in it, last changed."""
    try:
        newest = entry.stat(follow_symlinks=False).st_mtime
        if entry.is_dir(follow_symlinks=False):
            for inner in os.scandir(entry.path):
                newest = max(newest, inner.stat(follow_symlinks=False).st_mtime)
    except OSError:
        return 0.0
    return time.time() - newest


class Terminated(BaseException):
    """Raised by ``sigterm_unwinds`` when a SIGTERM arrives (a BaseException, like KeyboardInterrupt)."""


@contextmanager
def sigterm_unwinds():
    """While active, a SIGTERM raises Terminated, so ``with`` and ``finally`` blocks remove
    their temporary files; on leaving, the process then ends by SIGTERM as asked.

    Only in the main thread and only while SIGTERM has its default action (a program
    that handles SIGTERM itself, such as the command line, keeps its handler);
    elsewhere it does nothing, and ``remove_stale`` cleans up later.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def unwind(signum, frame):
        raise Terminated

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)   # end as SIGTERM does, now that nothing is left
        raise                                   # (where a SIGTERM does not end the process)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
