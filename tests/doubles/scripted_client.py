"""An in-process ChatClient test double: answers come from a script (a queue or a callable).

    client = ScriptedClient(lambda call: '{"score": 3, ...}')
    client = ScriptedClient(["first answer", "second answer"])

Every call is kept in `client.calls` (messages deep-copied, options, response model) so tests can
check what was sent. A script item that is an exception instance is raised instead of answered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from personasim.llm.types import ChatOptions, Completion
from personasim.records.usage import Usage


@dataclass
class Call:
    messages: list[dict[str, Any]]
    options: ChatOptions
    response_model: type[BaseModel] | None

    @property
    def last_user(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def system(self) -> str:
        return self.messages[0]["content"] if self.messages and self.messages[0]["role"] == "system" else ""


Script = Callable[[Call], "str | BaseException"] | Iterable["str | BaseException"]


@dataclass
class ScriptedClient:
    script: Script
    usage: Usage = field(default_factory=lambda: Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=60))
    calls: list[Call] = field(default_factory=list)
    closed: bool = False

    def __post_init__(self) -> None:
        if not callable(self.script):
            self._queue = list(self.script)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        options: ChatOptions,
        response_model: type[BaseModel] | None = None,
    ) -> Completion:
        call = Call(copy.deepcopy(messages), options, response_model)
        self.calls.append(call)
        answer = self.script(call) if callable(self.script) else self._next()
        if isinstance(answer, BaseException):
            raise answer
        return Completion(
            text=answer,
            usage=self.usage,
            finish_reason="stop",
            model=options.model,
            latency_s=0.01,
        )

    def _next(self) -> str | BaseException:
        if not self._queue:
            raise AssertionError("ScriptedClient ran out of scripted answers")
        return self._queue.pop(0)

    async def aclose(self) -> None:
        self.closed = True
