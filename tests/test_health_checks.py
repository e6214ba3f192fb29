"""One test per health check: a healthy run must not fire it and a degenerate one must, including
the false positives of issue 21 (barriers, character-break phrases), and the checks on cited evidence."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from personasim.analysis.health import assess_health, health_table
from personasim.analysis.health_checks import THRESHOLDS
from personasim.analysis.health_text import ai_phrase
from personasim.records.transcript import Transcript
from test_health import DEGENERATE, HEALTHY, judge_table, unit

MISCONCEPTION = (
    'Potential misunderstanding: "Thinking finance leadership is purely technical". Did it surface in the '
    "learner's answers, and did the module correct it?"
)


def _well_fitted() -> list[Transcript]:
    """The healthy learners, but the module fits: each names a barrier at one step of three."""
    out = []
    for t in HEALTHY:
        turns = [s.model_copy(deep=True) for s in t.turns]
        for s in turns[1:]:
            s.reaction.barriers = []
        out.append(t.model_copy(update={"turns": turns}))
    return out


def _in_character() -> list[Transcript]:
    """The healthy learners, one of them saying things that start like a refusal but are not one."""
    first = HEALTHY[0]
    turns = [s.model_copy(deep=True) for s in first.turns]
    turns[0].reaction.how_it_lands = "I don't have a job plan slot for this"
    turns[1].reaction.what_i_would_do = "I can't help with that on top of my caseload"
    turns[2].reaction.continue_reason = "I'm sorry, but I can't make Thursday's session; I'll catch up"
    return [first.model_copy(update={"turns": turns}), *HEALTHY[1:]]


def _voiced(statement: str, score: float = 2, rationale: str = "It surfaced and was left standing.") -> pd.DataFrame:
    """One judge row on the misconception criterion, citing `statement`."""
    table = judge_table([(HEALTHY[0].unit_id, score, [statement], rationale)])
    return table.assign(criterion_id="misunderstanding-01", criterion_text=MISCONCEPTION)


def _healthy_table() -> pd.DataFrame:
    fin, nurse, hr = (t.unit_id for t in HEALTHY)
    return judge_table([(fin, 4, ["Finance leadership and relationships at the board committee"], "Clear plan."),
                        (nurse, 3, ["relationships with overseas nurses on my ward"], "Some."),
                        (hr, 2, [], "Barely touched.")])  # fmt: skip


def _degenerate_table() -> pd.DataFrame:
    units = [t.unit_id for t in DEGENERATE]
    return judge_table([(units[0], 5, [], "Fully met."),
                        (units[1], 4, ["The learner engaged well"], "The module does not engage with power."),
                        (units[2], 5, ["It was a good day"], "The learner clearly grew.")])  # fmt: skip


def _repeat(t: Transcript, differ_at: int | None = None) -> Transcript:
    """Another sample of `t`: a copy, or one whose answer differs at one step."""
    turns = [s.model_copy(deep=True) for s in t.turns]
    if differ_at is not None:
        turns[differ_at].reaction.takeaway = "Something else entirely: the board will not buy a checklist."
        turns[differ_at].reaction.how_it_lands = "Badly, to be honest, after last quarter's audit."
    return t.model_copy(update={"sample": 1, "unit_id": t.unit_id + "-s1", "turns": turns})


Case = Callable[[], tuple[list[Transcript], pd.DataFrame | None]]
FAILED = unit("broken", [], status="failed")
VOICED = "I still think finance leadership is purely technical, to be honest"
HEALTHY_LEARNER = HEALTHY[0].turns[0].reaction.takeaway

# check -> (healthy run that must not fire it, degenerate run that must)
CASES: dict[str, tuple[Case, Case]] = {
    "flat_scores": (lambda: (HEALTHY, None), lambda: (DEGENERATE, None)),
    "flat_across_personas": (lambda: (HEALTHY, None), lambda: (DEGENERATE, None)),
    "copied_answers": (lambda: (HEALTHY, None), lambda: (DEGENERATE, None)),
    "identical_repeats": (
        lambda: ([*HEALTHY, _repeat(HEALTHY[1], 0)], None),
        lambda: ([*HEALTHY, _repeat(HEALTHY[0])], None),
    ),
    "empty_misunderstandings": (lambda: (HEALTHY, None), lambda: (DEGENERATE, None)),
    "empty_barriers": (lambda: (_well_fitted(), None), lambda: (DEGENERATE, None)),
    "ai_phrases": (lambda: (_in_character(), None), lambda: (DEGENERATE, None)),
    "truncated": (lambda: (HEALTHY, None), lambda: (DEGENERATE, None)),
    "failed_units": (lambda: (HEALTHY, None), lambda: ([*HEALTHY, FAILED], None)),
    "persona_similarity": (lambda: (HEALTHY, None), lambda: (DEGENERATE, None)),
    "uncited_high_scores": (lambda: (HEALTHY, _healthy_table()), lambda: (DEGENERATE, _degenerate_table())),
    "unrelated_citations": (
        lambda: (HEALTHY, _voiced(VOICED)),
        lambda: (HEALTHY, _voiced("It was a good day")),
    ),
    "verdict_contradictions": (
        lambda: (HEALTHY, _voiced(VOICED, 5, "Voiced early, then clearly corrected at step 3.")),
        lambda: (HEALTHY, _voiced(VOICED, 5, "The module does not correct it.")),
    ),
}


def test_every_check_has_a_case() -> None:
    assert set(CASES) == set(THRESHOLDS) == {c.name for c in assess_health(HEALTHY).checks}


@pytest.mark.parametrize("name", list(CASES))
def test_healthy_run_does_not_fire_it(name: str) -> None:
    transcripts, table = CASES[name][0]()
    check = assess_health(transcripts, table).check(name)
    assert check.ok is True, check.detail


@pytest.mark.parametrize("name", list(CASES))
def test_degenerate_run_fires_it(name: str) -> None:
    transcripts, table = CASES[name][1]()
    check = assess_health(transcripts, table).check(name)
    assert check.ok is False, check.detail


# --------------------------------------------------------------------------- the false positives of issue 21


def test_a_well_fitted_learner_naming_few_barriers_is_healthy() -> None:
    # Barriers at 1 of 3 steps: 6 of 9 steps empty, which the per-step check (> 0.5) called degenerate.
    report = assess_health(_well_fitted())
    check = report.check("empty_barriers")
    assert (check.value, check.detail) == (0.0, "no barriers in 0 of 3 conversations (at 6 of 9 steps)")
    assert report.healthy and report.verdict.startswith("simulations look healthy")


def test_no_barriers_anywhere_is_a_warning_not_a_degenerate_verdict() -> None:
    silent = []
    for t in HEALTHY:
        turns = [s.model_copy(deep=True) for s in t.turns]
        for s in turns:
            s.reaction.barriers = []
        silent.append(t.model_copy(update={"turns": turns}))
    report = assess_health(silent)
    check = report.check("empty_barriers")
    assert check.ok is False and check.advisory and check.value == 1.0
    assert report.healthy and report.verdict.endswith("; note: no barriers in 3 of 3 conversations (at 9 of 9 steps)")
    assert ("empty_barriers", "1.00", "<= 0.5", "warn", check.detail) in health_table(report)


@pytest.mark.parametrize(
    ("text", "slip"),
    [
        ("I don't have a job plan slot for this", None),
        ("I can't help with that on top of my caseload", None),
        ("I'm sorry, but I can't make Thursday's session", None),
        ("I can't help feeling this is box-ticking", None),
        ("I don't have opinions on that yet", None),
        ("As an AI lead in my trust I see the risk", None),
        ("I'm an AI sceptic, frankly", None),
        ("We are piloting a large language model for discharge letters", None),
        ("I'm not able to pretend this works on nights", None),
        ("As an assistant director of finance I see the cost.", None),
        ("As an AI language model, I do not have personal experiences.", "as an ai language model"),
        ("As an AI, I cannot take part.", "as an ai"),
        ("I'm just an AI", "i'm just an ai"),
        ("I cannot help with that.", "i cannot help with that"),
        ("I can't assist you with that request.", "i can't assist you with that request"),
        ("I\u2019m sorry, but I can\u2019t role-play this person.", "i'm sorry, but i can't role-play this person"),
        ("I don't have personal experiences or feelings like humans do", "i don't have personal experiences"),
        ("I don't have a job.", "i don't have a job"),
        ("I am a large language model trained to help", "i am a large language model"),
        ("I'm unable to provide personal opinions.", "i'm unable to provide personal opinions"),
    ],
)
def test_ai_phrases_end_where_a_slip_ends(text: str, slip: str | None) -> None:
    assert ai_phrase(text) == slip


def test_learner_sentences_that_start_like_a_refusal_are_not_counted() -> None:
    check = assess_health(_in_character()).check("ai_phrases")
    assert check.value == 0 and check.ok


def test_a_statement_voicing_the_misconception_is_related_to_its_criterion() -> None:
    # The learner's own words naming the misconception the criterion asks about: the best evidence
    # there is (the old quote check counted it as an echo of the criterion).
    report = assess_health(HEALTHY, _voiced(VOICED))
    assert report.check("unrelated_citations").value == 0
    assert report.check("verdict_contradictions").value == 0
