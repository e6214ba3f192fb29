"""The health checks: each measures one sign of a weak role-play or judge and compares it with a threshold."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from statistics import fmean
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from personasim.analysis.health_text import ai_phrase, similar, similarity
from personasim.grading.text_match import content_tokens, normalise
from personasim.records.transcript import Transcript, Turn

# Persona similarity compares pairs of personas: beyond this many pairs per module version a
# seeded sample of them estimates the mean (all 4,950 pairs of 100 personas took ~10 s at the end of
# a run; 100 pairs x 10 steps take ~0.15 s).
MAX_PERSONA_PAIRS = 100

# Thresholds on each check's value (share of units, turns, pairs or quotes; or a similarity). Every
# check reads "lower is better": ok is value <= threshold. The README's "What the figures mean"
# says why each is where it is.
THRESHOLDS: dict[str, float] = {
    # A few flat units are plausible (a short module, a steady learner); most of them are not.
    "flat_scores": 0.5,
    "flat_across_personas": 0.5,
    # Answers to different steps should not repeat each other; allow the odd echo.
    "copied_answers": 0.2,
    # Repeats are independent draws (a temperature above 0): copies would make agreement meaningless.
    "identical_repeats": 0.2,
    # The step prompt asks for 1-3 misunderstandings: a learner who names none at half the steps or
    # more is a model leaving the schema empty, not a learner.
    "empty_misunderstandings": 0.5,
    # The step prompt allows 0-3 barriers, so a well-fitted learner may name none at most steps: this
    # counts conversations with no barrier at any step, and is advisory (see ADVISORY).
    "empty_barriers": 0.5,
    # Breaking character is rare in a working role-play; one slip in twenty answers is too many.
    "ai_phrases": 0.05,
    "truncated": 0.05,
    "failed_units": 0.1,
    # Independent answers to a step stay near 0.1; at 0.5 half of a typical answer's words line
    # up with another persona's: one template, re-worded.
    "persona_similarity": 0.5,
    # Evidence is cited statements (the learner's words by construction). A judge that scores 4+ on
    # nothing it can point to is lenient; a rationale that denies its own score is not reading.
    "uncited_high_scores": 0.25,
    "unrelated_citations": 0.5,
    "verdict_contradictions": 0.1,
}
# Checks that are reported (status "warn") but never alone make the verdict "degenerate": what
# they count can be a healthy learner's answer.
ADVISORY = frozenset({"empty_barriers", "unrelated_citations"})


class HealthCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    value: float | None
    threshold: float
    ok: bool | None
    detail: str
    advisory: bool = False


def _check(name: str, value: float | None, detail: str) -> HealthCheck:
    ok = None if value is None else value <= THRESHOLDS[name]
    rounded = None if value is None else round(value, 4)
    return HealthCheck(name=name, value=rounded, threshold=THRESHOLDS[name], ok=ok, detail=detail,
                       advisory=name in ADVISORY)  # fmt: skip


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


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


def check_identical_repeats(transcripts: list[Transcript]) -> HealthCheck:
    """Repeated conversations (same persona and module version, another sample) that are near-copies
    of each other, step by step: repeats at temperature 0 are copies, and statistics over copies
    (agreement, intervals) mean nothing."""
    groups: dict[tuple[str, str, str], list[Transcript]] = defaultdict(list)
    for t in transcripts:
        groups[(t.persona_id, t.module_id, t.module_version)].append(t)
    pairs = copies = 0
    for group in groups.values():
        for a, b in combinations(sorted(group, key=lambda t: t.sample), 2):
            pairs += 1
            steps = list(zip(a.turns, b.turns))
            same = sum(similar(_turn_text(x), _turn_text(y)) for x, y in steps)
            copies += bool(steps) and same == len(steps)
    if not pairs:
        return _check("identical_repeats", None, "no repeated conversations (samples 1)")
    return _check("identical_repeats", copies / pairs, f"{copies} of {pairs} repeated conversations are near-copies")


def check_empty_lists(transcripts: list[Transcript], field: str) -> HealthCheck:
    """Turns whose `misunderstandings` list is empty; for `barriers`, which the prompt lets a learner
    leave empty at any step, conversations with no barrier at any step."""
    turns = [s for t in transcripts for s in t.turns]
    empty = sum(not getattr(s.reaction, field) for s in turns)
    if field != "barriers":
        return _check(f"empty_{field}", _share(empty, len(turns)), f"no {field} at {empty} of {len(turns)} steps")
    units = [t for t in transcripts if t.turns]
    silent = sum(not any(s.reaction.barriers for s in t.turns) for t in units)
    detail = f"no barriers in {silent} of {len(units)} conversations (at {empty} of {len(turns)} steps)"
    return _check("empty_barriers", _share(silent, len(units)), detail)


def _fields(turn: Turn) -> list[str]:
    r = turn.reaction
    return [r.takeaway, r.how_it_lands, r.what_i_would_do, r.continue_reason, *r.misunderstandings, *r.questions,
            *(b.detail for b in r.barriers)]  # fmt: skip


def _turn_text(turn: Turn) -> str:
    return " ".join(_fields(turn))


def _answers(t: Transcript) -> list[list[str]]:
    """The text fields of each model answer: each step reaction, then the end reflection."""
    answers = [_fields(s) for s in t.turns]
    if t.reflection:
        f = t.reflection.reflection
        answers.append([f.what_changed, f.what_was_missing, f.recommend_reason])
    return answers


def _first_phrase(fields: list[str]) -> str | None:
    return next((hit for text in fields if (hit := ai_phrase(text))), None)


def check_ai_phrases(transcripts: list[Transcript]) -> HealthCheck:
    """Answers (step reactions and end reflections) that break character or refuse: a field that
    holds one of the phrases, ending where a slip ends (see health_text.py)."""
    answers = [a for t in transcripts for a in _answers(t)]
    hits = [hit for a in answers if (hit := _first_phrase(a))]
    detail = f'"as an AI" or refusal phrases in {len(hits)} of {len(answers)} answers'
    if hits:
        detail += f' (e.g. "{hits[0]}")'
    return _check("ai_phrases", _share(len(hits), len(answers)), detail)


def check_truncated(transcripts: list[Transcript]) -> HealthCheck:
    """LLM calls whose answer stopped at the length limit."""
    calls = [c for t in transcripts for c in t.calls()]
    cut = sum(c.finish_reason == "length" for c in calls)
    detail = f"answers cut at the length limit in {cut} of {len(calls)} calls"
    return _check("truncated", _share(cut, len(calls)), detail)


def check_failed_units(transcripts: list[Transcript]) -> HealthCheck:
    """Units that failed (an LLM error that retries did not fix)."""
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
class Citation:
    """One learner statement a judge grade cites."""

    unit_id: str
    criterion_id: str
    statement_id: str
    text: str
    criterion_text: str


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def _present(value: Any) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and value != value)


_JUDGE_COLUMNS = ("unit_id", "criterion_id", "criterion_text", "score", "verdict", "rationale", "evidence")


def judge_rows(results: pd.DataFrame | None) -> pd.DataFrame:
    if results is None or results.empty:
        return pd.DataFrame()
    if "grader" in results.columns:
        return results[results["grader"] == "judge"]
    return results


def judge_records(results: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The judge rows as dicts of only the columns the evidence checks read (a whole-table
    `to_dict` was most of their time on large runs)."""
    rows = judge_rows(results)
    return rows[[c for c in _JUDGE_COLUMNS if c in rows.columns]].to_dict("records") if not rows.empty else []


def judge_citations(records: list[dict[str, Any]], criteria_texts: Mapping[str, str] | None = None) -> list[Citation]:
    """Every statement the judge rows cite (the `evidence` column: a JSON list of {id, text})."""
    out = []
    for row in records:
        criterion = (criteria_texts or {}).get(str(row.get("criterion_id")), row.get("criterion_text"))
        criterion = str(criterion) if _present(criterion) else ""
        for item in _as_list(row.get("evidence")):
            if isinstance(item, dict) and str(item.get("text", "")).strip():
                out.append(Citation(str(row.get("unit_id", "")), str(row.get("criterion_id", "")),
                                    str(item.get("id", "")), str(item["text"]), criterion))  # fmt: skip
    return out


def check_uncited_high_scores(records: list[dict[str, Any]]) -> HealthCheck:
    """Judge scores of 4 or more that cite no statement of the learner (a lenient judge)."""
    if not records or "score" not in records[0]:
        return _check("uncited_high_scores", None, "no judge scores")
    high = [r for r in records if _present(r.get("score")) and float(r["score"]) >= 4]
    bare = sum(not _as_list(r.get("evidence")) for r in high)
    detail = f"{bare} of {len(high)} judge scores of 4+ cite no statement"
    return _check("uncited_high_scores", _share(bare, len(high)), detail)


def check_unrelated_citations(citations: list[Citation]) -> HealthCheck:
    """Cited statements that share no content word with the criterion they are cited for: cheap,
    and blunt (a statement can bear on a criterion in other words), so advisory."""
    if not citations:
        return _check("unrelated_citations", None, "no cited statements to check")
    unrelated = sum(not (content_tokens(c.text) & content_tokens(c.criterion_text)) for c in citations)
    detail = f"{unrelated} of {len(citations)} cited statements share no word with their criterion"
    return _check("unrelated_citations", unrelated / len(citations), detail)


_DENIAL = re.compile(r"\b(?:not met|does not|doesn't|did not|didn't|fails? to|no evidence|is not|isn't|never)\b")


def check_verdict_contradictions(records: list[dict[str, Any]]) -> HealthCheck:
    """Grades whose rationale denies what their verdict or score claims: a "met" verdict (or a score
    of 4+) beside a rationale saying the criterion is not met. Verdicts outside their score band are
    re-asked at grading time; this counts what a re-ask cannot see."""
    judged = [r for r in records if _present(r.get("score"))]
    if not judged:
        return _check("verdict_contradictions", None, "no judge verdicts")
    bad = sum(
        (r.get("verdict") == "met" or float(r["score"]) >= 4)
        and bool(_DENIAL.search(normalise(str(r.get("rationale") or ""))))
        for r in judged
    )
    detail = f"{bad} of {len(judged)} judge rationales deny the verdict or score beside them"
    return _check("verdict_contradictions", bad / len(judged), detail)
