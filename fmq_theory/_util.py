"""Atomic file output: readers see the old file or the complete new one, never a part.

Every file the package writes (checkpoints, data caches, result tables) goes through
:func:`atomic_output` or :func:`write_atomic`.  Standard library only, so the harness can
use it on machines without the quantizer stack.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_output", "write_atomic"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path) -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; move it onto ``path`` on success.

    The temporary file is flushed to disk and renamed with :func:`os.replace`, so readers
    see either the old file or the complete new one.  If the body raises (or the rename
    fails) the temporary file is removed and ``path`` is left as it was.

    Raises
    ------
    FileNotFoundError
        The directory of ``path`` does not exist.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"path={path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path, write: Callable[[str], None]) -> None:
    """Create ``path``'s directory if needed, then call ``write(tmp)`` inside :func:`atomic_output`."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        write(tmp)
