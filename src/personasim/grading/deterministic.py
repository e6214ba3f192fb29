"""Deterministic graders (no LLM): time fit, abandonment and whether the learner voiced the persona's
potential misunderstandings. Each is a pure function of the transcript, persona and module; see their
docstrings for how they score. Scores are on the judge's 1-5 scale."""

from __future__ import annotations

from personasim.grading.judge import base_fields
from personasim.grading.misunderstanding_match import compare
from personasim.inputs.criteria import Criterion, _dedupe
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.records.grades import Evidence, Grade
from personasim.records.transcript import Transcript


def _scored(
    criterion: Criterion, transcript: Transcript, score: float | None, rationale: str,
    evidence: list[Evidence] | None = None,
) -> Grade:  # fmt: skip
    return Grade(
        **base_fields(criterion, transcript),
        score=None if score is None else round(score, 4),
        passed=None if score is None else score >= criterion.threshold,
        rationale=rationale,
        evidence=evidence or [],
    )


def _fraction_score(fraction: float) -> int:
    for limit, score in ((0.25, 5), (0.5, 4), (1.0, 3), (2.0, 2)):
        if fraction <= limit:
            return score
    return 1


def grade_time_fit(criterion: Criterion, transcript: Transcript, persona: Persona, module: LearningModule) -> Grade:
    """Share of one week's development time the module takes: the larger of the module's own
    estimate and the minutes the learner said they would spend, against the low end of the
    persona's weekly hours ("3-4 h": 3 h). "Up to N h" is parsed as 0-N h; its low end, 0, is no
    budget at all, so the grader reads it as N h and says so. <=25% -> 5, <=50% -> 4, <=100% -> 3,
    <=200% -> 2, more -> 1."""
    hours = persona.hours_per_week
    if hours is None:
        return _scored(criterion, transcript, None, "the persona states no weekly development hours")
    module_min = module.total_minutes
    learner_min = sum(t.reaction.minutes_spent for t in transcript.turns)
    needed = f"module estimate {module_min:g} min, learner's own estimate {learner_min} min"
    if hours.max <= 0:
        return _scored(criterion, transcript, 1, f"{needed}; the persona has 0 h of development time a week")
    if hours.min > 0:
        weekly_min = hours.min * 60
        basis = f"low end of {hours.min:g}-{hours.max:g} h" if hours.max > hours.min else f"{hours.min:g} h"
    else:
        weekly_min = hours.max * 60
        basis = f"up to {hours.max:g} h: the upper limit, the only figure stated"
    fraction = max(module_min, learner_min) / weekly_min
    rationale = f"{needed}; {weekly_min:g} min of development time a week ({basis}): {fraction:.0%} of a week"
    return _scored(criterion, transcript, _fraction_score(fraction), rationale)


def grade_abandonment(criterion: Criterion, transcript: Transcript, persona: Persona, module: LearningModule) -> Grade:
    """5 when the learner would continue after every step but the last; otherwise 1 + 4 x the
    share of steps completed before the first step where they would stop (stopping at step 1 -> 1).
    The last step's would_continue is not counted: there is no next step to continue to (a one-step
    module scores 5)."""
    total = len(module.steps)
    asked = [t for t in transcript.turns if t.step_index < total]
    stops = [t for t in asked if not t.reaction.would_continue]
    ignored = "; the last step's would_continue is not counted: no step follows it"
    if not stops:
        done = "a one-step module" if total == 1 else f"would continue after each of steps 1-{total - 1} of {total}"
        return _scored(criterion, transcript, 5, done + ignored)
    first = stops[0]
    score = 1 + 4 * (first.step_index - 1) / total
    rationale = (
        f"would stop at step {first.step_index} of {total} ({first.step_id}); "
        f"{len(stops)} earlier step(s) with would_continue false{ignored}"
    )
    reason = first.reaction.continue_reason
    evidence = [Evidence(id=f"S{first.step_index}.continue", text=reason)] if reason.strip() else []
    return _scored(criterion, transcript, score, rationale, evidence)


def grade_misunderstanding_coverage(criterion: Criterion, transcript: Transcript, persona: Persona,
                                    module: LearningModule) -> Grade:  # fmt: skip
    """Whether the learner voiced each of the persona's potential misunderstandings (deduplicated as
    `criteria.py` does), item by item against every misunderstanding the learner listed, with
    `misunderstanding_match.compare`: Snowball stems held with the same polarity (a negated or opposed
    item, or a question, does not count). Score 1 + 4 x share voiced; the evidence is each voicing item
    (the best-covering one per misunderstanding)."""
    expected = [item for _, item in _dedupe(persona.misunderstandings)]
    said = {f"S{t.step_index}.m{n}": m for t in transcript.turns for n, m in enumerate(t.reaction.misunderstandings, 1)}
    if not expected:
        return _scored(criterion, transcript, None, "the persona lists no potential misunderstandings")
    matched: dict[str, str] = {}
    for item in expected:
        voiced = [(v.coverage, key) for key, text in said.items() if (v := compare(item, text)).voiced]
        if voiced:
            matched[item] = max(voiced, key=lambda pair: pair[0])[1]  # the first of the best-covering items
    missing = [m for m in expected if m not in matched]
    rationale = f"{len(matched)} of {len(expected)} voiced ({len(said)} listed by the learner)"
    if missing:
        rationale += "; not voiced: " + "; ".join(missing)
    evidence = [Evidence(id=key, text=said[key]) for key in dict.fromkeys(matched.values())]
    return _scored(criterion, transcript, 1 + 4 * len(matched) / len(expected), rationale, evidence)
