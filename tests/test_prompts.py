"""Prompt templates: what the persona and the judge are shown, and how templates are versioned."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core_fixtures import make_module, make_persona
from personasim.errors import InputError
from personasim.inputs.criteria import derive_criteria
from personasim.inputs.persona_parser import load_personas
from personasim.prompts import TEMPLATE_NAMES, Prompts, default_prompts_dir
from personasim.records.transcript import Transcript

REPO = Path(__file__).resolve().parents[1]
SEED_PERSONAS = load_personas([REPO / "personas"])


def test_seed_file_has_the_six_stage3_personas() -> None:
    assert [p.number for p in SEED_PERSONAS] == [17, 18, 19, 20, 21, 22]


@pytest.mark.parametrize("persona", SEED_PERSONAS, ids=lambda p: p.id)
def test_system_prompt_carries_gaps_misunderstandings_and_time(persona) -> None:
    text = Prompts().persona_system(persona)
    assert persona.gaps and persona.misunderstandings
    for gap in persona.gaps:
        assert gap in text
    for item in persona.misunderstandings:
        assert item in text
    assert persona.competency_development_profile.contextual_constraints.time_available in text
    assert persona.title in text
    for pref in persona.learning_readiness.learning_preferences[:4]:
        assert pref in text
    assert "not an AI" in text and "first person" in text
    assert len(text) < 6_000, "keep the system prompt near 1,000 tokens for small local models"


def test_step_turn_shows_position_content_activity_questions_and_reminder() -> None:
    persona, module = make_persona(), make_module(steps=3)
    text = Prompts().step_turn(persona, module, 2)
    assert text.startswith("Step 2 of 3: Step 2 title (about 20 min)")
    assert "Content of step 2 in v1" in text
    assert "Activity: Activity 2" in text
    assert "- Question 2?" in text
    assert "Remember: you are the Assistant Director of Finance" in text
    assert "5-6 hours weekly" in text
    assert "would_continue" in text and "minutes_spent" in text


def test_end_reflection_names_the_module_and_the_fields() -> None:
    text = Prompts().end_reflection(make_persona(), make_module(steps=3))
    assert '"Compassionate and fair investigations" (3 steps, about 60 minutes)' in text
    for key in ("what_changed", "what_was_missing", "would_recommend", "recommend_reason"):
        assert key in text


def _transcript() -> Transcript:
    return Transcript(run_id="r", unit_id="u", persona_id="p17-test", persona_hash="h", module_id="lotus",
                      module_version="v1", module_hash="m", sample=0, model="m", system_prompt="s")  # fmt: skip


def test_judge_prompts_put_the_shared_transcript_first_and_the_criterion_last() -> None:
    prompts, persona, module = Prompts(), make_persona(), make_module()
    criteria = derive_criteria(persona, module)
    system = prompts.judge_system(_transcript(), persona, module)
    assert "Rubric" in system and "5 = fully met" in system and "1 = not met" in system
    assert "1. verdict" in system and "4. score, which must fit the verdict" in system
    assert all(c.text not in system for c in criteria)  # the shared prefix holds no criterion
    user = prompts.judge_criterion(criteria[2])
    assert user.startswith("Criterion misunderstanding-01 (lens: misunderstandings)")
    assert "3 = Partly corrected" in user  # this criterion's own anchors
    assert user.rstrip().endswith('"score": 1-5}.')


def test_template_hash_changes_when_a_template_changes(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), folder)
    before = Prompts(folder).template_hashes()
    assert set(before) == set(TEMPLATE_NAMES)
    with (folder / "step_turn.md.j2").open("a", encoding="utf-8") as handle:
        handle.write("\nOne more line.\n")
    after = Prompts(folder).template_hashes()
    assert after["step_turn.md.j2"] != before["step_turn.md.j2"]
    assert {k: v for k, v in after.items() if k != "step_turn.md.j2"} == {
        k: v for k, v in before.items() if k != "step_turn.md.j2"
    }
    assert Prompts(folder).prompt_hash() != Prompts(default_prompts_dir()).prompt_hash()


def test_a_prompts_folder_in_the_current_directory_is_never_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other templates would mean other replay keys: only a folder given explicitly is used.
    packaged = Prompts().template_hashes()
    shutil.copytree(REPO / "prompts", tmp_path / "prompts")
    (tmp_path / "prompts" / "step_turn.md.j2").write_text("something else {{ index }}\n")
    monkeypatch.chdir(tmp_path)
    assert default_prompts_dir() == REPO / "prompts"  # an editable install reads the checkout's prompts/
    assert Prompts().template_hashes() == packaged
    assert Prompts(tmp_path / "prompts").template_hashes() != packaged


def test_unknown_template_variables_are_errors(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), folder)
    (folder / "end_reflection.md.j2").write_text("{{ persona.no_such_field }}", encoding="utf-8")
    with pytest.raises(InputError, match="unknown value"):
        Prompts(folder).end_reflection(make_persona(), make_module())


def test_a_folder_missing_templates_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lacks"):
        Prompts(tmp_path)


def test_a_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), folder)
    (folder / "judge_criterion.md.j2").write_text("line one\n{% if %}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"judge_criterion\.md\.j2:2: template error"):
        Prompts(folder)
