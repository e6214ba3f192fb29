"""The LLM boundary: `ChatClient.complete(messages, options, response_model=None) -> Completion`.

`OpenAIChatClient` talks to any OpenAI-compatible chat-completions server through one shared
`openai.AsyncOpenAI` (SDK retries off). Around each HTTP attempt: a semaphore bounding calls in
flight; around the attempts: tenacity retries for 429 / 408 / 409 / 5xx / timeouts / dropped
connections with jittered exponential backoff that honours `Retry-After`. `insufficient_quota`
and other 4xx fail at once with a typed error that says what to do. The API key is read from
the environment variable the settings name, handed to the SDK, and kept nowhere else.

This is the only module that imports `openai`. Usage:

    settings = LLMSettings(model="gpt-4o-mini")
    async with build_client(settings) as client:
        c = await complete_structured(client, messages, settings.chat_options(), MyModel)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import openai
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, stop_before_delay

from personasim.llm.costs import LedgerRow, ModelPrice, PriceTable, UsageLedger, format_cost
from personasim.llm.replay import RecordingClient
from personasim.llm.settings import LLMSettings, resolve_settings
from personasim.llm.structured import (
    StructuredMode,
    complete_structured,
    copy_messages,
    needs_instructions,
    response_format,
    try_parse,
    with_instructions,
)
from personasim.llm.types import (
    ChatClient,
    ChatOptions,
    Completion,
    LLMError,
    QuotaExceeded,
    RefusalError,
    ReplayMiss,
    RequestRejected,
    RetriesExhausted,
    StructuredOutputError,
    TruncatedError,
    Usage,
)

__all__ = [
    "ChatClient", "ChatOptions", "Completion", "LLMError", "LLMSettings", "LedgerRow", "ModelPrice",
    "OpenAIChatClient", "PriceTable", "QuotaExceeded", "RecordingClient", "RefusalError", "ReplayMiss",
    "RequestRejected", "RetriesExhausted", "RetryPolicy", "StructuredOutputError", "TruncatedError",
    "Usage", "UsageLedger", "build_client", "complete_structured", "format_cost", "resolve_settings",
]  # fmt: skip

logger = logging.getLogger("personasim.llm.openai_client")

KEYLESS_PLACEHOLDER = "sk-no-key-required"
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_SECRETISH = re.compile(r"(Bearer\s+)\S+|\bsk-[A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `max_attempts` attempts and `total_timeout_s` seconds overall;
    waits of `initial_wait_s * 2**n` (jittered, at most `max_wait_s`) or the server's
    `Retry-After` (capped at `max_wait_s`)."""

    max_attempts: int = 6
    initial_wait_s: float = 1.0
    max_wait_s: float = 60.0
    total_timeout_s: float = 600.0


class _Transient(Exception):
    """A failure worth retrying; `reason` is safe to log (no headers, no key)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def redact(text: str) -> str:
    """Mask anything that looks like a bearer token or an OpenAI-style key."""
    return _SECRETISH.sub(lambda m: (m.group(1) or "sk-") + "***", text)


def parse_retry_after(headers: Any, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` (seconds or an HTTP date)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(exc.code or body.get("type") or "")


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), str) else exc.message
    return redact(str(message))[:300]


class OpenAIChatClient:
    """A ChatClient for OpenAI-compatible servers. Use `async with` or call `aclose()`."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        structured_output: StructuredMode = "json_schema",
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        max_tokens_param: str = "max_tokens",
    ) -> None:
        if not api_key:
            if base_url is None:
                raise LLMError(
                    f"no API key: set the environment variable {api_key_env} (or point base_url at a local server)"
                )
            api_key = KEYLESS_PLACEHOLDER  # keyless local servers (llama.cpp, Ollama) accept any key
        # The SDK's aiohttp transport: its default (httpx2 + httpcore2) spent 1-2 ms of CPU a call
        # scanning its connection pool, which bounds a wide run (bench/concurrency.py).
        http_client = openai.DefaultAioHttpClient(timeout=timeout_s)
        self._sdk = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s, http_client=http_client
        )
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.structured_output = structured_output
        self.retry = retry or RetryPolicy()
        self.max_tokens_param = max_tokens_param
        self._slots = asyncio.Semaphore(concurrency)

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> OpenAIChatClient:
        return cls(
            api_key=os.environ.get(settings.api_key_env),
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            structured_output=settings.structured_output,
            concurrency=settings.concurrency,
            retry=RetryPolicy(
                settings.max_attempts, settings.backoff_initial_s, settings.max_wait_s, settings.total_timeout_s
            ),
            timeout_s=settings.timeout_s,
            max_tokens_param=settings.max_tokens_param,
        )

    async def complete(
        self,
        messages: list[dict[str, Any]],
        options: ChatOptions,
        response_model: type[BaseModel] | None = None,
    ) -> Completion:
        request = self._request(messages, options, response_model)
        attempts, response = 0, None
        started = time.perf_counter()
        try:
            async for attempt in self._retrying():
                with attempt:
                    attempts += 1
                    response = await self._send(request, options.timeout_s)
        except _Transient as exc:
            raise self._exhausted(attempts, exc) from exc
        return _completion(response, response_model, time.perf_counter() - started, attempts)

    def _request(
        self, messages: list[dict[str, Any]], options: ChatOptions, response_model: type[BaseModel] | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": options.model,
            "messages": copy_messages(messages),
            "temperature": options.temperature,
            self.max_tokens_param: options.max_tokens,
        }
        if options.seed is not None:
            request["seed"] = options.seed
        if response_model is not None:
            if needs_instructions(self.structured_output):
                request["messages"] = with_instructions(messages, response_model)
            fmt = response_format(response_model, self.structured_output)
            if fmt is not None:
                request["response_format"] = fmt
        return request

    def _retrying(self) -> AsyncRetrying:
        policy = self.retry
        return AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts) | stop_before_delay(policy.total_timeout_s),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        policy = self.retry
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, policy.max_wait_s)
        backoff = min(policy.max_wait_s, policy.initial_wait_s * 2 ** (state.attempt_number - 1))
        return backoff * random.uniform(0.5, 1.0)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, _Transient) else repr(exc)
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "LLM call failed (%s); attempt %d of %d, retrying in %.2fs",
            reason, state.attempt_number, self.retry.max_attempts, wait,
        )  # fmt: skip

    async def _send(self, request: dict[str, Any], timeout_s: float) -> Any:
        async with self._slots:
            try:
                # `chat.completions.create` would first walk the whole request through the SDK's
                # type-driven transform (~10 ms for a 40-message history, more as it grows): an
                # identity for the plain JSON built here (tests/test_perf_paths.py checks that),
                # so post the body as `create` would, without the walk.
                # cast_to=object: the JSON as parsed; the SDK's ChatCompletion construction
                # (~0.5 ms a call) would only be read back field by field in _completion.
                body = await self._sdk.post(
                    "/chat/completions", body=request, cast_to=object,
                    options={"timeout": timeout_s, "security": {"bearer_auth": True}},
                )  # fmt: skip
            except openai.APIConnectionError as exc:  # APITimeoutError included: see _transport_failure
                raise _Transient(_transport_failure(exc, timeout_s)) from exc
            except openai.APIStatusError as exc:
                raise self._classify(exc, request) from exc
            except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
                raise _Transient(f"malformed response body: {exc.__class__.__name__}") from exc
        if not isinstance(body, dict):
            raise _Transient(f"malformed response body: {type(body).__name__}, not a JSON object")
        return body

    def _classify(self, exc: openai.APIStatusError, request: dict[str, Any]) -> Exception:
        status, code, message = exc.status_code, _error_code(exc), _server_message(exc)
        if status == 429 and code == "insufficient_quota":
            return QuotaExceeded(
                f"quota exhausted at {self._where()} (HTTP 429 insufficient_quota: {message}); retrying will "
                "not help: add credit or raise the limit with the provider, or use another key/model"
            )
        if status in _RETRYABLE_STATUS or status >= 500:
            return _Transient(f"HTTP {status}: {message}", parse_retry_after(exc.response.headers))
        hint = self._hint(status, request)
        return RequestRejected(f"{self._where()} rejected the request (HTTP {status}: {message}); {hint}", status)

    def _hint(self, status: int, request: dict[str, Any]) -> str:
        if status == 401:
            return f"set the environment variable {self.api_key_env} to a valid key"
        if status == 403:
            return f"the key in {self.api_key_env} has no access to model {request['model']!r}"
        if status == 404:
            return f"check the model name {request['model']!r} and that base_url ends in /v1"
        if "response_format" in request:
            return (
                f"check the model name and max_tokens; if this server lacks structured_output "
                f"{self.structured_output!r}, try 'json_object_schema' or 'prompt'"
            )
        return "check the model name, max_tokens and the messages"

    def _exhausted(self, attempts: int, exc: _Transient) -> RetriesExhausted:
        hint = ""
        if exc.reason.startswith("HTTP 5") and self.structured_output == "json_schema":
            hint = (
                " (llama.cpp answers response_format json_schema with HTTP 500: "
                "set structured_output: json_object_schema)"
            )
        return RetriesExhausted(
            f"{self._where()} kept failing: {exc.reason}; gave up after {attempts} attempt(s){hint}. "
            "Raise max_attempts / total_timeout_s, lower concurrency, or try again later",
            attempts=attempts,
            reason=exc.reason,
        )

    def _where(self) -> str:
        return self.base_url or "api.openai.com"

    async def aclose(self) -> None:
        await self._sdk.close()

    async def __aenter__(self) -> OpenAIChatClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _transport_failure(exc: openai.APIConnectionError, timeout_s: float) -> str:
    """What went wrong on the wire, from the innermost cause: the aiohttp transport reports a
    dropped connection as a (connect) timeout, so the SDK's exception class alone would misname it."""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, TimeoutError) or (root is exc and isinstance(exc, openai.APITimeoutError)):
        return f"timed out after {timeout_s:g}s"
    return f"connection error: {redact(f'{root.__class__.__name__}: {root}')[:200]}"


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=raw.get("prompt_tokens") or 0,
        completion_tokens=raw.get("completion_tokens") or 0,
        cached_tokens=cached or 0,
    )


def _completion(
    body: dict[str, Any], response_model: type[BaseModel] | None, latency: float, attempts: int
) -> Completion:
    choices = body.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise LLMError("the server answered with no choices; check that base_url points at a chat-completions API")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise LLMError(
            f"the server's message content is {type(content).__name__}, not text; is this a chat-completions API?"
        )
    text = content or ""
    return Completion(
        text=text,
        parsed=try_parse(text, response_model),
        usage=_usage(body.get("usage")),
        finish_reason=choice.get("finish_reason"),
        model=body.get("model") or "",
        system_fingerprint=body.get("system_fingerprint"),
        latency_s=latency,
        attempts=attempts,
        refusal=message.get("refusal"),
    )


def build_client(settings: LLMSettings) -> ChatClient:
    """The client stack the settings describe: replay needs no key and builds no network
    client; live returns the OpenAI client; record/auto wrap it in a RecordingClient."""
    if settings.mode == "replay":
        assert settings.recordings_dir is not None  # enforced by LLMSettings
        return RecordingClient(None, settings.recordings_dir, "replay")
    inner = OpenAIChatClient.from_settings(settings)
    if settings.mode == "live":
        return inner
    assert settings.recordings_dir is not None
    return RecordingClient(inner, settings.recordings_dir, settings.mode)
