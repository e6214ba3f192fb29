"""Structured outputs: strict schemas, tolerant parsing, the re-ask loop, typed refusals/truncation."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from clients import openai_client
from doubles.openai_server import FakeOpenAIServer, Reply
from personasim.llm.call_wrapper import CallWrapper, RetryPolicy
from personasim.llm.structured import OutputInvalid, complete_structured, parse_structured, strict_schema
from personasim.llm.types import ChatOptions, RefusalError, StructuredOutputError, TruncatedError
from personasim.records.usage import Usage

MSGS = [{"role": "system", "content": "Judge the answer."}, {"role": "user", "content": "Transcript ..."}]
OPTS = ChatOptions(model="judge", max_tokens=300)


class Evidence(BaseModel):
    quote: str = Field(description="a quote from the transcript")
    turn: int | None = None


class Grade(BaseModel):
    rationale: str = Field(max_length=500)
    evidence: list[Evidence] = Field(min_length=1)
    main: Evidence = Field(description="the strongest evidence")
    score: Literal[1, 2, 3, 4, 5]


GOOD = {"rationale": "r", "evidence": [{"quote": "q", "turn": 2}], "main": {"quote": "q"}, "score": 4}


def client_for(server: FakeOpenAIServer, mode: str = "json_schema") -> CallWrapper:
    retry = RetryPolicy(max_attempts=2, initial_wait_s=0.001, max_wait_s=0.01, total_timeout_s=5)
    return openai_client(api_key="sk-test", base_url=server.base_url, structured_output=mode, retry=retry)


def _objects(node):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_strict_schema_closes_every_object_and_requires_every_field() -> None:
    schema = strict_schema(Grade)
    objects = list(_objects(schema))
    assert len(objects) >= 3  # Grade, the Evidence $def, the inlined `main` (a $ref with a description)
    for obj in objects:
        assert obj["additionalProperties"] is False and obj["required"] == list(obj["properties"])
    main = schema["properties"]["main"]
    assert "$ref" not in main and main["description"] == "the strongest evidence"
    assert "default" not in schema["$defs"]["Evidence"]["properties"]["turn"]
    assert schema["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"rationale": "r", "evidence": [{"quote": "q"}], "main": {"quote": "q"}, "score": 3}\n```',
        '{"rationale": "line one\nline two", "evidence": [{"quote": "q"}], "main": {"quote": "q"}, "score": 3}',
        'Here you go: {"rationale": "r", "evidence": [{"quote": "q"}], "main": {"quote": "q"}, "score": 3} Done.',
    ],
    ids=["fenced", "raw-newline", "prose-around"],
)
def test_parse_tolerates_fences_raw_newlines_and_prose(text: str) -> None:
    assert parse_structured(text, Grade).score == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json at all", "not valid JSON"),
        ('{"rationale": "r", "evidence": [], "main": {"quote": "q"}, "score": 3}', "evidence"),
        ('{"rationale": "r", "evidence": [{"quote": "q"}], "main": {"quote": "q"}, "score": 1052}', "score"),
    ],
    ids=["not-json", "empty-list", "out-of-range"],
)
def test_parse_rejects_with_a_useful_message(text: str, message: str) -> None:
    with pytest.raises(OutputInvalid, match=message):
        parse_structured(text, Grade)


async def test_reask_fixes_a_first_invalid_answer(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.ok('{"rationale": "r", "score": 9'), Reply.json(GOOD, cached_tokens=8))
    original = [dict(m) for m in MSGS]
    async with client_for(openai_server) as client:
        c = await complete_structured(client, MSGS, OPTS, Grade)
    assert c.parsed == Grade.model_validate(GOOD) and c.reasks == 1 and c.attempts == 2
    assert c.usage == Usage(prompt_tokens=20, completion_tokens=10, cached_tokens=8)
    second = openai_server.chat_requests[1].body["messages"]
    assert second[: len(MSGS)] == MSGS and second[-2] == {
        "role": "assistant",
        "content": '{"rationale": "r", "score": 9',
    }
    assert "not valid JSON" in second[-1]["content"] and second[-1]["role"] == "user"
    assert original == MSGS


async def test_reask_on_validation_error_names_the_field(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.json({**GOOD, "score": 1052}), Reply.json(GOOD))
    async with client_for(openai_server) as client:
        c = await complete_structured(client, MSGS, OPTS, Grade)
    assert c.parsed.score == 4
    assert "score" in openai_server.chat_requests[1].body["messages"][-1]["content"]


async def test_reasks_exhausted_raise_with_attempts_and_usage(openai_server: FakeOpenAIServer) -> None:
    openai_server.default = Reply.ok("I think it is a 4.")
    async with client_for(openai_server) as client:
        with pytest.raises(StructuredOutputError) as info:
            await complete_structured(client, MSGS, OPTS, Grade, max_reasks=2)
    err = info.value
    assert err.attempts == 3 and len(openai_server.chat_requests) == 3
    assert err.usage == Usage(prompt_tokens=30, completion_tokens=15)
    assert err.last_text == "I think it is a 4." and "not valid JSON" in err.last_error


async def test_refusal_is_a_typed_error_without_reask(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.refused("I can't grade that."))
    async with client_for(openai_server) as client:
        with pytest.raises(RefusalError, match="can't grade") as info:
            await complete_structured(client, MSGS, OPTS, Grade)
    assert info.value.refusal == "I can't grade that." and len(openai_server.chat_requests) == 1


async def test_a_cut_off_answer_is_re_asked_asking_for_short_fields(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(Reply.truncated('{"rationale": "a very long', completion_tokens=300), Reply.json(GOOD))
    async with client_for(openai_server) as client:
        c = await complete_structured(client, MSGS, OPTS, Grade)
    assert c.parsed.score == GOOD["score"] and c.reasks == 1 and c.usage.completion_tokens > 300
    reask = openai_server.chat_requests[1].body["messages"]
    assert reask[-2] == {"role": "assistant", "content": '{"rationale": "a very long'}
    assert "cut off at the length limit" in reask[-1]["content"] and "Keep every field short" in reask[-1]["content"]


async def test_truncation_past_the_re_ask_budget_is_a_typed_error_with_a_hint(openai_server: FakeOpenAIServer) -> None:
    openai_server.enqueue(*[Reply.truncated('{"rationale": "a very long', completion_tokens=300)] * 3)
    async with client_for(openai_server) as client:
        with pytest.raises(TruncatedError, match="raise max_tokens") as info:
            await complete_structured(client, MSGS, OPTS, Grade, max_reasks=2)
    assert info.value.max_tokens == 300 and info.value.usage.completion_tokens == 900  # every ask counted
    assert len(openai_server.chat_requests) == 3


async def test_server_ignoring_response_format_is_still_validated(openai_server: FakeOpenAIServer) -> None:
    # The fake accepts response_format and enforces nothing, like many OpenAI-compatible servers.
    openai_server.enqueue(Reply.json({"verdict": "good"}), Reply.json(GOOD))
    async with client_for(openai_server, mode="json_object_schema") as client:
        c = await complete_structured(client, MSGS, OPTS, Grade)
    assert openai_server.chat_requests[0].body["response_format"]["type"] == "json_object"
    assert c.parsed.score == 4 and c.reasks == 1


async def test_llama_cpp_like_server_works_with_json_object_schema() -> None:
    with FakeOpenAIServer(reject_response_formats={"json_schema"}) as server:
        server.enqueue(Reply.json(GOOD))
        async with client_for(server, mode="json_object_schema") as client:
            c = await complete_structured(client, MSGS, OPTS, Grade)
    assert c.parsed.score == 4 and len(server.chat_requests) == 1
