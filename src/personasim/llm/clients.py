"""From settings to a ChatClient: the transport, the call wrapper around it, the run's call store and
record/replay.

client = build_client(settings)   # replay: recordings only; live: wrapper; record/auto: both
client = build_client(settings, calls_dir=run_dir / "calls", check_models=True)   # as a run builds them

`check_models`: before a model's first call, ask the endpoint which models it lists (`GET /models`).
A run asks for it unless its command runs inside `model_checks(False)` (the `--no-model-check` flag).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from personasim.llm.call_store import CallStore
from personasim.llm.call_wrapper import CallWrapper, RetryPolicy
from personasim.llm.replay import RecordingClient
from personasim.llm.settings import LLMSettings
from personasim.llm.types import ChatClient

_MODEL_CHECK: ContextVar[bool] = ContextVar("personasim_model_check", default=True)


@contextmanager
def model_checks(enabled: bool) -> Iterator[None]:
    """Runs started inside the block check (or not) that the endpoint lists their models."""
    token = _MODEL_CHECK.set(enabled)
    try:
        yield
    finally:
        _MODEL_CHECK.reset(token)


def model_checks_enabled() -> bool:
    return _MODEL_CHECK.get()


def live_client(settings: LLMSettings, *, check_models: bool = False, flag_prefix: str = "--") -> CallWrapper:
    """The network client the settings name: the OpenAI-compatible transport behind the wrapper.
    `flag_prefix`: whose flags its messages name (`--judge-` for a judge of its own)."""
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
        check_models=check_models,
        flag_prefix=flag_prefix,
    )


async def check_model_now(client: ChatClient, model: str, timeout_s: float, flag: str) -> None:
    """The model check at once (a run does it before its folder is made), for a client whose
    network client (beneath any recordings and call store) checks models; otherwise nothing.
    `flag`: the option that names the model (`--model`, `--judge-model`)."""
    node: object = client
    while node is not None and not isinstance(node, CallWrapper):
        node = getattr(node, "inner", None)
    if isinstance(node, CallWrapper) and node.check_models:
        await node.check_model(model, timeout_s, flag)


def build_client(
    settings: LLMSettings,
    *,
    calls_dir: Path | None = None,
    replay_calls: bool = True,
    check_models: bool = False,
    flag_prefix: str = "--",
) -> ChatClient:
    """The client stack the settings describe: replay needs no key and builds no network
    client; live returns the wrapped transport; record/auto wrap it in a RecordingClient. With
    `calls_dir`, the run's call store sits on the network client (beneath any recordings), so every
    call that completes live is kept there and a resumed unit replays it (`replay_calls=False`: keep
    only; replay mode makes no live call, so it has none)."""
    if settings.mode == "replay":
        assert settings.recordings_dir is not None  # enforced by LLMSettings
        return RecordingClient(None, settings.recordings_dir, "replay")
    inner: ChatClient = live_client(settings, check_models=check_models, flag_prefix=flag_prefix)
    if calls_dir is not None:
        inner = CallStore(inner, calls_dir, replay=replay_calls)
    if settings.mode == "live":
        return inner
    assert settings.recordings_dir is not None
    return RecordingClient(inner, settings.recordings_dir, settings.mode)
