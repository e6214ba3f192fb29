"""`personasim criteria show PERSONA`: the criteria a persona's transcripts are graded against."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from personasim.cli.common import console, guarded, print_json
from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module_loader import load_module
from personasim.inputs.persona_parser import find_persona

criteria_app = typer.Typer(help="Show the evaluation criteria derived from a persona.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(criteria_app, name="criteria")


@criteria_app.command("show")
@guarded
def criteria_show(
    persona_id: str = typer.Argument(..., metavar="PERSONA", help="Persona id (or its number, e.g. p17)."),
    personas: Optional[list[Path]] = typer.Option(None, "--personas", help="Persona files or folders (default: personas/)."),
    module: Optional[Path] = typer.Option(None, "--module", help="Module version file the criteria are for."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:  # fmt: skip
    """The criteria a persona's transcripts are graded against."""
    persona = find_persona(personas or [Path("personas")], persona_id)
    criteria = derive_criteria(persona, load_module(module) if module else None)
    if as_json:
        print_json([c.model_dump(mode="json") for c in criteria])
        return
    table = Table(title=f"criteria for {persona.id}")
    for name in ("id", "lens", "grader"):
        table.add_column(name, overflow="fold")
    table.add_column("text", overflow="fold", ratio=1, min_width=32)
    for c in criteria:
        table.add_row(c.id, c.lens, c.grader, c.text)
    console.print(table)
