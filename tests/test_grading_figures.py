"""Grader figures that must mean what they say: abandonment's last step, time fit's 'up to N h',
the median of the judge's repeats and the rationale of a repeat that gave it."""

from __future__ import annotations

import json

import pytest

from core_fixtures import make_module, make_persona
from doubles.scripted_client import ScriptedClient
from personasim.grading.grade import grade_transcript
from personasim.inputs.criteria import derive_criteria
from personasim.llm.settings import LLMSettings
from personasim.prompts import Prompts
from personasim.records.transcript import Transcript
from personasim.run.simulate import simulate_unit
from scripted_answers import scripted_text

SETTINGS = LLMSettings(model="judge-model", seed=0, max_reasks=1)
PROMPTS = Prompts()


async def _transcript(steps: int, persona=None, stop_at: set[int] | None = None) -> Transcript:
    """The scripted learner through a `steps`-step module; would_continue false at the steps in `stop_at`."""
    client = ScriptedClient(lambda call: scripted_text(call.messages))
    transcript = await simulate_unit(client, persona or make_persona(), make_module(steps=steps), 0, SETTINGS, PROMPTS)
    for turn in transcript.turns:
        if turn.step_index in (stop_at or set()):
            turn.reaction = turn.reaction.model_copy(update={"would_continue": False, "continue_reason": "Done here"})
    return transcript


async def _grade(transcript, criterion_id: str, *, steps: int, persona=None, client=None, judge_samples: int = 1):
    persona = persona or make_persona()
    module = make_module(steps=steps)
    criterion = next(c for c in derive_criteria(persona, module) if c.id == criterion_id)
    [grade] = await grade_transcript(client or ScriptedClient([]), transcript, persona, module, [criterion],
                                     judge_samples, settings=SETTINGS, prompts=PROMPTS)  # fmt: skip
    return grade


# --------------------------------------------------------------------------- abandonment


async def test_a_one_step_module_is_not_abandoned_by_its_last_answer() -> None:
    # One step, would_continue false: there is no next step to stop before. The old grader scored 1.
    transcript = await _transcript(steps=1, stop_at={1})
    grade = await _grade(transcript, "fit-abandonment", steps=1)
    assert grade.score == 5 and grade.passed is True and grade.evidence == []
    assert "the last step's would_continue is not counted" in grade.rationale


async def test_would_continue_false_at_the_last_step_only_is_ignored() -> None:
    transcript = await _transcript(steps=4, stop_at={4})  # old grader: 1 + 4 x 3/4 = 4
    grade = await _grade(transcript, "fit-abandonment", steps=4)
    assert grade.score == 5 and grade.rationale.startswith("would continue after each of steps 1-3 of 4")


async def test_an_earlier_stop_still_counts_and_the_last_is_left_out() -> None:
    transcript = await _transcript(steps=4, stop_at={3, 4})
    grade = await _grade(transcript, "fit-abandonment", steps=4)
    assert grade.score == pytest.approx(1 + 4 * 2 / 4)
    assert grade.rationale.startswith("would stop at step 3 of 4 (step-3); 1 earlier step(s) with would_continue false")
    assert [e.text for e in grade.evidence] == ["Done here"]


# --------------------------------------------------------------------------- time fit


async def test_up_to_n_hours_is_read_as_n_hours_and_the_rationale_says_so() -> None:
    # "Up to 2 hours weekly" parses as 0-2 h. The grader used 2 h but wrote "low end of 0-2 h".
    persona = make_persona(hours=(0, 2))
    transcript = await _transcript(steps=3, persona=persona)
    grade = await _grade(transcript, "fit-time", steps=3, persona=persona)
    assert grade.score == 4  # 60 of 120 min
    assert "low end" not in grade.rationale
    assert "120 min of development time a week (up to 2 h: the upper limit, the only figure stated): 50%" in (
        grade.rationale
    )


async def test_a_range_uses_its_low_end_and_a_single_figure_itself() -> None:
    persona = make_persona(hours=(1, 2))
    grade = await _grade(await _transcript(steps=3, persona=persona), "fit-time", steps=3, persona=persona)
    assert grade.score == 3 and "60 min of development time a week (low end of 1-2 h): 100%" in grade.rationale
    persona = make_persona(hours=(2, 2))
    grade = await _grade(await _transcript(steps=3, persona=persona), "fit-time", steps=3, persona=persona)
    assert grade.score == 4 and "120 min of development time a week (2 h): 50%" in grade.rationale


# --------------------------------------------------------------------------- judge repeats


def _judge(verdicts: list[tuple[int, str]], cited: str = "S1.takeaway") -> ScriptedClient:
    answers = iter(verdicts)

    def answer(call) -> str:
        score, rationale = next(answers)
        verdict = "met" if score >= 4 else "partly met" if score == 3 else "not met"
        return json.dumps({"verdict": verdict, "evidence": [cited], "rationale": rationale, "score": score})

    return ScriptedClient(answer)


async def test_repeats_give_their_median_and_the_rationale_of_a_repeat_that_gave_it() -> None:
    # Repeats 5, 2, 2: the mean 3.0 passed with the first repeat's rationale ("excellent"), a
    # score no repeat gave, next to a rationale two of three repeats contradict.
    transcript = await _transcript(steps=3)
    client = _judge([(5, "excellent"), (2, "barely touched"), (2, "not addressed")])
    grade = await _grade(transcript, "gap-01", steps=3, client=client, judge_samples=3)
    assert grade.score == 2 and grade.passed is False and grade.rationale == "barely touched"
    assert grade.verdict == "not met"  # the verdict of the repeat that gave the median, with its rationale
    assert (grade.score_min, grade.score_max) == (2.0, 5.0) and [s.score for s in grade.samples] == [5, 2, 2]
    assert "judge samples disagree" in grade.flags


async def test_an_even_number_of_repeats_takes_the_lower_median() -> None:
    # 2 and 4: no repeat gave 3, the midpoint; the lower median 2 is a score a repeat gave.
    transcript = await _transcript(steps=3)
    client = _judge([(4, "good"), (2, "weak")])
    grade = await _grade(transcript, "gap-01", steps=3, client=client, judge_samples=2)
    assert grade.score == 2 and grade.rationale == "weak" and grade.passed is False
