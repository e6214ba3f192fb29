"""Simulation health: is this run's table evidence about the module, or about a weak model?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from personasim.analysis.health_checks import (
    HealthCheck,
    check_ai_phrases,
    check_copied_answers,
    check_criterion_echo,
    check_empty_lists,
    check_failed_units,
    check_flat_across_personas,
    check_flat_scores,
    check_persona_similarity,
    check_truncated,
    check_unsupported_high_scores,
    check_unverified_evidence,
    judge_quotes,
    judge_records,
)
from personasim.records.transcript import Transcript


class HealthReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[HealthCheck]
    verdict: str
    healthy: bool

    def check(self, name: str) -> HealthCheck:
        return next(c for c in self.checks if c.name == name)


_HEADLINE = ("flat_scores", "copied_answers", "unverified_evidence", "persona_similarity")


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
                  criteria_texts: Mapping[str, str] | None = None) -> HealthReport:  # fmt: skip
    """All checks over a run's transcripts and (optionally) its results table, from saved files
    only (no LLM calls). `criteria_texts` (criterion id -> text) overrides the table's
    `criterion_text` for the echo check."""
    finished = [t for t in transcripts if t.status == "finished"]
    records = judge_records(results)
    quotes = judge_quotes(results, transcripts, criteria_texts, records)
    checks = [
        check_flat_scores(finished),
        check_flat_across_personas(finished),
        check_copied_answers(finished),
        check_empty_lists(finished, "misunderstandings"),
        check_empty_lists(finished, "barriers"),
        check_ai_phrases(transcripts),
        check_truncated(transcripts),
        check_failed_units(transcripts),
        check_persona_similarity(finished),
        check_unverified_evidence(quotes),
        check_criterion_echo(quotes),
        check_unsupported_high_scores(records, quotes),
    ]
    verdict, healthy = _verdict(checks, len(transcripts))
    return HealthReport(checks=checks, verdict=verdict, healthy=healthy)


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
