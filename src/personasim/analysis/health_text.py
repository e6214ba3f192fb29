"""Text tests of the health checks: word-sequence similarity, criterion echoes and character breaks."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import lru_cache

from personasim.grading.text_match import normalise

# Two consecutive steps' takeaway (or how_it_lands) this similar count as a copy: rewording one
# sentence keeps the ratio above 0.8, while answers about different steps score well below 0.5.
COPY_SIMILARITY = 0.8
# A judge quote whose content words are this much inside the criterion's is an echo of it.


@lru_cache(maxsize=65536)
def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[\w']+", normalise(text)))


def similarity(a: str, b: str) -> float:
    """difflib's ratio over the lower-cased word sequences, in [0, 1]; 0.0 when either text is empty.

    1.0 for the same words in the same order, 0.7-0.8 for one sentence template with a few words
    swapped, 0.05-0.15 for two independently written answers to the same step (only runs of words
    that line up count, so shared topic words scattered through two answers add little)."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return 0.0
    return SequenceMatcher(None, wa, wb, autojunk=False).ratio()


def similar(a: str, b: str, threshold: float = COPY_SIMILARITY) -> bool:
    """similarity(a, b) >= threshold, deciding from difflib's cheap upper bounds where they can."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return threshold <= 0.0
    matcher = SequenceMatcher(None, wa, wb, autojunk=False)
    return (
        matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold
    )


# --------------------------------------------------------------------------- character breaks

# Each phrase must end where a model's slip ends (end of text or a punctuation mark), or go on the
# way slips go on; otherwise a learner's own sentence that starts the same way ("I can't help with
# that on top of my caseload", "I don't have a job plan slot for this") would count.
_CLAUSE = r"(?=\s*(?:$|[.!?,;:)\"]))"
_AI_END = r"(?=\s*(?:$|[.!?,;:)\"]|i\b))"
_HAVE_END = (
    r"(?=\s*(?:$|[.!?,;:)\"]|(?:or|and) (?:personal |human )?(?:feelings|emotions|opinions|experiences|beliefs|a body)\b"
    r"|like (?:a human|humans|people) do\b))"
)
_PLAY = r"(?:role-?play|pretend to be|act as|play) (?:this|that|the|a|an|your) ?(?:person|persona|character|human)\b"
_HELP = r"(?:assist|help|comply)(?: you)?(?: with (?:that|this|your request|this request|that request|the request))?"
_AI_PHRASES = re.compile(
    rf"\bas an? (?:ai|artificial intelligence)(?: (?:language )?model| assistant| chatbot)?{_AI_END}"
    rf"|\b(?:as|i am|i'm) an? (?:ai |large )?language model\b"
    rf"|\bi(?: am|'m) (?:just |only |merely )?an? (?:ai|artificial intelligence|bot|chatbot|ai assistant|virtual "
    rf"assistant){_AI_END}"
    rf"|\bi(?: am|'m) (?:sorry|afraid),? but i can(?:not|'t) (?:{_HELP}{_CLAUSE}|{_PLAY})"
    rf"|\bi can(?:not|'t) (?:{_HELP}{_CLAUSE}|(?:fulfil+|complete) (?:that|this|your) request\b|{_PLAY})"
    rf"|\bi (?:do not|don't) have (?:personal )?(?:experiences|feelings|opinions|emotions|beliefs|a body|a job){_HAVE_END}"
    rf"|\bi(?: am|'m) (?:not able|unable) to (?:{_PLAY}|provide personal (?:opinions|experiences|views|feelings)\b)"
)


def ai_phrase(text: str) -> str | None:
    """The first "as an AI" or refusal phrase in one answer field (case and quote marks aside), or None."""
    found = _AI_PHRASES.search(normalise(text))
    return found.group(0) if found else None
