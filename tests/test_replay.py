"""Record / replay: keys, modes, misses without network, files, pruning."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from clients import openai_client
from doubles.openai_server import FakeOpenAIServer, Reply
from personasim.llm.call_wrapper import CallWrapper, RetryPolicy
from personasim.llm.clients import build_client
from personasim.llm.replay import RecordingClient, load_recording, read_used_keys, request_key, unused_recordings
from personasim.llm.settings import LLMSettings
from personasim.llm.structured import complete_structured
from personasim.llm.types import ChatOptions, ReplayMiss, RequestRejected, RetriesExhausted

MSGS = [
    {"role": "system", "content": "You are Dana, a finance director."},
    {"role": "user", "content": "Step 1: budgets."},
]
OPTS = ChatOptions(model="fake-model")


class Reaction(BaseModel):
    feeling: str = Field(max_length=100)
    clarity: int = Field(ge=1, le=5)


def inner_for(server: FakeOpenAIServer) -> CallWrapper:
    retry = RetryPolicy(max_attempts=2, initial_wait_s=0.001, max_wait_s=0.01, total_timeout_s=5)
    return openai_client(api_key="sk-test", base_url=server.base_url, retry=retry)


def test_key_is_stable_and_covers_what_determines_the_answer() -> None:
    base = request_key(MSGS, OPTS)
    assert base == request_key([dict(m) for m in MSGS], ChatOptions(model="fake-model")) and len(base) == 64
    variants = [
        request_key(MSGS, OPTS.model_copy(update={"sample_index": 1})),
        request_key(MSGS, OPTS.model_copy(update={"temperature": 0.7})),
        request_key(MSGS, OPTS.model_copy(update={"seed": 1})),
        request_key(MSGS, OPTS.model_copy(update={"max_tokens": 10})),
        request_key(MSGS, OPTS.model_copy(update={"model": "other"})),
        request_key(MSGS[:1], OPTS),
        request_key(MSGS, OPTS, Reaction),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert request_key(MSGS, OPTS.model_copy(update={"timeout_s": 5.0})) == base  # timeouts don't change answers


async def test_record_then_replay_gives_the_same_completion(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    openai_server.enqueue(Reply.json({"feeling": "curious", "clarity": 4}, cached_tokens=6))
    async with RecordingClient(inner_for(openai_server), tmp_path, "record") as recorder:
        live = await recorder.complete(MSGS, OPTS, Reaction)
    async with RecordingClient(None, tmp_path, "replay") as player:
        replayed = await player.complete(MSGS, OPTS, Reaction)
    assert len(openai_server.chat_requests) == 1
    assert replayed.from_recording and replayed.attempts == 0 and not live.from_recording
    same = ("text", "parsed", "usage", "finish_reason", "model", "system_fingerprint")
    assert {f: getattr(replayed, f) for f in same} == {f: getattr(live, f) for f in same}
    assert replayed.parsed == Reaction(feeling="curious", clarity=4)
    assert player.used_keys == recorder.used_keys == {request_key(MSGS, OPTS, Reaction)}


async def test_recording_file_is_readable_json(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    async with RecordingClient(inner_for(openai_server), tmp_path, "record") as recorder:
        await recorder.complete(MSGS, OPTS.model_copy(update={"sample_index": 2}))
    (path,) = tmp_path.glob("*.json")
    text = path.read_text()
    assert text.startswith("{\n  ") and not list(tmp_path.glob("*.tmp"))
    data = json.loads(text)
    assert data["key"] == path.stem and data["request"]["messages"] == MSGS and data["request"]["sample_index"] == 2
    assert set(data["response"]) >= {"text", "usage", "finish_reason", "model", "system_fingerprint", "created_at"}
    assert load_recording(path).response.text == "ok"


async def test_replay_miss_makes_no_network_call(openai_server: FakeOpenAIServer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = LLMSettings(base_url=openai_server.base_url, model="fake-model", mode="replay", recordings_dir=tmp_path)
    async with build_client(settings) as client:
        with pytest.raises(ReplayMiss) as info:
            await client.complete(MSGS, settings.chat_options())
    message = str(info.value)
    assert openai_server.requests == []
    assert "'fake-model'" in message and "Step 1: budgets." in message and info.value.key in message
    assert "--mode auto" in message and "--mode record" in message and str(tmp_path) in message


async def test_auto_mode_replays_hits_and_records_misses(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    openai_server.enqueue(Reply.ok("first"), Reply.ok("second"))
    async with RecordingClient(inner_for(openai_server), tmp_path, "auto") as client:
        a = await client.complete(MSGS, OPTS)
        b = await client.complete(MSGS, OPTS)
        c = await client.complete(MSGS, OPTS.model_copy(update={"sample_index": 1}))
    assert (a.text, b.text, c.text) == ("first", "first", "second")
    assert (a.from_recording, b.from_recording, c.from_recording) == (False, True, False)
    assert len(openai_server.chat_requests) == 2 and len(list(tmp_path.glob("*.json"))) == 2


async def test_record_mode_calls_again_and_overwrites(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    openai_server.enqueue(Reply.ok("old"), Reply.ok("new"))
    async with RecordingClient(inner_for(openai_server), tmp_path, "record") as client:
        await client.complete(MSGS, OPTS)
        await client.complete(MSGS, OPTS)
    (path,) = tmp_path.glob("*.json")
    assert load_recording(path).response.text == "new" and len(openai_server.chat_requests) == 2


async def test_concurrent_samples_get_their_own_keys(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    counter = iter(range(100))
    openai_server.responder = lambda request: Reply.ok(f"answer {next(counter)}", latency_s=0.05)
    async with RecordingClient(inner_for(openai_server), tmp_path, "record") as client:
        results = await asyncio.gather(
            *(client.complete(MSGS, OPTS.model_copy(update={"sample_index": i})) for i in range(4))
        )
    assert len(client.used_keys) == 4 and len(list(tmp_path.glob("*.json"))) == 4
    async with RecordingClient(None, tmp_path, "replay") as player:
        for i, live in enumerate(results):
            assert (await player.complete(MSGS, OPTS.model_copy(update={"sample_index": i}))).text == live.text
    assert len({r.text for r in results}) == 4


@pytest.mark.parametrize("fault", [Reply.error(400, "bad"), Reply.server_error(503)], ids=["400", "503"])
async def test_error_responses_are_never_recorded(
    openai_server: FakeOpenAIServer, tmp_path: Path, fault: Reply
) -> None:
    openai_server.default = fault
    async with RecordingClient(inner_for(openai_server), tmp_path, "record") as client:
        with pytest.raises((RequestRejected, RetriesExhausted)):
            await client.complete(MSGS, OPTS)
    assert list(tmp_path.iterdir()) == []


async def test_structured_reasks_replay_without_network(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    openai_server.enqueue(Reply.ok("no json here"), Reply.json({"feeling": "calm", "clarity": 5}))
    async with RecordingClient(inner_for(openai_server), tmp_path, "record") as recorder:
        live = await complete_structured(recorder, MSGS, OPTS, Reaction)
    async with RecordingClient(None, tmp_path, "replay") as player:
        replayed = await complete_structured(player, MSGS, OPTS, Reaction)
    assert len(openai_server.chat_requests) == 2
    assert replayed.parsed == live.parsed == Reaction(feeling="calm", clarity=5) and replayed.reasks == 1


async def test_used_keys_file_and_unused_recordings(openai_server: FakeOpenAIServer, tmp_path: Path) -> None:
    recordings = tmp_path / "rec"
    async with RecordingClient(inner_for(openai_server), recordings, "record") as client:
        for i in range(3):
            await client.complete(MSGS, OPTS.model_copy(update={"sample_index": i}))
    async with RecordingClient(None, recordings, "replay") as player:
        await player.complete(MSGS, OPTS)
    (tmp_path / "used.txt").write_text("".join(f"{key}\n" for key in sorted(player.used_keys)))
    used = read_used_keys(tmp_path / "used.txt")
    assert used == {request_key(MSGS, OPTS)}
    unused = unused_recordings(recordings, used)
    assert len(unused) == 2 and {p.stem for p in unused} == client.used_keys - used


def test_recording_client_rejects_bad_setups(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inner client"):
        RecordingClient(None, tmp_path, "auto")
    with pytest.raises(ValueError, match="unknown mode"):
        RecordingClient(None, tmp_path, "sometimes")  # type: ignore[arg-type]
