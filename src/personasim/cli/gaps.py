"""`personasim gaps`: coverage before simulation (which steps address each persona criterion), no model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from personasim.cli.common import console, err_console, guarded

if TYPE_CHECKING:  # the matcher (bm25s, numpy) loads only when the command runs
    from personasim.analysis.gaps_types import Coverage, CriterionCoverage, PersonaCoverage

DEFAULT_THRESHOLD = 0.15  # analysis/gaps.py's; tests/test_gaps.py checks they agree

_MARK = {True: "addressed", False: "NOT addressed", None: "needs a run"}


def register(app: typer.Typer) -> None:
    app.command("gaps")(gaps)


@guarded
def gaps(
    module: list[Path] = typer.Option(..., "--module", help="Module version file or folder (repeatable; required)"),
    personas: Optional[list[Path]] = typer.Option(None, "--personas", help="Persona files or folders [default: personas/]"),
    persona: Optional[list[str]] = typer.Option(None, "--persona", help="Only this persona, id or number (repeatable) [default: all]"),
    as_json: bool = typer.Option(False, "--json", help="Print the coverage as JSON instead of tables"),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write DIR/coverage.json [default: write nothing]"),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=0.0, max=1.0,
                                    help="Sentence score at which a step addresses a free-text criterion"),
) -> None:  # fmt: skip
    """Which steps address each persona criterion (competencies, gaps, misunderstandings, time, format,
    lenses), with the matching sentences: deterministic, no LLM, no network."""
    from personasim.analysis.gaps import coverage_for_run
    from personasim.analysis.gaps_types import write_coverage
    from personasim.fileio import check_writable
    from personasim.inputs.module_loader import load_modules
    from personasim.inputs.persona_parser import load_personas, select_persona

    if out is not None:
        check_writable(out)  # before the work, not after it
    loaded = load_personas(personas or [Path("personas")])
    if persona:
        loaded = [select_persona(loaded, p) for p in persona]
    coverage = coverage_for_run(loaded, load_modules(module), threshold=threshold)
    if out is not None:
        written = write_coverage(coverage, out)
        err_console.print(f"wrote {written}", highlight=False)
    if as_json:
        typer.echo(coverage.to_json(), nl=False)
        return
    print_coverage(coverage)


def print_coverage(coverage: Coverage) -> None:
    """Plain indented lines (they read in a narrow terminal and in a log): one block per persona x module."""
    for item in coverage.items:
        for line in _lines(item):
            console.print(line, highlight=False, soft_wrap=True, markup=False)
        console.print()
    addressed = sum(c.addressed is True for i in coverage.items for c in i.criteria)
    decided = sum(c.addressed is not None for i in coverage.items for c in i.criteria)
    console.print(f"{addressed} of {decided} criteria addressed by some step (threshold {coverage.settings.threshold:g})",
                  highlight=False)  # fmt: skip


def _lines(item: PersonaCoverage) -> list[str]:
    fmt = item.delivery_format or "format not stated"
    lines = [
        f"{item.persona_id} x {item.module_ref} ({fmt}, {item.time.steps} steps, {item.time.module_minutes:g} min)"
    ]
    for c in item.criteria:
        lines.append(f"  {c.criterion_id:<26} {_MARK[c.addressed]:<14} {c.summary}")
        lines.extend(f"  {'':<26} {'':<14} {detail}" for detail in _details(c))
    if item.time.text_barrier:
        quote = item.time.text_barrier[0]
        lines.append(f"  text-heavy steps: {', '.join(item.time.text_heavy_steps) or 'none'}"
                     f" (profile, {quote.field}: {quote.text!r})")  # fmt: skip
    return lines


def _details(c: CriterionCoverage) -> list[str]:
    if c.method == "format":
        return [f"- {k.verdict}: {k.item} ({k.rule}: {k.evidence})" for k in c.checks]
    best = max(c.steps, key=lambda h: h.score or 0, default=None) if c.method == "text" else None
    if best and best.sentences:
        return [f"{best.step_id}: {best.sentences[0].text!r}"]
    if c.nearest and c.nearest.sentences:
        return [f"nearest, {c.nearest.step_id}: {c.nearest.sentences[0].text!r}"]
    return []
