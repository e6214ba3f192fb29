"""Retries and typed failures against the loopback fake server, with tiny backoff settings."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from clients import openai_client
from doubles.openai_server import FakeOpenAIServer, Reply
from personasim.llm.call_wrapper import CallWrapper, RetryPolicy
from personasim.llm.openai_transport import parse_retry_after, redact
from personasim.llm.types import ChatOptions, QuotaExceeded, RequestRejected, RetriesExhausted

MSGS = [{"role": "user", "content": "hello"}]
KEY = "sk-test-retrykey-0123456789"


def client_for(server: FakeOpenAIServer, max_attempts: int = 3, **kw) -> CallWrapper:
    policy = RetryPolicy(max_attempts=max_attempts, initial_wait_s=0.001, max_wait_s=kw.pop("max_wait_s", 0.02),
                         total_timeout_s=kw.pop("total_timeout_s", 10.0))  # fmt: skip
    return openai_client(api_key=KEY, base_url=server.base_url, retry=policy, **kw)


@pytest.mark.parametrize(
    "fault",
    [
        Reply.rate_limited(),
        Reply.server_error(500),
        Reply.server_error(503),
        Reply.error(408, "request timeout"),
        Reply.error(409, "conflict"),
        Reply.drop_connection(),
        Reply.timeout(3.0),
        Reply(raw_body=b"<html>proxy error</html>"),
    ],
    ids=["429", "500", "503", "408", "409", "dropped", "timeout", "garbled-body"],
)
async def test_transient_fault_is_retried_once(openai_server: FakeOpenAIServer, fault: Reply) -> None:
    openai_server.enqueue(fault, Reply.ok("recovered"))
    async with client_for(openai_server) as client:
        c = await client.complete(MSGS, ChatOptions(model="m", timeout_s=0.4))
    assert c.text == "recovered" and c.attempts == 2
    assert len(openai_server.chat_requests) == 2


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Reply.drop_connection(), "connection error: ServerDisconnectedError"),
        (Reply.timeout(3.0), "timed out after 0.4s"),
    ],
    ids=["dropped", "timeout"],
)
async def test_exhausted_retries_name_the_wire_failure(
    openai_server: FakeOpenAIServer, fault: Reply, reason: str
) -> None:
    # The aiohttp transport reports a dropped connection as a timeout; the message must not.
    openai_server.default = fault
    async with client_for(openai_server, max_attempts=2) as client:
        with pytest.raises(RetriesExhausted, match=reason):
            await client.complete(MSGS, ChatOptions(model="m", timeout_s=0.4))


async def test_persistent_fault_exhausts_attempts(openai_server: FakeOpenAIServer) -> None:
    openai_server.default = Reply.server_error(503)
    async with client_for(openai_server, max_attempts=4) as client:
        with pytest.raises(RetriesExhausted) as info:
            await client.complete(MSGS, ChatOptions(model="m"))
    assert info.value.attempts == 4 and len(openai_server.chat_requests) == 4
    assert "503" in str(info.value) and "4 attempt" in str(info.value)


async def test_total_timeout_bounds_retries(openai_server: FakeOpenAIServer) -> None:
    openai_server.default = Reply.rate_limited(retry_after=0.2)
    async with client_for(openai_server, max_attempts=50, max_wait_s=1.0, total_timeout_s=0.5) as client:
        started = time.monotonic()
        with pytest.raises(RetriesExhausted) as info:
            await client.complete(MSGS, ChatOptions(model="m"))
    assert 2 <= info.value.attempts <= 3 and len(openai_server.chat_requests) == info.value.attempts
    assert time.monotonic() - started < 1.5  # no sleep would have run past the total budget


async def test_retry_after_is_honoured(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.rate_limited(retry_after=0.3), Reply.ok("after the wait"))
    async with client_for(openai_server, max_wait_s=5.0) as client:
        c = await client.complete(MSGS, ChatOptions(model="m"))
    first, second = openai_server.chat_requests
    assert c.attempts == 2 and 0.28 <= second.received_at - first.received_at < 2.0


async def test_retry_after_ms_and_cap(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.rate_limited(retry_after=120), Reply.ok("capped"))  # capped to max_wait_s
    async with client_for(openai_server, max_wait_s=0.05) as client:
        started = time.monotonic()
        assert (await client.complete(MSGS, ChatOptions(model="m"))).text == "capped"
    assert time.monotonic() - started < 2.0


def test_parse_retry_after_forms() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "1.5", "retry-after-ms": "250"}) == 0.25
    assert (
        parse_retry_after({"retry-after": format_datetime(now + timedelta(seconds=30), usegmt=True)}, now=now) == 30.0
    )
    assert parse_retry_after({"retry-after": format_datetime(now - timedelta(seconds=30), usegmt=True)}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None


async def test_insufficient_quota_fails_fast(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.quota_exceeded(), Reply.ok("never reached"))
    async with client_for(openai_server, max_attempts=5) as client:
        with pytest.raises(QuotaExceeded, match="retrying will not help"):
            await client.complete(MSGS, ChatOptions(model="m"))
    assert len(openai_server.chat_requests) == 1


@pytest.mark.parametrize(
    ("status", "hint"),
    [(400, "check the model name"), (401, "OPENAI_API_KEY"), (403, "no access"), (404, "ends in /v1"), (422, "check")],
)
async def test_other_4xx_fail_at_once_with_a_hint(openai_server: FakeOpenAIServer, status: int, hint: str) -> None:
    openai_server.enqueue(Reply.error(status, "nope"), Reply.ok("never reached"))
    async with client_for(openai_server, max_attempts=5) as client:
        with pytest.raises(RequestRejected, match=hint) as info:
            await client.complete(MSGS, ChatOptions(model="m"))
    assert info.value.status == status and f"HTTP {status}" in str(info.value)
    assert len(openai_server.chat_requests) == 1


async def test_retries_logged_at_warning_without_secrets(openai_server: FakeOpenAIServer, caplog) -> None:
    openai_server.enqueue(Reply.rate_limited(), Reply.server_error(502), Reply.ok("fine"))
    caplog.set_level(logging.WARNING, logger="personasim.llm.call_wrapper")
    async with client_for(openai_server) as client:
        await client.complete(MSGS, ChatOptions(model="m"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "personasim.llm.call_wrapper"]
    assert len(warnings) == 2
    assert "HTTP 429" in warnings[0].getMessage() and "HTTP 502" in warnings[1].getMessage()
    assert KEY not in caplog.text and "Bearer" not in caplog.text and "authorization" not in caplog.text.lower()


async def test_llama_cpp_json_schema_500_gets_a_hint() -> None:
    with FakeOpenAIServer(reject_response_formats={"json_schema"}) as server:
        from pydantic import BaseModel

        class Out(BaseModel):
            a: int

        async with client_for(server, max_attempts=2, structured_output="json_schema") as client:
            with pytest.raises(RetriesExhausted, match="json_object_schema"):
                await client.complete(MSGS, ChatOptions(model="m"), Out)
        assert len(server.chat_requests) == 2


def test_redact_masks_keys_and_bearer_tokens() -> None:
    text = redact("Incorrect API key provided: sk-proj-abcdef123456. header Bearer abc.def")
    assert "abcdef123456" not in text and "abc.def" not in text and "sk-***" in text and "Bearer ***" in text
