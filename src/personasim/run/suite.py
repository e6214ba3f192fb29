"""Eval suites (`evals/*.yaml`): which personas and module versions to run, how, and what must hold.

A suite names its inputs, the LLM settings and recordings folder that reproduce it, and thresholds
that turn a results table into a pass/fail verdict for CI. Paths are relative to the suite file.
"""

from __future__ import annotations

import glob
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from personasim import __version__
from personasim.errors import InputError
from personasim.fileio import atomic_write_text
from personasim.inputs.module import LearningModule
from personasim.inputs.module_loader import load_modules
from personasim.inputs.persona import Persona
from personasim.inputs.persona_parser import load_personas, select_persona
from personasim.llm.roles import ModelRoles
from personasim.llm.settings import LLMSettings
from personasim.prompts import Prompts
from personasim.run.suite_checks import Check, requirement_checks, threshold_checks, unique_names
from personasim.yaml_errors import load_yaml


def _on_scale(value: float | None, info: ValidationInfo) -> float | None:
    """Thresholds on scores are on the normalised 0-1 scale; a 1-5 mean given by mistake says so."""
    if value is None or 0 <= value <= 1:
        return value
    if info.field_name == "max_uncited_high_scores":
        message = f"{value:g} is not a share: write a number from 0 to 1 (0.8 for 80%)"
    elif 1 < value <= 5:
        message = (f"{value:g} reads as a 1-5 mean, but thresholds use the 0-1 scale ((mean - 1) / 4): "
                   f"write {(value - 1) / 4:g} for a mean of {value:g}")  # fmt: skip
    else:
        message = (
            f"{value:g} is off the 0-1 scale thresholds use ((mean - 1) / 4: a 1-5 mean of 1 is 0, 3 is 0.5, 5 is 1)"
        )
    raise PydanticCustomError("scale", message)


class Thresholds(BaseModel):
    """Each is checked per module version. Scores are on the normalised 0-1 scale: (score - 1) / 4,
    so a 1-5 mean of 3 (what the summary table shows) is 0.5 and of 4 is 0.75."""

    model_config = ConfigDict(extra="forbid")

    min_lens_mean: float | None = Field(default=None, description="every lens's mean score, 0-1")
    min_lens_means: dict[str, float] = Field(default_factory=dict, description="per-lens minimum, 0-1, by lens name")
    min_persona_mean: float | None = Field(default=None, description="every persona's mean score, 0-1")
    max_unaddressed_misunderstandings: int | None = Field(
        default=None, ge=0, description="misunderstanding criteria that fail their pass threshold"
    )
    max_uncited_high_scores: float | None = Field(
        default=None, description="share of judge scores of 4+ that cite no learner statement, 0-1"
    )
    max_failed_units: int = Field(default=0, ge=0)

    check_scale = field_validator("min_lens_mean", "min_persona_mean", "max_uncited_high_scores")(_on_scale)

    @field_validator("min_lens_means")
    @classmethod
    def check_lens_scale(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        for floor in value.values():
            _on_scale(floor, info)
        return value


class Requirements(BaseModel):
    """Verdicts a suite needs besides its thresholds (`require: {health: ok, check_model: fit}`)."""

    model_config = ConfigDict(extra="forbid")

    health: Literal["ok"] | None = Field(default=None, description="the run's health verdict is not degenerate")
    check_model: Literal["fit", "caution"] | None = Field(
        default=None,
        description="the check-model scorecard for these model roles says 'fit for module decisions' (fit), "
        "or at least 'use with caution' (caution)",
    )


class CheckModelSpec(BaseModel):
    """A suite's `check_model:` block (flags override each field)."""

    model_config = ConfigDict(extra="forbid")

    personas: list[str] = Field(default_factory=list, description="persona ids or numbers; empty: all")
    module: str | None = Field(default=None, description="module file, relative to the suite [default: its first]")
    steps: str | None = None
    samples: int = Field(default=2, ge=1)
    judge_samples: int = Field(default=3, ge=1)
    ablate: list[str] = Field(default_factory=list, description="learning outcomes whose steps are removed")
    expect_lenses: list[str] = Field(default_factory=list, description="lenses the ablation should lower")
    thresholds: dict[str, float] = Field(default_factory=dict, description="overrides of model_checks.THRESHOLDS")
    scorecard: str | None = Field(
        default=None, description="the check.json recorded for the suite's model roles, relative to the suite; "
        "runs of the suite show it (and CI replays it)",
    )  # fmt: skip


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    personas: list[str] = Field(min_length=1, description="files, folders or globs")
    persona_ids: list[str] = Field(
        default_factory=list, description="only these personas (ids or numbers) of those files; empty: all"
    )
    modules: list[str] = Field(min_length=1, description="module version files or folders")
    samples: int = Field(default=1, ge=1)
    judge_samples: int = Field(default=1, ge=1)
    backend: str = Field(default="openai", description="'openai' (any compatible endpoint) or 'local[:MODEL]'")
    llm: dict[str, Any] = Field(default_factory=dict, description="the learner's LLMSettings fields")
    judge: dict[str, Any] = Field(
        default_factory=dict, description="what the judge sets differently from the learner (LLMSettings fields)"
    )
    prompts: str | None = Field(default=None, description="prompt templates folder (default: the packaged ones)")
    recordings: str | None = None
    mode: Literal["live", "record", "replay", "auto"] = "replay"
    history: Literal["full", "recap"] = "full"
    n_ctx: int | None = Field(
        default=None, ge=512, description="context size for a local server (default: the model's)"
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)
    require: Requirements = Field(default_factory=Requirements)
    check_model: CheckModelSpec = Field(default_factory=CheckModelSpec, description="personasim check-model's protocol")
    recorded_with: dict[str, Any] = Field(
        default_factory=dict, description="provenance of the recordings: model file sha256, settings, prompt hashes"
    )
    path: Path | None = None

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def persona_paths(self) -> list[Path]:
        return _expand(self.root, self.personas, self.path)

    def module_paths(self) -> list[Path]:
        return _expand(self.root, self.modules, self.path)

    def recordings_dir(self) -> Path | None:
        return (self.root / self.recordings) if self.recordings else None

    def load_personas(self, only: list[str] | None = None) -> list[Persona]:
        """The suite's personas: those named by `only` (the CLI's --persona), else by `persona_ids`,
        else every persona in its files."""
        personas = load_personas(self.persona_paths())
        subset = only or self.persona_ids
        if not subset:
            return personas
        where = ", ".join(self.personas)
        wanted = {select_persona(personas, ref, where).id for ref in subset}
        return [p for p in personas if p.id in wanted]

    def load_modules(self) -> list[LearningModule]:
        return load_modules(self.module_paths())


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot read suite: {exc.strerror}") from exc
    data = load_yaml(text, path)
    if not isinstance(data, dict):
        raise InputError(path, 1, "a suite is a YAML mapping with at least name, personas and modules")
    try:
        return Suite.model_validate({**data, "path": path})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(path, _line_of(path, str(err["loc"][0])), f"{field}: {err['msg']}") from exc


def _line_of(path: Path, key: str) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(f"{key}:"):
            return number
    return None


def _expand(root: Path, patterns: list[str], suite_path: Path | None) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(root / pattern)))
        if not matches:
            raise InputError(suite_path, None, f"{pattern!r} matches no file (paths are relative to the suite)")
        paths.extend(Path(m) for m in matches)
    return paths


def check_thresholds(df: pd.DataFrame, thresholds: Thresholds, failed_units: int = 0) -> list[str]:
    """Every threshold the results miss, as one readable line each (empty list: the suite passes)."""
    return [check.message for check in threshold_checks(df, thresholds, failed_units) if not check.passed]


def suite_checks(suite: Suite, outcome: Any) -> list[Check]:
    """Every check of `suite` on a run's outcome (`RunOutcome`): thresholds, then `require:` entries."""
    checks = threshold_checks(outcome.frame, suite.thresholds, failed_units=len(outcome.failed), suite=suite.name)
    checks += requirement_checks(suite.require, outcome.manifest, outcome.run_dir, suite=suite.name)
    return unique_names(checks)


RECORDED_WITH = "recorded_with.json"
_MACHINE_SPECIFIC = ("model_path", "startup_s", "base_url")  # not what produced the answers


def write_recorded_with(roles: ModelRoles, backend_info: dict[str, Any], history: str, prompts: Prompts,
                        suite_name: str) -> Path | None:  # fmt: skip
    """After a recording run, note next to the recordings what produced them (model file, both
    roles' settings, prompt template hashes), so a replay can tell stale recordings from missing ones."""
    directory = roles.learner.recordings_dir
    if directory is None:
        return None
    machine_free = {"base_url", "recordings_dir", "price_table"}
    record = {
        "suite": suite_name,
        "backend": {k: v for k, v in backend_info.items() if k not in _MACHINE_SPECIFIC},
        "settings": roles.learner.model_dump(mode="json", exclude=machine_free),
        "judge_settings": roles.judge.model_dump(mode="json", exclude=machine_free),
        "history": history,
        "prompt_hashes": prompts.template_hashes(),
        "package_version": __version__,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = Path(directory) / RECORDED_WITH
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


_KEY_SETTINGS = ("model", "temperature", "seed", "max_tokens", "structured_output")  # they change replay keys


def check_recordings_current(roles: ModelRoles, history: str, prompts: Prompts, suite_path: Path | str | None) -> None:
    """In replay mode, fail before any call when a prompt template or a setting that is part of the
    replay key (of either role) changed since the recordings were made: every request would miss."""
    directory = roles.learner.recordings_dir
    if roles.learner.mode != "replay" or directory is None or not (Path(directory) / RECORDED_WITH).is_file():
        return
    recorded = json.loads((Path(directory) / RECORDED_WITH).read_text(encoding="utf-8"))
    was, now = recorded.get("prompt_hashes", {}), prompts.template_hashes()
    changed = sorted(name for name in set(was) | set(now) if was.get(name) != now.get(name))
    learner_was = recorded.get("settings", {})
    changed += _changed_keys("", learner_was, roles.learner)
    changed += _changed_keys("judge ", recorded.get("judge_settings", learner_was), roles.judge)
    if recorded.get("history", history) != history:
        changed.append(f"history {recorded['history']!r} -> {history!r}")
    if changed:
        raise InputError(
            Path(directory) / RECORDED_WITH, None,
            f"the recordings are stale: {', '.join(changed)} changed since they were recorded, so every "
            f"replay key differs. Re-record them with: personasim run --suite {suite_path or 'SUITE'} --mode record "
            f"(then `personasim recordings prune {directory} --used results/<run>/used_keys.txt --delete` "
            "removes the old ones)",
        )  # fmt: skip


def _changed_keys(role: str, recorded: dict[str, Any], settings: LLMSettings) -> list[str]:
    now = settings.model_dump(mode="json")
    return [
        f"{role}{key} {recorded[key]!r} -> {now[key]!r}"
        for key in _KEY_SETTINGS
        if key in recorded and recorded[key] != now[key]
    ]
