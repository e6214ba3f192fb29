"""Krippendorff's alpha over judge repeats: published and hand-computed values, degenerate cases."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from personasim.analysis.reliability import (
    NOTE_K1,
    NOTE_NO_SCORES,
    NOTE_UNPAIRED,
    OVERALL,
    judge_agreement,
    judge_reliability,
    judge_scores_frame,
    krippendorff_alpha,
    repeat_scores,
)
from personasim.analysis.results import GradeFile, RunPaths, results_frame, save_grades
from personasim.records.grades import Grade, JudgeSample
from personasim.records.transcript import Transcript

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x 12
# units with missing values. Published: interval 0.849, ordinal 0.815. Unit 12 has one value.
PAPER_UNITS = [
    [1, 1, N, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
    [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [N, 5, 5, 5], [N, N, 1, 1], [N, 3, N, N],
]  # fmt: skip


@pytest.mark.parametrize(("level", "published"), [("interval", 0.849), ("ordinal", 0.815)])
def test_published_example(level: str, published: float) -> None:
    result = krippendorff_alpha(PAPER_UNITS, level)  # type: ignore[arg-type]
    assert result.alpha == pytest.approx(published, abs=5e-4)
    assert result.agreement == result.alpha
    assert (result.n_units, result.n_ratings) == (11, 40)


def test_hand_computed_interval_and_ordinal() -> None:
    # Values 1 x3, 2 x1, 3 x2 (n=6); only unit [1, 2] disagrees, so o_12 = o_21 = 1.
    # interval: D_o = 2/6, D_e = 2(3*1*1 + 3*2*4 + 1*2*1)/30 = 58/30 -> alpha = 1 - 5/29 = 24/29.
    # ordinal: d_12 = (4 - 2)^2 = 4, d_13 = (6 - 2.5)^2, d_23 = (3 - 1.5)^2; D_o = 8/6, D_e = 6 -> 7/9.
    units = [[1, 1], [1, 2], [3, 3]]
    assert krippendorff_alpha(units, "interval").alpha == pytest.approx(24 / 29, abs=1e-4)
    assert krippendorff_alpha(units, "ordinal").alpha == pytest.approx(7 / 9, abs=1e-4)


def test_systematic_disagreement_is_negative() -> None:
    # n=4 (two 1s, two 2s); D_o = 4/4 = 1, D_e = 8/12 -> alpha = 1 - 3/2.
    assert krippendorff_alpha([[1, 2], [2, 1]]).alpha == pytest.approx(-0.5)


def test_perfect_agreement_with_variation_is_one() -> None:
    result = krippendorff_alpha([[1, 1, 1], [3, 3, 3], [5, 5]])
    assert (result.alpha, result.agreement, result.note) == (1.0, 1.0, "")


def test_one_repeat_gives_no_alpha() -> None:
    result = krippendorff_alpha([[4], [2], [5]])
    assert (result.alpha, result.agreement, result.n_units, result.note) == (None, None, 0, NOTE_K1)


def test_identical_ratings_are_agreement_one_without_alpha() -> None:
    result = krippendorff_alpha([[4, 4], [4, 4, 4], [4, N], [3]])
    assert (result.alpha, result.agreement, result.n_units, result.n_ratings) == (None, 1.0, 2, 5)
    assert result.note.startswith("every repeat gave 4: alpha undefined")


def test_repeats_that_never_pair_up() -> None:
    result = krippendorff_alpha([[4, N], [N, 3], [float("nan"), 2]])
    assert (result.alpha, result.agreement, result.note) == (None, None, NOTE_UNPAIRED)


def _row(unit: str, criterion: str, scores: list[int | None], lens: str = "gaps", grader: str = "judge") -> dict:
    return {"unit_id": unit, "criterion_id": criterion, "lens": lens, "grader": grader,
            "judge_samples": len(scores), "judge_scores": scores}  # fmt: skip


def test_per_criterion_and_overall() -> None:
    rows = [
        _row("u1", "gap-01", [1, 1]), _row("u2", "gap-01", [1, 2]), _row("u3", "gap-01", [3, 3]),
        _row("u1", "lens-power", [4, 4], lens="power"), _row("u2", "lens-power", [4, 4], lens="power"),
        _row("u1", "time", [], grader="time_fit"),
    ]  # fmt: skip
    table = judge_reliability(pd.DataFrame(rows))
    assert list(table["criterion_id"]) == ["gap-01", "lens-power", OVERALL]
    gap, power, overall = table.to_dict("records")
    assert gap["lens"] == "gaps" and gap["alpha"] == pytest.approx(24 / 29, abs=1e-4)
    assert (gap["n_units"], gap["n_ratings"], gap["judge_samples"]) == (3, 6, 2)
    assert gap["mean_spread"] == pytest.approx(1 / 3, abs=1e-4)
    assert gap["exact_agreement"] == pytest.approx(2 / 3, abs=1e-4)
    assert pd.isna(power["alpha"]) and power["agreement"] == 1.0 and "undefined" in power["note"]
    # Overall: values 1 x3, 2 x1, 3 x2, 4 x4 (n=10); D_o = 2/10, D_e = 322/90 -> alpha = 152/161.
    assert overall["alpha"] == pytest.approx(152 / 161, abs=1e-4) and overall["n_units"] == 5


def test_by_lens_and_json_scores_as_in_csv() -> None:
    rows = [_row("u1", "gap-01", [1, 2]), _row("u2", "gap-02", [2, 1])]
    for row in rows:
        row["judge_scores"] = json.dumps(row["judge_scores"])
    table = judge_reliability(pd.DataFrame(rows), by="lens")
    assert list(table.columns[:2]) == ["lens", "judge_samples"]
    assert table.loc[0, "lens"] == "gaps" and table.loc[0, "alpha"] == pytest.approx(-0.5)


def test_one_judge_sample_reports_why() -> None:
    frame = pd.DataFrame([{"unit_id": "u1", "criterion_id": "c", "grader": "judge", "score": 4.0, "judge_samples": 1}])
    table = judge_reliability(frame)
    assert pd.isna(table.loc[0, "alpha"]) and table.loc[0, "note"] == NOTE_K1


def _table_row(unit: str, scores: list[int | None]) -> dict:
    """A results-table row as results.py writes it today: summary statistics, no judge_scores."""
    scored = [s for s in scores if s is not None]
    return {
        "unit_id": unit, "criterion_id": "c", "grader": "judge", "judge_samples": len(scores),
        "score": sum(scored) / len(scored), "score_min": float(min(scored)), "score_max": float(max(scored)),
        "score_sd": pd.Series(scored).std() if len(scored) > 1 else None,
    }  # fmt: skip


def test_two_repeats_are_rebuilt_from_min_and_max() -> None:
    assert repeat_scores(_table_row("u1", [5, 2])) == [2.0, 5.0]
    assert repeat_scores(_table_row("u2", [3, None])) == [3.0, None]
    frame = pd.DataFrame([_table_row("u1", [1, 1]), _table_row("u2", [1, 2]), _table_row("u3", [3, 3]),
                          _table_row("u4", [3, None])])  # fmt: skip
    table = judge_reliability(frame)
    assert table.loc[0, "alpha"] == pytest.approx(24 / 29, abs=1e-4) and table.loc[0, "n_units"] == 3


def test_three_repeats_need_the_judge_scores_column() -> None:
    frame = pd.DataFrame([_table_row("u1", [1, 2, 4]), _table_row("u2", [3, 3, 3])])
    row = judge_reliability(frame).iloc[0]
    assert pd.isna(row["alpha"]) and row["note"] == NOTE_NO_SCORES
    assert row["mean_spread"] == 1.5 and row["n_units"] == 2


def test_from_grade_samples() -> None:
    def grade(unit: str, scores: list[int | None]) -> Grade:
        samples = [JudgeSample(sample_index=i, score=s) for i, s in reversed(list(enumerate(scores)))]
        return Grade(unit_id=unit, criterion_id="c", criterion_text="t", lens="gaps", grader="judge", threshold=3,
                     judge_samples=len(scores), samples=samples)  # fmt: skip

    frame = judge_scores_frame([grade("u1", [1, 1, 1]), grade("u2", [1, 2, None]), grade("u3", [3, 3, 3])])
    assert frame.loc[1, "judge_scores"] == [1, 2, None]
    row = judge_reliability(frame).iloc[0]
    # Units [1,1,1], [1,2], [3,3,3]: n=8 (1 x4, 2 x1, 3 x3). Per-unit weights 1/(m-1):
    # D_o = (1 + 1)/8 = 1/4; D_e = 2(4*1*1 + 4*3*4 + 1*3*1)/56 = 110/56 -> alpha = 1 - 14/110 = 48/55.
    assert row["alpha"] == pytest.approx(48 / 55, abs=1e-4) and row["n_ratings"] == 8


def test_no_judge_rows() -> None:
    table = judge_reliability(pd.DataFrame())
    assert list(table["criterion_id"]) == [OVERALL] and table.loc[0, "note"] == "no judge grades"


def test_reads_the_real_results_table() -> None:
    def unit(unit_id: str, scores: list[int | None]) -> tuple[Transcript, GradeFile]:
        t = Transcript(run_id="r", unit_id=unit_id, persona_id="p", persona_hash="h", module_id="m",
                       module_version="v1", module_hash="m", sample=0, model="x", system_prompt="")  # fmt: skip
        row = _table_row(unit_id, scores)
        grade = Grade(unit_id=unit_id, criterion_id="c", criterion_text="t", lens="gaps", grader="judge", threshold=3,
                      judge_samples=2, score=row["score"], score_min=row["score_min"], score_max=row["score_max"],
                      score_sd=row["score_sd"])  # fmt: skip
        return t, GradeFile(unit_id=unit_id, grades=[grade])

    frame = results_frame([unit("u1", [1, 1]), unit("u2", [1, 2]), unit("u3", [3, 3]), unit("u4", [2, None])])
    row = judge_reliability(frame).iloc[0]
    assert row["alpha"] == pytest.approx(24 / 29, abs=1e-4) and row["n_units"] == 3


def test_agreement_reads_repeats_from_the_run_folder(tmp_path: Path) -> None:
    table = pd.DataFrame([_table_row("u1", [1, 2, 4]), _table_row("u2", [3, 3, 3]), _table_row("u3", [5, 5, 4])])
    assert judge_agreement(table).loc[0, "note"] == NOTE_NO_SCORES  # no run folder: k=3 cannot be rebuilt
    for unit, scores in (("u1", [1, 2, 4]), ("u2", [3, 3, 3]), ("u3", [5, 5, 4])):
        samples = [JudgeSample(sample_index=i, score=s) for i, s in enumerate(scores)]
        grade = Grade(unit_id=unit, criterion_id="c", criterion_text="t", lens="gaps", grader="judge", threshold=3,
                      judge_samples=3, samples=samples)  # fmt: skip
        save_grades(RunPaths(tmp_path).grades(unit), GradeFile(unit_id=unit, grades=[grade]))
    row = judge_agreement(table.iloc[::-1], tmp_path).iloc[0]  # order of rows does not matter
    expected = krippendorff_alpha([[1, 2, 4], [3, 3, 3], [5, 5, 4]]).alpha
    assert row["alpha"] == expected and row["n_ratings"] == 9 and row["note"] == ""


def test_per_criterion_is_per_persona_too() -> None:
    # gap-01 is each persona's first gap: p17's is not p18's. Grouped by id alone, the two merged
    # into one "gap-01" row. p17: units [1,1], [1,2], [3,3] -> 24/29 (as above). p18: [4,4], [4,5]:
    # n=4 (4 x3, 5 x1); D_o = 2/4, D_e = 2*3*1/12 = 1/2 -> alpha 0.
    rows = [
        _row("u1", "gap-01", [1, 1]), _row("u2", "gap-01", [1, 2]), _row("u3", "gap-01", [3, 3]),
        _row("u4", "gap-01", [4, 4]), _row("u5", "gap-01", [4, 5]),
    ]  # fmt: skip
    for row, persona in zip(rows, ["p17", "p17", "p17", "p18", "p18"], strict=True):
        row["persona_id"] = persona
    table = judge_reliability(pd.DataFrame(rows))
    assert list(table["criterion_id"]) == ["p17/gap-01", "p18/gap-01", OVERALL]
    assert list(table.columns[:3]) == ["criterion_id", "persona_id", "lens"]
    p17, p18, overall = table.to_dict("records")
    assert p17["persona_id"] == "p17" and p17["alpha"] == pytest.approx(24 / 29, abs=1e-4) and p17["n_units"] == 3
    assert p18["alpha"] == pytest.approx(0, abs=1e-4) and p18["n_units"] == 2
    assert overall["n_units"] == 5 and overall["persona_id"] == ""
