"""Writing files safely, and removing what a killed process left behind (for data and saving).

A file is written under a temporary name beside it and renamed when complete
(``atomic_savez``). Every temporary name carries the id of the process that made it,
so ``remove_stale`` can later remove those of a process that is gone (killed by
SIGKILL, say); ``sigterm_unwinds`` lets a SIGTERM (a kernel restart) remove them first.
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

# A leftover untouched this long is stale even if its process id is in use again (or cannot
# be checked, as on Windows): a live download writes every minute, a cache write takes seconds.
STALE_AFTER = 3600.0


def temp_files(name):
    """The regex of the temporary names of the file ``name``: .NAME.PID-HEX.tmp (PID- absent
    in files of older mnistnet versions)."""
    return re.compile(rf"^\.{re.escape(name)}\.(?:(?P<pid>\d+)-)?[0-9a-f]{{12}}\.tmp$")


def atomic_savez(path, arrays):
    """Write ``arrays`` ({name: array}, as for ``np.savez``) to ``path`` (a str or pathlib.Path,
    exactly as named) as an uncompressed .npz, never half written: an interrupted write (an
    error, a full disk, Ctrl-C, a SIGTERM) removes the temporary file and re-raises. The file
    gets the permissions of any new file (0o666 less the umask), not mkstemp's 0o600.
    Returns path as a pathlib.Path. Raises OSError (FileNotFoundError, PermissionError, …)
    naming ``path``, never the temporary name, if it cannot be written.
    """
    path = Path(path)
    remove_stale(path.parent, temp_files(path.name))
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
    try:
        with sigterm_unwinds():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            try:
                with os.fdopen(os.open(tmp, flags, 0o666), "wb") as f:
                    np.savez(f, **arrays)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    except OSError as e:                  # retold about path: same class, same errno
        folder = path.parent
        why = (f"No folder {folder} to write it in" if not folder.exists()
               else f"{folder} is not a folder" if not folder.is_dir()
               else e.strerror or str(e))
        raise type(e)(e.errno, why, str(path)) from None     # "[Errno 2] <why>: '<path>'"
    return path


def remove_stale(folder, pattern):
    """Remove the entries of ``folder`` (a Path) left by a process that is gone; never raises.

    An entry (file or folder) is a leftover if its name matches the compiled regex ``pattern``,
    whose optional group "pid" is the process that made it; it is stale when that process is
    gone or nothing in it has changed for STALE_AFTER seconds. Returns the names removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match and _is_stale(entry, match.groupdict().get("pid")):
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(entry.name)
            except OSError:
                pass            # removed by another process meanwhile, or not ours to remove
    return removed


def _is_stale(entry, pid):
    """True if process ``pid`` (a str or None) is gone, or nothing in ``entry`` (or directly
    in it, for a folder) has changed for STALE_AFTER seconds."""
    if pid and int(pid) != os.getpid() and os.name == "posix":   # on Windows os.kill would end it
        try:
            os.kill(int(pid), 0)         # signal 0: only checks that the process exists
        except ProcessLookupError:
            return True
        except OSError:                  # PermissionError: it exists, under another user
            pass
    try:
        newest = entry.stat(follow_symlinks=False).st_mtime
        if entry.is_dir(follow_symlinks=False):
            for inner in os.scandir(entry.path):
                newest = max(newest, inner.stat(follow_symlinks=False).st_mtime)
    except OSError:
        return False
    return time.time() - newest > STALE_AFTER


class Terminated(BaseException):
    """A SIGTERM, raised as an exception (like KeyboardInterrupt) so that clean-up code runs."""


def raise_terminated(signum, frame):
    """A SIGTERM handler: raise Terminated."""
    raise Terminated


@contextmanager
def sigterm_unwinds():
    """While active, a SIGTERM raises Terminated, so ``with`` and ``finally`` blocks remove
    their temporary files; on leaving, the process then ends by SIGTERM as asked. Only in the
    main thread while SIGTERM has its default action; elsewhere ``remove_stale`` cleans up later.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)   # end as SIGTERM does, now that nothing is left
        raise                                   # (where a SIGTERM does not end the process)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
