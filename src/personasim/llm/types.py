"""The LLM boundary's data types and errors: options, completions, the ChatClient protocol (no network code)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from personasim.errors import PersonasimError
from personasim.records.usage import Usage

# --------------------------------------------------------------------------- errors


class LLMError(PersonasimError):
    """Base class for every failure of the LLM layer; the CLI prints its message as one line."""


class QuotaExceeded(LLMError):
    """HTTP 429 with `insufficient_quota`: retrying never helps."""


class RequestRejected(LLMError):
    """A 4xx the server will answer the same way every time (bad request, auth, unknown model)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class RetriesExhausted(LLMError):
    """Transient failures (429, 5xx, timeouts, dropped connections) outlasted the retry budget."""

    def __init__(self, message: str, attempts: int, reason: str) -> None:
        self.attempts = attempts
        self.reason = reason
        super().__init__(message)


class EndpointError(LLMError):
    """The endpoint as configured can serve no call of this run (nothing to retry, no unit gets past
    it): the runner stops the whole run instead of failing units one by one."""


class Unreachable(EndpointError):
    """Connection refused or DNS failure before the endpoint ever answered: no retries."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        self.attempts = attempts
        super().__init__(message)


class ModelNotListed(EndpointError):
    """The endpoint lists its models (`GET /models`) and the requested one is not among them."""

    def __init__(self, message: str, model: str, listed: list[str]) -> None:
        self.model = model
        self.listed = listed
        super().__init__(message)


class RefusalError(LLMError):
    """The model refused to answer (`message.refusal` was set)."""

    def __init__(self, refusal: str) -> None:
        self.refusal = refusal
        super().__init__(f"the model refused to answer: {refusal!r}")


class TruncatedError(LLMError):
    """The answer hit `max_tokens` (`finish_reason == "length"`) before it was complete."""

    def __init__(self, max_tokens: int, usage: Usage, text: str = "") -> None:
        self.max_tokens = max_tokens
        self.usage = usage
        self.text = text
        super().__init__(
            f"the answer was cut off at max_tokens={max_tokens} ({usage.completion_tokens} tokens written); "
            "raise max_tokens (--max-tokens or `max_tokens:` in the LLM config), or bound long "
            "free-text fields with max_length in the response model"
        )


class StructuredOutputError(LLMError):
    """No valid structured answer after the allowed re-asks."""

    def __init__(self, message: str, attempts: int, usage: Usage, last_error: str, last_text: str) -> None:
        self.attempts = attempts
        self.usage = usage
        self.last_error = last_error
        self.last_text = last_text
        super().__init__(message)


class ReplayMiss(LLMError):
    """Replay mode found no recording for a request (no network call was made)."""

    def __init__(self, message: str, key: str) -> None:
        self.key = key
        super().__init__(message)


class CallPending(Exception):
    """A batch run's call whose answer is not in yet: it goes into the next round. Not an LLMError:
    a unit waiting for its answer has not failed, and its sibling calls still ask theirs."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"call {key} waits for the next batch round")


class BatchRequestFailed(LLMError):
    """A batch request that failed in every round it was sent (error file, expired or failed batch)."""


class BatchEngineError(EndpointError):
    """A batch engine that cannot answer a round (a command that failed, a refused upload): the run
    stops, and `--resume` sends the round again."""


# --------------------------------------------------------------------------- data


class ChatOptions(BaseModel):
    """Per-call options. `sample_index` is never sent to the API; it separates repeated samples
    of the same request in the replay key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = 0
    max_tokens: int = Field(default=1024, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    sample_index: int = Field(default=0, ge=0)


class Completion(BaseModel):
    """One answer. `parsed` is the validated response model instance when one was asked for and
    the text validated (else None). `attempts` counts HTTP attempts (0 when replayed);
    `reasks` counts structured-output re-asks (usage and attempts then cover all of them)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    text: str
    parsed: Any = None
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None
    model: str
    system_fingerprint: str | None = None
    latency_s: float = 0.0
    from_recording: bool = False
    attempts: int = 1
    refusal: str | None = None
    reasks: int = 0


@runtime_checkable
class ChatClient(Protocol):
    """The narrow boundary every caller codes against (the OpenAI client, the recorder, fakes)."""

    async def complete(
        self,
        messages: list[dict[str, Any]],
        options: ChatOptions,
        response_model: type[BaseModel] | None = None,
    ) -> Completion: ...

    async def aclose(self) -> None: ...
