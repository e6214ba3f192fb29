"""analysis/step_issues.py and analysis/priorities.py: grouping, the grid's counts, the priority formula,
step pairing across versions, persona characteristics and group comparisons."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from personasim.analysis.priorities import (
    WEIGHTS,
    Citation,
    compare_groups,
    compare_steps,
    persona_profile,
    step_citations,
    step_pairs,
    step_priorities,
    t_interval,
)
from personasim.analysis.step_issues import Mention, group_mentions, recurring, similarity, step_grid, step_issues
from personasim.inputs.module_diff import diff_modules
from personasim.inputs.persona_parser import load_personas
from personasim.records.transcript import Barrier, StepReaction, Transcript, Turn

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import REPO, STEPS, synthetic_module  # noqa: E402


def reaction(engagement: int = 4, relevance: int = 4, *, go_on: bool = True, minutes: int = 10,
             mis: tuple[str, ...] = (), questions: tuple[str, ...] = (),
             barriers: tuple[tuple[str, str], ...] = ()) -> StepReaction:  # fmt: skip
    return StepReaction(takeaway="t", how_it_lands="l", relevance=relevance, engagement=engagement, what_i_would_do="d",
                        misunderstandings=list(mis), questions=list(questions),
                        barriers=[Barrier(kind=k, detail=d) for k, d in barriers], would_continue=go_on,
                        continue_reason="r", minutes_spent=minutes)  # fmt: skip


def transcript(pid: str, reactions: list[StepReaction], sample: int = 0, steps: list[str] | None = None) -> Transcript:
    ids = steps or [f"step-{i}" for i in range(1, len(reactions) + 1)]
    turns = [Turn(step_id=sid, step_index=i, reaction=r, user_prompt="", raw_text="")
             for i, (sid, r) in enumerate(zip(ids, reactions, strict=True), start=1)]  # fmt: skip
    return Transcript(run_id="r", unit_id=f"{pid}__m@v1__s{sample}", persona_id=pid, persona_hash="h", module_id="m",
                      module_version="v1", module_hash="mh", sample=sample, model="x", system_prompt="", turns=turns)  # fmt: skip


# --------------------------------------------------------------------------- grouping


def test_near_duplicates_merge_and_different_issues_stay_apart() -> None:
    assert similarity("Is the triage template a disciplinary tool?",
                      "Is the triage template meant as a disciplinary tool?") >= 0.8  # fmt: skip
    assert similarity("Is the triage template a disciplinary tool?", "Who pays for the backfill?") < 0.3
    mentions = [Mention("question", p, 0, 1, f"S1.q{n}", text) for n, (p, text) in enumerate([
        ("p1", "Is the triage template a disciplinary tool?"), ("p2", "Who pays for the backfill?"),
        ("p3", "Is the triage template meant as a disciplinary tool?"), ("p3", "is the TRIAGE template a disciplinary tool"),
    ], 1)]  # fmt: skip
    groups = group_mentions(mentions)
    assert [(g.count, g.personas) for g in groups] == [(3, ["p1", "p3"]), (1, ["p2"])]
    assert groups[0].text == "Is the triage template a disciplinary tool?"
    assert groups[0].variants == ["Is the triage template meant as a disciplinary tool?",
                                  "is the TRIAGE template a disciplinary tool"]  # fmt: skip


def test_barriers_merge_only_within_their_kind() -> None:
    same = "no time in clinic for this"
    mentions = [
        Mention("barrier", "p1", 0, 1, "S1.b1", same, "time"),
        Mention("barrier", "p2", 0, 1, "S1.b1", same, "format"),
    ]
    assert len(group_mentions(mentions)) == 2


def test_one_persona_repeating_itself_at_every_step_is_one_group_per_step_and_one_standing_issue() -> None:
    said = "I think compassion means no accountability"
    t = transcript("p1", [reaction(mis=(said,)) for _ in range(14)])
    steps = step_issues([t])
    assert [len(s.groups["misunderstanding"]) for s in steps] == [1] * 14
    standing = recurring([t])
    assert len(standing) == 1 and standing[0].steps == list(range(1, 15)) and standing[0].count == 14


# --------------------------------------------------------------------------- the grid and priorities


def test_the_grid_counts_stops_first_stops_and_items_and_ignores_the_last_steps_stop() -> None:
    a = transcript("p1", [reaction(), reaction(1, 2, go_on=False, mis=("x",), barriers=(("time", "busy"),)),
                          reaction(go_on=False), reaction(go_on=False)])  # fmt: skip
    b = transcript("p1", [reaction(), reaction(3, 4), reaction(go_on=False), reaction()], sample=1)
    grid = step_grid([a, b])
    two, three, four = grid[("p1", 2)], grid[("p1", 3)], grid[("p1", 4)]
    assert (two.n, two.stops, two.first_stops, two.misunderstandings, two.barriers) == (2, 1, 1, 1, 1)
    assert two.engagement == [1, 3] and two.engagement_mean == 2
    assert (three.stops, three.first_stops) == (2, 1)
    assert four.stops == 0  # nothing follows the last step


def test_the_priority_is_the_weighted_sum_of_its_parts() -> None:
    ts = [
        transcript(
            "p1", [reaction(5, 5), reaction(1, 1, go_on=False, minutes=30, mis=("a", "b", "c")), reaction(5, 5)]
        ),
        transcript("p2", [reaction(5, 5), reaction(3, 3, minutes=10), reaction(5, 5)]),
    ]
    ranked = step_priorities(ts, budgets={"step-2": 10.0}, citations=[Citation(2, "p1", 0, "gap-01", "S2.m1", 1.0)])
    top, other, _ = ranked
    assert (top.index, other.index) == (2, 1) and other.score == 0
    assert top.parts == {"engagement": 0.75, "relevance": 0.75, "abandonment": 0.5 * WEIGHTS["abandonment"],
                         "misunderstandings": 0.5, "barriers": 0.0, "time": 1.0}  # fmt: skip
    assert top.score == pytest.approx(4.0)
    assert top.minutes == 20 and top.budget == 10 and top.first_stops == 1
    assert top.affected == ["p1"] and top.stop_personas == ["p1"] and len(top.citations) == 1
    assert top.reasons()[0] == "1 of 2 conversations stop here first"


def test_citations_are_read_from_statement_ids() -> None:
    found = step_citations([("p1", 0, "gap-01", 2.0, ["S3.takeaway", "END.missing", "S12.q1"])])
    assert [(c.step_index, c.statement_id) for c in found] == [(3, "S3.takeaway"), (12, "S12.q1")]


def test_steps_pair_as_modules_diff_pairs_them_and_on_ids_without_modules() -> None:
    a, b = synthetic_module("v1"), synthetic_module("v2", {"lessons-learnt": "lessons-and-next-steps"})
    ids_a, ids_b = [s.id for s in a.steps], [s.id for s in b.steps]
    with_diff = step_pairs(ids_a, ids_b, diff_modules(a, b))
    assert ("lessons-learnt", "lessons-and-next-steps", "content") in with_diff and len(with_diff) == len(STEPS)
    by_id = step_pairs(ids_a, ids_b)
    assert (None, "lessons-and-next-steps", "") in by_id and ("lessons-learnt", None, "") in by_id
    ta = transcript("p1", [reaction(2, 2) for _ in STEPS], steps=ids_a)
    tb = transcript("p1", [reaction(5, 5) for _ in STEPS], steps=ids_b)
    changes = compare_steps(step_priorities([ta]), step_priorities([tb]), with_diff)
    assert [c.verdict for c in changes] == ["better"] * len(STEPS)
    assert changes[-1].label == "lessons-learnt -> lessons-and-next-steps"


# --------------------------------------------------------------------------- whom the module fails


@pytest.fixture(scope="module")
def profiles() -> dict:
    return {p.id.split("-")[0]: persona_profile(p) for p in load_personas([REPO / "personas"])}


def test_characteristics_come_from_the_persona_files(profiles: dict) -> None:
    p18, p21 = profiles["p18"], profiles["p21"]
    assert p18.disability.startswith("Dyslexia and ADHD") and not profiles["p17"].disability
    assert p18.groups["working pattern"] == "part-time" and p18.hours_low == 15
    assert p21.groups["time available"] == "under 3 h a week" and "flexible timing" in p21.working_pattern
    assert p18.groups["gender"] == "woman" and profiles["p17"].groups["gender"] == "man"
    assert p18.groups["ethnicity"] == "White" and profiles["p22"].groups["ethnicity"] == "minority ethnic"
    assert profiles["p17"].groups["learning preferences"] == "no peer preference stated"


def test_groups_compare_only_with_two_personas_each(profiles: dict) -> None:
    by_id = {p.persona_id: p for p in profiles.values()}
    scores = {pid: 0.1 * n for n, pid in enumerate(sorted(by_id), 1)}
    found = {g.characteristic: g for g in compare_groups(scores, by_id)}
    time = found["time available"]
    assert time.comparable and [len(r.personas) for r in time.groups] == [2, 2, 2]
    assert [r.label for r in time.groups] == ["under 3 h a week", "3 to under 5 h a week", "5 h a week or more"]
    assert not found["disability"].comparable and "a group needs at least two" in found["disability"].note
    assert t_interval([0.5]) is None
    low, high = t_interval([0.4, 0.6])
    assert low == 0.0 and high == 1.0  # two personas: t = 12.7, clipped to the scale


def test_standing_concerns_are_one_persona_repeating_itself_not_several_saying_it_once() -> None:
    said = "Is the triage template a disciplinary tool?"
    once_each = [transcript(f"p{i}", [reaction(mis=(said,)) if j == i else reaction() for j in range(4)])
                 for i in range(4)]  # fmt: skip
    assert recurring(once_each) == []
    again = transcript("p9", [reaction(mis=(said,)) for _ in range(3)])
    (group,) = recurring([*once_each, again])
    assert group.personas == ["p9"] and group.steps == [1, 2, 3]
