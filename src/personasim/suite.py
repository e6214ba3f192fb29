"""Eval suites (`evals/*.yaml`): which personas and module versions to run, how, and what must hold.

A suite names its inputs, the LLM settings and recordings folder that reproduce it, and thresholds
that turn a results table into a pass/fail verdict for CI. Paths are relative to the suite file.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personasim.errors import InputError


class Thresholds(BaseModel):
    """Each is checked per module version; scores are normalised to 0..1 (1-5 maps to 0, .25 .. 1)."""

    model_config = ConfigDict(extra="forbid")

    min_lens_mean: float | None = Field(default=None, ge=0, le=1, description="every lens's mean score")
    min_lens_means: dict[str, float] = Field(default_factory=dict, description="per-lens minimum, by lens name")
    min_persona_mean: float | None = Field(default=None, ge=0, le=1, description="every persona's mean score")
    max_unaddressed_misunderstandings: int | None = Field(
        default=None, ge=0, description="misunderstanding criteria that fail their pass threshold"
    )
    min_verified_evidence_rate: float | None = Field(default=None, ge=0, le=1)
    max_failed_units: int = Field(default=0, ge=0)


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    personas: list[str] = Field(min_length=1, description="files, folders or globs")
    modules: list[str] = Field(min_length=1, description="module version files or folders")
    samples: int = Field(default=1, ge=1)
    judge_samples: int = Field(default=1, ge=1)
    backend: str = Field(default="openai", description="'openai' (any compatible endpoint) or 'local[:MODEL]'")
    llm: dict[str, Any] = Field(default_factory=dict, description="LLMSettings fields")
    recordings: str | None = None
    mode: str = "replay"
    thresholds: Thresholds = Field(default_factory=Thresholds)
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


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, None, f"cannot read suite: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(path, mark.line + 1 if mark else None, f"invalid YAML: {exc}") from exc
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
    misses: list[str] = []
    if failed_units > thresholds.max_failed_units:
        misses.append(f"max_failed_units: {failed_units} units failed (allowed {thresholds.max_failed_units})")
    for version, rows in df.groupby("module_version", sort=True):
        misses.extend(f"[{version}] {miss}" for miss in _misses_for_version(rows, thresholds))
    return misses


def _misses_for_version(rows: pd.DataFrame, t: Thresholds) -> list[str]:
    misses: list[str] = []
    lens_means = rows.groupby("lens")["score_norm"].mean()
    for lens, mean in lens_means.items():
        floor = t.min_lens_means.get(str(lens), t.min_lens_mean)
        if floor is not None and mean < floor:
            misses.append(f"min_lens_mean: lens {lens!r} mean {mean:.2f} < {floor:.2f}")
    for lens in t.min_lens_means:
        if lens not in lens_means.index:
            misses.append(f"min_lens_means: lens {lens!r} has no scores")
    if t.min_persona_mean is not None:
        for persona, mean in rows.groupby("persona_id")["score_norm"].mean().items():
            if mean < t.min_persona_mean:
                misses.append(f"min_persona_mean: {persona} mean {mean:.2f} < {t.min_persona_mean:.2f}")
    if t.max_unaddressed_misunderstandings is not None:
        unaddressed = int((~rows.loc[rows["lens"] == "misunderstandings", "passed"].astype(bool)).sum())
        if unaddressed > t.max_unaddressed_misunderstandings:
            misses.append(
                f"max_unaddressed_misunderstandings: {unaddressed} > {t.max_unaddressed_misunderstandings}"
            )
    if t.min_verified_evidence_rate is not None:
        verified = rows["evidence_verified"].dropna().astype(bool)
        rate = float(verified.mean()) if len(verified) else 0.0
        if rate < t.min_verified_evidence_rate:
            misses.append(f"min_verified_evidence_rate: {rate:.2f} < {t.min_verified_evidence_rate:.2f}")
    return misses
