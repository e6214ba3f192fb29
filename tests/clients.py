"""The real client stack (CallWrapper over OpenAITransport) built in one call, for tests that
point it at a loopback test double."""

from __future__ import annotations

from personasim.llm.call_wrapper import CallWrapper, RetryPolicy
from personasim.llm.openai_transport import OpenAITransport
from personasim.llm.structured import StructuredMode


def openai_client(
    *,
    api_key: str | None,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    structured_output: StructuredMode = "json_schema",
    concurrency: int = 4,
    retry: RetryPolicy | None = None,
    timeout_s: float = 120.0,
    max_tokens_param: str = "max_tokens",
) -> CallWrapper:
    transport = OpenAITransport(api_key=api_key, base_url=base_url, api_key_env=api_key_env, timeout_s=timeout_s)
    return CallWrapper(
        transport,
        structured_output=structured_output,
        max_tokens_param=max_tokens_param,
        concurrency=concurrency,
        retry=retry,
    )
