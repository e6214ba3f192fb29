"""`personasim eval SUITE`: run a suite (replay by default), check its thresholds, exit 1 naming each miss."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from personasim.cli.common import console, err_console, guarded
from personasim.cli.llm_options import ModeOpt
from personasim.report.junit import write_junit
from personasim.run.runner import new_run_id
from personasim.run.suite import evaluate_suite, load_suite


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


@guarded
def eval_cmd(
    suites: list[Path] = typer.Argument(..., metavar="SUITE...", help="Suite files (evals/*.yaml)."),
    mode: ModeOpt = None,
    backend: Optional[str] = typer.Option(None, "--backend", help="Override the suite's backend."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here (one test case per threshold)."),
    out: Path = typer.Option(Path("results"), "--out", help="Folder that holds run folders."),
) -> None:  # fmt: skip
    """Run each suite and check its thresholds (CI gate). Replays recordings unless --mode says otherwise."""
    outcomes = []
    for path in suites:
        suite = load_suite(path)
        run_id = f"eval-{suite.name}-{new_run_id()}"
        outcome, misses = evaluate_suite(path, out, run_id, mode=mode, backend=backend)
        outcomes.append((suite, outcome, misses))
        verdict = (outcome.manifest.health or {}).get("verdict", "")
        if misses:
            err_console.print(f"FAIL {suite.name}: {len(misses)} thresholds missed", style="bold red", highlight=False)
            for miss in misses:
                err_console.print(f"  - {miss}", markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"PASS {suite.name}: {outcome.manifest.rows} rows, every threshold met", style="green")
        console.print(f"  health: {verdict}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"  results: {outcome.run_dir}", markup=False, highlight=False, soft_wrap=True)
    if junit is not None:
        write_junit(junit, [(suite, misses) for suite, _, misses in outcomes])
    if any(misses for _, _, misses in outcomes):
        raise typer.Exit(1)
