"""`history="recap"`: earlier steps' full text leaves the conversation, every answer stays."""

from __future__ import annotations

import json

from core_fixtures import make_module, make_persona
from doubles.scripted_client import ScriptedClient
from personasim.llm.settings import LLMSettings
from personasim.prompts import Prompts
from personasim.run.simulate import simulate_unit
from scripted_answers import scripted_answer

SETTINGS = LLMSettings(model="test-model", seed=7)
PROMPTS = Prompts()


async def _walk(history: str, steps: int = 4) -> tuple[ScriptedClient, object]:
    client = ScriptedClient(lambda call: json.dumps(scripted_answer(call.messages)))
    module = make_module(steps=steps)
    transcript = await simulate_unit(client, make_persona(), module, 0, SETTINGS, PROMPTS, history=history)
    return client, (transcript, module)


async def test_recap_replaces_answered_steps_with_one_line_and_keeps_every_answer() -> None:
    client, (transcript, module) = await _walk("recap")
    last = client.calls[-1].messages  # the end reflection request
    users = [m["content"] for m in last if m["role"] == "user"]
    answers = [m["content"] for m in last if m["role"] == "assistant"]
    for index in range(1, 5):
        assert users[index - 1] == PROMPTS.step_recap(module, index)
        assert module.steps[index - 1].content not in users[index - 1]
    assert answers == [turn.raw_text for turn in transcript.turns]
    # The step being answered is always shown in full.
    for index, call in enumerate(client.calls[:4], start=1):
        assert call.last_user == PROMPTS.step_turn(make_persona(), module, index)
    # The transcript keeps the full prompts for the judge and the report.
    assert [t.user_prompt for t in transcript.turns] == [
        PROMPTS.step_turn(make_persona(), module, i) for i in range(1, 5)
    ]


async def test_recap_sends_fewer_characters_than_full_history() -> None:
    full, _ = await _walk("full", steps=6)
    recap, _ = await _walk("recap", steps=6)
    sent = lambda client: sum(len(m["content"]) for call in client.calls for m in call.messages)  # noqa: E731
    assert sent(recap) < sent(full)
    # Same number of calls, same answers: only what is re-sent changes.
    assert len(full.calls) == len(recap.calls)
