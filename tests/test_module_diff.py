"""module_diff: steps added, removed and changed between two module versions, with minutes."""

from __future__ import annotations

from pathlib import Path

from personasim.inputs.module import LearningModule, Step
from personasim.inputs.module_diff import diff_modules
from personasim.inputs.module_loader import load_module

FIXTURES = Path(__file__).parent / "fixtures" / "modules" / "valid" / "demo"
LOTUS = Path(__file__).parents[1] / "modules" / "lotus"


def step(step_id: str, title: str | None = None, content: str = "Text.", minutes: float | None = 2, **kw) -> Step:
    return Step(id=step_id, title=title or step_id.title(), content=content, minutes=minutes, **kw)


def module(version: str, *steps: Step, **kw) -> LearningModule:
    return LearningModule(id="m", title="M", version=version, steps=list(steps), **kw)


def test_identical_modules_have_an_empty_diff() -> None:
    a = module("v1", step("a"), step("b"))
    result = diff_modules(a, a)
    assert result.is_empty
    assert result.unchanged == ["a", "b"]
    assert (result.total_minutes_before, result.total_minutes_after) == (4, 4)


def test_added_and_removed_steps() -> None:
    a = module("v1", step("intro"), step("old", content="Old text", minutes=3))
    b = module("v2", step("intro"), step("fresh", content="New text", minutes=5))
    result = diff_modules(a, b)
    assert [(d.id_before, d.minutes_before) for d in result.removed] == [("old", 3)]
    assert [(d.id_after, d.minutes_after) for d in result.added] == [("fresh", 5)]
    assert result.changed == []
    assert (result.total_minutes_before, result.total_minutes_after) == (5, 7)
    assert (result.before, result.after) == ("m@v1", "m@v2")


def test_changed_fields_and_minutes() -> None:
    a = module("v1", step("s", content="One", minutes=2))
    b = module("v2", step("s", content="Two", minutes=4, activity="Do it.", reflection_questions=["Why?"]))
    (change,) = diff_modules(a, b).changed
    assert change.status == "changed"
    assert change.matched_by == "id"
    assert change.changed_fields == ["content", "activity", "reflection_questions", "minutes"]
    assert (change.minutes_before, change.minutes_after) == (2, 4)
    assert change.label == "s"


def test_renamed_step_matched_by_similar_title() -> None:
    a = module("v1", step("welcome-purpose", "Welcome & purpose", content="Hello"))
    b = module("v2", step("welcome-and-purpose", "Welcome and purpose", content="Hello there"))
    result = diff_modules(a, b)
    assert result.added == [] and result.removed == []
    (change,) = result.changed
    assert change.matched_by == "title"
    assert change.changed_fields == ["id", "title", "content"]
    assert change.label == "welcome-purpose -> welcome-and-purpose"


def test_renamed_step_matched_by_identical_content() -> None:
    a = module("v1", step("x", "Completely different", content="Same body"))
    b = module("v2", step("y", "Nothing alike at all", content="Same body"))
    (change,) = diff_modules(a, b).changed
    assert change.matched_by == "content"
    assert change.changed_fields == ["id", "title"]


def test_dissimilar_steps_are_not_paired() -> None:
    a = module("v1", step("lessons", "Lessons learnt", content="A"))
    b = module("v2", step("charter", "Anti-racist charter", content="B"))
    result = diff_modules(a, b)
    assert [d.id_before for d in result.removed] == ["lessons"]
    assert [d.id_after for d in result.added] == ["charter"]


def test_rename_pairs_best_match_first() -> None:
    a = module("v1", step("a1", "Pilot changes in Liverpool"), step("a2", "Pilot changes"))
    b = module("v2", step("b1", "Pilot changes at Liverpool", content="x"))
    result = diff_modules(a, b)
    assert [(d.id_before, d.id_after) for d in result.changed] == [("a1", "b1")]
    assert [d.id_before for d in result.removed] == ["a2"]


def test_module_fields_changed() -> None:
    a = module("v1", step("a"), delivery_format="webinar")
    b = module("v2", step("a"), delivery_format="e-learning")
    result = diff_modules(a, b)
    assert result.module_fields_changed == ["delivery_format"]
    assert not result.is_empty


def test_total_minutes_fall_back_to_estimate() -> None:
    a = module("v1", step("a", minutes=None), estimated_minutes=30)
    b = module("v2", step("a", minutes=None))
    result = diff_modules(a, b)
    assert (result.total_minutes_before, result.total_minutes_after) == (30, 0)


def test_demo_fixture_versions() -> None:
    result = diff_modules(load_module(FIXTURES / "v1.md"), load_module(FIXTURES / "v2.md"))
    assert [d.id_after for d in result.added] == ["next-steps"]
    assert [d.id_before for d in result.removed] == ["closing"]
    by_label = {d.label: d for d in result.changed}
    assert set(by_label) == {"welcome-purpose -> welcome-and-purpose", "table"}
    assert by_label["table"].changed_fields == ["content", "activity", "minutes", "serves"]
    assert (by_label["table"].minutes_before, by_label["table"].minutes_after) == (3, 4)
    assert (result.total_minutes_before, result.total_minutes_after) == (7, 7)
    assert result.before_hash != result.after_hash


def test_lotus_v1_to_v2_keeps_every_v1_step() -> None:
    v1, v2 = load_module(LOTUS / "v1.md"), load_module(LOTUS / "v2.md")
    result = diff_modules(v1, v2)
    assert result.removed == []
    assert len(result.changed) + len(result.unchanged) == len(v1.steps)
    assert len(result.added) == len(v2.steps) - len(v1.steps)
    assert (result.total_minutes_before, result.total_minutes_after) == (v1.total_minutes, v2.total_minutes)
    assert "delivery_format" in result.module_fields_changed
