"""One persona through one module: one conversation, each step a turn, then the end reflection."""

from __future__ import annotations

import json
from pathlib import Path

from core_fixtures import make_module, make_persona
from doubles.scripted_client import ScriptedClient
from personasim.llm.settings import LLMSettings
from personasim.llm.types import QuotaExceeded
from personasim.prompts import Prompts
from personasim.records.transcript import StepReaction, Transcript, load_transcript, save_transcript
from personasim.run.simulate import simulate_unit
from scripted_answers import END_REFLECTION, scripted_answer

SETTINGS = LLMSettings(model="test-model", seed=7, max_reasks=1)
PROMPTS = Prompts()


def _pretty(call) -> str:
    # Indented JSON: the history must carry the model's text exactly, not a re-serialisation.
    return json.dumps(scripted_answer(call.messages), indent=1)


async def _simulate(client, sample: int = 0, steps: int = 3, persona=None) -> Transcript:
    persona = persona or make_persona()
    return await simulate_unit(client, persona, make_module(steps=steps), sample, SETTINGS, PROMPTS, run_id="r1")


async def test_one_conversation_with_a_turn_per_step_and_the_reflection() -> None:
    client = ScriptedClient(_pretty)
    transcript = await _simulate(client, steps=3)
    assert transcript.status == "finished" and transcript.error is None
    assert [t.step_id for t in transcript.turns] == ["step-1", "step-2", "step-3"]
    assert [t.step_index for t in transcript.turns] == [1, 2, 3]
    assert transcript.reflection is not None
    assert transcript.reflection.reflection.model_dump() == END_REFLECTION
    assert [c.response_model.__name__ for c in client.calls] == ["StepReaction"] * 3 + ["EndReflection"]
    # One growing conversation: system, then user/assistant pairs; assistant turns are the raw text.
    last = client.calls[-1].messages
    assert [m["role"] for m in last] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert last[0]["content"] == transcript.system_prompt
    for turn, assistant in zip(transcript.turns, last[2::2], strict=True):
        assert assistant["content"] == turn.raw_text
        assert "\n " in turn.raw_text  # the indented original, not a re-dump
    assert client.calls[1].messages == last[:3] + [last[3]]
    assert last[1]["content"].startswith("Step 1 of 3: ") and last[-1]["content"].startswith("That was the last step")


async def test_transcript_records_identity_hashes_usage_and_settings() -> None:
    transcript = await _simulate(ScriptedClient(_pretty))
    assert transcript.unit_id == "p17-test__lotus@v1__s0"
    assert (transcript.persona_hash, transcript.module_hash) == ("sha256:persona00000000017", "sha256:module-v1")
    assert transcript.prompt_hashes == Prompts().template_hashes()
    assert transcript.settings["model"] == "test-model" and "api_key_env" not in transcript.settings
    assert transcript.usage.prompt_tokens == 4 * 100 and transcript.usage.cached_tokens == 4 * 60
    assert transcript.turns[0].finish_reason == "stop" and transcript.turns[0].attempts == 1
    assert isinstance(transcript.turns[0].reaction, StepReaction)


async def test_sample_index_and_seed_follow_the_sample() -> None:
    client = ScriptedClient(_pretty)
    await _simulate(client, sample=2)
    assert {(c.options.sample_index, c.options.seed) for c in client.calls} == {(2, 9)}


async def test_walkthrough_continues_after_the_learner_would_stop() -> None:
    persona = make_persona(number=21, title="Chief Allied Health Professional")  # scripted to quit at step 2
    transcript = await _simulate(ScriptedClient(_pretty), steps=4, persona=persona)
    assert transcript.first_abandoned_step == "step-2"
    assert len(transcript.turns) == 4 and transcript.reflection is not None


async def test_an_invalid_answer_is_reasked_and_counted() -> None:
    answers = iter(["not json at all"])
    client = ScriptedClient(lambda call: next(answers, None) or _pretty(call))
    transcript = await _simulate(client, steps=1)
    assert transcript.status == "finished"
    assert transcript.turns[0].reasks == 1 and transcript.turns[0].usage.prompt_tokens == 200
    assert len(client.calls) == 3  # step (bad), step re-asked, reflection


async def test_an_llm_failure_ends_the_unit_as_failed_with_turns_kept() -> None:
    calls = {"n": 0}

    def script(call):
        calls["n"] += 1
        return QuotaExceeded("insufficient_quota: add credit") if calls["n"] == 3 else _pretty(call)

    transcript = await _simulate(ScriptedClient(script), steps=3)
    assert transcript.status == "failed"
    assert transcript.error == "QuotaExceeded: insufficient_quota: add credit"
    assert len(transcript.turns) == 2 and transcript.reflection is None


async def test_transcript_round_trips_through_json(tmp_path: Path) -> None:
    transcript = await _simulate(ScriptedClient(_pretty))
    path = tmp_path / "t" / "unit.json"
    save_transcript(transcript, path)
    assert json.loads(path.read_text())["version"] == 1
    assert load_transcript(path) == transcript
    texts = transcript.learner_texts()
    assert transcript.turns[0].reaction.takeaway in texts and END_REFLECTION["what_changed"] in texts
