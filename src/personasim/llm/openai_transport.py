"""The transport to any OpenAI-compatible chat-completions server, through one shared
`openai.AsyncOpenAI` (SDK retries off: `CallWrapper` retries). It sends a body and sorts failures:
`TransientFailure` for 429 / 408 / 409 / 5xx / timeouts / dropped connections / garbled bodies
(marked `unreachable` for a refused connection or a failed DNS lookup), `QuotaExceeded` and
`RequestRejected` (with what to do) for the rest. `list_models` reads `GET /models` for the model
check. The API key is handed to the SDK and kept nowhere else. With openai_batch.py (the Batch API
engine), the only modules that import `openai`."""

from __future__ import annotations

import email.utils
import json
import re
import socket
from datetime import UTC, datetime
from typing import Any

import openai

from personasim.llm.call_wrapper import TransientFailure
from personasim.llm.structured import StructuredMode
from personasim.llm.types import LLMError, QuotaExceeded, RequestRejected

KEYLESS_PLACEHOLDER = "sk-no-key-required"
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_NO_SERVER = (ConnectionRefusedError, socket.gaierror)  # nothing listens there; the name does not resolve
_SECRETISH = re.compile(r"(Bearer\s+)\S+|\bsk-[A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)


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


class OpenAITransport:
    """Posts chat-completions bodies to one OpenAI-compatible server."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
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
        self.where = base_url or "api.openai.com"

    async def send(self, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        try:
            # `chat.completions.create` would first walk the whole request through the SDK's
            # type-driven transform (~10 ms for a 40-message history, more as it grows): an
            # identity for the plain JSON built by chat_format (tests/test_perf_paths.py checks
            # that), so post the body as `create` would, without the walk.
            # cast_to=object: the JSON as parsed; the SDK's ChatCompletion construction
            # (~0.5 ms a call) would only be read back field by field in parse_completion.
            answer = await self._sdk.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                options={"timeout": timeout_s, "security": {"bearer_auth": True}},
            )
        except openai.APIConnectionError as exc:  # APITimeoutError included: see _transport_failure
            raise TransientFailure(_transport_failure(exc, timeout_s), unreachable=unreachable(exc)) from exc
        except openai.APIStatusError as exc:
            raise self._classify(exc, body) from exc
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            raise TransientFailure(f"malformed response body: {exc.__class__.__name__}") from exc
        if not isinstance(answer, dict):
            raise TransientFailure(f"malformed response body: {type(answer).__name__}, not a JSON object")
        return answer

    async def list_models(self, timeout_s: float) -> list[str] | None:
        """The model ids `GET /models` lists; None when the endpoint has no such listing (an error
        status, a body that is not a model list, an empty list, a timeout). A refused connection or a
        failed DNS lookup raises, as `send` does."""
        try:
            page = await self._sdk.models.list(timeout=timeout_s)
        except openai.APIConnectionError as exc:
            if unreachable(exc):
                raise TransientFailure(_transport_failure(exc, timeout_s), unreachable=True) from exc
            return None
        except (openai.APIError, ValueError, TypeError, KeyError, AttributeError):
            return None
        ids = [model.id for model in getattr(page, "data", None) or [] if isinstance(getattr(model, "id", None), str)]
        return ids or None

    def _classify(self, exc: openai.APIStatusError, body: dict[str, Any]) -> Exception:
        status, code, message = exc.status_code, _error_code(exc), _server_message(exc)
        if status == 429 and code == "insufficient_quota":
            return QuotaExceeded(
                f"quota exhausted at {self.where} (HTTP 429 insufficient_quota: {message}); retrying will "
                "not help: add credit or raise the limit with the provider, or use another key/model"
            )
        if status in _RETRYABLE_STATUS or status >= 500:
            return TransientFailure(f"HTTP {status}: {message}", parse_retry_after(exc.response.headers))
        hint = self._hint(status, body)
        return RequestRejected(f"{self.where} rejected the request (HTTP {status}: {message}); {hint}", status)

    def _hint(self, status: int, body: dict[str, Any]) -> str:
        if status == 401:
            return f"set the environment variable {self.api_key_env} to a valid key"
        if status == 403:
            return f"the key in {self.api_key_env} has no access to model {body['model']!r}"
        if status == 404:
            return f"check the model name {body['model']!r} and that base_url ends in /v1"
        if "response_format" in body:
            kind = body["response_format"].get("type", "?")
            return (
                f"check the model name and max_tokens; if this server lacks response_format {kind!r}, "
                "try structured_output 'json_object_schema' or 'prompt'"
            )
        return "check the model name, max_tokens and the messages"

    def exhausted_hint(self, reason: str, structured_output: StructuredMode) -> str:
        if reason.startswith("HTTP 5") and structured_output == "json_schema":
            return (
                " (llama.cpp answers response_format json_schema with HTTP 500: "
                "set structured_output: json_object_schema)"
            )
        return ""

    async def aclose(self) -> None:
        await self._sdk.close()


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(exc.code or body.get("type") or "")


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message") if isinstance(body.get("message"), str) else exc.message
    return redact(str(message))[:300]


def unreachable(exc: BaseException) -> bool:
    """A refused connection or a failed DNS lookup anywhere in the cause chain: no server answered
    at that address (the aiohttp transport reports both as a connect timeout, so the SDK's class
    alone would not tell)."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, _NO_SERVER) or type(node).__name__ == "ClientConnectorDNSError":  # aiohttp's DNS error
            return True
        node = node.__cause__ or node.__context__
    return False


def _transport_failure(exc: openai.APIConnectionError, timeout_s: float) -> str:
    """What went wrong on the wire, from the innermost cause: the aiohttp transport reports a
    dropped connection as a (connect) timeout, so the SDK's exception class alone would misname it."""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if isinstance(root, TimeoutError) or (root is exc and isinstance(exc, openai.APITimeoutError)):
        return f"timed out after {timeout_s:g}s"
    return f"connection error: {redact(f'{root.__class__.__name__}: {root}')[:200]}"
