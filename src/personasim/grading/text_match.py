"""Plain text matching for the health checks: quote-mark and case folding, and the content words of a
short text. (Whether a learner voiced a misunderstanding is `misunderstanding_match`'s, on Snowball stems.)"""

from __future__ import annotations

import functools
import re

_QUOTE_MARKS = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "`": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})  # fmt: skip
_ELLIPSIS = re.compile(r"\.\.\.|\u2026|\[\.\.\.\]")


@functools.lru_cache(maxsize=4096)  # the same answers are folded again and again
def normalise(text: str) -> str:
    """Case, whitespace and curly/straight quote marks only: a quote must otherwise be verbatim."""
    return " ".join(text.translate(_QUOTE_MARKS).casefold().split())


_STOPWORDS = frozenset(
    "a an and are as at be been being by for from in into is it its of on or that the their them this to "
    "was were with i my me we our you your they he she his her think believ assum thinking believing "
    "assuming belief means mean".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "ly", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@functools.lru_cache(maxsize=8192)  # the same answers and criteria are tokenised again and again
def content_tokens(text: str) -> frozenset[str]:
    """Lower-case words, crude suffixes stripped, stop and framing words ("thinking", "assuming") dropped."""
    words = re.findall(r"[a-z0-9]+", normalise(text))
    return frozenset(s for s in (_stem(w) for w in words if w not in _STOPWORDS) if s not in _STOPWORDS)
