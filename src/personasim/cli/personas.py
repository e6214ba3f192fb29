"""`personasim personas ...` (filled in by the persona work)."""

import typer

app = typer.Typer(help="Read, check and show learner personas.", no_args_is_help=True)
