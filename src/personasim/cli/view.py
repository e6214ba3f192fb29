"""`personasim view`, the local read-only web app over runs (report/viewer.py; the web stack loads only
here), and `personasim query`, SQL over the same runs (report/query.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from personasim.cli.common import guarded

DEFAULT_PORT = 8765


def register(app: typer.Typer) -> None:
    app.command("view")(view)
    app.command("query")(query)


@guarded
def view(
    folders: Optional[list[Path]] = typer.Argument(None, help="Run folders, or folders of runs [default: results/]"),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)"),
    open_browser: bool = typer.Option(False, "--open", help="Also open the URL in a browser [default: only print it]"),
) -> None:  # fmt: skip
    """Browse many runs in a local web app: the run list, a run's results with filters (persona, version,
    lens, criterion, step, flags), the step x persona grid, transcripts with the judge's citations, two
    runs or versions side by side. Read-only; served on 127.0.0.1 only; Ctrl+C stops it."""
    from personasim.report.viewer import serve

    def say(url: str) -> None:
        typer.echo(f"personasim view: {url}  (read-only, 127.0.0.1 only; Ctrl+C stops it)")

    serve(list(folders or [Path("results")]), port, open_browser=open_browser, say=say)


@guarded
def query(
    sql: str = typer.Argument(..., help='SQL over the tables results and runs, e.g. "SELECT lens, AVG(score) FROM results GROUP BY lens"'),
    folders: Optional[list[Path]] = typer.Argument(None, help="Run folders, or folders of runs [default: results/]"),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV [default: an aligned table]"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records"),
) -> None:  # fmt: skip
    """SQL over many runs at once (SQLite in memory, read-only): `results` holds every results row with a
    `run` column, `runs` one row per run (models, dates, cost, health, check-model)."""
    from personasim.report.query import database, run_query

    frame = run_query(database(list(folders or [Path("results")])), sql)
    if as_json:
        typer.echo(frame.to_json(orient="records", indent=2))
    elif as_csv:
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        typer.echo(frame.to_string(index=False) if len(frame.columns) else "(no columns)")
