"""Simulation health: is this run's table evidence about the module, or about a weak model?

A small local model role-plays badly in recognisable ways: the same relevance and engagement at
every step, answers copied from the step before, empty misunderstanding and barrier lists,
personas that all say the same thing, "as an AI" slips, and, as a judge, quotes that are not in
the transcript or that merely restate the criterion. Each check below measures one of these from
saved transcripts and the results table (no LLM calls) and compares it with a threshold;
every check reads "lower is better": `ok` is `value <= threshold`, and `None` when the check has
nothing to look at (e.g. no judge rows yet).

Similarity of two texts is difflib's `SequenceMatcher.ratio()` over their lower-cased word
sequences: 1.0 for the same words in the same order, 0.7-0.8 for one sentence template with a
few words swapped ("as a finance director, this step is relevant because ..."), 0.05-0.15 for two
independently written answers to the same step (difflib's ratio counts only runs of words that
line up, so shared topic words scattered through two answers add little).
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import combinations
from statistics import fmean
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from personasim.grading.grade import content_tokens, normalise, verify_quote
from personasim.records.transcript import Transcript, Turn

# Two consecutive steps' takeaway (or how_it_lands) this similar count as a copy: rewording one
# sentence keeps the ratio above 0.8, while answers about different steps score well below 0.5.
COPY_SIMILARITY = 0.8
# A judge quote whose content words are this much inside the criterion's is an echo of it.
ECHO_CONTAINMENT = 0.8
ECHO_MIN_TOKENS = 3
# Persona similarity compares pairs of personas: beyond this many pairs per module version a
# seeded sample of them estimates the mean (all 4,950 pairs of 100 personas took ~10 s at the end of
# a run; 100 pairs x 10 steps take ~0.15 s).
MAX_PERSONA_PAIRS = 100

# Thresholds on each check's value (share of units, turns, pairs or quotes; or a similarity).
THRESHOLDS: dict[str, float] = {
    # A few flat units are plausible (a short module, a steady learner); most of them are not.
    "flat_scores": 0.5,
    "flat_across_personas": 0.5,
    # Answers to different steps should not repeat each other; allow the odd echo.
    "copied_answers": 0.2,
    # The prompt asks for at least one item; a learner who is never confused at half the steps or
    # more is a model filling the schema, not a learner.
    "empty_misunderstandings": 0.5,
    "empty_barriers": 0.5,
    # Breaking character is rare in a working role-play; one slip in twenty answers is too many.
    "ai_phrases": 0.05,
    "truncated": 0.05,
    "failed_units": 0.1,
    # Independent answers to a step stay near 0.1; at 0.5 half of a typical answer's words line
    # up with another persona's: one template, re-worded.
    "persona_similarity": 0.5,
    # Quotes are checked verbatim (case, spacing and quote marks aside): a capable judge rarely misses.
    "unverified_evidence": 0.2,
    "criterion_echo": 0.1,
    "unsupported_high_scores": 0.25,
}

_AI_PHRASES = re.compile(
    r"\bas an? (?:ai|artificial intelligence)\b"
    r"|\blanguage model\b"
    r"|\bi(?: am|'m) (?:just |only )?an? (?:ai|bot|chatbot)\b"
    r"|\bai assistant\b"
    r"|\bi(?: am|'m) (?:sorry|afraid),? but i can(?:not|'t)\b"
    r"|\bi can(?:not|'t) (?:assist|help) with (?:that|this)\b"
    r"|\bi (?:do not|don't) have (?:personal )?(?:experiences|feelings|opinions|a job|a body)\b"
    r"|\bi(?: am|'m) (?:not able|unable) to (?:role-?play|pretend|provide personal)\b"
)


class HealthCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    value: float | None
    threshold: float
    ok: bool | None
    detail: str


class HealthReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[HealthCheck]
    verdict: str
    healthy: bool

    def check(self, name: str) -> HealthCheck:
        return next(c for c in self.checks if c.name == name)


def _check(name: str, value: float | None, detail: str) -> HealthCheck:
    ok = None if value is None else value <= THRESHOLDS[name]
    rounded = None if value is None else round(value, 4)
    return HealthCheck(name=name, value=rounded, threshold=THRESHOLDS[name], ok=ok, detail=detail)


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


# --------------------------------------------------------------------------- text similarity


@lru_cache(maxsize=65536)
def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[\w']+", normalise(text)))


def similarity(a: str, b: str) -> float:
    """Word-sequence similarity in [0, 1]; 0.0 when either text is empty."""
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


def is_criterion_echo(quote: str, criterion: str) -> bool:
    """The quote restates the criterion: it is a substring of it, or nearly all its content words
    come from it, or the two read nearly the same."""
    q, c = normalise(quote).strip(" \"'.,;:!?"), normalise(criterion)
    if not q or not c:
        return False
    if len(q.split()) >= ECHO_MIN_TOKENS and q in c:
        return True
    tokens = content_tokens(quote)
    if len(tokens) >= ECHO_MIN_TOKENS and len(tokens & content_tokens(criterion)) / len(tokens) >= ECHO_CONTAINMENT:
        return True
    return similar(quote, criterion)


# --------------------------------------------------------------------------- transcript checks


def check_flat_scores(transcripts: list[Transcript]) -> HealthCheck:
    """Units (two steps or more) whose relevance and engagement are both the same at every step."""
    units = [t for t in transcripts if len(t.turns) >= 2]
    flat = [
        t for t in units
        if len({s.reaction.relevance for s in t.turns}) == 1 and len({s.reaction.engagement for s in t.turns}) == 1
    ]  # fmt: skip
    return _check("flat_scores", _share(len(flat), len(units)), f"scores flat in {len(flat)} of {len(units)} units")


def _by_version(transcripts: list[Transcript]) -> dict[tuple[str, str], dict[str, list[Transcript]]]:
    groups: dict[tuple[str, str], dict[str, list[Transcript]]] = defaultdict(lambda: defaultdict(list))
    for t in sorted(transcripts, key=lambda t: (t.persona_id, t.sample)):
        groups[(t.module_id, t.module_version)][t.persona_id].append(t)
    return {key: dict(personas) for key, personas in groups.items() if len(personas) >= 2}


def check_flat_across_personas(transcripts: list[Transcript]) -> HealthCheck:
    """Module versions (two personas or more) where every persona has the same mean relevance and
    the same mean engagement."""
    versions = _by_version([t for t in transcripts if t.turns])
    flat = 0
    for personas in versions.values():
        means = {
            (fmean(s.reaction.relevance for t in units for s in t.turns),
             fmean(s.reaction.engagement for t in units for s in t.turns))
            for units in personas.values()
        }  # fmt: skip
        flat += len(means) == 1
    detail = f"scores the same for every persona in {flat} of {len(versions)} module versions"
    return _check("flat_across_personas", _share(flat, len(versions)), detail)


def check_copied_answers(transcripts: list[Transcript]) -> HealthCheck:
    """Consecutive steps whose takeaway or how_it_lands is a near-copy of the step before."""
    pairs = copies = 0
    for t in transcripts:
        steps = sorted(t.turns, key=lambda turn: turn.step_index)
        for before, after in zip(steps, steps[1:]):
            pairs += 1
            a, b = before.reaction, after.reaction
            copies += similar(a.takeaway, b.takeaway) or similar(a.how_it_lands, b.how_it_lands)
    detail = f"answers copied from the previous step in {copies} of {pairs} step pairs"
    return _check("copied_answers", _share(copies, pairs), detail)


def check_empty_lists(transcripts: list[Transcript], field: str) -> HealthCheck:
    """Turns whose `misunderstandings` (or `barriers`) list is empty."""
    turns = [s for t in transcripts for s in t.turns]
    empty = sum(not getattr(s.reaction, field) for s in turns)
    return _check(f"empty_{field}", _share(empty, len(turns)), f"no {field} at {empty} of {len(turns)} steps")


def _turn_text(turn: Turn) -> str:
    r = turn.reaction
    items = [r.takeaway, r.how_it_lands, r.what_i_would_do, r.continue_reason, *r.misunderstandings, *r.questions,
             *(b.detail for b in r.barriers)]  # fmt: skip
    return " ".join(items)


def _answers(t: Transcript) -> list[str]:
    """One text per model answer: each step reaction, then the end reflection."""
    answers = [_turn_text(s) for s in t.turns]
    if t.reflection:
        f = t.reflection.reflection
        answers.append(" ".join([f.what_changed, f.what_was_missing, f.recommend_reason]))
    return answers


def check_ai_phrases(transcripts: list[Transcript]) -> HealthCheck:
    """Answers (step reactions and end reflections) that break character or refuse."""
    answers = [a for t in transcripts for a in _answers(t)]
    hits = [m.group(0) for a in answers if (m := _AI_PHRASES.search(normalise(a)))]
    detail = f'"as an AI" or refusal phrases in {len(hits)} of {len(answers)} answers'
    if hits:
        detail += f' (e.g. "{hits[0]}")'
    return _check("ai_phrases", _share(len(hits), len(answers)), detail)


def check_truncated(transcripts: list[Transcript]) -> HealthCheck:
    calls = [c for t in transcripts for c in t.calls()]
    cut = sum(c.finish_reason == "length" for c in calls)
    detail = f"answers cut at the length limit in {cut} of {len(calls)} calls"
    return _check("truncated", _share(cut, len(calls)), detail)


def check_failed_units(transcripts: list[Transcript]) -> HealthCheck:
    failed = sum(t.status == "failed" for t in transcripts)
    return _check("failed_units", _share(failed, len(transcripts)), f"{failed} of {len(transcripts)} units failed")


def _persona_pair_similarity(units_a: list[Transcript], units_b: list[Transcript]) -> list[float]:
    """Step by step: the i-th unit (by sample) of one persona against the i-th of the other, each
    step's answers against the same step's. Comparing whole concatenations instead would cap the
    ratio when one persona has more samples or steps than the other."""
    scores = []
    for a, b in zip(units_a, units_b):
        steps_b = {s.step_id: s for s in b.turns}
        for step in a.turns:
            if step.step_id in steps_b:
                scores.append(similarity(_turn_text(step), _turn_text(steps_b[step.step_id])))
    return scores


Pair = tuple[list[Transcript], list[Transcript]]


def _persona_pairs(personas: dict[str, list[Transcript]]) -> tuple[list[Pair], int]:
    """Every pair of personas, or a fixed seeded sample of MAX_PERSONA_PAIRS when there are more
    (pairs grow with the square of the personas: 100 of them make 4,950); and the pair count."""
    pairs = list(combinations(personas.values(), 2))
    if len(pairs) <= MAX_PERSONA_PAIRS:
        return pairs, len(pairs)
    return random.Random(len(pairs)).sample(pairs, MAX_PERSONA_PAIRS), len(pairs)


def check_persona_similarity(transcripts: list[Transcript]) -> HealthCheck:
    """Mean similarity of two personas' answers to the same step of the same module version,
    over every pair of personas (a seeded sample of pairs when there are very many)."""
    scores, used, total = [], 0, 0
    for personas in _by_version([t for t in transcripts if t.turns]).values():
        pairs, count = _persona_pairs(personas)
        used, total = used + len(pairs), total + count
        for units_a, units_b in pairs:
            scores += _persona_pair_similarity(units_a, units_b)
    if not scores:
        return _check("persona_similarity", None, "fewer than two personas on every module version")
    value = fmean(scores)
    ok = value <= THRESHOLDS["persona_similarity"]
    detail = f"personas {'differ' if ok else 'barely differ'} (similarity {value:.2f})"
    if used < total:
        detail += f"; {used} of {total} persona pairs sampled"
    return _check("persona_similarity", value, detail)


# --------------------------------------------------------------------------- judge evidence checks


@dataclass(frozen=True)
class Quote:
    unit_id: str
    criterion_id: str
    text: str
    verified: bool
    criterion_text: str


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return [value] if value.strip() else []
        return parsed if isinstance(parsed, list) else [parsed]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        return list(value)
    return []


def _present(value: Any) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and value != value)


_JUDGE_COLUMNS = ("unit_id", "criterion_id", "criterion_text", "score", "evidence", "evidence_unverified",
                  "evidence_verified")  # fmt: skip


def judge_rows(results: pd.DataFrame | None) -> pd.DataFrame:
    if results is None or results.empty:
        return pd.DataFrame()
    if "grader" in results.columns:
        return results[results["grader"] == "judge"]
    return results


def _judge_records(results: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The judge rows as dicts of only the columns the evidence checks read (a whole-table
    `to_dict` was most of their time on large runs)."""
    rows = judge_rows(results)
    return rows[[c for c in _JUDGE_COLUMNS if c in rows.columns]].to_dict("records") if not rows.empty else []


def _row_quotes(row: Mapping[str, Any], learner_texts: Callable[[], list[str] | None],
                criterion_text: str) -> list[Quote]:  # fmt: skip
    """Quotes of one results row. Verified per quote from `evidence_unverified` when the table has
    it, else re-checked against the transcript, else the row's `evidence_verified`."""
    listed = row.get("evidence_unverified")
    unverified = {normalise(str(q)) for q in _as_list(listed)} if _present(listed) else None
    row_flag = row.get("evidence_verified")
    quotes = []
    for item in _as_list(row.get("evidence")):
        text = str(item.get("text", "")) if isinstance(item, dict) else str(item)
        if not text.strip():
            continue
        if isinstance(item, dict) and "verified" in item:
            verified = bool(item["verified"])
        elif unverified is not None:
            verified = normalise(text) not in unverified
        elif (texts := learner_texts()) is not None:
            verified = verify_quote(text, texts)
        else:
            verified = bool(row_flag) if _present(row_flag) else False
        quotes.append(Quote(str(row.get("unit_id", "")), str(row.get("criterion_id", "")), text, verified,
                            criterion_text))  # fmt: skip
    return quotes


def judge_quotes(results: pd.DataFrame | None, transcripts: list[Transcript],
                 criteria_texts: Mapping[str, str] | None = None,
                 records: list[dict[str, Any]] | None = None) -> list[Quote]:  # fmt: skip
    """Every evidence quote of the judge rows, with whether it was found in the transcript."""
    by_unit = {t.unit_id: t for t in transcripts}
    texts: dict[str, list[str] | None] = {}  # learner texts, built only for rows that need them

    def learner_texts(unit_id: str) -> list[str] | None:
        if unit_id not in texts:
            texts[unit_id] = by_unit[unit_id].learner_texts() if unit_id in by_unit else None
        return texts[unit_id]

    quotes: list[Quote] = []
    for row in _judge_records(results) if records is None else records:
        criterion = (criteria_texts or {}).get(str(row.get("criterion_id")), row.get("criterion_text"))
        criterion = str(criterion) if _present(criterion) else ""
        quotes += _row_quotes(row, lambda unit=str(row.get("unit_id")): learner_texts(unit), criterion)
    return quotes


def check_unverified_evidence(quotes: list[Quote]) -> HealthCheck:
    bad = sum(not q.verified for q in quotes)
    if not quotes:
        return _check("unverified_evidence", None, "no judge evidence quotes to check")
    return _check("unverified_evidence", bad / len(quotes), f"{bad} of {len(quotes)} quotes unverified")


def check_criterion_echo(quotes: list[Quote]) -> HealthCheck:
    echoes = [q for q in quotes if is_criterion_echo(q.text, q.criterion_text)]
    if not quotes:
        return _check("criterion_echo", None, "no judge evidence quotes to check")
    detail = f"{len(echoes)} of {len(quotes)} quotes restate the criterion"
    return _check("criterion_echo", len(echoes) / len(quotes), detail)


def check_unsupported_high_scores(records: list[dict[str, Any]], quotes: list[Quote]) -> HealthCheck:
    """Judge scores of 4 or more with no verified quote behind them (a lenient judge)."""
    if not records or "score" not in records[0]:
        return _check("unsupported_high_scores", None, "no judge scores")
    supported = {(q.unit_id, q.criterion_id) for q in quotes if q.verified}
    high = [r for r in records if _present(r.get("score")) and float(r["score"]) >= 4]
    bare = sum((str(r.get("unit_id")), str(r.get("criterion_id"))) not in supported for r in high)
    detail = f"{bare} of {len(high)} judge scores of 4+ have no verified quote"
    return _check("unsupported_high_scores", _share(bare, len(high)), detail)


# --------------------------------------------------------------------------- report

_HEADLINE = ("flat_scores", "copied_answers", "unverified_evidence", "persona_similarity")


def _verdict(checks: list[HealthCheck], n_units: int) -> tuple[str, bool]:
    if not n_units:
        return "nothing to assess: no transcripts", False
    failing = [c for c in checks if c.ok is False]
    if failing:
        return "simulations look degenerate: " + "; ".join(c.detail for c in failing), False
    shown = [c.detail for c in checks if c.name in _HEADLINE and c.ok is not None]
    return "simulations look healthy: " + "; ".join(shown or [f"{n_units} units checked"]), True


def assess_health(transcripts: list[Transcript], results: pd.DataFrame | None = None,
                  criteria_texts: Mapping[str, str] | None = None) -> HealthReport:  # fmt: skip
    """All checks over a run's transcripts and (optionally) its results table. `criteria_texts`
    (criterion id -> text) overrides the table's `criterion_text` for the echo check."""
    finished = [t for t in transcripts if t.status == "finished"]
    records = _judge_records(results)
    quotes = judge_quotes(results, transcripts, criteria_texts, records)
    checks = [
        check_flat_scores(finished),
        check_flat_across_personas(finished),
        check_copied_answers(finished),
        check_empty_lists(finished, "misunderstandings"),
        check_empty_lists(finished, "barriers"),
        check_ai_phrases(transcripts),
        check_truncated(transcripts),
        check_failed_units(transcripts),
        check_persona_similarity(finished),
        check_unverified_evidence(quotes),
        check_criterion_echo(quotes),
        check_unsupported_high_scores(records, quotes),
    ]
    verdict, healthy = _verdict(checks, len(transcripts))
    return HealthReport(checks=checks, verdict=verdict, healthy=healthy)


def health_to_dict(report: HealthReport) -> dict[str, Any]:
    """JSON-ready form for the run manifest."""
    return report.model_dump(mode="json")


HEALTH_TABLE_COLUMNS = ("check", "value", "threshold", "status", "detail")


def health_table(report: HealthReport) -> list[tuple[str, str, str, str, str]]:
    """One row of strings per check, in `HEALTH_TABLE_COLUMNS` order."""
    status = {True: "ok", False: "FAIL", None: "n/a"}
    return [
        (c.name, "-" if c.value is None else f"{c.value:.2f}", f"<= {c.threshold:g}", status[c.ok], c.detail)
        for c in report.checks
    ]
