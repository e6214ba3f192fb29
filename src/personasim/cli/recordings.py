"""`personasim recordings ...`: look after a directory of recorded LLM calls."""

from __future__ import annotations

from pathlib import Path

import typer

from personasim.cli.common import console, default, guarded, print_json
from personasim.llm.replay import read_used_keys, summarize, unused_recordings

app = typer.Typer(help="List and prune recorded LLM calls (one JSON file per request key).", no_args_is_help=True)


@app.command("list")
@guarded
def list_recordings(
    directory: Path = typer.Argument(..., help="The recordings directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """How many recordings DIR holds, for which models, and their size."""
    summary = summarize(directory)
    if as_json:
        print_json(summary.model_dump())
        return
    console.print(f"{summary.count} recordings, {summary.size_bytes / 1024:.1f} KiB in {directory}", highlight=False)
    for model, count in summary.models.items():
        console.print(f"  {model}: {count}", highlight=False, markup=False)


@app.command("prune")
@guarded
def prune(
    directory: Path = typer.Argument(..., help="The recordings directory."),
    used: Path = typer.Option(..., "--used", help="Text file of the keys a run used, one per line."),
    delete: bool = typer.Option(False, "--delete", help="Delete the unused recordings" + default("only list them")),
) -> None:
    """List the recordings in DIR that the run behind --used did not use; delete them with --delete."""
    unused = unused_recordings(directory, read_used_keys(used))
    for path in unused:
        console.print(str(path), highlight=False, markup=False, soft_wrap=True)
        if delete:
            path.unlink()
    verb = "deleted" if delete else "unused (pass --delete to remove)"
    console.print(f"{len(unused)} recordings {verb}", highlight=False)
