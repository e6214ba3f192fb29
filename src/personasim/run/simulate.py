"""Walk one persona through one module version in one conversation.

Each step is a user turn; the persona answers with a `StepReaction` (validated, re-asked when
invalid) and its raw JSON text goes back into the history, so later steps see earlier answers
exactly as the model wrote them. After the last step comes the end reflection. The walkthrough
does not stop when the learner says they would give up: every step gets a reaction, and the
first such step is recorded as `first_abandoned_step`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.settings import LLMSettings, generation_summary, sample_options
from personasim.llm.structured import complete_structured
from personasim.llm.types import ChatClient, ChatOptions, Completion, LLMError
from personasim.prompts import Prompts
from personasim.records.identity import module_fingerprint, persona_fingerprint, unit_id_for
from personasim.records.transcript import EndReflection, ReflectionTurn, StepReaction, Transcript, Turn
from personasim.records.usage import Usage
from personasim.run.config import History


def _call_fields(user_prompt: str, completion: Completion) -> dict[str, Any]:
    usage = completion.usage
    return {
        "user_prompt": user_prompt,
        "raw_text": completion.text,
        "usage": Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
        ),
        "latency_s": completion.latency_s,
        "from_recording": completion.from_recording,
        "finish_reason": completion.finish_reason,
        "attempts": completion.attempts,
        "reasks": completion.reasks,
        "model": completion.model,
        "system_fingerprint": completion.system_fingerprint,
    }


def new_transcript(
    run_id: str, persona: Persona, module: LearningModule, sample: int, settings: LLMSettings, prompts: Prompts
) -> Transcript:
    return Transcript(
        run_id=run_id,
        unit_id=unit_id_for(persona, module, sample),
        persona_id=persona.id,
        persona_title=persona.title,
        persona_hash=persona_fingerprint(persona),
        module_id=module.id,
        module_version=module.version,
        module_title=module.title,
        module_hash=module_fingerprint(module),
        sample=sample,
        model=settings.model,
        settings=generation_summary(settings),
        prompt_hashes=prompts.template_hashes(),
        system_prompt=prompts.persona_system(persona),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


async def simulate_unit(
    client: ChatClient,
    persona: Persona,
    module: LearningModule,
    sample: int,
    settings: LLMSettings,
    prompts: Prompts,
    run_id: str = "",
    history: History = "full",
) -> Transcript:
    """One conversation. LLM failures end the walkthrough with `status="failed"` and the turns
    so far kept; anything else (a bug) propagates.

    `history="recap"` keeps every earlier answer but replaces each answered step's full text with
    a one-line recap (the transcript still holds the full prompts)."""
    transcript = new_transcript(run_id, persona, module, sample, settings, prompts)
    options = sample_options(settings, sample)
    messages: list[dict[str, Any]] = [{"role": "system", "content": transcript.system_prompt}]
    started = time.perf_counter()
    try:
        for index in range(1, len(module.steps) + 1):
            turn = await _step_turn(client, messages, options, settings, prompts, persona, module, index)
            if history == "recap":
                messages[-2] = {"role": "user", "content": prompts.step_recap(module, index)}
            transcript.turns.append(turn)
            if transcript.first_abandoned_step is None and not turn.reaction.would_continue:
                transcript.first_abandoned_step = turn.step_id
        transcript.reflection = await _reflection_turn(client, messages, options, settings, prompts, persona, module)
    except LLMError as exc:
        transcript.status = "failed"
        transcript.error = f"{type(exc).__name__}: {exc}"
    transcript.duration_s = round(time.perf_counter() - started, 3)
    return transcript


async def _ask(
    client: ChatClient,
    messages: list[dict[str, Any]],
    user_prompt: str,
    options: ChatOptions,
    settings: LLMSettings,
    response_model: type[StepReaction] | type[EndReflection],
) -> Completion:
    messages.append({"role": "user", "content": user_prompt})
    completion = await complete_structured(client, messages, options, response_model, max_reasks=settings.max_reasks)
    messages.append({"role": "assistant", "content": completion.text})
    return completion


async def _step_turn(
    client: ChatClient,
    messages: list[dict[str, Any]],
    options: ChatOptions,
    settings: LLMSettings,
    prompts: Prompts,
    persona: Persona,
    module: LearningModule,
    index: int,
) -> Turn:
    step = module.steps[index - 1]
    user_prompt = prompts.step_turn(persona, module, index)
    completion = await _ask(client, messages, user_prompt, options, settings, StepReaction)
    return Turn(step_id=step.id, step_index=index, reaction=completion.parsed, **_call_fields(user_prompt, completion))


async def _reflection_turn(
    client: ChatClient,
    messages: list[dict[str, Any]],
    options: ChatOptions,
    settings: LLMSettings,
    prompts: Prompts,
    persona: Persona,
    module: LearningModule,
) -> ReflectionTurn:
    user_prompt = prompts.end_reflection(persona, module)
    completion = await _ask(client, messages, user_prompt, options, settings, EndReflection)
    return ReflectionTurn(reflection=completion.parsed, **_call_fields(user_prompt, completion))
