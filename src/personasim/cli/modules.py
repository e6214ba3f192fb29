"""`personasim modules ...`: list, show, validate and diff learning-module files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from personasim.cli.common import console, default, err_console, guarded, plural, print_json
from personasim.cli.tables import Col, print_table
from personasim.errors import InputError
from personasim.inputs.module import LearningModule
from personasim.inputs.module_diff import ModuleDiff, StepDiff, diff_modules
from personasim.inputs.module_loader import check_modules, find_module, load_module, load_modules, module_warnings

app = typer.Typer(help="List, show, validate and compare learning modules.", no_args_is_help=True)

DEFAULT_PATHS = [Path("modules")]
PATHS_ARG = typer.Argument(None, help="Module files or folders" + default("modules/"), show_default=False)
PATH_OPT = typer.Option(
    None, "--path", "-p", help="Where to look for modules by ref (repeatable)" + default("modules/")
)
JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _paths(paths: list[Path] | None) -> list[Path]:
    """The folders given, else `modules/` (which must then exist here)."""
    if paths:
        return list(paths)
    missing = [path for path in DEFAULT_PATHS if not path.is_dir()]
    if missing:
        raise InputError(None, None, f"no {missing[0]}/ folder in {Path.cwd()}: give the modules' folder or file "
                                     "(--path for a ref), or run from the project folder")  # fmt: skip
    return list(DEFAULT_PATHS)


def _minutes(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def resolve_module(target: str, paths: list[Path] | None) -> LearningModule:
    """A module file path, or a ref (`id` / `id@version`) looked up under `paths`."""
    candidate = Path(target)
    if candidate.is_file():
        return load_module(candidate)
    if target.endswith(".md"):
        raise InputError(target, None, "no such file")
    return find_module(_paths(paths), target)


def _columns(*names: str, keep_whole: tuple[str, ...] = ()) -> list[Col]:
    """Columns whose `keep_whole` ones (ids, refs, numbers) never wrap, so they can be copied."""
    return [Col(name, whole=name in keep_whole) for name in names]


def _summary(module: LearningModule) -> dict[str, Any]:
    return {
        "ref": module.ref,
        "id": module.id,
        "version": module.version,
        "title": module.title,
        "delivery_format": module.delivery_format,
        "steps": len(module.steps),
        "minutes": module.total_minutes,
        "content_hash": module.content_hash,
        "path": module.path,
    }


@app.command("list")
@guarded
def list_modules(paths: list[Path] | None = PATHS_ARG, as_json: bool = JSON_OPT) -> None:
    """One line per module version: ref, title, steps, minutes, delivery format."""
    modules = sorted(load_modules(_paths(paths)), key=lambda m: (m.id, m.version))
    if as_json:
        print_json([_summary(m) for m in modules])
        return
    columns = _columns("ref", "title", "steps", "minutes", "format", keep_whole=("ref", "steps", "minutes"))
    rows = [(m.ref, m.title, str(len(m.steps)), _minutes(m.total_minutes), m.delivery_format) for m in modules]
    print_table(console, columns, rows)


@app.command("show")
@guarded
def show(
    ref: str = typer.Argument(..., help="ID, ID@VERSION or a module file."),
    paths: list[Path] | None = PATH_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """A module's front matter and its steps (id, title, minutes, activity, questions, serves)."""
    module = resolve_module(ref, paths)
    if as_json:
        print_json({**module.model_dump(mode="json"), "ref": module.ref, "total_minutes": module.total_minutes})
        return
    console.print(f"[bold]{module.ref}[/bold]  {module.title}", highlight=False)
    details = (
        f"format: {module.delivery_format or '-'}   audience: {module.audience or '-'}   "
        f"steps: {len(module.steps)}   minutes: {_minutes(module.total_minutes)}"
    )
    console.print(details, highlight=False, markup=False)
    console.print(f"{module.path}   {module.content_hash}", highlight=False, markup=False)
    for outcome in module.learning_outcomes:
        console.print(f"  - {outcome}", highlight=False, markup=False)
    columns = _columns("#", "id", "title", "min", "act", "qs", "serves", keep_whole=("#", "id", "min", "act", "qs"))
    rows = [
        (str(number), step.id, step.title, _minutes(step.minutes), "yes" if step.activity else "-",
         str(len(step.reflection_questions)), ", ".join(step.serves))
        for number, step in enumerate(module.steps, start=1)
    ]  # fmt: skip
    print_table(console, columns, rows, caption="min: minutes; act: has an activity; qs: reflection questions")


@app.command("validate")
@guarded
def validate(
    paths: list[Path] | None = PATHS_ARG,
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on any warning, not only on errors."),
) -> None:
    """Check module files; print `file:line: message` on stderr and exit 1 for each broken file.
    Warnings (stderr): steps without minutes, an `estimated_minutes` other than the steps' sum."""
    modules, errors = check_modules(_paths(paths))
    warnings = [warning for module in modules for warning in module_warnings(module)]
    for module in modules:
        console.print(
            f"ok {module.ref}: {plural(len(module.steps), 'step')}, {_minutes(module.total_minutes)} min ({module.path})",
            highlight=False,
            markup=False,
        )
    for problem in [*map(str, errors), *warnings]:
        err_console.print(problem, highlight=False, markup=False, soft_wrap=True)
    if errors or (strict and warnings):
        raise typer.Exit(1)
    if not modules:
        raise InputError(None, None, f"no module files found in {', '.join(map(str, _paths(paths)))}")


@app.command("diff")
@guarded
def diff(
    a: str = typer.Argument(..., help="First module: a file or a ref (id@version)."),
    b: str = typer.Argument(..., help="Second module: a file or a ref (id@version)."),
    paths: list[Path] | None = PATH_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Steps added, removed and changed from A to B, with minutes before and after."""
    result = diff_modules(resolve_module(a, paths), resolve_module(b, paths))
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print_diff(result)


def _print_diff(result: ModuleDiff) -> None:
    console.print(f"{result.before} -> {result.after}", highlight=False, markup=False)
    if result.module_fields_changed:
        console.print(f"front matter changed: {', '.join(result.module_fields_changed)}", markup=False)
    rows: list[StepDiff] = [*result.removed, *result.changed, *result.added]
    if rows:
        columns = _columns("change", "step", "min before", "min after", "what changed", keep_whole=("change",))
        cells = [
            (row.status, row.label, _minutes(row.minutes_before), _minutes(row.minutes_after), ", ".join(row.changed_fields))
            for row in rows
        ]  # fmt: skip
        print_table(console, columns, cells)
    console.print(
        f"steps: {result.steps_before} -> {result.steps_after} "
        f"({len(result.added)} added, {len(result.removed)} removed, {len(result.changed)} changed, "
        f"{len(result.unchanged)} unchanged); minutes: {_minutes(result.total_minutes_before)} -> "
        f"{_minutes(result.total_minutes_after)}",
        highlight=False,
        markup=False,
    )
