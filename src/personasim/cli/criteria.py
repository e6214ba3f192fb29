"""`personasim criteria show PERSONA`: the criteria a persona's transcripts are graded against."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from personasim.cli.common import console, default, guarded, print_json
from personasim.cli.tables import Col, print_table
from personasim.errors import InputError
from personasim.inputs.criteria import derive_criteria
from personasim.inputs.module import LearningModule
from personasim.inputs.module_loader import find_module, load_module
from personasim.inputs.persona_parser import find_persona

criteria_app = typer.Typer(help="Show the evaluation criteria derived from a persona.", no_args_is_help=True)
PERSONAS_DIR, MODULES_DIR = Path("personas"), Path("modules")


def register(app: typer.Typer) -> None:
    app.add_typer(criteria_app, name="criteria")


@criteria_app.command("show")
@guarded
def criteria_show(
    persona_id: str = typer.Argument(..., metavar="PERSONA", help="Persona id (or its number, e.g. p17)."),
    personas: Optional[list[Path]] = typer.Option(None, "--personas", help="Persona files or folders" + default("personas/")),
    module: Optional[str] = typer.Option(None, "--module", help="The module version the criteria are for: a file, or a ref such as lotus@v1 (looked up in modules/)" + default("none: the criteria that need no module")),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:  # fmt: skip
    """The criteria a persona's transcripts are graded against."""
    persona = find_persona(personas or [_default_folder(PERSONAS_DIR, "--personas")], persona_id)
    criteria = derive_criteria(persona, _module(module) if module else None)
    if as_json:
        print_json([c.model_dump(mode="json") for c in criteria])
        return
    columns = [Col("id", whole=True), Col("lens", whole=True), Col("grader", whole=True), Col("text")]
    print_table(
        console, columns, [(c.id, c.lens, c.grader, c.text) for c in criteria], title=f"criteria for {persona.id}"
    )


def _module(target: str) -> LearningModule:
    """A module file, or a ref (`id` / `id@version`) found under modules/."""
    if Path(target).is_file():
        return load_module(target)
    if target.endswith(".md"):
        raise InputError(target, None, "no such file")
    return find_module([_default_folder(MODULES_DIR, "--module FILE")], target)


def _default_folder(folder: Path, option: str) -> Path:
    if not folder.is_dir():
        raise InputError(
            None, None, f"no {folder}/ folder in {Path.cwd()}: give {option}, or run from the project folder"
        )
    return folder
