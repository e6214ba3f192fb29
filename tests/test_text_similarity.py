"""text_similarity: sentence splitting, tokenising and BM25 scores (bm25s + Snowball stems), no model."""

from __future__ import annotations

import subprocess
import sys

import bm25s
import pytest

from personasim.text_similarity import SentenceIndex, best_match, plain_line, split_sentences, tokenize, words


def test_split_sentences_reads_markdown_lines_bullets_and_tables() -> None:
    text = """**Step 1: Learn** about compassion. It works, e.g. in triage. Dr. Smith said so!
- A bullet. Two sentences here.
<!-- a comment -->

| Metric | 2021 |
|---|---|
| **Metric 1: BME representation** | 19% |
#### A sub-heading
"""
    assert split_sentences(text) == [
        "Step 1: Learn about compassion.",
        "It works, e.g. in triage.",
        "Dr. Smith said so!",
        "A bullet.",
        "Two sentences here.",
        "Metric; 2021",
        "Metric 1: BME representation; 19%",
        "A sub-heading",
    ]


def test_split_sentences_drops_lines_without_letters_or_digits() -> None:
    assert split_sentences("---\n|---|---|\n- \n***\n") == []
    assert plain_line("  1. **Bold** and _it_ `code`") == "Bold and it code"


def test_tokenize_drops_stop_words_and_stems() -> None:
    assert tokenize("Building strategic relationships beyond the finance team") == [
        "build", "strateg", "relationship", "beyond", "financ", "team",
    ]  # fmt: skip
    assert tokenize("Café, naïve: colleagues' views") == ["cafe", "naiv", "colleagu", "view"]
    assert tokenize("the and of", extra_stopwords=["module"]) == []
    assert tokenize("module learner", extra_stopwords=["module"]) == ["learner"]
    assert words("Don't stop") == ["don't", "stop"]


def test_scores_are_in_0_1_and_rank_the_matching_sentence_first() -> None:
    index = SentenceIndex([
        "We build relationships with finance teams.",
        "Networks of RO leaders met in spring.",
        "Nothing here at all.",
    ])  # fmt: skip
    scores = index.score("building relationships with finance")
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] > 0 and scores[1] == 0 and scores[2] == 0
    assert index.score("confidence in networking")[1] > 0  # shares 'network' only
    assert index.score("confidence in networking")[1] < index.score("RO leaders networks spring")[1]
    top = index.matches("relationships finance", top=1)[0]
    assert top.index == 0 and top.terms == ("financ", "relationship")


def test_terms_the_text_never_uses_count_against_the_query() -> None:
    index = SentenceIndex(["Compassion in triage.", "Fairness in recruitment.", "Other text."])
    assert index.score("compassion")[0] > index.score("compassion zebra")[0] > 0


def test_raw_scores_are_bm25s_scores() -> None:
    sentences = ["compassion in triage of concerns", "fair recruitment and progression", "triage template fields"]
    index = SentenceIndex(sentences)
    direct = bm25s.BM25(k1=index.k1, b=index.b, method="lucene")
    direct.index([tokenize(s) for s in sentences], show_progress=False)
    query = tokenize("triage of concerns")
    assert index.raw_scores(query) == pytest.approx([float(x) for x in direct.get_scores(query)])


def test_edge_cases_score_zero() -> None:
    assert SentenceIndex([]).score("anything") == []
    assert SentenceIndex(["", "the and"]).score("anything") == [0.0, 0.0]
    assert SentenceIndex(["a sentence"]).score("the of and") == [0.0]
    assert best_match("zebra", ["no match here"]) is None
    with pytest.raises(ValueError):
        SentenceIndex(["x"], saturation=0)


def test_same_input_same_scores() -> None:
    sentences = split_sentences("Fair on the person. Firm on the process. Hard things in a human way.")
    assert SentenceIndex(sentences).score("fair process") == SentenceIndex(sentences).score("fair process")


def test_importable_without_pandas_or_openai() -> None:
    code = (
        "import sys, personasim.text_similarity, personasim.analysis.gaps; "
        "bad = [m for m in ('pandas', 'openai', 'jinja2', 'pyarrow') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
