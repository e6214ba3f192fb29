"""Error types that carry where the problem is, so the CLI can print `file:line: message`."""

from __future__ import annotations

from pathlib import Path


class PersonasimError(Exception):
    """Base class for every error the CLI reports without a traceback."""


class InputError(PersonasimError):
    """Bad user input: names the file, the line (or field) and what to do about it."""

    def __init__(self, path: str | Path | None, line: int | None, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"
