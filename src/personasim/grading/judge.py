"""The LLM judge: one criterion of one transcript, asked `judge_samples` times.

The judge reads the learner's statements numbered (`[S3.takeaway] ...`) and answers with a verdict
(met / partly met / not met / no evidence), the ids of the statements it rests on, a rationale and a
score. The answer's schema lists the transcript's statement ids, so an id that does not exist is a
validation error (re-asked with the error, like any invalid answer; a grammar-enforcing server
cannot even write one), and so is a score outside the verdict's band. Evidence is then the cited
statements' text: the learner's words by construction.

Repeats: each its own sample index (own replay key and seed). The scale is ordinal, so the score is
the lower median of the repeats, and the verdict and rationale shown are those of the first repeat
that gave it; the spread (sd, min, max) is kept. Judge calls for one transcript share one prompt
prefix (rubric + statements in the system prompt) and differ only in the short criterion message.
"""

from __future__ import annotations

import functools
import statistics
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from personasim.inputs.criteria import Criterion
from personasim.inputs.module import LearningModule
from personasim.inputs.persona import Persona
from personasim.llm.gather import gather_cancelling
from personasim.llm.settings import LLMSettings, sample_options
from personasim.llm.structured import complete_structured
from personasim.llm.types import ChatClient, RefusalError, StructuredOutputError, TruncatedError
from personasim.prompts import Prompts
from personasim.records.grades import VERDICT_BANDS, Evidence, Grade, JudgeSample, Verdict
from personasim.records.statements import Statement, learner_statements
from personasim.records.transcript import Transcript
from personasim.records.usage import Usage

# Answer problems that a re-ask did not fix: they leave one criterion ungraded (score null,
# error shown); anything else from the LLM layer (quota, replay miss, ...) fails the unit.
JUDGE_ANSWER_ERRORS = (StructuredOutputError, RefusalError, TruncatedError)
MAX_CITED = 3


class _VerdictBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _score_in_the_verdicts_band(self) -> _VerdictBase:
        band = VERDICT_BANDS[self.verdict]  # type: ignore[attr-defined]
        if self.score not in band:  # type: ignore[attr-defined]
            allowed = " or ".join(str(s) for s in band)
            raise ValueError(f"a verdict of {self.verdict!r} needs a score of {allowed}, not {self.score}")  # type: ignore[attr-defined]
        return self


@functools.lru_cache(maxsize=256)  # one model per transcript: all its criteria and repeats share it
def verdict_model(statement_ids: tuple[str, ...]) -> type[BaseModel]:
    """The judge's answer for a transcript with these statement ids, fields in the order written."""
    cited: Any = Literal[statement_ids] if statement_ids else str  # type: ignore[valid-type]
    model = create_model(
        "JudgeVerdict",
        __base__=_VerdictBase,
        verdict=(Verdict, Field(description="met, partly met, not met, or no evidence either way")),
        evidence=(
            list[cited],
            Field(max_length=MAX_CITED if statement_ids else 0, description="ids of the learner's statements cited"),
        ),
        rationale=(str, Field(max_length=600, description="why, referring to the cited statements")),
        score=(Literal[1, 2, 3, 4, 5], Field(description="within the verdict's band")),
    )
    model.__doc__ = "The judge's answer: verdict, cited statement ids, rationale, then the score."
    return model


def judge_messages(
    prompts: Prompts,
    transcript: Transcript,
    persona: Persona,
    module: LearningModule,
    criterion: Criterion,
    system: str | None = None,
) -> list[dict[str, str]]:
    """`system`: the transcript's judge system prompt when already rendered (it is the same for
    every criterion of a transcript; rendering it per criterion cost more than the HTTP call)."""
    if system is None:
        system = prompts.judge_system(transcript, persona, module)
    return [{"role": "system", "content": system}, {"role": "user", "content": prompts.judge_criterion(criterion)}]


async def _judge_once(
    client: ChatClient,
    messages: list[dict[str, str]],
    settings: LLMSettings,
    index: int,
    statements: dict[str, Statement],
) -> tuple[JudgeSample, Usage]:
    options = sample_options(settings, index)
    answer_model = verdict_model(tuple(statements))
    try:
        completion = await complete_structured(client, messages, options, answer_model, max_reasks=settings.max_reasks)
    except JUDGE_ANSWER_ERRORS as exc:
        error = f"{type(exc).__name__}: {exc}"
        usage = getattr(exc, "usage", None) or Usage()
        return JudgeSample(sample_index=index, error=error, raw_text=getattr(exc, "last_text", "")), usage
    verdict = completion.parsed
    cited = list(dict.fromkeys(verdict.evidence))
    sample = JudgeSample(
        sample_index=index,
        verdict=verdict.verdict,
        score=verdict.score,
        rationale=verdict.rationale,
        evidence=[Evidence(id=i, text=statements[i].text) for i in cited],
        raw_text=completion.text,
        from_recording=completion.from_recording,
    )
    return sample, completion.usage


def _merge_evidence(samples: list[JudgeSample]) -> list[Evidence]:
    seen: dict[str, Evidence] = {}
    for sample in samples:
        for item in sample.evidence:
            seen.setdefault(item.id, item)
    return list(seen.values())


def _judge_flags(score: float, evidence: list[Evidence], scores: list[int]) -> list[str]:
    flags = []
    if score >= 4 and not evidence:
        flags.append("high score citing nothing")
    if scores and max(scores) - min(scores) >= 2:
        flags.append("judge samples disagree")
    return flags


def base_fields(criterion: Criterion, transcript: Transcript) -> dict[str, Any]:
    return {
        "unit_id": transcript.unit_id,
        "criterion_id": criterion.id,
        "criterion_text": criterion.text,
        "lens": criterion.lens,
        "source_field": criterion.source_field,
        "grader": criterion.grader,
        "threshold": criterion.threshold,
    }


def judge_grade(
    criterion: Criterion, transcript: Transcript, samples: list[JudgeSample], usage: Usage, model: str
) -> Grade:
    base = base_fields(criterion, transcript)
    scored = [s for s in samples if s.score is not None]
    errors = [s.error for s in samples if s.error]
    common = {"judge_samples": len(samples), "samples": samples, "usage": usage, "model": model}
    if not scored:
        return Grade(**base, **common, error=errors[0] if errors else "no judge answer", flags=["judge failed"])
    scores = [s.score for s in scored if s.score is not None]
    median = statistics.median_low(scores)
    shown = next(s for s in scored if s.score == median)
    evidence = _merge_evidence(scored)
    flags = _judge_flags(median, evidence, scores)
    if errors:
        flags.append(f"{len(errors)} of {len(samples)} judge samples failed")
    return Grade(
        **base,
        **common,
        verdict=shown.verdict,
        score=float(median),
        passed=None if shown.verdict == "no evidence" else median >= criterion.threshold,
        rationale=shown.rationale,
        evidence=evidence,
        flags=flags,
        score_sd=round(statistics.stdev(scores), 4) if len(scores) > 1 else None,
        score_min=float(min(scores)),
        score_max=float(max(scores)),
        error=errors[0] if errors else None,
    )


async def judge_criterion(
    client: ChatClient,
    transcript: Transcript,
    persona: Persona,
    module: LearningModule,
    criterion: Criterion,
    *,
    judge_samples: int,
    settings: LLMSettings,
    prompts: Prompts,
    system: str | None = None,
    concurrent: bool = False,
) -> Grade:
    """`concurrent`: the repeats side by side (a batch run sends them in one round); else in order,
    so that a local server's repeats of one request share the whole prompt prefix."""
    messages = judge_messages(prompts, transcript, persona, module, criterion, system)
    statements = learner_statements(transcript)
    if concurrent:
        drawn = await gather_cancelling([_judge_once(client, messages, settings, i, statements)
                                         for i in range(judge_samples)])  # fmt: skip
    else:
        drawn = [await _judge_once(client, messages, settings, i, statements) for i in range(judge_samples)]
    samples = [sample for sample, _ in drawn]
    usage = sum((used for _, used in drawn), Usage())
    return judge_grade(criterion, transcript, samples, usage, settings.model)
