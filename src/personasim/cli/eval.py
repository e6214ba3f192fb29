"""`personasim eval SUITE`: run a suite (replay by default) through the same path as `run`, check its
thresholds, exit 1 naming each miss."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from personasim.cli.common import console, err_console, guarded
from personasim.cli.llm_options import LLMFlags, llm_options
from personasim.cli.output import Bar, announce, progress_bar


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


@guarded
@llm_options
def eval_cmd(
    suites: list[Path] = typer.Argument(..., metavar="SUITE...", help="Suite files (evals/*.yaml)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="Override the suite's backend"),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here (one test case per threshold)"),
    out: Path = typer.Option(Path("results"), "--out", help="Folder that holds run folders"),
    prompts_dir: Optional[Path] = typer.Option(None, "--prompts", help="Prompt templates folder [default: the suite's, else the packaged ones]"),
    *,
    llm: LLMFlags,
) -> None:  # fmt: skip
    """Run each suite and check its thresholds (CI gate). Replays recordings unless --mode says otherwise."""
    import asyncio

    from personasim.report.junit import write_junit
    from personasim.run.config import Given, resolve_run
    from personasim.run.runner import new_run_id
    from personasim.run.session import execute, load_inputs, open_run
    from personasim.run.suite import check_thresholds, load_suite

    outcomes = []
    for path in suites:
        suite = load_suite(path)
        given = Given(learner=llm.learner, judge=llm.judge, config_file=llm.config, suite=suite,
                      run=dict(backend=backend, prompts_dir=prompts_dir))  # fmt: skip
        config = resolve_run(given, run_id=f"eval-{suite.name}-{new_run_id()}", out_dir=out)
        with open_run(config, *load_inputs(suite, None, None), suite=suite) as opened:
            announce(opened)

            async def main():  # type: ignore[no-untyped-def]
                with progress_bar() as progress:
                    return await execute(opened, Bar(progress))

            outcome = asyncio.run(main())
        misses = check_thresholds(outcome.frame, suite.thresholds, failed_units=len(outcome.failed))
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
