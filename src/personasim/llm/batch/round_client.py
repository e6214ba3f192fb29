"""A role's ChatClient in a batch run. It never calls a server: it answers a request from the round
just collected, or notes it for the next round and raises `CallPending`. Under the run's call store
(which keeps each answer as a live call's, and replays it on every later pass) and any recordings.

    pending: dict[str, PendingRequest] = {}
    client = RoundClient("learner", settings, answers, state, pending, latency_s)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from personasim.llm.batch.lines import PendingRequest
from personasim.llm.batch.types import BatchState
from personasim.llm.chat_format import chat_request, parse_completion
from personasim.llm.replay import fast_request_key
from personasim.llm.settings import LLMSettings
from personasim.llm.types import BatchRequestFailed, CallPending, ChatOptions, Completion


def group_of(settings: LLMSettings) -> str:
    """Where a role's requests go: one batch file per endpoint and model (the OpenAI Batch API
    takes one model per file; `vllm run-batch` serves one model)."""
    where = settings.base_url or "api.openai.com"
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", settings.model).strip("-")[:60] or "model"
    return f"{label}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


class RoundClient:
    def __init__(
        self,
        role: str,
        settings: LLMSettings,
        answers: Mapping[str, dict[str, Any]],
        state: BatchState,
        pending: dict[str, PendingRequest],
        latency_s: float = 0.0,
        max_attempts: int = 3,
    ) -> None:
        self.role, self.settings, self.answers, self.state = role, settings, answers, state
        self.pending, self.latency_s, self.max_attempts = pending, latency_s, max_attempts
        self.group = group_of(settings)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        options: ChatOptions,
        response_model: type[BaseModel] | None = None,
    ) -> Completion:
        key = fast_request_key(messages, options, response_model)
        body = self.answers.get(key)
        if body is not None:
            return parse_completion(body, response_model, self.latency_s, attempts=1)
        tried = self.state.attempts.get(key, 0)
        if tried >= self.max_attempts:
            last = self.state.last_error.get(key, "no answer")
            raise BatchRequestFailed(f"a batch request failed in {tried} rounds (last: {last}); key {key}")
        if key not in self.pending:
            request = chat_request(messages, options, response_model, self.settings.structured_output,
                                   self.settings.max_tokens_param)  # fmt: skip
            self.pending[key] = PendingRequest(key, request, self.group, self.role)
        raise CallPending(key)

    async def aclose(self) -> None:
        return None
