"""The call wrapper every transport sits behind: bounded retries (tenacity, jittered backoff that
honours Retry-After), the limit on calls in flight, and usage accounting.

A transport only sends one request body and classifies a failure: it raises `TransientFailure`
for what is worth retrying (429, 408, 409, 5xx, timeouts, dropped connections, a garbled body) and
a typed `LLMError` for what is not (quota, 4xx). A refused connection or a failed DNS lookup is a
`TransientFailure` marked `unreachable`: before the endpoint has ever answered it raises
`Unreachable` at once (a wrong --base-url fails in seconds), afterwards it is retried (a server
restarting). Before the first call for a model, the wrapper asks the transport for the models the
endpoint lists (`GET /models`) and raises `ModelNotListed` when the model is not among them (no
listing: no check). `CallWrapper` is then a `ChatClient`:

    client = CallWrapper(OpenAITransport(api_key=..., base_url=...), concurrency=4)
    completion = await client.complete(messages, options, response_model)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay

from personasim.llm.chat_format import chat_request, parse_completion
from personasim.llm.structured import StructuredMode
from personasim.llm.types import ChatOptions, Completion, ModelNotListed, RetriesExhausted, Unreachable
from personasim.records.usage import Usage

logger = logging.getLogger(__name__)
MODEL_LIST_TIMEOUT_S = 30.0  # the model check waits at most this long for `GET /models`, then skips


class TransientFailure(Exception):
    """A failure worth retrying; `reason` is safe to log (no headers, no key)."""

    def __init__(self, reason: str, retry_after: float | None = None, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable  # connection refused or DNS failure: nothing answered at all


class Transport(Protocol):
    """Sends one chat-completions request body and returns the answer body (a dict)."""

    where: str  # for messages: the server's address

    async def send(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]: ...

    # Optional: `async def list_models(timeout_s) -> list[str] | None`, the model ids the endpoint
    # lists (None: no listing); a transport without it is never model-checked.

    def exhausted_hint(self, reason: str, structured_output: StructuredMode) -> str: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `max_attempts` attempts and `total_timeout_s` seconds overall;
    waits of `initial_wait_s * 2**n` (jittered, at most `max_wait_s`) or the server's
    `Retry-After` (capped at `max_wait_s`)."""

    max_attempts: int = 6
    initial_wait_s: float = 1.0
    max_wait_s: float = 60.0
    total_timeout_s: float = 600.0


class CallWrapper:
    """A ChatClient over any Transport. Use `async with` or call `aclose()`."""

    def __init__(
        self,
        transport: Transport,
        *,
        structured_output: StructuredMode = "json_schema",
        max_tokens_param: str = "max_tokens",
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        check_models: bool = False,
        flag_prefix: str = "--",
    ) -> None:
        self.transport = transport
        self.structured_output = structured_output
        self.max_tokens_param = max_tokens_param
        self.retry = retry or RetryPolicy()
        self.check_models = check_models
        self.flag_prefix = flag_prefix  # for messages: `--` (the learner's flags) or `--judge-`
        self._slots = asyncio.Semaphore(concurrency)
        self.usage = Usage()  # everything this client was billed for, re-asks and retries included
        self.calls = 0
        self._reached = False  # the endpoint has answered once: a refused connection is then retried
        self._models_ok: set[str] = set()
        self._model_checks: dict[str, asyncio.Future[None]] = {}

    def request_body(
        self, messages: list[dict[str, Any]], options: ChatOptions, response_model: type[BaseModel] | None
    ) -> dict[str, Any]:
        return chat_request(messages, options, response_model, self.structured_output, self.max_tokens_param)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        options: ChatOptions,
        response_model: type[BaseModel] | None = None,
    ) -> Completion:
        if self.check_models and options.model not in self._models_ok:
            await self.check_model(options.model, options.timeout_s)
        body = self.request_body(messages, options, response_model)
        attempts, answer = 0, None
        started = time.perf_counter()
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    async with self._slots:
                        answer = await self.transport.send(body, options.timeout_s)
        except TransientFailure as exc:
            if self._never_answered(exc):
                raise self._unreachable(attempts, exc) from exc
            raise self._exhausted(attempts, exc) from exc
        self._reached = True
        completion = parse_completion(answer, response_model, time.perf_counter() - started, attempts)
        self.usage, self.calls = self.usage + completion.usage, self.calls + 1
        return completion

    def _retrying(self) -> AsyncRetrying:
        policy = self.retry
        return AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.total_timeout_s),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: isinstance(exc, TransientFailure) and not self._never_answered(exc)),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _never_answered(self, exc: TransientFailure) -> bool:
        return exc.unreachable and not self._reached

    async def check_model(self, model: str, timeout_s: float = MODEL_LIST_TIMEOUT_S, flag: str | None = None) -> None:
        """Once per model (concurrent first calls share one request): is it among the models the
        endpoint lists? Shielded, so a cancelled caller does not cancel the check for the others.
        Called before a model's first call, or earlier by whoever wants to know up front (`flag`:
        the option that names the model, for the message; default this client's `--model`)."""
        check = self._model_checks.get(model)
        if check is None:
            checking = self._list_and_check(model, timeout_s, flag or f"{self.flag_prefix}model")
            check = self._model_checks[model] = asyncio.ensure_future(checking)
        await asyncio.shield(check)
        self._models_ok.add(model)

    async def _list_and_check(self, model: str, timeout_s: float, flag: str) -> None:
        lister = getattr(self.transport, "list_models", None)
        if lister is None:
            return
        try:
            listed = await lister(min(timeout_s, MODEL_LIST_TIMEOUT_S))
        except TransientFailure as exc:
            if self._never_answered(exc):
                raise self._unreachable(1, exc) from exc
            return  # the check is best effort: the call itself retries what is transient
        if listed is None:
            return
        self._reached = True
        if model in listed or f"{model}:latest" in listed:  # Ollama serves `name` as `name:latest`
            return
        shown = ", ".join(listed[:20]) + (f" and {len(listed) - 20} more" if len(listed) > 20 else "")
        raise ModelNotListed(
            f"{self.transport.where} does not serve model {model!r}: it lists {shown}; check {flag} "
            "(or pass --no-model-check if this server accepts names it does not list)",
            model=model,
            listed=list(listed),
        )

    def _unreachable(self, attempts: int, exc: TransientFailure) -> Unreachable:
        flag = f"{self.flag_prefix}base-url"
        return Unreachable(f"cannot reach {self.transport.where}: {exc.reason}; check {flag}", attempts=attempts)

    def _wait(self, state: RetryCallState) -> float:
        policy = self.retry
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientFailure) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_wait_s)
        backoff = min(policy.max_wait_s, policy.initial_wait_s * 2 ** (state.attempt_number - 1))
        return backoff * random.uniform(0.5, 1.0)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, TransientFailure) else repr(exc)
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "LLM call failed (%s); attempt %d of %d, retrying in %.2fs",
            reason,
            state.attempt_number,
            self.retry.max_attempts,
            wait,
        )

    def _exhausted(self, attempts: int, exc: TransientFailure) -> RetriesExhausted:
        hint = self.transport.exhausted_hint(exc.reason, self.structured_output)
        return RetriesExhausted(
            f"{self.transport.where} kept failing: {exc.reason}; gave up after {attempts} attempt(s){hint}. "
            "Raise max_attempts / total_timeout_s, lower concurrency, or try again later",
            attempts=attempts,
            reason=exc.reason,
        )

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> CallWrapper:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
