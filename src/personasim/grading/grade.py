"""Grading a transcript: every criterion goes to its grader through one interface.

A grader receives the criterion and the same `GradingContext` (transcript, persona, module, the
judge's client and settings, templates, judge samples), whether it is the LLM judge or a
deterministic grader; `GRADERS` maps a criterion's `grader` name to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from personasim.errors import PersonasimError
from personasim.grading.deterministic import grade_abandonment, grade_misunderstanding_coverage, grade_time_fit
from personasim.grading.judge import judge_criterion
from personasim.inputs.criteria import Criterion
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.gather import gather_cancelling
from personasim.llm.settings import LLMSettings
from personasim.llm.types import ChatClient
from personasim.prompts import Prompts
from personasim.records.grades import Grade
from personasim.records.transcript import Transcript

T = TypeVar("T")


@dataclass
class GradingContext:
    transcript: Transcript
    persona: Persona
    module: LearningModule
    client: ChatClient  # the judge's
    settings: LLMSettings  # the judge's
    prompts: Prompts
    judge_samples: int = 1
    concurrent: bool = True  # criteria and their repeats side by side
    _system: str | None = field(default=None, repr=False)

    def judge_system(self) -> str:
        """The judge's system prompt for this transcript, rendered once for all its criteria."""
        if self._system is None:
            self._system = self.prompts.judge_system(self.transcript, self.persona, self.module)
        return self._system


Grader = Callable[[Criterion, GradingContext], Awaitable[Grade]]


async def _judge(criterion: Criterion, ctx: GradingContext) -> Grade:
    return await judge_criterion(
        ctx.client,
        ctx.transcript,
        ctx.persona,
        ctx.module,
        criterion,
        judge_samples=ctx.judge_samples,
        settings=ctx.settings,
        prompts=ctx.prompts,
        system=ctx.judge_system(),
        concurrent=ctx.concurrent,
    )


def _deterministic(grade: Callable[[Criterion, Transcript, Persona, LearningModule], Grade]) -> Grader:
    async def grader(criterion: Criterion, ctx: GradingContext) -> Grade:
        return grade(criterion, ctx.transcript, ctx.persona, ctx.module)

    return grader


GRADERS: dict[str, Grader] = {
    "judge": _judge,
    "time_fit": _deterministic(grade_time_fit),
    "abandonment": _deterministic(grade_abandonment),
    "misunderstanding_coverage": _deterministic(grade_misunderstanding_coverage),
}


async def grade_transcript(
    client: ChatClient,
    transcript: Transcript,
    persona: Persona,
    module: LearningModule,
    criteria: list[Criterion],
    judge_samples: int = 1,
    *,
    settings: LLMSettings,
    prompts: Prompts,
    concurrent: bool = True,
) -> list[Grade]:
    """Grades in criteria order. `concurrent=False` sends the judge calls one after another, a
    criterion's repeats in a row (a local server that keeps one prompt prefix)."""
    if transcript.status != "finished":
        raise PersonasimError(f"transcript {transcript.unit_id} is {transcript.status}; only finished ones are graded")
    if judge_samples < 1:
        raise PersonasimError("judge_samples must be at least 1")
    unknown = sorted({c.grader for c in criteria} - set(GRADERS))
    if unknown:
        raise PersonasimError(f"no grader named {', '.join(unknown)} (known: {', '.join(GRADERS)})")
    ctx = GradingContext(transcript, persona, module, client, settings, prompts, judge_samples, concurrent)
    if concurrent:
        return await gather_cancelling([GRADERS[c.grader](c, ctx) for c in criteria])
    return [await GRADERS[c.grader](c, ctx) for c in criteria]
