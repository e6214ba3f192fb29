"""The misunderstanding matcher: stems, polarity, questions, and its precision/recall on labelled pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from personasim.grading.misunderstanding_match import THRESHOLD, asks, compare, polar_stems, voices
from personasim.inputs.persona_parser import load_personas

REPO = Path(__file__).resolve().parents[1]
LABELS = Path(__file__).parent / "fixtures" / "misunderstanding_labels.yaml"
IG = "Thinking IG is compliance not service improvement"
FINANCE = "Thinking finance leadership is purely technical"
ABROAD = "Believing international experience not valued"
PARENTS = "Thinking single parents cannot handle executive demands"
CLINICAL = "Believing clinical excellence sufficient without leadership development"


def test_topic_words_alone_do_not_voice_a_misunderstanding() -> None:
    # Issue 21: two of four content words (the topic) matched under the old token-overlap rule.
    verdict = compare(FINANCE, "Not sure how finance leadership fits with this step")
    assert not verdict.voiced and verdict.question and verdict.opposed == ("financ", "leadership")
    assert not voices(FINANCE, "Finance leadership fits with this step")  # 2 of 4 is below the threshold too
    assert voices(FINANCE, "I think that finance leadership is purely technical work")


def test_an_item_saying_the_module_lacks_the_opposite_view_does_not_voice_it() -> None:
    # A recorded p19 answer: it shares all four stems, but says IG's value *beyond* compliance is missing.
    verdict = compare(
        IG, "There is no mention of service improvement impact or strategic value of IG beyond compliance"
    )
    assert not verdict.voiced
    assert verdict.agreeing == ("improv", "servic") and verdict.opposed == ("complianc", "ig")
    assert voices(IG, "IG in my trust is compliance work, not service improvement.")
    assert voices(IG, "I read this as IG being about ticking the compliance boxes rather than improving services.")


@pytest.mark.parametrize(
    ("misunderstanding", "item", "voiced"),
    [
        (FINANCE, "The step shows finance leadership is not purely technical.", False),  # denied
        (FINANCE, "Finance leadership isn\u2019t purely technical.", False),  # curly apostrophe
        (ABROAD, "International experience is valued here.", False),  # asserts what the view denies
        (ABROAD, "My international experience isn't valued here.", True),
        (PARENTS, "Single parents can't handle executive demands.", True),
        (PARENTS, "Single parents can handle executive demands with support.", False),
        (CLINICAL, "The step argues clinical excellence is not sufficient without leadership development.", False),
        (CLINICAL, "If my clinical work is excellent, I do not need leadership development.", True),
    ],
)
def test_negation_must_agree(misunderstanding: str, item: str, voiced: bool) -> None:
    assert voices(misunderstanding, item) is voiced, compare(misunderstanding, item)


def test_questions_and_doubts_do_not_voice_a_view() -> None:
    assert asks("Is finance leadership purely technical?") and asks("I am unsure whether IG is compliance")
    assert asks("How does it work") and not asks("When a Black woman is assertive it reads as aggression.")
    assert not voices(FINANCE, "Is finance leadership purely technical?")


def test_stems_are_snowball_and_negation_and_glue_words_are_not_content() -> None:
    assert polar_stems("issue issues") == polar_stems("issues") == {("issu", False)}
    assert polar_stems("process processes processing") == {("process", False)}
    assert polar_stems("I'm sure it doesn't matter about that") == {("sure", False), ("matter", True)}
    assert polar_stems("socialising") == polar_stems("socializing")  # British -ise folded to -ize
    assert {s for s, _ in polar_stems("not about the change")} == {"chang"}


def test_every_persona_misunderstanding_voices_itself() -> None:
    for persona in load_personas([REPO / "personas"]):
        for item in persona.misunderstandings:
            assert voices(item, item), item


def _held_out(pair: dict) -> bool:
    key = f"{pair['persona']}|{pair['misunderstanding']}|{pair['item']}"
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 3 == 0


def _figures(pairs: list[dict]) -> tuple[int, int, int]:
    said = [voices(p["misunderstanding"], p["item"]) for p in pairs]
    tp = sum(s and p["voiced"] for s, p in zip(said, pairs, strict=True))
    return tp, sum(said), sum(p["voiced"] for p in pairs)


def test_precision_and_recall_on_held_out_labels(capsys: pytest.CaptureFixture[str]) -> None:
    pairs = yaml.safe_load(LABELS.read_text(encoding="utf-8"))["pairs"]
    personas = {p.id: p for p in load_personas([REPO / "personas"])}
    for pair in pairs:
        assert pair["misunderstanding"] in personas[pair["persona"]].misunderstandings, pair
        assert isinstance(pair["voiced"], bool) and pair["reason"].strip(), pair
    assert len(pairs) >= 40 and len({(p["misunderstanding"], p["item"]) for p in pairs}) == len(pairs)
    held = [p for p in pairs if _held_out(p)]
    tuning = [p for p in pairs if not _held_out(p)]
    lines = []
    for name, subset in (("held-out", held), ("tuning", tuning)):
        tp, called, positive = _figures(subset)
        lines.append(f"{name}: {len(subset)} pairs, {positive} voiced; threshold {THRESHOLD}: precision "
                     f"{tp / called:.2f} ({tp} of {called} called voiced), recall {tp / positive:.2f} "
                     f"({tp} of {positive} voiced found)")  # fmt: skip
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    tp, called, positive = _figures(held)
    assert (len(held), positive) == (55, 16)
    assert tp / called >= 8 / 11 and tp / positive >= 8 / 16  # precision 0.73, recall 0.50
