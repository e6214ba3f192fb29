"""check-model's scorecard: one row per check and one verdict, as written to `check.json`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCORECARD_VERSION = 1
Verdict = Literal["fit for module decisions", "use with caution", "not fit"]
FIT, CAUTION, NOT_FIT = "fit for module decisions", "use with caution", "not fit"
FAIL_UNDER = {"fit": FIT, "caution": CAUTION}  # --fail-under: the least verdict that passes
VERDICT_RANK = {NOT_FIT: 0, CAUTION: 1, FIT: 2}


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    value: float | None = Field(description="the measured figure; null when the check could not run")
    threshold: str = Field(description="what passes, e.g. '>= 0.5' or 'p < 0.05'")
    passed: bool | None = Field(description="null: not run (no data, or not asked for)")
    critical: bool = Field(description="a failed critical check makes the verdict 'not fit'")
    detail: str
    meaning: str = Field(description="what the check tells a module designer")


class Scorecard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = SCORECARD_VERSION
    verdict: Verdict
    checks: list[CheckResult]
    roles: dict[str, dict[str, Any]] = Field(description="learner and judge: what shapes their answers")
    config: dict[str, Any] = Field(description="personas, module, steps, samples, judge samples, ablation")
    hashes: dict[str, Any] = Field(description="persona, module and prompt template hashes")
    runs: dict[str, str] = Field(default_factory=dict, description="the run folders the checks read")
    package_version: str
    created_at: str

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)
