"""Files and paths: atomic writes, file hashes, the repository root.

Every file the package writes (checkpoints, data caches, result tables) goes through
:func:`atomic_output` or :func:`write_atomic`; every file it records as provenance is named
by :func:`file_sha256` (:func:`file_digest` for other algorithms); every committed artefact
(checkpoints, results) is found from :func:`repo_root`.  Standard library only, so that every
layer of the package can use it.

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
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_output", "file_digest", "file_sha256", "repo_root", "write_atomic"]


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
