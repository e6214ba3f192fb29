"""Graders: the judge's verdicts, cited statements, repeats and spread; deterministic graders."""

from __future__ import annotations

import json

import pytest

from core_fixtures import make_module, make_persona
from doubles.scripted_client import ScriptedClient
from personasim.errors import PersonasimError
from personasim.grading.grade import grade_transcript
from personasim.grading.judge import verdict_model
from personasim.inputs.criteria import derive_criteria
from personasim.llm.settings import LLMSettings
from personasim.llm.types import QuotaExceeded
from personasim.prompts import Prompts
from personasim.records.statements import learner_statements
from personasim.records.transcript import Transcript
from personasim.run.simulate import simulate_unit
from scripted_answers import scripted_text

SETTINGS = LLMSettings(model="judge-model", seed=0, max_reasks=1)
PROMPTS = Prompts()


async def _transcript(steps: int = 3, persona=None) -> Transcript:
    client = ScriptedClient(lambda call: scripted_text(call.messages))
    return await simulate_unit(client, persona or make_persona(), make_module(steps=steps), 0, SETTINGS, PROMPTS)


def _criterion(criterion_id: str, persona=None):
    return next(c for c in derive_criteria(persona or make_persona(), make_module()) if c.id == criterion_id)


async def _grade(client, transcript, criteria, judge_samples=1, persona=None, steps=3):
    return await grade_transcript(client, transcript, persona or make_persona(), make_module(steps=steps), criteria,
                                  judge_samples, settings=SETTINGS, prompts=PROMPTS)  # fmt: skip


def answer(verdict: str, evidence: list[str], score: int, rationale: str = "r") -> str:
    return json.dumps({"verdict": verdict, "evidence": evidence, "rationale": rationale, "score": score})


async def test_judge_repeats_give_the_median_and_spread_with_their_own_sample_index() -> None:
    transcript = await _transcript()
    verdicts = iter([("not met", 2), ("met", 4), ("partly met", 3)])
    client = ScriptedClient(lambda call: answer(*(v := next(verdicts))[:1], ["S1.takeaway"], v[1], f"r{v[1]}"))
    [grade] = await _grade(client, transcript, [_criterion("gap-01")], judge_samples=3)
    assert (grade.score, grade.score_sd, grade.score_min, grade.score_max) == (3.0, 1.0, 2.0, 4.0)
    assert (grade.verdict, grade.rationale) == ("partly met", "r3")  # the repeat that gave the median
    assert grade.judge_samples == 3 and [s.score for s in grade.samples] == [2, 4, 3]
    assert [(c.options.sample_index, c.options.seed) for c in client.calls] == [(0, 0), (1, 1), (2, 2)]
    assert grade.passed is True and grade.score_norm == 0.5
    assert [(e.id, e.text) for e in grade.evidence] == [("S1.takeaway", transcript.turns[0].reaction.takeaway)]
    assert grade.flags == ["judge samples disagree"]
    assert grade.usage.prompt_tokens == 300 and grade.model == "judge-model"


async def test_judge_calls_share_the_transcript_prefix_and_end_with_the_criterion() -> None:
    transcript = await _transcript()
    client = ScriptedClient(lambda call: scripted_text(call.messages))
    criteria = [c for c in derive_criteria(make_persona(), make_module()) if c.grader == "judge"]
    await _grade(client, transcript, criteria)
    systems = {c.messages[0]["content"] for c in client.calls}
    assert len(systems) == 1
    system = systems.pop()
    assert f"[S3.takeaway] Learner takeaway: {transcript.turns[-1].reaction.takeaway}" in system
    assert "[END.missing] Learner on what was missing: " in system
    assert [c.messages[1]["content"].split()[1] for c in client.calls] == [c.id for c in criteria]


async def test_evidence_is_the_cited_statements_text() -> None:
    transcript = await _transcript()
    statements = learner_statements(transcript)
    client = ScriptedClient([answer("met", ["S2.q1", "END.changed", "S2.q1"], 5)])
    [grade] = await _grade(client, transcript, [_criterion("lens-power")])
    assert [(e.id, e.text) for e in grade.evidence] == [
        ("S2.q1", statements["S2.q1"].text), ("END.changed", statements["END.changed"].text)
    ]  # fmt: skip
    assert grade.verdict == "met" and grade.flags == []


async def test_a_cited_id_that_does_not_exist_is_re_asked() -> None:
    transcript = await _transcript()
    client = ScriptedClient([answer("met", ["S9.takeaway"], 5), answer("met", ["S3.takeaway"], 5)])
    [grade] = await _grade(client, transcript, [_criterion("gap-01")])
    assert len(client.calls) == 2 and "S9.takeaway" in client.calls[1].messages[-1]["content"]
    assert [e.id for e in grade.evidence] == ["S3.takeaway"] and grade.score == 5


async def test_a_score_outside_the_verdicts_band_is_re_asked() -> None:
    transcript = await _transcript()
    client = ScriptedClient([answer("not met", [], 5), answer("not met", [], 2)])
    [grade] = await _grade(client, transcript, [_criterion("gap-01")])
    assert len(client.calls) == 2 and "needs a score of 1 or 2, not 5" in client.calls[1].messages[-1]["content"]
    assert (grade.verdict, grade.score, grade.passed) == ("not met", 2.0, False)


async def test_no_evidence_is_its_own_outcome_not_a_pass() -> None:
    transcript = await _transcript()
    [grade] = await _grade(ScriptedClient([answer("no evidence", [], 3)]), transcript, [_criterion("gap-01")])
    assert (grade.verdict, grade.score, grade.passed) == ("no evidence", 3.0, None)


async def test_a_high_score_citing_nothing_is_flagged() -> None:
    transcript = await _transcript()
    [grade] = await _grade(ScriptedClient([answer("met", [], 5)]), transcript, [_criterion("gap-01")])
    assert grade.score == 5 and grade.evidence == [] and grade.flags == ["high score citing nothing"]


def test_the_answer_schema_lists_the_transcripts_statement_ids() -> None:
    model = verdict_model(("S1.takeaway", "END.changed"))
    schema = model.model_json_schema()
    assert list(schema["properties"]) == ["verdict", "evidence", "rationale", "score"]
    assert schema["properties"]["evidence"]["items"]["enum"] == ["S1.takeaway", "END.changed"]
    assert verdict_model(("S1.takeaway", "END.changed")) is model  # one model per transcript, cached


async def test_a_judge_that_never_answers_validly_leaves_the_criterion_ungraded() -> None:
    transcript = await _transcript()
    client = ScriptedClient(lambda call: '{"score": 9}')
    [grade] = await _grade(client, transcript, [_criterion("gap-01")])
    assert grade.score is None and grade.passed is None
    assert grade.error.startswith("StructuredOutputError") and grade.flags == ["judge failed"]
    assert grade.usage.prompt_tokens == 200  # both asks counted


async def test_other_llm_errors_propagate() -> None:
    transcript = await _transcript()
    client = ScriptedClient(lambda call: QuotaExceeded("insufficient_quota"))
    with pytest.raises(QuotaExceeded):
        await _grade(client, transcript, [_criterion("gap-01"), _criterion("gap-02")])


async def test_failed_transcripts_are_not_graded() -> None:
    transcript = (await _transcript()).model_copy(update={"status": "failed"})
    with pytest.raises(PersonasimError, match="only finished"):
        await _grade(ScriptedClient([]), transcript, [_criterion("gap-01")])


async def test_time_fit_scores_the_share_of_a_week(monkeypatch) -> None:
    # 3 steps x 20 min = 60 min; learner says 10 + 15 + 20 = 45 min.
    transcript = await _transcript()
    cases = [((4, 5), 5), ((2, 3), 4), ((1, 2), 3), ((0.5, 1), 2), ((0.25, 1), 1)]
    for hours, expected in cases:
        persona = make_persona(hours=hours)
        [grade] = await _grade(ScriptedClient([]), transcript, [_criterion("fit-time", persona)], persona=persona)
        assert grade.score == expected, (hours, grade.rationale)
        assert "module estimate 60 min, learner's own estimate 45 min" in grade.rationale
    persona = make_persona(hours=None)
    [grade] = await _grade(ScriptedClient([]), transcript, [_criterion("fit-time", persona)], persona=persona)
    assert grade.score is None and grade.passed is None


async def test_time_fit_uses_the_learners_minutes_when_larger() -> None:
    transcript = await _transcript()
    for turn in transcript.turns:
        turn.reaction = turn.reaction.model_copy(update={"minutes_spent": 100})
    [grade] = await _grade(ScriptedClient([]), transcript, [_criterion("fit-time")])  # 300 of 300 min
    assert grade.score == 3 and "100% of a week" in grade.rationale


async def test_abandonment_scores_how_far_the_learner_got() -> None:
    transcript = await _transcript(steps=4)
    [grade] = await _grade(ScriptedClient([]), transcript, [_criterion("fit-abandonment")], steps=4)
    assert grade.score == 5 and grade.evidence == []
    quitter = make_persona(number=21, title="Chief Allied Health Professional")  # scripted to stop at step 2
    transcript = await _transcript(steps=4, persona=quitter)
    [grade] = await _grade(ScriptedClient([]), transcript, [_criterion("fit-abandonment", quitter)], persona=quitter,
                           steps=4)  # fmt: skip
    assert grade.score == 2.0 and grade.passed is False
    assert "would stop at step 2 of 4" in grade.rationale
    assert [e.text for e in grade.evidence] == ["No time for this right now"]


async def test_misunderstanding_coverage_ignores_topic_words_negation_and_questions() -> None:
    # Issue 21: the old token overlap counted the first two (half the content words; all of them, "not" aside).
    transcript = await _transcript(steps=2)
    said = [["Not sure how finance leadership fits with this step",
             "Collaboration does not mean any compromise of financial rigour"],
            ["I read networking as socialising rather than building strategic relationships"]]  # fmt: skip
    for turn, items in zip(transcript.turns, said, strict=True):
        turn.reaction = turn.reaction.model_copy(update={"misunderstandings": items})
    [grade] = await _grade(ScriptedClient([]), transcript, [_criterion("misunderstanding-surfaced")], steps=2)
    assert grade.rationale.startswith("1 of 3 voiced (3 listed by the learner)")
    assert grade.score == pytest.approx(1 + 4 / 3, abs=1e-4) and [e.id for e in grade.evidence] == ["S2.m1"]


async def test_misunderstanding_coverage_reads_an_absent_opposite_view_as_not_voiced() -> None:
    # A recorded p19 answer says the module never shows IG's value beyond compliance: not the view itself.
    persona = make_persona()
    persona.competency_development_profile.potential_misunderstandings = [
        "Thinking IG is compliance not service improvement",
        "thinking IG is compliance  not service improvement",
    ]
    transcript = await _transcript(steps=1, persona=persona)
    said = "There is no mention of service improvement impact or strategic value of IG beyond compliance"
    transcript.turns[0].reaction = transcript.turns[0].reaction.model_copy(update={"misunderstandings": [said]})
    criterion = _criterion("misunderstanding-surfaced", persona)
    [grade] = await _grade(ScriptedClient([]), transcript, [criterion], persona=persona, steps=1)
    assert grade.score == 1 and grade.evidence == []
    assert grade.rationale.startswith("0 of 1 voiced")  # the duplicate counts once, as in criteria.py


async def test_misunderstanding_coverage_counts_voiced_misunderstandings() -> None:
    # The scripted learner voices misunderstanding k at step k: 2 steps -> 2 of 3.
    transcript = await _transcript(steps=2)
    [grade] = await _grade(ScriptedClient([]), transcript, [_criterion("misunderstanding-surfaced")], steps=2)
    assert grade.score == pytest.approx(1 + 4 * 2 / 3, abs=1e-4)
    assert grade.rationale.startswith("2 of 3 voiced")
    assert "not voiced: Assuming networking is about socialising" in grade.rationale
    assert [e.id for e in grade.evidence] == ["S1.m1", "S2.m1"] and grade.lens == "simulation"
