"""Atomic file writes: a reader sees the old file or the new one, never half of one. A write that
fails raises `CannotWrite` (`cannot write PATH: reason`, one line on the CLI) and leaves the old
file as it was; `check_writable` says before any work starts whether a path could be written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from personasim.errors import PersonasimError


class CannotWrite(PersonasimError, OSError):
    """An output path that cannot be written (also an OSError, for callers that catch those)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write {path}: {reason}")

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to a temporary file beside `path` and rename it into place (making the parent
    folder). `fsync=False` skips the flush to disk: the file still outlives a killed process."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CannotWrite(path, _reason(exc)) from exc
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; results and reports are for sharing
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, CannotWrite):
            raise CannotWrite(path, _reason(exc)) from exc
        raise


def current_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | Path, *, folder: bool = True) -> None:
    """Raise `CannotWrite` unless `path` could be written: a folder (`folder=True`, which may not
    exist yet) or a file's path. Creates nothing that stays: a folder that does not exist yet is
    judged by its nearest existing parent, where a probe file is made and removed at once."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise CannotWrite(path, "it is a file, not a folder")
    if not folder and path.is_dir():
        raise CannotWrite(path, "it is a folder, not a file")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CannotWrite(path, f"{existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".personasim-write-check-")
    except OSError as exc:
        raise CannotWrite(path, _reason(exc)) from exc
    os.close(fd)
    os.unlink(probe)
