"""Shared CLI plumbing: errors become `file:line: message` on stderr and exit code 1 (an OSError that
escaped as such, `PATH: reason`), never a traceback."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from personasim.errors import PersonasimError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"error: {message}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Decorate a command so a PersonasimError (or an OSError: a file that could not be written or
    read) prints as one line on stderr and exits 1, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PersonasimError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(os_error_line(exc))

    return wrapper  # type: ignore[return-value]


def os_error_line(exc: OSError) -> str:
    """`PATH: reason` (both paths of a rename), or the reason alone."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def echo(text: str, *, err: bool = False, **style: Any) -> None:
    """One line of plain text (no markup): wrapped between words on a terminal, whole in a pipe or a log."""
    target = err_console if err else console
    target.print(text, markup=False, highlight=False, soft_wrap=not target.is_terminal, **style)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 persona`, `2 personas`, `0 warnings`."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def default(text: str) -> str:
    """A help text's ` [default: TEXT]` for options whose default is decided later (None in the
    signature): escaped, since typer reads help as rich markup and would drop a bare `[default: ...]`."""
    return rf" \[default: {text}]"


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no rich markup), so it pipes into jq."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def run_cli(app: typer.Typer) -> None:
    app()
