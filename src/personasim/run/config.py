"""The one resolver: flags, a config file, a suite and a resumed run become one typed `RunConfig`.

Precedence, lowest first: defaults < the resumed run's own configuration < the suite < the config
file (LLM settings only) < flags. The learner's settings are resolved first; the judge starts from
them and applies what its own blocks set (`judge:` in the suite or the config file, `--judge-*`
flags). The whole RunConfig is saved in the run folder (`inputs.json`), and `grade` and `--resume`
read it back, so a run is repeated exactly as it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from personasim.errors import InputError
from personasim.llm.backend import parse_backend
from personasim.llm.batch.types import BatchSettings
from personasim.llm.local import get_model
from personasim.llm.roles import ModelRoles, judge_fields
from personasim.llm.settings import LLMSettings, read_settings_file

History = Literal["full", "recap"]
RUN_FIELDS = ("samples", "judge_samples", "history", "sequential", "prompts_dir", "backend", "n_ctx", "batch")
# Repeats must be independent draws: with more than one sample (judge sample), a role whose
# temperature nobody set samples at this one instead of 0 (at 0 the repeats are copies).
REPEAT_TEMPERATURE = {"learner": 0.7, "judge": 0.5}


class RunConfig(BaseModel):
    """Everything one run is made with. `learner` holds the learner's LLM settings as given (a
    local backend adds its server's address when it starts); `judge` only what the judge sets
    differently."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    out_dir: Path = Path("results")
    samples: int = Field(default=1, ge=1)
    judge_samples: int = Field(default=1, ge=1)
    history: History = "full"
    sequential: bool | None = Field(default=None, description="None: as the backend prefers")
    prompts_dir: Path | None = Field(default=None, description="None: the templates packaged with personasim")
    backend: str = "openai"
    n_ctx: int | None = None
    learner: dict[str, Any] = Field(default_factory=dict)
    judge: dict[str, Any] = Field(default_factory=dict)
    suite: str | None = None
    batch: BatchSettings | None = Field(default=None, description="None: live calls; else rounds of batch files")
    resume: bool = Field(default=False, exclude=True)

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.run_id

    def learner_settings(self) -> LLMSettings:
        return LLMSettings.from_mapping(self.learner)

    def roles(self, learner: LLMSettings | None = None) -> ModelRoles:
        """Both roles; `learner`: the learner's settings once a backend has filled them in."""
        return ModelRoles.of(learner or self.learner_settings(), self.judge)


@dataclass
class Given:
    """What one command was told. None (or a missing key) means "not given"."""

    learner: dict[str, Any] = field(default_factory=dict)  # --base-url, --model, ... (and --mode etc.)
    judge: dict[str, Any] = field(default_factory=dict)  # --judge-base-url, --judge-model, ...
    run: dict[str, Any] = field(default_factory=dict)  # samples, judge_samples, history, sequential, ...
    config_file: Path | None = None
    suite: Any = None  # a loaded personasim.run.suite.Suite
    resumed: RunConfig | None = None


def resolve_run(given: Given, *, run_id: str, out_dir: Path, resume: bool = False) -> RunConfig:
    """One RunConfig from every source; the learner's and judge's settings are validated here, so
    a mistake is reported before anything starts."""
    file_learner, file_judge = _config_file(given.config_file)
    saved, suite = given.resumed, given.suite
    learner = _merge(
        saved.learner if saved else {},
        _suite_learner(suite),
        file_learner,
        given.learner,
    )
    judge = _merge(saved.judge if saved else {}, getattr(suite, "judge", {}), file_judge, given.judge)
    params = _merge(
        {k: getattr(saved, k) for k in RUN_FIELDS} if saved else {},
        _suite_params(suite),
        given.run,
    )
    if params.get("samples", 1) > 1 and "temperature" not in learner:
        learner["temperature"] = REPEAT_TEMPERATURE["learner"]
    if params.get("judge_samples", 1) > 1 and "temperature" not in judge:
        judge["temperature"] = REPEAT_TEMPERATURE["judge"]
    config = RunConfig(
        run_id=run_id,
        out_dir=out_dir,
        resume=resume,
        learner=_with_local_model(learner, params.get("backend")),
        judge=judge_fields(judge, given.config_file or getattr(suite, "path", None)),
        suite=str(suite.path) if suite is not None and suite.path else (saved.suite if saved else None),
        **params,
    )
    try:  # validate both roles now: "model: Field required" before any work, not after it
        config.roles()
    except InputError as exc:
        where = given.config_file or getattr(suite, "path", None)
        raise InputError(exc.path or where, exc.line, exc.message) from exc
    return config


def _merge(*layers: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return merged


def _config_file(path: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A config file's learner settings (top level, or under `llm:` / `learner:`) and its `judge:` block."""
    if path is None:
        return {}, {}
    data = dict(read_settings_file(path))
    judge = data.pop("judge", None) or {}
    for block in ("learner", "llm"):
        if isinstance(data.get(block), dict):
            data = {**data.pop(block), **data}
    if not isinstance(judge, dict):
        raise InputError(path, None, "judge: must be a mapping of setting: value")
    return data, judge


def _suite_learner(suite: Any) -> dict[str, Any]:
    if suite is None:
        return {}
    base = {"mode": suite.mode, **suite.llm}
    if suite.recordings:
        base["recordings_dir"] = str(suite.recordings_dir())
    return base


def _suite_params(suite: Any) -> dict[str, Any]:
    if suite is None:
        return {}
    params = {
        "samples": suite.samples,
        "judge_samples": suite.judge_samples,
        "history": suite.history,
        "backend": suite.backend,
        "n_ctx": suite.n_ctx,
    }
    if suite.prompts:
        params["prompts_dir"] = suite.root / suite.prompts
    return params


def _with_local_model(learner: dict[str, Any], backend: str | None) -> dict[str, Any]:
    """A local backend names its model itself: `run --backend local` needs no --model."""
    kind, name = parse_backend(backend)
    if kind == "local" and "model" not in learner:
        return {**learner, "model": get_model(name).name}
    return learner
