"""The `personasim` command: a thin typer app; each sub-command group lives in its own file."""

from __future__ import annotations

import typer

from personasim import __version__
from personasim.cli import analysis as analysis_cli
from personasim.cli import batch as batch_cli
from personasim.cli import check_model as check_model_cli
from personasim.cli import criteria as criteria_cli
from personasim.cli import eval as eval_cli
from personasim.cli import gaps as gaps_cli
from personasim.cli import local as local_cli
from personasim.cli import modules as modules_cli
from personasim.cli import personas as personas_cli
from personasim.cli import recordings as recordings_cli
from personasim.cli import run as run_cmds
from personasim.cli import view as view_cli
from personasim.cli.common import run_cli

app = typer.Typer(
    name="personasim",
    help="Walk simulated learners (personas) through learning modules and grade what they make of them.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(personas_cli.app, name="personas")
app.add_typer(recordings_cli.app, name="recordings")
app.add_typer(local_cli.app, name="local")
app.add_typer(modules_cli.app, name="modules")
app.add_typer(batch_cli.app, name="batch")
analysis_cli.register(app)
run_cmds.register(app)  # run, grade
criteria_cli.register(app)
eval_cli.register(app)
check_model_cli.register(app)
gaps_cli.register(app)
view_cli.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"personasim {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """personasim: simulated learners for learning-module design."""


def main() -> None:
    run_cli(app)
