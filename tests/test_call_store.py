"""The run's call store (`RUN/calls/`): every completed live call is kept, in the recordings' format;
a resumed unit replays its own calls and goes on live from the first it lacks, so a failed unit's
resume makes exactly the calls it did not make before; answers that could not be used are asked
again rather than replayed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from doubles.openai_server import FakeOpenAIServer, Reply
from doubles.scripted_client import ScriptedClient
from module_files import three_seed_personas, write_module
from personasim.cli import app
from personasim.llm.call_store import CallStore
from personasim.llm.replay import load_recording, recording_files, request_key
from personasim.llm.types import ChatOptions, Completion, RetriesExhausted
from personasim.records.transcript import load_transcript
from scripted_answers import scripted_answer

MSGS = [{"role": "user", "content": "hello"}]
OPTS = ChatOptions(model="fake-model")
TIMING = {"started_at", "duration_s", "latency_s", "run_id"}


class Answer(BaseModel):
    ok: bool


class Counting:
    """A ChatClient answering from a list of completions, counting its calls."""

    def __init__(self, *answers: Completion) -> None:
        self.answers, self.calls = list(answers), 0

    async def complete(self, messages: list[dict[str, Any]], options: ChatOptions, response_model: Any = None):
        self.calls += 1
        return self.answers.pop(0)

    async def aclose(self) -> None:
        pass


def completion(text: str, **kw: Any) -> Completion:
    return Completion(text=text, model="fake-model", latency_s=0.25, **kw)


async def test_every_completed_call_is_kept_in_the_recordings_format_and_replayed_as_live(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    first = CallStore(Counting(completion('{"ok": true}', attempts=3)), calls)
    assert not first.replay  # a new run has no folder: nothing to look up
    answer = await first.complete(MSGS, OPTS, Answer)
    assert answer.text == '{"ok": true}' and first.kept == 1
    (path,) = recording_files(calls)
    assert path.stem == request_key(MSGS, OPTS, Answer)
    assert load_recording(path).response.text == '{"ok": true}'

    inner = Counting()
    again = CallStore(inner, calls)
    replayed = await again.complete(MSGS, OPTS, Answer)
    assert inner.calls == 0 and again.replayed == 1
    assert replayed.parsed == Answer(ok=True) and replayed.latency_s == 0.25
    assert not replayed.from_recording  # this run's own live call, as an uninterrupted run records it


async def test_answers_that_could_not_be_used_are_kept_but_asked_again(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    unusable = [
        completion("", refusal="I can't help with that."),
        completion('{"ok": tr', finish_reason="length"),
        completion('{"ok": "maybe"}'),
    ]
    for index, answer in enumerate(unusable):
        options = OPTS.model_copy(update={"sample_index": index})
        await CallStore(Counting(answer), calls).complete(MSGS, options, Answer)
    assert len(recording_files(calls)) == 3  # kept, for reading
    for index in range(3):
        inner = Counting(completion('{"ok": false}'))
        answer = await CallStore(inner, calls).complete(MSGS, OPTS.model_copy(update={"sample_index": index}), Answer)
        assert inner.calls == 1 and answer.text == '{"ok": false}'


async def test_an_unreadable_kept_call_is_called_again(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / f"{request_key(MSGS, OPTS)}.json").write_text('{"key": "torn')
    inner = Counting(completion("fresh"))
    assert (await CallStore(inner, calls).complete(MSGS, OPTS)).text == "fresh" and inner.calls == 1
    assert load_recording(calls / f"{request_key(MSGS, OPTS)}.json").response.text == "fresh"


async def test_a_failed_call_is_not_kept(tmp_path: Path) -> None:
    store = CallStore(ScriptedClient([RetriesExhausted("down", attempts=1, reason="HTTP 503")]), tmp_path / "calls")
    with pytest.raises(RetriesExhausted):
        await store.complete(MSGS, OPTS)
    assert not (tmp_path / "calls").exists() and store.kept == 0


# --------------------------------------------------------------------------- through the CLI


class FailAfter:
    """Scripted answers for the first `healthy` requests, then HTTP 503 for every one; counts them."""

    def __init__(self, healthy: int | None = None) -> None:
        self.healthy, self.seen, self.lock = healthy, 0, threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.seen += 1
            if self.healthy is not None and self.seen > self.healthy:
                return Reply.server_error(503)
        return Reply.json(scripted_answer(body["messages"]))


def run_args(tmp_path: Path, server: FakeOpenAIServer) -> list[str]:
    config = tmp_path / "llm.yaml"
    config.write_text("max_attempts: 1\nbackoff_initial_s: 0\n")  # a 503 fails the unit at once
    personas = three_seed_personas(tmp_path / "personas")
    module = write_module(tmp_path / "modules", "v1", 3)
    return ["--personas", str(personas), "--persona", "p17", "--module", str(module), "--base-url", server.base_url,
            "--model", "fake-model", "--mode", "live", "--config", str(config), "--out", str(tmp_path / "out")]  # fmt: skip


def without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def test_a_failed_unit_resumes_from_its_last_answered_call(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer(models=("fake-model",)) as server:
        args = run_args(tmp_path, server)
        whole = FailAfter()
        server.responder = whole
        assert CliRunner().invoke(app, ["run", *args, "--run-id", "whole"]).exit_code == 0
        full = whole.seen  # 3 steps + the reflection + the judge's criteria

        for healthy in (2, full - 1):  # fails in the walkthrough; fails at the last judge call
            run_id = f"failed-{healthy}"
            server.responder = FailAfter(healthy)
            failed = CliRunner().invoke(app, ["run", *args, "--run-id", run_id])
            assert failed.exit_code == 1 and "1 unit failed" in failed.output, failed.output
            run_dir = tmp_path / "out" / run_id
            assert len(recording_files(run_dir / "calls")) == healthy  # every answered call kept

            resumed = FailAfter()
            server.responder = resumed
            result = CliRunner().invoke(app, ["run", "--resume", run_id, "--out", str(tmp_path / "out")])
            assert result.exit_code == 0, result.output
            assert resumed.seen == full - healthy  # exactly the calls it had not made
            killed = pd.read_parquet(run_dir / "results.parquet").drop(columns="run_id")
            pd.testing.assert_frame_equal(
                killed, pd.read_parquet(tmp_path / "out/whole/results.parquet").drop(columns="run_id")
            )
            for path in (tmp_path / "out" / "whole" / "transcripts").glob("*.json"):
                mine = load_transcript(run_dir / "transcripts" / path.name).model_dump(mode="json")
                assert without_timing(mine) == without_timing(load_transcript(path).model_dump(mode="json"))


def test_a_changed_input_starts_the_unit_over(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = str(tmp_path / "out")
    with FakeOpenAIServer() as server:
        args = run_args(tmp_path, server)
        server.responder = whole = FailAfter()
        assert CliRunner().invoke(app, ["run", *args, "--run-id", "whole", "--temperature", "0.3"]).exit_code == 0
        server.responder = FailAfter(2)
        assert CliRunner().invoke(app, ["run", *args, "--run-id", "changed"]).exit_code == 1
        server.responder = again = FailAfter()
        result = CliRunner().invoke(app, ["run", "--resume", "changed", "--out", out, "--temperature", "0.3"])
        assert result.exit_code == 0, result.output
    # Another temperature asks other requests: nothing kept matches, so every call is made again.
    assert again.seen == whole.seen
