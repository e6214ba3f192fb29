"""The OpenAI-compatible client stack (CallWrapper over OpenAITransport) against the loopback fake server with the real openai SDK; settings; costs."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from clients import openai_client
from doubles.openai_server import FakeOpenAIServer, Reply
from personasim.errors import InputError
from personasim.llm.call_wrapper import CallWrapper, RetryPolicy
from personasim.llm.clients import build_client
from personasim.llm.costs import PriceTable, format_cost
from personasim.llm.replay import RecordingClient
from personasim.llm.settings import LLMSettings
from personasim.llm.structured import needs_instructions
from personasim.llm.types import ChatOptions, LLMError
from personasim.records.usage import Usage
from personasim.run.config import Given, resolve_run

FAST = RetryPolicy(max_attempts=3, initial_wait_s=0.001, max_wait_s=0.01, total_timeout_s=10)
MSGS = [{"role": "system", "content": "You are a learner."}, {"role": "user", "content": "Read step 1."}]


class Score(BaseModel):
    rationale: str = Field(max_length=200)
    score: int = Field(ge=1, le=5)


def client_for(server: FakeOpenAIServer, **kw) -> CallWrapper:
    kw.setdefault("retry", FAST)
    return openai_client(api_key="sk-test-key", base_url=server.base_url, **kw)


async def test_plain_completion_fields(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.ok("I read it.", prompt_tokens=40, completion_tokens=4, cached_tokens=32))
    async with client_for(openai_server) as client:
        c = await client.complete(MSGS, ChatOptions(model="fake-model", temperature=0.3, seed=7, max_tokens=99))
    assert (c.text, c.finish_reason, c.model, c.system_fingerprint) == ("I read it.", "stop", "fake-model", "fp_fake")
    assert c.usage == Usage(prompt_tokens=40, completion_tokens=4, cached_tokens=32)
    assert c.attempts == 1 and not c.from_recording and c.latency_s > 0 and c.parsed is None
    body = openai_server.chat_requests[0].body
    assert body["messages"] == MSGS and body["model"] == "fake-model"
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.3, 7, 99)
    assert "response_format" not in body and "sample_index" not in body


async def test_missing_usage_details_give_zero_cached(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.ok("x", cached_tokens=None))
    async with client_for(openai_server) as client:
        c = await client.complete(MSGS, ChatOptions(model="m"))
    assert c.usage.cached_tokens == 0 and c.usage.prompt_tokens == 10


@pytest.mark.parametrize(
    ("body", "message"),
    [(b'{"id": "x", "choices": []}', "no choices"), (b'{"choices": [{"message": {"content": [1]}}]}', "not text")],
    ids=["no-choices", "content-not-text"],
)
async def test_a_body_that_is_not_a_chat_completion_is_a_clear_error(
    openai_server: FakeOpenAIServer, body: bytes, message: str
) -> None:
    openai_server.enqueue(Reply(raw_body=body, headers={"Content-Type": "application/json"}))
    async with client_for(openai_server) as client:
        with pytest.raises(LLMError, match=message):
            await client.complete(MSGS, ChatOptions(model="m"))
    assert len(openai_server.chat_requests) == 1  # a wrong API is not retried


async def test_a_json_body_that_is_not_an_object_is_retried(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply(raw_body=b"[1, 2]", headers={"Content-Type": "application/json"}), Reply.ok("fine"))
    async with client_for(openai_server) as client:
        c = await client.complete(MSGS, ChatOptions(model="m"))
    assert c.text == "fine" and c.attempts == 2


async def test_max_completion_tokens_param_and_no_seed(openai_server: FakeOpenAIServer) -> None:
    async with client_for(openai_server, max_tokens_param="max_completion_tokens") as client:
        await client.complete(MSGS, ChatOptions(model="m", max_tokens=55, seed=None))
    body = openai_server.chat_requests[0].body
    assert body["max_completion_tokens"] == 55 and "max_tokens" not in body and "seed" not in body


async def test_json_schema_mode_sends_strict_schema(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.json({"rationale": "clear", "score": 4}))
    async with client_for(openai_server, structured_output="json_schema") as client:
        c = await client.complete(MSGS, ChatOptions(model="m"), Score)
    assert c.parsed == Score(rationale="clear", score=4)
    fmt = openai_server.chat_requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and schema["required"] == ["rationale", "score"]
    assert openai_server.chat_requests[0].body["messages"] == MSGS


async def test_json_object_schema_mode_for_llama_cpp(openai_server: FakeOpenAIServer) -> None:
    async with client_for(openai_server, structured_output="json_object_schema") as client:
        await client.complete(MSGS, ChatOptions(model="m"), Score)
    fmt = openai_server.chat_requests[0].body["response_format"]
    assert fmt == {"type": "json_object", "schema": Score.model_json_schema()}


@pytest.mark.parametrize("mode", ["json_object", "prompt"])
async def test_instruction_modes_put_schema_in_last_message(openai_server: FakeOpenAIServer, mode: str) -> None:
    original = [dict(m) for m in MSGS]
    async with client_for(openai_server, structured_output=mode) as client:
        await client.complete(MSGS, ChatOptions(model="m"), Score)
    body = openai_server.chat_requests[0].body
    assert needs_instructions(mode)
    assert body["messages"][0] == MSGS[0]
    assert body["messages"][-1]["content"].startswith("Read step 1.") and '"score"' in body["messages"][-1]["content"]
    assert "JSON" in body["messages"][-1]["content"]
    assert body.get("response_format") == ({"type": "json_object"} if mode == "json_object" else None)
    assert original == MSGS  # the caller's messages are never mutated


async def test_key_sent_only_in_authorization_header(openai_server: FakeOpenAIServer) -> None:
    async with client_for(openai_server) as client:
        await client.complete(MSGS, ChatOptions(model="m"))
    req = openai_server.chat_requests[0]
    headers = {k.lower(): v for k, v in req.headers.items()}
    assert headers["authorization"] == "Bearer sk-test-key"
    assert not [k for k, v in headers.items() if "sk-test-key" in v and k != "authorization"]
    assert b"sk-test-key" not in req.raw


async def test_keyless_local_server_gets_placeholder(openai_server: FakeOpenAIServer, monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_ENV", raising=False)
    settings = LLMSettings(base_url=openai_server.base_url, model="m", api_key_env="NO_SUCH_KEY_ENV")
    client = build_client(settings)
    assert isinstance(client, CallWrapper)
    async with aclosing(client):
        assert (await client.complete(MSGS, settings.chat_options())).text == "ok"
    assert openai_server.chat_requests[0].headers["authorization"].startswith("Bearer sk-no-key")


def test_no_key_and_no_base_url_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_ENV", raising=False)
    with pytest.raises(LLMError, match="NO_SUCH_KEY_ENV"):
        build_client(LLMSettings(model="m", api_key_env="NO_SUCH_KEY_ENV"))


def test_build_client_composes_per_mode(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    replay = build_client(LLMSettings(model="m", mode="replay", recordings_dir=tmp_path))
    assert isinstance(replay, RecordingClient) and replay.inner is None  # no key, no network client
    auto = build_client(LLMSettings(model="m", mode="auto", recordings_dir=tmp_path, base_url="http://127.0.0.1:9/v1"))
    assert isinstance(auto, RecordingClient) and isinstance(auto.inner, CallWrapper)
    asyncio.run(auto.aclose())


async def test_semaphore_bounds_calls_in_flight(openai_server: FakeOpenAIServer) -> None:
    openai_server.default = Reply.ok("slow", latency_s=0.15)
    async with client_for(openai_server, concurrency=2) as client:
        results = await asyncio.gather(*(client.complete(MSGS, ChatOptions(model="m")) for _ in range(6)))
    assert len(results) == 6 and len(openai_server.chat_requests) == 6
    assert openai_server.max_in_flight == 2


# --------------------------------------------------------------------------- settings


def resolved(tmp_path: Path, text: str | None = None, **learner) -> LLMSettings:
    path = None
    if text is not None:
        path = tmp_path / "llm.yaml"
        path.write_text(text)
    given = Given(learner=learner, config_file=path)
    return resolve_run(given, run_id="r", out_dir=tmp_path).learner_settings()


def test_settings_from_yaml_with_overrides(tmp_path: Path) -> None:
    text = "llm:\n  model: qwen\n  base_url: http://127.0.0.1:8080/v1\n  structured_output: json_object_schema\n"
    s = resolved(tmp_path, text, model="other", concurrency=None, temperature=0.5)
    assert (s.model, s.base_url, s.structured_output, s.temperature, s.concurrency) == (
        "other", "http://127.0.0.1:8080/v1", "json_object_schema", 0.5, 4
    )  # fmt: skip
    assert s.chat_options(sample_index=3) == ChatOptions(
        model="other", temperature=0.5, seed=0, max_tokens=1024, sample_index=3
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: m\napi_key: sk-x\n", "api_key"),
        ("model: m\nmode: replay\n", "recordings_dir"),
        ("model: [\n", "invalid YAML"),
        ("model: m\njudge:\n  mode: replay\n", "judge: mode is set for the whole run"),
        ("model: m\njudge:\n  modle: x\n", "judge: unknown setting modle"),
    ],
)
def test_bad_settings_files_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        resolved(tmp_path, text)
    assert str(tmp_path / "llm.yaml") in str(info.value)


def test_flags_over_the_config_file(tmp_path: Path) -> None:
    s = resolved(tmp_path, "model: from-file\nseed: 3\n", mode="auto", recordings_dir=tmp_path, max_tokens=50)
    assert (s.model, s.seed, s.mode, s.recordings_dir, s.max_tokens) == ("from-file", 3, "auto", tmp_path, 50)
    with pytest.raises(InputError, match="mode"):
        resolved(tmp_path, model="m", mode="sometimes")
    with pytest.raises(InputError, match="model"):
        resolved(tmp_path)


def test_the_judge_defaults_to_the_learner_and_sets_only_what_differs(tmp_path: Path) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text("model: small\ntemperature: 0.7\njudge:\n  model: big\n  base_url: http://127.0.0.1:9/v1\n")
    given = Given(judge={"temperature": 0.0}, config_file=path)
    roles = resolve_run(given, run_id="r", out_dir=tmp_path).roles()
    assert (roles.learner.model, roles.learner.temperature, roles.learner.base_url) == ("small", 0.7, None)
    assert (roles.judge.model, roles.judge.temperature, roles.judge.base_url) == ("big", 0.0, "http://127.0.0.1:9/v1")
    assert not roles.shared_client
    same = resolve_run(Given(learner={"model": "m"}), run_id="r", out_dir=tmp_path).roles()
    assert same.judge == same.learner and same.shared_client


# --------------------------------------------------------------------------- usage and cost


def test_usage_adds() -> None:
    total = Usage(prompt_tokens=10, completion_tokens=2, cached_tokens=4) + Usage(prompt_tokens=5, completion_tokens=1)
    assert total == Usage(prompt_tokens=15, completion_tokens=3, cached_tokens=4) and total.total_tokens == 18


def test_cost_known_prefix_cached_and_unknown(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.6}\nlocal: {input: 0, output: 0}\n")
    table = PriceTable.from_file(path)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=400_000)
    assert table.cost("gpt-4o-mini", usage) == pytest.approx(0.6 * 0.15 + 0.4 * 0.075 + 0.6)
    assert table.cost("gpt-4o-mini-2024-07-18", usage) == table.cost("gpt-4o-mini", usage)
    assert table.cost("local", usage) == 0.0
    assert table.cost("mystery-model", usage) is None
    assert format_cost(table.cost("mystery-model", usage)) == "unknown"


def test_bad_price_table_is_an_input_error() -> None:
    with pytest.raises(InputError, match="gpt"):
        PriceTable.from_mapping({"gpt": {"input": -1, "output": 0}})
