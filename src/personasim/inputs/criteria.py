"""Evaluation criteria derived from a persona (and the module version being tested).

Each persona yields: one criterion per competency gap, per potential misunderstanding and per
(distinct) target competency; fit criteria (time, learning preferences, barriers, abandonment);
whether the simulated learner voiced its potential misunderstandings (lens "simulation": a property
of the role-play, kept out of the module's scores); the persona document's four lenses (power, difference, inclusion,
transformational learning); and its explicit `Evaluation Criteria`, if it lists any.
Ids are stable across runs (`gap-01`, `misunderstanding-02`, `lens-power`) so runs and module
versions line up criterion by criterion.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona

Grader = Literal["judge", "time_fit", "abandonment", "misunderstanding_coverage"]
Lens = Literal[
    "gaps",
    "misunderstandings",
    "competencies",
    "fit",
    "power",
    "difference",
    "inclusion",
    "transformational",
    "explicit",
    "simulation",
]
SIMULATION_LENS = "simulation"  # about the role-play, not the module: never in a module's scores
LENSES: tuple[str, ...] = tuple(lens for lens in Lens.__args__ if lens != SIMULATION_LENS)  # type: ignore[attr-defined]
DEFAULT_THRESHOLD = 3.0

MISUNDERSTANDING_ANCHORS = {  # "no evidence" (it never came up either way) is the judge's verdict, not a score
    "1": "The module reinforced it, or it shaped the learner's plans unchallenged.",
    "2": "It surfaced and the module left it standing.",
    "3": "Partly corrected: the learner's view moved, but the misconception still shows.",
    "4": "Later statements show a view that contradicts it, or it surfaced and was mostly corrected.",
    "5": "It surfaced (or was anticipated) and later statements show it clearly corrected.",
}


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    lens: Lens
    source_field: str = Field(description="which persona field it came from")
    grader: Grader = "judge"
    anchors: dict[str, str] | None = Field(
        default=None, description="rubric anchors '1'..'5' for this criterion; the judge's generic ones otherwise"
    )
    threshold: float = DEFAULT_THRESHOLD


def derive_criteria(persona: Persona, module: LearningModule | None = None) -> list[Criterion]:
    """All criteria for one persona, in a stable order."""
    return [
        *_gap_criteria(persona),
        *_misunderstanding_criteria(persona),
        *_competency_criteria(persona, module),
        *_fit_criteria(persona),
        *_lens_criteria(persona),
        *_explicit_criteria(persona),
    ]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _brief(text: str, limit: int = 160) -> str:
    """First `limit` characters, cut at a word boundary: criteria stay one readable line."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def _dedupe(items: list[str]) -> list[tuple[int, str]]:
    """Distinct non-empty items with their original positions (first occurrence wins)."""
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        key = _norm(item)
        if key and key not in seen:
            seen.add(key)
            out.append((i, item.strip()))
    return out


def _gap_criteria(persona: Persona) -> list[Criterion]:
    return [
        Criterion(
            id=f"gap-{n:02d}",
            text=f"Does the module help this learner close the gap: {gap}?",
            lens="gaps",
            source_field=f"competency_development_profile.prior_knowledge.gaps[{i}]",
        )
        for n, (i, gap) in enumerate(_dedupe(persona.gaps), start=1)
    ]


def _misunderstanding_criteria(persona: Persona) -> list[Criterion]:
    return [
        Criterion(
            id=f"misunderstanding-{n:02d}",
            text=(
                f'Potential misunderstanding: "{item}". Does the module correct it for this learner: do later '
                "statements show the view changed, or the module anticipate and address it? (Whether the "
                "learner voiced it at all is a property of the simulation, graded apart.)"
            ),
            lens="misunderstandings",
            source_field=f"competency_development_profile.potential_misunderstandings[{i}]",
            anchors=MISUNDERSTANDING_ANCHORS,
        )
        for n, (i, item) in enumerate(_dedupe(persona.misunderstandings), start=1)
    ]


def _competency_criteria(persona: Persona, module: LearningModule | None) -> list[Criterion]:
    items = _dedupe(persona.competency_development_profile.target_competencies)
    out = []
    for n, (i, competency) in enumerate(items, start=1):
        # The same text for every module version (what a module claims to target is not evidence, and
        # two versions compared must be judged on the same question).
        out.append(
            Criterion(
                id=f"competency-{n:02d}",
                text=f"Does the module develop this target competency for this learner: {competency}?",
                lens="competencies",
                source_field=f"competency_development_profile.target_competencies[{i}]",
            )
        )
    return out


def _fit_criteria(persona: Persona) -> list[Criterion]:
    readiness = persona.learning_readiness
    time_text = persona.competency_development_profile.contextual_constraints.time_available
    prefs = "; ".join(readiness.learning_preferences) or "not stated"
    barriers = "; ".join(readiness.barriers_to_engagement) or "not stated"
    return [
        Criterion(
            id="fit-time",
            text=f"Does the module fit the time this learner has ({time_text or 'not stated'})?",
            lens="fit",
            source_field="competency_development_profile.contextual_constraints.time_available",
            grader="time_fit",
        ),
        Criterion(
            id="fit-preferences",
            text=f"Does the module's format suit how this learner prefers to learn ({prefs})?",
            lens="fit",
            source_field="learning_readiness.learning_preferences",
        ),
        Criterion(
            id="fit-barriers",
            text=f"Does the module work around this learner's barriers to engagement ({barriers})?",
            lens="fit",
            source_field="learning_readiness.barriers_to_engagement",
        ),
        Criterion(
            id="fit-abandonment",
            text="Does the learner stay with the module to the end (no step where they would stop)?",
            lens="fit",
            source_field="transcript.turns[].reaction.would_continue",
            grader="abandonment",
        ),
        Criterion(
            id="misunderstanding-surfaced",
            text=(
                "Does the simulated learner voice the persona's potential misunderstandings at some step? "
                "(A property of the simulation, not of the module: kept out of the module's scores.)"
            ),
            lens=SIMULATION_LENS,
            source_field="competency_development_profile.potential_misunderstandings",
            grader="misunderstanding_coverage",
        ),
    ]


def _lens_criteria(persona: Persona) -> list[Criterion]:
    profile = persona.diversity_profile
    power_position = _brief(profile.experience_of_power.power_position) or "not stated"
    identity = _brief("; ".join(profile.protected_characteristics.identity), 200) or "not stated"
    minoritised = _brief(profile.experience_of_power.minoritised_identities) or "not stated"
    awareness = _brief(profile.critical_consciousness.awareness_of_structural_inequality) or "not stated"
    return [
        Criterion(
            id="lens-power",
            text=(
                "Power: does the module engage with power as this learner holds and meets it "
                f"({power_position}) - who holds power, how to use or challenge it - rather than "
                "treating leadership as neutral?"
            ),
            lens="power",
            source_field="diversity_profile.experience_of_power.power_position",
        ),
        Criterion(
            id="lens-difference",
            text=(
                f"Difference: does the module recognise this learner's identities ({identity}; "
                f"minoritised as: {minoritised}) without stereotyping, treating lived experience as insight?"
            ),
            lens="difference",
            source_field="diversity_profile.protected_characteristics.identity",
        ),
        Criterion(
            id="lens-inclusion",
            text=(
                "Inclusion: can this learner take part fully and safely (format, access, safety to "
                "speak), and does the module equip them to include others?"
            ),
            lens="inclusion",
            source_field="learning_readiness.access_to_learning",
        ),
        Criterion(
            id="lens-transformational",
            text=(
                "Transformational learning: does the module prompt critical reflection that shifts "
                "this learner's assumptions and practice, building on where they are "
                f"({awareness}), not just adding knowledge?"
            ),
            lens="transformational",
            source_field="diversity_profile.critical_consciousness.awareness_of_structural_inequality",
        ),
    ]


def _explicit_criteria(persona: Persona) -> list[Criterion]:
    return [
        Criterion(
            id=f"explicit-{n:02d}",
            text=item,
            lens="explicit",
            source_field=f"evaluation_criteria[{i}]",
        )
        for n, (i, item) in enumerate(_dedupe(persona.evaluation_criteria), start=1)
    ]
