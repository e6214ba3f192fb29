"""Results table: columns, types, files, summary, manifest, cost."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core_fixtures import make_module, make_persona
from doubles.scripted_client import ScriptedClient
from personasim.analysis.results import (
    COLUMNS,
    GradeFile,
    load_grades,
    read_results,
    results_frame,
    row_prompt_hash,
    save_grades,
    summary,
    write_results,
)
from personasim.grading.grade import grade_transcript
from personasim.inputs.criteria import derive_criteria
from personasim.llm.costs import PriceTable
from personasim.llm.settings import LLMSettings
from personasim.prompts import Prompts
from personasim.run.simulate import simulate_unit
from scripted_answers import scripted_text

SETTINGS = LLMSettings(model="gpt-test", seed=0)
PROMPTS = Prompts()
REQUIRED = (
    "run_id unit_id persona_id persona_title module_id module_version sample criterion_id criterion_text lens "
    "grader score score_norm passed threshold verdict rationale evidence judge_samples score_sd "
    "score_min score_max learner_model judge_model prompt_tokens completion_tokens cached_tokens cost_usd persona_hash module_hash "
    "prompt_hash"
).split()


async def _unit(persona, module, judge_samples: int = 2):
    client = ScriptedClient(lambda call: scripted_text(call.messages))
    transcript = await simulate_unit(client, persona, module, 0, SETTINGS, PROMPTS, run_id="run-1")
    criteria = derive_criteria(persona, module)
    grades = await grade_transcript(client, transcript, persona, module, criteria, judge_samples,
                                    settings=SETTINGS, prompts=PROMPTS)  # fmt: skip
    grade_file = GradeFile(unit_id=transcript.unit_id, prompt_hashes=PROMPTS.template_hashes(), grades=grades)
    return transcript, grade_file


@pytest.fixture
async def units():
    personas = [make_persona(17), make_persona(21, "Chief Allied Health Professional", hours=(2, 3))]
    return [await _unit(p, make_module(v)) for p in personas for v in ("v1", "v2")]


async def test_one_row_per_unit_and_criterion_with_all_columns(units) -> None:
    frame = results_frame(units)
    assert set(REQUIRED) <= set(frame.columns) and tuple(frame.columns) == COLUMNS
    assert len(frame) == sum(len(g.grades) for _, g in units) == 4 * 16
    assert frame.groupby(["unit_id", "criterion_id", "grader"]).size().max() == 1
    assert list(frame["module_version"].unique()) == ["v1", "v2"]
    judge = frame[frame["grader"] == "judge"]
    assert (judge["judge_samples"] == 2).all() and judge["score_sd"].notna().all()
    assert ((judge["score"] - 1) / 4 - judge["score_norm"]).abs().max() < 1e-9
    assert judge["prompt_tokens"].sum() > 0 and frame["cost_usd"].isna().all()  # no price table: unknown
    deterministic = frame[frame["grader"] != "judge"]
    assert (deterministic["judge_samples"] == 0).all() and deterministic["score_sd"].isna().all()
    assert judge["judge_model"].notna().all() and deterministic["judge_model"].isna().all()
    assert (frame["learner_model"] == units[0][0].model).all()
    power = frame[frame["criterion_id"] == "lens-power"].iloc[0]
    cited = json.loads(power["evidence"])
    assert [c["id"] for c in cited] == ["S1.takeaway", "S3.takeaway"] and all(c["text"] for c in cited)
    assert power["verdict"] in ("met", "partly met", "not met")
    transcript, grade_file = units[0]
    assert (frame["prompt_hash"] == row_prompt_hash(transcript, grade_file)).all()


async def test_cost_comes_from_a_price_table(units) -> None:
    prices = PriceTable.from_mapping({"gpt-test": {"input": 1.0, "output": 2.0, "cached_input": 0.5}})
    frame = results_frame(units, prices)
    row = frame[frame["grader"] == "judge"].iloc[0]
    # 2 samples x (100 prompt of which 60 cached, 20 completion)
    assert row["cost_usd"] == pytest.approx((2 * 40 * 1.0 + 2 * 60 * 0.5 + 2 * 20 * 2.0) / 1e6)
    assert frame[frame["grader"] != "judge"]["cost_usd"].fillna(0).eq(0).all()


async def test_parquet_and_csv_round_trip(units, tmp_path: Path) -> None:
    frame = results_frame(units)
    write_results(tmp_path, frame)
    pd.testing.assert_frame_equal(read_results(tmp_path), frame)
    csv = pd.read_csv(tmp_path / "results.csv")
    assert list(csv.columns) == list(COLUMNS) and len(csv) == len(frame)
    save_grades(tmp_path / "grades" / "u.json", units[0][1])
    assert load_grades(tmp_path / "grades" / "u.json") == units[0][1]


async def test_summary_is_persona_by_lens(units) -> None:
    frame = results_frame(units)
    table = summary(frame)
    assert list(table.index) == ["p17-test", "p21-test"]
    assert list(table.columns) == ["gaps", "misunderstandings", "competencies", "fit", "power", "difference",
                                   "inclusion", "transformational"]  # fmt: skip
    rows = frame[(frame["persona_id"] == "p21-test") & (frame["lens"] == "fit")]
    assert table.loc["p21-test", "fit"] == pytest.approx(rows["score"].astype(float).mean(), abs=0.01)
    by_version = summary(frame, by=("persona_id", "module_version"))
    assert len(by_version) == 4


def test_an_empty_run_gives_an_empty_table_with_the_columns() -> None:
    frame = results_frame([])
    assert tuple(frame.columns) == COLUMNS and frame.empty
    assert summary(frame).empty
