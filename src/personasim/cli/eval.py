"""`personasim eval SUITE`: run a suite (replay by default) through the same path as `run`, check its
thresholds and `require:` verdicts, exit 1 naming each miss. A suite that cannot run (bad input)
fails too, and its JUnit case carries the error. `--out` and `--junit` are checked for writability
before the first suite runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from personasim.cli.common import default, echo, err_console, guarded, plural
from personasim.cli.llm_options import LLMFlags, llm_options
from personasim.cli.output import announce, print_scorecard
from personasim.errors import PersonasimError

if TYPE_CHECKING:
    from personasim.run.suite_checks import Check


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


@guarded
@llm_options
def eval_cmd(
    suites: list[Path] = typer.Argument(..., metavar="SUITE...", help="Suite files (evals/*.yaml)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="Where the learner runs" + default("the suite's")),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here: one test case per threshold per module version, and per requirement" + default("none")),
    out: Path = typer.Option(Path("results"), "--out", help="Folder that holds run folders"),
    prompts_dir: Optional[Path] = typer.Option(None, "--prompts", help="Prompt templates folder" + default("the suite's, else the packaged ones")),
    *,
    llm: LLMFlags,
) -> None:  # fmt: skip
    """Run each suite and check its thresholds and requirements (CI gate). Replays recordings unless
    --mode says otherwise."""
    from personasim.fileio import check_writable
    from personasim.llm.types import EndpointError
    from personasim.run.suite_checks import Check

    check_writable(out)
    if junit is not None:
        check_writable(junit, folder=False)
    results: list[tuple[str, list[Check]]] = []
    for index, path in enumerate(suites):
        try:
            results.append(_evaluate(path, llm, out, dict(backend=backend, prompts_dir=prompts_dir)))
        except PersonasimError as exc:
            err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            results.append((path.stem, [Check(f"{path.stem}::input", False, str(exc))]))
            if isinstance(exc, EndpointError) and _endpoint_from_flags(llm, backend):
                results += [(rest.stem, [Check(f"{rest.stem}::input", False, f"not run: {exc}")])
                            for rest in suites[index + 1 :]]  # fmt: skip
                if suites[index + 1 :]:
                    echo(f"the other {plural(len(suites) - index - 1, 'suite')} would call the same endpoint: not run",
                         err=True)  # fmt: skip
                break
    if junit is not None:
        from personasim.report.junit import write_junit

        write_junit(junit, results)
    if any(not check.passed for _, checks in results for check in checks):
        raise typer.Exit(1)


def _endpoint_from_flags(llm: LLMFlags, backend: str | None) -> bool:
    """Whether the flags name the endpoint (so every suite calls the same one)."""
    return bool(backend or llm.learner.get("base_url"))


def _evaluate(path: Path, llm: LLMFlags, out: Path, run: dict[str, Any]) -> tuple[str, list[Check]]:
    """Run one suite and report its verdict: (suite name, its checks)."""
    from personasim.cli.run import with_bar
    from personasim.run.config import Given, resolve_run
    from personasim.run.runner import new_run_id
    from personasim.run.session import execute, load_inputs, open_run
    from personasim.run.suite import load_suite, suite_checks

    suite = load_suite(path)
    given = Given(learner=llm.learner, judge=llm.judge, config_file=llm.config, suite=suite, run=run)
    config = resolve_run(given, run_id=f"eval-{suite.name}-{new_run_id()}", out_dir=out)
    with open_run(config, *load_inputs(suite, None, None), suite=suite) as opened:
        announce(opened)
        outcome = with_bar(lambda bar: execute(opened, bar), config.run_id, out)
    checks = suite_checks(suite, outcome)
    _report(suite.name, checks, outcome)
    return suite.name, checks


def _report(name: str, checks: list[Check], outcome: Any) -> None:
    """PASS only when every check holds on a healthy run: a degenerate run's scores are no evidence."""
    health = outcome.manifest.health or {}
    misses = [check for check in checks if not check.passed]
    if misses:
        err_console.print(f"FAIL {name}: {plural(len(misses), 'check')} missed of {len(checks)}", style="bold red",
                          highlight=False)  # fmt: skip
        for miss in misses:
            echo(f"  - {miss.message}", err=True)
    elif health.get("healthy"):
        echo(f"PASS {name}: {plural(outcome.manifest.rows, 'row')}, {plural(len(checks), 'check')} met", style="green")
    else:
        echo(f"NOT EVIDENCE {name}: {plural(len(checks), 'check')} met, but the simulations look degenerate, so the "
             "scores say nothing about the module (add `require: {health: ok}` to the suite to fail on this)",
             style="bold yellow")  # fmt: skip
    echo(f"  health: {health.get('verdict', 'no health verdict')}")
    print_scorecard(outcome.manifest, Path(outcome.run_dir).parent)
    echo(f"  results: {Path(outcome.run_dir).resolve()}")
