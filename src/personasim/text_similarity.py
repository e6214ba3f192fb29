"""Lexical similarity between a short query and a list of sentences: BM25 (`bm25s`) over Snowball-stemmed words.

The shared matcher of the model-free checks (`personasim gaps`; reusable by any grader that asks "which of
these sentences is about this?"). No model, no network, deterministic. Three pieces:

- `split_sentences(text)`: markdown -> plain sentences (bullets, table rows and headings become sentences).
- `tokenize(text)`: casefolded words, English stop words out, Snowball (Porter2) stems, via PyStemmer.
- `SentenceIndex(sentences).score(query)`: one score per sentence in [0, 1], BM25 normalised by what an
  average-length sentence that holds the query's `saturation` rarest terms once would score (see `score`).

Only numpy, bm25s and PyStemmer are imported: no pandas, no openai.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import bm25s
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

K1 = 1.5
B = 0.75
SATURATION = 4
STOPWORDS: frozenset[str] = frozenset(STOPWORDS_EN) | frozenset(
    {"also", "can", "could", "may", "might", "must", "shall", "should", "would", "s", "t", "e", "g", "eg", "ie"}
)

_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+(?=[\"'\u201c\u2018(*]*[A-Z0-9])")
_ABBREVIATION_RE = re.compile(r"(?:\b(?:e\.g|i\.e|etc|Dr|Mr|Mrs|Ms|Prof|St|vs|No|Fig)|\b[A-Z])\.$")
_BULLET_RE = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+")
_TABLE_RULE_RE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_EMPHASIS_RE = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def stem(word: str) -> str:
    """The Snowball (Porter2) English stem of one casefolded word, as `tokenize` stems it."""
    return _stem(word)


def words(text: str) -> list[str]:
    """Casefolded words of `text` (letters and digits; accents folded; apostrophes kept inside a word)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").casefold()
    return _WORD_RE.findall(folded)


def tokenize(text: str, extra_stopwords: Iterable[str] = ()) -> list[str]:
    """Stems of the content words of `text`, in order: stop words (and `extra_stopwords`) dropped first."""
    stop = STOPWORDS | frozenset(w.casefold() for w in extra_stopwords) if extra_stopwords else STOPWORDS
    return [_stem(w.replace("'", "").replace("\u2019", "")) for w in words(text) if w not in stop]


def plain_line(line: str) -> str:
    """One markdown line as plain text: no bullet, heading marks, emphasis or comments; table cells joined by '; '."""
    line = _COMMENT_RE.sub("", line)
    if line.strip().startswith("|"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        line = "; ".join(c for c in cells if c)
    line = _HEADING_RE.sub("", _BULLET_RE.sub("", line))
    line = _EMPHASIS_RE.sub(r"\2", line)
    return re.sub(r"\s+", " ", line).strip()


def split_sentences(text: str) -> list[str]:
    """Plain sentences of a markdown text: each line is split at sentence ends; bullets and table rows stand alone.

    Table separator rows, blank lines and lines with no letter or digit are dropped. Common abbreviations
    ("e.g.", "Dr.") and initials do not end a sentence.
    """
    out: list[str] = []
    for raw in _COMMENT_RE.sub("", text).split("\n"):
        if _TABLE_RULE_RE.match(raw):
            continue
        line = plain_line(raw)
        if any(ch.isalnum() for ch in line):
            out.extend(_split_line(line))
    return out


def _split_line(line: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(line):
        head = line[start : match.start()].rstrip()
        if _ABBREVIATION_RE.search(head.rstrip("\"'\u201d\u2019)")):
            continue
        pieces.append(line[start : match.start()].strip())
        start = match.end()
    pieces.append(line[start:].strip())
    return [p for p in pieces if any(ch.isalnum() for ch in p)]


@dataclass(frozen=True)
class Match:
    """One sentence's score against a query, with the query terms it shares."""

    index: int
    sentence: str
    score: float
    terms: tuple[str, ...]


class SentenceIndex:
    """BM25 over a fixed list of sentences (each sentence one document); query it many times.

    Document frequencies, and so the weight of each term, come from these sentences only: index the
    text you want to search (e.g. one module version), not a mix of unrelated texts.
    """

    def __init__(self, sentences: Sequence[str], *, k1: float = K1, b: float = B, saturation: int = SATURATION):
        if saturation < 1:
            raise ValueError("saturation must be at least 1")
        self.sentences = list(sentences)
        self.k1, self.b, self.saturation = k1, b, saturation
        self._tokens = [tokenize(s) for s in self.sentences]
        self._doc_of = [i for i, toks in enumerate(self._tokens) if toks]
        self._df: dict[str, int] = {}
        for toks in self._tokens:
            for term in set(toks):
                self._df[term] = self._df.get(term, 0) + 1
        self._retriever: bm25s.BM25 | None = None
        if self._doc_of:
            self._retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
            self._retriever.index([self._tokens[i] for i in self._doc_of], show_progress=False)

    def __len__(self) -> int:
        return len(self.sentences)

    def idf(self, term: str) -> float:
        """Lucene idf of a stemmed term over these sentences (as bm25s computes it); unseen terms get the highest."""
        n = len(self._doc_of)
        df = self._df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def ideal(self, query_terms: Iterable[str]) -> float:
        """What a sentence of average length holding each of the query's `saturation` highest-idf terms once scores."""
        weights = sorted((self.idf(t) for t in set(query_terms)), reverse=True)[: self.saturation]
        return sum(weights) / (1 + self.k1)

    def raw_scores(self, query_terms: Sequence[str]) -> list[float]:
        """Plain BM25 scores (bm25s, Lucene variant) of each sentence for these stemmed query terms."""
        out = [0.0] * len(self.sentences)
        known = list(dict.fromkeys(t for t in query_terms if t in self._df))
        if self._retriever is None or not known:
            return out
        for doc, value in zip(self._doc_of, self._retriever.get_scores(known), strict=True):
            out[doc] = float(value)
        return out

    def score(self, query: str, extra_stopwords: Iterable[str] = ()) -> list[float]:
        """One score per sentence in [0, 1]: BM25 divided by `ideal` for the query's terms, capped at 1.

        With the default saturation of 4, a sentence that shares the query's four most distinctive terms
        (or all of a shorter query's) scores about 1; query terms the text never uses count against it.
        """
        terms = tokenize(query, extra_stopwords)
        ideal = self.ideal(terms)
        if ideal <= 0:
            return [0.0] * len(self.sentences)
        return [min(1.0, raw / ideal) for raw in self.raw_scores(terms)]

    def matches(self, query: str, extra_stopwords: Iterable[str] = (), top: int | None = None) -> list[Match]:
        """Sentences with a score above 0, best first (ties in text order), at most `top` of them."""
        terms = set(tokenize(query, extra_stopwords))
        scored = [(s, i) for i, s in enumerate(self.score(query, extra_stopwords)) if s > 0]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        out = [Match(i, self.sentences[i], s, tuple(sorted(terms.intersection(self._tokens[i])))) for s, i in scored]
        return out[:top] if top is not None else out


def best_match(query: str, sentences: Sequence[str]) -> Match | None:
    """The best-scoring sentence for `query` (BM25 over `sentences` alone), or None when none shares a term."""
    found = SentenceIndex(sentences).matches(query, top=1)
    return found[0] if found else None
