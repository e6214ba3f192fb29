"""Transcript models: what one simulated learner said while walking through one module version.

`StepReaction` and `EndReflection` are the structured answers asked of the model. They are kept
small and bounded on purpose (allowed-value scales, short strings, at most three list items) so a
small local model can fill them in reliably and does not ramble until `max_tokens`.

A `Transcript` is written to disk as JSON, one file per unit (persona x module version x sample);
grading reads only these files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personasim.errors import InputError
from personasim.fileio import atomic_write_text
from personasim.records.usage import Usage

TRANSCRIPT_VERSION = 1

Scale = Literal[1, 2, 3, 4, 5]
# Buckets, not a 0-240 range: llama.cpp's grammar enforces an enum but not numeric bounds, and a
# small model otherwise answers 1032 minutes.
Minutes = Literal[0, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120]
MINUTES: tuple[int, ...] = (0, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120)
Short = Annotated[str, Field(max_length=300)]
Item = Annotated[str, Field(max_length=200)]
BarrierKind = Literal["time", "format", "access", "safety_to_speak", "relevance", "language", "other"]


class _Answer(BaseModel):
    # Strict-schema friendly: every field required, no extra keys.
    model_config = ConfigDict(extra="forbid")


class Barrier(_Answer):
    kind: BarrierKind
    detail: Item


class StepReaction(_Answer):
    """The learner's reaction to one step, in their own words."""

    takeaway: Short = Field(description="what I took from this step, in my own words")
    how_it_lands: Short = Field(description="how this lands for me, given who I am and my work")
    relevance: Scale = Field(description="1 = irrelevant to my work, 5 = exactly what I need")
    engagement: Scale = Field(description="1 = switched off, 5 = fully engaged")
    what_i_would_do: Short = Field(description="what I would actually do with this next week, if anything")
    misunderstandings: list[Item] = Field(
        max_length=3, description="things I am confused about or think this step is saying"
    )
    questions: list[Item] = Field(max_length=3, description="questions I would want to ask")
    barriers: list[Barrier] = Field(max_length=3, description="what gets in the way of me engaging")
    would_continue: bool = Field(description="would I carry on to the next step")
    continue_reason: Short = Field(description="why I would or would not carry on")
    minutes_spent: Minutes = Field(description="minutes I would realistically spend on this step")


class EndReflection(_Answer):
    """The learner's look back over the whole module."""

    what_changed: Short = Field(description="what, if anything, changed in how I think or act")
    what_was_missing: Short = Field(description="what the module did not give me that I needed")
    would_recommend: bool = Field(description="would I recommend it to a colleague like me")
    recommend_reason: Short = Field(description="why or why not")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallRecord(_Record):
    """One model call: what was asked (the user turn), what came back, what it cost."""

    user_prompt: str
    raw_text: str
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    from_recording: bool = False
    finish_reason: str | None = None
    attempts: int = 1
    reasks: int = 0
    model: str = ""
    system_fingerprint: str | None = None


class Turn(CallRecord):
    step_id: str
    step_index: int = Field(ge=1, description="1-based position of the step in the module")
    reaction: StepReaction


class ReflectionTurn(CallRecord):
    reflection: EndReflection


class Transcript(_Record):
    version: int = TRANSCRIPT_VERSION
    run_id: str
    unit_id: str
    persona_id: str
    persona_title: str = ""
    persona_hash: str
    module_id: str
    module_version: str
    module_title: str = ""
    module_hash: str
    sample: int = Field(ge=0)
    model: str
    settings: dict[str, Any] = Field(default_factory=dict, description="generation settings summary")
    prompt_hashes: dict[str, str] = Field(default_factory=dict)
    system_prompt: str
    turns: list[Turn] = Field(default_factory=list)
    reflection: ReflectionTurn | None = None
    first_abandoned_step: str | None = Field(
        default=None, description="id of the first step where would_continue was false"
    )
    status: Literal["finished", "failed"] = "finished"
    error: str | None = None
    started_at: str = ""
    duration_s: float = 0.0

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.calls():
            total = total + call.usage
        return total

    def calls(self) -> list[CallRecord]:
        return [*self.turns, *([self.reflection] if self.reflection else [])]

    def learner_texts(self) -> list[str]:
        """Every free-text string the learner wrote: what judge evidence must quote from."""
        texts: list[str] = []
        for turn in self.turns:
            r = turn.reaction
            texts += [r.takeaway, r.how_it_lands, r.what_i_would_do, r.continue_reason]
            texts += [*r.misunderstandings, *r.questions, *(b.detail for b in r.barriers)]
        if self.reflection:
            f = self.reflection.reflection
            texts += [f.what_changed, f.what_was_missing, f.recommend_reason]
        return [t for t in texts if t.strip()]


def save_transcript(transcript: Transcript, path: str | Path) -> None:
    atomic_write_text(path, transcript.model_dump_json(indent=2) + "\n")


def load_transcript(path: str | Path) -> Transcript:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(path, None, "transcript file not found") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not valid JSON: {exc.msg}") from exc
    if isinstance(data, dict) and data.get("version", TRANSCRIPT_VERSION) > TRANSCRIPT_VERSION:
        raise InputError(path, None, f"transcript version {data['version']} is newer than this personasim reads")
    try:
        return Transcript.model_validate(data)
    except ValidationError as exc:
        raise InputError(path, None, f"not a transcript: {exc.errors()[0]['msg']}") from exc
