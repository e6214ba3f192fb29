"""Does a learner's item voice one of the persona's potential misunderstandings? A small, explained matcher.

The words are those of the shared text-similarity module (`text_similarity.words`: casefolded, accents
folded; PyStemmer's Snowball English stems; bm25s's Lucene stop words), so a misunderstanding and a
learner item are compared on the same stems the gap analysis uses. On top of that:

- *Polarity.* Each stem is read as asserted or negated: a negation cue ("not", "no", "never", "without",
  "cannot", "doubt", "lack", "rather than", "instead of", any "n't") negates the words after it up to the
  end of its clause (punctuation, or "but", "while", "as", "which", ...); a second cue in the same clause
  flips back ("not sufficient without leadership development": "sufficient" negated, "leadership" not).
- *Coverage.* The share of the misunderstanding's content stems that the item holds **with the same
  polarity**. "IG is compliance not service improvement" against "no mention of service improvement ...
  of IG beyond compliance" shares all four stems, but "IG" and "compliance" are asserted in one and
  negated in the other: two of four agree, 0.5.
- *Contradiction.* The item must not deny a stem the misunderstanding asserts ("IG", "compliance" above),
  nor assert the stems it denies without denying any of them ("international experience is valued"
  against "... not valued").
- *Questions.* An item that asks (ends with "?", opens with a question word, or says "not sure",
  "unsure", "wonder", "unclear", "whether") is not voicing the view, whatever words it shares.

Voiced when the agreeing coverage is at least `THRESHOLD` (0.6: more than half), at least two stems
agree, and neither of the last two rules applies. The threshold was chosen on the labelled pairs in
`tests/fixtures/misunderstanding_labels.yaml` outside the held-out third; `tests/test_misunderstanding_match.py`
prints and checks the held-out precision and recall. No BM25 weighting: its term weights need a corpus,
and one transcript's few learner items are too few to weigh the words of a one-line misunderstanding.
Paraphrase is missed ("leading in finance" is not "finance leadership"), and so are a reversed comparison
("informal more important than formal") and a view reported to be rejected without a negation word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from personasim.text_similarity import STOPWORDS, stem, words

THRESHOLD = 0.6
MIN_AGREEING = 2

# Framing ("thinking that ...", "I read it as ..."), glue words and pronouns: they carry no part of the view.
FRAMING = frozenset(
    "think thinking thought believe believing belief assume assuming assumption feel feels felt seem seems "
    "seemed read reads reading take taking sound sounds mean means meaning about from more than like just "
    "only really much very so too some any here there i me my mine we us our you your he him his she her it its "
    "they them their".split()
)
NEGATORS = frozenset(
    "not no never none nothing nor neither without cannot lack lacks lacking doubt doubts hardly nobody".split()
)
_NEGATING_PAIRS = frozenset({("rather", "than"), ("instead", "of")})
_CONTRACTIONS = frozenset(
    "isnt arent wasnt werent dont doesnt didnt cant couldnt wont wouldnt shouldnt hasnt havent hadnt aint".split()
)
_CLAUSE_WORDS = frozenset("but while whereas although though however yet because since as which so".split())
_CLAUSE_RE = re.compile(r"[,;:.!?()\[\]\"]|\s[-\u2013\u2014]+\s|[\u2013\u2014]")
_QUESTION_OPENERS = frozenset("what how why whether is are does do did can could should would will".split())
_ASKING_RE = re.compile(r"\b(?:not sure|unsure|wonder(?:ing)?|unclear|whether)\b")
_BRITISH_ISE_RE = re.compile(r"(?<=\w{3})is(e|es|ed|ing|ation|ations)$")


def _is_negator(word: str) -> bool:
    return word in NEGATORS or word.endswith("n't") or word in _CONTRACTIONS


@lru_cache(maxsize=8192)
def polar_stems(text: str) -> frozenset[tuple[str, bool]]:
    """(stem, negated) for every content word of `text`; a stem said both ways appears twice."""
    out: set[tuple[str, bool]] = set()
    for clause in _CLAUSE_RE.split(text.replace("\u2019", "'").replace("\u2018", "'")):
        negated = False
        ws = [w if w.endswith("n't") else w.split("'", 1)[0] for w in words(clause)]  # "I'm" -> "i", "team's" -> "team"
        for i, word in enumerate(ws):
            if word in _CLAUSE_WORDS:
                negated = False
            elif _is_negator(word) or (i + 1 < len(ws) and (word, ws[i + 1]) in _NEGATING_PAIRS):
                negated = not negated
            elif word not in STOPWORDS and word not in FRAMING and not (i and (ws[i - 1], word) in _NEGATING_PAIRS):
                out.add((stem(_BRITISH_ISE_RE.sub(r"iz\1", word)), negated))
    return frozenset(out)


def asks(text: str) -> bool:
    """Whether the item asks or says it is unsure rather than stating a view."""
    folded = " ".join(words(text.replace("\u2019", "'")))
    return (
        text.rstrip().endswith("?") or (folded.split(" ", 1)[0] in _QUESTION_OPENERS) or bool(_ASKING_RE.search(folded))
    )


@dataclass(frozen=True)
class Verdict:
    """How one learner item reads against one potential misunderstanding."""

    voiced: bool
    coverage: float  # share of the misunderstanding's stems the item holds with the same polarity
    agreeing: tuple[str, ...]  # those stems
    opposed: tuple[str, ...]  # stems the item holds only with the other polarity
    question: bool


def _contradicts(want: frozenset[tuple[str, bool]], agreeing: set[str], opposed: set[str]) -> bool:
    """The item denies what the misunderstanding asserts, or asserts (and nowhere denies) what it denies."""
    asserted = {s for s, neg in want if not neg}
    denied = {s for s, neg in want if neg}
    return bool(asserted & opposed) or bool(denied & opposed and not denied & agreeing)


def compare(misunderstanding: str, item: str, threshold: float = THRESHOLD) -> Verdict:
    """Read `item` (a learner's statement) against `misunderstanding` (the persona's item)."""
    want = polar_stems(misunderstanding)
    have = polar_stems(item)
    stems = {s for s, _ in want}
    if not stems:
        return Verdict(False, 0.0, (), (), asks(item))
    agreeing = tuple(sorted({s for s, neg in want if (s, neg) in have}))
    opposed = tuple(sorted({s for s, neg in want if s not in agreeing and (s, not neg) in have}))
    coverage = len(agreeing) / len(stems)
    question = asks(item)
    voiced = not question and coverage >= threshold and len(agreeing) >= min(MIN_AGREEING, len(stems))
    voiced = voiced and not _contradicts(want, set(agreeing), set(opposed))
    return Verdict(voiced, round(coverage, 4), agreeing, opposed, question)


def voices(misunderstanding: str, item: str, threshold: float = THRESHOLD) -> bool:
    """Whether the learner's `item` voices the persona's `misunderstanding`."""
    return compare(misunderstanding, item, threshold).voiced
