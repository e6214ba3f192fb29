"""Shared CLI plumbing: errors become `file:line: message` on stderr and exit code 1."""

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
    """Decorate a command so a PersonasimError prints as one line on stderr and exits 1, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PersonasimError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    """Plain JSON on stdout (no rich markup), so it pipes into jq."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def run_cli(app: typer.Typer) -> None:
    app()
