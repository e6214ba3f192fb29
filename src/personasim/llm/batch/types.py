"""A batch run's data: its settings (saved with the run's configuration) and its state (rounds,
their submissions and where each stands; `RUN/batch/state.json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EngineName = Literal["openai", "command"]
STATE_VERSION = 1
# The OpenAI Batch API's states, plus ours: `written` (a file not yet sent) and `collected`.
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_REQUESTS_PER_FILE = 50_000  # the OpenAI Batch API's limits per input file
MAX_BYTES_PER_FILE = 200 * 1024 * 1024


class BatchSettings(BaseModel):
    """How a run's rounds are answered. `command`: a template with {input} and {output} (and {shard},
    {model}), run once per shard; `shards`: how many pieces each round's file is split into."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: EngineName
    command: str | None = None
    shards: int = Field(default=1, ge=1)
    poll_s: float = Field(default=30.0, gt=0, description="seconds between polls of a submitted batch")
    max_attempts: int = Field(default=3, ge=1, description="rounds a failed request is sent in before its unit fails")
    max_requests: int = Field(default=MAX_REQUESTS_PER_FILE, ge=1)
    max_bytes: int = Field(default=MAX_BYTES_PER_FILE, ge=1024)


class Submission(BaseModel):
    """One input file of a round and what became of it."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(description="the endpoint and model its requests go to")
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    part: int = 0
    input_file: str = Field(description="relative to the round's folder")
    requests: int
    bytes: int
    input_file_id: str | None = None
    batch_id: str | None = None
    state: str = "written"
    completed: int = 0
    failed: int = 0
    output_file: str | None = None
    error_file: str | None = None
    error: str | None = None
    submitted_at: str | None = None
    finished_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def under_way(self) -> bool:
        """Sent to the engine and not finished there yet."""
        return self.batch_id is not None and not self.finished


class Round(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    started_at: str
    requests: int
    by_role: dict[str, int] = Field(default_factory=dict)
    submissions: list[Submission] = Field(default_factory=list)
    collected_at: str | None = None
    waited_s: float = 0.0

    @property
    def folder(self) -> str:
        return f"round-{self.index:03d}"

    @property
    def finished(self) -> bool:
        return all(s.finished for s in self.submissions)


class BatchState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = STATE_VERSION
    engine: EngineName
    rounds: list[Round] = Field(default_factory=list)
    attempts: dict[str, int] = Field(default_factory=dict, description="rounds each failed request was sent in")
    last_error: dict[str, str] = Field(default_factory=dict)
    finished_at: str | None = None

    def open_round(self) -> Round | None:
        """The last round when its answers are not collected yet."""
        last = self.rounds[-1] if self.rounds else None
        return last if last is not None and last.collected_at is None else None

    def last_collected(self) -> Round | None:
        return next((r for r in reversed(self.rounds) if r.collected_at is not None), None)
