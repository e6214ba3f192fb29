"""`personasim personas ...`: list, show, validate and lint persona documents; print the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from personasim.cli.common import console, default, err_console, guarded, plural, print_json
from personasim.cli.tables import Col, print_table
from personasim.errors import InputError
from personasim.inputs.persona import Persona
from personasim.inputs.persona_lint import lint_personas, validation_findings
from personasim.inputs.persona_parser import (
    find_persona,
    load_personas,
    parse_personas,
    persona_files,
    read_persona_file,
)

app = typer.Typer(help="Read, check and show learner personas.", no_args_is_help=True)

DEFAULT_PATH = Path("personas")
PathsArg = Annotated[
    list[Path] | None, typer.Argument(help="Persona files or folders (all *.md in them)" + default("personas/"))
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _paths(paths: list[Path] | None) -> list[Path]:
    """The paths given, else `personas/` (which must then exist here)."""
    if not paths and not DEFAULT_PATH.is_dir():
        raise InputError(None, None, f"no {DEFAULT_PATH}/ folder in {Path.cwd()}: give the persona files or folders, "
                                     "or run from the project folder")  # fmt: skip
    return paths or [DEFAULT_PATH]


def persona_summary(persona: Persona) -> dict[str, Any]:
    hours = persona.hours_per_week
    return {
        "id": persona.id,
        "number": persona.number,
        "title": persona.title,
        "stage": persona.stage.name if persona.stage else None,
        "hours_per_week": hours.model_dump() if hours else None,
        "gaps": len(persona.gaps),
        "misunderstandings": len(persona.misunderstandings),
        "source": f"{persona.source.path}:{persona.source.line}" if persona.source else None,
    }


def _hours_text(persona: Persona) -> str:
    hours = persona.hours_per_week
    if hours is None:
        return "-"
    low, high = (f"{value:g}" for value in (hours.min, hours.max))
    return low if low == high else f"{low}-{high}"


@app.command("list")
@guarded
def list_personas(paths: PathsArg = None, as_json: JsonOpt = False) -> None:
    """List the personas in PATH...: id, number, title, stage, hours/week, #gaps, #misunderstandings."""
    personas = load_personas(_paths(paths))
    if as_json:
        print_json([persona_summary(p) for p in personas])
        return
    columns = [Col("id", whole=True), Col("#", whole=True, justify="right"), Col("title"), Col("stage", whole=True),
               *(Col(name, whole=True, justify="right") for name in ("h/wk", "gaps", "misund."))]  # fmt: skip
    rows = [
        (persona.id, str(persona.number), persona.title, persona.stage.name.split(":")[0] if persona.stage else "-",
         _hours_text(persona), str(len(persona.gaps)), str(len(persona.misunderstandings)))
        for persona in personas
    ]  # fmt: skip
    print_table(
        console, columns, rows, caption="#: persona number; h/wk: hours a week; misund.: potential misunderstandings"
    )


@app.command("show")
@guarded
def show(
    persona_id: Annotated[
        str, typer.Argument(metavar="ID", help="Persona id (e.g. p17-assistant-director-of-finance, or p17)")
    ],
    path: Annotated[
        list[Path] | None, typer.Option("--path", help="Persona file or folder (repeatable)" + default("personas/"))
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show every field of one persona."""
    persona = find_persona(_paths(path), persona_id)
    data = persona.model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    console.print(Text.assemble((persona.id, "bold"), f"  Persona {persona.number}: {persona.title}"))
    _print_value(data, indent=0)


def _print_value(value: Any, indent: int) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if item in (None, "", [], {}):
                continue
            nested = isinstance(item, dict | list)
            console.print(Text.assemble(pad, (str(key), "bold"), ":", "" if nested else f" {item}"))
            if nested:
                _print_value(item, indent + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                _print_value(item, indent + 1)
            else:
                console.print(Text(f"{pad}- {item}"))


@app.command("validate")
@guarded
def validate(
    paths: PathsArg = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on any warning, not only on errors.")] = False,
) -> None:
    """Check that PATH... parse: one summary line per file; warnings (unknown or missing sections) on
    stderr; exit 1 on an error."""
    failed, warned = False, 0
    for file in persona_files(_paths(paths)):
        try:
            text = read_persona_file(file)
            result = parse_personas(text, str(file))
        except InputError as exc:
            err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            failed = True
            continue
        findings = validation_findings(text, str(file), result.warnings)
        for finding in findings:
            err_console.print(str(finding), markup=False, highlight=False, soft_wrap=True)
        warned += len(findings)
        ids = ", ".join(p.id for p in result.personas)
        typer.echo(f"{file}: ok, {plural(len(result.personas), 'persona')} ({ids}), {plural(len(findings), 'warning')}")
    if failed or (strict and warned):
        raise typer.Exit(1)
    load_personas(_paths(paths))  # ids must also be unique across files


@app.command("lint")
@guarded
def lint(paths: PathsArg = None, as_json: JsonOpt = False) -> None:
    """Report duplicate list items, stray escapes, empty and missing sections; exit 1 if any."""
    findings = lint_personas(_paths(paths))
    if as_json:
        print_json([finding.to_dict() for finding in findings])
    else:
        for finding in findings:
            typer.echo(str(finding))
        err_console.print(plural(len(findings), "finding"), highlight=False)
    if findings:
        raise typer.Exit(1)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a Persona."""
    print_json(Persona.model_json_schema())
