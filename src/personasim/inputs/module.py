"""LearningModule and Step: ordered content a learner works through.

A module version is one markdown file with YAML front matter and one `##` heading per step;
the loader lives in `module_loader.py`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_Model):
    id: str = Field(description="slug, unique within the module version")
    title: str
    content: str = Field(min_length=1, description="the text the learner reads or hears")
    activity: str = ""
    reflection_questions: list[str] = Field(default_factory=list)
    minutes: float | None = Field(default=None, gt=0)
    serves: list[str] = Field(default_factory=list, description="competencies or learning outcomes it serves")
    line: int | None = Field(default=None, description="1-based line of the step heading in its file")


class LearningModule(_Model):
    id: str
    title: str
    version: str
    audience: str = ""
    stage: str = ""
    target_competencies: list[str] = Field(default_factory=list)
    learning_outcomes: list[str] = Field(default_factory=list)
    estimated_minutes: float | None = Field(default=None, gt=0)
    delivery_format: str = ""
    source: str = Field(default="", description="where the content came from (e.g. the seed document)")
    steps: list[Step] = Field(min_length=1)
    path: str = ""
    content_hash: str = ""

    @property
    def ref(self) -> str:
        """`id@version`, how runs and comparisons name a module version."""
        return f"{self.id}@{self.version}"

    @property
    def total_minutes(self) -> float:
        """Sum of step minutes where given, else the front-matter estimate, else 0."""
        step_minutes = [s.minutes for s in self.steps if s.minutes is not None]
        if step_minutes:
            return float(sum(step_minutes))
        return float(self.estimated_minutes or 0)
