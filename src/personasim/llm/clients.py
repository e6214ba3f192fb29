"""From settings to a ChatClient: the transport, the call wrapper around it, and record/replay.

client = build_client(settings)   # replay: recordings only; live: wrapper; record/auto: both
"""

from __future__ import annotations

import os

from personasim.llm.call_wrapper import CallWrapper, RetryPolicy
from personasim.llm.replay import RecordingClient
from personasim.llm.settings import LLMSettings
from personasim.llm.types import ChatClient


def live_client(settings: LLMSettings) -> CallWrapper:
    """The network client the settings name: the OpenAI-compatible transport behind the wrapper."""
    from personasim.llm.openai_transport import OpenAITransport  # openai loads only when a call is made

    transport = OpenAITransport(
        api_key=os.environ.get(settings.api_key_env),
        base_url=settings.base_url,
        api_key_env=settings.api_key_env,
        timeout_s=settings.timeout_s,
    )
    return CallWrapper(
        transport,
        structured_output=settings.structured_output,
        max_tokens_param=settings.max_tokens_param,
        concurrency=settings.concurrency,
        retry=RetryPolicy(
            settings.max_attempts, settings.backoff_initial_s, settings.max_wait_s, settings.total_timeout_s
        ),
    )


def build_client(settings: LLMSettings) -> ChatClient:
    """The client stack the settings describe: replay needs no key and builds no network
    client; live returns the wrapped transport; record/auto wrap it in a RecordingClient."""
    if settings.mode == "replay":
        assert settings.recordings_dir is not None  # enforced by LLMSettings
        return RecordingClient(None, settings.recordings_dir, "replay")
    inner = live_client(settings)
    if settings.mode == "live":
        return inner
    assert settings.recordings_dir is not None
    return RecordingClient(inner, settings.recordings_dir, settings.mode)
