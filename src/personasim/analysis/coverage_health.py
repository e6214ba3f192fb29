"""Judge scores against coverage before simulation: credit for what no step addresses, and steps the judge missed.

Two checks over a run's results table and its `Coverage` (from `analysis.gaps.coverage_for_run`), pure
functions with no I/O and no LLM:

- `credited_unaddressed`: judge scores of 4 or more on criteria that no step addresses. A judge that
  gives a 5 where no step's text touches the criterion is crediting what is not there (or the learner
  brought it in; either way, look before trusting the score).
- `look_here` (advisory: never alone "degenerate"): criteria that steps address but the judge scored 1-2:
  the text is there and did not land, or the judge missed it. A pointer for the designer, with the steps
  and sentences to read.

Both read "lower is better" like `analysis.health`: `ok` is `value <= threshold`, None with nothing to look at.
Only judge rows count; criteria whose coverage is None (decided by a simulation) are skipped.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.analysis.gaps_types import Coverage, CriterionCoverage
from personasim.analysis.health_checks import HealthCheck

HIGH_SCORE = 4.0
LOW_SCORE = 2.0
ADVISORY = frozenset({"look_here"})
THRESHOLDS = {
    # A capable judge should seldom credit what no step says; the lexical matcher misses some paraphrases.
    "credited_unaddressed": 0.25,
    # Informational: above half, the judge and the module text disagree more often than not.
    "look_here": 0.5,
}


class CoverageFlag(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["credited_unaddressed", "look_here"]
    persona_id: str
    module_ref: str
    criterion_id: str
    lens: str
    scores: list[float] = Field(description="the judge scores behind the flag (one per sample)")
    coverage: str = Field(description="the coverage summary")
    steps: list[str] = Field(default_factory=list, description="steps that address it (look_here)")


class CoverageHealth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[HealthCheck]
    flags: list[CoverageFlag]


def coverage_health(results: pd.DataFrame, coverage: Coverage) -> CoverageHealth:
    """Both checks, and one flag per persona x module version x criterion that raised one."""
    groups = _judge_groups(results)
    credited: list[CoverageFlag] = []
    look: list[CoverageFlag] = []
    high_total = low_or_high_addressed = 0
    for (persona_id, module_ref, criterion_id), scores in groups.items():
        found = coverage.lookup(persona_id, module_ref, criterion_id)
        if found is None or found.addressed is None:
            continue
        high = [s for s in scores if s >= HIGH_SCORE]
        high_total += len(high)
        if high and not found.addressed:
            credited.append(_flag("credited_unaddressed", persona_id, module_ref, found, high))
        if found.addressed:
            low_or_high_addressed += len(scores)
            low = [s for s in scores if s <= LOW_SCORE]
            if low:
                look.append(_flag("look_here", persona_id, module_ref, found, low))
    checks = [
        _check("credited_unaddressed", sum(len(f.scores) for f in credited), high_total,
               "judge scores of 4+ are on criteria no step addresses"),
        _check("look_here", sum(len(f.scores) for f in look), low_or_high_addressed,
               "judge scores on criteria that steps address are 1-2"),
    ]  # fmt: skip
    return CoverageHealth(checks=checks, flags=credited + look)


def _judge_groups(results: pd.DataFrame) -> dict[tuple[str, str, str], list[float]]:
    needed = {"grader", "persona_id", "module_id", "module_version", "criterion_id", "score"}
    if results is None or results.empty or not needed.issubset(results.columns):
        return {}
    rows = results[(results["grader"] == "judge") & results["score"].notna()]
    out: dict[tuple[str, str, str], list[float]] = {}
    columns = ["persona_id", "module_id", "module_version", "criterion_id", "score"]
    for persona_id, module_id, version, criterion_id, score in rows[columns].itertuples(index=False, name=None):
        key = (str(persona_id), f"{module_id}@{version}", str(criterion_id))
        out.setdefault(key, []).append(float(score))
    return out


def _flag(kind: str, persona_id: str, module_ref: str, found: CriterionCoverage, scores: list[float]) -> CoverageFlag:
    return CoverageFlag(kind=kind, persona_id=persona_id, module_ref=module_ref, criterion_id=found.criterion_id,
                        lens=found.lens, scores=scores, coverage=found.summary,
                        steps=[s.step_id for s in found.steps])  # fmt: skip


def _check(name: str, flagged: int, total: int, what: str) -> HealthCheck:
    threshold, advisory = THRESHOLDS[name], name in ADVISORY
    if total == 0:
        return HealthCheck(name=name, value=None, threshold=threshold, ok=None, detail=f"no {what.split(' are ')[0]}",
                           advisory=advisory)  # fmt: skip
    value = round(flagged / total, 4)
    return HealthCheck(name=name, value=value, threshold=threshold, ok=value <= threshold,
                       detail=f"{flagged} of {total} {what}", advisory=advisory)  # fmt: skip
