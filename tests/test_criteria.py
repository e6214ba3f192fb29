"""Criteria derived from a persona (and the module version under test)."""

from __future__ import annotations

from pathlib import Path

from core_fixtures import make_module, make_persona
from personasim.inputs.criteria import LENSES, derive_criteria
from personasim.inputs.persona_parser import load_personas

REPO = Path(__file__).resolve().parents[1]


def test_one_criterion_per_gap_misunderstanding_and_distinct_competency() -> None:
    criteria = derive_criteria(make_persona(), make_module())
    ids = [c.id for c in criteria]
    assert ids == [
        "gap-01", "gap-02",
        "misunderstanding-01", "misunderstanding-02", "misunderstanding-03",
        "competency-01", "competency-02",
        "fit-time", "fit-preferences", "fit-barriers", "fit-abandonment", "misunderstanding-surfaced",
        "lens-power", "lens-difference", "lens-inclusion", "lens-transformational",
    ]  # fmt: skip
    competencies = [c.text for c in criteria if c.lens == "competencies"]
    assert sum("Build relationships (Stage 3)" in t for t in competencies) == 1  # listed twice, asked once
    by_id = {c.id: c for c in criteria}
    assert "influencing across functions" in by_id["gap-02"].text
    assert "purely technical" in by_id["misunderstanding-01"].text
    assert by_id["misunderstanding-01"].anchors and by_id["gap-01"].anchors is None
    assert by_id["competency-02"].source_field == "competency_development_profile.target_competencies[1]"


def test_graders_and_lenses() -> None:
    criteria = derive_criteria(make_persona(), make_module())
    graders = {c.id: c.grader for c in criteria if c.grader != "judge"}
    assert graders == {
        "fit-time": "time_fit",
        "fit-abandonment": "abandonment",
        "misunderstanding-surfaced": "misunderstanding_coverage",
    }
    assert {c.lens for c in criteria} == (set(LENSES) - {"explicit"}) | {"simulation"}
    assert "simulation" not in LENSES  # the role-play's own lens is never one of the module's
    assert "5-6 hours weekly" in next(c.text for c in criteria if c.id == "fit-time")
    assert "Significant organisational power" in next(c.text for c in criteria if c.id == "lens-power")


def test_explicit_evaluation_criteria_are_added_and_deduplicated() -> None:
    persona = make_persona(
        evaluation_criteria=["Names racism explicitly", "names racism  explicitly", "Offers mentoring"]
    )
    explicit = [c for c in derive_criteria(persona) if c.lens == "explicit"]
    assert [(c.id, c.text, c.source_field) for c in explicit] == [
        ("explicit-01", "Names racism explicitly", "evaluation_criteria[0]"),
        ("explicit-02", "Offers mentoring", "evaluation_criteria[2]"),
    ]


def test_criteria_do_not_depend_on_the_module_version() -> None:
    # Two versions compared are judged on the same questions: what a module claims to target is
    # not evidence, so it is not in the criterion's text (it used to be, for the claimed ones).
    persona = make_persona()
    other = make_module().model_copy(update={"target_competencies": [], "version": "v9"})
    with_module, claims_nothing, without = (derive_criteria(persona, m) for m in (make_module(), other, None))
    assert with_module == claims_nothing == without
    assert not any("module says" in c.text for c in with_module)


def test_seed_personas_get_the_four_lenses_and_unique_ids() -> None:
    for persona in load_personas([REPO / "personas"]):
        criteria = derive_criteria(persona)
        ids = [c.id for c in criteria]
        assert len(ids) == len(set(ids))
        assert {"lens-power", "lens-difference", "lens-inclusion", "lens-transformational"} <= set(ids)
        assert len([c for c in criteria if c.lens == "gaps"]) == len(set(persona.gaps))
        assert all(len(c.text) < 500 for c in criteria)
