"""`personasim check-model`: the scorecard of a model as these learners and their judge (thin: the
protocol is run/check_model.py, the checks analysis/model_checks.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from personasim.cli.common import console, guarded, print_json
from personasim.cli.llm_options import LLMFlags, llm_options
from personasim.llm.backend import BACKENDS_HELP


def register(app: typer.Typer) -> None:
    app.command("check-model")(check_model_cmd)


@guarded
@llm_options
def check_model_cmd(
    suite: Optional[Path] = typer.Option(None, "--suite", help="Take personas, module, settings, recordings and the check's ablation and thresholds from a suite (its check_model: block)"),
    personas: Optional[list[Path]] = typer.Option(None, "--personas", help="Persona file or folder (repeatable) [default: personas/, or the suite's]"),
    only: Optional[list[str]] = typer.Option(None, "--persona", help="Only this persona id or number (repeatable)"),
    module: Optional[Path] = typer.Option(None, "--module", help="The module version to check with [default: the suite's first]"),
    steps: Optional[str] = typer.Option(None, "--steps", help="Only these steps, e.g. 1-3,9-11 (1-based) [default: all]"),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Conversations per persona [default: 2]"),
    judge_samples: Optional[int] = typer.Option(None, "--judge-samples", min=1, help="Judge repeats per criterion [default: 3]"),
    ablate: Optional[str] = typer.Option(None, "--ablate", help="Learning outcomes whose steps are removed in a second run, e.g. LO4,LO5 [default: the suite's, else none]"),
    expect_lenses: Optional[str] = typer.Option(None, "--expect-lenses", help="Lenses the ablation should lower, e.g. power,inclusion"),
    backend: Optional[str] = typer.Option(None, "--backend", help=f"Where the learner runs: {BACKENDS_HELP} [default: openai, or the suite's]"),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Name of the check's folder [default: check-<timestamp>]"),
    out: Path = typer.Option(Path("results"), "--out", help="Folder that holds run folders"),
    as_json: bool = typer.Option(False, "--json", help="Print the scorecard as JSON (check.json is written either way)"),
    fail_under: Optional[str] = typer.Option(None, "--fail-under", help="Exit 1 when the verdict is below this: fit or caution [default: never]"),
    *,
    llm: LLMFlags,
) -> None:  # fmt: skip
    """Measure whether a model can stand in for these learners and judge them: persona fidelity,
    sensitivity and specificity to a planted change, stability, judge reliability, misunderstanding
    surfacing, instruction following; one verdict."""
    from personasim.run.check_model import run_check

    card, path = run_check(
        suite=suite, personas=personas, only=only, module=module, steps=steps, samples=samples,
        judge_samples=judge_samples, ablate=ablate, expect_lenses=expect_lenses, backend=backend,
        run_id=run_id, out=out, fail_under=fail_under, llm=llm,
    )  # fmt: skip
    if as_json:
        print_json(card.model_dump(mode="json"))
    else:
        _print(card, path)
    from personasim.records.scorecard import FAIL_UNDER, VERDICT_RANK

    if fail_under and VERDICT_RANK[card.verdict] < VERDICT_RANK[FAIL_UNDER[fail_under]]:
        raise typer.Exit(1)


def _print(card, path: Path) -> None:  # type: ignore[no-untyped-def]
    """One block per check (readable at 80 columns), then the verdict."""
    for c in card.checks:
        result = "reference" if c.threshold == "reference" else {True: "pass", False: "FAIL", None: "not run"}[c.passed]
        value = "-" if c.value is None else f"{c.value:.2f}"
        style = {"pass": "green", "FAIL": "bold red"}.get(result, "yellow" if result == "not run" else "")
        console.print(f"{c.name}: {result}", style=style, markup=False, highlight=False)
        console.print(f"  value {value}, passes at {c.threshold}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"  {c.detail}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"  means: {c.meaning}", style="dim", markup=False, highlight=False, soft_wrap=True)
    style = {"fit for module decisions": "green", "use with caution": "yellow"}.get(card.verdict, "bold red")
    console.print(f"verdict: {card.verdict}", style=style, markup=False, highlight=False)
    console.print(f"scorecard: {path.resolve()}", markup=False, highlight=False, soft_wrap=True)
