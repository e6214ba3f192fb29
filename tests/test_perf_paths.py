"""The fast paths the benchmarks (bench/) asked for keep the behaviour of the slow ones:
the request body posted without the SDK's transform, replay keys computed from cached pieces,
copied messages and schemas, file writes off the event loop, sampled persona pairs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from openai._utils import async_maybe_transform
from openai.types.chat import completion_create_params

from clients import openai_client
from personasim.analysis import health_checks
from personasim.analysis.health_checks import check_persona_similarity
from personasim.grading.judge import verdict_model
from personasim.llm.replay import fast_request_key, request_key
from personasim.llm.structured import STRUCTURED_MODES, copy_messages, response_schema, strict_schema
from personasim.llm.types import ChatOptions
from personasim.records.transcript import EndReflection, StepReaction, Transcript
from personasim.run.runner import _off_loop

JudgeVerdict = verdict_model(("S1.takeaway", "END.changed"))
MESSAGES = [
    {"role": "system", "content": 'You are the Assistant Director of Finance. \u00e9\u00fc \u2028 "quoted" \\ back'},
    {"role": "user", "content": "Step 1 of 2: Fairness\n\nContent\twith tabs and \x00 a NUL"},
    {"role": "assistant", "content": json.dumps({"takeaway": "fair process", "relevance": 4})},
    {"role": "user", "content": "\x00messages \x00schema"},  # the placeholders the fast key uses
]


@pytest.mark.parametrize("mode", STRUCTURED_MODES)
@pytest.mark.parametrize("model", [StepReaction, EndReflection, JudgeVerdict, None])
async def test_the_sdk_transform_would_not_change_the_body_we_post(mode, model) -> None:
    client = openai_client(api_key="sk-test", base_url="http://127.0.0.1:9/v1", structured_output=mode)
    request = client.request_body(MESSAGES, ChatOptions(model="m", seed=3), model)
    transformed = await async_maybe_transform(request, completion_create_params.CompletionCreateParamsNonStreaming)
    assert transformed == request
    await client.aclose()


@pytest.mark.parametrize("options", [
    ChatOptions(model="m"), ChatOptions(model="gpt-4o-mini", temperature=0.7, seed=None, max_tokens=99, sample_index=3),
])  # fmt: skip
@pytest.mark.parametrize("model", [None, StepReaction, JudgeVerdict])
def test_the_fast_replay_key_is_the_key(options, model) -> None:
    assert fast_request_key(MESSAGES, options, model) == request_key(MESSAGES, options, model)
    assert fast_request_key(MESSAGES[:2], options, model) == request_key(MESSAGES[:2], options, model)
    multimodal = [*MESSAGES, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert fast_request_key(multimodal, options, model) == request_key(multimodal, options, model)
    assert fast_request_key(MESSAGES, options, model) != fast_request_key(MESSAGES[:3], options, model)


def test_copies_are_independent_of_the_original() -> None:
    nested = [*MESSAGES, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    copied = copy_messages(nested)
    copied[0]["content"] = "changed"
    copied[-1]["content"][0]["text"] = "changed"
    assert nested[0]["content"] != "changed" and nested[-1]["content"][0]["text"] == "hi"
    for make in (response_schema, strict_schema):
        first = make(StepReaction)
        first["properties"].clear()
        assert make(StepReaction)["properties"], make.__name__


async def test_a_cancelled_unit_waits_for_its_file_write_to_end(tmp_path: Path) -> None:
    written = threading.Event()

    def slow_write(path: Path) -> None:
        time.sleep(0.2)
        path.write_text("done")
        written.set()

    task = asyncio.ensure_future(_off_loop(slow_write, tmp_path / "f"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert written.is_set() and (tmp_path / "f").read_text() == "done"


def _unit(persona: str, takeaway: str) -> Transcript:
    from test_health import turn, unit

    return unit(persona, [turn(1, takeaway, "It lands.")])


def test_persona_similarity_samples_pairs_beyond_the_limit(monkeypatch) -> None:
    units = [
        _unit(f"p{i:02d}", f"Answer number {i} about fairness" if i % 2 else "The same answer every time")
        for i in range(12)
    ]  # fmt: skip  (66 pairs)
    exact = check_persona_similarity(units)
    assert "sampled" not in exact.detail
    monkeypatch.setattr(health_checks, "MAX_PERSONA_PAIRS", 20)
    sampled = check_persona_similarity(units)
    assert "20 of 66 persona pairs sampled" in sampled.detail
    assert sampled == check_persona_similarity(units)  # a fixed sample: the same value every time
    assert abs(sampled.value - exact.value) < 0.25
