"""One model role's LLM settings (endpoint, generation, retries), and reading a settings file.

The settings name the environment variable that holds the API key (`api_key_env`), never the key.
`run/config.py` resolves them from flags, files and suites; `llm/clients.py` turns them into a ChatClient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personasim.errors import InputError
from personasim.llm.structured import StructuredMode
from personasim.llm.types import ChatOptions
from personasim.yaml_errors import load_yaml

Mode = Literal["live", "record", "replay", "auto"]
MODES: tuple[str, ...] = ("live", "record", "replay", "auto")


class LLMSettings(BaseModel):
    """How to reach a model and how hard to try. Example YAML (top level or under `llm:`):

    base_url: http://127.0.0.1:8080/v1   # omit for api.openai.com
    model: qwen2.5-coder-1.5b-instruct
    structured_output: json_object_schema  # llama.cpp
    mode: auto
    recordings_dir: recordings/
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    model: str = Field(min_length=1)
    api_key_env: str = Field(default="OPENAI_API_KEY", min_length=1)
    mode: Mode = "live"
    concurrency: int = Field(default=4, ge=1, le=256)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = 0
    max_tokens: int = Field(default=1024, ge=1)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    timeout_s: float = Field(default=120.0, gt=0)
    structured_output: StructuredMode = "json_schema"
    max_attempts: int = Field(default=6, ge=1)
    backoff_initial_s: float = Field(default=1.0, ge=0)
    max_wait_s: float = Field(default=60.0, ge=0)
    total_timeout_s: float = Field(default=600.0, gt=0)
    max_reasks: int = Field(default=2, ge=0)
    recordings_dir: Path | None = None
    price_table: Path | None = None

    @model_validator(mode="after")
    def _recordings_dir_when_recording(self) -> LLMSettings:
        if self.mode != "live" and self.recordings_dir is None:
            raise ValueError(
                f"mode {self.mode!r} needs recordings_dir (set `recordings_dir:` in the LLM config "
                "or pass --recordings-dir)"
            )
        return self

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str | Path | None = None) -> LLMSettings:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InputError(source, None, "invalid LLM settings: " + _describe(exc)) from exc

    def with_overrides(self, **overrides: Any) -> LLMSettings:
        """A copy with the non-None overrides applied and validated again."""
        return self.from_mapping({**self.model_dump(exclude_unset=True), **_present(overrides)})

    def chat_options(self, sample_index: int = 0, model: str | None = None) -> ChatOptions:
        """The per-call options these settings imply (callers add the sample index)."""
        return ChatOptions(
            model=model or self.model,
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=self.max_tokens,
            timeout_s=self.timeout_s,
            sample_index=sample_index,
        )


GENERATION_FIELDS = ("model", "temperature", "seed", "max_tokens", "structured_output", "max_reasks", "base_url")


def generation_summary(settings: LLMSettings) -> dict[str, Any]:
    """The settings that shape an answer (what a transcript records; never the API key)."""
    return settings.model_dump(mode="json", include=set(GENERATION_FIELDS))


def sample_options(settings: LLMSettings, sample: int) -> ChatOptions:
    """Options for sample `sample`: its own replay key, and its own seed so repeated samples
    are independent draws rather than copies of sample 0."""
    options = settings.chat_options(sample_index=sample)
    if options.seed is None:
        return options
    return options.model_copy(update={"seed": options.seed + sample})


def read_settings_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, None, f"cannot read LLM settings: {exc.strerror}") from exc
    data = load_yaml(text, path)
    if data is None:
        return {}
    if isinstance(data, dict) and isinstance(data.get("llm"), dict) and len(data) == 1:
        data = data["llm"]
    if not isinstance(data, dict):
        raise InputError(path, None, "LLM settings must be a mapping of setting: value")
    return data


def _present(overrides: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in overrides.items() if value is not None}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
