"""Judge reliability: do the judge's repeats of one criterion on one transcript agree?

Each (transcript, criterion) graded `k` times is a unit rated by `k` repeats. Krippendorff's
alpha over those units (interval metric by default, so that a 1-vs-5 disagreement counts for more
than a 3-vs-4 one; ordinal on request) says how much of the spread in scores is the judge's noise rather than the transcripts'
differences: 1 is perfect agreement, 0 is what random draws from the same scores would give,
below 0 is systematic disagreement. Computed with the `krippendorff` package (reference
implementation; reproduces the worked examples in Krippendorff's 2011 paper).

Degenerate cases: with one repeat per criterion (k=1) there is nothing to compare, so alpha is
None with a note. When every repeat on every unit gave the same score, alpha is undefined
(0/0: no variation at all); agreement is then reported as 1.0, with a note, since the repeats
never disagreed, but such a judge also tells transcripts apart on nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import krippendorff
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from personasim.analysis.results import RunPaths, load_grades
from personasim.records.grades import Grade

Level = Literal["interval", "ordinal"]
OVERALL = "(all)"
RELIABILITY_COLUMNS = ("judge_samples", "n_units", "n_ratings", "alpha", "agreement", "mean_spread",
                       "exact_agreement", "note")  # fmt: skip

NOTE_K1 = "one judge sample per criterion (k=1): grade with judge_samples >= 2 to measure agreement"
NOTE_UNPAIRED = "no unit has two scored judge repeats"
NOTE_NO_SCORES = "per-repeat scores not in the results table: it needs a judge_scores column when k >= 3"


class Agreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alpha: float | None
    agreement: float | None
    n_units: int
    n_ratings: int
    note: str = ""


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, list, tuple, np.ndarray)):
        return False
    return bool(pd.isna(value))


def krippendorff_alpha(units: Sequence[Sequence[float | None]], level: Level = "interval") -> Agreement:
    """Alpha over units, each a sequence of its repeats' scores (None or NaN for a failed repeat;
    units may have different numbers of repeats). Units with fewer than two scores are left out:
    they cannot be paired."""
    scored = [[float(v) for v in unit if not _missing(v)] for unit in units]
    pairable = [unit for unit in scored if len(unit) >= 2]
    if not pairable:
        k = max((len(unit) for unit in units), default=0)
        return Agreement(alpha=None, agreement=None, n_units=0, n_ratings=0, note=NOTE_K1 if k <= 1 else NOTE_UNPAIRED)
    n_ratings = sum(len(unit) for unit in pairable)
    values = {v for unit in pairable for v in unit}
    if len(values) == 1:
        note = f"every repeat gave {values.pop():g}: alpha undefined without variation; agreement taken as 1.0"
        return Agreement(alpha=None, agreement=1.0, n_units=len(pairable), n_ratings=n_ratings, note=note)
    data = np.full((max(len(unit) for unit in pairable), len(pairable)), np.nan)  # repeats x units
    for column, unit in enumerate(pairable):
        data[: len(unit), column] = unit
    alpha = round(float(krippendorff.alpha(reliability_data=data, level_of_measurement=level)), 4)
    return Agreement(alpha=alpha, agreement=alpha, n_units=len(pairable), n_ratings=n_ratings)


# --------------------------------------------------------------------------- per-repeat scores


def _scores_list(value: Any) -> list[float | None]:
    items = json.loads(value) if isinstance(value, str) else list(value)
    return [None if _missing(v) else float(v) for v in items]


def repeat_scores(row: Mapping[str, Any]) -> list[float | None] | None:
    """One results row's per-repeat scores, in repeat order. From its `judge_scores` (a list, or a
    JSON list as in CSV) when the table has one; otherwise rebuilt where that is exact: k=1 is the
    score itself, and k=2 is (score_min, score_max) when both repeats scored (score_sd is set only
    then). None when they cannot be known (k >= 3 without `judge_scores`)."""
    listed = row.get("judge_scores")
    if not _missing(listed):
        return _scores_list(listed)
    k = 0 if _missing(row.get("judge_samples")) else int(row["judge_samples"])
    score = None if _missing(row.get("score")) else float(row["score"])
    if k == 1:
        return [score]
    if k == 2:
        if not _missing(row.get("score_sd")):
            return [float(row["score_min"]), float(row["score_max"])]
        return [score, None]
    return None


def judge_scores_frame(grades: Iterable[Grade]) -> pd.DataFrame:
    """The columns `judge_reliability` needs, straight from `Grade`s (e.g. a run's grade files),
    with `judge_scores` taken from each grade's samples."""
    rows = [
        {
            "unit_id": g.unit_id, "criterion_id": g.criterion_id, "lens": g.lens, "grader": g.grader,
            "judge_samples": g.judge_samples,
            "judge_scores": [s.score for s in sorted(g.samples, key=lambda s: s.sample_index)],
        }
        for g in grades
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["unit_id", "criterion_id", "lens", "grader", "judge_samples", "judge_scores"])


# --------------------------------------------------------------------------- per criterion


def _spread(row: Mapping[str, Any], scores: list[float | None] | None) -> float | None:
    """Max minus min of the scored repeats; from score_min/max when the repeats are not known."""
    if scores is not None:
        scored = [s for s in scores if s is not None]
        return max(scored) - min(scored) if len(scored) >= 2 else None
    if _missing(row.get("score_sd")):
        return None
    return float(row["score_max"]) - float(row["score_min"])


def _summarise(rows: list[Mapping[str, Any]], level: Level) -> dict[str, Any]:
    scores = [repeat_scores(row) for row in rows]
    ks = [int(row["judge_samples"]) for row in rows if not _missing(row.get("judge_samples"))]
    spreads = [s for s in (_spread(row, sc) for row, sc in zip(rows, scores)) if s is not None]
    if any(sc is None for sc in scores):
        result = Agreement(alpha=None, agreement=None, n_units=len(spreads), n_ratings=0, note=NOTE_NO_SCORES)
    else:
        result = krippendorff_alpha([sc for sc in scores if sc is not None], level)
    return {
        "judge_samples": max(ks, default=0),
        "n_units": result.n_units,
        "n_ratings": result.n_ratings,
        "alpha": result.alpha,
        "agreement": result.agreement,
        "mean_spread": round(float(np.mean(spreads)), 4) if spreads else None,
        "exact_agreement": round(sum(s == 0 for s in spreads) / len(spreads), 4) if spreads else None,
        "note": result.note,
    }


def judge_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The LLM-judge rows (deterministic graders have no repeats)."""
    if "grader" in results.columns:
        return results[results["grader"] == "judge"]
    if "judge_samples" in results.columns:
        return results[results["judge_samples"].fillna(0) >= 1]
    return results


def judge_reliability(results: pd.DataFrame, by: str = "criterion_id", level: Level = "interval") -> pd.DataFrame:
    """Agreement of the judge's repeats per `by` value (criterion_id, or lens), then one
    `OVERALL` row where every (transcript, criterion) is a unit. Columns: `by`, persona_id and
    lens (when by is criterion_id), then `RELIABILITY_COLUMNS`.

    By criterion_id, one row per persona and criterion, keyed '<persona>/<criterion id>': criterion
    ids are positions within a persona (gap-01 of one persona is not gap-01 of another), so
    grouping by id alone would merge different questions. (A table without persona_id is grouped
    by criterion id alone.) n_units counts units with two or more scored repeats; mean_spread is
    the mean max-min of their scores; exact_agreement the share of them whose repeats all gave the
    same score."""
    rows = judge_rows(results) if not results.empty else results
    per_criterion = by == "criterion_id"
    with_lens = per_criterion and "lens" in rows.columns
    per_persona = per_criterion and "persona_id" in rows.columns
    keys = ["persona_id", by] if per_persona else [by]
    extra = [*(["persona_id"] if per_persona else []), *(["lens"] if with_lens else [])]
    out = []
    if not rows.empty:
        for key, group in rows.groupby(keys, sort=False, dropna=False):
            parts = key if isinstance(key, tuple) else (key,)
            first = group.iloc[0]
            out.append({by: "/".join(str(k) for k in parts), **{c: str(first[c]) for c in extra},
                        **_summarise(group.to_dict("records"), level)})  # fmt: skip
    overall = _summarise(rows.to_dict("records"), level) if not rows.empty else _empty_summary()
    out.append({by: OVERALL, **dict.fromkeys(extra, ""), **overall})
    return pd.DataFrame(out, columns=[by, *extra, *RELIABILITY_COLUMNS])


def _empty_summary() -> dict[str, Any]:
    return {"judge_samples": 0, "n_units": 0, "n_ratings": 0, "alpha": None, "agreement": None,
            "mean_spread": None, "exact_agreement": None, "note": "no judge grades"}  # fmt: skip


def run_judge_scores(run_dir: str | Path) -> pd.DataFrame:
    """`judge_scores_frame` of every grade file in a run folder (`grades/<unit>.json`)."""
    files = sorted((RunPaths(run_dir).root / "grades").glob("*.json"))
    return judge_scores_frame(g for path in files for g in load_grades(path).grades)


def judge_agreement(results: pd.DataFrame, run_dir: str | Path | None = None, by: str = "criterion_id",
                    level: Level = "interval") -> pd.DataFrame:  # fmt: skip
    """`judge_reliability` over `results` (a run's table or a slice of it). When the table has no
    `judge_scores` and `run_dir` is given, the per-repeat scores come from the run's grade files,
    so alpha is exact for any number of repeats."""
    if "judge_scores" not in results.columns and run_dir is not None and not results.empty:
        scores = run_judge_scores(run_dir)[["unit_id", "criterion_id", "judge_scores"]]
        keys = results[["unit_id", "criterion_id"]].astype(str)
        matched = keys.merge(scores.astype({"unit_id": str, "criterion_id": str}), how="left", validate="many_to_one")
        results = results.assign(judge_scores=matched["judge_scores"].to_numpy())
    return judge_reliability(results, by=by, level=level)
