"""Simulation health: is this run's table evidence about the module, or about a weak model?

With the run's coverage before simulation (`analysis.gaps`), two more checks set the judge's scores
beside the module's text (`analysis.coverage_health`): `credited_unaddressed` and the advisory `look_here`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.analysis.coverage_health import CoverageFlag, coverage_health
from personasim.analysis.gaps_types import Coverage
from personasim.analysis.health_checks import (
    HealthCheck,
    check_ai_phrases,
    check_copied_answers,
    check_empty_lists,
    check_failed_units,
    check_flat_across_personas,
    check_flat_scores,
    check_identical_repeats,
    check_persona_similarity,
    check_truncated,
    check_uncited_high_scores,
    check_unrelated_citations,
    check_verdict_contradictions,
    judge_citations,
    judge_records,
)
from personasim.records.transcript import Transcript


class HealthReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[HealthCheck]
    verdict: str
    healthy: bool
    coverage_flags: list[CoverageFlag] = Field(
        default_factory=list, description="judge scores against coverage: one per persona x module x criterion"
    )

    def check(self, name: str) -> HealthCheck:
        return next(c for c in self.checks if c.name == name)


_HEADLINE = ("flat_scores", "copied_answers", "uncited_high_scores", "persona_similarity")


def _verdict(checks: list[HealthCheck], n_units: int) -> tuple[str, bool]:
    """Degenerate when any check other than an advisory one fails; advisory failures are noted."""
    if not n_units:
        return "nothing to assess: no transcripts", False
    failing = [c.detail for c in checks if c.ok is False and not c.advisory]
    noted = [c.detail for c in checks if c.ok is False and c.advisory]
    note = ("; note: " + "; ".join(noted)) if noted else ""
    if failing:
        return "simulations look degenerate: " + "; ".join(failing) + note, False
    shown = [c.detail for c in checks if c.name in _HEADLINE and c.ok is not None]
    return "simulations look healthy: " + "; ".join(shown or [f"{n_units} units checked"]) + note, True


def assess_health(transcripts: list[Transcript], results: pd.DataFrame | None = None,
                  criteria_texts: Mapping[str, str] | None = None, *,
                  coverage: Coverage | None = None) -> HealthReport:  # fmt: skip
    """All checks over a run's transcripts and (optionally) its results table, from saved files
    only (no LLM calls). `criteria_texts` (criterion id -> text) overrides the table's
    `criterion_text` for the echo check. With the run's `coverage`, the two judge-against-coverage
    checks are added and their flags kept in `coverage_flags`."""
    finished = [t for t in transcripts if t.status == "finished"]
    records = judge_records(results)
    citations = judge_citations(records, criteria_texts)
    checks = [
        check_flat_scores(finished),
        check_flat_across_personas(finished),
        check_copied_answers(finished),
        check_identical_repeats(finished),
        check_empty_lists(finished, "misunderstandings"),
        check_empty_lists(finished, "barriers"),
        check_ai_phrases(transcripts),
        check_truncated(transcripts),
        check_failed_units(transcripts),
        check_persona_similarity(finished),
        check_uncited_high_scores(records),
        check_unrelated_citations(citations),
        check_verdict_contradictions(records),
    ]
    flags: list[CoverageFlag] = []
    if coverage is not None:
        judged = coverage_health(results if results is not None else pd.DataFrame(), coverage)
        checks += judged.checks
        flags = judged.flags
    verdict, healthy = _verdict(checks, len(transcripts))
    return HealthReport(checks=checks, verdict=verdict, healthy=healthy, coverage_flags=flags)


def health_to_dict(report: HealthReport) -> dict[str, Any]:
    """JSON-ready form for the run manifest."""
    return report.model_dump(mode="json")


HEALTH_TABLE_COLUMNS = ("check", "value", "threshold", "status", "detail")


def health_table(report: HealthReport) -> list[tuple[str, str, str, str, str]]:
    """One row of strings per check, in `HEALTH_TABLE_COLUMNS` order; an advisory check over its
    threshold reads "warn", any other "FAIL"."""
    return [
        (c.name, "-" if c.value is None else f"{c.value:.2f}", f"<= {c.threshold:g}", _status(c), c.detail)
        for c in report.checks
    ]


def _status(check: HealthCheck) -> str:
    if check.ok is None:
        return "n/a"
    if check.ok:
        return "ok"
    return "warn" if check.advisory else "FAIL"
