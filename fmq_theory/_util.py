"""Files and paths: atomic writes, file hashes, the repository root; the check of a count.

Every file the package writes (checkpoints, data caches, result tables) goes through
:func:`atomic_output` or :func:`write_atomic` (a temporary sibling renamed onto the target as
the last step, keeping the target's file mode, removed on an error, SIGINT or SIGTERM, and
swept on the next write when a killed process left it behind); the command line checks its
outputs with :func:`check_output_path` and :func:`check_not_input` before any work; every
file it records as provenance is named
by :func:`file_sha256` (:func:`file_digest` for other algorithms); every committed artefact
(checkpoints, results) is found from :func:`repo_root`; the positive counts the library takes
(``steps``, ``batch_size``, ``limit`` ...) are checked by :func:`check_positive_int`.  Standard
library only, so that every layer of the package can use it.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(folder / "sub" / "a.txt", lambda tmp: pathlib.Path(tmp).write_text("abc"))
>>> file_sha256(folder / "sub" / "a.txt")[:16]
'ba7816bf8f01cfea'
"""

from __future__ import annotations

import contextlib
import hashlib
import numbers
import operator
import os
import re
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

__all__ = [
    "atomic_output", "available_memory_bytes", "check_not_input", "check_output_path", "check_positive_int",
    "file_digest", "file_sha256", "repo_root", "sweep_stale_temporaries", "write_atomic",
]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_prefix(path: str) -> str:
    """Prefix of the temporary siblings of ``path``: ``.NAME.PID.`` (the writer's process id,
    so that a later write can tell a dead writer's leftover from a live one's file)."""
    return f".{os.path.basename(path)}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_stale_temporaries(path) -> list[str]:
    """Remove the temporary siblings ``.NAME.PID.*.tmp`` of ``path`` left by a killed writer.

    Only files whose writer process ``PID`` no longer exists are removed (a concurrent
    writer's temporary file is left alone).  Returns the removed paths.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.") + r"(\d+)\.[^/]*\.tmp")
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError):
        for entry in os.scandir(directory):
            match = pattern.fullmatch(entry.name)
            if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed


class _Terminated(BaseException):
    """SIGTERM received inside :func:`atomic_output` (re-delivered once the temporary file is gone)."""


class _SignalGate:
    """While held, a SIGINT or SIGTERM is recorded instead of raised; :meth:`release` raises it.

    Holds the gap between the creation of a temporary file and the start of the block that
    removes it, where a signal would otherwise leave the file behind.
    """

    def __init__(self) -> None:
        self.held = False
        self.pending: int | None = None
        self.raise_for: Callable[[int], None] = lambda signum: None

    def hold(self) -> None:
        self.held = True

    def release(self) -> None:
        self.held = False
        signum, self.pending = self.pending, None
        if signum is not None:
            self.raise_for(signum)


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[_SignalGate]:
    """While active (main thread only), SIGTERM raises :class:`_Terminated` and SIGINT calls its
    handler (``KeyboardInterrupt`` by default) as exceptions, so that the ``finally`` blocks that
    remove temporary files run, except while the yielded gate is held, when they wait for its
    release.  Afterwards SIGTERM is re-sent under the previous handler, and a signal still
    waiting on the gate is re-sent too."""
    gate = _SignalGate()
    if threading.current_thread() is not threading.main_thread():
        yield gate
        return
    previous = {signal.SIGTERM: signal.getsignal(signal.SIGTERM), signal.SIGINT: signal.getsignal(signal.SIGINT)}

    def raise_for(signum: int) -> None:
        if signum == signal.SIGTERM:
            raise _Terminated()
        previous[signal.SIGINT](signum, None)

    def handler(signum, frame):
        if gate.held:
            gate.pending = gate.pending or signum
        else:
            raise_for(signum)

    gate.raise_for = raise_for
    caught = [signal.SIGTERM] + ([signal.SIGINT] if callable(previous[signal.SIGINT]) else [])
    for signum in caught:
        signal.signal(signum, handler)
    try:
        yield gate
    except _Terminated:
        signal.signal(signal.SIGTERM, previous[signal.SIGTERM])
        os.kill(os.getpid(), signal.SIGTERM)
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        for signum in caught:
            signal.signal(signum, previous[signum])
        if gate.pending is not None:
            os.kill(os.getpid(), gate.pending)


@contextlib.contextmanager
def atomic_output(path, *, validate: Callable[[str], None] | None = None) -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; move it onto ``path`` on success.

    The temporary file ``.NAME.PID.XXXX.tmp`` is flushed to disk, checked by
    ``validate(tmp)`` when given, given the file mode of the existing ``path`` (or the
    umask default for a new file) and renamed with :func:`os.replace` as the very last
    step, so readers see either the old file or the complete, validated new one.  If the
    body or ``validate`` raises, or SIGINT or SIGTERM arrives, the temporary file is
    removed and ``path`` is left as it was.  A SIGKILL cannot be caught: the temporary
    file it leaves is removed by the next write of ``path``
    (:func:`sweep_stale_temporaries`).

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` does not exist.
    IsADirectoryError
        ``path`` is a directory.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path={path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"path={path!r} is a directory, not a file")
    sweep_stale_temporaries(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    with _signals_as_exceptions() as gate:
        gate.hold()  # until the clean-up below is armed
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temporary_prefix(path), suffix=".tmp")
        try:
            os.close(fd)
            gate.release()  # a signal that came while the file was being made is raised here
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            if validate is not None:
                validate(tmp)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def check_output_path(path, *, argument: str, folder: bool = False) -> str:
    """``path`` as a string after checking, before any work, that it can be written.

    A file output must not be a directory, an existing one must be writable, and its
    nearest existing parent must be a writable directory (missing parents are created by
    :func:`write_atomic`); a ``folder`` output must not be an existing file.

    Raises
    ------
    IsADirectoryError, NotADirectoryError, PermissionError
        Each message names ``argument`` and ``path``.
    """
    path = os.fspath(path)
    if folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(f"{argument} {path!r} exists and is not a directory")
    elif os.path.isdir(path):
        raise IsADirectoryError(f"{argument} {path!r} is a directory; give a file name")
    elif os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(f"{argument} {path!r} exists and is not writable")
    parent = os.path.abspath(path if folder and os.path.isdir(path) else os.path.dirname(os.path.abspath(path)))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise NotADirectoryError(f"{argument} {path!r}: {parent!r} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{argument} {path!r}: directory {parent!r} is not writable")
    return path


def check_not_input(output, inputs, *, argument: str, allow: bool = False, allow_flag: str = "--in-place") -> None:
    """``ValueError`` naming ``argument`` when ``output`` is one of ``inputs`` (same file,
    also through a link), unless ``allow``: writing over the input would lose it."""
    if allow or not os.path.exists(output):
        return
    for source in inputs:
        if os.path.exists(source) and os.path.samefile(output, source):
            raise ValueError(
                f"{argument} {os.fspath(output)!r} is the input file {os.fspath(source)!r}; writing "
                f"it would replace the input (give another output, or {allow_flag} to replace it)")


def write_atomic(path, write: Callable[[str], None], *, validate: Callable[[str], None] | None = None) -> None:
    """Create ``path``'s directory if needed, then call ``write(tmp)`` inside
    :func:`atomic_output` (with its ``validate``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, validate=validate) as tmp:
        write(tmp)


def file_digest(path, algorithm: str) -> str:
    """Hex digest of a file's bytes under a :mod:`hashlib` algorithm (``"sha256"``, ``"sha1"``...).

    Read in chunks by :func:`hashlib.file_digest`, so files of any size are fine.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``algorithm`` is not one :mod:`hashlib` knows.
    """
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def file_sha256(path) -> str:
    """SHA-256 hex digest of a file's bytes: the provenance hash of every checkpoint, data
    source and feature network the package records."""
    return file_digest(path, "sha256")


def repo_root() -> Path:
    """The repository root: the folder above the package when it holds ``pyproject.toml``.

    For an installed (non-editable) package there is no repository around it; the current
    working directory stands in for it, so that ``data/``, ``checkpoints/`` and ``results/``
    are looked up where the command runs.
    """
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def available_memory_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """The memory this machine can give a new process (Linux's ``MemAvailable``), or ``None`` where
    ``meminfo`` is not there or has no such line (another system: nothing is checked then)."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        return None
    return None


def check_positive_int(value, *, name: str, allow_none: bool = False) -> int | None:
    """``value`` as a Python int after checking that it is a positive integer (or ``None``).

    The one check of the positive counts the library takes (``steps``, ``batch_size``,
    ``limit`` ...).  An :class:`int` or a numpy integer scalar (any :class:`numbers.Integral`)
    is accepted and converted with :func:`operator.index`, so that callers keep a plain int
    (one that JSON can write).  A :class:`bool` is refused although it is an int subclass, and
    so is a float even when it is whole (``3.0``), a string, or a 0-d array or tensor: a count
    given as any of these is a mistake.

    Parameters
    ----------
    value : object
        The value to check.
    name : str, keyword-only
        The argument's name, for the message.
    allow_none : bool, keyword-only
        Accept ``None`` too (returned as is), for an optional count.

    Returns
    -------
    int or None
        ``value`` as a Python int, ``>= 1``; ``None`` only when ``allow_none``.

    Raises
    ------
    ValueError
        ``value`` is not an integer ``>= 1`` (nor ``None`` when ``allow_none``); the message
        names ``name`` and the bad value.

    Examples
    --------
    >>> import numpy as np
    >>> check_positive_int(np.int64(3), name="steps")
    3
    >>> check_positive_int(None, name="limit", allow_none=True) is None
    True
    >>> check_positive_int(0, name="steps")
    Traceback (most recent call last):
    ...
    ValueError: steps must be a positive int, got 0
    >>> check_positive_int(2.0, name="limit", allow_none=True)
    Traceback (most recent call last):
    ...
    ValueError: limit must be a positive int or None, got 2.0
    """
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = operator.index(value)
        if number >= 1:
            return number
    raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
