"""Simulation health checks on hand-built healthy and degenerate runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from personasim.analysis.health import HEALTH_TABLE_COLUMNS, assess_health, health_table, health_to_dict
from personasim.analysis.health_text import similar, similarity
from personasim.analysis.results import GradeFile, results_frame
from personasim.records.grades import Evidence, Grade
from personasim.records.transcript import Barrier, EndReflection, ReflectionTurn, StepReaction, Transcript, Turn

STEPS = ("why-fairness", "bias-in-process", "plan")


def turn(index: int, takeaway: str, lands: str, rel: int = 3, eng: int = 3, *,
         misunderstandings: list[str] | None = None, barriers: list[str] | None = None,
         finish: str = "stop") -> Turn:  # fmt: skip
    reaction = StepReaction(
        takeaway=takeaway, how_it_lands=lands, relevance=rel, engagement=eng, what_i_would_do="",
        misunderstandings=misunderstandings or [], questions=[],
        barriers=[Barrier(kind="time", detail=b) for b in barriers or []],
        would_continue=True, continue_reason="", minutes_spent=10,
    )  # fmt: skip
    return Turn(step_id=STEPS[index - 1], step_index=index, reaction=reaction, user_prompt="", raw_text="",
                finish_reason=finish)  # fmt: skip


def unit(persona: str, turns: list[Turn], *, version: str = "v1", sample: int = 0, status: str = "finished",
         reflection: str | None = None) -> Transcript:  # fmt: skip
    end = None
    if reflection is not None:
        answer = EndReflection(what_changed=reflection, what_was_missing="", would_recommend=True, recommend_reason="")
        end = ReflectionTurn(user_prompt="", raw_text="", reflection=answer)
    return Transcript(
        run_id="r1", unit_id=f"{persona}--lotus@{version}--s{sample}", persona_id=persona, persona_hash="h",
        module_id="lotus", module_version=version, module_hash="m", sample=sample, model="test-model",
        system_prompt="", turns=turns, reflection=end, status=status,
    )  # fmt: skip


# Three personas who answer as themselves: scores move, lists are filled, no step repeats another.
HEALTHY = [
    unit("finance", [
        turn(1, "Fair process protects the organisation as much as the person investigated.",
             "Our disciplinary cases cost us in agency cover, so this is a budget issue for me too.", 4, 3,
             misunderstandings=["Is fairness here mostly about following the policy to the letter?"],
             barriers=["Month-end close leaves me no time this week"]),
        turn(2, "Bias creeps in when managers decide the outcome before gathering evidence.",
             "I have seen minority staff referred faster than others; I never connected it to cost.", 5, 4,
             misunderstandings=["I assumed our HR data would already show any bias"],
             barriers=["Nobody in finance is asked to look at HR data"]),
        turn(3, "Write down three checks before any case goes to a formal hearing.",
             "A checklist I can bring to the board committee is practical and I will use it.", 3, 5,
             misunderstandings=["Whether the checklist replaces legal advice"],
             barriers=["Board papers are due on Friday"]),
    ], reflection="I will ask for disciplinary case data broken down by ethnicity at the next committee."),
    unit("nurse", [
        turn(1, "Being investigated is frightening and the way it starts shapes everything after.",
             "On a night shift nobody explains anything; I remember a colleague crying in the sluice.", 5, 5,
             misunderstandings=["That compassion means letting people off"],
             barriers=["I only get ten minutes between drug rounds"]),
        turn(2, "Ward managers pick who to report based on who they like.",
             "That is exactly what happened to the overseas nurses on my ward last spring.", 4, 5,
             misunderstandings=["Reporting someone is always neutral"],
             barriers=["I would not feel safe raising this with my manager"]),
        turn(3, "Support the colleague during the process, not only afterwards.",
             "I could buddy a new starter if they end up in a case, if my rota allows it.", 3, 4,
             misunderstandings=["Support might look like taking sides"],
             barriers=["Rota changes every week"]),
    ], reflection="I feel braver about speaking up for a colleague during an investigation."),
    unit("hr", [
        turn(1, "Investigation guidance should start from the presumption that the employee acted in good faith.",
             "It matches the just culture work we started, but our templates still read like accusations.", 3, 3,
             misunderstandings=["Just culture and no blame are the same thing"],
             barriers=["Policy rewrites need union sign-off"]),
        turn(2, "Decision logs make bias visible because every referral needs a written reason.",
             "We already hold referral data; cutting it by protected characteristic is a quick win.", 4, 2,
             misunderstandings=["Data alone fixes the problem"],
             barriers=["Our case system cannot export by ethnicity"]),
        turn(3, "Pilot a pre-hearing review panel in one directorate.",
             "Medicine would volunteer; surgery will resist anything that slows cases down.", 5, 4,
             misunderstandings=["A panel adds delay to every case"],
             barriers=["Panel members need training time"]),
    ], reflection="Our templates need rewriting so the first letter does not presume guilt."),
]  # fmt: skip

_SAME = "This step is about fairness in investigations and it is relevant to my role."
_LANDS = "It lands well because I care about fairness in my work."


def _degenerate(persona: str) -> Transcript:
    # What the small model wrote: one answer for every step and every persona, scores stuck at 4.
    return unit(persona, [
        turn(1, _SAME, _LANDS, 4, 4),
        turn(2, _SAME, _LANDS + " This is important.", 4, 4),
        turn(3, _SAME.replace("my role", "my job role"), _LANDS, 4, 4),
    ], reflection="As an AI language model, I do not have personal experiences.")  # fmt: skip


DEGENERATE = [_degenerate(p) for p in ("finance", "nurse", "hr")]
DEGENERATE[2].turns[2].finish_reason = "length"

CRITERION = "Does the module help this learner close the gap: building strategic relationships beyond finance?"


def judge_table(rows: list[tuple[str, float, list[str], str]]) -> pd.DataFrame:
    """Results rows (unit_id, score, cited statement texts, rationale) for one judge criterion."""

    def verdict(score: float) -> str:
        return "met" if score >= 4 else "partly met" if score == 3 else "not met"

    return pd.DataFrame([
        {"unit_id": u, "criterion_id": "gap-01", "criterion_text": CRITERION, "grader": "judge", "score": s,
         "verdict": verdict(s), "rationale": why,
         "evidence": json.dumps([{"id": f"S{n}.takeaway", "text": text} for n, text in enumerate(ev, 1)])}
        for u, s, ev, why in rows
    ])  # fmt: skip


def test_healthy_run_passes_every_check() -> None:
    fin, nurse, hr = (t.unit_id for t in HEALTHY)
    results = judge_table([
        (fin, 4, ["A checklist for building relationships beyond finance at the board committee"], "Clear plan."),
        (nurse, 3, ["strategic relationships with the overseas nurses on my ward"], "Some movement."),
        (hr, 2, [], "Barely touched."),
    ])  # fmt: skip
    report = assess_health(HEALTHY, results)
    assert [c.name for c in report.checks if c.ok is False] == []
    assert report.healthy
    assert report.verdict.startswith("simulations look healthy: scores flat in 0 of 3 units;")
    values = {c.name: c.value for c in report.checks}
    assert values["flat_scores"] == 0 and values["copied_answers"] == 0 and values["empty_misunderstandings"] == 0
    assert values["uncited_high_scores"] == 0 and values["unrelated_citations"] == 0
    assert values["verdict_contradictions"] == 0
    assert values["persona_similarity"] < 0.3


ECHO = "building strategic relationships beyond finance"


def test_degenerate_run_fails_and_says_why() -> None:
    units = [t.unit_id for t in DEGENERATE]
    results = judge_table([
        (units[0], 5, [], "Fully met."),
        (units[1], 4, ["It lands well because I care about fairness in my work."], "The module does not engage with it."),
        (units[2], 5, [], "The learner clearly grew."),
    ])  # fmt: skip
    report = assess_health(DEGENERATE, results)
    assert not report.healthy
    c = {check.name: check for check in report.checks}
    assert (c["flat_scores"].value, c["flat_scores"].detail) == (1.0, "scores flat in 3 of 3 units")
    assert c["flat_across_personas"].value == 1.0
    assert c["copied_answers"].value == 1.0 and c["copied_answers"].detail.endswith("in 6 of 6 step pairs")
    assert c["empty_misunderstandings"].value == 1.0
    assert c["empty_barriers"].value == 1.0 and c["empty_barriers"].advisory
    assert c["empty_barriers"].detail == "no barriers in 3 of 3 conversations (at 9 of 9 steps)"
    assert c["ai_phrases"].value == pytest.approx(3 / 12, abs=1e-4)
    assert '(e.g. "as an ai language model")' in c["ai_phrases"].detail
    assert c["truncated"].value == pytest.approx(1 / 12, abs=1e-4)
    assert c["persona_similarity"].value > 0.9
    assert c["uncited_high_scores"].detail == "2 of 3 judge scores of 4+ cite no statement"
    assert c["unrelated_citations"].detail == "1 of 1 cited statements share no word with their criterion"
    assert c["verdict_contradictions"].detail == "1 of 3 judge rationales deny the verdict or score beside them"
    assert all(check.ok is False for check in report.checks if check.name not in ("failed_units", "identical_repeats"))
    assert report.verdict.startswith("simulations look degenerate: scores flat in 3 of 3 units; ")
    assert "2 of 3 judge scores of 4+ cite no statement" in report.verdict
    assert "personas barely differ (similarity" in report.verdict
    assert report.verdict.endswith(
        "; note: no barriers in 3 of 3 conversations (at 9 of 9 steps); 1 of 1 cited statements share no word with their criterion"
    )  # advisory checks are notes


def test_one_flat_unit_among_lively_ones_is_tolerated() -> None:
    flat = unit("extra", [turn(1, "a b c", "d e f", 2, 2), turn(2, "g h i", "j k l", 2, 2)])
    report = assess_health([*HEALTHY, flat])
    check = report.check("flat_scores")
    assert (check.value, check.ok, check.detail) == (0.25, True, "scores flat in 1 of 4 units")


def test_a_unit_is_flat_only_when_both_scales_stay_put() -> None:
    moving = unit("x", [turn(1, "one", "two", 3, 4), turn(2, "three", "four", 3, 5)])
    assert assess_health([moving]).check("flat_scores").value == 0


WORDS = st.lists(st.sampled_from(["team", "fair", "time", "ward", "board", "the", "I"]), max_size=12).map(" ".join)


@given(WORDS, WORDS, st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]))
def test_similar_decides_exactly_as_the_ratio(a: str, b: str, threshold: float) -> None:
    # `similar` skips the full ratio when a cheap upper bound already says no; never a different answer.
    assert similar(a, b, threshold) == (similarity(a, b) >= threshold)


def test_copy_means_near_duplicate_not_shared_topic() -> None:
    copied = "I need to make time to talk with the ward team about fairness."
    reworded = "I need to make time to talk with my ward team about fairness."
    assert similarity(copied, reworded) >= 0.8
    assert similarity(copied, "The checklist helps me prepare board papers on disciplinary costs.") < 0.3
    t = unit("x", [turn(1, copied, "first"), turn(2, reworded, "second"), turn(3, "Something new entirely", "third")])
    check = assess_health([t]).check("copied_answers")
    assert (check.value, check.detail) == (0.5, "answers copied from the previous step in 1 of 2 step pairs")


def test_failed_units_are_counted_and_kept_out_of_answer_checks() -> None:
    failed = unit("broken", [], status="failed")
    report = assess_health([*HEALTHY, failed])
    assert report.check("failed_units").value == 0.25 and report.check("failed_units").ok is False
    assert report.check("flat_scores").detail == "scores flat in 0 of 3 units"
    assert "1 of 4 units failed" in report.verdict


def test_ai_phrases_catch_character_breaks_not_job_titles() -> None:
    ok = turn(1, "As an assistant director of finance I see the cost.", "I'm an assistant director, so yes.")
    slip = turn(2, "I'm sorry, but I can't role-play this person.", "fine")
    refusal = turn(3, "Fine.", "I cannot help with that.")
    check = assess_health([unit("x", [ok, slip, refusal])]).check("ai_phrases")
    assert check.value == pytest.approx(2 / 3, abs=1e-4)


def test_checks_without_data_are_not_applicable() -> None:
    report = assess_health([HEALTHY[0]])
    for name in ("flat_across_personas", "persona_similarity", "uncited_high_scores", "unrelated_citations",
                 "verdict_contradictions"):  # fmt: skip
        assert report.check(name).ok is None and report.check(name).value is None
    assert report.healthy


def test_no_transcripts_is_not_healthy() -> None:
    report = assess_health([], pd.DataFrame())
    assert not report.healthy and report.verdict == "nothing to assess: no transcripts"


def test_persona_similarity_pairs_samples_and_steps() -> None:
    # The same persona text in two samples against one: still identical step by step.
    a0, a1 = (unit("a", DEGENERATE[0].turns, sample=s) for s in (0, 1))
    b0 = unit("b", DEGENERATE[0].turns)
    assert assess_health([a0, a1, b0]).check("persona_similarity").value == 1.0
    other_version = unit("b", HEALTHY[1].turns, version="v2")
    assert assess_health([a0, other_version]).check("persona_similarity").value is None


def test_criteria_texts_override_the_table() -> None:
    t = HEALTHY[1]
    table = judge_table([(t.unit_id, 3, ["overseas nurses on my ward"], "Partly.")])
    assert assess_health([t], table).check("unrelated_citations").value == 1
    texts = {"gap-01": "Does the module help this learner with the overseas nurses on the ward?"}
    assert assess_health([t], table, criteria_texts=texts).check("unrelated_citations").value == 0


def test_deterministic_grader_rows_are_not_judge_evidence() -> None:
    t = HEALTHY[0]
    table = judge_table([(t.unit_id, 5, [], "Voiced.")])
    table["grader"] = "misunderstanding_coverage"
    report = assess_health([t], table)
    assert report.check("uncited_high_scores").value is None
    assert report.check("verdict_contradictions").value is None


def test_reads_the_real_results_table() -> None:
    t = DEGENERATE[0]
    grade = Grade(
        unit_id=t.unit_id, criterion_id="gap-01", criterion_text=CRITERION, lens="gaps", grader="judge", score=5,
        threshold=3, passed=True, judge_samples=1, verdict="met", rationale="It is not met.",
        evidence=[Evidence(id="S1.takeaway", text="relationships beyond finance for this learner"),
                  Evidence(id="S2.takeaway", text=_SAME)],
    )  # fmt: skip
    frame = results_frame([(t, GradeFile(unit_id=t.unit_id, grades=[grade]))])
    report = assess_health([t], frame)
    assert report.check("uncited_high_scores").detail == "0 of 1 judge scores of 4+ cite no statement"
    assert report.check("unrelated_citations").value == 0.5
    assert report.check("verdict_contradictions").value == 1


def test_manifest_dict_and_terminal_rows() -> None:
    report = assess_health(DEGENERATE)
    data = health_to_dict(report)
    assert json.loads(json.dumps(data))["healthy"] is False
    assert data["checks"][0] == {"name": "flat_scores", "value": 1.0, "threshold": 0.5, "ok": False,
                                 "detail": "scores flat in 3 of 3 units", "advisory": False}  # fmt: skip
    rows = health_table(report)
    assert len(rows[0]) == len(HEALTH_TABLE_COLUMNS)
    assert rows[0] == ("flat_scores", "1.00", "<= 0.5", "FAIL", "scores flat in 3 of 3 units")
    assert ("uncited_high_scores", "-", "<= 0.25", "n/a", "no judge scores") in rows


def test_personas_filling_one_template_barely_differ() -> None:
    def templated(role: str, rel: int) -> Transcript:
        return unit(role, [
            turn(i, f"As a {role}, I found this step useful because it helps me understand {topic}.",
                 f"This is relevant to my role as a {role} because fairness matters where I work.", rel + i % 2, 3,
                 misunderstandings=[f"Whether {topic} applies to me"], barriers=["time"])
            for i, topic in enumerate(("fairness", "bias in referrals", "planning next steps"), start=1)
        ])  # fmt: skip

    runs = [templated("finance director", 3), templated("ward nurse", 2), templated("HR advisor", 4)]
    report = assess_health(runs)
    check = report.check("persona_similarity")
    assert check.value is not None and 0.5 < check.value < 0.95
    assert check.ok is False and check.detail.startswith("personas barely differ")
    assert report.check("flat_scores").ok  # the scores move; the words do not
