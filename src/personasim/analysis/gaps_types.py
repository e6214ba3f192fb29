"""The result types of `personasim gaps` (coverage before simulation): pydantic, JSON in and out.

A `Coverage` holds one `PersonaCoverage` per persona x module version; each lists every criterion
`derive_criteria` gives that persona, with how it was decided (`method`), whether any step addresses it
(`addressed`: True, False, or None where only a simulation can tell), the steps that do (with strength,
score and the matching sentences) and, when none does, the nearest miss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personasim.analysis.gaps_fit import FormatCheck, TimeFit
from personasim.errors import InputError
from personasim.fileio import atomic_write_text

COVERAGE_SCHEMA = "personasim.coverage/1"
COVERAGE_FILE = "coverage.json"

Method = Literal["serves", "text", "time", "format", "simulation"]
Strength = Literal["declared", "strong", "weak"]
Part = Literal["title", "content", "activity", "reflection"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SentenceHit(_Model):
    part: Part
    text: str
    score: float
    terms: list[str] = Field(default_factory=list, description="stemmed query terms the sentence shares")


class StepHit(_Model):
    step_id: str
    step_title: str
    position: int = Field(description="1-based step number in the module")
    strength: Strength | None = Field(description="None on a near miss (below the threshold)")
    score: float | None = Field(description="best sentence score in [0, 1]; None for a declared `serves:`")
    sentences: list[SentenceHit] = Field(default_factory=list)


class CriterionCoverage(_Model):
    criterion_id: str
    lens: str
    grader: str
    text: str
    method: Method
    query: str = Field(default="", description="the text matched against the steps (method `text`)")
    addressed: bool | None
    steps: list[StepHit] = Field(default_factory=list, description="the steps that address it, in module order")
    nearest: StepHit | None = Field(default=None, description="the best step below the threshold, when none is above")
    module_claims: bool | None = Field(default=None, description="competencies: in the module's target_competencies")
    checks: list[FormatCheck] = Field(default_factory=list, description="format: one per preference/barrier rule")
    summary: str


class PersonaCoverage(_Model):
    persona_id: str
    persona_title: str
    persona_hash: str
    module_ref: str
    module_title: str
    module_hash: str
    delivery_format: str
    time: TimeFit
    criteria: list[CriterionCoverage]

    def criterion(self, criterion_id: str) -> CriterionCoverage | None:
        return next((c for c in self.criteria if c.criterion_id == criterion_id), None)


class CoverageChange(_Model):
    """One persona criterion between two module versions: did version B gain or lose coverage?"""

    persona_id: str
    criterion_id: str
    lens: str
    a: bool | None
    b: bool | None
    change: Literal["gained", "lost", "same", "undecided"]
    steps_a: list[str]
    steps_b: list[str]
    summary_a: str
    summary_b: str


class CoverageSettings(_Model):
    matcher: str
    threshold: float = Field(description="sentence score at or above which a step addresses a free-text criterion")
    strong_threshold: float
    saturation: int
    k1: float
    b: float
    reading_words_per_minute: float
    text_heavy_words: int


class Coverage(_Model):
    schema_: str = Field(default=COVERAGE_SCHEMA, alias="schema")
    settings: CoverageSettings
    items: list[PersonaCoverage]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def find(self, persona_id: str, module_ref: str) -> PersonaCoverage | None:
        return next((i for i in self.items if i.persona_id == persona_id and i.module_ref == module_ref), None)

    def lookup(self, persona_id: str, module_ref: str, criterion_id: str) -> CriterionCoverage | None:
        item = self.find(persona_id, module_ref)
        return item.criterion(criterion_id) if item else None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True) + "\n"


def write_coverage(coverage: Coverage, path: str | Path) -> Path:
    """Write `coverage` as JSON (atomically); a folder gets `coverage.json` inside it."""
    target = Path(path)
    if target.is_dir() or not target.suffix:
        target = target / COVERAGE_FILE
    atomic_write_text(target, coverage.to_json())
    return target


def read_coverage(path: str | Path) -> Coverage:
    """Read a coverage file (or `coverage.json` in a folder); a bad file is one `InputError` naming it."""
    target = Path(path)
    if target.is_dir():
        target = target / COVERAGE_FILE
    try:
        return Coverage.model_validate_json(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(target, None, f"cannot read coverage: {exc.strerror or exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(target, None, f"not a coverage file: {where}: {first['msg']}") from None
