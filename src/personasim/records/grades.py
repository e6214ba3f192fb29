"""What grading writes: one `Grade` per criterion (and each judge repeat's `JudgeSample`), with the
cited learner statements as evidence. Versioned on-disk types; no behaviour."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from personasim.records.usage import Usage

GRADE_VERSION = 2  # 2: verdicts, and evidence as cited statement ids (no free-text quotes)
Verdict = Literal["met", "partly met", "not met", "no evidence"]
VERDICTS: tuple[str, ...] = ("met", "partly met", "not met", "no evidence")
# The scores each verdict allows (the rubric's bands): a judge answer outside them is re-asked.
VERDICT_BANDS: dict[str, tuple[int, ...]] = {"met": (4, 5), "partly met": (3,), "not met": (1, 2), "no evidence": (3,)}


class Evidence(BaseModel):
    """One learner statement a grade rests on: its id (`S3.takeaway`) and the learner's words."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str


class JudgeSample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_index: int
    verdict: Verdict | None = None
    score: int | None = None
    rationale: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    raw_text: str = ""
    from_recording: bool = False
    error: str | None = None


class Grade(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = GRADE_VERSION
    unit_id: str
    criterion_id: str
    criterion_text: str
    lens: str
    source_field: str = ""
    grader: str
    verdict: Verdict | None = Field(default=None, description="the judge's verdict; null for deterministic graders")
    score: float | None = Field(default=None, description="1-5; null when it could not be graded")
    threshold: float
    passed: bool | None = Field(default=None, description="null when ungraded or when there was no evidence")
    rationale: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    judge_samples: int = 0
    score_sd: float | None = None
    score_min: float | None = None
    score_max: float | None = None
    samples: list[JudgeSample] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None
    error: str | None = None

    @property
    def score_norm(self) -> float | None:
        return None if self.score is None else (self.score - 1) / 4
