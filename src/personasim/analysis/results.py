"""Grades -> results table (pandas is imported here), and the files of a run folder.

    results/<run-id>/
      manifest.json          what was run, with which settings, hashes, usage and unit statuses
      units.jsonl            one record per finished/failed unit (written by the runner)
      inputs.json            the personas and modules as run (so a run can be re-graded alone)
      transcripts/<unit>.json
      grades/<unit>.json
      results.parquet, results.csv

One row per run x persona x module version x sample x criterion x grader. Every file is written
atomically.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personasim.errors import InputError
from personasim.fileio import atomic_write_bytes, atomic_write_text
from personasim.hashing import canonical_json, content_hash
from personasim.inputs.criteria import LENSES
from personasim.llm.costs import PriceTable
from personasim.records.grades import Grade
from personasim.records.transcript import Transcript, load_transcript
from personasim.records.usage import Usage

GRADE_FILE_VERSION = 1
MANIFEST_VERSION = 2  # 2: model roles (judge_model, judge_settings), backend, prompts_dir
SIMULATION_TEMPLATES = ("persona_system.md.j2", "step_turn.md.j2", "step_recap.md.j2", "end_reflection.md.j2")

COLUMN_TYPES: dict[str, str] = {
    "run_id": "string", "unit_id": "string", "persona_id": "string", "persona_title": "string",
    "module_id": "string", "module_version": "string", "sample": "Int64",
    "criterion_id": "string", "criterion_text": "string", "lens": "string", "source_field": "string",
    "grader": "string", "score": "Float64", "score_norm": "Float64", "passed": "boolean",
    "threshold": "Float64", "verdict": "string", "rationale": "string", "evidence": "string", "flags": "string", "error": "string", "judge_samples": "Int64",
    "judge_scores": "string", "score_sd": "Float64", "score_min": "Float64", "score_max": "Float64",
    "learner_model": "string", "judge_model": "string",
    "prompt_tokens": "Int64", "completion_tokens": "Int64", "cached_tokens": "Int64", "cost_usd": "Float64",
    "persona_hash": "string", "module_hash": "string", "prompt_hash": "string",
}  # fmt: skip
COLUMNS = tuple(COLUMN_TYPES)


class GradeFile(BaseModel):
    """All grades of one unit, as written to `grades/<unit_id>.json`."""

    model_config = ConfigDict(extra="forbid")

    version: int = GRADE_FILE_VERSION
    unit_id: str
    prompt_hashes: dict[str, str] = Field(default_factory=dict, description="templates at grading time")
    judge: dict[str, Any] = Field(default_factory=dict, description="judge settings summary")
    judge_samples: int = 1
    grades: list[Grade]


class RunPaths:
    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir)
        self.manifest = self.root / "manifest.json"
        self.units = self.root / "units.jsonl"
        self.inputs = self.root / "inputs.json"
        self.parquet = self.root / "results.parquet"
        self.csv = self.root / "results.csv"

    def transcript(self, unit_id: str) -> Path:
        return self.root / "transcripts" / f"{unit_id}.json"

    def grades(self, unit_id: str) -> Path:
        return self.root / "grades" / f"{unit_id}.json"


def save_grades(path: str | Path, grade_file: GradeFile) -> None:
    atomic_write_text(path, grade_file.model_dump_json(indent=2) + "\n")


def load_grades(path: str | Path) -> GradeFile:
    path = Path(path)
    try:
        return GradeFile.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise InputError(path, None, "grades file not found") from exc
    except ValidationError as exc:
        raise InputError(path, None, f"not a grades file: {exc.errors()[0]['msg']}") from exc


def row_prompt_hash(transcript: Transcript, grade_file: GradeFile) -> str:
    """The simulation templates as the transcript was made, the judge templates as it was graded."""
    used = {k: v for k, v in transcript.prompt_hashes.items() if k in SIMULATION_TEMPLATES}
    used |= {k: v for k, v in grade_file.prompt_hashes.items() if k not in SIMULATION_TEMPLATES}
    return content_hash(canonical_json(used))


def _json_list(items: list[str]) -> str:
    return json.dumps(items, ensure_ascii=False)


def _judge_scores(grade: Grade) -> str | None:
    """Each judge repeat's score in repeat order (null for a failed repeat); null for non-judge grades."""
    if not grade.samples:
        return None
    return json.dumps([s.score for s in sorted(grade.samples, key=lambda s: s.sample_index)])


def grade_row(transcript: Transcript, grade: Grade, prompt_hash: str, prices: PriceTable | None) -> dict[str, Any]:
    usage = grade.usage
    cost = None
    if prices is not None and grade.model:
        cost = prices.cost(grade.model, usage)
    return {
        "run_id": transcript.run_id, "unit_id": transcript.unit_id,
        "persona_id": transcript.persona_id, "persona_title": transcript.persona_title,
        "module_id": transcript.module_id, "module_version": transcript.module_version, "sample": transcript.sample,
        "criterion_id": grade.criterion_id, "criterion_text": grade.criterion_text, "lens": grade.lens,
        "source_field": grade.source_field, "grader": grade.grader,
        "score": grade.score, "score_norm": grade.score_norm, "passed": grade.passed, "threshold": grade.threshold,
        "rationale": grade.rationale,
        "verdict": grade.verdict,
        "evidence": json.dumps([e.model_dump() for e in grade.evidence], ensure_ascii=False),
        "flags": _json_list(grade.flags), "error": grade.error,
        "judge_samples": grade.judge_samples,
        "judge_scores": _judge_scores(grade),
        "score_sd": grade.score_sd, "score_min": grade.score_min, "score_max": grade.score_max,
        "learner_model": transcript.model, "judge_model": grade.model,
        "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens, "cost_usd": cost,
        "persona_hash": transcript.persona_hash, "module_hash": transcript.module_hash, "prompt_hash": prompt_hash,
    }  # fmt: skip


def results_frame(units: list[tuple[Transcript, GradeFile]], prices: PriceTable | None = None) -> pd.DataFrame:
    """One row per grade, in the order given (units, then criteria)."""
    rows = [
        grade_row(transcript, grade, row_prompt_hash(transcript, grade_file), prices)
        for transcript, grade_file in units
        for grade in grade_file.grades
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype(COLUMN_TYPES).reset_index(drop=True)


def write_results(run_dir: str | Path, frame: pd.DataFrame) -> None:
    paths = RunPaths(run_dir)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(paths.parquet, buffer.getvalue())
    atomic_write_text(paths.csv, frame.to_csv(index=False))


def read_results(run_dir: str | Path) -> pd.DataFrame:
    path = RunPaths(run_dir).parquet
    if not path.is_file():
        raise InputError(path, None, "no results table here (was the run finished?)")
    return pd.read_parquet(path).astype(COLUMN_TYPES)


def load_unit(run_dir: str | Path, unit_id: str) -> tuple[Transcript, GradeFile]:
    paths = RunPaths(run_dir)
    return load_transcript(paths.transcript(unit_id)), load_grades(paths.grades(unit_id))


def summary(frame: pd.DataFrame, by: tuple[str, ...] = ("persona_id",)) -> pd.DataFrame:
    """Mean score (1-5) per persona (or `by`) x lens; lenses in their canonical order."""
    scored = frame.dropna(subset=["score"])
    if scored.empty:
        return pd.DataFrame(index=pd.Index([], name=by[0] if len(by) == 1 else None))
    table = scored.astype({"score": "float64"}).pivot_table(
        index=list(by), columns="lens", values="score", aggfunc="mean", observed=True
    )
    ordered = [lens for lens in LENSES if lens in table.columns]
    return table[ordered].round(2)


# --------------------------------------------------------------------------- manifest


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = MANIFEST_VERSION
    run_id: str
    package_version: str
    model: str = Field(description="the learner's model")
    judge_model: str | None = Field(default=None, description="null in manifests before version 2")
    seed: int | None
    settings: dict[str, Any] = Field(description="the learner's LLM settings; names the key's env var, never the key")
    judge_settings: dict[str, Any] = Field(default_factory=dict, description="the judge's LLM settings")
    backend: str = "openai"
    prompts_dir: str | None = None
    samples: int
    judge_samples: int
    sequential: bool
    history: str = "full"
    personas: dict[str, str] = Field(description="persona id -> content hash")
    modules: dict[str, str] = Field(description="module id@version -> content hash")
    prompt_hashes: dict[str, str]
    started_at: str
    finished_at: str
    duration_s: float
    units: dict[str, str] = Field(description="unit id -> finished | failed | not run")
    unit_errors: dict[str, str] = Field(default_factory=dict)
    usage: dict[str, dict[str, int]] = Field(description="simulation / judge / total token counts")
    cost_usd: float | None = Field(default=None, description="null when any model's price is unknown")
    rows: int
    regraded_at: str | None = None
    batch: dict[str, Any] | None = Field(default=None, description="a batch run's engine, rounds, requests, cost live")
    health: dict[str, Any] | None = Field(default=None, description="simulation health checks and verdict")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def usage_totals(units: list[tuple[Transcript, GradeFile]]) -> dict[str, Usage]:
    simulation, judge = Usage(), Usage()
    for transcript, grade_file in units:
        simulation = simulation + transcript.usage
        for grade in grade_file.grades:
            judge = judge + grade.usage
    return {"simulation": simulation, "judge": judge, "total": simulation + judge}


def run_cost(learner_model: str, judge_model: str, totals: dict[str, Usage], prices: PriceTable | None) -> float | None:
    """Simulation at the learner's price plus grading at the judge's; None when either is unknown."""
    if prices is None:
        return None
    parts = [prices.cost(learner_model, totals["simulation"]), prices.cost(judge_model, totals["judge"])]
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


def write_manifest(run_dir: str | Path, manifest: Manifest) -> None:
    atomic_write_text(RunPaths(run_dir).manifest, manifest.model_dump_json(indent=2) + "\n")


def read_manifest(run_dir: str | Path) -> Manifest:
    path = RunPaths(run_dir).manifest
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise InputError(path, None, "no manifest here: not a finished run folder") from exc
    except ValidationError as exc:
        raise InputError(path, None, f"not a run manifest: {exc.errors()[0]['msg']}") from exc
